"""Amazon S3: multipart upload with SSE-KMS, per-part SHA-256 and write-once completion.

Why a hand-driven multipart upload rather than the transfer manager (``upload_fileobj``):
the store has to prove the object holds exactly the bytes it was given. That needs the part
boundaries and each part's SHA-256 (the composite checksum S3 reports is the SHA-256 of the
concatenated part digests, "-N"), ``IfNoneMatch="*"`` on CompleteMultipartUpload (the atomic
write-once guarantee; s3transfer does not pass it through to the completion call), and the
completion/HEAD response to compare with. ``upload_fileobj`` returns nothing and picks part
boundaries itself. Driving the four calls ourselves keeps all of that explicit, and the
bounded ``UploadWindow`` gives the same few-parts-in-flight concurrency s3transfer would.

The backup writer role may only PutObject/AbortMultipartUpload and list its prefix: it has no
s3:GetObject, so HeadObject answers 403 in AWS. The store therefore never needs a HEAD to
write: the early "already exists?" check tolerates AccessDenied (``IfNoneMatch="*"`` on the
final call is what makes the write atomic write-once, and S3 and moto both honour it), and the
upload is verified against the checksum S3 returns from PutObject / CompleteMultipartUpload
(``ChecksumSHA256``, "<b64>-<parts>" for a composite). Size needs no HEAD either: PutObject's
Content-Length and CompleteMultipartUpload's ``MpuObjectSize`` make S3 itself refuse a size
mismatch, and the composite covers every part's digest. Only when a response carries no
checksum (moto's CompleteMultipartUpload, some S3-compatible servers) does the store fall back
to a HEAD; if that is denied too, the upload is reported unverifiable (``IntegrityError``).

SSE-KMS names the key by its full ARN: the bucket policy refuses any other form of the
``x-amz-server-side-encryption-aws-kms-key-id`` header (it compares it with the key ARN as a
string, so an alias, alias ARN or bare key id is denied). ``VO2DR_KMS_KEY_ID`` should be that
ARN (the Pulumi runtime passes it). A key id or alias is resolved to the ARN once, with
kms:DescribeKey, before the first byte is sent; where DescribeKey is not allowed, only a key
ARN works and anything else is a ``ConfigError`` naming the setting. A value that is no KMS key
reference at all is refused when the store is built.

Memory per upload: at most ``MAX_IN_FLIGHT`` parts being sent plus one being filled and one
of look-ahead, i.e. about ``(MAX_IN_FLIGHT + 2) * PART_SIZE`` = 40 MiB with the defaults
(parts grow only past 8 GiB, see ``part_size_for``).

Object lock: the bucket's default retention (``immutability.lockDays``) locks every object that
does not say otherwise. An upload with an :class:`ObjectLock` (the intraday tier) carries its
own ``ObjectLockMode`` and ``ObjectLockRetainUntilDate`` on PutObject or CreateMultipartUpload:
"If your request to place an object version in a bucket contains an explicit retention mode
and period, those settings override any bucket default settings for that object version"
(S3 User Guide, Object Lock overview, Retention periods), shorter ones included, since the
version has no lock yet to shorten. The writer needs ``s3:PutObjectRetention`` for that; it
can only ever lengthen an existing lock (shortening needs ``s3:BypassGovernanceRetention``,
which no writer holds, and is impossible in compliance mode).

The endpoint comes from ``AWS_ENDPOINT_URL`` (read by botocore itself); retries are
botocore's ``standard`` mode (exponential backoff with jitter, transient errors only).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from vo2dr.exceptions import (
    AccessDenied,
    ConfigError,
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    StoreError,
    TransientStoreError,
)
from vo2dr.stores._common import (
    Unreachable,
    UploadWindow,
    b64,
    best_effort,
    check_metadata,
    iter_parts,
    log,
)
from vo2dr.stores.base import BackupStore, ObjectInfo, ObjectLock, PutResult

MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # S3 minimum is 5 MiB (except the last part)
MAX_PARTS = 10_000
MAX_IN_FLIGHT = 3
# A dead endpoint must fail a request within about 30 s (3 attempts of at most 5 s to connect
# and 10 s without a byte, plus backoff), not minutes: the job then moves on to the other stores.
# 10 s without a byte is far beyond any healthy S3 reply (a part's answer comes once its bytes
# are in), so only a dead or black-holed endpoint hits it.
MAX_ATTEMPTS = 3  # botocore standard mode: total attempts per request, transient errors only
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId",
           "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AccountProblem"}
_KMS_DENIED = {"KMS.DisabledException", "KMS.NotFoundException", "KMS.AccessDeniedException",
               "KMS.KMSInvalidStateException", "KMS.InvalidStateException",
               "KMS.KeyUnavailableException", "AccessDeniedException", "DisabledException",
               "NotFoundException", "KMSInvalidStateException", "KMS.UnrecognizedClientException",
               "KMS.InvalidKeyUsageException"}
_EXISTS = {"PreconditionFailed", "412"}
_INTEGRITY = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}
_TRANSIENT = {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout",
              "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
              "ConditionalRequestConflict", "OperationAborted", "RequestLimitExceeded",
              "KMS.ThrottlingException", "KMS.KMSInternalException"}

# How VO2DR_KMS_KEY_ID may name the key. Only KEY_ARN is sent to S3 as is; the others are
# resolved to it with kms:DescribeKey (see the module docstring).
_ARN_HEAD = r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:"
_KEY_ID = r"(?:mrk-[0-9a-f]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})"
KEY_ARN = re.compile(rf"^{_ARN_HEAD}key/{_KEY_ID}$")
_ALIAS = r"alias/[A-Za-z0-9/_-]+"
_KMS_REFERENCE = re.compile(rf"^(?:{_ARN_HEAD}(?:key/{_KEY_ID}|{_ALIAS})|{_KEY_ID}|{_ALIAS})$")


def part_size_for(number: int, base: int = PART_SIZE) -> int:
    """Part ``number``'s size: ``base`` for the first 1,000 parts, 2x for the next 1,000, ...
    S3 allows 10,000 parts of any size >= 5 MiB, so this reaches 55,000 x base (440 GiB with
    8 MiB) while small and medium backups keep small parts and a small memory footprint."""
    return base * (1 + (number - 1) // 1000)


def make_client(service: str = "s3", *, max_attempts: int = MAX_ATTEMPTS) -> Any:
    """A botocore client with standard-mode retries and bounded timeouts. The endpoint, region
    and credentials come from the environment (AWS_ENDPOINT_URL, the Lambda role, ...)."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=MAX_IN_FLIGHT + 4,
    )
    return boto3.session.Session().client(service, config=config)


