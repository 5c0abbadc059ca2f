"""The restore drill: prove, for every data class, that its latest backup comes back within the
RTO and holds what its manifest says.

For each data class of the strategy: find the latest backup complete and authentic (signed) in a
quorum of the enabled stores (:func:`vo2dr.quorum.select_latest`; read from the first store
of the quorum, primary first, or from ``source``), restore it with the real restore path
(download, verify, spool, ``pg_restore``) into a scratch database
``vo2dr_drill_<class>_<UTC time>`` on the server of ``VO2DR_DRILL_DATABASE_URL``, then:

* compare the exact row count of every table with the manifest;
* run the class's ``sanityQueries`` (each must return true);
* compare the restore time (download + verify + pg_restore) with the class's RTO;

and drop the scratch database (it is the drill's own). The report is JSON; ``ok`` is false on
any failure or RTO miss.

A drill that was killed (Lambda timeout, OOM) leaves its scratch database behind, so each run
first drops the debris of earlier ones (:func:`drop_stale_scratch`). It drops only a name that
parses exactly as :func:`scratch_name` makes it, older than all the RTOs together (no drill can
still be running then) and with no session on it, with a plain ``DROP DATABASE`` that fails rather
than cut off anyone who connected meanwhile: a look-alike, a running drill or a person
inspecting a scratch copy is never touched. A failed cleanup is shown in the report and logged,
but does not fail the drill.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from vo2dr.catalog import build_catalog
from vo2dr.dbadmin import Target, drop_created_database, refuse_superuser
from vo2dr.exceptions import Vo2drError, one_line
from vo2dr.progress import QuietReporter, Reporter
from vo2dr.quorum import select_latest
from vo2dr.restore import restore
from vo2dr.settings import Settings
from vo2dr.signing import signer_from_setting
from vo2dr.status import METRIC_NAMESPACE
from vo2dr.stores.base import BackupStore
from vo2dr.strategy import KNOWN_DATA_CLASSES
from vo2dr.trust import Trust

log = logging.getLogger("vo2dr.drill")

SCRATCH_PREFIX = "vo2dr_drill_"
_SCRATCH_TIME = "%Y%m%d_%H%M%S"
# Only the names scratch_name() can produce: the strategy accepts no other class names. Used
# with fullmatch and [0-9], since "$" also matches before a final newline and \d matches any
# Unicode digit, and a quoted database name may hold either.
_SCRATCH_NAME = re.compile(
    rf"{re.escape(SCRATCH_PREFIX)}({'|'.join(KNOWN_DATA_CLASSES)})_([0-9]{{8}}_[0-9]{{6}})")


@dataclass
class ClassReport:
    data_class: str
    ok: bool = False
    backup_id: str = ""
    backup_time: str = ""
    source: str = ""
    scratch_database: str = ""
    restore_seconds: float | None = None
    rto_seconds: float = 0
    within_rto: bool | None = None
    tables: dict[str, dict[str, int | None]] = field(default_factory=dict)
    sanity: list[dict[str, Any]] = field(default_factory=list)
    dropped: bool = False
    # Why the scratch database could not be dropped (shown, not a failed drill: the next drill
    # drops it as a stale scratch database).
    drop_error: str = ""
    errors: list[str] = field(default_factory=list)
    # The backup's source server and the scratch server it was restored into (server_version).
    source_server_version: str = ""
    scratch_server_version: str = ""


@dataclass
class DrillReport:
    ok: bool
    environment: str
    started_at: str
    seconds: float
    classes: list[ClassReport]
    # Scratch databases of earlier, killed drills: dropped, and the ones that could not be
    # (shown, but they do not fail the drill: the restores themselves are what it proves).
    stale_dropped: list[str] = field(default_factory=list)
    stale_errors: list[str] = field(default_factory=list)
    # The application sources (vo2dr.sources.drill): restored into scratch directories.
    sources: list[Any] = field(default_factory=list)
    # The drill's signed record in each store (vo2dr.records): "written" or why not.
    record: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def scratch_name(data_class: str, when: datetime) -> str:
    return f"{SCRATCH_PREFIX}{data_class}_{when.astimezone(UTC).strftime(_SCRATCH_TIME)}"


def scratch_time(name: str) -> datetime | None:
    """When the drill that named this scratch database started; ``None`` for any name
    :func:`scratch_name` cannot have produced."""
    m = _SCRATCH_NAME.fullmatch(name)
    if m is None:
        return None
    try:
        return datetime.strptime(m.group(2), _SCRATCH_TIME).replace(tzinfo=UTC)
    except ValueError:  # 20240231_250000 has the shape but is no time
        return None


_UNCONNECTED_SCRATCH = """
SELECT d.datname FROM pg_database d
 WHERE starts_with(d.datname, %s) AND NOT d.datistemplate
   AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)
 ORDER BY 1
