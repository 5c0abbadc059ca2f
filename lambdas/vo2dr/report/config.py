"""What the report needs from the stack file beyond the data classes: retention and tiering (the
lifecycle), the status schedule (RPO sampling), the Lambda time limit (size growth), the
enabled clouds and the report's targets and price overrides (``vo2max-dr:report``, validated by
:func:`vo2dr.strategy.parse_report_settings`). Read once, validated, with one-line errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vo2dr.exceptions import ConfigError
from vo2dr.strategy import (
    ReportSettings,
    Strategy,
    parse_report_settings,
    parse_strategy,
)
from vo2dr.strategy_application import STACK_NAMESPACE

# cloud of the stack file -> the store's name in the job (vo2dr.stores.STORE_NAMES)
CLOUD_STORE = {"aws": "s3", "gcp": "gcs", "azure": "azure"}
STORE_CLOUD = {v: k for k, v in CLOUD_STORE.items()}
DAYS_PER_WEEK, DAYS_PER_YEAR, MONTHS_PER_YEAR = 7, 365, 12


@dataclass(frozen=True)
class ReportConfig:
    environment: str
    strategy: Strategy
    # days each tier is kept (intraday included), as the lifecycle rules count them
    retention_days: Mapping[str, int]
    tiering_days: tuple[int, int, int]  # infrequent, archive, deep archive
    status_every_minutes: int
    status_offset_minutes: int
    lambda_timeout_seconds: int
    clouds: tuple[str, ...]  # enabled, in the stack's order: aws, gcp, azure
    settings: ReportSettings

    @property
    def stores(self) -> tuple[str, ...]:
        return tuple(CLOUD_STORE[c] for c in self.clouds)


def _positive(raw: Any, section: str, name: str) -> int:
    value = raw.get(name) if isinstance(raw, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{STACK_NAMESPACE}:{section}.{name} must be a positive whole number,"
                          f" got {value!r}: set it in Pulumi.<stack>.yaml")
    return value


def report_config(stack: Mapping[str, Any], environment: str) -> ReportConfig:
    """From the ``vo2max-dr:*`` settings of a stack file (namespace stripped)."""
    strategy = parse_strategy(stack.get("dataClasses"), stack.get("retention"),
                              stack.get("immutability"), stack.get("application"))
    ret = stack.get("retention")
    retention = {
        "daily": _positive(ret, "retention", "dailyDays"),
        "weekly": _positive(ret, "retention", "weeklyWeeks") * DAYS_PER_WEEK,
        "monthly": _positive(ret, "retention", "monthlyMonths") * DAYS_PER_YEAR
        // MONTHS_PER_YEAR,
        "yearly": _positive(ret, "retention", "yearlyYears") * DAYS_PER_YEAR,
    }
    if strategy.intraday is not None:
        retention = {"intraday": strategy.intraday.days, **retention}
    tiering = stack.get("tiering")
    steps = tuple(_positive(tiering, "tiering", n) for n in
                  ("infrequentAfterDays", "archiveAfterDays", "deepArchiveAfterDays"))
    mon = stack.get("monitoring")
    clouds_raw = stack.get("clouds") or {}
    clouds = tuple(c for c in CLOUD_STORE
                   if isinstance(clouds_raw.get(c), Mapping) and clouds_raw[c].get("enabled"))
    if not clouds:
        raise ConfigError(f"{STACK_NAMESPACE}:clouds enables no cloud: nothing to report on")
    return ReportConfig(
        environment=environment, strategy=strategy, retention_days=retention,
        tiering_days=(steps[0], steps[1], steps[2]),
        status_every_minutes=_positive(mon, "monitoring", "statusEveryMinutes"),
        status_offset_minutes=_positive(mon, "monitoring", "statusOffsetMinutes"),
        lambda_timeout_seconds=_positive(stack.get("runtime"), "runtime",
                                         "lambdaTimeoutSeconds"),
        clouds=clouds, settings=parse_report_settings(stack.get("report")))
