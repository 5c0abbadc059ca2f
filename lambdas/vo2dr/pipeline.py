"""plaintext -> SHA-256 -> zstd (once) -> envelope encryption -> SHA-256 -> every store at once.

One producer (the calling thread) and one uploader thread per destination, each fed by its
own bounded queue of ciphertext chunks. The same immutable ``bytes`` object goes to every
queue, so fan-out copies nothing, and memory is bounded by
``destinations x queue_chunks x chunk size`` plus each store's part buffers, whatever the
database size; nothing is spooled to disk.

Isolation between destinations:

* a destination that fails (its ``put_stream`` raises) is detached: the producer stops
  feeding it and the others carry on;
* a destination whose queue stays full for ``stall_timeout`` seconds is detached too, and its
  chunk iterator raises the next time its uploader asks for data, so its store aborts the
  incomplete upload; it cannot hold the others back for longer than that;
* a destination never sees another's bytes: each reads only its own queue, and its result is
  checked against the producer's own size (and SHA-256, where the store reports one) of the
  ciphertext. The ciphertext is hashed once, here, for every destination: each store proves
  its transport with the checksum its service verifies (S3's per-part SHA-256, GCS's CRC32C,
  Azure's per-block MD5), not with a SHA-256 of its own (``PutResult``).

If the source (pg_dump) or the encryption fails, every upload is aborted (each chunk iterator
raises :class:`PipelineAborted` inside the store, which aborts its multipart / resumable /
block upload) and the error propagates to the caller.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import zstandard

from vo2dr.exceptions import IntegrityError, Vo2drError, one_line
from vo2dr.stores.base import BackupStore, ObjectLock, PutResult
from vo2dr.stores.null import NullStore
from vo2dr.summary import DestinationStatus

# zstd output pieces, and the Encryption SDK frame length the backup uses (backup.py): a piece
# is exactly one frame, handed on without a copy (crypto.ChunkReader). 4 MiB pieces were tried
# (issue 19): encryption CPU the same within noise (0.139 against 0.136 s for 48 MiB), but the
# null-destination backup's peak RSS grew from 107 to 138 MB, so pieces stay at 1 MiB.
CHUNK_SIZE = 1024 * 1024
QUEUE_CHUNKS = 8
STALL_TIMEOUT = 300.0
ZSTD_LEVEL = 3
JOIN_TIMEOUT = 300.0  # after the last chunk: the final parts and the commit of each upload
DETACHED_GRACE = 5.0
_POLL = 0.25
_END = object()
# NullStore moved to vo2dr.stores.null (issue 12); re-exported here for one landing.
__all__ = ["NullStore", "PipelineAborted", "run_pipeline"]


class PipelineAborted(Vo2drError):
    """Raised inside a store's chunk iterator when the backup is abandoned; the store aborts
    the incomplete upload and re-raises it."""


# -- results -------------------------------------------------------------------------------------

@dataclass
class DestinationResult:
    name: str
    status: DestinationStatus = DestinationStatus.PENDING
    key: str = ""
    bytes: int = 0
    sha256: str = ""
    store_checksum: str = ""
    error: str = ""
    seconds: float = 0.0


@dataclass
class PipelineResult:
    plaintext_bytes: int
    plaintext_sha256: str
    compressed_bytes: int
    ciphertext_bytes: int
    ciphertext_sha256: str
    seconds: float
    destinations: dict[str, DestinationResult] = field(default_factory=dict)

    @property
    def all_verified(self) -> bool:
        return bool(self.destinations) and all(
            d.status == DestinationStatus.VERIFIED for d in self.destinations.values())


# Destination errors go into the summary and the manifest: keep them short.
MAX_ERROR_CHARS = 400


def _named(name: str, message: str) -> str:
    """``message`` prefixed with the destination's name, unless it already starts with it."""
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


# -- one uploader per destination ---------------------------------------------------------------

