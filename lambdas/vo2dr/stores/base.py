"""The one storage interface every cloud implements.

Every method's contract is stated here; the conformance suite in
``tests/integration/stores/test_conformance.py`` checks it for S3, GCS and Azure alike. Backend
errors never leave a store: they are raised as :mod:`vo2dr.exceptions` types with
``from exc``, so callers handle one set of exceptions whatever the cloud.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ObjectInfo:
    """What a store reports about one object."""

    key: str
    size: int
    last_modified: datetime
    # The store's own checksum, in the store's notation (e.g. "sha256:<b64>-<parts>",
    # "crc32c:<b64>", "md5:<b64>"); empty where the store reports none.
    checksum: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectLock:
    """An object's own retention, set in the request that creates it, in place of the store's
    default lock (the S3 bucket's default retention, the GCS store's configured retention).
    The intraday tier uses it: its objects are kept, and locked, for a shorter window than the
    default lock, which lasts as long as the daily tier is kept."""

    until: datetime  # retain-until time, UTC
    compliance: bool  # True: nobody may shorten or remove it; False: governance / Unlocked


@dataclass(frozen=True)
class PutResult:
    """A completed, store-verified upload."""

    key: str
    size: int
    # Hex SHA-256 of exactly the bytes the store accepted, where the store computes one anyway
    # (put_bytes; S3's single PutObject, whose checksum it is). Empty after a streamed body:
    # its caller (the pipeline) already hashed the very same immutable bytes, and a second
    # SHA-256 per destination (issue 19) cost as much CPU as encryption; the byte count and
    # ``checksum`` (which the *service* verified against the bytes it received) then prove
    # the transport, and the pipeline compares the size with its own.
    sha256: str
    checksum: str  # the store-side checksum it reported and that matched the local one


class BackupStore(abc.ABC):
    """A bucket or container holding the write-once backup layout.

    ``name`` is the store's short name (``s3``, ``gcs``, ``azure``) used in manifests, CLI
    flags and messages.
    """

    name: str

    @abc.abstractmethod
    def put_stream(self, key: str, chunks: Iterable[bytes], *,
                   metadata: dict[str, str] | None = None,
                   lock: ObjectLock | None = None) -> PutResult:
        """Upload ``chunks`` to ``key`` as one object, streaming with bounded memory
        (multipart, resumable or staged blocks; at most a few part buffers in memory). A body
        no larger than one part goes in a single request (S3 PutObject, a GCS multipart
        upload, an Azure Put Blob), with the same precondition and checksum.

        Write-once: raises :class:`ObjectExists` if ``key`` exists, and never replaces it.
        The store's own checksum of what it received is compared with one computed locally
        on the fly (the cheapest one the service verifies); a mismatch raises
        :class:`IntegrityError`. The result's ``sha256`` may be empty (see :class:`PutResult`).
        If ``chunks`` raises, or the upload fails, the incomplete upload is aborted (or left
        to the bucket's incomplete-upload lifecycle when the abort itself cannot reach the
        store), no object becomes visible under ``key``, and the error propagates: the
        iterator's own exception unchanged, store failures as :class:`StoreError`.
        Transient failures are retried with backoff before giving up.
        ``metadata`` keys are lowercase identifiers (``backup_id``) and values printable ASCII,
        the common ground of the three clouds (Azure only accepts C# identifiers as keys);
        anything else raises ``ValueError`` before any byte is sent.
        ``lock`` (the intraday tier) is the object's own retention, sent with the request that
        creates the object, so the object is never visible without it; stores whose lock is
        per container (Azure) keep such keys where the container's policy is that lock.
        """

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, *,
                  metadata: dict[str, str] | None = None,
                  lock: ObjectLock | None = None) -> PutResult:
        """Upload a small object (a manifest) in one request. Write-once like put_stream."""

    @abc.abstractmethod
    def get_stream(self, key: str, chunk_size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        """Yield the object's bytes in order, in chunks of at most ``chunk_size``, without
        holding the whole object in memory. Raises :class:`ObjectNotFound` if absent (before
        the first chunk), :class:`StoreError` on failure mid-stream."""

    # True when get_range is implemented: a large object is then read as ranges in parallel
    # (vo2dr.stores.ranged.read_ranges).
    supports_ranges: bool = False

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of ``key`` from byte ``start`` (fewer only where the object ends
        first; empty at or past its end), in one request. Raises :class:`ObjectNotFound` if
        absent, :class:`StoreError` on failure. Stores that cannot read ranges raise
        ``NotImplementedError`` and leave :attr:`supports_ranges` false."""
        raise NotImplementedError(f"{self.name} reads whole objects only")

    def get_bytes(self, key: str) -> bytes:
        """The whole object; for small objects such as manifests."""
        return b"".join(self.get_stream(key))

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, time and store checksum of ``key``; :class:`ObjectNotFound` if absent."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in lexicographic key order,
        paging as needed. An empty prefix lists the whole store."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``. For retention tooling and tests only: the backup job never deletes,
        and its cloud identity is not allowed to. Deleting a missing key is not an error.
        Object lock or a retention policy may refuse it: :class:`AccessDenied`."""