class S3Store(BackupStore):
    name = "s3"

    def __init__(self, bucket: str, kms_key_id: str, client: Any = None, *,
                 part_size: int = PART_SIZE, kms_client: Any = None,
                 max_attempts: int = MAX_ATTEMPTS, read_only: bool = False) -> None:
        if not bucket:
            raise StoreError("s3: no bucket configured (VO2DR_S3_BUCKET)", store="s3")
        # Reading needs no KMS key of ours (the body is decrypted client-side; S3 decrypts
        # SSE-KMS for any caller the key allows); only writes name one in the SSE header.
        if not kms_key_id and not read_only:
            raise StoreError("s3: no KMS key configured for SSE-KMS (VO2DR_KMS_KEY_ID)",
                             store="s3")
        if part_size < 5 * MiB:
            raise ValueError("S3 parts must be at least 5 MiB")
        if kms_key_id and not _KMS_REFERENCE.match(kms_key_id):
            raise ConfigError(
                f"VO2DR_KMS_KEY_ID {kms_key_id!r} is not a KMS key reference: set it to the "
                "key's ARN, arn:aws:kms:<region>:<account>:key/<key-id> (Pulumi output "
                "awsKmsKeyArn)")
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        # The full key ARN sent in the SSE header; resolved before the first write if needed.
        self.kms_key_arn = kms_key_id if KEY_ARN.match(kms_key_id) else ""
        self.part_size = part_size
        self.list_page_size = 1000
        self._client = client or make_client(max_attempts=max_attempts)
        self._kms = kms_client
        self._max_attempts = max_attempts
        self._unreachable = Unreachable(self.name)

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket})"

    # -- errors ---------------------------------------------------------------------------

    def _error(self, exc: Exception, op: str, key: str = "", *, writing: bool = False
               ) -> Exception:
        """Translate a botocore error into the project's exceptions (callers ``raise ... from``)."""
        where = f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"
        if isinstance(exc, botocore.exceptions.ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            text = f"{where}: {op} failed: {code} {err.get('Message', '')}".strip()
            if code in _KMS_DENIED:
                return AccessDenied(f"{text} (KMS key {self.kms_key_id} refused)",
                                    store=self.name, key=key)
            if code in _NO_BUCKET:
                return StoreError(f"s3 bucket {self.bucket!r} does not exist: {text}",
                                  store=self.name, key=key)
            if code in _NOT_FOUND:
                return ObjectNotFound(text, store=self.name, key=key)
            if code in _DENIED or status == 403:
                return AccessDenied(text, store=self.name, key=key)
            if writing and (code in _EXISTS or status == 412):
                return ObjectExists(f"{where} already exists (write-once)", store=self.name,
                                    key=key)
            if code in _INTEGRITY:
                return IntegrityError(f"{text}: S3 refused the bytes as corrupted in transit")
            if code in _TRANSIENT or status >= 500 or status == 429:
                return TransientStoreError(text, store=self.name, key=key)
            return StoreError(text, store=self.name, key=key)
        if isinstance(exc, botocore.exceptions.FlexibleChecksumError):
            return IntegrityError(f"{where}: {op}: the bytes do not match S3's checksum: {exc}")
        if isinstance(exc, botocore.exceptions.NoCredentialsError
                      | botocore.exceptions.PartialCredentialsError):
            return AccessDenied(f"{where}: {op} failed: no AWS credentials: {exc}",
                                store=self.name, key=key)
        if isinstance(exc, botocore.exceptions.EndpointConnectionError
                      | botocore.exceptions.ConnectionError
                      | botocore.exceptions.ReadTimeoutError
                      | botocore.exceptions.ConnectTimeoutError
                      | botocore.exceptions.ResponseStreamingError
                      | ConnectionError | TimeoutError):
            text = f"{where}: {op} failed after {self._max_attempts} attempts: {exc}"
            self._unreachable.trip(text)
            return TransientStoreError(text, store=self.name, key=key)
        return StoreError(f"{where}: {op} failed: {type(exc).__name__}: {exc}",
                          store=self.name, key=key)

    def _call(self, op: str, fn: Callable[..., Any], key: str = "", *,
              writing: bool = False, **kwargs: Any) -> Any:
        self._unreachable.check(f"s3://{self.bucket}/{key}")
        try:
            return fn(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                ConnectionError, TimeoutError) as exc:
            raise self._error(exc, op, key, writing=writing) from exc

    # -- writing --------------------------------------------------------------------------

    def _sse(self) -> dict[str, Any]:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_arn,
                "BucketKeyEnabled": True}

    @staticmethod
    def _lock(lock: ObjectLock | None) -> dict[str, Any]:
        """The object's own lock in its creating request; none: the bucket default applies."""
        if lock is None:
            return {}
        return {"ObjectLockMode": "COMPLIANCE" if lock.compliance else "GOVERNANCE",
                "ObjectLockRetainUntilDate": lock.until}

    def _preflight(self, key: str) -> None:
        """Fail before streaming gigabytes: an existing key, or a KMS key that is not Enabled
        (and learn the key's ARN for the SSE header)."""
        if not self.kms_key_id:
            raise ConfigError(f"s3://{self.bucket}/{key}: writing needs VO2DR_KMS_KEY_ID (the "
                              "key ARN for SSE-KMS, Pulumi output awsKmsKeyArn)")
        self._refuse_existing(key)
        self._check_kms_key(key)

    def _refuse_existing(self, key: str) -> None:
        # Fails early; the atomic write-once guarantee is IfNoneMatch="*" on the final call.
        try:
            self._call("HeadObject", self._client.head_object, key, Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return
        except AccessDenied:
            # The backup writer role has no s3:GetObject, so HEAD is 403 whether or not the key
            # exists; the conditional write below still refuses an existing key (412).
            log.debug("s3 HeadObject denied for %s; write-once rests on IfNoneMatch", key)
            return
        raise ObjectExists(f"s3://{self.bucket}/{key} already exists (write-once)",
                           store=self.name, key=key)

    def _check_kms_key(self, key: str) -> None:
        """On AWS, S3 itself refuses a disabled or denied key at CreateMultipartUpload/PutObject
        (mapped to AccessDenied by ``_error``); naming the key state here is clearer, and moto's
        S3 does not consult KMS at all. DescribeKey also turns a key id or alias into the ARN
        the bucket policy requires. A role without kms:DescribeKey skips the state check, which
        is only possible when the setting already is the key ARN."""
        if self._kms is None:
            self._kms = make_client("kms", max_attempts=self._max_attempts)
        try:
            meta = self._kms.describe_key(KeyId=self.kms_key_id)["KeyMetadata"]
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "AccessDeniedException":
                if not self.kms_key_arn:
                    raise ConfigError(
                        f"VO2DR_KMS_KEY_ID {self.kms_key_id!r} is not a key ARN and this role "
                        "may not kms:DescribeKey to resolve it: set it to the key's ARN, "
                        "arn:aws:kms:<region>:<account>:key/<key-id> (the bucket policy "
                        "refuses uploads naming the key any other way)") from exc
                log.debug("no kms:DescribeKey on %s; S3 will check the key", self.kms_key_id)
                return
            raise AccessDenied(
                f"s3://{self.bucket}/{key}: KMS key {self.kms_key_id} unusable: {code}",
                store=self.name, key=key) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, "kms:DescribeKey", key) from exc
        if meta.get("KeyState") != "Enabled":
            raise AccessDenied(
                f"s3://{self.bucket}/{key}: KMS key {self.kms_key_id} is "
                f"{meta.get('KeyState')}, not Enabled", store=self.name, key=key)
        if not self.kms_key_arn:
            self.kms_key_arn = str(meta["Arn"])

    def put_bytes(self, key: str, data: bytes, *,
                  metadata: dict[str, str] | None = None,
                  lock: ObjectLock | None = None) -> PutResult:
        metadata = check_metadata(metadata)
        self._preflight(key)
        return self._put_single(key, bytes(data), metadata, lock)

    def _put_single(self, key: str, data: bytes, metadata: dict[str, str] | None,
                    lock: ObjectLock | None = None) -> PutResult:
        digest = hashlib.sha256(data).digest()
        local = b64(digest)
        # IfNoneMatch="*" makes the write atomic write-once (S3 since 2024, moto 5 too); the
        # ChecksumSHA256 we send is verified by S3 against the bytes it receives (BadDigest).
        resp = self._call(
            "PutObject", self._client.put_object, key, writing=True,
            Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*",
            ChecksumAlgorithm="SHA256", ChecksumSHA256=local,
            Metadata=dict(metadata or {}), **self._sse(), **self._lock(lock))
        reported = resp.get("ChecksumSHA256") or self._stored_checksum(key, len(data))
        if reported != local:
            raise IntegrityError(f"s3://{self.bucket}/{key}: S3 reports SHA-256 "
                                 f"{reported or 'none'}, sent {local}")
        return PutResult(key=key, size=len(data), sha256=digest.hex(),
                         checksum=f"sha256:{reported}")

    def _stored_checksum(self, key: str, size: int) -> str:
        """The fallback when a write response carries no checksum: the object's own SHA-256
        from a HEAD, after checking its size. HEAD is denied to the backup writer role; then
        the upload cannot be verified, and says so (no manifest will name the object)."""
        try:
            info = self.stat(key)
        except AccessDenied as exc:
            raise IntegrityError(
                f"s3://{self.bucket}/{key}: S3 returned no checksum for the upload and "
                "HeadObject is denied, so the copy cannot be verified") from exc
        if info.size != size:
            raise IntegrityError(f"s3://{self.bucket}/{key}: S3 reports {info.size} bytes, "
                                 f"sent {size}")
        return info.checksum.removeprefix("sha256:")

    def put_stream(self, key: str, chunks: Iterable[bytes], *,
                   metadata: dict[str, str] | None = None,
                   lock: ObjectLock | None = None) -> PutResult:
        metadata = check_metadata(metadata)
        self._preflight(key)
        parts = iter_parts(chunks, lambda n: part_size_for(n, self.part_size))
        head = [next(parts)]
        head.append(next(parts, b""))
        if not head[1]:  # smaller than one part: a single PutObject
            return self._put_single(key, head[0], metadata, lock)

        created = self._call(
            "CreateMultipartUpload", self._client.create_multipart_upload, key,
            Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256", ChecksumType="COMPOSITE",
            Metadata=dict(metadata or {}), **self._sse(), **self._lock(lock))
        upload_id = created["UploadId"]
        digests: dict[int, bytes] = {}
        size = 0
        try:
            with UploadWindow(MAX_IN_FLIGHT, "s3-part") as window:
                # The caller's errors come out of this loop unchanged.
                for number, part in enumerate(_chain(head, parts), start=1):
                    if number > MAX_PARTS:
                        raise StoreError(f"s3://{self.bucket}/{key}: more than {MAX_PARTS} "
                                         "parts", store=self.name, key=key)
                    size += len(part)
                    digests[number] = hashlib.sha256(part).digest()
                    window.submit(self._upload_part, key, upload_id, number, part,
                                  digests[number])
                    del part
                done = sorted(window.results(), key=lambda p: p["PartNumber"])
            composite = b64(hashlib.sha256(b"".join(digests[n] for n in sorted(digests)))
                            .digest())
            resp = self._call(
                "CompleteMultipartUpload", self._client.complete_multipart_upload, key,
                writing=True, Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": done}, IfNoneMatch="*", MpuObjectSize=size)
        except BaseException:
            best_effort(f"s3 AbortMultipartUpload {key}", lambda: self._client
                        .abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id))
            raise
        # Compare what S3 says it stored with what we computed over exactly the bytes sent:
        # the composite from CompleteMultipartUpload (size is enforced by S3 through
        # MpuObjectSize), or from a HEAD when the response has none.
        # On a mismatch the object stays (the job may not delete); no manifest will name it.
        expected = f"{composite}-{len(digests)}"
        reported = resp.get("ChecksumSHA256") or self._stored_checksum(key, size)
        if _strip_parts(reported) != composite or ("-" in reported and reported != expected):
            raise IntegrityError(
                f"s3://{self.bucket}/{key}: S3 reports sha256 {reported}, sent {expected} "
                f"({size} bytes)")
        # No SHA-256 of the whole body: the caller hashed these very bytes (PutResult).
        return PutResult(key=key, size=size, sha256="", checksum=f"sha256:{expected}")

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes,
                     digest: bytes) -> dict[str, Any]:
        local = b64(digest)
        resp = self._call(
            "UploadPart", self._client.upload_part, key, Bucket=self.bucket, Key=key,
            UploadId=upload_id, PartNumber=number, Body=data, ChecksumAlgorithm="SHA256",
            ChecksumSHA256=local)
        reported = resp.get("ChecksumSHA256", local)
        if reported != local:
            raise IntegrityError(f"s3://{self.bucket}/{key}: part {number} SHA-256 {reported} "
                                 f"reported, {local} sent")
        return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": local}

    # -- reading --------------------------------------------------------------------------

    def get_stream(self, key: str, chunk_size: int = 8 * MiB) -> Iterator[bytes]:
        resp = self._call("GetObject", self._client.get_object, key, Bucket=self.bucket,
                          Key=key)
        return self._read(resp["Body"], key, chunk_size)

    supports_ranges = True

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            resp = self._call("GetObject", self._client.get_object, key, Bucket=self.bucket,
                              Key=key, Range=f"bytes={start}-{start + length - 1}")
        except StoreError as exc:
            if "InvalidRange" in str(exc):  # at or past the end of the object
                return b""
            raise
        # One read of the whole range (a join of one chunk is that chunk, not a copy).
        return b"".join(self._read(resp["Body"], key, length))

    def _read(self, body: Any, key: str, chunk_size: int) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(chunk_size)
        except Exception as exc:  # urllib3/botocore errors mid-body
            raise self._error(exc, "GetObject (reading body)", key) from exc
        finally:
            body.close()

    def stat(self, key: str) -> ObjectInfo:
        resp = self._call("HeadObject", self._client.head_object, key, Bucket=self.bucket,
                          Key=key, ChecksumMode="ENABLED")
        checksum = resp.get("ChecksumSHA256", "")
        etag = resp.get("ETag", "").strip('"')
        if checksum and "-" not in checksum and resp.get("ChecksumType") == "COMPOSITE" \
                and "-" in etag:
            # moto's HEAD omits the "-<parts>" suffix S3 gives; a multipart ETag carries it.
            checksum = f"{checksum}-{etag.rsplit('-', 1)[1]}"
        return ObjectInfo(key=key, size=int(resp["ContentLength"]),
                          last_modified=resp["LastModified"],
                          checksum=f"sha256:{checksum}" if checksum else "",
                          metadata=dict(resp.get("Metadata") or {}))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._unreachable.check(f"s3://{self.bucket}/{prefix}")
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix,
                                   PaginationConfig={"PageSize": self.list_page_size})
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(key=obj["Key"], size=int(obj["Size"]),
                                     last_modified=obj["LastModified"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error(exc, "ListObjectsV2", prefix) from exc

    def delete(self, key: str) -> None:
        self._call("DeleteObject", self._client.delete_object, key, Bucket=self.bucket, Key=key)


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """The look-ahead parts, then the rest, without keeping a reference to any part sent."""
    while head:
        yield head.pop(0)
    yield from rest


def _strip_parts(checksum: str) -> str:
    return checksum.split("-", 1)[0]
