"""The report as one JSON document: every section computed from the history, the stack's
configuration, the stores' objects, the price table and the policy pack's results."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vo2dr import __version__

from . import cost, metrics
from .config import ReportConfig
from .history import BackupEvent, History, as_json

FORMAT = "vo2dr-report/1"


def _series(events: Iterable[BackupEvent]) -> list[dict[str, Any]]:
    return [{"time": metrics._iso(e.time), "plaintext_bytes": e.plaintext_bytes,
             "ciphertext_bytes": e.ciphertext_bytes, "seconds": e.seconds, "tier": e.tier}
            for e in events if e.complete_anywhere and e.ciphertext_bytes > 0]


def _targets(cfg: ReportConfig) -> list[tuple[str, str, Any]]:
    """(label, source, data class) of every backed-up thing: the data classes, then the
    application sources under their class's schedule."""
    out: list[tuple[str, str, Any]] = [(n, "database", dc)
                                       for n, dc in cfg.strategy.database_classes.items()]
    if cfg.strategy.application is not None:
        for kind in cfg.strategy.application.sources():
            out.append((kind, kind, cfg.strategy.source_class(kind)))
    return out


def success_section(cfg: ReportConfig, h: History) -> dict[str, Any]:
    target = cfg.settings.success_rate_target_percent
    classes: dict[str, Any] = {}
    due = done = 0
    for label, source, dc in _targets(cfg):
        events = [e for e in h.backups
                  if e.source == source and (source != "database" or e.data_class == label)]
        rate = metrics.success_rate(dc, events, h.since, h.until, target)
        due, done = due + rate.due, done + rate.completed
        classes[label] = {
            "source": source, "data_class": dc.name, "schedule": dc.cron_expression(),
            **rate.to_json(),
            "stores": {s: metrics.success_rate(dc, events, h.since, h.until, target,
                                               store=s).to_json() for s in cfg.stores},
            "attempts": metrics.attempt_rate([e for e in events if e.evidence == "record"]),
            "listing_only": sum(1 for e in events if e.evidence == "listing")}
    overall = None if due == 0 else round(100.0 * done / due, 3)
    return {"target_percent": target, "due": due, "completed": done, "percent": overall,
            "meets_target": None if overall is None else overall >= target, "classes": classes}


def rpo_section(cfg: ReportConfig, h: History) -> dict[str, Any]:
    checks = list(metrics.status_checks(h.since, h.until, cfg.status_every_minutes,
                                        cfg.status_offset_minutes))
    out = {}
    for name, dc in cfg.strategy.database_classes.items():
        dist = metrics.rpo_distribution(dc, h.for_class(name), checks)
        out[name] = {**dist.to_json(), "ages_seconds": dist.ages}
    return {"status_every_minutes": cfg.status_every_minutes,
            "status_offset_minutes": cfg.status_offset_minutes, "classes": out}


def drill_section(cfg: ReportConfig, h: History) -> dict[str, Any]:
    allowed = cfg.settings.rto_variance_percent
    out = {}
    for name in cfg.strategy.database_classes:
        runs = metrics.drill_history(h.drills, name, allowed)
        out[name] = {"rto_seconds": cfg.strategy.data_classes[name].rto_seconds,
                     "drills": runs, "last": runs[-1] if runs else None,
                     "months_without_drill": metrics.months_without_drill(
                         h.drills, name, h.since, h.until),
                     "all_within_variance": all(r["within_variance"] for r in runs)
                     if runs else None}
    return {"allowed_variance_percent": allowed, "count": len(h.drills), "classes": out}


def growth_section(cfg: ReportConfig, h: History) -> dict[str, Any]:
    out = {}
    for name in cfg.strategy.database_classes:
        events = h.for_class(name)
        series = _series(events)
        plain = metrics.fit_trend([(e.time, e.plaintext_bytes) for e in events
                                   if e.complete_anywhere and e.plaintext_bytes > 0])
        cipher = metrics.fit_trend([(e.time, e.ciphertext_bytes) for e in events
                                    if e.complete_anywhere and e.ciphertext_bytes > 0])
        entry: dict[str, Any] = {"points": series,
                                 "plaintext_trend": plain.to_json() if plain else None,
                                 "ciphertext_trend": cipher.to_json() if cipher else None}
        entry["time_limit"] = metrics.time_limit_forecast(
            plain, metrics.throughput(events), cfg.lambda_timeout_seconds, h.until)
        out[name] = entry
    full = out.get("full", {}).get("time_limit", {})
    return {"lambda_timeout_seconds": cfg.lambda_timeout_seconds, "classes": out,
            "full_backup_fits_until": full.get("fits_until"),
            "full_backup_already_over": full.get("already_over", False)}


