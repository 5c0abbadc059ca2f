"""The data classes of the backup strategy: which tables, how fresh (RPO), how fast back (RTO),
and the intraday tier (how long the backups after the first of a day are kept and locked).

This module is pure (no Pulumi, no cloud SDK) so that the Pulumi program (through
``infra/config.py``) and the job (through ``VO2DR_STRATEGY`` or a stack file) validate the
strategy with the same code. Every number comes from the stack file; none is defaulted here.
The application sources (``vo2max-dr:application``: code, config, assets, logs) are parsed in
``vo2dr.strategy_application``, as part of :func:`parse_strategy`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from vo2dr.exceptions import ConfigError
from vo2dr.strategy_application import (
    STACK_NAMESPACE,
    Application,
    SnapshotSource,
    parse_application,
)

# non-critical (the strategy's system logs) holds no table: application sources only.
KNOWN_DATA_CLASSES = ("critical", "important", "full", "non-critical")
NO_DATABASE_CLASSES = ("non-critical",)
# Below this, back-to-back pg_dump runs and their uploads would overlap on a real database.
MIN_RPO_MINUTES = 5
MINUTES_PER_DAY = 24 * 60
HOURS_PER_DAY = 24
LOCK_MODES = ("governance", "compliance")
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# zstd levels the job accepts: 1 (fastest) to 19 (the highest without --ultra, whose window
# would need far more memory to decompress). Negative "fast" levels give up most of the ratio.
MIN_COMPRESSION_LEVEL, MAX_COMPRESSION_LEVEL = 1, 19
# Compression threads beyond the Lambda's vCPUs (at most 6 at 10 GB) only add contention.
MAX_COMPRESSION_THREADS = 8


@dataclass(frozen=True)
class DataClass:
    """One data class: ``tables`` empty means the whole database (the full dump), unless
    ``has_database`` is false (``tables: []``): then the class backs up no table at all and
    only application sources (snapshots of assets or logs) use its RPO, RTO and schedule."""

    name: str
    tables: tuple[str, ...]
    rpo_minutes: int
    rto_minutes: int
    daily_at_utc: str | None = None
    sanity_queries: tuple[str, ...] = field(default_factory=tuple)
    has_database: bool = True

    @property
    def is_full(self) -> bool:
        return self.has_database and not self.tables

    @property
    def rpo_seconds(self) -> int:
        return self.rpo_minutes * 60

    @property
    def rto_seconds(self) -> int:
        return self.rto_minutes * 60

    def cron_expression(self) -> str:
        """The schedule that meets the RPO, as a clock-aligned five-field Unix cron: once a day
        at ``dailyAtUtc``, otherwise every ``rpoMinutes`` from midnight UTC. The program turns
        it into EventBridge (``infra.runtime.eventbridge_cron``) and Cloud Scheduler crons."""
        if self.daily_at_utc is not None:
            hour, minute = self.daily_at_utc.split(":")
            return f"{int(minute)} {int(hour)} * * *"
        if self.rpo_minutes < 60:
            return f"*/{self.rpo_minutes} * * * *"
        if self.rpo_minutes % 60 == 0 and self.rpo_minutes < MINUTES_PER_DAY:
            return f"0 */{self.rpo_minutes // 60} * * *"
        return "0 0 * * *"

    def to_json(self) -> dict[str, Any]:
        return {
            "tables": (list(self.tables) or "all") if self.has_database else [],
            "rpoMinutes": self.rpo_minutes,
            "rtoMinutes": self.rto_minutes,
            **({"dailyAtUtc": self.daily_at_utc} if self.daily_at_utc else {}),
            "sanityQueries": list(self.sanity_queries),
        }


@dataclass(frozen=True)
class IntradayTier:
    """Every backup after the first of its data class in a UTC day (``layout.INTRADAY``): kept
    ``hours`` and locked exactly as long, in the stack's lock mode, by its own retain-until
    time set in the creating request (S3, GCS) or by its container's policy (Azure)."""

    hours: int
    mode: str  # "governance" or "compliance" (immutability.mode)

    @property
    def days(self) -> int:
        """The window in whole days, the unit of every cloud's lifecycle rules."""
        return self.hours // HOURS_PER_DAY

    @property
    def compliance(self) -> bool:
        return self.mode == "compliance"

    def lock_until(self, taken: datetime) -> datetime:
        """The retain-until time of a backup taken at ``taken``. The object is created after
        ``taken``, and lifecycle expires it ``days`` after creation, so the lock always ends
        by its expiry."""
        return taken + timedelta(hours=self.hours)


