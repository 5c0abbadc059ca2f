"""The data classes of the backup strategy: which tables, how fresh (RPO), how fast back (RTO),
and the intraday tier (how long the backups after the first of a day are kept and locked).

This module is pure (no Pulumi, no cloud SDK) so that the Pulumi program (through
``infra/config.py``) and the job (through ``VO2DR_STRATEGY`` or a stack file) validate the
strategy with the same code. Every number comes from the stack file; none is defaulted here.
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
STACK_NAMESPACE = "vo2max-dr"
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
class CodeSourceSpec:
    """The code repository: every ref, as one git bundle (``vo2dr.sources.code``)."""

    data_class: str


@dataclass(frozen=True)
class ConfigSourceSpec:
    """The app's configuration: files matching ``paths`` at the default branch's head, and
    the environment's secrets in AWS Secrets Manager and SSM Parameter Store
    (``vo2dr.sources.config``)."""

    data_class: str
    paths: tuple[str, ...]
    secret_names: tuple[str, ...] = ()
    secret_prefix: str = ""
    # SSM Parameter Store: parameters by name, and every parameter under each path
    # (recursively; a path starts and ends with "/").
    parameter_names: tuple[str, ...] = ()
    parameter_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnapshotSource:
    """A source backed up as incremental snapshots (``vo2dr.snapshots``): one or more named,
    read-only origins (``s3://bucket/prefix/``, ``gs://bucket/prefix/``, ``file:///dir/``);
    object ``k`` under origin ``o`` is the snapshot entry ``o/k``."""

    name: str
    data_class: str
    origins: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"dataClass": self.data_class, "origins": dict(self.origins)}


SNAPSHOT_SOURCES = ("assets", "logs")
ORIGIN_SCHEMES = ("s3", "gs", "file")
_ORIGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$")


@dataclass(frozen=True)
class Application:
    """``vo2max-dr:application``: the application sources backed up beside the database. The
    repository's read-only token is a secret (``vo2max-dr:repositoryToken``), never here."""

    repository_url: str = ""
    code: CodeSourceSpec | None = None
    config: ConfigSourceSpec | None = None
    # assets and/or logs (SNAPSHOT_SOURCES), by name
    snapshots: Mapping[str, SnapshotSource] = field(default_factory=dict)

    def sources(self) -> dict[str, CodeSourceSpec | ConfigSourceSpec]:
        """The single-body sources (code, config); the snapshot ones are :attr:`snapshots`."""
        return {k: v for k, v in (("code", self.code), ("config", self.config)) if v}

    def all_sources(self) -> dict[str, CodeSourceSpec | ConfigSourceSpec | SnapshotSource]:
        """Every configured application source, snapshot sources included."""
        return {**self.sources(), **self.snapshots}

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = ({"repositoryUrl": self.repository_url}
                               if self.repository_url else {})
        doc.update({name: snap.to_json() for name, snap in self.snapshots.items()})
        if self.code:
            doc["code"] = {"dataClass": self.code.data_class}
        if self.config:
            doc["config"] = {"dataClass": self.config.data_class,
                             "paths": list(self.config.paths),
                             "secretNames": list(self.config.secret_names),
                             "secretPrefix": self.config.secret_prefix}
            if self.config.parameter_names:
                doc["config"]["parameterNames"] = list(self.config.parameter_names)
            if self.config.parameter_paths:
                doc["config"]["parameterPaths"] = list(self.config.parameter_paths)
        return doc


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


_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]/-]+$")
# SSM parameter names: letters, digits and _.- in "/"-separated levels, at most 15 levels and
# 1011 characters; "aws" and "ssm" are reserved first levels (SSM User Guide, "Parameter name
# requirements and constraints").
_PARAMETER_LEVEL = re.compile(r"^[A-Za-z0-9_.-]+$")
_PARAMETER_MAX_LEVELS = 15
_PARAMETER_MAX_CHARS = 1011


def _parameter_levels(name: str) -> list[str] | None:
    """The levels of an SSM parameter name or path, or None when it is not a valid one."""
    if not isinstance(name, str) or not name or len(name) > _PARAMETER_MAX_CHARS:
        return None
    levels = name.strip("/").split("/")
    if ("/" in name.strip("/") and not name.startswith("/")) or "//" in name \
            or len(levels) > _PARAMETER_MAX_LEVELS \
            or not all(_PARAMETER_LEVEL.match(x) for x in levels) \
            or levels[0].lower().startswith(("aws", "ssm")):
        return None
    return levels


