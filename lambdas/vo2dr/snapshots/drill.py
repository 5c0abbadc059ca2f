"""The drill of the snapshot sources (``assets``, ``logs``): a sampled restore, timed against
the class RTO.

A snapshot can hold hundreds of thousands of objects; restoring all of them every month only
to delete them again would cost hours and egress. The drill restores a uniform random sample
(``sample`` objects) of the latest complete snapshot with the real restore path (find in one
store, verify the index end to end, decrypt and check every sampled object) into a scratch
directory, checks each restored file's SHA-256 against the index once more, independently,
and projects the time of a full restore from the sample (by the larger of the object and the
byte ratio, as a restore runs with the same parallelism). The projection is what is held
against the RTO. The scratch copy is removed whatever happened.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from vo2dr.exceptions import Vo2drError
from vo2dr.settings import Settings
from vo2dr.sources.drill import SourceReport, drill_scratch
from vo2dr.stores.base import BackupStore

DEFAULT_SAMPLE = 200


def drill_snapshot(settings: Settings, kind: str, *, stores: Mapping[str, BackupStore],
                   sample: int = DEFAULT_SAMPLE, rto_override_seconds: float | None = None,
                   clock: Callable[[], float] = time.monotonic,
                   recovery_key_pem: bytes | None = None,
                   rng: random.Random | None = None) -> SourceReport:
    """Drill ``kind`` from the first store (primary first) holding a complete snapshot."""
    from vo2dr.catalog import BackupNotFound
    from vo2dr.snapshots.catalog import find_snapshot
    from vo2dr.snapshots.reader import content_decryptor, open_index
    from vo2dr.snapshots.restore import LocalTarget, restore_objects
    from vo2dr.snapshots.verify import reservoir
    from vo2dr.trust import Trust

    with drill_scratch(settings, kind, rto_override_seconds) as (report, scratch):
        trust = Trust.from_settings(settings)
        found = None
        misses = []
        for name, store in stores.items():
            try:
                found = (name, *find_snapshot(store, settings.environment, kind, trust))
                break
            except (BackupNotFound, Vo2drError) as exc:
                misses.append(f"{name}: {exc}")
        if found is None:
            raise BackupNotFound("; ".join(misses) or "no store")
        name, entry, _ = found
        report.backup_id, report.store = entry.backup_id, name
        t0 = clock()
        with open_index(stores[name], entry, trust, recovery_key_pem=recovery_key_pem,
                        spool_dir=settings.spool_dir or None) as index:
            decryptor, _ = content_decryptor(index.manifest, recovery_key_pem, trust)
            picked, total_objects = reservoir(index, sample, rng or random.SystemRandom())
            total_bytes = int(index.manifest.contents.get("bytes", 0))
            target = LocalTarget(str(scratch / "restored"))
            target.check_empty()
            target.prepare()
            try:
                result = restore_objects(stores[name], index, target, decryptor,
                                         only={p["key"] for p in picked})
            finally:
                target.finish()
        elapsed = clock() - t0
        report.restore_seconds = round(elapsed, 3)
        for f in result.failed:
            report.errors.append(f"{f['key']}: {f['error']}")
        gone = {f["key"] for f in result.failed}
        bad = [p["key"] for p in picked if not p["key"].endswith("/") and p["key"] not in gone
               and _sha256(target.path_of(p["key"])) != p["sha256"]]
        if bad:
            report.errors.append(f"restored files differ from the index: {bad[:5]}")
        sample_bytes = sum(p["size"] for p in picked)
        ratio = max(total_objects / max(len(picked), 1),
                    total_bytes / sample_bytes if sample_bytes else 1.0, 1.0)
        projected = elapsed * ratio
        report.checked = {"objects": len(picked), "bytes": sample_bytes,
                          "snapshot_objects": total_objects, "snapshot_bytes": total_bytes,
                          "projected_full_restore_seconds": int(projected + 0.999)}
        report.within_rto = projected <= report.rto_seconds
        if not report.within_rto:
            report.errors.append(f"a full restore would take about {projected:.0f}s (sampled "
                                 f"{len(picked)} objects in {elapsed:.1f}s), over the RTO of "
                                 f"{report.rto_seconds:.0f}s")
    return report


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()
