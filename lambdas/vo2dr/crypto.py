"""Envelope encryption of backup bodies with the AWS Encryption SDK.

Each backup gets a fresh data key (the SDK's, per message). That data key is wrapped twice,
in the same message header:

* by the AWS KMS key (``VO2DR_KMS_KEY_ID``): the everyday way back in;
* by the offline RSA recovery public key (``VO2DR_RECOVERY_PUBLIC_KEY``, RSA-OAEP-SHA256): the
  way back in when AWS itself is unreachable. Its private half lives offline, never in a cloud.

So any one copy, in any cloud, can be decrypted by either key alone. Without a KMS key (the
GCP standby runs while AWS may be down, and has no AWS key) the data key is wrapped by the
recovery public key only: the copy is then decryptable with the recovery private key alone,
and the manifest's ``encryption.kms_key_arn`` is empty. The encryption context
(``environment``, ``data_class``, ``backup_id``) is bound into the message, so a body cannot
be passed off as another backup's. The message is framed and streamed both ways: memory is
bounded by a few frames whatever the size of the database.

Every SDK, botocore and cryptography failure leaves this module as :class:`EncryptionError`
with a one-line cause.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vo2dr.exceptions import EncryptionError

if TYPE_CHECKING:
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

# The AWS Encryption SDK (and the botocore it pulls in) is imported on first use, not with this
# module: commands that only read key ids (status, list) or never decrypt do not pay for it.

FORMAT = "aws-encryption-sdk"
# The suite new messages are written with: AES-256-GCM with key commitment (a message decrypts
# under one data key only), without the SDK's per-message ECDSA P-384 signature. That signature
# is made with a key pair generated for the message and named in its own header, so it never
# proved who wrote a message (anyone can make a new, validly signed one to the public recovery
# key); what it stopped, a holder of one message's data key re-encrypting its frames, the
# signed manifest stops too: it pins the body's ciphertext SHA-256 (and the index pins each
# content object's), and every reader checks it before any plaintext counts
# (docs/backup-authenticity.md). Signing cost the pipeline a SHA-384 of every ciphertext byte
# and an ECDSA signature per message on write, and the same hash plus a verification on read.
ALGORITHM_NAME = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
# The suite of every message written before (the SDK's default): its backups keep restoring.
SIGNING_ALGORITHM_NAME = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
# Exactly the suites vo2dr has ever written: a message naming any other (a non-committing
# one, say) is refused before the SDK reads further or asks KMS for a key.
READABLE_ALGORITHMS = (ALGORITHM_NAME, SIGNING_ALGORITHM_NAME)
# Plaintext bytes per authenticated frame. Decryption holds one frame in memory before it
# releases its plaintext, so this bounds restore memory too.
FRAME_LENGTH = 1024 * 1024
RECOVERY_PROVIDER_ID = "vo2dr-recovery"
KMS_PROVIDER_ID = "aws-kms"
MIN_RSA_BITS = 3072
# Two data keys per message (KMS + recovery); refuse messages crafted with many more.
MAX_ENCRYPTED_DATA_KEYS = 4

# The SDK logs a traceback for every KMS refusal before raising; we re-raise each failure as
# EncryptionError carrying the cause, so its own log lines would only duplicate it (and turn
# the CLI's one-line error into a traceback on stderr).
_SDK_LOG = logging.getLogger("aws_encryption_sdk")
if _SDK_LOG.level == logging.NOTSET:
    _SDK_LOG.setLevel(logging.CRITICAL)


@functools.cache
def _client() -> Any:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
        max_encrypted_data_keys=MAX_ENCRYPTED_DATA_KEYS,
    )


def warm_up() -> None:
    """Import the Encryption SDK and build its client now (about 0.4 CPU-s with boto3, which it
    imports): a restore calls this on a thread of its own while it finds the backup and checks
    the target, so the decryption does not start with it."""
    import aws_encryption_sdk.key_providers.kms  # noqa: F401 - what _kms_provider imports

    _client()
    _sdk_errors()


def _algorithm() -> Any:
    from aws_encryption_sdk.identifiers import Algorithm

    return Algorithm[ALGORITHM_NAME]


@functools.cache
def _sdk_errors() -> tuple[type[BaseException], ...]:
    import botocore.exceptions
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
    from cryptography.exceptions import InvalidSignature, InvalidTag

    return (AWSEncryptionSDKClientError, botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError, InvalidTag, InvalidSignature)


def _kms_provider(key_id: str, botocore_session: Any = None) -> Any:
    from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider

    kwargs: dict[str, Any] = {"key_ids": [key_id]}
    if botocore_session is not None:
        kwargs["botocore_session"] = botocore_session
    return StrictAwsKmsMasterKeyProvider(**kwargs)


def _cause(exc: BaseException) -> str:
    """One line: the outermost message, plus the root cause (e.g. the botocore error that says
    what KMS answered: DisabledException, AccessDeniedException, connection refused)."""
    chain = []
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__

    import botocore.exceptions
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
    from cryptography.exceptions import InvalidTag

    def text(e: BaseException) -> str:
        if isinstance(e, botocore.exceptions.ClientError):
            err = e.response.get("Error", {})
            code, message = err.get("Code", ""), err.get("Message", "")
            raw = f"{message} {e}"
            if "<Code>" in raw or "<Message>" in raw:  # an XML body botocore did not parse
                found_code = re.search(r"<Code>(.*?)</Code>", raw)
                found = re.search(r"<Message>(.*?)</Message>", raw)
                code = found_code.group(1) if found_code else code
                message = found.group(1) if found else ""
            op = getattr(e, "operation_name", "") or "KMS"
            return f"{op} refused: {code} {message}".strip()
        if isinstance(e, InvalidTag):
            return "authentication tag mismatch (ciphertext altered, truncated or wrong key)"
        if isinstance(e, AWSEncryptionSDKClientError) and e.args:
            return str(e.args[0])
        first = str(e).strip().splitlines()
        return first[0] if first else type(e).__name__

    def text_line(e: BaseException) -> str:
        return " ".join(text(e).split())

    outer, root = text_line(chain[0]), text_line(chain[-1])
    line = outer if root == outer else f"{outer} ({root})"
    return line[:400]


# -- keys ---------------------------------------------------------------------------------------

def _load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise EncryptionError(f"recovery public key is not a PEM public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise EncryptionError("recovery public key must be an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise EncryptionError(
            f"recovery public key is RSA-{key.key_size}: use at least RSA-{MIN_RSA_BITS}")
    return key


def _load_private_key(pem: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        raise EncryptionError(f"recovery private key cannot be loaded: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EncryptionError("recovery private key must be an RSA key")
    return key


def _fingerprint(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def recovery_key_id(public_key_pem: bytes) -> str:
    """The recovery key's id: hex SHA-256 of its DER SubjectPublicKeyInfo."""
    return _fingerprint(_load_public_key(public_key_pem))


