"""The null destination: counts and discards. The benchmark (``backup --null-destinations N``)
measures the pipeline with it, without any network; tests use it as an in-memory listing."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from vo2dr.exceptions import ObjectExists, ObjectNotFound
from vo2dr.stores.base import BackupStore, ObjectInfo, PutResult


class NullStore(BackupStore):
    """A destination that counts and discards: measures the pipeline without any network.

    It remembers only the size (and a put_bytes object's hash) of what it was given, so
    ``stat``/``list`` behave like a real store's for the backup job's checks."""

    def __init__(self, name: str = "null") -> None:
        self.name = name
        self._objects: dict[str, ObjectInfo] = {}
        self._lock = threading.Lock()

    def _record(self, key: str, size: int, sha256: str) -> PutResult:
        with self._lock:
            if key in self._objects:
                raise ObjectExists(f"{key} exists", store=self.name, key=key)
            self._objects[key] = ObjectInfo(key=key, size=size, last_modified=datetime.now(UTC),
                                            checksum=f"sha256hex:{sha256}" if sha256 else "")
        return PutResult(key=key, size=size, sha256=sha256,
                         checksum=f"sha256hex:{sha256}" if sha256 else "")

    def put_stream(self, key, chunks, *, metadata=None, lock=None) -> PutResult:
        # Counts only: like a real store it leaves the SHA-256 of a streamed body to its caller,
        # and there is no service whose checksum it could compute (PutResult).
        size = 0
        for chunk in chunks:
            size += len(chunk)
        return self._record(key, size, "")

    def put_bytes(self, key, data, *, metadata=None, lock=None) -> PutResult:
        return self._record(key, len(data), hashlib.sha256(data).hexdigest())

    def get_stream(self, key, chunk_size=8 * 1024 * 1024) -> Iterator[bytes]:
        raise ObjectNotFound(f"the null store keeps no bytes ({key})", store=self.name, key=key)

    def stat(self, key) -> ObjectInfo:
        with self._lock:
            if key not in self._objects:
                raise ObjectNotFound(f"{key} not found", store=self.name, key=key)
            return self._objects[key]

    def list(self, prefix) -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted((k, v) for k, v in self._objects.items() if k.startswith(prefix))
        for _, info in items:
            yield info

    def delete(self, key) -> None:
        with self._lock:
            self._objects.pop(key, None)