@dataclass(frozen=True)
class Compression:
    """``vo2max-dr:compression``: the zstd level of every backup body, and the zstd worker
    threads (0: compress on the job's own thread). Any level decompresses with the same code
    (a zstd frame names what it needs), so changing it never affects restoring older backups."""

    level: int
    threads: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "threads": self.threads}


@dataclass(frozen=True)
class Strategy:
    data_classes: Mapping[str, DataClass]
    # None only for a strategy given without retention (tests of the data classes alone).
    intraday: IntradayTier | None = None
    # None when the stack backs up only the database.
    application: Application | None = None
    # None only for a strategy given without it (hand-written test strategies): the pipeline's
    # own level then applies. The stack files set it, and the program requires it.
    compression: Compression | None = None

    def source_class(self, source: str) -> DataClass:
        """The data class an application source belongs to (its RPO, RTO and schedule)."""
        spec = self.application.all_sources().get(source) if self.application else None
        if spec is None:
            raise ConfigError(f"the {source} source is not configured: set "
                              f"{STACK_NAMESPACE}:application.{source} in Pulumi.<stack>.yaml")
        return self.get(spec.data_class)

    def snapshot(self, source: str) -> SnapshotSource:
        """The settings of the ``assets`` or ``logs`` snapshot source."""
        spec = self.application.snapshots.get(source) if self.application else None
        if spec is None:
            raise ConfigError(f"the {source} source is not configured: set "
                              f"{STACK_NAMESPACE}:application.{source} in Pulumi.<stack>.yaml")
        return spec

    @property
    def database_classes(self) -> Mapping[str, DataClass]:
        """The classes with a database backup (every class but those with ``tables: []``)."""
        return {n: c for n, c in self.data_classes.items() if c.has_database}

    def database_class(self, name: str) -> DataClass:
        """``name``, refused with a clear error when it backs up no table."""
        dc = self.get(name)
        if not dc.has_database:
            raise ConfigError(
                f"the {name} data class has no tables ({_key(name, 'tables')} is []): it "
                "backs up application sources only, not the database; use one of "
                f"{', '.join(self.database_classes)}")
        return dc

    def get(self, name: str) -> DataClass:
        try:
            return self.data_classes[name]
        except KeyError:
            known = ", ".join(self.data_classes)
            raise ConfigError(
                f"unknown data class {name!r}: use one of {known} "
                f"(set in {STACK_NAMESPACE}:dataClasses)"
            ) from None

    def to_json(self) -> str:
        """The JSON the Pulumi program puts in ``VO2DR_STRATEGY`` for the job."""
        doc: dict[str, Any] = {"dataClasses": {n: c.to_json()
                                               for n, c in self.data_classes.items()}}
        if self.intraday is not None:
            doc["retention"] = {"intradayHours": self.intraday.hours}
            doc["immutability"] = {"mode": self.intraday.mode}
        if self.application is not None:
            doc["application"] = self.application.to_json()
        if self.compression is not None:
            doc["compression"] = self.compression.to_json()
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _key(name: str, field_name: str) -> str:
    return f"{STACK_NAMESPACE}:dataClasses.{name}.{field_name}"


def _int(raw: Mapping[str, Any], name: str, field_name: str) -> int:
    value = raw.get(field_name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"{_key(name, field_name)} must be a positive whole number of minutes, got {value!r}: "
            f"set it in Pulumi.<stack>.yaml"
        )
    return value