def recovery_key_id_from_private(private_key_pem: bytes, password: bytes | None = None) -> str:
    """The id of the public half of a recovery private key (to match a manifest)."""
    return _fingerprint(_load_private_key(private_key_pem, password).public_key())


def _recovery_master_key(key_id: str, pem: bytes, private: bool,
                         password: bytes | None = None) -> RawMasterKey:
    from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

    key_type = EncryptionKeyType.PRIVATE if private else EncryptionKeyType.PUBLIC
    return RawMasterKey(
        provider_id=RECOVERY_PROVIDER_ID,
        key_id=key_id.encode(),
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
            wrapping_key=pem,
            wrapping_key_type=key_type,
            password=password,
        ),
    )


def generate_recovery_key(bits: int = 4096) -> tuple[bytes, bytes]:
    """A new ``(private_pem, public_pem)`` recovery key pair (for tests, the demo and the
    runbook; production keys are made offline)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem, public_pem


# -- a file-like view of an iterator of chunks ----------------------------------------------------

class ChunkReader:
    """``read(n)`` over an iterable of byte chunks, returning exactly ``n`` bytes until the end.

    The SDK treats a short read as the end of the source, so this must never return short
    early. Holds at most one input chunk plus ``n`` bytes. A chunk of exactly ``n`` bytes is
    handed on as it is (the pipeline's zstd pieces are exactly one encryption frame), and
    any other read copies each byte once."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._parts: deque[bytes | memoryview] = deque()
        self._size = 0
        self._eof = False

    def _fill(self, n: int | None) -> None:
        while (n is None or self._size < n) and not self._eof:
            try:
                chunk = next(self._it)
            except StopIteration:
                self._eof = True
                break
            if chunk:
                self._parts.append(chunk)
                self._size += len(chunk)

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            self._fill(None)
            whole = b"".join(self._parts)
            self._parts.clear()
            self._size = 0
            return whole
        self._fill(n)
        parts = self._parts
        if parts and len(parts[0]) == n and isinstance(parts[0], bytes):
            self._size -= n
            return parts.popleft()  # type: ignore[return-value]
        out: list[bytes | memoryview] = []
        need = n
        while need and parts:
            part = parts[0]
            if len(part) <= need:
                out.append(parts.popleft())
                need -= len(part)
            else:
                view = part if isinstance(part, memoryview) else memoryview(part)
                out.append(view[:need])
                parts[0] = view[need:]
                need = 0
        self._size -= n - need
        return b"".join(out)

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end), left to be read again."""
        self._fill(n)
        out = b""
        for part in self._parts:  # only the first few bytes of the first parts: no big join
            if len(out) >= n:
                break
            out += bytes(part[:n - len(out)])
        return out

    def tell(self) -> int:  # the SDK asks, but never for anything that matters to streaming
        return 0

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


# -- encrypt ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataKeyCache:
    """Reuse of one data key over many small messages (the snapshot content objects), through
    the SDK's own ``CachingCryptoMaterialsManager``: KMS is asked once per ``max_age``
    seconds or ``max_messages`` messages, not once per object. Each message still derives its
    own key (HKDF over its random message id), so reuse never repeats a key+nonce; the bound
    limits how much one leaked data key could decrypt."""

    max_age_seconds: float
    max_messages: int
    capacity: int = 4


def compressed_bound(size: int) -> int:
    """An upper bound of the zstd output for ``size`` plaintext bytes (zstd's own bound is
    size + size/256 + a frame header): the caching materials manager needs a length up front
    and refuses to encrypt more than it."""
    return size + (size >> 7) + 4096


@dataclass
class EncryptionInfo:
    """What the manifest records about a message's keys (filled in once the header exists)."""

    format: str = FORMAT
    algorithm: str = ALGORITHM_NAME
    kms_key_arn: str = ""
    recovery_key_id: str = ""
    encryption_context: dict[str, str] = field(default_factory=dict)
    # (provider id, key info, SHA-256 of the wrapped key) of every wrapped data key
    data_keys: list[tuple[str, str, str]] = field(default_factory=list)