def _parameter_settings(c: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(parameterNames, parameterPaths)`` of ``application.config``, validated."""
    names = c.get("parameterNames", [])
    if not isinstance(names, list) or not all(
            _parameter_levels(n) and not n.endswith("/") for n in names):
        raise ConfigError(f"{_app_key('config', 'parameterNames')} must be a list of SSM "
                          "parameter names such as /vo2max/production/app/nextauth-secret "
                          "(levels of letters, digits and _.-, not starting with aws or ssm)")
    paths = c.get("parameterPaths", [])
    if not isinstance(paths, list):
        raise ConfigError(f"{_app_key('config', 'parameterPaths')} must be a list of SSM paths "
                          "such as /vo2max/production/app/")
    for path in paths:
        if not (isinstance(path, str) and path.startswith("/") and path.endswith("/")
                and path != "/" and _parameter_levels(path)):
            raise ConfigError(f"{_app_key('config', 'parameterPaths')} has {path!r}: use an SSM "
                              "path that starts and ends with / and is not / itself (every "
                              "parameter under it is read, recursively)")
    return tuple(names), tuple(paths)


def _app_key(*parts: str) -> str:
    return ".".join((f"{STACK_NAMESPACE}:application", *parts))


def _source_class(raw: Mapping[str, Any], source: str,
                  data_classes: Mapping[str, DataClass]) -> str:
    name = raw.get("dataClass")
    if name not in data_classes:
        raise ConfigError(f"{_app_key(source, 'dataClass')} is {name!r}: use one of "
                          f"{', '.join(data_classes)} (it sets the source's RPO, RTO and "
                          "schedule)")
    return str(name)


def parse_origin(url: Any, key: str) -> tuple[str, str, str]:
    """``(scheme, bucket or "", prefix or absolute directory)`` of an origin URL, or a
    :class:`ConfigError` naming ``key``. Prefixes are "" or end with "/", so an origin never
    reaches objects of a sibling prefix (``uploads`` would also match ``uploads-old/``)."""
    from urllib.parse import urlparse

    hint = ("use s3://bucket/prefix/, gs://bucket/prefix/ or file:///absolute/dir/")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{key} must be an origin URL: {hint}; got {url!r}")
    parsed = urlparse(url)
    if parsed.scheme not in ORIGIN_SCHEMES or parsed.query or parsed.fragment \
            or parsed.password or parsed.username:
        raise ConfigError(f"{key} is {url!r}: {hint} (no credentials, query or fragment)")
    path = parsed.path
    if ".." in path.split("/") or "//" in path:
        raise ConfigError(f"{key} is {url!r}: the path must not contain .. or empty parts")
    if parsed.scheme == "file":
        if parsed.netloc or not path.startswith("/"):
            raise ConfigError(f"{key} is {url!r}: a local origin is file:///absolute/dir/")
        return "file", "", path.rstrip("/") or "/"
    if not _BUCKET.match(parsed.netloc or ""):
        raise ConfigError(f"{key} is {url!r}: {parsed.netloc!r} is not a bucket name")
    prefix = path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        raise ConfigError(f"{key} is {url!r}: end the prefix with / (a bare prefix would also "
                          "match its siblings)")
    return parsed.scheme, parsed.netloc, prefix


def parse_snapshot_source(name: str, raw: Any,
                          data_classes: Mapping[str, DataClass]) -> SnapshotSource:
    """``vo2max-dr:application.<assets|logs>``: its data class and named origins."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_app_key(name)} must be a mapping with dataClass and origins")
    for extra in sorted(set(raw) - {"dataClass", "origins"}):
        raise ConfigError(f"{_app_key(name, extra)} is not a setting: use dataClass and origins")
    data_class = _source_class(raw, name, data_classes)
    origins = raw.get("origins")
    if not isinstance(origins, Mapping) or not origins:
        raise ConfigError(f"{_app_key(name, 'origins')} must map origin names to URLs, e.g. "
                          "uploads: s3://bucket/uploads/")
    for origin, url in origins.items():
        if not isinstance(origin, str) or not _ORIGIN_NAME.match(origin):
            raise ConfigError(f"{_app_key(name, 'origins')} has the name {origin!r}: use "
                              "lower-case letters, digits, - and _ (it is the entries' prefix)")
        parse_origin(url, _app_key(name, "origins", origin))
    return SnapshotSource(name=name, data_class=data_class,
                          origins={str(k): str(v) for k, v in sorted(origins.items())})


