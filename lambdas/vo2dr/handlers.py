"""Lambda entry points: thin functions over the same code as the CLI.

A flat module of ``<name>_handler(event, context)`` functions. AWS clients are created once
per container (module-level cache) and reused by warm invocations. Logs are JSON, and every
line carries the invocation's ``request_id`` and ``cold_start`` (:func:`vo2dr.logs.
bind_lambda_context`: the context passed through, rather than Powertools' Logger, which would
add a dependency to the artifact for two fields); settings are logged only through
``Settings.redacted()``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from vo2dr import startup
from vo2dr.exceptions import ConfigError, Vo2drError
from vo2dr.logs import bind_lambda_context, configure_json_logging, with_invocation

# Secret resolution lives in vo2dr.secret_urls; these names are re-exported for one landing.
from vo2dr.secret_urls import (  # noqa: F401
    _secret_url,
    _secrets_client,
    _url_from_secret,
    resolve_database_url,
    resolve_secrets,
)
from vo2dr.settings import Settings

log = logging.getLogger("vo2dr.handlers")


class BackupIncomplete(Vo2drError):
    """Raised by the handlers when a destination failed, so the invocation counts as failed
    (and alarms fire); ``summary`` is the full JSON summary."""

    def __init__(self, summary: dict) -> None:
        super().__init__(summary.get("error") or "a destination failed")
        self.summary = summary


@startup.entry_point
def backup_handler(event: dict | None, context: Any = None) -> dict:
    """EventBridge Scheduler target: ``{"data_class": "critical"}`` (``dataClass`` also
    accepted), or ``{"source": "code"|"config"|"assets"|"logs"}`` for an application source.
    A snapshot (assets, logs) stops taking new objects in time to end within the invocation's
    remaining time (an incomplete snapshot, which the next run continues). Returns the
    summary; raises when any destination lacks a verified copy."""
    from vo2dr.backup import run_backup

    configure_json_logging()
    bind_lambda_context(context)
    event = event or {}
    if event.get("source") not in (None, "database"):
        return _backup_source(str(event["source"]), context)
    data_class = event.get("data_class") or event.get("dataClass")
    if not data_class:
        raise ConfigError('the event must name the data class: {"data_class": "critical"}')
    settings = Settings.from_env()
    log.info("backup starting", extra={"data_class": data_class,
                                       "settings": settings.redacted()})

    def run() -> Any:
        settings.validate(required=("database_url", "environment", "recovery_public_key"),
                          strategy=True)
        return run_backup(resolve_database_url(settings), data_class)

    return _logged_backup(run, {"data_class": data_class})


def _backup_source(kind: str, context: Any = None) -> dict:
    from vo2dr.sources.backup import backup_source

    settings = Settings.from_env()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_limit = remaining() / 1000 if callable(remaining) else None
    log.info("backup starting", extra={"source": kind, "settings": settings.redacted()})
    return _logged_backup(lambda: backup_source(settings, kind, time_limit=time_limit),
                          {"source": kind})


def _logged_backup(run: Callable[[], Any], what: dict[str, str]) -> dict:
    """Run one backup, log its failure or summary, and raise unless every store holds a
    verified copy (so Lambda counts the invocation as failed)."""
    from vo2dr import metrics

    try:
        summary = run()
    except Vo2drError as exc:
        log.error("backup failed: %s", exc, extra={**what, "error_type": type(exc).__name__})
        if "data_class" in what:  # the dashboard's failure count (vo2dr.metrics)
            _emit_metrics(metrics.failed_backup_documents(
                Settings.from_env().environment or "", what["data_class"], _now()))
        elif "source" in what:
            _emit_metrics(metrics.failed_source_documents(
                Settings.from_env().environment or "", what["source"], _now()))
        raise
    doc = summary.to_json()
    log.info("backup finished", extra={"summary": doc})
    _emit_metrics(metrics.backup_documents(summary))
    if not summary.ok:
        raise BackupIncomplete(doc)
    return doc


# -- recovery side: status and drill ---------------------------------------------------------------

@startup.entry_point
def status_handler(event: dict | None, context: Any = None) -> dict:
    """EventBridge Scheduler target (every ``monitoring.statusEveryMinutes``): freshness and
    replica agreement, EMF metrics (``BackupAgeSeconds``, ``ReplicaMismatch`` per
    ``DataClass``) printed for CloudWatch, and the chat webhook (its URL from
    ``VO2DR_ALERT_WEBHOOK_SECRET``) on a breach or a recovery only. A breach does not fail the
    invocation: the alarms on the metrics report it; an error means the check could not run."""
    from datetime import UTC, datetime

    from vo2dr.status import run_status_job

    configure_json_logging()
    bind_lambda_context(context)
    event = event or {}
    settings = Settings.from_env()
    settings.validate(required=("environment",), strategy=True)
    settings = resolve_secrets(settings, names=("alert_webhook",))
    now = datetime.fromisoformat(event["now"]) if event.get("now") else datetime.now(UTC)
    report = run_status_job(settings, now, webhook=settings.alert_webhook or None, log=log,
                            emit=_emit_with_invocation)
    doc = report.to_json()
    (log.warning if not report.ok else log.info)(
        "status: %s", "ok" if report.ok else "; ".join(report.messages),
        extra={"breaches": report.breaches, "alert": report.alert})
    return doc


@startup.entry_point
def drill_handler(event: dict | None, context: Any = None) -> dict:
    """EventBridge Scheduler target (``monitoring.drillSchedule``): restore every class's
    latest backup into a scratch database on the drill server (``VO2DR_DRILL_DATABASE_URL``,
    or its secret ``VO2DR_DRILL_DATABASE_URL_SECRET``), check it, time it against the RTO, drop
    it. Restores from ``event["source"]`` (default s3, the store this identity can read); the
    spool file goes to the function's ephemeral storage. Emits ``DrillRestoreSeconds`` and
    ``DrillFailed`` per ``DataClass`` (EMF); raises :class:`DrillFailed` on any failure."""
    from vo2dr.drill import DrillFailed, emf_documents, run_drill

    configure_json_logging()
    bind_lambda_context(context)
    event = event or {}
    settings = Settings.from_env()
    settings.validate(required=("environment", "drill_database_url"), strategy=True)
    settings = resolve_secrets(settings, names=("drill_database_url",))
    source = event.get("source") or "s3"
    classes = event.get("data_classes") or None
    log.info("drill starting", extra={"source": source, "settings": settings.redacted()})
    report = run_drill(settings, data_classes=classes, source=source)
    for doc in emf_documents(report):
        print(json.dumps(with_invocation(doc), separators=(",", ":")))
    out = report.to_json()
    log.info("drill finished", extra={"report": out})
    if not report.ok:
        raise DrillFailed(report)
    return out


def _emit_metrics(documents: list[dict]) -> None:
    for doc in documents:
        print(json.dumps(with_invocation(doc), separators=(",", ":")))


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _emit_with_invocation(line: str) -> None:
    print(json.dumps(with_invocation(json.loads(line)), separators=(",", ":")))


class PruneIncomplete(Vo2drError):
    """Raised by :func:`prune_handler` when a store was left alone or a delete failed, so the
    invocation counts as failed; ``report`` is the JSON report."""

    def __init__(self, report: dict) -> None:
        super().__init__("; ".join(f"{r['store']}: {r['blocked'] or '; '.join(r['errors'])}"
                                   for r in report["stores"] if not r["ok"]))
        self.report = report


@startup.entry_point
def prune_handler(event: dict | None, context: Any = None) -> dict:
    """EventBridge Scheduler target of the pruner identity: ``{"source": "assets"|"logs"}``
    (``"dry_run": true`` to report only). Marks the unreferenced snapshot content whose lock
    has ended (``VO2DR_LOCK_DAYS``) and deletes what an earlier run marked at least
    ``VO2DR_PRUNE_GRACE_HOURS`` ago and is still unreferenced, in every store this identity
    can open (:mod:`vo2dr.snapshots.prune`)."""
    from vo2dr.snapshots.prune import grace_from_settings, lock_days_from_settings, prune
    from vo2dr.stores import Access, open_stores
    from vo2dr.trust import Trust

    configure_json_logging()
    bind_lambda_context(context)
    event = event or {}
    kind = str(event.get("source") or "")
    settings = Settings.from_env()
    settings.validate(required=("environment", "lock_days"))
    log.info("prune starting", extra={"source": kind, "settings": settings.redacted()})
    reports = prune(open_stores(settings, Access.READ), settings.environment, kind,
                    Trust.from_settings(settings),
                    lock_days=lock_days_from_settings(settings.lock_days),
                    grace=grace_from_settings(settings.prune_grace_hours),
                    dry_run=bool(event.get("dry_run")))
    out = {"ok": all(r.ok for r in reports), "source": kind,
           "stores": [r.to_json() for r in reports]}
    log.info("prune finished", extra={"report": out})
    if not out["ok"]:
        raise PruneIncomplete(out)
    return out
