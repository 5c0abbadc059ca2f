"""Google Cloud Storage: write-once by ``if_generation_match=0``, CRC32C verified by the
service and compared with what it reports.

A body up to ``single_max`` (one chunk) goes in one multipart upload request: the object
resource, carrying our CRC32C, which GCS checks against the bytes before creating the object,
and the bytes; the response is the created object's resource, compared with what was sent.
A larger body is the library's ``BlobWriter`` (a resumable session, one ``CHUNK_SIZE`` request
at a time, each retried and resumed by the library). Its final request carries
``x-goog-hash: crc32c=...`` so GCS refuses to finalize bytes that do not match; the library
then compares the CRC32C in the final response, and we compare CRC32C and size once more from
the object's metadata. Abort: a session that is never finalized never becomes an
object; we also cancel it (DELETE on the session URI). A session that cannot be cancelled
(store unreachable) expires by itself after a week and stores nothing visible; the bucket's
lifecycle and soft-delete settings cover anything else.

Memory per upload: the writer buffers up to one ``CHUNK_SIZE`` plus the incoming chunk, and
the request body is one more ``CHUNK_SIZE`` copy: about 2-3 x 8 MiB = 16-24 MiB.

Retention: with a :class:`Retention` (``VO2DR_GCS_RETENTION_DAYS`` / ``_MODE``, set by the
program), every new object carries an Object Retention Lock, retained until upload time plus
``days``, ``Locked`` in production. It is part of the object's creation request, so no object
is ever visible without it. GCS has no bucket default for it (infra/gcp/storage.py says why the
bucket uses it). An upload with an :class:`ObjectLock` (the intraday tier) carries that
retain-until time and mode instead, in the same creation request.

Endpoint: ``STORAGE_EMULATOR_HOST`` (read by the client itself). With it set we use anonymous
credentials and ``GOOGLE_CLOUD_PROJECT``. Otherwise ``open_store`` passes the credentials
:mod:`vo2dr.stores.credentials` chooses: workload identity federation from AWS when
``VO2DR_GCS_CREDENTIAL_CONFIG`` is set (the Lambda), else Application Default Credentials
(Cloud Run's metadata server, a developer login).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import google.api_core.exceptions as gexc
import google.auth.exceptions
import google_crc32c
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.fileio import BlobWriter
from google.cloud.storage.retry import DEFAULT_RETRY

from vo2dr.exceptions import (
    AccessDenied,
    ConfigError,
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    StoreError,
    TransientStoreError,
)
from vo2dr.stores._common import Unreachable, b64, best_effort, check_metadata, peek_small
from vo2dr.stores.base import BackupStore, ObjectInfo, ObjectLock, PutResult

MiB = 1024 * 1024
CHUNK_SIZE = 8 * MiB  # resumable chunks must be a multiple of 256 KiB
# A body up to one chunk goes in a single multipart request (``single_max``): a resumable
# session would send it in one request after its start request anyway; beyond, the body is
# streamed in chunks with bounded memory.
# A dead endpoint must fail a request within about 30 s, not minutes: retries stop being started
# after RETRY_TIMEOUT, and the last attempt lasts at most one TIMEOUT more.
RETRY_TIMEOUT = 20.0  # seconds of exponential backoff (1 s doubling) per request
TIMEOUT = (5, 10)  # (connect, read) seconds per HTTP request: no byte for 10 s is a dead peer

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_NETWORK = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError, http.client.HTTPException,
            google.auth.exceptions.TransportError, ConnectionError, TimeoutError)


RETENTION_MODES = ("Locked", "Unlocked")


@dataclass(frozen=True)
class Retention:
    """Object Retention Lock for every new object: kept ``days`` from upload, in ``mode``
    (``Locked``: nobody can shorten or remove it; ``Unlocked``: only a holder of
    storage.objects.overrideUnlockedRetention can)."""

    days: int
    mode: str

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ConfigError(f"VO2DR_GCS_RETENTION_DAYS is {self.days}: use a whole number of "
                              "days, at least 1")
        if self.mode not in RETENTION_MODES:
            raise ConfigError(f"VO2DR_GCS_RETENTION_MODE is {self.mode!r}: use "
                              f"{' or '.join(RETENTION_MODES)}")

    @classmethod
    def from_settings(cls, days: str, mode: str) -> Retention | None:
        """From the two settings; ``None`` when both are empty (local runs, the emulator).
        One without the other is a configuration error, never a silent unretained upload."""
        if not days and not mode:
            return None
        if not days or not mode:
            missing = "VO2DR_GCS_RETENTION_DAYS" if not days else "VO2DR_GCS_RETENTION_MODE"
            raise ConfigError(f"{missing} is not set, but its partner is: set both, or neither")
        try:
            return cls(int(days), mode)
        except ValueError as exc:
            raise ConfigError(f"VO2DR_GCS_RETENTION_DAYS is {days!r}: use a whole number of "
                              "days") from exc

    def until(self, now: datetime) -> datetime:
        return now + timedelta(days=self.days)


def make_client(credentials: Any = None) -> storage.Client:
    """``credentials`` from :func:`vo2dr.stores.credentials.gcs_credentials`; ``None`` means
    Application Default Credentials (anonymous against the emulator)."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "vo2max-dr-local"),
                              credentials=credentials or AnonymousCredentials())
    return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
                          credentials=credentials)


