"""AWS KMS: the customer-managed key rotates, and the services that hold backup metadata or
alerts (SQS, SNS, Secrets Manager) encrypt under it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.expectations import Expectations
from policy.parsing import _as_list, _days, _num, _statements, parse_policy_document
from policy.resources import Check

AWS_MAX_ROTATION_DAYS = 365


def check_aws_kms_key_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    if p.get("keyUsage") == "SIGN_VERIFY":
        return []  # signing keys cannot rotate: aws-kms-signing-key-writer-only checks them
    out = []
    if p.get("enableKeyRotation") is not True:
        out.append("KMS key has automatic rotation off (enableKeyRotation is not true)")
    spec = p.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    if spec != "SYMMETRIC_DEFAULT":
        out.append(f"KMS key spec is {spec}: only SYMMETRIC_DEFAULT keys rotate automatically")
    period = _num(p.get("rotationPeriodInDays"))
    if period is not None and period > AWS_MAX_ROTATION_DAYS:
        out.append(f"KMS key rotates every {_days(period)} days, more than "
                   f"{AWS_MAX_ROTATION_DAYS}")
    return out


# Manifest signing keys (docs/backup-authenticity.md): an action list that hands out kms:Sign.
_SIGN_ACTIONS = ("kms:Sign", "kms:*", "*")


def check_aws_kms_signing_key(_t: str, p: Mapping[str, Any],
                              _c: Expectations | None) -> list[str]:
    """A SIGN_VERIFY key is ECC_NIST_P256, and its key policy lets one role sign, nobody else
    (no account root, no wildcard, no grants that could hand kms:Sign out)."""
    if p.get("keyUsage") != "SIGN_VERIFY":
        return []
    out = []
    spec = p.get("customerMasterKeySpec")
    if spec != "ECC_NIST_P256":
        out.append(f"signing key spec is {spec}: readers verify ECC_NIST_P256 (ECDSA_SHA_256)")
    doc = parse_policy_document(p.get("policy"))
    if doc is None:
        return [*out, "signing key has no key policy naming its one signer"]
    signers: set[str] = set()
    for st in _statements(doc):
        if st.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in _as_list(st.get("Action"))]
        if "kms:CreateGrant" in actions:
            out.append(f"statement {st.get('Sid', '?')} allows kms:CreateGrant on the signing "
                       "key: a grant could hand kms:Sign to anyone")
        if not any(a in _SIGN_ACTIONS for a in actions):
            continue
        principal = st.get("Principal")
        arns = (_as_list(principal.get("AWS")) if isinstance(principal, Mapping)
                else [principal])
        for arn in arns:
            if not isinstance(arn, str) or arn == "*" or ":role/" not in arn:
                out.append(f"statement {st.get('Sid', '?')} lets {arn!r} sign: only the backup "
                           "writer role may")
            else:
                signers.add(arn)
    if len(signers) > 1:
        out.append(f"{len(signers)} roles may sign with the key: only the backup writer may")
    if not signers and not out:
        out.append("no role may sign with the key: the backup writer role must")
    return out


def _cmk_check(field_: str, aws_managed: str, what: str) -> Check:
    def check(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
        key = p.get(field_)
        if not key:
            return [f"{what} is not encrypted with a customer-managed KMS key ({field_} unset)"]
        if str(key) == aws_managed:
            return [f"{what} uses the AWS-managed key {aws_managed}, not a customer-managed key"]
        return []
    return check
