"""Content objects: one per source object version, ``<root>content/<random id>``.

Writing (:class:`ContentWriter`): the object's bytes go through the one pipeline every backup
uses (:func:`vo2dr.pipeline.run_pipeline`: SHA-256 of the plaintext, zstd, envelope encryption
once, every store at once with per-store isolation, each copy checked against the store's own
checksum), under a fresh random id. The encryption is the backups' own (AWS KMS key plus the
offline recovery key, :class:`vo2dr.crypto.Encryptor`), with two differences:

* the data key comes from the SDK's :class:`CachingCryptoMaterialsManager`
  (:class:`vo2dr.crypto.DataKeyCache`): 20,000 objects do not make 20,000 KMS calls;
* the encryption context is constant per source (``vo2dr:purpose=snapshot-content``,
  ``vo2dr:environment``, ``vo2dr:source``): the same content serves every later snapshot,
  so it cannot name one backup. It still cannot pass for a database body, another source's
  content or an index (their contexts differ), and the index binds each key to its content
  id and both SHA-256s.

No metadata is sent (no name, key or plaintext hash); object locks are the store's default
(``lockDays``): content is kept by references, never by tier (see ``vo2dr prune``).

Reading (:func:`checked_plaintext`, the one check every reader uses, and
:func:`content_plaintext`): authenticated decryption with the expected context, then zstd,
checking the stored and plaintext sizes and SHA-256s against the index entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vo2dr import layout
from vo2dr.crypto import DataKeyCache, Encryptor, compressed_bound, decrypt_stream
from vo2dr.exceptions import IntegrityError
from vo2dr.pipeline import STALL_TIMEOUT, ZSTD_LEVEL, run_pipeline
from vo2dr.snapshots.index import Entry
from vo2dr.stores.base import BackupStore
from vo2dr.summary import DestinationStatus

PURPOSE = "snapshot-content"
# One data key for at most this many content objects or this long (whichever first): a
# 20,000-object first snapshot asks KMS a few dozen times, and one leaked data key (it never
# leaves the job's memory) would open at most this many objects.
CACHE = DataKeyCache(max_age_seconds=300.0, max_messages=500)


def content_context(environment: str, source: str) -> dict[str, str]:
    return {"vo2dr:purpose": PURPOSE, "vo2dr:environment": environment,
            "vo2dr:source": source}


@dataclass
class StoredContent:
    """One content object after its upload: its id, the plaintext's size and SHA-256, the
    stored ciphertext's, and the stores that do NOT hold a verified copy (name -> why)."""

    content_id: str
    size: int
    sha256: str
    stored_size: int
    stored_sha256: str
    failed: dict[str, str] = field(default_factory=dict)
    uploaded_to: tuple[str, ...] = ()


class ContentWriter:
    """Encrypts content once and writes it to every store given, thread-safe (one writer
    serves the snapshot's whole pool of uploads)."""

    def __init__(self, *, environment: str, source: str, kms_key_id: str,
                 recovery_public_key_pem: bytes, cache: DataKeyCache | None = CACHE,
                 zstd_level: int = ZSTD_LEVEL, stall_timeout: float = STALL_TIMEOUT,
                 botocore_session: Any = None) -> None:
        self.environment, self.source = environment, source
        self.encryptor = Encryptor(kms_key_id=kms_key_id,
                                   recovery_public_key_pem=recovery_public_key_pem,
                                   context=content_context(environment, source), cache=cache,
                                   botocore_session=botocore_session)
        self.zstd_level, self.stall_timeout = zstd_level, stall_timeout

    def put(self, chunks: Iterable[bytes], size: int,
            stores: Mapping[str, BackupStore]) -> StoredContent:
        """Upload one object's plaintext (``size`` bytes as listed: the encryption refuses
        more than that can compress to) to every store in ``stores`` at once. Raises the
        origin's or the encryption's error (every upload aborted); a store's failure is
        reported in :attr:`StoredContent.failed`."""
        cid = layout.new_content_id()
        key = layout.content_key(self.environment, self.source, cid)
        bound = compressed_bound(size)
        result = run_pipeline(
            chunks, encrypt=lambda c: self.encryptor.stream(c, max_plaintext=bound),
            stores=stores, key=key, metadata=None, lock=None,
            stall_timeout=self.stall_timeout, zstd_level=self.zstd_level)
        failed = {n: d.error or "not verified" for n, d in result.destinations.items()
                  if d.status != DestinationStatus.VERIFIED}
        return StoredContent(content_id=cid, size=result.plaintext_bytes,
                             sha256=result.plaintext_sha256,
                             stored_size=result.ciphertext_bytes,
                             stored_sha256=result.ciphertext_sha256, failed=failed,
                             uploaded_to=tuple(n for n in result.destinations
                                               if n not in failed))