class _Kept:
    """A file object that keeps what is written to it, without copying it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(data)
        return len(data)

    def value(self) -> bytes:
        return self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)


class GcsStore(BackupStore):
    name = "gcs"

    def __init__(self, bucket: str, client: storage.Client | None = None, *,
                 chunk_size: int = CHUNK_SIZE, single_max: int | None = None,
                 retry_timeout: float = RETRY_TIMEOUT,
                 credentials: Any = None, retention: Retention | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if not bucket:
            raise StoreError("gcs: no bucket configured (VO2DR_GCS_BUCKET)", store="gcs")
        self._unreachable = Unreachable(self.name)
        if chunk_size % (256 * 1024):
            raise ValueError("GCS resumable chunks must be a multiple of 256 KiB")
        self.bucket_name = bucket
        self.chunk_size = chunk_size
        # Bodies up to this size go in one request (_put_single), larger ones resumable.
        self.single_max = chunk_size if single_max is None else single_max
        self.retention = retention
        self._clock = clock
        self.list_page_size = 1000
        self._retry = DEFAULT_RETRY.with_timeout(retry_timeout)
        try:
            self._client = client or make_client(credentials)
        except google.auth.exceptions.GoogleAuthError as exc:
            raise AccessDenied(f"gs://{bucket}: no usable Google credentials: {exc}",
                               store="gcs") from exc
        self._bucket = self._client.bucket(bucket)

    def __repr__(self) -> str:
        return f"GcsStore(gs://{self.bucket_name})"

    # -- errors ---------------------------------------------------------------------------

    def _error(self, exc: BaseException, op: str, key: str, writing: bool) -> Exception:
        where = f"gs://{self.bucket_name}/{key}" if key else f"gs://{self.bucket_name}"
        text = f"{where}: {op} failed: {type(exc).__name__}: {exc}"
        if isinstance(exc, gexc.RetryError) and exc.cause is not None:
            return self._error(exc.cause, f"{op} (retries exhausted)", key, writing)
        if isinstance(exc, DataCorruption):
            return IntegrityError(f"{where}: {op}: the service's checksum does not match: {exc}")
        status = 0
        if isinstance(exc, gexc.GoogleAPICallError):
            status = int(exc.code or 0)
        elif isinstance(exc, InvalidResponse) and exc.response is not None:
            status = exc.response.status_code
        if status == 404 and writing:
            return StoreError(f"gcs bucket {self.bucket_name!r} does not exist "
                              f"(or the upload session expired): {text}", store=self.name, key=key)
        if status == 404:
            return ObjectNotFound(text, store=self.name, key=key)
        if status == 412 and writing:
            return ObjectExists(f"{where} already exists (write-once)", store=self.name, key=key)
        if status in (401, 403) or isinstance(exc, google.auth.exceptions.DefaultCredentialsError
                                             | google.auth.exceptions.RefreshError):
            return AccessDenied(text, store=self.name, key=key)
        if isinstance(exc, _NETWORK):
            self._unreachable.trip(text)  # after the retry policy's own attempts
            return TransientStoreError(text, store=self.name, key=key)
        if status in _TRANSIENT_STATUS:
            return TransientStoreError(text, store=self.name, key=key)
        return StoreError(text, store=self.name, key=key)

    @contextlib.contextmanager
    def _translating(self, op: str, key: str = "", *, writing: bool = False) -> Iterator[None]:
        self._unreachable.check(f"{self.name} {key}".rstrip())
        try:
            yield
        except (gexc.GoogleAPIError, InvalidResponse, DataCorruption,
                google.auth.exceptions.GoogleAuthError, *_NETWORK) as exc:
            raise self._error(exc, op, key, writing) from exc

    # -- writing --------------------------------------------------------------------------

    def _refuse_existing(self, key: str) -> None:
        # Fails early, before any bytes move. The atomic guarantee is if_generation_match=0 on
        # the upload itself; gcp-storage-emulator ignores that precondition, so against the
        # emulator this check is the only write-once protection.
        with self._translating("get object metadata", key):
            existing = self._bucket.get_blob(key, retry=self._retry, timeout=TIMEOUT)
        if existing is not None:
            raise ObjectExists(f"gs://{self.bucket_name}/{key} already exists (write-once)",
                               store=self.name, key=key)

    def _new_blob(self, key: str, metadata: dict[str, str] | None,
                  chunk_size: int | None = None, lock: ObjectLock | None = None) -> Any:
        """The object to create: its metadata and its retention (the object's own ``lock``,
        else the configured one), all sent in the creation request itself."""
        blob = self._bucket.blob(key, chunk_size=chunk_size)
        blob.metadata = dict(metadata or {})
        if lock is not None:
            retention = blob.retention
            retention.mode = "Locked" if lock.compliance else "Unlocked"
            retention.retain_until_time = lock.until
        elif self.retention is not None:
            retention = blob.retention
            retention.mode = self.retention.mode
            retention.retain_until_time = self.retention.until(self._clock())
        return blob

    def put_bytes(self, key: str, data: bytes, *,
                  metadata: dict[str, str] | None = None,
                  lock: ObjectLock | None = None) -> PutResult:
        metadata = check_metadata(metadata)
        self._refuse_existing(key)
        result = self._put_single(key, bytes(data), metadata, lock)
        return dataclasses.replace(result, sha256=hashlib.sha256(data).hexdigest())

    def _put_single(self, key: str, data: bytes, metadata: dict[str, str],
                    lock: ObjectLock | None) -> PutResult:
        """One multipart upload request (object resource + bytes), for bodies up to
        ``single_max``: a resumable session would take two requests or more (start, then each
        chunk and the finalize), and at thousands of small snapshot objects that doubled the
        connections the service (and the emulator, which stopped accepting them) had to take.
        The request carries ``ifGenerationMatch=0`` (write-once) and our CRC32C in the object
        resource, which GCS checks against the bytes it received before creating the object;
        the created object's resource comes back in the response, so no second request reads
        its metadata."""
        blob = self._new_blob(key, metadata, lock=lock)
        crc = google_crc32c.Checksum(data)
        with self._translating("upload", key, writing=True):
            # A multipart upload; checksum="crc32c" sends our CRC32C for the service to check.
            blob.upload_from_string(data, content_type="application/octet-stream",
                                    if_generation_match=0, checksum="crc32c",
                                    retry=self._retry, timeout=TIMEOUT)
        return self._check(key, blob, len(data), crc)

    def put_stream(self, key: str, chunks: Iterable[bytes], *,
                   metadata: dict[str, str] | None = None,
                   lock: ObjectLock | None = None) -> PutResult:
        metadata = check_metadata(metadata)
        self._refuse_existing(key)
        body, chunks = peek_small(chunks, self.single_max)
        if body is not None:
            return self._put_single(key, body, metadata, lock)
        blob = self._new_blob(key, metadata, self.chunk_size, lock)
        writer = BlobWriter(blob, chunk_size=self.chunk_size, retry=self._retry,
                            if_generation_match=0, checksum="crc32c",
                            content_type="application/octet-stream", timeout=TIMEOUT)
        # CRC32C only: it is the checksum GCS verifies on receipt (the library sends it with
        # the final request) and the cheapest (C, hardware CRC). No MD5 (GCS only reports
        # one, it does not check it against ours) and no SHA-256: the caller hashed these very
        # bytes already (PutResult).
        crc = google_crc32c.Checksum()
        size = 0
        try:
            for chunk in chunks:  # the caller's errors pass through unchanged
                crc.update(chunk)
                size += len(chunk)
                with self._translating("resumable upload", key, writing=True):
                    writer.write(chunk)
            with self._translating("resumable upload (finalize)", key, writing=True):
                writer.close()
        except BaseException:
            # Never finalized, so nothing is visible; cancel the session if the store answers.
            if not writer.closed:
                best_effort(f"gcs cancel resumable upload {key}", writer.terminate)
            raise
        return self._verify(key, size, crc)

    def _verify(self, key: str, size: int, crc: Any) -> PutResult:
        with self._translating("get object metadata", key):
            blob = self._bucket.get_blob(key, retry=self._retry, timeout=TIMEOUT)
        return self._check(key, blob, size, crc)

    def _check(self, key: str, blob: Any, size: int, crc: Any) -> PutResult:
        """The object as GCS reports it (``blob``'s resource) against what was sent."""
        local_crc = b64(crc.digest())
        if blob is None or blob.size != size or blob.crc32c != local_crc:
            got = "nothing" if blob is None else f"{blob.size} bytes crc32c {blob.crc32c}"
            raise IntegrityError(f"gs://{self.bucket_name}/{key}: GCS reports {got}, sent "
                                 f"{size} bytes crc32c {local_crc}")
        return PutResult(key=key, size=size, sha256="", checksum=f"crc32c:{blob.crc32c}")

    # -- reading --------------------------------------------------------------------------

    def get_stream(self, key: str, chunk_size: int = 8 * MiB) -> Iterator[bytes]:
        blob = self._get_blob(key)
        # The reader is pinned to this generation; each read is one ranged GET.
        with self._translating("download", key):
            reader = blob.open("rb", chunk_size=chunk_size, retry=self._retry, raw_download=True,
                               timeout=TIMEOUT)
        return self._read(reader, blob, key, chunk_size)

    supports_ranges = True

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        blob = self._bucket.blob(key)
        try:
            with self._translating("download range", key):
                # single_shot_download: the range's body in one read, not the library's loop
                # of 8 KiB reads (2,000 Python iterations per 16 MiB part), handed to _Kept
                # as is (download_as_bytes would copy it into a BytesIO and out again): on a
                # 100 MB body 0.12 against 0.34 CPU-s here (loaded machine), and no more
                # memory than before (about three parts in flight).
                kept = _Kept()
                blob.download_to_file(kept, start=start, end=start + length - 1,
                                      raw_download=True, checksum=None, retry=self._retry,
                                      timeout=TIMEOUT, single_shot_download=True)
                return kept.value()
        except StoreError as exc:
            if "416" in str(exc) or "Range Not Satisfiable" in str(exc):
                return b""  # at or past the end of the object
            raise

    def _read(self, reader: Any, blob: Any, key: str, chunk_size: int) -> Iterator[bytes]:
        crc = google_crc32c.Checksum()
        with reader:
            while True:
                with self._translating("download", key):
                    chunk = reader.read(chunk_size)
                if not chunk:
                    break
                crc.update(chunk)
                yield chunk
        if blob.crc32c and b64(crc.digest()) != blob.crc32c:
            raise IntegrityError(f"gs://{self.bucket_name}/{key}: downloaded bytes have crc32c "
                                 f"{b64(crc.digest())}, GCS reports {blob.crc32c}")

    def _get_blob(self, key: str) -> Any:
        with self._translating("get object metadata", key):
            blob = self._bucket.get_blob(key, retry=self._retry, timeout=TIMEOUT)
        if blob is None:
            raise ObjectNotFound(f"gs://{self.bucket_name}/{key} does not exist",
                                 store=self.name, key=key)
        return blob

    def stat(self, key: str) -> ObjectInfo:
        blob = self._get_blob(key)
        return self._info(blob)

    @staticmethod
    def _info(blob: Any) -> ObjectInfo:
        return ObjectInfo(key=blob.name, size=int(blob.size or 0), last_modified=blob.updated,
                          checksum=f"crc32c:{blob.crc32c}" if blob.crc32c else "",
                          metadata=dict(blob.metadata or {}))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._translating("list objects", prefix):
            blobs = self._client.list_blobs(self.bucket_name, prefix=prefix or None,
                                            page_size=self.list_page_size, retry=self._retry,
                                            timeout=TIMEOUT)
            for blob in blobs:
                yield self._info(blob)

    def delete(self, key: str) -> None:
        try:
            with self._translating("delete", key):
                self._bucket.delete_blob(key, retry=self._retry, timeout=TIMEOUT)
        except ObjectNotFound:
            pass
