"""The restore drill: prove, for every data class, that its latest backup comes back within the
RTO and holds what its manifest says.

For each data class of the strategy: find the latest complete backup (in the first enabled store
holding one, primary first, or in ``source``), restore it with the real restore path
(download, verify, spool, ``pg_restore``) into a scratch database
``vo2dr_drill_<class>_<UTC time>`` on the server of ``VO2DR_DRILL_DATABASE_URL``, then:

* compare the exact row count of every table with the manifest;
* run the class's ``sanityQueries`` (each must return true);
* compare the restore time (download + verify + pg_restore) with the class's RTO;

and drop the scratch database (it is the drill's own; nothing else is ever dropped). The report
is JSON; ``ok`` is false on any failure or RTO miss.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from vo2dr.catalog import build_catalog
from vo2dr.exceptions import ConfigError, Vo2drError, one_line
from vo2dr.restore import QuietReporter, Reporter, Target, drop_created_database, restore
from vo2dr.settings import Settings
from vo2dr.status import METRIC_NAMESPACE
from vo2dr.stores.base import BackupStore

SCRATCH_PREFIX = "vo2dr_drill_"


@dataclass
class ClassReport:
    data_class: str
    ok: bool = False
    backup_id: str = ""
    backup_time: str = ""
    source: str = ""
    scratch_database: str = ""
    restore_seconds: float | None = None
    rto_seconds: int = 0
    within_rto: bool | None = None
    tables: dict[str, dict[str, int | None]] = field(default_factory=dict)
    sanity: list[dict[str, Any]] = field(default_factory=list)
    dropped: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class DrillReport:
    ok: bool
    environment: str
    started_at: str
    seconds: float
    classes: list[ClassReport]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def scratch_name(data_class: str, when: datetime) -> str:
    return f"{SCRATCH_PREFIX}{data_class}_{when.astimezone(UTC):%Y%m%d_%H%M%S}"


def run_sanity(target: Target, queries: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    """Each query must return one row whose first column is true."""
    out = []
    with target.connect(autocommit=True) as conn:
        for q in queries:
            try:
                row = conn.execute(q).fetchone()
                ok = row is not None and row[0] is True
                out.append({"query": q, "ok": ok, "result": None if row is None else row[0]})
            except psycopg.Error as exc:
                out.append({"query": q, "ok": False,
                            "error": one_line(exc)})
    return out


def drill_class(settings: Settings, data_class: str, *, stores: Mapping[str, BackupStore],
                source: str | None, server: Target, now: datetime,
                rto_override_seconds: float | None = None,
                reporter: Reporter | None = None,
                clock: Callable[[], float] = time.monotonic,
                recovery_key_pem: bytes | None = None) -> ClassReport:
    dc = settings.strategy().get(data_class)
    rto = rto_override_seconds if rto_override_seconds is not None else dc.rto_seconds
    report = ClassReport(data_class=data_class, rto_seconds=rto)
    reporter = reporter or QuietReporter()
    try:
        catalog = build_catalog(stores, settings.environment, data_class=data_class)
        if source:
            entry = catalog.latest(data_class, store=source)
            chosen = source
        else:
            entry = catalog.latest(data_class)
            chosen = entry.complete_stores(catalog.stores)[0]
    except Vo2drError as exc:
        report.errors.append(str(exc))
        return report
    report.backup_id = entry.backup_id
    report.backup_time = entry.timestamp.isoformat().replace("+00:00", "Z")
    report.source = chosen
    scratch = server.with_dbname(scratch_name(data_class, now))
    report.scratch_database = scratch.dbname
    t0 = clock()
    try:
        result = restore(settings, source=chosen, target_url=scratch.url, backup=entry.backup_id,
                         data_class=data_class, store=stores[chosen], reporter=reporter, now=now,
                         recovery_key_pem=recovery_key_pem)
        report.restore_seconds = round(clock() - t0, 3)
        report.tables = {t: {"manifest": result.expected_rows[t], "restored": result.rows[t]}
                         for t in result.tables}
        report.errors.extend(result.problems)
        report.sanity = run_sanity(scratch, dc.sanity_queries)
        report.errors.extend(f"sanity query failed: {s['query']}"
                             + (f" ({s['error']})" if "error" in s else "")
                             for s in report.sanity if not s["ok"])
        report.within_rto = report.restore_seconds <= rto
        if not report.within_rto:
            report.errors.append(
                f"restore took {report.restore_seconds:.1f}s, over the RTO of {rto:.0f}s")
    except Vo2drError as exc:
        report.errors.append(str(exc))
    finally:
        with contextlib.suppress(psycopg.Error, Vo2drError):
            drop_created_database(scratch)
            report.dropped = True
    report.ok = not report.errors
    return report


def run_drill(settings: Settings, *, data_classes: list[str] | None = None,
              source: str | None = None, stores: Mapping[str, BackupStore] | None = None,
              now: datetime | None = None,
              rto_override_seconds: float | None = None,
              reporter: Reporter | None = None,
              clock: Callable[[], float] = time.monotonic,
              recovery_key_pem: bytes | None = None) -> DrillReport:
    """Drill every data class of the strategy (or ``data_classes``). ``recovery_key_pem``
    decrypts with the offline recovery key instead of KMS (a lost AWS account, or backups the
    standby made while AWS was down).

    ``rto_override_seconds`` replaces every class's RTO (tests: the strategy's RTO is a whole,
    positive number of minutes, so it cannot be set below a test restore's few seconds)."""
    settings.require("environment", "drill_database_url")
    server = Target.parse(settings.drill_database_url, "VO2DR_DRILL_DATABASE_URL")
    strategy = settings.strategy()
    names = data_classes or list(strategy.data_classes)
    for n in names:
        strategy.get(n)
    if stores is None:
        from vo2dr.stores import open_store

        if not settings.enabled_stores:
            raise ConfigError("no store enabled: set VO2DR_S3_BUCKET, VO2DR_GCS_BUCKET and/or "
                              "VO2DR_AZURE_CONTAINER_URL")
        wanted = [source] if source else list(settings.enabled_stores)
        stores = {n: open_store(n, settings) for n in wanted}
    started = (now or datetime.now(UTC)).astimezone(UTC)
    t0 = clock()
    reports = [drill_class(settings, n, stores=stores, source=source, server=server,
                           now=started, rto_override_seconds=rto_override_seconds,
                           reporter=reporter, clock=clock, recovery_key_pem=recovery_key_pem)
               for n in names]
    return DrillReport(ok=all(r.ok for r in reports), environment=settings.environment,
                       started_at=started.isoformat().replace("+00:00", "Z"),
                       seconds=round(clock() - t0, 3), classes=reports)