class Encryptor:
    """Streaming envelope encryption for one backup.

    ``Encryptor(kms_key_id=..., recovery_public_key_pem=..., context={...}).stream(chunks)``
    yields the ciphertext; after the first chunk, :attr:`info` holds the KMS key ARN the data
    key was wrapped by and the recovery key id. KMS is called once, when the first chunk is
    requested: a denied or disabled key fails there, before any byte is produced.

    ``kms_key_id`` empty: the data key is wrapped by the recovery public key only (no network
    call at all); :attr:`recovery_only` is then true and ``info.kms_key_arn`` stays empty.
    """

    def __init__(self, *, kms_key_id: str, recovery_public_key_pem: bytes,
                 context: Mapping[str, str], frame_length: int = FRAME_LENGTH,
                 botocore_session=None, cache: DataKeyCache | None = None) -> None:
        self.context = dict(context)
        for k, v in self.context.items():
            if k.startswith("aws-crypto-") or not isinstance(v, str):
                raise EncryptionError(f"invalid encryption context entry {k!r}")
        self.frame_length = frame_length
        rid = recovery_key_id(recovery_public_key_pem)
        self.recovery_only = not kms_key_id
        try:
            recovery = _recovery_master_key(rid, recovery_public_key_pem, private=False)
            if self.recovery_only:
                provider = recovery
            else:
                provider = _kms_provider(kms_key_id, botocore_session)
                provider.add_master_key_provider(recovery)
        except _sdk_errors() as exc:
            raise EncryptionError(f"cannot set up encryption keys: {_cause(exc)}") from exc
        self._provider = provider
        self._materials = None
        if cache is not None:
            from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache
            from aws_encryption_sdk.materials_managers.caching import (
                CachingCryptoMaterialsManager,
            )

            self._materials = CachingCryptoMaterialsManager(
                master_key_provider=provider, cache=LocalCryptoMaterialsCache(cache.capacity),
                max_age=float(cache.max_age_seconds), max_messages_encrypted=cache.max_messages)
        self.info = EncryptionInfo(recovery_key_id=rid, encryption_context=dict(self.context))

    def stream(self, chunks: Iterable[bytes],
               max_plaintext: int | None = None) -> Iterator[bytes]:
        """Encrypt ``chunks`` (any sizes) into ciphertext chunks of about one frame each.

        With a :class:`DataKeyCache`, ``max_plaintext`` (an upper bound of the bytes to
        encrypt) is required: the cache only serves messages of a known bound length."""
        source = ChunkReader(chunks)
        keys: dict[str, Any] = {"key_provider": self._provider}
        if self._materials is not None:
            if max_plaintext is None:
                raise EncryptionError("a cached data key needs the plaintext's upper bound")
            keys = {"materials_manager": self._materials, "source_length": max_plaintext}
        try:
            enc = _client().stream(mode="e", source=source, encryption_context=self.context,
                                   algorithm=_algorithm(), frame_length=self.frame_length,
                                   **keys)
            first = True
            while True:
                out = enc.read(self.frame_length)
                if first:
                    self._record_header(enc.header)
                    first = False
                if not out:
                    break
                yield out
            enc.close()
        except _sdk_errors() as exc:
            raise EncryptionError(f"encryption failed: {_cause(exc)}") from exc

    def _record_header(self, header) -> None:
        for edk in header.encrypted_data_keys:
            if edk.key_provider.provider_id == KMS_PROVIDER_ID:
                self.info.kms_key_arn = edk.key_provider.key_info.decode()
        self.info.data_keys = header_data_keys(header)
        self.info.algorithm = header.algorithm.name


