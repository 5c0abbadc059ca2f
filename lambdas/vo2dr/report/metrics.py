"""The numbers of the report, as plain functions of the history and the stack's schedules.

* **Windows and success rate**: a data class is due one backup per schedule window
  (:func:`vo2dr.backup.schedule_window`, the primary's clock-aligned schedule); a window counts
  as completed when a backup taken in it is complete (body and manifest) in a store (per class:
  in any store; per store: in that store). Only windows that ended inside the period are due.
  The rate is completed / due, against the stack's target.
* **RPO achieved**: at each status check of the schedule (every ``statusEveryMinutes``,
  ``statusOffsetMinutes`` after midnight UTC), the age of the newest complete backup taken at
  or before the check; the distribution per class.
* **Drills**: restore time against the RTO, as a variance in percent ((restore - RTO) / RTO),
  within the stack's allowed variance when not above it; calendar months without a drill.
* **Trend**: least-squares line of size over time, and the day the full backup, at today's
  measured throughput, stops fitting the Lambda time limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vo2dr.backup import schedule_window
from vo2dr.strategy import DataClass

from .history import BackupEvent, DrillEvent

SECONDS_PER_DAY = 86400


# -- windows and success rate --------------------------------------------------------------------

def due_windows(dc: DataClass, since: datetime, until: datetime) -> Iterator[tuple[datetime,
                                                                                  datetime]]:
    """Every schedule window of ``dc`` that starts at or after ``since`` and ends by ``until``."""
    start, end = schedule_window(dc, since)
    if start < since:
        start, end = schedule_window(dc, end)
    while end <= until:
        yield start, end
        start, end = schedule_window(dc, end)


@dataclass
class MissedWindow:
    start: datetime
    end: datetime
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"start": _iso(self.start), "end": _iso(self.end), "reason": self.reason}


@dataclass
class SuccessRate:
    due: int
    completed: int
    target_percent: float
    missed: list[MissedWindow] = field(default_factory=list)

    @property
    def percent(self) -> float | None:
        return None if self.due == 0 else 100.0 * self.completed / self.due

    @property
    def meets_target(self) -> bool | None:
        p = self.percent
        return None if p is None else p >= self.target_percent

    def to_json(self) -> dict[str, Any]:
        return {"due": self.due, "completed": self.completed,
                "percent": None if self.percent is None else round(self.percent, 3),
                "target_percent": self.target_percent, "meets_target": self.meets_target,
                "missed": [m.to_json() for m in self.missed]}


def success_rate(dc: DataClass, events: Sequence[BackupEvent], since: datetime,
                 until: datetime, target_percent: float,
                 store: str | None = None) -> SuccessRate:
    """Completed / due windows of ``dc`` (``store``: complete in that store; else anywhere).
    A missed window's reason is the failure recorded in it, else "no backup attempt recorded"."""
    times = sorted(e.time for e in events
                   if (e.stores.get(store, False) if store else e.complete_anywhere))
    failures = sorted((e for e in events if not (e.stores.get(store, False) if store
                                                else e.complete_anywhere)),
                      key=lambda e: e.time)
    rate = SuccessRate(due=0, completed=0, target_percent=target_percent)
    i = 0
    for start, end in due_windows(dc, since, until):
        rate.due += 1
        while i < len(times) and times[i] < start:
            i += 1
        if i < len(times) and times[i] < end:
            rate.completed += 1
            continue
        why = [(f.store_errors.get(store) if store else None) or f.reason
               or (f"not complete in {store}" if store else f.outcome)
               for f in failures if start <= f.time < end]
        rate.missed.append(MissedWindow(start, end, "; ".join(dict.fromkeys(why))
                                        or "no backup attempt recorded"))
    return rate


def attempt_rate(events: Sequence[BackupEvent]) -> dict[str, Any]:
    """Attempts that left a complete copy somewhere, out of every attempt recorded."""
    total = len(events)
    ok = sum(1 for e in events if e.complete_anywhere)
    return {"attempts": total, "succeeded": ok, "failed": total - ok,
            "percent": None if total == 0 else round(100.0 * ok / total, 3)}


# -- RPO achieved --------------------------------------------------------------------------------

def status_checks(since: datetime, until: datetime, every_minutes: int,
                  offset_minutes: int) -> Iterator[datetime]:
    """The status check times in ``[since, until]``: every ``every_minutes`` from midnight UTC
    plus ``offset_minutes`` (the status schedule of the stack)."""
    day = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    t = day + timedelta(minutes=offset_minutes % every_minutes)
    step = timedelta(minutes=every_minutes)
    if t < since:
        t += step * math.ceil((since - t) / step)
    while t <= until:
        yield t
        t += step


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the value at rank ceil(q/100 * n)): always a value that
    occurred, so it can be checked by hand."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class RpoDistribution:
    rpo_seconds: int
    ages: list[float]  # seconds, one per status check that had a backup before it
    checks_without_backup: int

    def to_json(self) -> dict[str, Any]:
        s = sorted(self.ages)
        out: dict[str, Any] = {"rpo_seconds": self.rpo_seconds, "checks": len(s),
                               "checks_without_backup": self.checks_without_backup}
        if s:
            within = sum(1 for a in s if a <= self.rpo_seconds)
            out.update({"p50_seconds": percentile(s, 50), "p90_seconds": percentile(s, 90),
                        "p99_seconds": percentile(s, 99), "max_seconds": s[-1],
                        "within_rpo_percent": round(100.0 * within / len(s), 3),
                        "over_rpo_checks": len(s) - within})
        return out