class DrillFailed(Vo2drError):
    """Raised by the Lambda handler when a class failed or missed its RTO, so the invocation
    counts as failed and the function's error alarm fires. ``report`` is the full report."""

    def __init__(self, report: DrillReport) -> None:
        failed = [f"{c.data_class}: {'; '.join(c.errors)}" for c in report.classes if not c.ok]
        super().__init__("restore drill failed: " + " | ".join(failed))
        self.report = report


def emf_documents(report: DrillReport,
                  namespace: str = METRIC_NAMESPACE) -> list[dict[str, Any]]:
    """``DrillRestoreSeconds`` and ``DrillFailed`` per ``DataClass`` (CloudWatch EMF)."""
    ts = int(datetime.fromisoformat(report.started_at.replace("Z", "+00:00")).timestamp() * 1000)
    out = []
    for c in report.classes:
        metrics = [{"Name": "DrillFailed", "Unit": "Count"}]
        values: dict[str, float] = {"DrillFailed": 0 if c.ok else 1}
        if c.restore_seconds is not None:
            metrics.append({"Name": "DrillRestoreSeconds", "Unit": "Seconds"})
            values["DrillRestoreSeconds"] = c.restore_seconds
        out.append({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{
            "Namespace": namespace, "Dimensions": [["DataClass"]], "Metrics": metrics}]},
            "Environment": report.environment, "DataClass": c.data_class, **values})
    return out