"""


def drop_stale_scratch(server: Target, now: datetime,
                       older_than: timedelta) -> tuple[list[str], list[str]]:
    """Drop the scratch databases of drills that started before ``now - older_than`` and that
    nobody is connected to. Returns (dropped names, errors); never raises for the database."""
    cutoff = now.astimezone(UTC) - older_than
    dropped: list[str] = []
    errors: list[str] = []
    try:
        with server.maintenance().connect(autocommit=True) as conn:
            names = [r[0] for r in conn.execute(_UNCONNECTED_SCRATCH, (SCRATCH_PREFIX,))]
            for name in names:
                when = scratch_time(name)
                if when is None or when >= cutoff:
                    continue
                # Not WITH (FORCE): a session opened since the listing makes the drop fail
                # instead of being cut off.
                try:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(
                        sql.Identifier(name)))
                except psycopg.Error as exc:
                    errors.append(f"cannot drop stale scratch database {name}: {one_line(exc)}")
                    log.warning("drill: %s", errors[-1])
                    continue
                dropped.append(name)
                log.info("drill: dropped stale scratch database %s", name)
    except (psycopg.Error, Vo2drError) as exc:
        errors.append(f"cannot clean up stale scratch databases: {one_line(exc)}")
        log.warning("drill: %s", errors[-1])
    return dropped, errors


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
                recovery_key_pem: bytes | None = None,
                allow_superuser: bool = False) -> ClassReport:
    dc = settings.strategy().database_class(data_class)
    rto = rto_override_seconds if rto_override_seconds is not None else dc.rto_seconds
    report = ClassReport(data_class=data_class, rto_seconds=rto)
    reporter = reporter or QuietReporter()
    try:
        catalog = build_catalog(stores, settings.environment, data_class=data_class)
        selection = select_latest(catalog, stores, Trust.from_settings(settings), data_class,
                                  need_in=source)
        entry = selection.entry
        chosen = source or selection.agreement.agreeing[0]
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
                         recovery_key_pem=recovery_key_pem, allow_superuser=allow_superuser)
        report.restore_seconds = round(clock() - t0, 3)
        report.source_server_version = result.source_server_version
        report.scratch_server_version = result.target_server_version
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
        report.drop_error = drop_scratch(scratch)
        report.dropped = not report.drop_error
    report.ok = not report.errors
    return report


def drop_scratch(scratch: Target, *, attempts: int = 3, pause: float = 1.0,
                 drop: Callable[[Target], None] = drop_created_database,
                 sleep: Callable[[float], None] = time.sleep) -> str:
    """Drop the drill's scratch database; "" once dropped, else the last error (logged).

    Retried because WITH (FORCE) can fail for a moment on a busy server, e.g. while an
    autovacuum worker the drill's role may not terminate is still in the new database."""
    error = ""
    for attempt in range(attempts):
        try:
            drop(scratch)
            return ""
        except (psycopg.Error, Vo2drError) as exc:
            error = one_line(exc)
            if attempt + 1 < attempts:
                sleep(pause)
    log.warning("drill: scratch database %s not dropped: %s", scratch.dbname, error)
    return error


