"""AWS KMS: the customer-managed key rotates, and the services that hold backup metadata or
alerts (SQS, SNS, Secrets Manager) encrypt under it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.expectations import Expectations
from policy.parsing import _days, _num
from policy.resources import Check

AWS_MAX_ROTATION_DAYS = 365


def check_aws_kms_key_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
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


def _cmk_check(field_: str, aws_managed: str, what: str) -> Check:
    def check(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
        key = p.get(field_)
        if not key:
            return [f"{what} is not encrypted with a customer-managed KMS key ({field_} unset)"]
        if str(key) == aws_managed:
            return [f"{what} uses the AWS-managed key {aws_managed}, not a customer-managed key"]
        return []
    return check
