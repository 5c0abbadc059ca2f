"""Verify one store's copy of a backup end to end, streaming, with bounded memory.

The checks, in order, each naming the store, the key and what differed:

1. the manifest exists in that store, parses, is signed by a trusted signing key (offline:
   :mod:`vo2dr.signing`), and describes this backup and this body key;
2. the body exists and its size is the manifest's ciphertext size (a truncated copy fails here,
   before a byte is downloaded);
3. the body's bytes hash to the manifest's ciphertext SHA-256;
4. it decrypts with authentication (the suite the signed manifest records, one of the two
   vo2dr writes; every frame's GCM tag and the key commitment; the SDK's message signature
   where an older backup has one; the encryption context bound to this backup id, and the
   wrapped data keys the signed manifest records), by the *configured* KMS key or the offline
   recovery key only;
5. it decompresses (zstd) to exactly the manifest's plaintext size and SHA-256;
6. ``pg_restore --list`` reads the archive, and its TABLE DATA entries are exactly the
   manifest's tables (a data class's archive also defines every other table, without data).

The plaintext goes either to ``pg_restore --list`` on stdin (``vo2dr verify``: nothing touches
the disk but the small TOC listing) or to a spool file (``vo2dr restore``: the restore then
reads the verified file, so a corrupt copy never reaches a database).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from vo2dr import pgtools
from vo2dr.archive import Toc, TocReader, qualified, read_toc
from vo2dr.catalog import CatalogEntry
from vo2dr.crypto import (
    FRAME_LENGTH,
    ChunkReader,
    decrypt_stream,
    recovery_key_id_from_private,
)
from vo2dr.exceptions import (
    EncryptionError,
    IntegrityError,
    ObjectNotFound,
    StoreError,
    one_line,
)
from vo2dr.manifest import Manifest
from vo2dr.stores.base import BackupStore
from vo2dr.stores.ranged import read_ranges
from vo2dr.trust import Trust

READ_SIZE = 1024 * 1024
RECOVERY_KEY_HINT = ("KMS could not be used to decrypt: if AWS or KMS is unreachable, decrypt "
                     "offline with --recovery-key PATH (the recovery private key, kept outside "
                     "AWS; see docs/runbooks/lost-cloud-account.md)")
Progress = Callable[[int], None]


class VerificationFailed(IntegrityError):
    """A copy does not match its manifest. ``result`` holds every check."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(result.summary())
        self.result = result


@dataclass
class VerifyResult:
    store: str
    backup_id: str
    body_key: str
    manifest_key: str
    data_class: str = ""
    key_used: str = ""  # "kms" or "recovery-key"
    ciphertext_bytes: int | None = None
    ciphertext_sha256: str = ""
    plaintext_bytes: int | None = None
    plaintext_sha256: str = ""
    tables: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return (f"{self.store}: {self.body_key} verified "
                    f"({self.ciphertext_bytes} bytes, sha256 {self.ciphertext_sha256[:16]}…)")
        return (f"{self.store}: {self.body_key} failed verification: "
                + "; ".join(self.problems))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("manifest")
        out["ok"] = self.ok
        out["seconds"] = round(self.seconds, 3)
        return out

    def raise_for_problems(self) -> None:
        if self.problems:
            raise VerificationFailed(self)


class _Digesting:
    """Counts and hashes the chunks of an iterator as they pass through."""

    def __init__(self, chunks: Iterable[bytes], progress: Progress | None = None) -> None:
        self._it = iter(chunks)
        self.sha = hashlib.sha256()
        self.bytes = 0
        self._progress = progress

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._it:
            self.sha.update(chunk)
            self.bytes += len(chunk)
            if self._progress is not None:
                self._progress(len(chunk))
            yield chunk

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


