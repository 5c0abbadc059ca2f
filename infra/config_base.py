"""What every part of the stack config shares: the namespace, the environments, tiers and
clouds, and the one-line errors that name the key and say how to fix it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vo2dr.exceptions import ConfigError
from vo2dr.layout import INTRADAY

NS = "vo2max-dr"
ENVIRONMENTS = ("staging", "production")
GFS_TIERS = ("daily", "weekly", "monthly", "yearly")
# Every tier prefix of the layout (vo2dr.layout.TIERS), shortest-kept first.
TIERS = (INTRADAY, *GFS_TIERS)
CLOUDS = ("aws", "gcp", "azure")
_DAYS_PER_WEEK, _DAYS_PER_YEAR, _MONTHS_PER_YEAR = 7, 365, 12
_MINUTES_PER_HOUR, _HOURS_PER_DAY = 60, 24


def _fail(key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{NS}:{key} {problem}: {fix}")


def _positive_int(raw: Mapping[str, Any], section: str, name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(f"{section}.{name}", f"must be a positive whole number, got {value!r}",
                    f"set {NS}:{section}.{name} in Pulumi.<stack>.yaml")
    return value


def _mapping(raw: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _fail(key, "is missing or not a mapping", f"add {NS}:{key} to Pulumi.<stack>.yaml")
    return raw
