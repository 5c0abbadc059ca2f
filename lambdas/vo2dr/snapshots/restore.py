"""Restore a snapshot of ``assets`` or ``logs`` into a new or empty local directory, or into an
empty ``s3://bucket/prefix/``, from one store (so it works while another cloud is down, and
with ``--recovery-key`` while AWS and its KMS are unreachable).

The order is what makes it safe:

1. the snapshot is found by listing the one store read from (latest = the newest complete
   one; a partial snapshot only with ``allow_incomplete``);
2. the target is checked before a byte is downloaded: a directory or prefix that holds
   anything is refused, and nothing in it changes;
3. the index is verified as a whole (signature, digests, authenticated decryption) into a
   private spool file (:func:`vo2dr.snapshots.reader.open_index`);
4. the selected objects (``prefix``) are restored in parallel, a bounded number at a time:
   each is decrypted into a private temporary file while its stored and plaintext SHA-256 and
   sizes are checked against the index, and only a copy that passed every check is moved (or
   uploaded) to its key. An object that fails is not written at all;
5. if any object failed, the result says which and why, ``ok`` is false, and a
   ``VO2DR-RESTORE-INCOMPLETE.json`` marker naming them is left at the target's root, so
   the partial tree can never be taken for a complete restore.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vo2dr.crypto import Decryptor
from vo2dr.exceptions import (
    ConfigError,
    EncryptionError,
    IntegrityError,
    RestoreError,
    StoreError,
    one_line,
)
from vo2dr.manifest import Manifest
from vo2dr.progress import QuietReporter, Reporter
from vo2dr.snapshots.reader import VerifiedIndex, content_chunks, content_decryptor
from vo2dr.stores.base import BackupStore

INCOMPLETE_MARKER = "VO2DR-RESTORE-INCOMPLETE.json"
DEFAULT_JOBS = 8
MAX_FAILURES_SHOWN = 20


# -- targets -------------------------------------------------------------------------------------

class LocalTarget:
    """A new or empty local directory; entries become files under it (mode 0600 parents
    0700: uploads can hold personal data), with the source object's mtime."""

    def __init__(self, path: str) -> None:
        self.root = Path(path).absolute()
        self.describe = str(self.root)
        self._scratch: Path | None = None

    def check_empty(self) -> None:
        if self.root.exists():
            if not self.root.is_dir():
                raise RestoreError(f"target {self.root} exists and is not a directory: give a "
                                   "new or empty directory; nothing was changed")
            if any(self.root.iterdir()):
                raise RestoreError(f"target directory {self.root} is not empty: give a new or "
                                   "empty directory; nothing was changed")

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Temporary copies live inside the target (same file system: the final move is an
        # atomic rename), in a directory removed at the end whatever happened.
        self._scratch = Path(tempfile.mkdtemp(prefix=".vo2dr-restoring-", dir=self.root))

    def temp_file(self) -> tuple[int, str]:
        assert self._scratch is not None
        return tempfile.mkstemp(dir=self._scratch)

    def path_of(self, key: str) -> Path:
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
            raise RestoreError(f"{key!r} cannot be a path under the target")
        return self.root.joinpath(*parts)

    def commit(self, key: str, temp: str, line: dict[str, Any]) -> None:
        if key.endswith("/"):  # a "folder" marker object: a directory here
            self.path_of(key.rstrip("/")).mkdir(parents=True, exist_ok=True, mode=0o700)
            os.unlink(temp)
            return
        dest = self.path_of(key)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(temp, 0o600)
        mtime = _timestamp(line.get("mtime"))
        if mtime is not None:
            os.utime(temp, (mtime, mtime))
        os.replace(temp, dest)

    def write_marker(self, doc: dict[str, Any]) -> None:
        (self.root / INCOMPLETE_MARKER).write_text(json.dumps(doc, indent=2) + "\n")

    def finish(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


class S3Target:
    """An empty ``s3://bucket/prefix/`` (the uploads bucket's replacement, say): objects are
    uploaded with the S3 transfer manager (multipart for large ones), with the default
    credentials of the machine running the restore (never the backup stores' identity)."""

    def __init__(self, url: str, spool_dir: str | None = None, client: Any = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
            raise ConfigError(f"--target-url {url!r}: use s3://bucket/prefix/")
        self.bucket = parsed.netloc
        prefix = parsed.path.lstrip("/")
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.describe = f"s3://{self.bucket}/{self.prefix}"
        self._spool_dir = spool_dir
        self._client = client
        self._scratch: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        import botocore.exceptions

        try:
            return fn()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise StoreError(f"target {self.describe}: {what}: {one_line(exc)}") from exc

    def check_empty(self) -> None:
        found = self._call("cannot list it", lambda: self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1))
        if found.get("KeyCount", 0) or found.get("Contents"):
            raise RestoreError(f"target {self.describe} is not empty: give an empty bucket or "
                               "prefix; nothing was changed")

    def prepare(self) -> None:
        self._scratch = tempfile.mkdtemp(prefix="vo2dr-restore-", dir=self._spool_dir)
        os.chmod(self._scratch, 0o700)

    def temp_file(self) -> tuple[int, str]:
        return tempfile.mkstemp(dir=self._scratch)

    def commit(self, key: str, temp: str, line: dict[str, Any]) -> None:
        try:
            self._call(f"cannot upload {key}", lambda: self.client.upload_file(
                temp, self.bucket, self.prefix + key))
        finally:
            os.unlink(temp)

    def write_marker(self, doc: dict[str, Any]) -> None:
        body = (json.dumps(doc, indent=2) + "\n").encode()
        self._call("cannot write the marker", lambda: self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + INCOMPLETE_MARKER, Body=body))

    def finish(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


Target = LocalTarget | S3Target


def open_target(target_dir: str | None, target_url: str | None,
                spool_dir: str | None = None) -> Target:
    if bool(target_dir) == bool(target_url):
        raise ConfigError("give exactly one of --target-dir DIR or --target-url s3://bucket/prefix/")
    if target_dir:
        return LocalTarget(target_dir)
    return S3Target(target_url or "", spool_dir)


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# -- restoring the objects -----------------------------------------------------------------------

@dataclass
class ObjectsResult:
    objects: int = 0
    bytes: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def selected(index: VerifiedIndex, prefix: str = "",
             only: set[str] | None = None) -> Iterator[dict[str, Any]]:
    for line in index:
        if line["key"].startswith(prefix) and (only is None or line["key"] in only):
            yield line


def restore_objects(store: BackupStore, index: VerifiedIndex, target: Target,
                    decryptor: Decryptor, *, prefix: str = "", only: set[str] | None = None,
                    jobs: int = DEFAULT_JOBS, reporter: Reporter | None = None
                    ) -> ObjectsResult:
    """Restore the index's entries under ``prefix`` (or the keys ``only``) into ``target``,
    ``jobs`` at a time; failures are collected, never half-written."""
    reporter = reporter or QuietReporter()
    total = sum(line["size"] for line in selected(index, prefix, only))
    advance = reporter.download(total)
    result = ObjectsResult()
    lock = threading.Lock()
    t0 = time.monotonic()

    def one(line: dict[str, Any]) -> None:
        fd, temp = target.temp_file()
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in content_chunks(store, index.manifest, line, decryptor):
                    fh.write(chunk)
                    advance(len(chunk))
            target.commit(line["key"], temp, line)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        with lock:
            result.objects += 1
            result.bytes += line["size"]

    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="vo2dr-restore") as pool:
            pending: dict[Future[None], str] = {}

            def collect(done: set[Future[None]]) -> None:
                for fut in done:
                    key = pending.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        continue
                    if isinstance(exc, EncryptionError):
                        raise exc  # no usable key (KMS unreachable): every object would fail
                    if not isinstance(exc, (IntegrityError, RestoreError, StoreError, OSError)):
                        raise exc
                    result.failed.append({"key": key, "error": one_line(exc, 300)})

            for line in selected(index, prefix, only):
                # Bounded: at most 2 x jobs entries in flight, so memory stays flat.
                while len(pending) >= 2 * jobs:
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    collect(done)
                pending[pool.submit(one, line)] = line["key"]
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                collect(done)
    finally:
        reporter.download_done()
    result.seconds = time.monotonic() - t0
    return result


def restore_snapshot(settings: Any, kind: str, *, store: BackupStore,
                     target_dir: str | None = None, target_url: str | None = None,
                     snapshot: str | None = None, at: datetime | None = None,
                     prefix: str = "", recovery_key_pem: bytes | None = None,
                     allow_incomplete: bool = False, jobs: int = DEFAULT_JOBS,
                     reporter: Reporter | None = None) -> dict[str, Any]:
    """Restore one snapshot of ``kind`` from ``store``; a JSON-ready result (``ok`` false,
    with ``failed``, when an object could not be restored). Raises :class:`RestoreError` /
    :class:`BackupNotFound` / :class:`VerificationFailed` before anything is written."""
    from vo2dr.snapshots.catalog import find_snapshot
    from vo2dr.snapshots.reader import open_index
    from vo2dr.trust import Trust

    if jobs < 1:
        raise ConfigError("--jobs must be 1 or more")
    settings.require("environment")
    trust = Trust.from_settings(settings)
    reporter = reporter or QuietReporter()
    target = open_target(target_dir, target_url, settings.spool_dir or None)
    t0 = time.monotonic()
    entry, _ = find_snapshot(store, settings.environment, kind, trust, snapshot=snapshot,
                             at=at, allow_incomplete=allow_incomplete)
    reporter.stage(f"{kind} snapshot {entry.backup_id} ({entry.timestamp:%Y-%m-%d %H:%M:%S} "
                   f"UTC, {entry.ref.tier}) from {store.name}")
    target.check_empty()  # before a byte is downloaded
    with open_index(store, entry, trust, recovery_key_pem=recovery_key_pem,
                    spool_dir=settings.spool_dir or None) as index:
        if not index.complete and not allow_incomplete:  # the same bytes, now verified
            raise RestoreError(f"snapshot {entry.backup_id} is partial: pass --allow-incomplete")
        decryptor, key_used = content_decryptor(index.manifest, recovery_key_pem, trust)
        reporter.stage(f"index verified ({key_used}): "
                       f"{index.manifest.contents.get('objects')} objects; restoring"
                       + (f" those under {prefix!r}" if prefix else "")
                       + f" into {target.describe}, {jobs} at a time")
        target.prepare()
        try:
            objects = restore_objects(store, index, target, decryptor, prefix=prefix, jobs=jobs,
                                      reporter=reporter)
            doc = _result(kind, entry, store, index.manifest, target, prefix, key_used,
                          objects, time.monotonic() - t0)
            if objects.failed:
                target.write_marker({k: doc[k] for k in ("snapshot_id", "source", "store",
                                                         "restored", "failed")})
        finally:
            target.finish()
    reporter.stage(f"restored {objects.objects} objects ({objects.bytes} bytes)"
                   + (f"; {len(objects.failed)} FAILED" if objects.failed else ""))
    return doc


def _result(kind: str, entry: Any, store: BackupStore, manifest: Manifest, target: Target,
            prefix: str, key_used: str, objects: ObjectsResult, seconds: float
            ) -> dict[str, Any]:
    return {"ok": not objects.failed, "source": kind, "snapshot_id": entry.backup_id,
            "data_class": entry.data_class, "timestamp": entry.timestamp.isoformat(),
            "store": store.name, "key_used": key_used, "target": target.describe,
            "prefix": prefix, "complete_snapshot": bool(manifest.contents.get("complete")),
            "restored": {"objects": objects.objects, "bytes": objects.bytes},
            "failed": objects.failed[:MAX_FAILURES_SHOWN],
            "failed_count": len(objects.failed),
            **({"marker": INCOMPLETE_MARKER} if objects.failed else {}),
            "seconds": round(seconds, 3)}
