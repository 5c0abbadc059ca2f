"""The manifest: written last, beside the body, only once every copy is verified. A backup
without a manifest does not count. Restore, verify, drill and status read only manifests.

A manifest is signed (:mod:`vo2dr.signing`): the signature covers the canonical JSON of every
other field, so it commits to the body's digests, the encryption context and the wrapped data
keys (``encryption.data_keys``). Readers call :meth:`Manifest.verify_signature` before trusting
any field; a manifest of the older unsigned format parses, and is then refused as unsigned."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from vo2dr.exceptions import IntegrityError
from vo2dr.signing import Signature, Signer, TrustedKeys, sign_payload

FORMAT = "vo2dr-manifest/2"
FORMATS = ("vo2dr-manifest/1", FORMAT)  # /1: before signatures, read only to refuse as unsigned


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
class DataKey:
    provider_id: str  # "aws-kms" or "vo2dr-recovery"
    key_info: str  # the KMS key ARN, or the recovery key id
    sha256: str  # of the encrypted data key blob


@dataclass
class Encryption:
    format: str  # "aws-encryption-sdk"
    algorithm: str
    kms_key_arn: str
    recovery_key_id: str  # SHA-256 fingerprint of the recovery public key (DER)
    encryption_context: dict[str, str] = field(default_factory=dict)
    # The message header's wrapped data keys: provider, key and SHA-256 of the wrapped key.
    data_keys: list[DataKey] = field(default_factory=list)


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
    signature: Signature | None = None
    # What was backed up (vo2dr.sources): "database" (the fields above describe the dump) or an
    # application source, whose facts are in ``contents`` (refs, file hashes, secret names and
    # versions: never a secret's value), and whose database fields are empty.
    source: str = "database"
    contents: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    def signed_payload(self) -> bytes:
        """What the signature covers: the canonical JSON of every field but the signature."""
        raw = asdict(self)
        raw.pop("signature")
        return json.dumps(raw, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True).encode()

    def sign(self, signer: Signer) -> None:
        self.signature = sign_payload(signer, self.signed_payload())

    def verify_signature(self, trusted: TrustedKeys, source: str = "") -> str:
        """The signing key's id; :class:`~vo2dr.signing.SignatureError` (one line) when the
        manifest is unsigned or not validly signed by a trusted key."""
        return trusted.check(self.signed_payload(), self.signature,
                             f"manifest {source or self.backup_id}")

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "") -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.get("format") not in FORMATS:
                raise ValueError(f"unknown manifest format {raw.get('format')!r}")
            enc = dict(raw["encryption"])
            enc["data_keys"] = [DataKey(**k) for k in enc.get("data_keys", [])]
            sig = raw.get("signature")
            return cls(
                **{
                    **raw,
                    "tables": [TableCount(**t) for t in raw["tables"]],
                    "plaintext": Digest(**raw["plaintext"]),
                    "ciphertext": Digest(**raw["ciphertext"]),
                    "encryption": Encryption(**enc),
                    "signature": Signature(**sig) if sig is not None else None,
                    "destinations": {k: Destination(**v) for k, v in raw["destinations"].items()},
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"manifest {source or '(unnamed)'} is not valid: {exc}") from exc

    def table_rows(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}