class _Feeder:
    def __init__(self, store: BackupStore, key: str, metadata: dict[str, str] | None,
                 queue_chunks: int, lock: ObjectLock | None = None) -> None:
        self.store = store
        self.key = key
        self.metadata = metadata
        self.lock = lock
        self.queue: queue.Queue = queue.Queue(maxsize=queue_chunks)
        self.detached = threading.Event()  # the producer gave up on this one
        self.abort = threading.Event()  # the whole backup is abandoned
        self.done = threading.Event()
        self.result: PutResult | None = None
        self.error: BaseException | None = None
        self.started = 0.0
        self.finished = 0.0
        self.thread = threading.Thread(target=self._run, name=f"vo2dr-upload-{store.name}",
                                       daemon=True)

    def _chunks(self) -> Iterator[bytes]:
        while True:
            if self.abort.is_set():
                raise PipelineAborted("backup abandoned")
            if self.detached.is_set():
                raise PipelineAborted("destination detached")
            try:
                item = self.queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self) -> None:
        self.started = time.monotonic()
        try:
            self.result = self.store.put_stream(self.key, self._chunks(), metadata=self.metadata,
                                               lock=self.lock)
        except BaseException as exc:  # noqa: BLE001 - recorded and reported per destination
            if self.error is None:  # keep the first reason (e.g. the stall that detached it)
                self.error = exc
        finally:
            self.finished = time.monotonic()
            self.done.set()

    def offer(self, item, stall_timeout: float) -> bool:
        """Queue ``item``; False (and detached) if this destination failed or stalled."""
        deadline = time.monotonic() + stall_timeout
        while not self.done.is_set() and not self.detached.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                if time.monotonic() >= deadline:
                    self.error = TimeoutError(
                        f"stalled: accepted no data for {stall_timeout:.0f}s")
                    self.detached.set()
        self.detached.set()
        return False


# -- the pipeline -------------------------------------------------------------------------------

def compress(chunks: Iterable[bytes], level: int = ZSTD_LEVEL,
             chunk_size: int = CHUNK_SIZE, counter: list[int] | None = None,
             threads: int = 0) -> Iterator[bytes]:
    """One zstd frame, as pieces of ``chunk_size`` bytes (the last one shorter). ``threads``
    > 0 lets zstd compress on that many worker threads of its own (the output is still one
    frame any zstd decompressor reads)."""
    chunker = zstandard.ZstdCompressor(level=level, threads=threads).chunker(
        chunk_size=chunk_size)
    for chunk in chunks:
        for out in chunker.compress(chunk):
            if counter is not None:
                counter[0] += len(out)
            yield out
    for out in chunker.finish():
        if counter is not None:
            counter[0] += len(out)
        yield out


