"""The key settings of the stack config: rotation of the customer-managed keys, the offline
recovery public key, and the manifest and drill record signing public keys (plain config: all
are public halves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vo2dr.exceptions import ConfigError

from infra.config_base import _fail, _mapping, _positive_int

# Key rotation: the issue caps it at 90 days; Cloud KMS needs at least one day. Azure Key Vault
# needs a key version to expire at least 28 days after creation and a rotation at least 7 days
# before that expiry (provider facts, not strategy).
KEY_ROTATION_MAX_DAYS = 90
# AWS KMS accepts an automatic rotation period of 90 days or more (provider fact).
AWS_KMS_MIN_ROTATION_DAYS = 90
AZURE_KEY_MIN_EXPIRY_DAYS = 28
AZURE_KEY_ROTATE_BEFORE_EXPIRY_DAYS = 7
RECOVERY_KEY_FIX = ("`pulumi config set vo2max-dr:recoveryPublicKey -- "
                    '"$(cat recovery-public.pem)"` (a public key: plain config, not --secret)')


@dataclass(frozen=True)
class Keys:
    """Rotation of the customer-managed keys (Cloud KMS, Key Vault; AWS KMS may use it too)."""

    rotation_days: int
    expiry_days: int  # Key Vault: each key version expires this long after it is created


def parse_keys(raw: Any) -> Keys:
    raw = _mapping(raw, "keys")
    rotation = _positive_int(raw, "keys", "rotationDays")
    expiry = _positive_int(raw, "keys", "expiryDays")
    if rotation > KEY_ROTATION_MAX_DAYS:
        raise _fail("keys.rotationDays", f"is {rotation}",
                    f"rotate keys at least every {KEY_ROTATION_MAX_DAYS} days")
    need = max(AZURE_KEY_MIN_EXPIRY_DAYS, rotation + AZURE_KEY_ROTATE_BEFORE_EXPIRY_DAYS)
    if expiry < need:
        raise _fail("keys.expiryDays", f"is {expiry}",
                    "a key version must outlive its rotation by "
                    f"{AZURE_KEY_ROTATE_BEFORE_EXPIRY_DAYS} days and live at least "
                    f"{AZURE_KEY_MIN_EXPIRY_DAYS}: set it to {need} or more")
    if rotation < AWS_KMS_MIN_ROTATION_DAYS:
        raise _fail("keys.rotationDays", f"is {rotation}",
                    f"AWS KMS rotates a key at most every {AWS_KMS_MIN_ROTATION_DAYS} days: "
                    f"set it to {AWS_KMS_MIN_ROTATION_DAYS} or more")
    return Keys(rotation, expiry)


def parse_recovery_public_key(value: Any) -> str | None:
    """``vo2max-dr:recoveryPublicKey``: the PEM of an RSA public key the job accepts (the job's
    own check, ``vo2dr.crypto.recovery_key_id``: RSA, at least 3072 bits). None when unset."""
    if value is None or value == "":
        return None
    from vo2dr.crypto import recovery_key_id
    from vo2dr.exceptions import EncryptionError

    if not isinstance(value, str) or "PRIVATE KEY" in value:
        raise _fail("recoveryPublicKey", "is not a PEM public key (never put the private key "
                    "in config)", f"set the public half: {RECOVERY_KEY_FIX}")
    try:
        recovery_key_id(value.encode())
    except EncryptionError as exc:
        raise _fail("recoveryPublicKey", f"is not usable: {exc}",
                    f"set the PEM of an RSA-3072 or larger public key: {RECOVERY_KEY_FIX}"
                    ) from exc
    return value


SIGNING_KEYS_FIX = ("after the first `pulumi up`, put the public halves of the AWS and Cloud "
                    "KMS signing keys in it: see docs/backup-authenticity.md (plain config)")
RECORD_KEYS_FIX = ("after the first `pulumi up`, put the public half of the AWS KMS record "
                   "signing key (output awsRecordSigningKeyArn) in it: see "
                   "docs/backup-authenticity.md (plain config)")


def parse_signing_public_keys(value: Any, key: str = "signingPublicKeys",
                              fix: str = SIGNING_KEYS_FIX) -> str | None:
    """``vo2max-dr:signingPublicKeys`` (or ``recordPublicKeys``): one or more PEM P-256 public
    keys (the job's own check, ``vo2dr.signing.load_public_keys``). None when unset."""
    if value is None or value == "":
        return None
    from vo2dr.signing import load_public_keys

    if not isinstance(value, str) or "PRIVATE KEY" in value:
        raise _fail(key, "is not a PEM bundle of public keys (never put a private key in "
                    "config)", fix)
    try:
        load_public_keys(value)
    except ConfigError as exc:
        raise _fail(key, f"is not usable: {exc}", fix) from exc
    return value


def parse_record_public_keys(value: Any, signing_public_keys: str | None) -> str | None:
    """``vo2max-dr:recordPublicKeys``: the drill record keys' public halves, none of which may
    also be a manifest key: a key trusted for manifests would let the drill's identity sign a
    backup every reader accepts."""
    records = parse_signing_public_keys(value, "recordPublicKeys", RECORD_KEYS_FIX)
    if records is None or signing_public_keys is None:
        return records
    from vo2dr.signing import load_public_keys

    shared = set(load_public_keys(records)) & set(load_public_keys(signing_public_keys))
    if shared:
        raise _fail("recordPublicKeys", f"shares {len(shared)} key(s) with signingPublicKeys "
                    "(a record key must never be trusted for manifests)",
                    "keep the record signing key's public half in recordPublicKeys only")
    return records