def parse_data_class(name: str, raw: Mapping[str, Any]) -> DataClass:
    if name not in KNOWN_DATA_CLASSES:
        raise ConfigError(
            f"{STACK_NAMESPACE}:dataClasses.{name} is not a known data class: "
            f"use one of {', '.join(KNOWN_DATA_CLASSES)}"
        )
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{STACK_NAMESPACE}:dataClasses.{name} must be a mapping of settings")
    tables_raw = raw.get("tables")
    has_database = True
    if tables_raw == "all":
        tables: tuple[str, ...] = ()
    elif name in NO_DATABASE_CLASSES:
        if tables_raw not in (None, []):
            raise ConfigError(f"{_key(name, 'tables')} must be []: the {name} class holds "
                              "application sources (logs) only, no table")
        tables, has_database = (), False
    elif isinstance(tables_raw, list) and tables_raw:
        for t in tables_raw:
            if not isinstance(t, str) or not _TABLE_NAME.match(t):
                raise ConfigError(
                    f"{_key(name, 'tables')} has an invalid table name {t!r}: use lower-case "
                    "SQL identifiers such as session_metrics or app.session_metrics"
                )
        if len(set(tables_raw)) != len(tables_raw):
            raise ConfigError(f"{_key(name, 'tables')} lists a table twice: list each table once")
        tables = tuple(tables_raw)
    else:
        raise ConfigError(
            f"{_key(name, 'tables')} must be a non-empty list of table names, or 'all' for the "
            f"whole database; got {tables_raw!r}"
        )
    rpo = _int(raw, name, "rpoMinutes")
    rto = _int(raw, name, "rtoMinutes")
    if rpo < MIN_RPO_MINUTES:
        raise ConfigError(
            f"{_key(name, 'rpoMinutes')} is {rpo}, below the {MIN_RPO_MINUTES}-minute minimum a "
            f"dump-and-upload cycle can meet: raise it to {MIN_RPO_MINUTES} or more"
        )
    at = raw.get("dailyAtUtc")
    if at is not None:
        if not isinstance(at, str) or not _TIME_OF_DAY.match(at):
            raise ConfigError(
                f"{_key(name, 'dailyAtUtc')} must be a UTC time of day as \"HH:MM\", got {at!r}"
            )
        if rpo < MINUTES_PER_DAY:
            raise ConfigError(
                f"{_key(name, 'dailyAtUtc')} runs once a day, which cannot meet rpoMinutes={rpo}: "
                f"remove dailyAtUtc or set rpoMinutes to {MINUTES_PER_DAY}"
            )
    elif rpo >= MINUTES_PER_DAY:
        raise ConfigError(
            f"{_key(name, 'rpoMinutes')} is a day or more: set {_key(name, 'dailyAtUtc')} "
            "to the time of day the dump should run"
        )
    elif rpo > 60 and rpo % 60:
        raise ConfigError(
            f"{_key(name, 'rpoMinutes')}={rpo} cannot be scheduled as an even interval: "
            "use minutes below 60 or whole hours"
        )
    elif rpo < 60 and 60 % rpo:
        raise ConfigError(
            f"{_key(name, 'rpoMinutes')}={rpo} does not divide the hour, so a cron schedule "
            "cannot meet it: use 5, 10, 15, 20 or 30"
        )
    queries = raw.get("sanityQueries", [])
    if not isinstance(queries, list) or not all(isinstance(q, str) and q for q in queries):
        raise ConfigError(
            f"{_key(name, 'sanityQueries')} must be a list of SQL queries returning one boolean"
        )
    return DataClass(
        name=name,
        tables=tables,
        rpo_minutes=rpo,
        rto_minutes=rto,
        daily_at_utc=at,
        sanity_queries=tuple(queries),
        has_database=has_database,
    )


def parse_intraday(retention: Any, immutability: Any,
                   data_classes: Mapping[str, DataClass]) -> IntradayTier:
    """``retention.intradayHours`` with the lock mode ``immutability.mode``, validated:

    * at least twice the tightest RPO, so the window always holds more than one backup of the
      most frequent class (one to restore, one to fall back on);
    * shorter than the daily retention (when ``retention.dailyDays`` is given), or the tier
      would keep backups longer than the daily one it exists to thin out;
    * whole days: every cloud's lifecycle rule and Azure's intraday container lock count
      days, so any other window would lock intraday objects past the day their rule expires
      them, or keep them longer than the window says.
    """
    key = f"{STACK_NAMESPACE}:retention.intradayHours"
    if not isinstance(retention, Mapping):
        raise ConfigError(f"{STACK_NAMESPACE}:retention is missing or not a mapping: add it "
                          "to Pulumi.<stack>.yaml")
    hours = retention.get("intradayHours")
    if isinstance(hours, bool) or not isinstance(hours, int) or hours <= 0:
        raise ConfigError(f"{key} must be a positive whole number of hours, got {hours!r}: set "
                          "it in Pulumi.<stack>.yaml (e.g. 168, the managed database's own "
                          "7-day point-in-time window)")
    tightest = min(c.rpo_minutes for c in data_classes.values())
    if hours * 60 < 2 * tightest:
        raise ConfigError(f"{key} is {hours}, shorter than twice the tightest RPO ({tightest} "
                          f"min): keep intraday backups at least {-(-2 * tightest // 60)} hours")
    daily = retention.get("dailyDays")
    if isinstance(daily, int) and not isinstance(daily, bool) and daily > 0 \
            and hours >= daily * HOURS_PER_DAY:
        raise ConfigError(f"{key} is {hours}, not shorter than retention.dailyDays ({daily} "
                          f"days = {daily * HOURS_PER_DAY} h): keep intraday backups for less "
                          "than daily ones")
    if hours % HOURS_PER_DAY:
        raise ConfigError(f"{key} is {hours}, not whole days: lifecycle rules and the Azure "
                          "intraday lock count days, so the lock would outlive the expiry; use "
                          f"a multiple of {HOURS_PER_DAY}")
    mode = immutability.get("mode") if isinstance(immutability, Mapping) else None
    if mode not in LOCK_MODES:
        raise ConfigError(f"{STACK_NAMESPACE}:immutability.mode is {mode!r}: use governance or "
                          "compliance (it is also the intraday objects' lock mode)")
    return IntradayTier(hours=hours, mode=mode)