def latest_sizes(cfg: ReportConfig, h: History, *, plaintext: bool) -> dict[str, float]:
    sizes = {}
    for name in cfg.strategy.database_classes:
        vals = [(e.plaintext_bytes if plaintext else e.ciphertext_bytes)
                for e in h.for_class(name) if e.complete_anywhere]
        vals = [v for v in vals if v > 0]
        if vals:
            sizes[name] = float(vals[-1])
    return sizes


def storage_section(cfg: ReportConfig, h: History, objects: list[cost.StoredObject],
                    table: cost.PriceTable, now: datetime) -> dict[str, Any]:
    now_rows = cost.holdings_now(objects, cfg, table, now)
    cipher, plain = latest_sizes(cfg, h, plaintext=False), latest_sizes(cfg, h, plaintext=True)
    steady = cost.steady_state(cipher, cfg, table)
    original = cost.steady_state(plain, cfg, table, original=True)
    st, ot = cost.totals(steady), cost.totals(original)
    return {"prices": table.to_json(),
            "now": {"holdings": [r.to_json() for r in now_rows], **cost.totals(now_rows)},
            "steady_state": {"sizes": cipher, "holdings": [r.to_json() for r in steady], **st},
            "original_layout": {"sizes": plain, "holdings": [r.to_json() for r in original],
                                **ot},
            "saving_usd_per_month": round(ot["usd_per_month"] - st["usd_per_month"], 4)}


def load_controls(root: Path, stack: str) -> dict[str, Any]:
    """The policy pack's results for the stack, as ``make plan`` last evaluated them on the
    mocked graph (``plan/<stack>.json``), with every rule and its enforcement
    (``policy/config/<stack>.json``)."""
    plan, config = root / "plan" / f"{stack}.json", root / "policy" / "config" / f"{stack}.json"
    try:
        violations = json.loads(plan.read_text()).get("policy", {}).get("violations", [])
        rules = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        return {"available": False,
                "note": f"no policy results ({exc}); run `make plan STACK={stack}`"}
    failed: dict[str, list[str]] = {}
    for v in violations:
        name = str(v.get("policyName") or v.get("rule") or v.get("name") or "?")
        failed.setdefault(name, []).append(str(v.get("message", "")))
    out = []
    for name, spec in sorted(rules.items()):
        if name == "all" or not isinstance(spec, Mapping):
            continue
        out.append({"rule": name, "enforcement": spec.get("enforcementLevel", ""),
                    "result": "violated" if name in failed else "pass",
                    "messages": failed.get(name, [])})
    return {"available": True, "source": f"plan/{stack}.json, policy/config/{stack}.json",
            "rules": out, "passed": sum(r["result"] == "pass" for r in out),
            "violated": sum(r["result"] != "pass" for r in out)}


def build_report(cfg: ReportConfig, h: History, objects: list[cost.StoredObject],
                 table: cost.PriceTable, controls: Mapping[str, Any],
                 now: datetime | None = None) -> dict[str, Any]:
    now = (now or h.until).astimezone(UTC)
    drills = drill_section(cfg, h)
    return {
        "format": FORMAT, "generated_by": f"vo2dr {__version__}",
        "environment": cfg.environment, "generated_at": metrics._iso(now),
        "period": {"since": metrics._iso(h.since), "until": metrics._iso(h.until)},
        "history": as_json(h),
        "success_rate": success_section(cfg, h),
        "rpo": rpo_section(cfg, h),
        "drills": drills,
        "growth": growth_section(cfg, h),
        "storage": storage_section(cfg, h, objects, table, now),
        "controls": {**controls,
                     "last_drill": {n: c["last"] for n, c in drills["classes"].items()}},
    }
