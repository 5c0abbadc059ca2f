"""Gather and build: the one function the ``report`` command calls, over any stores that can
be reached (opened tolerantly: a store that cannot be opened or listed is named in the report,
and the others still answer)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vo2dr.exceptions import ConfigError, StoreError, one_line
from vo2dr.layout import SOURCE_LAYOUT
from vo2dr.records import prefix as records_prefix
from vo2dr.settings import Settings, find_stack_file
from vo2dr.signing import TrustedKeys
from vo2dr.stores.base import BackupStore
from vo2dr.strategy import read_stack_file
from vo2dr.trust import Trust, _text_or_file

from . import build, cost
from .config import ReportConfig, report_config
from .history import load_history

_PERIOD = re.compile(r"^(\d+)([dwh])$")
_UNITS = {"d": "days", "w": "weeks", "h": "hours"}


def parse_period(text: str) -> timedelta:
    """``90d``, ``12w``, ``36h``: the period the report covers, back from now."""
    m = _PERIOD.match(text.strip())
    if not m or int(m[1]) <= 0:
        raise ConfigError(f"--since {text!r}: use a positive number of days, weeks or hours, "
                          "e.g. 90d, 12w or 36h")
    return timedelta(**{_UNITS[m[2]]: int(m[1])})


def stack_path(settings: Settings) -> Path:
    """The stack file (the report needs retention, tiering, monitoring and runtime settings
    that ``VO2DR_STRATEGY`` does not carry)."""
    if settings.stack_file:
        return Path(settings.stack_file)
    found = find_stack_file(settings.environment) if settings.environment else None
    if found is None:
        raise ConfigError("the report needs the stack file: set VO2DR_STACK_FILE (or "
                          "--stack-file) to Pulumi.<stack>.yaml, or run from the repository "
                          "with VO2DR_ENVIRONMENT set")
    return found


def stored_objects(stores: Mapping[str, BackupStore], environment: str,
                   progress: Callable[[str], None] | None = None,
                   errors: dict[str, str] | None = None) -> list[cost.StoredObject]:
    """Every object of the environment's layout and records, per store (sizes and times)."""
    prefixes = [p.format(environment=environment) for p, _ in SOURCE_LAYOUT.values()]
    prefixes.append(records_prefix(environment))
    out = []
    for name, store in stores.items():
        try:
            n = 0
            for p in prefixes:
                for info in store.list(p):
                    out.append(cost.StoredObject(name, info.key, info.size, info.last_modified))
                    n += 1
            if progress:
                progress(f"listed {n} objects in {name}")
        except StoreError as exc:
            if errors is not None:
                errors[name] = str(exc)
            if progress:
                progress(f"cannot list {name}: {one_line(exc)}")
    return out


def period_start(text: str, now: datetime) -> datetime:
    """``--since``: a period back from ``now`` (``90d``) or a UTC time (ISO 8601)."""
    if _PERIOD.match(text.strip()):
        return now - parse_period(text)
    from vo2dr.catalog import BackupNotFound, parse_point_in_time

    try:
        since = parse_point_in_time(text)
    except BackupNotFound:
        raise ConfigError(f"--since {text!r}: use a period such as 90d, 12w or 36h, or a UTC "
                          "time such as 2026-06-01T00:00:00Z") from None
    if since >= now:
        raise ConfigError(f"--since {text!r} is not before the end of the period")
    return since


def generate(settings: Settings, stores: Mapping[str, BackupStore], *, since: datetime,
             now: datetime, open_errors: Mapping[str, str] | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The report document over ``[since, now]``, from ``stores``."""
    path = stack_path(settings)
    cfg: ReportConfig = report_config(read_stack_file(path), settings.environment)
    table = cost.load_price_table(cfg.settings)
    trust = Trust.from_settings(settings)  # the signing public keys, before any network
    until = now.astimezone(UTC)
    record_keys = (TrustedKeys.from_pem(_text_or_file(settings.record_public_keys,
                                                      "VO2DR_RECORD_PUBLIC_KEYS"))
                   if settings.record_public_keys else None)
    history = load_history(stores, settings.environment, trust.signers, since, until,
                           record_keys=record_keys, progress=progress)
    history.store_errors = {**(open_errors or {}), **history.store_errors}
    if progress:
        progress("listing every object for storage and cost")
    objects = stored_objects(stores, settings.environment, progress, history.store_errors)
    controls = build.load_controls(path.resolve().parent, settings.environment)
    return build.build_report(cfg, history, objects, table, controls, now=until)