def parse_compression(raw: Any) -> Compression:
    """Validate ``vo2max-dr:compression``: ``level`` (required) and ``threads`` (optional)."""
    key = f"{STACK_NAMESPACE}:compression"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key} must be a mapping with level (and optionally threads), got "
                          f"{raw!r}: set it in Pulumi.<stack>.yaml")
    unknown = sorted(set(raw) - {"level", "threads"})
    if unknown:
        raise ConfigError(f"{key} has unknown setting(s) {', '.join(map(str, unknown))}: "
                          "use level and threads")
    level, threads = raw.get("level"), raw.get("threads", 0)
    if isinstance(level, bool) or not isinstance(level, int) \
            or not MIN_COMPRESSION_LEVEL <= level <= MAX_COMPRESSION_LEVEL:
        raise ConfigError(f"{key}.level is {level!r}: use a whole number from "
                          f"{MIN_COMPRESSION_LEVEL} to {MAX_COMPRESSION_LEVEL} (zstd levels)")
    if isinstance(threads, bool) or not isinstance(threads, int) \
            or not 0 <= threads <= MAX_COMPRESSION_THREADS:
        raise ConfigError(f"{key}.threads is {threads!r}: use 0 (compress on the job's thread) "
                          f"to {MAX_COMPRESSION_THREADS}")
    return Compression(level=level, threads=threads)


def parse_strategy(data_classes: Any, retention: Any = None,
                   immutability: Any = None, application: Any = None,
                   compression: Any = None) -> Strategy:
    """Validate the ``vo2max-dr:dataClasses`` mapping into a :class:`Strategy`, with the
    intraday tier when ``retention`` is given (``immutability`` then gives its lock mode)."""
    if not isinstance(data_classes, Mapping) or not data_classes:
        raise ConfigError(
            f"{STACK_NAMESPACE}:dataClasses is missing or empty: define critical, important "
            "and full in Pulumi.<stack>.yaml"
        )
    parsed = {name: parse_data_class(name, raw) for name, raw in data_classes.items()}
    if "full" not in parsed:
        raise ConfigError(
            f"{STACK_NAMESPACE}:dataClasses.full is missing: the daily full dump is required"
        )
    if not parsed["full"].is_full:
        # (also refuses tables: [] there: the full class is the whole database)
        raise ConfigError(f"{_key('full', 'tables')} must be 'all': the full dump is everything")
    intraday = (parse_intraday(retention, immutability, parsed) if retention is not None
                else None)
    app = parse_application(application, parsed) if application is not None else None
    comp = parse_compression(compression) if compression is not None else None
    return Strategy(data_classes=parsed, intraday=intraday, application=app, compression=comp)


def read_stack_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``vo2max-dr:*`` settings of a ``Pulumi.<stack>.yaml`` file, namespace stripped.
    The Lambda artifact's ``vo2dr-strategy.json`` is such a file written as JSON (which YAML
    reads too): it is read as JSON, so a cold start does not import and run the YAML parser."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read stack file {path}: {exc}") from exc
    doc: Any = None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None  # YAML's flow style looks like JSON: let the YAML parser judge it
    if doc is None:
        import yaml

        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot read stack file {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"cannot read stack file {path}: not a mapping of settings")
    prefix = STACK_NAMESPACE + ":"
    return {
        k[len(prefix):]: v for k, v in (doc.get("config") or {}).items() if k.startswith(prefix)
    }


