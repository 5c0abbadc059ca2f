"""What a backup run reports: :class:`BackupSummary` (a backup was taken) or
:class:`SkippedBackup` (``--if-missing`` found the window covered), and the statuses in them.

``to_json()`` is the JSON the CLI prints, the Lambda returns and the logs carry; optional
fields appear only when set, as before. Both classes can still be read like the dicts the job
used to return (``summary["ok"]``), for one landing, so callers in flight keep working.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DestinationStatus(StrEnum):
    """A destination's copy: still uploading, checked against the pipeline's own SHA-256 and
    size (and its manifest written), or failed."""

    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


class _ReadAsDict(Mapping[str, Any]):
    """Read access by key over ``to_json()`` (transitional: use the attributes)."""

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


@dataclass(eq=False)
class DestinationSummary(_ReadAsDict):
    status: DestinationStatus  # verified only with its body checked and its manifest written
    body: DestinationStatus
    manifest: str  # "written", "skipped: ...", "failed: ..."
    bytes: int
    seconds: float
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body, "manifest": self.manifest,
                "bytes": self.bytes, "seconds": self.seconds,
                **({"error": self.error} if self.error else {})}


@dataclass(eq=False)
class BackupSummary(_ReadAsDict):
    """A backup that ran. ``ok`` only if every destination holds a verified copy and its
    manifest; ``error`` names each destination that does not."""

    ok: bool
    backup_id: str
    environment: str
    data_class: str
    tier: str
    timestamp: str
    body_key: str
    manifest_key: str
    tables: dict[str, int]
    plaintext: dict[str, Any]
    compressed_bytes: int
    ciphertext: dict[str, Any]
    server_version: str
    pg_dump_version: str
    kms_key_arn: str
    recovery_key_id: str
    destinations: dict[str, DestinationSummary]
    seconds: float
    plaintext_mb_per_s: float | None
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    window: dict[str, str] | None = None  # --if-missing: the schedule window looked at
    # The intraday tier's own lock (ISO time); other tiers carry the stores' default lock.
    lock_until: str = ""
    # An application source (vo2dr.sources): its kind and its manifest's contents (refs, file
    # hashes, secret names and versions; never a secret's value). Not shown for the database.
    source: str = "database"
    contents: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            **({"error": self.error} if self.error else {}),
            **({"source": self.source, "contents": self.contents}
               if self.source != "database" else {}),
            "backup_id": self.backup_id, "environment": self.environment,
            "data_class": self.data_class, "tier": self.tier,
            **({"lock_until": self.lock_until} if self.lock_until else {}),
            "timestamp": self.timestamp,
            "body_key": self.body_key, "manifest_key": self.manifest_key,
            "tables": self.tables, "plaintext": self.plaintext,
            "compressed_bytes": self.compressed_bytes, "ciphertext": self.ciphertext,
            "server_version": self.server_version, "pg_dump_version": self.pg_dump_version,
            "kms_key_arn": self.kms_key_arn, "recovery_key_id": self.recovery_key_id,
            "destinations": {n: d.to_json() for n, d in self.destinations.items()},
            **({"warnings": self.warnings} if self.warnings else {}),
            "seconds": self.seconds, "plaintext_mb_per_s": self.plaintext_mb_per_s,
            **({"window": self.window} if self.window is not None else {}),
        }


@dataclass(eq=False)
class SkippedBackup(_ReadAsDict):
    """``--if-missing`` found a complete backup in the current window: nothing was dumped."""

    environment: str
    data_class: str
    window: dict[str, str]
    covered_by: dict[str, str]
    ok: bool = True
    skipped: bool = True

    @property
    def status(self) -> str:
        return f"skipped: covered by {self.covered_by['backup_id']}"

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "skipped": self.skipped, "status": self.status,
                "environment": self.environment, "data_class": self.data_class,
                "window": self.window, "covered_by": self.covered_by}
