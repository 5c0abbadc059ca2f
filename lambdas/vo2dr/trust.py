"""What a reader trusts, from its settings alone: the signing public keys a manifest must be
signed by, the one KMS key and the one recovery key a body may be decrypted with. Nothing a
store holds (a manifest's ``kms_key_arn``, a signature's key id) can widen this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vo2dr.crypto import recovery_key_id
from vo2dr.exceptions import ConfigError
from vo2dr.signing import TrustedKeys


@dataclass(frozen=True)
class Trust:
    signers: TrustedKeys = field(default_factory=TrustedKeys)
    kms_key_arn: str = ""  # the configured KMS key (VO2DR_KMS_KEY_ID), as a key ARN
    recovery_key_id: str = ""  # id of the configured recovery public key, if configured

    @classmethod
    def from_settings(cls, settings) -> Trust:
        """``VO2DR_SIGNING_PUBLIC_KEYS`` is required: without it no backup can be proven ours."""
        pem = _text_or_file(settings.signing_public_keys, "VO2DR_SIGNING_PUBLIC_KEYS")
        if not pem:
            raise ConfigError("missing setting: VO2DR_SIGNING_PUBLIC_KEYS (or "
                              "--signing-public-keys): the PEM public keys backups are signed "
                              "with; without them no backup can be proven ours")
        rid = ""
        if settings.recovery_public_key:
            rid = recovery_key_id(settings.recovery_public_key_pem())
        return cls(signers=TrustedKeys.from_pem(pem), kms_key_arn=settings.kms_key_id,
                   recovery_key_id=rid)


def _text_or_file(value: str, variable: str) -> bytes:
    if not value:
        return b""
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable} is neither PEM text nor a readable file: {exc}") from exc