def run_pipeline(plaintext: Iterable[bytes], *, encrypt: Callable[[Iterable[bytes]],
                 Iterator[bytes]], stores: Mapping[str, BackupStore], key: str,
                 metadata: dict[str, str] | None = None,
                 lock: ObjectLock | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 queue_chunks: int = QUEUE_CHUNKS, stall_timeout: float = STALL_TIMEOUT,
                 zstd_level: int = ZSTD_LEVEL, zstd_threads: int = 0) -> PipelineResult:
    """Stream ``plaintext`` through hash, zstd and ``encrypt`` to every store under ``key``.

    Returns each destination's outcome (``verified`` when the store's :class:`PutResult`
    matches the ciphertext's own size, and SHA-256 where the store reports one; the store
    itself compared the service's checksum with its own). ``plaintext`` pieces may be views
    of a reused buffer (vo2dr.dump): each is hashed and compressed before the next is read.
    ``encrypt`` should use :data:`CHUNK_SIZE` frames. Raises the source's or the encryption's
    error (e.g. :class:`DumpError`, :class:`EncryptionError`) after aborting every upload; the
    encryption's first chunk (where KMS is called) is produced before any upload starts.
    ``lock`` is the object's own retention (the intraday tier), passed to every store.
    ``zstd_level`` and ``zstd_threads`` come from the strategy (``vo2max-dr:compression``).
    """
    if not stores:
        raise ValueError("no destinations")
    t0 = time.monotonic()
    plain_hash = hashlib.sha256()
    plain_bytes = [0]
    compressed = [0]

    def hashed(chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            plain_hash.update(chunk)
            plain_bytes[0] += len(chunk)
            yield chunk

    cipher_hash = hashlib.sha256()
    cipher_bytes = 0
    ciphertext = iter(encrypt(compress(hashed(plaintext), zstd_level, CHUNK_SIZE, compressed,
                                              zstd_threads)))
    try:
        first = next(ciphertext, None)  # KMS is asked here, before any upload starts
    except BaseException:
        _close(ciphertext)
        raise

    feeders = {name: _Feeder(store, key, metadata, queue_chunks, lock)
               for name, store in stores.items()}
    for f in feeders.values():
        f.thread.start()
    try:
        chunk = first
        while chunk is not None:
            cipher_hash.update(chunk)
            cipher_bytes += len(chunk)
            for f in feeders.values():
                if not f.detached.is_set():
                    f.offer(chunk, stall_timeout)
            if progress is not None:
                progress(plain_bytes[0], cipher_bytes)
            if all(f.detached.is_set() for f in feeders.values()):
                break  # nobody left to write to: stop reading the dump, report the failures
            chunk = next(ciphertext, None)
        else:
            for f in feeders.values():
                if not f.detached.is_set():
                    f.offer(_END, stall_timeout)
    except BaseException:
        for f in feeders.values():
            f.abort.set()
        _join(feeders.values())
        _close(ciphertext)
        raise
    _close(ciphertext)  # a no-op when exhausted; stops the source if every destination failed
    _join(feeders.values(), max(JOIN_TIMEOUT, stall_timeout))

    cipher_hex = cipher_hash.hexdigest()
    result = PipelineResult(
        plaintext_bytes=plain_bytes[0], plaintext_sha256=plain_hash.hexdigest(),
        compressed_bytes=compressed[0], ciphertext_bytes=cipher_bytes,
        ciphertext_sha256=cipher_hex, seconds=time.monotonic() - t0)
    for name, f in feeders.items():
        result.destinations[name] = _outcome(name, f, key, cipher_bytes, cipher_hex)
    return result


def _outcome(name: str, f: _Feeder, key: str, size: int, sha256: str) -> DestinationResult:
    d = DestinationResult(name=name, key=key,
                          seconds=round((f.finished or time.monotonic()) - f.started, 3))
    if not f.done.is_set():
        reason = one_line(f.error, MAX_ERROR_CHARS) if f.error else "no reason"
        d.status = DestinationStatus.FAILED
        d.error = _named(name, f"upload did not finish ({reason})")
        return d
    if f.error is not None or f.result is None:
        d.status = DestinationStatus.FAILED
        d.error = _named(name, one_line(f.error, MAX_ERROR_CHARS) if f.error else "no result")
        return d
    r = f.result
    d.bytes, d.sha256, d.store_checksum = r.size, r.sha256, r.checksum
    # A store hands back the SHA-256 of a streamed body only where it computes one anyway
    # (PutResult): the bytes it took from its queue are the very objects hashed above, and
    # its size plus the checksum the service verified on receipt prove they arrived whole.
    if r.size != size or (r.sha256 and r.sha256 != sha256):
        d.status = DestinationStatus.FAILED
        d.error = (f"{name}: {IntegrityError.__name__}: the store holds {r.size} bytes "
                   f"sha256 {r.sha256[:16] or '(not computed)'}…, the pipeline sent {size} "
                   f"bytes sha256 {sha256[:16]}…")
        return d
    d.sha256 = sha256
    d.status = DestinationStatus.VERIFIED
    return d


def _join(feeders: Iterable[_Feeder], timeout: float = JOIN_TIMEOUT) -> None:
    """Wait for the uploaders to finish their uploads (or their aborts). A detached one gets
    only a short grace period: its result is discarded and, if it is stuck in a network call,
    waiting for it would let it hold the others back after all (it is a daemon thread, and
    raises PipelineAborted as soon as it asks for more data)."""
    deadline = time.monotonic() + timeout
    grace = time.monotonic() + DETACHED_GRACE
    for f in feeders:
        until = grace if f.detached.is_set() else deadline
        f.thread.join(timeout=max(0.0, until - time.monotonic()))


def _close(it) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()