def header_data_keys(header) -> list[tuple[str, str, str]]:
    """The wrapped data keys of a message header, as the manifest records them (sorted)."""
    return sorted((edk.key_provider.provider_id,
                   edk.key_provider.key_info.decode("utf-8", "replace"),
                   hashlib.sha256(edk.encrypted_data_key).hexdigest())
                  for edk in header.encrypted_data_keys)


# -- decrypt ------------------------------------------------------------------------------------

def message_algorithm(prefix: bytes) -> str:
    """The suite named by a message's first bytes (its header starts ``version, [type,]
    suite id``: 1 byte, then for format 1 a type byte, then the 2-byte id), as the SDK
    names it; :class:`EncryptionError` for anything that is not a message of a known suite."""
    from aws_encryption_sdk.exceptions import InvalidAlgorithmError
    from aws_encryption_sdk.identifiers import Algorithm

    if prefix[:2] == b"\x01\x80":  # format 1: version 1, type 0x80 (customer authenticated)
        raw = prefix[2:4]
    elif prefix[:1] == b"\x02":  # format 2
        raw = prefix[1:3]
    else:
        raise EncryptionError("decryption failed: the body is not an AWS Encryption SDK "
                              f"message (it starts {prefix[:4].hex() or 'empty'})")
    if len(raw) < 2:
        raise EncryptionError("decryption failed: ciphertext is truncated in its header")
    suite_id = int.from_bytes(raw, "big")
    try:
        return Algorithm.get_by_id(suite_id).name
    except (InvalidAlgorithmError, KeyError, ValueError) as exc:
        raise EncryptionError(f"decryption failed: the message names an unknown algorithm "
                              f"suite 0x{suite_id:04x}: refused") from exc