class _BackgroundWriter:
    """Writes chunks to a file on its own thread, through a bounded queue (memory: ``depth``
    chunks), and counts and hashes them there (``sha``, ``bytes``: every chunk given, written
    or not). A write error (a full disk) is raised by the next :meth:`write` or by
    :meth:`finish`, as the ``OSError`` the file raised.

    The SHA-256 runs here rather than on the thread that decompresses: a restore's critical
    path is that thread (decompression, about 0.55 CPU-s per 464 MB of archive, against 0.35
    for the hash and 0.3 for the writes), and both the hash and the writes release the GIL, so
    the three stages then run side by side on two cores."""

    def __init__(self, fh: BinaryIO, depth: int = 8) -> None:
        self._fh = fh
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: OSError | None = None
        self._stopped = threading.Event()
        self.sha = hashlib.sha256()
        self.bytes = 0
        self._thread = threading.Thread(target=self._run, name="vo2dr-spool", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._stopped.is_set():
                continue
            self.sha.update(chunk)
            self.bytes += len(chunk)
            if self._error is None:
                try:
                    self._fh.write(chunk)
                except OSError as exc:
                    self._error = exc

    def hexdigest(self) -> str:
        return self.sha.hexdigest()

    def write(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop writing (after a failure); idempotent, never raises."""
        self._stopped.set()
        if self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:  # drain, so the sentinel fits even if the thread is slow
                    self._queue.get_nowait()
            self._queue.put(None)
            self._thread.join(timeout=30)


_DONE = object()


class _Prefetched:
    """``chunks`` produced on a thread of its own, up to ``depth`` ahead (the decryption, so
    that it runs while this thread decompresses, hashes and spools the previous frames). The
    source's exception is raised by the iteration, unchanged, once the thread has left the
    source; :meth:`close` stops the thread and waits until it has left the source too, so the
    caller may then read the source's input itself."""

    def __init__(self, chunks: Iterable[bytes], depth: int = 4) -> None:
        self._chunks = chunks
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vo2dr-decrypt", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.25)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(exc)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                self._thread.join()
                return
            if isinstance(item, BaseException):
                self._thread.join()
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def _decompress(chunks: Iterable[bytes], compression: str) -> Iterator[bytes]:
    """zstd frames (any number) -> plaintext, in pieces of at most READ_SIZE bytes."""
    if compression in ("", "none"):
        yield from chunks
        return
    if not compression.startswith("zstd"):
        raise IntegrityError(f"unknown compression {compression!r} in the manifest")
    # Any object with read() will do; ChunkReader is not an IO[bytes]. read_size: the
    # decrypted frames are FRAME_LENGTH bytes, which ChunkReader then hands on without a copy
    # (zstd's default, 128 KiB, would slice and copy every compressed byte once more).
    reader = zstandard.ZstdDecompressor().stream_reader(
        ChunkReader(chunks),  # type: ignore[arg-type]
        read_size=FRAME_LENGTH, read_across_frames=True)
    try:
        while True:
            out = reader.read(READ_SIZE)
            if not out:
                return
            yield out
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"zstd decompression failed: {exc}") from exc


def load_manifest(store: BackupStore, entry: CatalogEntry, trust: Trust) -> Manifest:
    """This store's manifest of ``entry``, checked to be signed by a trusted key (before any
    field is believed) and to describe this backup."""
    key = entry.ref.manifest_key
    try:
        data = store.get_bytes(key)
    except ObjectNotFound as exc:
        raise IntegrityError(
            f"{store.name}: manifest {key} is missing: the backup does not count in this store"
        ) from exc
    manifest = Manifest.from_json(data, source=f"{store.name}:{key}")
    manifest.verify_signature(trust.signers, source=f"{store.name}:{key}")
    wrong = []
    if manifest.backup_id != entry.backup_id:
        wrong.append(f"backup_id {manifest.backup_id!r} (expected {entry.backup_id!r})")
    if manifest.body_key != entry.ref.body_key:
        wrong.append(f"body_key {manifest.body_key!r} (expected {entry.ref.body_key!r})")
    if manifest.data_class != entry.data_class:
        wrong.append(f"data_class {manifest.data_class!r} (expected {entry.data_class!r})")
    if manifest.source != entry.ref.source:
        wrong.append(f"source {manifest.source!r} (expected {entry.ref.source!r})")
    if manifest.environment != entry.ref.environment:
        wrong.append(f"environment {manifest.environment!r} (expected {entry.ref.environment!r})")
    if wrong:
        raise IntegrityError(f"{store.name}: manifest {key} does not describe this backup: "
                             + ", ".join(wrong))
    return manifest


def decryption_keys(manifest: Manifest, recovery_key_pem: bytes | None,
                    trust: Trust) -> tuple[dict[str, Any], str]:
    """The ``decrypt_stream`` key arguments: the recovery key alone when given (no network
    call at all, for when KMS is unreachable), else the *configured* KMS key. The manifest
    never chooses the key: one naming another KMS key, or wrapped for another recovery key,
    is refused."""
    if recovery_key_pem:
        rid = recovery_key_id_from_private(recovery_key_pem)
        if trust.recovery_key_id and rid != trust.recovery_key_id:
            raise EncryptionError(
                f"the recovery key given (id {rid[:16]}…) is not the configured recovery key "
                f"(VO2DR_RECOVERY_PUBLIC_KEY, id {trust.recovery_key_id[:16]}…): refused")
        if manifest.encryption.recovery_key_id and rid != manifest.encryption.recovery_key_id:
            raise EncryptionError(
                f"the recovery key given is not the one this backup was encrypted for: its id is "
                f"{rid[:16]}…, the manifest expects {manifest.encryption.recovery_key_id[:16]}…")
        return {"recovery_private_key_pem": recovery_key_pem}, "recovery-key"
    if not manifest.encryption.kms_key_arn:
        raise EncryptionError("the manifest names no KMS key: decrypt with --recovery-key PATH")
    if not trust.kms_key_arn:
        raise EncryptionError("no KMS key is configured (VO2DR_KMS_KEY_ID, a key ARN): set it, "
                              "or decrypt with --recovery-key PATH")
    if manifest.encryption.kms_key_arn != trust.kms_key_arn:
        raise EncryptionError(
            f"the backup's data key is wrapped by KMS key {manifest.encryption.kms_key_arn}, "
            f"not the configured key {trust.kms_key_arn}: refused")
    return {"kms_key_id": trust.kms_key_arn}, "kms"


def expected_context(manifest: Manifest) -> dict[str, str]:
    """The encryption context the body must carry: the backup it claims to be. Taken from the
    manifest's identity (not from its copy of the context), so a body moved under another
    backup's key fails to decrypt even if its manifest was copied along."""
    context = {**manifest.encryption.encryption_context, "environment": manifest.environment,
               "data_class": manifest.data_class, "backup_id": manifest.backup_id}
    if manifest.source != "database":
        context["source"] = manifest.source  # an application source (vo2dr.sources)
    return context


def archive_tables(toc: Toc) -> tuple[set[str], set[str]]:
    """``(tables, tables_with_data)`` as the manifest names them (``schema.name``), from the
    archive's own TOC: exact whatever the names hold (``pg_restore --list`` prints them
    unquoted, so its text cannot be split back into schema and table)."""
    return ({qualified(*p) for p in toc.tables()}, {qualified(*p) for p in toc.table_data()})


def compare_tables(manifest: Manifest, toc: Toc) -> list[str]:
    """Problems between the archive's TOC and the manifest's tables (empty when they agree).

    A data class's archive defines every table of the database (the whole schema) but holds
    TABLE DATA only for the class's tables: its TABLE DATA entries must be exactly the
    manifest's tables, and the other TABLE entries are definitions only. A full backup's TABLE
    DATA entries are its tables too (a partitioned parent, which has none, is not listed)."""
    tables, data = archive_tables(toc)
    rows = manifest.table_rows()
    expected = set(rows)
    problems = []
    missing = sorted(t for t in expected if t not in data and t not in tables)
    if manifest.data_class == "full":
        # A partitioned parent has a TABLE entry but its rows are in its partitions' TABLE DATA.
        no_data = sorted(t for t in expected if t not in data and t in tables and rows[t] > 0)
    else:
        no_data = sorted(t for t in expected if t not in data and t in tables)
    extra = sorted(data - expected)
    if missing:
        problems.append(f"tables in the manifest but not in the archive: {', '.join(missing)}")
    if no_data:
        problems.append(f"tables without data in the archive: {', '.join(no_data)}")
    if extra:
        problems.append(f"table data in the archive but not in the manifest: {', '.join(extra)}")
    return problems


def toc_listing(path: str | os.PathLike[str]) -> str:
    """``pg_restore --list`` of an archive file."""
    proc = subprocess.run([pgtools.pg_restore(), "--list", str(path)], capture_output=True,
                          text=True, env=pgtools.tool_env(), check=False)
    if proc.returncode != 0:
        raise IntegrityError(f"pg_restore --list cannot read the archive: "
                             f"{_last_line(proc.stderr)}")
    return proc.stdout


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].removeprefix("pg_restore: ").removeprefix("error: ") if lines else ""