def parse_application(raw: Any, data_classes: Mapping[str, DataClass]) -> Application:
    """Validate ``vo2max-dr:application``: the repository URL (https, ssh or a local path;
    never with credentials in it), and per source its data class, the config's path globs
    and secret names or prefix, the snapshot sources' origins."""
    from urllib.parse import urlparse

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_app_key()} must be a mapping with repositoryUrl, code and config")
    snapshots = {name: parse_snapshot_source(name, raw[name], data_classes)
                 for name in SNAPSHOT_SOURCES if raw.get(name) is not None}
    for extra in sorted(set(raw) - {"repositoryUrl", "code", "config", *SNAPSHOT_SOURCES}):
        raise ConfigError(f"{_app_key(extra)} is not a setting: use code, config, assets or "
                          "logs")
    if raw.get("code") is None and raw.get("config") is None and "repositoryUrl" not in raw:
        if not snapshots:
            raise ConfigError(f"{_app_key()} backs up nothing: add code, config, assets "
                              "and/or logs")
        return Application(snapshots=snapshots)
    url = raw.get("repositoryUrl")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{_app_key('repositoryUrl')} must be the repository's clone URL, "
                          f"got {url!r}")
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "ssh", "file", "") or (
            parsed.scheme == "https" and not parsed.hostname):
        raise ConfigError(f"{_app_key('repositoryUrl')} must be an https://, ssh:// or file:// "
                          "URL or a local path")
    if parsed.password or (parsed.scheme == "https" and parsed.username):
        raise ConfigError(f"{_app_key('repositoryUrl')} carries credentials: remove them and "
                          f"set the read-only token with `pulumi config set --secret "
                          f"{STACK_NAMESPACE}:repositoryToken`")
    code = None
    if raw.get("code") is not None:
        if not isinstance(raw["code"], Mapping):
            raise ConfigError(f"{_app_key('code')} must be a mapping with dataClass")
        code = CodeSourceSpec(data_class=_source_class(raw["code"], "code", data_classes))
    config = None
    if raw.get("config") is not None:
        c = raw["config"]
        if not isinstance(c, Mapping):
            raise ConfigError(f"{_app_key('config')} must be a mapping with dataClass and paths")
        paths = c.get("paths")
        if not isinstance(paths, list) or not paths:
            raise ConfigError(f"{_app_key('config', 'paths')} must be a non-empty list of path "
                              "globs in the repository, e.g. ['.env.*', 'vercel.json']")
        for p in paths:
            if (not isinstance(p, str) or not _GLOB.match(p) or p.startswith("/")
                    or ".." in p.split("/")):
                raise ConfigError(f"{_app_key('config', 'paths')} has {p!r}: use a relative "
                                  "glob inside the repository (no leading /, no ..)")
        names = c.get("secretNames", [])
        if not isinstance(names, list) or not all(
                isinstance(n, str) and _SECRET_NAME.match(n) for n in names):
            raise ConfigError(f"{_app_key('config', 'secretNames')} must be a list of Secrets "
                              "Manager names (letters, digits and /_+=.@-)")
        prefix = c.get("secretPrefix", "")
        if not isinstance(prefix, str) or (prefix and not _SECRET_NAME.match(prefix)):
            raise ConfigError(f"{_app_key('config', 'secretPrefix')} must be a Secrets Manager "
                              "name prefix such as vo2max/production/app/")
        if prefix and not prefix.endswith("/"):
            raise ConfigError(f"{_app_key('config', 'secretPrefix')} {prefix!r} must end with /"
                              ": a bare prefix would also match other apps' secrets")
        for extra in sorted(set(c) - {"dataClass", "paths", "secretNames", "secretPrefix",
                                      "parameterNames", "parameterPaths"}):
            raise ConfigError(f"{_app_key('config', extra)} is not a setting: use dataClass, "
                              "paths, secretNames, secretPrefix, parameterNames or "
                              "parameterPaths")
        parameter_names, parameter_paths = _parameter_settings(c)
        config = ConfigSourceSpec(
            data_class=_source_class(c, "config", data_classes), paths=tuple(paths),
            secret_names=tuple(names), secret_prefix=prefix,
            parameter_names=parameter_names, parameter_paths=parameter_paths)
    if code is None and config is None and not snapshots:
        raise ConfigError(f"{_app_key()} backs up nothing: add code, config, assets and/or "
                          "logs")
    return Application(repository_url=url, code=code, config=config, snapshots=snapshots)


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