def check_algorithm(name: str, expected: str | None = None) -> None:
    """Refuse a message whose suite vo2dr never wrote, or (``expected``: the signed
    manifest's ``encryption.algorithm``) another suite than its manifest records."""
    if name not in READABLE_ALGORITHMS:
        raise EncryptionError(
            f"the message is encrypted with the suite {name}, which vo2dr never writes "
            f"(it reads {' and '.join(READABLE_ALGORITHMS)} only): refused")
    if expected and name != expected:
        raise EncryptionError(f"the message is encrypted with the suite {name}, not the one "
                              f"its signed manifest records ({expected}): refused")


def decrypt_stream(chunks: Iterable[bytes], *, kms_key_id: str | None = None,
                   recovery_private_key_pem: bytes | None = None,
                   recovery_private_key_password: bytes | None = None,
                   expected_context: Mapping[str, str] | None = None,
                   expected_data_keys: Iterable[tuple[str, str, str]] | None = None,
                   expected_algorithm: str | None = None,
                   botocore_session=None) -> Iterator[bytes]:
    """Decrypt a backup body given as ciphertext ``chunks``; yields plaintext chunks.

    Give either the KMS key ARN (the *configured* key: the strict provider unwraps only data
    keys wrapped by exactly that key, whatever the message names; KMS is called once) or the
    recovery private key PEM (no network at all). Given both, the SDK tries KMS first and
    falls back to the recovery key.

    ``expected_data_keys`` (the signed manifest's ``encryption.data_keys``), when given, must
    be exactly the message header's wrapped data keys.

    ``expected_context``, when given, must be contained in the message's encryption context
    (e.g. ``{"backup_id": manifest.backup_id}``), so a body cannot stand in for another.

    The message's suite must be one of :data:`READABLE_ALGORITHMS` and, when given,
    ``expected_algorithm`` (the signed manifest's ``encryption.algorithm``); it is read from
    the header's first bytes, before any key is asked for.

    Every frame is authenticated before its plaintext is released. A failure (no usable key,
    altered or truncated ciphertext, context mismatch) raises :class:`EncryptionError`; a
    consumer must treat the whole output as invalid when the iterator raises, even late.
    """
    provider = _decryption_provider(kms_key_id, recovery_private_key_pem,
                                    recovery_private_key_password, botocore_session)
    wanted_keys = sorted(tuple(k) for k in expected_data_keys) if expected_data_keys else None
    return _decrypt(chunks, provider, expected_context, wanted_keys,
                    expected_algorithm=expected_algorithm)


def _decryption_provider(kms_key_id: str | None, recovery_private_key_pem: bytes | None,
                         recovery_private_key_password: bytes | None, botocore_session):
    """The master key provider of :func:`decrypt_stream` and :class:`Decryptor`."""
    if not kms_key_id and not recovery_private_key_pem:
        raise EncryptionError(
            "no decryption key: give the KMS key ARN or the recovery private key")
    provider = None
    try:
        if kms_key_id:
            if not kms_key_id.startswith("arn:"):
                raise EncryptionError(
                    f"KMS key {kms_key_id!r} must be a key ARN for decryption "
                    "(the manifest's encryption.kms_key_arn)")
            provider = _kms_provider(kms_key_id, botocore_session)
        if recovery_private_key_pem:
            raw = _recovery_decryption_key(bytes(recovery_private_key_pem),
                                           recovery_private_key_password)
            if provider is None:
                provider = raw
            else:
                provider.add_master_key_provider(raw)
    except _sdk_errors() as exc:
        raise EncryptionError(f"cannot set up decryption keys: {_cause(exc)}") from exc
    return provider