def load_strategy(env: Mapping[str, str] | None = None) -> Strategy:
    """The job's strategy: ``VO2DR_STRATEGY`` (JSON set by the Pulumi program) or the stack
    file named by ``VO2DR_STACK_FILE``."""
    env = os.environ if env is None else env
    if env.get("VO2DR_STRATEGY"):
        try:
            raw = json.loads(env["VO2DR_STRATEGY"])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"VO2DR_STRATEGY is not valid JSON: {exc}") from exc
        return parse_strategy(raw.get("dataClasses"), raw.get("retention"),
                              raw.get("immutability"), raw.get("application"),
                              raw.get("compression"))
    if env.get("VO2DR_STACK_FILE"):
        stack = read_stack_file(env["VO2DR_STACK_FILE"])
        return parse_strategy(stack.get("dataClasses"), stack.get("retention"),
                              stack.get("immutability"), stack.get("application"),
                              stack.get("compression"))
    raise ConfigError(
        "no strategy: set VO2DR_STRATEGY (JSON, set by the Pulumi program) or VO2DR_STACK_FILE "
        "(path to Pulumi.<stack>.yaml)"
    )


# -- vo2max-dr:report: the targets the DR report measures against, and price overrides -------

REPORT_CLOUDS = ("aws", "gcp", "azure")
_STORAGE_CLASS = re.compile(r"^[A-Za-z][A-Za-z_]*$")


@dataclass(frozen=True)
class ReportSettings:
    """``vo2max-dr:report``: the strategy's "Continuous Improvement" targets (backup success
    rate in percent, the allowed restore-time variance over the RTO in percent) and overrides
    of the price table's USD per GB-month (``prices.<cloud>.<storage class>``), e.g. a
    negotiated rate."""

    success_rate_target_percent: float
    rto_variance_percent: float
    price_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def _percent(raw: Mapping[str, Any], name: str, *, upper: float) -> float:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 < value <= upper:
        raise ConfigError(f"{STACK_NAMESPACE}:report.{name} must be a number of percent in "
                          f"(0, {upper:g}], got {value!r}: set it in Pulumi.<stack>.yaml")
    return float(value)


def parse_report_settings(raw: Any) -> ReportSettings:
    """Validate ``vo2max-dr:report`` (targets required, price overrides optional)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{STACK_NAMESPACE}:report is missing or not a mapping: add "
                          "successRateTargetPercent and rtoVariancePercent to "
                          "Pulumi.<stack>.yaml")
    for extra in sorted(set(raw) - {"successRateTargetPercent", "rtoVariancePercent",
                                    "prices"}):
        raise ConfigError(f"{STACK_NAMESPACE}:report.{extra} is not a setting: use "
                          "successRateTargetPercent, rtoVariancePercent or prices")
    prices_raw = raw.get("prices") or {}
    if not isinstance(prices_raw, Mapping):
        raise ConfigError(f"{STACK_NAMESPACE}:report.prices must map a cloud to "
                          "{storage class: USD per GB-month}")
    prices: dict[str, dict[str, float]] = {}
    for cloud, classes in prices_raw.items():
        key = f"{STACK_NAMESPACE}:report.prices.{cloud}"
        if cloud not in REPORT_CLOUDS:
            raise ConfigError(f"{key}: unknown cloud, use one of {', '.join(REPORT_CLOUDS)}")
        if not isinstance(classes, Mapping) or not classes:
            raise ConfigError(f"{key} must map storage classes to USD per GB-month")
        for cls, price in classes.items():
            if not isinstance(cls, str) or not _STORAGE_CLASS.match(cls):
                raise ConfigError(f"{key}: {cls!r} is not a storage class name")
            if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
                raise ConfigError(f"{key}.{cls} must be a non-negative USD per GB-month, "
                                  f"got {price!r}")
            prices.setdefault(cloud, {})[cls] = float(price)
    return ReportSettings(
        success_rate_target_percent=_percent(raw, "successRateTargetPercent", upper=100),
        rto_variance_percent=_percent(raw, "rtoVariancePercent", upper=1000),
        price_overrides=prices)
