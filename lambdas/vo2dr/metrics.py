"""The backup function's CloudWatch embedded metric format (EMF) lines, and the names of every
metric the job emits, which the alarms (infra/aws/alerts.py) and the dashboard
(infra/aws/dashboard.py) import instead of spelling them again.

The status check (``vo2dr.status.emf_documents``) and the drill (``vo2dr.drill.emf_documents``)
write their own documents; a program test runs those functions and checks every metric the
dashboard draws against what they really print.

A backup prints, for the database's data classes:

* per ``DataClass, Store``: ``BackupSeconds`` (that store's upload) and ``BackupBytes`` (the
  encrypted body that store holds);
* per ``DataClass``: ``BackupSeconds`` (the whole run, dump to last manifest), ``BackupBytes``
  (the encrypted body) and ``BackupFailed`` (0, or 1 when any store lacks a verified copy).

A run that fails before it has a summary (the database unreachable, a store that cannot be
opened) prints ``BackupFailed`` = 1 for its class alone, so failures count even when no byte
moved.

The application sources (code, config, assets, logs) print the same three metrics by
``Source`` instead of ``DataClass`` (per ``Source`` and per ``Source, Store``), never by their
class: the class's numbers would mix with the database's. A source run that fails before its
summary prints ``BackupFailed`` = 1 by ``Source``. A snapshot's (assets, logs) bytes are what
the run stored: its encrypted index plus the new content objects it uploaded (per store, what
that store received; in total, one copy), so the size chart shows the growth of each run, not
the size of everything the snapshot references.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vo2dr.layout import parse_timestamp
from vo2dr.status import METRIC_NAMESPACE

DATA_CLASS = "DataClass"
STORE = "Store"
SOURCE = "Source"
# The application sources whose backups print metrics (by SOURCE).
APP_SOURCES = ("code", "config", "assets", "logs")
# status (vo2dr.status.emf_documents)
BACKUP_AGE = "BackupAgeSeconds"
REPLICA_MISMATCH = "ReplicaMismatch"
STATUS_BREACHES = "StatusBreaches"
# drill (vo2dr.drill.emf_documents)
DRILL_RESTORE_SECONDS = "DrillRestoreSeconds"
DRILL_FAILED = "DrillFailed"
# backup (this module)
BACKUP_SECONDS = "BackupSeconds"
BACKUP_BYTES = "BackupBytes"
BACKUP_FAILED = "BackupFailed"

__all__ = [
    "APP_SOURCES", "BACKUP_AGE", "BACKUP_BYTES", "BACKUP_FAILED", "BACKUP_SECONDS",
    "DATA_CLASS", "DRILL_FAILED", "DRILL_RESTORE_SECONDS", "METRIC_NAMESPACE",
    "REPLICA_MISMATCH", "SOURCE", "STATUS_BREACHES", "STORE", "backup_documents",
    "failed_backup_documents", "failed_source_documents",
]


def _document(environment: str, timestamp_ms: int, dims: dict[str, str],
              metrics: dict[str, tuple[float, str]],
              namespace: str = METRIC_NAMESPACE) -> dict[str, Any]:
    return {
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": namespace, "Dimensions": [list(dims)],
            "Metrics": [{"Name": k, "Unit": unit} for k, (_, unit) in metrics.items()]}]},
        "Environment": environment, **dims, **{k: v for k, (v, _) in metrics.items()},
    }


def _millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def backup_documents(summary: Any, namespace: str = METRIC_NAMESPACE) -> list[dict[str, Any]]:
    """The EMF documents of one finished backup (a :class:`vo2dr.summary.BackupSummary`): by
    ``DataClass`` for the database's, by ``Source`` for an application source's; none for a
    skipped run (``--if-missing``)."""
    source = getattr(summary, "source", "database")
    if getattr(summary, "skipped", False) or source not in ("database", *APP_SOURCES):
        return []
    # The backup's own instant (its key's timestamp): the point lands in its schedule window.
    ts = _millis(parse_timestamp(summary.timestamp) if summary.timestamp else datetime.now(UTC))
    env = summary.environment
    key = {DATA_CLASS: summary.data_class} if source == "database" else {SOURCE: source}
    # A snapshot's content objects are uploaded beside its body (the index): count them too.
    content = (getattr(summary, "contents", None) or {}).get("uploaded_bytes") or {}
    out = [_document(env, ts, key, {
        BACKUP_SECONDS: (summary.seconds, "Seconds"),
        BACKUP_BYTES: (summary.ciphertext.get("bytes", 0) + max(content.values(), default=0),
                       "Bytes"),
        BACKUP_FAILED: (0 if summary.ok else 1, "Count"),
    }, namespace)]
    for store, dest in summary.destinations.items():
        out.append(_document(env, ts, {**key, STORE: store}, {
            BACKUP_SECONDS: (dest.seconds, "Seconds"),
            BACKUP_BYTES: (dest.bytes + content.get(store, 0), "Bytes"),
        }, namespace))
    return out


def failed_backup_documents(environment: str, data_class: str, when: datetime,
                            namespace: str = METRIC_NAMESPACE) -> list[dict[str, Any]]:
    """The EMF document of a backup run that failed before it had a summary."""
    return [_document(environment, _millis(when), {DATA_CLASS: data_class},
                      {BACKUP_FAILED: (1, "Count")}, namespace)]


def failed_source_documents(environment: str, source: str, when: datetime,
                            namespace: str = METRIC_NAMESPACE) -> list[dict[str, Any]]:
    """The EMF document of an application source's run that failed before it had a summary;
    none for another source."""
    if source not in APP_SOURCES:
        return []
    return [_document(environment, _millis(when), {SOURCE: source},
                      {BACKUP_FAILED: (1, "Count")}, namespace)]