@functools.lru_cache(maxsize=4)
def _recovery_decryption_key(pem: bytes, password: bytes | None) -> RawMasterKey:
    """The recovery private key as the SDK's master key, loaded once per process: loading
    (and validating) an RSA private key takes most of a second, which a restore of thousands
    of snapshot content objects cannot pay per object."""
    private = _load_private_key(pem, password)
    rid = _fingerprint(private.public_key())
    return _recovery_master_key(rid, pem, True, password)


def _decrypt(chunks: Iterable[bytes], provider, expected_context,
             expected_data_keys=None, materials=None,
             expected_algorithm: str | None = None) -> Iterator[bytes]:
    source = ChunkReader(chunks)
    keys = {"materials_manager": materials} if materials is not None else \
        {"key_provider": provider}
    try:
        # The suite first, from the header's own bytes: a message of any other suite is
        # refused here, in words, before the SDK parses it or asks KMS for its data key.
        suite = message_algorithm(source.peek(4))
        check_algorithm(suite, expected_algorithm)
        # Not a ``with`` block: the SDK's __exit__ logs a traceback when closing a stream that
        # failed; we close it only on success (close() also checks the footer was read).
        dec = _client().stream(mode="d", source=source, **keys)
        if dec.header.algorithm.name != suite:  # the SDK read the same bytes: never differs
            raise EncryptionError(f"the message header names {dec.header.algorithm.name}, "
                                  f"its first bytes {suite}: refused")
        if expected_context:
            actual = dec.header.encryption_context
            wrong = {k: actual.get(k) for k, v in expected_context.items() if actual.get(k) != v}
            if wrong:
                raise EncryptionError(
                    f"encryption context does not match the manifest: found {wrong}, "
                    f"expected {dict(expected_context)}")
        if expected_data_keys is not None and \
                header_data_keys(dec.header) != expected_data_keys:
            raise EncryptionError("the body's wrapped data keys are not the ones its signed "
                                  "manifest records: refused")
        while True:
            out = dec.read(FRAME_LENGTH)
            if not out:
                break
            yield out
        if not hasattr(dec, "footer"):
            raise EncryptionError("ciphertext is truncated: the message has no final frame")
        dec.close()
    except _sdk_errors() as exc:
        raise EncryptionError(f"decryption failed: {_cause(exc)}") from exc
    except (ValueError, EOFError) as exc:  # e.g. a corrupt header field or short read
        raise EncryptionError(f"decryption failed: ciphertext is malformed: {exc}") from exc


class Decryptor:
    """Decrypts many messages with one key setup: the snapshot content objects, thousands per
    restore. The KMS client (or the recovery key) is set up once, not per object, and the
    SDK's :class:`CachingCryptoMaterialsManager` keeps each unwrapped data key for
    ``max_age_seconds``: the writer encrypts up to hundreds of objects under one data key
    (:class:`DataKeyCache`), so they cost one KMS call, not one each. A cache hit needs the
    very same wrapped data keys and encryption context, which only KMS (or the recovery key)
    unwrapped before. Thread-safe (the cache locks); the same checks as
    :func:`decrypt_stream` otherwise."""

    def __init__(self, *, kms_key_id: str | None = None,
                 recovery_private_key_pem: bytes | None = None,
                 recovery_private_key_password: bytes | None = None,
                 max_age_seconds: float = 300.0, capacity: int = 64,
                 botocore_session=None) -> None:
        from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache
        from aws_encryption_sdk.materials_managers.caching import (
            CachingCryptoMaterialsManager as Caching,
        )

        self._provider = _decryption_provider(kms_key_id, recovery_private_key_pem,
                                              recovery_private_key_password, botocore_session)
        self._materials = Caching(master_key_provider=self._provider,
                                  cache=LocalCryptoMaterialsCache(capacity),
                                  max_age=float(max_age_seconds))

    def stream(self, chunks: Iterable[bytes], *,
               expected_context: Mapping[str, str] | None = None) -> Iterator[bytes]:
        """The plaintext of one message (see :func:`decrypt_stream` for the guarantees)."""
        return _decrypt(chunks, self._provider, expected_context, materials=self._materials)
