"""``vo2dr verify --kind assets|logs``: a snapshot checked end to end in one store.

First the index, as every backup body (signed manifest, ciphertext and plaintext SHA-256,
authenticated decryption, the index's own structure against the manifest's counts); then its
content objects: every one with ``full``, else a uniform random sample (reservoir sampling
over the streamed index, so memory stays flat) whose size is reported. Each object is
downloaded and decrypted (encryption context and key checked), and its stored and plaintext
sizes and SHA-256 compared with the signed index. Nothing is written to disk but the index
spool; the plaintext is hashed and dropped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vo2dr.catalog import CatalogEntry
from vo2dr.exceptions import EncryptionError, IntegrityError, StoreError, one_line
from vo2dr.snapshots.reader import content_chunks, content_decryptor, open_index
from vo2dr.stores.base import BackupStore
from vo2dr.trust import Trust

DEFAULT_SAMPLE = 100
DEFAULT_JOBS = 8


@dataclass
class SnapshotVerifyResult:
    store: str
    snapshot_id: str
    index_key: str
    mode: str = ""  # "full" or "sample"
    objects_in_snapshot: int = 0
    checked: int = 0
    checked_bytes: int = 0
    sample_size: int | None = None
    key_used: str = ""
    partial: bool = False
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        what = (f"all {self.checked} objects" if self.mode == "full"
                else f"a random sample of {self.checked} of {self.objects_in_snapshot} objects")
        if self.ok:
            return f"{self.store}: snapshot {self.snapshot_id} verified: index and {what}"
        return (f"{self.store}: snapshot {self.snapshot_id} failed verification ({what} "
                f"checked): " + "; ".join(self.problems[:5])
                + (f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""))

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "snapshot_id": self.snapshot_id,
                "index_key": self.index_key, "ok": self.ok, "mode": self.mode,
                "objects_in_snapshot": self.objects_in_snapshot, "checked": self.checked,
                "checked_bytes": self.checked_bytes, "sample_size": self.sample_size,
                "key_used": self.key_used, "partial": self.partial,
                "problems": self.problems, "seconds": round(self.seconds, 3)}


def reservoir(lines: Iterable[dict[str, Any]], n: int,
              rng: random.Random) -> tuple[list[dict[str, Any]], int]:
    """A uniform random sample of ``n`` of ``lines`` (all if fewer), and how many there were."""
    sample: list[dict[str, Any]] = []
    seen = 0
    for line in lines:
        seen += 1
        if len(sample) < n:
            sample.append(line)
        else:
            j = rng.randrange(seen)
            if j < n:
                sample[j] = line
    return sample, seen


def verify_snapshot(store: BackupStore, entry: CatalogEntry, *, trust: Trust,
                    recovery_key_pem: bytes | None = None, full: bool = False,
                    sample: int = DEFAULT_SAMPLE, jobs: int = DEFAULT_JOBS,
                    rng: random.Random | None = None,
                    spool_dir: str | None = None) -> SnapshotVerifyResult:
    """Verify ``store``'s copy of the snapshot ``entry``; problems are collected in the
    result. Store outages and an unusable key propagate (they are not about this copy)."""
    from vo2dr.verify import VerificationFailed

    t0 = time.monotonic()
    result = SnapshotVerifyResult(store=store.name, snapshot_id=entry.backup_id,
                                  index_key=entry.ref.body_key,
                                  mode="full" if full else "sample")
    try:
        try:
            index = open_index(store, entry, trust, recovery_key_pem=recovery_key_pem,
                               spool_dir=spool_dir)
        except VerificationFailed as exc:
            result.problems.extend(f"index: {p}" for p in exc.result.problems)
            return result
        with index:
            result.partial = not index.complete
            decryptor, result.key_used = content_decryptor(index.manifest,
                                                              recovery_key_pem, trust)
            if full:
                chosen: Iterable[dict[str, Any]] = index
                result.objects_in_snapshot = int(index.manifest.contents.get("objects", 0))
            else:
                picked, seen = reservoir(index, sample, rng or random.SystemRandom())
                chosen, result.objects_in_snapshot = picked, seen
                result.sample_size = len(picked)

            def one(line: dict[str, Any]) -> tuple[int, str]:
                try:
                    n = sum(len(c) for c in content_chunks(store, index.manifest, line, decryptor))
                    return n, ""
                except IntegrityError as exc:
                    return 0, one_line(exc, 300)

            with ThreadPoolExecutor(max_workers=jobs,
                                    thread_name_prefix="vo2dr-verify") as pool:
                # map() keeps a bounded window only when fed lazily: chunk the index.
                for batch in _batches(chosen, 4 * jobs):
                    for n, problem in pool.map(one, batch):
                        result.checked += 1
                        result.checked_bytes += n
                        if problem:
                            result.problems.append(problem)
    except (EncryptionError, StoreError):
        raise
    finally:
        result.seconds = time.monotonic() - t0
    return result


def _batches(lines: Iterable[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
