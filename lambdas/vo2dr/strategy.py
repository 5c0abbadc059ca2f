"""The data classes of the backup strategy: which tables, how fresh (RPO), how fast back (RTO).

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
from pathlib import Path
from typing import Any

from vo2dr.exceptions import ConfigError

KNOWN_DATA_CLASSES = ("critical", "important", "full")
# Below this, back-to-back pg_dump runs and their uploads would overlap on a real database.
MIN_RPO_MINUTES = 5
MINUTES_PER_DAY = 24 * 60
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
STACK_NAMESPACE = "vo2max-dr"


@dataclass(frozen=True)
class DataClass:
    """One data class: ``tables`` empty means the whole database (the full dump)."""

    name: str
    tables: tuple[str, ...]
    rpo_minutes: int
    rto_minutes: int
    daily_at_utc: str | None = None
    sanity_queries: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_full(self) -> bool:
        return not self.tables

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
            "tables": list(self.tables) or "all",
            "rpoMinutes": self.rpo_minutes,
            "rtoMinutes": self.rto_minutes,
            **({"dailyAtUtc": self.daily_at_utc} if self.daily_at_utc else {}),
            "sanityQueries": list(self.sanity_queries),
        }


@dataclass(frozen=True)
class Strategy:
    data_classes: Mapping[str, DataClass]

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
        return json.dumps(
            {"dataClasses": {n: c.to_json() for n, c in self.data_classes.items()}},
            sort_keys=True,
            separators=(",", ":"),
        )


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
    if tables_raw == "all":
        tables: tuple[str, ...] = ()
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
    )


def parse_strategy(data_classes: Any) -> Strategy:
    """Validate the ``vo2max-dr:dataClasses`` mapping into a :class:`Strategy`."""
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
        raise ConfigError(f"{_key('full', 'tables')} must be 'all': the full dump is everything")
    return Strategy(data_classes=parsed)


def read_stack_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``vo2max-dr:*`` settings of a ``Pulumi.<stack>.yaml`` file, namespace stripped."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read stack file {path}: {exc}") from exc
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
        return parse_strategy(raw.get("dataClasses"))
    if env.get("VO2DR_STACK_FILE"):
        return parse_strategy(read_stack_file(env["VO2DR_STACK_FILE"]).get("dataClasses"))
    raise ConfigError(
        "no strategy: set VO2DR_STRATEGY (JSON, set by the Pulumi program) or VO2DR_STACK_FILE "
        "(path to Pulumi.<stack>.yaml)"
    )
