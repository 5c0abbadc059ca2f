"""Azure Key Vault: the backup key rotates, the vault keeps deleted keys recoverable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.expectations import Expectations
from policy.parsing import _as_list, get, iso_duration_days

AZURE_MAX_ROTATION_DAYS = 365


def check_azure_key_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    actions = _as_list(get(p, "properties.rotationPolicy.lifetimeActions"))
    rotate = [a for a in actions if str(get(a, "action.type", "")).lower() == "rotate"]
    if not rotate:
        return ["key has no rotation policy with a rotate action "
                "(properties.rotationPolicy.lifetimeActions)"]
    days = [iso_duration_days(get(a, "trigger.timeAfterCreate")) for a in rotate]
    if not any(d is not None and d <= AZURE_MAX_ROTATION_DAYS for d in days):
        return [f"key rotates after {[get(a, 'trigger') for a in rotate]}, not within "
                f"{AZURE_MAX_ROTATION_DAYS} days of creation"]
    return []


def check_azure_vault_recoverable(_t: str, p: Mapping[str, Any],
                                  _c: Expectations | None) -> list[str]:
    out = []
    if get(p, "properties.enablePurgeProtection") is not True:
        out.append("key vault has purge protection off: a deleted key (and every backup "
                   "encrypted with it) could be purged at once")
    if get(p, "properties.enableSoftDelete") is False:
        out.append("key vault has soft delete off")
    return out