def rpo_distribution(dc: DataClass, events: Sequence[BackupEvent], checks: Sequence[datetime],
                     ) -> RpoDistribution:
    """Age of the newest complete backup (in any store) at each check."""
    times = sorted(e.time for e in events if e.complete_anywhere)
    ages: list[float] = []
    none = 0
    i = 0
    for t in checks:
        while i < len(times) and times[i] <= t:
            i += 1
        if i == 0:
            none += 1
        else:
            ages.append((t - times[i - 1]).total_seconds())
    return RpoDistribution(dc.rpo_seconds, ages, none)


# -- drills --------------------------------------------------------------------------------------

def variance_percent(restore_seconds: float, rto_seconds: float) -> float:
    """How far the restore time is from the RTO, in percent of the RTO (negative: faster)."""
    return 100.0 * (restore_seconds - rto_seconds) / rto_seconds


def drill_history(drills: Sequence[DrillEvent], data_class: str,
                  allowed_variance_percent: float) -> list[dict[str, Any]]:
    out = []
    for d in drills:
        for c in d.classes:
            if c.data_class != data_class:
                continue
            var = (None if c.restore_seconds is None or not c.rto_seconds
                   else variance_percent(float(c.restore_seconds), c.rto_seconds))
            out.append({"time": _iso(d.time), "ok": c.ok,
                        "restore_seconds": c.restore_seconds, "rto_seconds": c.rto_seconds,
                        "variance_percent": None if var is None else round(var, 3),
                        "within_variance": None if var is None
                        else var <= allowed_variance_percent,
                        "backup_id": c.backup_id, "store": c.store,
                        "rows_checked": c.rows_checked, "tables_checked": c.tables_checked,
                        "sanity": f"{c.sanity_passed}/{c.sanity_checked}",
                        "reasons": c.reasons})
    return out


def months_between(since: datetime, until: datetime) -> list[str]:
    """Every calendar month (``YYYY-MM``) that the period touches."""
    y, m = since.year, since.month
    out = []
    while (y, m) <= (until.year, until.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def months_without_drill(drills: Sequence[DrillEvent], data_class: str, since: datetime,
                         until: datetime) -> list[str]:
    """Months of the period with no drill of ``data_class`` (passed or not). The current
    month is left out while it is still running and has had no drill yet."""
    drilled = {d.time.strftime("%Y-%m") for d in drills
               if any(c.data_class == data_class for c in d.classes)}
    months = months_between(since, until)
    current = until.strftime("%Y-%m")
    return [m for m in months if m not in drilled and m != current]


# -- size growth ---------------------------------------------------------------------------------

@dataclass
class Trend:
    slope_per_day: float  # bytes per day
    intercept: float  # bytes at t0
    t0: datetime
    points: int

    def at(self, when: datetime) -> float:
        return self.intercept + self.slope_per_day * (when - self.t0).total_seconds() \
            / SECONDS_PER_DAY

    def to_json(self) -> dict[str, Any]:
        return {"bytes_per_day": round(self.slope_per_day, 3),
                "bytes_at_start": round(self.intercept, 3), "start": _iso(self.t0),
                "points": self.points}


def fit_trend(points: Sequence[tuple[datetime, float]]) -> Trend | None:
    """Ordinary least squares of bytes against days; ``None`` with fewer than two distinct
    times."""
    if len({t for t, _ in points}) < 2:
        return None
    t0 = min(t for t, _ in points)
    xs = [(t - t0).total_seconds() / SECONDS_PER_DAY for t, _ in points]
    ys = [float(v) for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return Trend(slope_per_day=slope, intercept=my - slope * mx, t0=t0, points=n)


def throughput(events: Sequence[BackupEvent], last: int = 5) -> float | None:
    """Today's measured throughput, plaintext bytes per second: the median of the newest
    ``last`` complete backups that recorded a duration."""
    rates = [e.plaintext_bytes / e.seconds for e in sorted(events, key=lambda e: e.time)
             if e.complete_anywhere and e.seconds > 0 and e.plaintext_bytes > 0][-last:]
    if not rates:
        return None
    s = sorted(rates)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def time_limit_forecast(trend: Trend | None, bytes_per_second: float | None,
                        limit_seconds: int, now: datetime) -> dict[str, Any]:
    """When the trend's plaintext size, at ``bytes_per_second``, needs more than the time
    limit: ``fits_until`` (``None``: not on this trend), or ``already`` when it does today."""
    out: dict[str, Any] = {"limit_seconds": limit_seconds,
                           "bytes_per_second": bytes_per_second, "fits_until": None,
                           "already_over": False}
    if trend is None or not bytes_per_second:
        out["note"] = "not enough history to forecast"
        return out
    max_bytes = bytes_per_second * limit_seconds
    out["max_bytes_in_limit"] = round(max_bytes)
    out["seconds_today"] = round(trend.at(now) / bytes_per_second, 3)
    if trend.at(now) > max_bytes:
        out["already_over"] = True
        out["fits_until"] = _iso(now)
    elif trend.slope_per_day > 0:
        days = (max_bytes - trend.intercept) / trend.slope_per_day
        out["fits_until"] = _iso(trend.t0 + timedelta(days=days))
    return out


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
