"""An in-memory BackupStore for the unit tests of the recovery side (catalog, status)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

from vo2dr.exceptions import ObjectExists, ObjectNotFound, StoreError
from vo2dr.layout import BackupRef
from vo2dr.manifest import Destination, Digest, Encryption, Manifest, TableCount
from vo2dr.signing import LocalSigner, TrustedKeys
from vo2dr.stores.base import BackupStore, ObjectInfo, PutResult
from vo2dr.trust import Trust

from tests import signing_keys

SIGNER = LocalSigner(signing_keys.PRIVATE)
TRUST = Trust(signers=TrustedKeys.from_pem(signing_keys.PUBLIC), kms_key_arn="arn:k")


class MemoryStore(BackupStore):
    def __init__(self, name: str) -> None:
        self.name = name
        self.objects: dict[str, bytes] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError(f"{self.name}: connection refused", store=self.name)

    def _checksum(self, data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def put_stream(self, key, chunks, *, metadata=None, lock=None) -> PutResult:
        return self.put_bytes(key, b"".join(chunks), metadata=metadata)

    def put_bytes(self, key, data, *, metadata=None, lock=None) -> PutResult:
        self._check()
        if key in self.objects:
            raise ObjectExists(key, store=self.name, key=key)
        self.objects[key] = bytes(data)
        return PutResult(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                         checksum=self._checksum(data))

    def get_stream(self, key, chunk_size=8 * 1024 * 1024) -> Iterator[bytes]:
        self._check()
        if key not in self.objects:
            raise ObjectNotFound(key, store=self.name, key=key)
        data = self.objects[key]
        return iter([data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""])

    def stat(self, key) -> ObjectInfo:
        self._check()
        if key not in self.objects:
            raise ObjectNotFound(key, store=self.name, key=key)
        data = self.objects[key]
        return ObjectInfo(key=key, size=len(data), last_modified=datetime.now(UTC),
                          checksum=self._checksum(data))

    def list(self, prefix) -> Iterator[ObjectInfo]:
        self._check()
        for key in sorted(k for k in self.objects if k.startswith(prefix)):
            yield ObjectInfo(key=key, size=len(self.objects[key]),
                             last_modified=datetime.now(UTC))

    def delete(self, key) -> None:
        self.objects.pop(key, None)


def add_backup(stores: list[MemoryStore], ref: BackupRef, body: bytes = b"ciphertext" * 10, *,
               manifest_in: list[str] | None = None, signer=SIGNER) -> Manifest:
    """Write ``body`` and a manifest for ``ref`` to every store (the manifest only to the
    stores named in ``manifest_in`` when given), as the backup job would."""
    sha = hashlib.sha256(body).hexdigest()
    dests = {}
    for s in stores:
        put = s.put_bytes(ref.body_key, body)
        dests[s.name] = Destination(status="verified", key=ref.body_key, bytes=put.size,
                                    sha256=put.sha256, store_checksum=put.checksum)
    manifest = Manifest(
        backup_id=ref.backup_id, environment=ref.environment, data_class=ref.data_class,
        tier=ref.tier, body_key=ref.body_key, started_at=ref.timestamp.isoformat(),
        finished_at=ref.timestamp.isoformat(), server_version="18.0", pg_dump_version="18.0",
        database="app", snapshot="00000003-1", tables=[TableCount("public.users", 3)],
        plaintext=Digest(bytes=1, sha256="0" * 64), ciphertext=Digest(bytes=len(body), sha256=sha),
        compression="zstd",
        encryption=Encryption(format="aws-encryption-sdk", algorithm="x", kms_key_arn="arn:k",
                              recovery_key_id="r"),
        destinations=dests)
    if signer is not None:
        manifest.sign(signer)
    for s in stores:
        if manifest_in is None or s.name in manifest_in:
            s.put_bytes(ref.manifest_key, manifest.to_json())
    return manifest
