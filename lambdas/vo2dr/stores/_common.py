"""Helpers shared by the store implementations: re-chunking a byte stream into fixed-size
parts, a bounded window of concurrent part uploads, and the abort-and-reraise discipline.

Nothing here talks to a cloud; the store modules translate their SDK's errors themselves.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

log = logging.getLogger("vo2dr.stores")

# After an endpoint stopped answering (a request failed at the network level after its own
# retries), the store's later requests fail at once for this long instead of each paying its
# own retries again: a run that lists many prefixes or writes several objects then gives up on
# a dead store within one request's bound (about 30 s), not minutes.
DEAD_FOR = 60.0


class Unreachable:
    """A store's retry budget across requests: :meth:`trip` records a network-level failure,
    :meth:`check` then fails every request at once for :data:`DEAD_FOR` seconds."""

    def __init__(self, store: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._cause = ""
        self._since = 0.0

    def trip(self, cause: str) -> None:
        with self._lock:
            if not self._cause or self._clock() - self._since >= DEAD_FOR:
                self._cause, self._since = cause, self._clock()

    def check(self, where: str) -> None:
        from vo2dr.exceptions import TransientStoreError

        with self._lock:
            dead = self._cause and self._clock() - self._since < DEAD_FOR
            cause = self._cause
        if dead:
            raise TransientStoreError(
                f"{where}: not tried: {self.store} stopped answering earlier in this run "
                f"({cause})", store=self.store)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


_METADATA_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """User metadata every store can hold alike: keys are lowercase identifiers (Azure requires
    C# identifiers and S3 lowercases keys), values printable ASCII (HTTP headers)."""
    out = dict(metadata or {})
    for key, value in out.items():
        if not _METADATA_KEY.match(key):
            raise ValueError(f"metadata key {key!r}: use a lowercase identifier like backup_id")
        if not isinstance(value, str) or not value.isascii() or not value.isprintable():
            raise ValueError(f"metadata {key!r}: the value must be printable ASCII text")
    return out


def iter_parts(chunks: Iterable[bytes], size: int | Callable[[int], int]) -> Iterator[bytes]:
    """Re-chunk ``chunks`` into parts of exactly ``size`` bytes; the last part may be shorter.

    ``size`` may be a function of the 1-based part number, so a store can grow its parts for
    very large objects (S3 allows at most 10,000 parts). Yields at least one part: a single
    ``b""`` when the stream is empty, and never an empty part otherwise. Memory: at most one
    part plus one incoming chunk is buffered. Exceptions from ``chunks`` propagate unchanged.
    """
    number = 1
    want = size(number) if callable(size) else size
    buf = bytearray()
    yielded = False
    for chunk in chunks:
        if not chunk:
            continue
        buf += chunk
        while len(buf) >= want:
            part = bytes(memoryview(buf)[:want])
            del buf[:want]
            yielded = True
            yield part
            number += 1
            want = size(number) if callable(size) else size
    if buf or not yielded:
        yield bytes(buf)


def peek_small(chunks: Iterable[bytes], limit: int) -> tuple[bytes | None, Iterator[bytes]]:
    """Read ``chunks`` up to ``limit`` bytes to learn whether the whole stream is small.

    Returns ``(body, empty)`` when the stream ended within ``limit`` bytes: ``body`` is all of
    it, to be sent in one request. Otherwise ``(None, stream)``: ``stream`` yields the chunks
    already read, then the rest, unchanged, for a chunked upload. Memory: at most ``limit``
    bytes plus one incoming chunk. Exceptions from ``chunks`` propagate unchanged.
    """
    source = iter(chunks)
    head: list[bytes] = []
    size = 0
    for chunk in source:
        if not chunk:
            continue
        head.append(bytes(chunk))  # no copy of bytes; a view of a reused buffer is copied
        size += len(chunk)
        if size > limit:
            return None, _replay(head, source)
    return b"".join(head), iter(())


def _replay(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks read ahead, then the rest, without keeping a reference to any chunk sent."""
    while head:
        yield head.pop(0)
    yield from rest


class UploadWindow:
    """Run part uploads on a small thread pool with at most ``max_in_flight`` at once.

    ``submit`` blocks while the window is full, so the producer (reading the caller's iterator)
    never gets more than ``max_in_flight`` parts ahead: memory stays at
    ``(max_in_flight + 1) * part_size``. The first failed part is re-raised by the next
    ``submit`` or by ``results``. ``close`` cancels queued work and waits for running parts so
    an abort never races an upload still in flight.
    """

    def __init__(self, max_in_flight: int, name: str) -> None:
        self._max = max(1, max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=self._max, thread_name_prefix=name)
        self._pending: set[Future] = set()
        self._done: list[Any] = []

    def _reap(self, block: bool) -> None:
        if not self._pending:
            return
        done, self._pending = wait(
            self._pending, timeout=None if block else 0, return_when=FIRST_COMPLETED
        )
        for fut in done:
            self._done.append(fut.result())  # raises the part's (already translated) error

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._reap(block=False)
        while len(self._pending) >= self._max:
            self._reap(block=True)
        self._pending.add(self._pool.submit(fn, *args))

    def results(self) -> list[Any]:
        """Wait for every part; the results in completion order (callers sort them)."""
        while self._pending:
            self._reap(block=True)
        return self._done

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> UploadWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def best_effort(what: str, fn: Callable[[], Any]) -> None:
    """Run a cleanup step (an abort) whose failure must not mask the error being raised."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - cleanup must never replace the real error
        log.warning("%s failed (left to the bucket's lifecycle cleanup): %s", what, exc)
