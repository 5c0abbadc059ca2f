"""Reading a snapshot back: its index (verified as a whole before one entry is believed) and
its content objects (each checked against the signed index while it is decrypted).

The index is the snapshot's body. It goes through the same checks as every other backup body
(:func:`vo2dr.verify.verify_copy`: signed manifest, ciphertext and plaintext SHA-256,
authenticated decryption bound to this backup) into a private spool file, and only then is it
read line by line: memory stays flat however many objects the snapshot holds, and no entry of
an altered index is ever acted on.

A content object is one aws-encryption-sdk message of zstd frames. :func:`content_chunks`
checks (:func:`vo2dr.snapshots.content.checked_plaintext`, the one check of content), while
streaming, the stored bytes' size and SHA-256 against the index, the message's
authentication and its encryption context (``vo2dr:purpose``, environment and source, so a
content object of another source or of a database backup cannot stand in), and the plaintext
size and SHA-256. The plaintext it yields before the end is not yet proven: callers write it
to a private temporary place and keep it only when the iterator finished without raising.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from vo2dr.catalog import CatalogEntry
from vo2dr.crypto import Decryptor
from vo2dr.exceptions import IntegrityError, ObjectNotFound
from vo2dr.manifest import Manifest
from vo2dr.stores.base import BackupStore
from vo2dr.strategy_application import SNAPSHOT_SOURCES  # noqa: F401  (one definition; imported from here)
from vo2dr.trust import Trust

READ_SIZE = 1024 * 1024


def check_index(source: str, contents: dict[str, Any], plaintext: IO[bytes]) -> list[str]:
    """Problems between a decrypted, hash-checked index and its manifest's ``contents``: the
    header names this source, every entry is well formed and keys strictly increase (the
    index's own parser, :func:`vo2dr.snapshots.index.read_index`), and the counts agree.
    Empty when they agree."""
    from vo2dr.snapshots.index import read_index

    plaintext.seek(0)
    count = total = new = 0
    try:
        header, entries = read_index(iter(lambda: plaintext.read(READ_SIZE), b""))
        if header.source != source:
            return [f"the index is of source {header.source!r}, not {source!r}"]
        for entry in entries:
            count += 1
            total += entry.size
            new += entry.new
    except IntegrityError as exc:
        return [str(exc)]
    problems = []
    for name, got in (("objects", count), ("bytes", total), ("new_objects", new)):
        if name in contents and contents[name] != got:
            problems.append(f"the index holds {got} {name.replace('_', ' ')}, the manifest "
                            f"says {contents[name]}")
    return problems


@dataclass
class VerifiedIndex:
    """A snapshot's index, verified end to end, in a private spool file. Iterate it for the
    entries (dicts, in key order); :attr:`header` is its first line."""

    manifest: Manifest
    header: dict[str, Any]
    key_used: str
    spool: BinaryIO

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.spool.seek(0)
        self.spool.readline()  # the header
        for raw in self.spool:
            yield json.loads(raw)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.contents.get("complete", True))

    def close(self) -> None:
        self.spool.close()

    def __enter__(self) -> VerifiedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_index(store: BackupStore, entry: CatalogEntry, trust: Trust, *,
               recovery_key_pem: bytes | None = None,
               spool_dir: str | None = None) -> VerifiedIndex:
    """``store``'s copy of the snapshot ``entry``'s index, verified (raises
    :class:`~vo2dr.verify.VerificationFailed` naming what differed). Close it when done."""
    from vo2dr.verify import VerificationFailed, verify_copy

    spool = tempfile.TemporaryFile(  # noqa: SIM115 - owned by the VerifiedIndex returned
        dir=spool_dir or os.environ.get("VO2DR_SPOOL_DIR") or None)
    try:
        result = verify_copy(store, entry, trust=trust, recovery_key_pem=recovery_key_pem,
                             spool=spool)
        if not result.ok:
            raise VerificationFailed(result)
        assert result.manifest is not None  # verified
        spool.seek(0)
        header = json.loads(spool.readline())
        return VerifiedIndex(manifest=result.manifest, header=header,
                             key_used=result.key_used, spool=spool)
    except BaseException:
        spool.close()
        raise


def content_decryptor(manifest: Manifest, recovery_key_pem: bytes | None,
                      trust: Trust) -> tuple[Decryptor, str]:
    """The decryptor of a snapshot's content objects and which key it uses (``kms`` or
    ``recovery-key``): the configured KMS key or the recovery key only, as for every body
    (:func:`vo2dr.verify.decryption_keys`)."""
    from vo2dr.verify import decryption_keys

    keys, used = decryption_keys(manifest, recovery_key_pem, trust)
    return Decryptor(**keys), used


def content_chunks(store: BackupStore, manifest: Manifest, line: dict[str, Any],
                   decryptor: Decryptor) -> Iterator[bytes]:
    """The plaintext of the index entry ``line``, from ``store``, checked as it streams
    (:func:`vo2dr.snapshots.content.checked_plaintext`); raises :class:`IntegrityError`
    (altered, truncated or missing content, naming the entry) at the point it is found.
    ``decryptor``: one per restore or verify (:func:`content_decryptor`), so keys are set up
    once."""
    from vo2dr.exceptions import EncryptionError
    from vo2dr.layout import content_key
    from vo2dr.snapshots.content import checked_plaintext
    from vo2dr.verify import _is_key_unavailable

    key = content_key(manifest.environment, manifest.source, line["content"])
    name = line["key"]
    try:
        yield from checked_plaintext(
            store.get_stream(key, READ_SIZE),
            lambda chunks, context: decryptor.stream(chunks, expected_context=context),
            environment=manifest.environment, source=manifest.source, size=line["size"],
            sha256=line["sha256"], stored_size=line["stored_size"],
            stored_sha256=line["stored_sha256"],
            what=f"{name}: content object {key} in {store.name}",
            compression=manifest.compression)
    except ObjectNotFound as exc:
        raise IntegrityError(f"{name}: content object {key} is missing in {store.name}") from exc
    except EncryptionError as exc:
        if _is_key_unavailable(exc):
            raise
        raise IntegrityError(f"{name}: content object {key} in {store.name} is not authentic: "
                             f"{exc}") from exc