class _TocSink:
    """Feeds the plaintext to ``pg_restore --list`` on stdin. pg_restore reads the TOC at the
    start of the archive and may exit before the end: later chunks are then just hashed.
    Its output goes to temporary files, so a big TOC can never dead-lock the pipe."""

    def __init__(self) -> None:
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen([pgtools.pg_restore(), "--list"], stdin=subprocess.PIPE,
                                      stdout=self._out, stderr=self._err,
                                      env=pgtools.tool_env())
        self._open = True
        self.toc = TocReader()  # the exact TOC, read from the same bytes

    def write(self, chunk: bytes) -> None:
        self.toc.feed(chunk)
        if not self._open:
            return
        assert self._proc.stdin is not None  # stdin=PIPE
        try:
            self._proc.stdin.write(chunk)
        except (BrokenPipeError, OSError):
            self._open = False

    def finish(self) -> str:
        assert self._proc.stdin is not None  # stdin=PIPE
        with contextlib.suppress(BrokenPipeError, OSError):
            self._proc.stdin.close()
        rc = self._proc.wait()
        self._out.seek(0)
        self._err.seek(0)
        out = self._out.read().decode("utf-8", "replace")
        err = self._err.read().decode("utf-8", "replace")
        self.close()
        if rc != 0:
            raise IntegrityError(f"pg_restore --list cannot read the archive: {_last_line(err)}")
        return out

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for f in (self._out, self._err):
            f.close()


