"""Reading what resources declare: nested properties, numbers, durations (ISO 8601 and GCP's
``"<n>s"``), schedule expressions (EventBridge ``rate()``/``cron()`` and Unix cron) and IAM
policy documents."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

import isodate

DAY_SECONDS = 86_400
MINUTES_PER_DAY = 1_440


def get(props: Any, path: str, default: Any = None) -> Any:
    """``get(props, "rule.defaultRetention.mode")``; missing keys give ``default``."""
    node = props
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _days(value: Any) -> str:
    n = _num(value)
    return str(int(n)) if n is not None and n == int(n) else str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_policy_document(doc: Any) -> Mapping[str, Any] | None:
    if isinstance(doc, Mapping):
        return doc
    if isinstance(doc, str):
        try:
            parsed = json.loads(doc)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def _statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(doc.get("Statement")) if isinstance(s, Mapping)]


def _is_public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


def iso_duration_days(value: Any) -> int | None:
    """``P90D`` -> 90, ``P1Y`` -> 365, ``P3M`` -> 90 (30-day months); None if unparseable.
    Date durations only (Azure key rotation policies take days, months, years): a time part
    (``PT24H``), a fraction or a sign is refused, as before isodate parsed them."""
    text = str(value or "")
    if not text.startswith("P") or "T" in text:
        return None
    try:
        parsed = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError):
        return None
    if isinstance(parsed, isodate.Duration):
        years, months, rest = parsed.years, parsed.months, parsed.tdelta
    else:
        years, months, rest = 0, 0, parsed
    if years != int(years) or months != int(months) or rest.seconds or rest.microseconds \
            or min(years, months, rest.days) < 0:
        return None
    return int(years) * 365 + int(months) * 30 + rest.days


def _seconds(value: Any) -> float | None:
    """GCP durations: ``"7776000s"`` or a number of seconds."""
    if isinstance(value, str) and value.endswith("s"):
        value = value[:-1]
    return _num(value)


# Our own cron reading, not a library's: the checks need a schedule's structure (the longest
# gap between runs in a day, "exactly once a day at", "once a month"), not next-run iteration,
# and EventBridge's dialect is not Unix cron's. croniter reads a sixth field as seconds (here
# it is the year) and numbers weekdays 0-6 from Sunday (EventBridge: 1-7); the EventBridge
# parsers on PyPI (pyawscron, aws-croniter) are single-maintainer projects we would pin for
# a hundred lines. What we read: ``?``, ``*``, lists, ranges, steps, ``L`` and ``MON#1``.
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_RATE_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": MINUTES_PER_DAY}


def _cron_fields(expr: str) -> list[str] | None:
    m = _CRON.match(expr.strip())
    fields = (m.group(1) if m else expr).split()
    return fields if len(fields) in (5, 6) else None


def _expand(field_: str, low: int, high: int) -> list[int] | None:
    values: set[int] = set()
    for part in field_.split(","):
        step, stepped = 1, "/" in part
        if stepped:
            part, step_s = part.split("/", 1)
            if not step_s.isdigit() or int(step_s) == 0:
                return None
            step = int(step_s)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                return None
            start, end = int(a), int(b)
        elif part.isdigit():
            start = int(part)
            end = high if stepped else start
        else:
            return None
        values.update(range(start, end + 1, step))
    return sorted(v for v in values if low <= v <= high) or None


def schedule_gap_minutes(expr: str) -> float | None:
    """The longest gap, in minutes, between two runs of an EventBridge ``rate()``/``cron()`` or
    a Unix cron expression that runs at least daily; None for anything rarer or unparseable."""
    m = _RATE.match(expr.strip())
    if m:
        return int(m.group(1)) * _RATE_UNIT_MINUTES[m.group(2).rstrip("s")]
    fields = _cron_fields(expr)
    if fields is None:
        return None
    minute, hour, dom, month, dow = fields[:5]
    if any(f not in ("*", "?") for f in (dom, month, dow)):
        return None
    minutes, hours = _expand(minute, 0, 59), _expand(hour, 0, 23)
    if not minutes or not hours:
        return None
    times = sorted(h * 60 + mi for h in hours for mi in minutes)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    gaps.append(times[0] + MINUTES_PER_DAY - times[-1])
    return float(max(gaps))


def daily_time(expr: str) -> str | None:
    """``cron(0 2 * * ? *)`` -> ``"02:00"`` when the expression runs exactly once a day."""
    fields = _cron_fields(expr)
    if fields is None or not (fields[0].isdigit() and fields[1].isdigit()):
        return None
    if any(f not in ("*", "?") for f in fields[2:5]):
        return None
    return f"{int(fields[1]):02d}:{int(fields[0]):02d}"


def is_monthly(expr: str) -> bool:
    """Runs once a month: a fixed day of month with any weekday, or the n-th weekday (``MON#1``)
    with any day of month. Unix cron's ``0 9 1-7 * 1`` is *not* monthly: when both day fields
    are set it fires on days 1-7 *and* on every Monday."""
    fields = _cron_fields(expr)
    if fields is None:
        return False
    minute, hour, dom, month, dow = fields[:5]
    if not (minute.isdigit() and hour.isdigit() and month in ("*", "?")):
        return False
    if re.fullmatch(r"\d{1,2}|L", dom) and dow in ("*", "?"):
        return True
    nth_weekday = re.fullmatch(r"[A-Z0-9]{1,3}#[1-5]|[A-Z0-9]{1,3}L", dow)
    return dom in ("*", "?") and nth_weekday is not None
