"""GCP Cloud KMS: the backup key rotates at least every 90 days."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.expectations import Expectations
from policy.parsing import DAY_SECONDS, _days, _seconds

GCP_MAX_ROTATION_SECONDS = 90 * DAY_SECONDS


def check_gcp_kms_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    period = _seconds(p.get("rotationPeriod"))
    if period is None:
        return ["crypto key has no rotationPeriod: it never rotates"]
    if period > GCP_MAX_ROTATION_SECONDS:
        return [f"crypto key rotates every {_days(period / DAY_SECONDS)} days, more than 90"]
    return []
