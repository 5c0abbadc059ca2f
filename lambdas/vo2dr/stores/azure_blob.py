"""Azure Blob Storage: staged blocks committed once, write-once, MD5-checked.

A body up to ``single_max`` (one block) goes in one Put Blob request with ``If-None-Match: *``
and a Content-MD5 the service checks; the service stores the blob's MD5 and returns it
(``_put_single``). Larger bodies are staged as blocks:
each ``BLOCK_SIZE`` block is staged with ``validate_content="md5"`` (the service checks the
block's Content-MD5 on arrival) and at most ``MAX_IN_FLIGHT`` blocks travel at once. The block
list is committed with ``If-None-Match: *`` (``MatchConditions.IfMissing``), so an existing
blob is never replaced, and with the whole blob's MD5 as its Content-MD5 property, which
``stat`` reports and ``put_stream`` checks, together with the size, after the commit.

Abort: nothing is visible until the commit. Uncommitted blocks cannot be deleted by the
client; the service garbage-collects them after 7 days. Block ids carry a per-upload random
token so a retry never mixes in blocks from an earlier attempt.

Memory per upload: ``(MAX_IN_FLIGHT + 1) * BLOCK_SIZE`` = 32 MiB with the defaults.

Intraday tier: an Azure immutability policy belongs to a container and locks every blob
version in it, so blobs of ``database/<env>/intraday/`` live in a container of their own,
``<container>-intraday`` (``layout.intraday_container``), whose policy is the intraday window
(infra/azure/storage.py); every other key lives in the main container under the daily lock. The
store routes each key and lists both, so callers see one key space. Why not a per-blob
(version-level) policy in the main container: setting one needs the data action
``blobs/immutableStorage/runAsSuperUser/action``, the same one that deletes unlocked policies
and extends any, which would let a stolen writer identity strip staging's locks or pin every
production blob for decades. With two containers the writer keeps create-only rights, and the
intraday lock is a container policy, locked in production like the main one.

Credentials: ``AZURE_STORAGE_CONNECTION_STRING`` when set (Azurite, or a deliberate key),
otherwise Microsoft Entra ID through ``DefaultAzureCredential`` (managed identity, workload
identity federation, developer login). The SDK retries transient errors with exponential
backoff (``ExponentialRetry``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import os
import uuid
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlparse

import azure.core.exceptions as aexc
from azure.core import MatchConditions
from azure.storage.blob import (
    BlobBlock,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    ExponentialRetry,
)

from vo2dr import layout
from vo2dr.exceptions import (
    AccessDenied,
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    StoreError,
    TransientStoreError,
    one_line,
)
from vo2dr.stores._common import (
    Unreachable,
    UploadWindow,
    b64,
    check_metadata,
    iter_parts,
    peek_small,
)
from vo2dr.stores.base import BackupStore, ObjectInfo, ObjectLock, PutResult
from vo2dr.stores.ranged import PART_SIZE

MiB = 1024 * 1024
BLOCK_SIZE = 8 * MiB  # 50,000 blocks x 8 MiB = 390 GiB per blob
MAX_BLOCKS = 50_000
MAX_IN_FLIGHT = 3
# A dead endpoint must fail a request within about 30 s (3 attempts of at most 5 s to connect
# and 8 s without a byte, plus about 4 s of backoff), not minutes.
RETRY_TOTAL = 2  # retries after the first attempt, backoff 1 s + 2^n s with jitter
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 8

_EXISTS_CODES = {"BlobAlreadyExists", "ConditionNotMet"}
_DENIED_CODES = {"AuthorizationFailure", "AuthenticationFailed",
                 "AuthorizationPermissionMismatch", "InsufficientAccountPermissions",
                 "BlobImmutableDueToPolicy", "BlobImmutableDueToLegalHold"}


def _md5(data: bytes = b"") -> Any:
    return hashlib.md5(data, usedforsecurity=False)  # an integrity checksum, as Azure uses it


def intraday_container_url(container_url: str) -> str:
    """The URL (or name) of the intraday container beside ``container_url``."""
    return layout.intraday_container(container_url.rstrip("/"))


def container_name(container_url: str) -> str:
    """The container's name: the last path segment of its URL, or the value itself."""
    path = urlparse(container_url).path if "://" in container_url else container_url
    return path.rstrip("/").rsplit("/", 1)[-1]