def verify_copy(store: BackupStore, entry: CatalogEntry, *, trust: Trust,
                recovery_key_pem: bytes | None = None,
                spool: BinaryIO | None = None,
                progress: Progress | None = None,
                on_start: Callable[[Manifest], None] | None = None) -> VerifyResult:
    """Run every check on ``store``'s copy of ``entry`` and return the result (``problems``
    empty when it passed). With ``spool`` (a binary file open for writing), the plaintext is
    written there and the TOC is read from that file afterwards; without, the plaintext goes
    to ``pg_restore --list`` on stdin and is not kept.

    Store outages (:class:`StoreError`) and key problems that are not about this copy's bytes
    (a recovery key that does not match, KMS unreachable) propagate as exceptions."""
    started = time.monotonic()
    result = VerifyResult(store=store.name, backup_id=entry.backup_id,
                          body_key=entry.ref.body_key, manifest_key=entry.ref.manifest_key,
                          data_class=entry.data_class)
    try:
        _verify(store, entry, result, trust, recovery_key_pem, spool, progress, on_start)
    finally:
        result.seconds = time.monotonic() - started
    return result


def _verify(store: BackupStore, entry: CatalogEntry, result: VerifyResult, trust: Trust,
            recovery_key_pem: bytes | None, spool: BinaryIO | None,
            progress: Progress | None, on_start: Callable[[Manifest], None] | None) -> None:
    problems = result.problems
    try:
        manifest = load_manifest(store, entry, trust)
    except IntegrityError as exc:
        problems.append(str(exc).removeprefix(f"{store.name}: "))
        return
    result.manifest = manifest
    body_key = manifest.body_key
    try:
        info = store.stat(body_key)
    except ObjectNotFound:
        problems.append(f"body {body_key} is missing")
        return
    result.ciphertext_bytes = info.size
    if info.size != manifest.ciphertext.bytes:
        problems.append(f"size of {body_key} differs: the store has {info.size} bytes, "
                        f"the manifest says {manifest.ciphertext.bytes} (truncated or replaced)")
        return
    dest = manifest.destinations.get(store.name)
    if dest is not None and dest.status != "verified":
        problems.append(f"the manifest records this store's upload as {dest.status!r}"
                        + (f": {dest.error}" if dest.error else ""))
        return
    keys, result.key_used = decryption_keys(manifest, recovery_key_pem, trust)
    if on_start is not None:
        on_start(manifest)
    if manifest.source != "database" and spool is None:
        # An application source is checked from a private temporary copy of its plaintext,
        # not by pg_restore; the config's (it holds secret values) stays in memory.
        from vo2dr.sources import plaintext_spool

        with plaintext_spool(manifest.source) as own:
            _verify_body(store, manifest, result, keys, own, progress, recovery_key_pem)
        return
    _verify_body(store, manifest, result, keys, spool, progress, recovery_key_pem)


