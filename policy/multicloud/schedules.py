"""Schedules (EventBridge and Cloud Scheduler): backups meet each data class's RPO, the status
check runs as often as the stack says, the restore drill runs monthly."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from policy.expectations import Expectations
from policy.parsing import daily_time, get, is_monthly, schedule_gap_minutes
from policy.resources import Finding, Res, _of


def _schedule_text(r: Res) -> str:
    parts = [r.name, str(r.props.get("name", "")), str(get(r.props, "target.input") or "")]
    body = get(r.props, "httpTarget.body")
    if isinstance(body, str):
        try:
            parts.append(base64.b64decode(body, validate=True).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            parts.append(body)
    return " ".join(parts).lower()


def _schedule_kind(r: Res) -> str:
    for kind in ("drill", "status", "backup"):
        if kind in r.name.lower():
            return kind
    text = _schedule_text(r)
    return next((k for k in ("drill", "status") if k in text), "backup")


def _schedules(resources: Sequence[Res]) -> list[tuple[Res, str, str]]:
    """(resource, kind, expression) of every EventBridge and Cloud Scheduler schedule."""
    out = []
    for r in _of(resources, "aws:scheduler/schedule:Schedule", "gcp:cloudscheduler/job:Job"):
        expr = r.props.get("scheduleExpression") or r.props.get("schedule") or ""
        out.append((r, _schedule_kind(r), str(expr)))
    return out


def check_schedule_rpo(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    if c is None:
        return [Finding("stack expectations are unavailable: cannot check schedules against "
                        "the RPOs")]
    backups = [(r, e) for r, kind, e in _schedules(resources)
               if kind == "backup" and r.type.startswith("aws:")]
    out = []
    for name, dc in sorted(c.data_classes.items()):
        mine = [(r, e) for r, e in backups if re.search(rf"\b{name}\b", _schedule_text(r))]
        if not mine:
            out.append(Finding(f"data class {name} (RPO {dc.rpo_minutes} min) has no backup "
                               "schedule"))
            continue
        ok = False
        for _r, expr in mine:
            if dc.daily_at_utc is not None:
                ok = ok or daily_time(expr) == dc.daily_at_utc
            else:
                gap = schedule_gap_minutes(expr)
                ok = ok or (gap is not None and gap <= dc.rpo_minutes)
        if not ok:
            want = (f"daily at {dc.daily_at_utc} UTC" if dc.daily_at_utc
                    else f"at least every {dc.rpo_minutes} min")
            out.append(Finding(f"data class {name} must be backed up {want}; its schedule "
                               f"{[e for _, e in mine]} does not meet the RPO", mine[0][0].urn))
    return out


def check_schedule_status(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    status = [(r, e) for r, kind, e in _schedules(resources) if kind == "status"]
    if not status:
        return [Finding("no scheduled status check: a missed backup would go unnoticed")]
    if c is None:
        return []
    gaps = [schedule_gap_minutes(e) for _, e in status]
    if not any(g is not None and g <= c.status_every_minutes for g in gaps):
        return [Finding(f"the status check runs {[e for _, e in status]}, less often than "
                        f"monitoring.statusEveryMinutes ({c.status_every_minutes})",
                        status[0][0].urn)]
    return []


def check_schedule_drill(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    drills = [(r, e) for r, kind, e in _schedules(resources) if kind == "drill"]
    if not drills:
        return [Finding("no scheduled restore drill: restores would go untested")]
    monthly = [(r, e) for r, e in drills if is_monthly(e)]
    if not monthly:
        return [Finding(f"the restore drill runs {[e for _, e in drills]}, which is not once a "
                        "month", drills[0][0].urn)]
    if c is not None and not any(e == c.drill_schedule for _, e in monthly):
        return [Finding(f"the drill schedule {[e for _, e in monthly]} differs from "
                        f"monitoring.drillSchedule ({c.drill_schedule})", monthly[0][0].urn)]
    return []