def make_container_client(container_url: str, credential: Any = None, *,
                          retry_total: int = RETRY_TOTAL) -> ContainerClient:
    options: dict[str, Any] = {
        "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2,
                                         retry_total=retry_total, random_jitter_range=1),
        "connection_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        # Downloads: one bounded range per request (the SDK's first GET is 32 MiB by default),
        # as large as a restore's ranged part, so each part is one GET: on a 100 MB body, 4 MiB
        # GETs cost Azurite about 3x the CPU of 16 MiB ones (0.55 against 0.19 CPU-s) and this
        # process 0.26 against 0.16 (loaded machine, same run).
        "max_single_get_size": PART_SIZE,
        "max_chunk_get_size": PART_SIZE,
    }
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if credential is None and conn:
        service = BlobServiceClient.from_connection_string(conn, **options)
        return service.get_container_client(container_name(container_url))
    if credential is None:
        # Imported here: with a connection string (Azurite) or a credential passed in (the
        # Lambda's, from vo2dr.stores.credentials) azure-identity and MSAL are not needed.
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return ContainerClient.from_container_url(container_url, credential=credential, **options)


class AzureBlobStore(BackupStore):
    name = "azure"

    def __init__(self, container_url: str, credential: Any = None, *,
                 block_size: int = BLOCK_SIZE, single_max: int | None = None,
                 retry_total: int = RETRY_TOTAL,
                 client: ContainerClient | None = None,
                 intraday_client: ContainerClient | None = None) -> None:
        self._unreachable = Unreachable(self.name)
        if not container_url:
            raise StoreError("azure: no container configured (VO2DR_AZURE_CONTAINER_URL)",
                             store="azure")
        self.container_url = container_url
        self.block_size = block_size
        # Bodies up to this size go in one Put Blob (_put_single), larger ones as blocks.
        self.single_max = single_max if single_max is not None else block_size
        self.list_page_size = 1000
        self._client = client or make_container_client(container_url, credential,
                                                       retry_total=retry_total)
        if intraday_client is None and client is not None:
            intraday_client = ContainerClient.from_container_url(
                intraday_container_url(client.url), credential=client.credential)
        self._intraday = intraday_client or make_container_client(
            intraday_container_url(container_url), credential, retry_total=retry_total)
        self.container = self._client.container_name

    def _for(self, key: str) -> ContainerClient:
        """The container that holds ``key``: intraday keys live in the intraday container."""
        return self._intraday if layout.is_intraday_key(key) else self._client

    def __repr__(self) -> str:
        return f"AzureBlobStore({self.container_url})"

    # -- errors ---------------------------------------------------------------------------

    def _error(self, exc: BaseException, op: str, key: str, writing: bool) -> Exception:
        where = f"azure container {self.container!r} blob {key!r}" if key else \
            f"azure container {self.container!r}"
        code = getattr(exc, "error_code", "") or ""
        code = str(getattr(code, "value", code))  # StorageErrorCode enum -> its wire name
        status = getattr(getattr(exc, "response", None), "status_code", 0) or \
            getattr(exc, "status_code", 0) or 0
        text = f"{where}: {op} failed: {code or type(exc).__name__}: {one_line(exc)}"
        if code == "ContainerNotFound":
            return StoreError(f"azure container {self.container!r} does not exist: {text}",
                              store=self.name, key=key)
        if isinstance(exc, aexc.ResourceNotFoundError) or status == 404:
            return ObjectNotFound(text, store=self.name, key=key)
        if writing and (code in _EXISTS_CODES or status == 412
                        or isinstance(exc, aexc.ResourceModifiedError)):
            return ObjectExists(f"{where} already exists (write-once)", store=self.name, key=key)
        if code == "Md5Mismatch" or code == "InvalidMd5":
            return IntegrityError(f"{text}: the service refused the bytes as corrupted")
        if isinstance(exc, aexc.ClientAuthenticationError) or code in _DENIED_CODES \
                or status in (401, 403):
            return AccessDenied(text, store=self.name, key=key)
        if isinstance(exc, aexc.ServiceRequestError | aexc.ServiceResponseError
                      | ConnectionError | TimeoutError):
            self._unreachable.trip(text)  # after the SDK's own retries
            return TransientStoreError(text, store=self.name, key=key)
        if status in (408, 429) or status >= 500:
            return TransientStoreError(text, store=self.name, key=key)
        return StoreError(text, store=self.name, key=key)

    @contextlib.contextmanager
    def _translating(self, op: str, key: str = "", *, writing: bool = False) -> Iterator[None]:
        self._unreachable.check(f"{self.name} {key}".rstrip())
        try:
            yield
        except (aexc.AzureError, ConnectionError, TimeoutError) as exc:
            raise self._error(exc, op, key, writing) from exc

    # -- writing --------------------------------------------------------------------------

    def _refuse_existing(self, key: str) -> None:
        # Fails early, before any bytes move; the commit's If-None-Match: * is the real
        # (atomic) write-once guarantee.
        with self._translating("get blob properties", key):
            exists = self._for(key).get_blob_client(key).exists()
        if exists:
            raise ObjectExists(f"azure container {self.container!r} blob {key!r} already exists "
                               "(write-once)", store=self.name, key=key)

    def put_bytes(self, key: str, data: bytes, *,
                  metadata: dict[str, str] | None = None,
                  lock: ObjectLock | None = None) -> PutResult:
        metadata = check_metadata(metadata)
        result = self.put_stream(key, [bytes(data)], metadata=metadata, lock=lock)
        return dataclasses.replace(result, sha256=hashlib.sha256(data).hexdigest())

    def put_stream(self, key: str, chunks: Iterable[bytes], *,
                   metadata: dict[str, str] | None = None,
                   lock: ObjectLock | None = None) -> PutResult:
        # ``lock`` is not sent: Azure locks by container (module docstring), and an intraday
        # key, the only kind that carries one, goes to the container whose policy is its lock.
        metadata = check_metadata(metadata)
        self._refuse_existing(key)
        blob = self._for(key).get_blob_client(key)
        body, chunks = peek_small(chunks, self.single_max)
        if body is not None:
            try:
                return self._put_single(blob, key, body, metadata)
            except ObjectExists:
                # The blob was absent a moment ago (_refuse_existing), so either another
                # writer committed it since, or only uncommitted blocks of an earlier, failed
                # upload are there, which Put Blob's If-None-Match: * counts as a blob (Azurite
                # does) while a block list commit does not. The block path tells them apart:
                # its own conditional commit refuses the first and replaces the second.
                chunks = iter([body])
        return self._put_blocks(blob, key, chunks, metadata)

    def _put_blocks(self, blob: Any, key: str, chunks: Iterable[bytes],
                    metadata: dict[str, str]) -> PutResult:
        token = uuid.uuid4().hex[:16]
        # MD5 of the whole blob: Azure keeps it as the blob's Content-MD5, which reads verify
        # (each block's own MD5 is checked by the service on staging). No SHA-256: the caller
        # hashed these very bytes already (PutResult).
        md5 = _md5()
        size = 0
        block_ids: list[str] = []
        with UploadWindow(MAX_IN_FLIGHT, "azure-block") as window:
            for number, block in enumerate(iter_parts(chunks, self.block_size)):
                if number >= MAX_BLOCKS:
                    raise StoreError(f"azure blob {key!r}: more than {MAX_BLOCKS} blocks",
                                     store=self.name, key=key)
                if not block:  # an empty object: commit an empty block list
                    break
                md5.update(block)
                size += len(block)
                block_id = f"{token}-{number:06d}"
                block_ids.append(block_id)
                window.submit(self._stage, blob, key, block_id, block)
                del block
            window.results()
        # Nothing is visible until this commit; on any error above, the staged blocks are
        # left uncommitted and the service discards them after 7 days.
        with self._translating("commit block list", key, writing=True):
            blob.commit_block_list(
                [BlobBlock(block_id=b) for b in block_ids],
                content_settings=ContentSettings(content_type="application/octet-stream",
                                                 content_md5=bytearray(md5.digest())),
                metadata=dict(metadata or {}),
                match_condition=MatchConditions.IfMissing)  # If-None-Match: *
        info = self.stat(key)
        local = f"md5:{b64(md5.digest())}"
        if info.size != size or info.checksum != local:
            raise IntegrityError(f"azure blob {key!r}: Azure reports {info.size} bytes "
                                 f"{info.checksum}, sent {size} bytes {local}")
        return PutResult(key=key, size=size, sha256="", checksum=local)

    def _put_single(self, blob: Any, key: str, data: bytes,
                    metadata: dict[str, str]) -> PutResult:
        """One Put Blob request for a body up to ``single_max``, in place of staging a block
        and committing the list (two requests, and a properties read after): at thousands of
        small snapshot objects that is a third of the requests. ``If-None-Match: *``
        (``overwrite=False``) keeps it write-once. The SDK sends the body's MD5 as Content-MD5,
        which the service checks against the bytes it received (``Md5Mismatch``); for a Put
        Blob the service also computes the blob's own MD5 over those bytes, stores it as the
        blob's Content-MD5 and returns it, so that one MD5 is computed here, once."""
        with self._translating("put blob", key, writing=True):
            resp = blob.upload_blob(
                data, length=len(data), overwrite=False, validate_content=True,
                content_settings=ContentSettings(content_type="application/octet-stream"),
                metadata=dict(metadata or {}))
        stored = resp.get("content_md5")
        if not stored:
            raise IntegrityError(f"azure blob {key!r}: Put Blob returned no Content-MD5, so the "
                                 "upload cannot be verified")
        return PutResult(key=key, size=len(data), sha256="",
                         checksum=f"md5:{b64(bytes(stored))}")

    def _stage(self, blob: Any, key: str, block_id: str, data: bytes) -> None:
        with self._translating(f"stage block {block_id}", key, writing=True):
            blob.stage_block(block_id, data, length=len(data), validate_content="md5")

    # -- reading --------------------------------------------------------------------------

    def get_stream(self, key: str, chunk_size: int = 8 * MiB) -> Iterator[bytes]:
        with self._translating("download", key):
            downloader = self._for(key).download_blob(key, max_concurrency=1)
        return self._read(downloader, key, chunk_size)

    supports_ranges = True

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            with self._translating("download range", key):
                downloader = self._for(key).download_blob(key, offset=start, length=length,
                                                          max_concurrency=1)
                # The SDK's chunks (max_chunk_get_size each) joined once; readall() would
                # copy them through a growing BytesIO and out again (three copies, and a
                # part's size twice over in memory per range in flight).
                return b"".join(downloader.chunks())
        except StoreError as exc:
            if "InvalidRange" in str(exc) or "416" in str(exc):
                return b""  # at or past the end of the object
            raise

    def _read(self, downloader: Any, key: str, chunk_size: int) -> Iterator[bytes]:
        expected = downloader.properties.content_settings.content_md5
        md5 = _md5()
        chunks = downloader.chunks()
        while True:
            with self._translating("download", key):
                chunk = next(chunks, None)
            if chunk is None:
                break
            md5.update(chunk)
            for i in range(0, len(chunk), chunk_size):
                yield chunk[i:i + chunk_size]
        if expected and bytes(expected) != md5.digest():
            raise IntegrityError(f"azure blob {key!r}: downloaded bytes have md5 "
                                 f"{b64(md5.digest())}, Azure reports {b64(bytes(expected))}")

    def stat(self, key: str) -> ObjectInfo:
        with self._translating("get blob properties", key):
            props = self._for(key).get_blob_client(key).get_blob_properties()
        return self._info(props)

    @staticmethod
    def _info(props: Any) -> ObjectInfo:
        md5 = props.content_settings.content_md5
        return ObjectInfo(key=props.name, size=int(props.size), last_modified=props.last_modified,
                          checksum=f"md5:{b64(bytes(md5))}" if md5 else "",
                          metadata=dict(props.metadata or {}))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Both containers' blobs under ``prefix``, merged in key order. A missing intraday
        container holds nothing (a store set up before the tier, or by hand)."""
        sources = []
        if not layout.is_intraday_key(prefix):
            sources.append(self._list(self._client, prefix))
        if layout.may_hold_intraday(prefix):
            sources.append(self._list(self._intraday, prefix, missing_ok=True))
        yield from heapq.merge(*sources, key=lambda info: info.key)

    def _list(self, client: ContainerClient, prefix: str, *,
              missing_ok: bool = False) -> Iterator[ObjectInfo]:
        try:
            with self._translating("list blobs", prefix):
                blobs = client.list_blobs(name_starts_with=prefix or None,
                                          include=["metadata"],
                                          results_per_page=self.list_page_size)
                for props in blobs:
                    yield self._info(props)
        except StoreError as exc:
            if not (missing_ok and "ContainerNotFound" in str(exc)):
                raise

    def delete(self, key: str) -> None:
        try:
            with self._translating("delete blob", key):
                self._for(key).delete_blob(key)
        except ObjectNotFound:
            pass