class _Counted:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it, self.sha, self.bytes = iter(chunks), hashlib.sha256(), 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._it:
            self.sha.update(chunk)
            self.bytes += len(chunk)
            yield chunk


Decrypt = Callable[[Iterable[bytes], Mapping[str, str]], Iterable[bytes]]


def checked_plaintext(ciphertext: Iterable[bytes], decrypt: Decrypt, *, environment: str,
                      source: str, size: int, sha256: str, stored_size: int,
                      stored_sha256: str, what: str,
                      compression: str = "zstd") -> Iterator[bytes]:
    """The one check of a content object, used by every reader: ``decrypt(chunks,
    expected_context)`` (a :class:`vo2dr.crypto.Decryptor`'s or
    :func:`vo2dr.crypto.decrypt_stream`'s) must authenticate the message under this source's
    content context; then the plaintext may not outgrow ``size``, and at the end the stored
    size and SHA-256 and the plaintext size and SHA-256 must be the index entry's, or
    :class:`IntegrityError` names ``what``. The plaintext yielded before the end is not yet
    proven: a consumer keeps it only when the iterator finished without raising."""
    from vo2dr.verify import _decompress

    stored = _Counted(ciphertext)
    plain = _Counted(_decompress(decrypt(stored, content_context(environment, source)),
                                 compression))
    for chunk in plain:
        if plain.bytes > size:
            raise IntegrityError(f"{what} is longer than the {size} bytes its index entry "
                                 "records")
        yield chunk
    for _ in stored:  # the rest of the message (an appended tail) must be hashed too
        pass
    if (stored.bytes, stored.sha.hexdigest()) != (stored_size, stored_sha256):
        raise IntegrityError(f"{what}: the stored object is {stored.bytes} bytes with SHA-256 "
                             f"{stored.sha.hexdigest()[:16]}…, the index says {stored_size} "
                             f"bytes {stored_sha256[:16]}…")
    if (plain.bytes, plain.sha.hexdigest()) != (size, sha256):
        raise IntegrityError(f"{what} decrypts to {plain.bytes} bytes with SHA-256 "
                             f"{plain.sha.hexdigest()[:16]}…, the index says {size} bytes "
                             f"{sha256[:16]}…")


def content_plaintext(ciphertext: Iterable[bytes], entry: Entry, *, environment: str,
                      source: str, **keys: Any) -> Iterator[bytes]:
    """The verified plaintext of ``entry``'s content object, from its stored bytes
    (:func:`checked_plaintext`).

    ``keys`` are :func:`vo2dr.crypto.decrypt_stream`'s (``kms_key_id=`` the configured key
    ARN, or ``recovery_private_key_pem=``). Raises :class:`IntegrityError` (or
    :class:`EncryptionError`); as with every streamed decryption, a consumer keeps the output
    only when the iterator finished without raising.
    """
    return checked_plaintext(
        ciphertext, lambda chunks, context: decrypt_stream(chunks, expected_context=context,
                                                           **keys),
        environment=environment, source=source, size=entry.size, sha256=entry.sha256,
        stored_size=entry.stored_size, stored_sha256=entry.stored_sha256,
        what=f"content {entry.content} of {entry.key}")
