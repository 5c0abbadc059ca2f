"""A tiny evaluator of schedule expressions: ``rate()``, EventBridge ``cron()`` (six fields,
``?`` and ``#``) and Unix cron, listing the instants a schedule fires, so program tests
measure the gap between two runs against an RPO instead of comparing strings."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

DOW_NAMES = {n: i for i, n in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


def _field(spec: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """Values of one cron field: ``*``, ``a``, ``a-b``, ``*/n``, ``a/n``, ``a-b/n``, lists."""
    out: set[int] = set()
    for part in spec.split(","):
        base, _, step = part.partition("/")
        for name, value in (names or {}).items():
            base = base.replace(name, str(value))
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            start, end = (int(x) for x in base.split("-"))
        else:
            start = int(base)
            end = high if step else start
        out.update(range(start, end + 1, int(step) if step else 1))
    return out


class Cron:
    """A cron schedule, as Unix cron (5 fields, Vixie semantics) or EventBridge (6 fields)."""

    def __init__(self, expression: str) -> None:
        m = re.fullmatch(r"cron\((.*)\)", expression)
        fields = (m.group(1) if m else expression).split()
        self.eventbridge = m is not None
        if self.eventbridge:
            assert len(fields) == 6, expression
            minute, hour, dom, month, dow, _year = fields
            assert "?" in (dom, dow), f"EventBridge needs ? in day-of-month or -week: {expression}"
        else:
            assert len(fields) == 5, expression
            minute, hour, dom, month, dow = fields
        self.minutes = _field(minute, 0, 59)
        self.hours = _field(hour, 0, 23)
        self.months = _field(month, 1, 12)
        self.dom_any = dom in ("*", "?")
        self.dow_any = dow in ("*", "?")
        self.doms = _field(dom, 1, 31) if not self.dom_any else set()
        self.nth: tuple[int, int] | None = None
        if "#" in dow:  # EventBridge: MON#1 = the first Monday of the month
            day, nth = dow.split("#")
            self.nth = (DOW_NAMES[day] if day in DOW_NAMES else int(day) - 1, int(nth))
            self.dows: set[int] = set()
        elif self.eventbridge:  # EventBridge numbers days 1-7 from Sunday
            self.dows = {(d - 1) % 7 for d in _field(dow, 1, 7, {k: v + 1 for k, v in
                                                                 DOW_NAMES.items()})}
        else:  # Unix numbers days 0-7 from Sunday (7 is Sunday too)
            self.dows = {d % 7 for d in _field(dow, 0, 7, DOW_NAMES)}

    def _day(self, t: datetime) -> bool:
        sunday_based = (t.weekday() + 1) % 7
        if self.nth is not None:
            day, nth = self.nth
            return sunday_based == day and (t.day - 1) // 7 + 1 == nth
        if self.dom_any and self.dow_any:
            return True
        if self.dom_any:
            return sunday_based in self.dows
        if self.dow_any:
            return t.day in self.doms
        if self.eventbridge:
            raise AssertionError("EventBridge forbids both day fields")
        # Vixie cron: when both day fields are restricted, a day matching EITHER fires.
        return t.day in self.doms or sunday_based in self.dows

    def fires(self, t: datetime) -> bool:
        return (t.minute in self.minutes and t.hour in self.hours and t.month in self.months
                and self._day(t))

    def runs(self, start: datetime, end: datetime) -> list[datetime]:
        out, t = [], start
        while t < end:
            if t.month in self.months and self._day(t):
                if t.hour in self.hours and t.minute in self.minutes:
                    out.append(t)
                t += timedelta(minutes=1)
            else:
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
        return out


def max_gap_seconds(expression: str, days: int = 3) -> int:
    """The longest time between two runs of a rate() or cron() schedule (seconds)."""
    m = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if m:
        n, unit = int(m.group(1)), m.group(2).rstrip("s")
        assert (n == 1) == (not m.group(2).endswith("s")), f"bad plural in {expression}"
        return n * {"minute": 60, "hour": 3600, "day": 86400}[unit]
    start = datetime(2026, 3, 2, tzinfo=UTC)
    runs = Cron(expression).runs(start, start + timedelta(days=days))
    assert len(runs) >= 2, expression
    return int(max((b - a).total_seconds() for a, b in itertools.pairwise(runs)))