def run_drill(settings: Settings, *, data_classes: list[str] | None = None,
              source: str | None = None, stores: Mapping[str, BackupStore] | None = None,
              now: datetime | None = None,
              rto_override_seconds: float | None = None,
              reporter: Reporter | None = None,
              clock: Callable[[], float] = time.monotonic,
              recovery_key_pem: bytes | None = None,
              allow_superuser: bool = False) -> DrillReport:
    """Drill every data class of the strategy (or ``data_classes``). ``recovery_key_pem``
    decrypts with the offline recovery key instead of KMS (a lost AWS account, or backups the
    standby made while AWS was down).

    ``rto_override_seconds`` replaces every class's RTO (tests: the strategy's RTO is a whole,
    positive number of minutes, so it cannot be set below a test restore's few seconds).

    The drill server's role (``VO2DR_DRILL_DATABASE_URL``) must not be a superuser: the drill
    restores whatever the newest backup holds, and code in a dump runs during the restore with
    that role's rights. A superuser is refused unless ``allow_superuser``."""
    settings.require("environment", "drill_database_url")
    server = Target.parse(settings.drill_database_url, "VO2DR_DRILL_DATABASE_URL")
    refuse_superuser(server, allow_superuser, reporter)
    strategy = settings.strategy()
    names = data_classes or list(strategy.database_classes)
    for n in names:
        strategy.database_class(n)
    opened_by_caller = stores is not None
    if stores is None:
        from vo2dr.stores import Access, open_stores

        # Every enabled store, also with --source: latest is decided by a quorum of them.
        wanted = list(dict.fromkeys([*settings.enabled_stores, *([source] if source else [])]))
        stores = open_stores(settings, Access.READ, names=wanted)
    started = (now or datetime.now(UTC)).astimezone(UTC)
    t0 = clock()
    # A drill restores its classes one after another, each within its RTO or failed, and names
    # every scratch database after its own start: one named longer ago than all the RTOs
    # together belongs to a drill that was killed.
    stale_dropped, stale_errors = drop_stale_scratch(
        server, started,
        timedelta(seconds=sum(dc.rto_seconds for dc in strategy.database_classes.values())))
    reports = [drill_class(settings, n, stores=stores, source=source, server=server,
                           now=started, rto_override_seconds=rto_override_seconds,
                           reporter=reporter, clock=clock, recovery_key_pem=recovery_key_pem,
                           allow_superuser=allow_superuser)
               for n in names]
    sources = []
    if not data_classes:  # a drill of every class covers the application sources too
        from vo2dr.sources.drill import drill_sources

        sources = drill_sources(settings, stores=stores,
                                rto_override_seconds=rto_override_seconds, clock=clock,
                                recovery_key_pem=recovery_key_pem)
    report = DrillReport(ok=all(r.ok for r in reports) and all(s.ok for s in sources),
                         environment=settings.environment,
                         started_at=started.isoformat().replace("+00:00", "Z"),
                         seconds=round(clock() - t0, 3), classes=reports,
                         stale_dropped=stale_dropped, stale_errors=stale_errors,
                         sources=sources)
    report.record = write_drill_record(settings, report, stores if opened_by_caller else None)
    return report


def write_drill_record(settings: Settings, report: DrillReport,
                       stores: Mapping[str, BackupStore] | None = None) -> dict[str, str]:
    """The drill's durable, signed record in every enabled store (``stores`` when given, else
    the enabled stores opened for writing). Signed with ``VO2DR_RECORD_SIGNING_KEY`` (a key
    trusted for records only: the drill's identity should not hold the manifests' key), else
    ``VO2DR_SIGNING_KEY``; with neither the record is written unsigned, and the report shows it
    as not proven ours.
    Never raises: the restores are what the drill proves; a missing record is logged."""
    from vo2dr.records import record_drill

    signer = None
    key = settings.record_signing_key or settings.signing_key
    if key:
        try:
            signer = signer_from_setting(key)
        except Vo2drError as exc:
            log.error("drill: cannot open the signing key for the drill record: %s", exc)
    else:
        log.warning("drill: neither VO2DR_RECORD_SIGNING_KEY nor VO2DR_SIGNING_KEY: the drill "
                    "record is written unsigned")
    errors: dict[str, str] = {}
    if stores is None:
        from vo2dr.stores import Access, open_stores

        try:
            opened = open_stores(settings, Access.WRITE, tolerant=True)
        except Vo2drError as exc:
            log.error("drill: cannot open the stores for the drill record: %s", exc)
            return {"*": f"failed: {exc}"}
        errors = {n: f"failed: {e}" for n, e in opened.errors.items()}
        stores = opened
    return {**errors, **record_drill(stores, report.environment, signer, report)}


class DrillFailed(Vo2drError):
    """Raised by the Lambda handler when a class failed or missed its RTO, so the invocation
    counts as failed and the function's error alarm fires. ``report`` is the full report."""

    def __init__(self, report: DrillReport) -> None:
        failed = [f"{c.data_class}: {'; '.join(c.errors)}" for c in report.classes if not c.ok]
        failed += [f"{s.source}: {'; '.join(s.errors)}" for s in report.sources if not s.ok]
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
