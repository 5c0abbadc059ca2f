"""GCP Cloud KMS: the backup key rotates at least every 90 days; the standby's signing key has
one signer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.expectations import Expectations
from policy.parsing import DAY_SECONDS, _as_list, _days, _seconds, get

GCP_MAX_ROTATION_SECONDS = 90 * DAY_SECONDS


def check_gcp_kms_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    if p.get("purpose") == "ASYMMETRIC_SIGN":
        return []  # asymmetric keys cannot rotate: gcp-kms-signing-key-one-signer checks them
    period = _seconds(p.get("rotationPeriod"))
    if period is None:
        return ["crypto key has no rotationPeriod: it never rotates"]
    if period > GCP_MAX_ROTATION_SECONDS:
        return [f"crypto key rotates every {_days(period / DAY_SECONDS)} days, more than 90"]
    return []


_GCP_SIGNER_ROLES = ("roles/cloudkms.signer", "roles/cloudkms.signerVerifier")


def check_gcp_kms_signing_key(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    """An ASYMMETRIC_SIGN key is EC_SIGN_P256_SHA256; its signer role is held by one service
    account, through an authoritative binding (a CryptoKeyIAMMember of that role would leave
    room for others)."""
    if t == "gcp:kms/cryptoKey:CryptoKey":
        if p.get("purpose") != "ASYMMETRIC_SIGN":
            return []
        algorithm = get(p, "versionTemplate.algorithm")
        return [] if algorithm == "EC_SIGN_P256_SHA256" else [
            f"signing key algorithm is {algorithm}: readers verify EC_SIGN_P256_SHA256"]
    if p.get("role") not in _GCP_SIGNER_ROLES:
        return []
    if t == "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember":
        return [f"{p.get('role')} is granted by a CryptoKeyIAMMember to {p.get('member')!r}: "
                "grant the one signer with an authoritative CryptoKeyIAMBinding"]
    members = [str(m) for m in _as_list(p.get("members"))]
    if len(members) != 1 or not members[0].startswith("serviceAccount:"):
        return [f"{p.get('role')} is held by {members}: exactly one service account (the "
                "standby's) may sign"]
    return []