def _verify_body(store: BackupStore, manifest: Manifest, result: VerifyResult,
                 keys: dict[str, Any], spool: BinaryIO | None,
                 progress: Progress | None, recovery_key_pem: bytes | None) -> None:
    problems = result.problems
    body_key = manifest.body_key
    # Ranges in parallel where the store reads ranges: the download runs ahead of the
    # decryption, on its own threads, with a few parts in memory.
    cipher = _Digesting(read_ranges(store, body_key, manifest.ciphertext.bytes), progress)
    cipher_iter = iter(cipher)
    decrypted = decrypt_stream(cipher_iter, expected_context=expected_context(manifest),
                               expected_data_keys=[(k.provider_id, k.key_info, k.sha256)
                                                   for k in manifest.encryption.data_keys],
                               expected_algorithm=manifest.encryption.algorithm, **keys)
    decrypting = _Prefetched(decrypted)
    sink = _TocSink() if spool is None else None
    # The spool's writes (and the plaintext's hash) run on their own thread, overlapping the
    # download, the decryption and the decompression.
    writer = _BackgroundWriter(spool) if spool is not None else None
    plain: _Digesting | _BackgroundWriter
    if writer is None:
        plain = _Digesting(_decompress(decrypting, manifest.compression))
        plaintext: Iterable[bytes] = plain
    else:
        plain = writer
        plaintext = _decompress(decrypting, manifest.compression)
    toc: Toc | None = None
    try:
        try:
            for chunk in plaintext:
                if sink is not None:
                    sink.write(chunk)
                else:
                    assert writer is not None  # no TOC sink: the plaintext goes to the spool
                    writer.write(chunk)
        except EncryptionError as exc:
            if _is_key_unavailable(exc):
                if recovery_key_pem is None:
                    raise EncryptionError(f"{one_line(exc)}. {RECOVERY_KEY_HINT}") from exc
                raise
            problems.append(f"{exc} (in {body_key})")
        except IntegrityError as exc:
            problems.append(f"{exc} (in {body_key})")
        except StoreError:
            raise
        # Whatever happened above, hash the rest of the ciphertext so the message can say
        # whether the bytes differ from the manifest (once the decryption has let go of it).
        decrypting.close()
        for _ in cipher_iter:
            pass
        if writer is not None:
            writer.finish()  # every byte written (or the disk's error, e.g. ENOSPC, raised)
        if sink is not None:
            try:
                sink.finish()  # pg_restore itself must read the archive
                toc = sink.toc.finish()
            except IntegrityError as exc:
                if not problems:
                    problems.append(str(exc))
            sink = None
    finally:
        decrypting.close()
        if sink is not None:
            sink.close()
        if writer is not None:
            writer.stop()

    result.ciphertext_sha256 = cipher.hexdigest()
    if cipher.bytes != manifest.ciphertext.bytes:
        problems.append(f"read {cipher.bytes} bytes of {body_key}, the manifest says "
                        f"{manifest.ciphertext.bytes}")
    if result.ciphertext_sha256 != manifest.ciphertext.sha256:
        problems.append(f"ciphertext SHA-256 of {body_key} differs: got "
                        f"{result.ciphertext_sha256}, the manifest says "
                        f"{manifest.ciphertext.sha256}")
    if problems:
        return
    result.plaintext_bytes = plain.bytes
    result.plaintext_sha256 = plain.hexdigest()
    if (plain.bytes, result.plaintext_sha256) != (manifest.plaintext.bytes,
                                                  manifest.plaintext.sha256):
        problems.append(f"plaintext of {body_key} differs: got {plain.bytes} bytes with SHA-256 "
                        f"{result.plaintext_sha256}, the manifest says "
                        f"{manifest.plaintext.bytes} bytes with {manifest.plaintext.sha256}")
        return
    if manifest.source != "database":
        from vo2dr.sources import check_contents

        assert spool is not None  # _verify gives an application source a spool
        spool.flush()
        problems.extend(f"{p} ({body_key})"
                        for p in check_contents(manifest.source, manifest.contents, spool))
        return
    if spool is not None:
        spool.flush()
        try:
            toc_listing(spool.name)  # pg_restore itself must read the archive
            toc = read_toc(spool.name)
        except IntegrityError as exc:
            problems.append(str(exc))
            return
    assert toc is not None
    table_problems = compare_tables(manifest, toc)
    problems.extend(f"{p} ({body_key})" for p in table_problems)
    _, data = archive_tables(toc)
    result.tables = sorted(data)


def _is_key_unavailable(exc: EncryptionError) -> bool:
    """True when decryption failed for want of a key (KMS unreachable or denied), not because
    the bytes are wrong: that is an outage to report as such, not a corrupt copy."""
    text = str(exc).lower()
    return any(s in text for s in (
        "could not connect", "connect timeout", "timed out", "connection refused",
        "accessdenied", "access denied", "no decryption key", "cannot set up decryption keys",
        "not the one this backup", "not the configured", "disabledexception",
        "kmsinvalidstate", "not authorized", "unable to locate credentials",
    )) and "tag mismatch" not in text and "signature" not in text


def spool_file(directory: str | os.PathLike[str] | None = None) -> Path:
    """A new private temporary directory's ``backup.dump`` path (caller removes the dir)."""
    base = Path(tempfile.mkdtemp(prefix="vo2dr-spool-", dir=directory))
    os.chmod(base, 0o700)
    return base / "backup.dump"
