"""The manifest: written last, beside the body, only once every copy is verified. A backup
without a manifest does not count. Restore, verify, drill and status read only manifests."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from vo2dr.exceptions import IntegrityError

FORMAT = "vo2dr-manifest/1"


@dataclass
class TableCount:
    name: str  # schema-qualified, e.g. public.users
    rows: int


@dataclass
class Digest:
    bytes: int
    sha256: str


@dataclass
class Destination:
    """One store's copy: ``status`` is ``verified`` or ``failed`` (with ``error``)."""

    status: str
    key: str = ""
    bytes: int = 0
    sha256: str = ""
    store_checksum: str = ""
    error: str = ""


@dataclass
class Encryption:
    format: str  # "aws-encryption-sdk"
    algorithm: str
    kms_key_arn: str
    recovery_key_id: str  # SHA-256 fingerprint of the recovery public key (DER)
    encryption_context: dict[str, str] = field(default_factory=dict)


@dataclass
class Manifest:
    backup_id: str
    environment: str
    data_class: str
    tier: str
    body_key: str
    started_at: str  # ISO 8601 UTC
    finished_at: str
    server_version: str
    pg_dump_version: str
    database: str
    snapshot: str
    tables: list[TableCount]
    plaintext: Digest  # pg_dump custom-format output, before compression
    ciphertext: Digest  # the object's bytes
    compression: str
    encryption: Encryption
    destinations: dict[str, Destination]
    format: str = FORMAT

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "") -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ValueError(f"unknown manifest format {raw.get('format')!r}")
            return cls(
                **{
                    **raw,
                    "tables": [TableCount(**t) for t in raw["tables"]],
                    "plaintext": Digest(**raw["plaintext"]),
                    "ciphertext": Digest(**raw["ciphertext"]),
                    "encryption": Encryption(**raw["encryption"]),
                    "destinations": {k: Destination(**v) for k, v in raw["destinations"].items()},
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"manifest {source or '(unnamed)'} is not valid: {exc}") from exc

    def table_rows(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}
