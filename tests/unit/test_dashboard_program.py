"""The CloudWatch dashboard (issue 18), from the real program under Pulumi mocks, per stack:
its widgets parsed from the dashboard body and checked against the stack file read
independently (classes, RPO and RTO annotations, enabled stores, region), a class or cloud
changed in the stack changes the widgets, and every metric drawn is one the job's own EMF
writers really print (status, drill, backup), with the same namespace and dimension set."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from vo2dr import handlers, metrics
from vo2dr.drill import ClassReport, DrillReport
from vo2dr.drill import emf_documents as drill_emf
from vo2dr.exceptions import StoreError, Vo2drError
from vo2dr.layout import BackupRef, format_timestamp
from vo2dr.status import compute_status
from vo2dr.status import emf_documents as status_emf
from vo2dr.strategy import parse_strategy
from vo2dr.summary import BackupSummary, DestinationStatus, DestinationSummary

from dev.mockrun import Graph, run_program, stack_settings
from tests.program_graphs import STACKS, GraphCache
from tests.unit.recovery_memstore import TRUST, MemoryStore, add_backup

NS = "vo2max-dr"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
STORE_OF_CLOUD = {"aws": "s3", "gcp": "gcs", "azure": "azure"}
GRID = 24

graph_of = GraphCache()


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


def dashboard_body(g: Graph) -> dict[str, Any]:
    return json.loads(g.one(DASHBOARD).inputs["dashboardBody"])


def charts(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["properties"]["title"]: w["properties"] for w in body["widgets"]
            if w["type"] == "metric"}


def series(props: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of each row of a metric widget."""
    out = []
    for row in props["metrics"]:
        plain = [x for x in row if not isinstance(x, dict)]
        ns, name, dims = plain[0], plain[1], plain[2:]
        out.append((ns, name, dict(zip(dims[::2], dims[1::2], strict=True))))
    return out


def classes_of(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The classes with a database backup (a class with ``tables: []`` backs up application
    sources only: it has no backup function, schedule or drill of its own)."""
    return {n: c for n, c in settings[f"{NS}:dataClasses"].items() if c.get("tables") != []}


def stores_of(settings: dict[str, Any]) -> list[str]:
    clouds = settings[f"{NS}:clouds"]
    return [STORE_OF_CLOUD[c] for c in ("aws", "gcp", "azure") if clouds[c]["enabled"]]


def app_sources_of(settings: dict[str, Any]) -> dict[str, int]:
    """The configured application sources -> their class's RPO in seconds."""
    app = settings.get(f"{NS}:application") or {}
    classes = settings[f"{NS}:dataClasses"]
    return {k: classes[app[k]["dataClass"]]["rpoMinutes"] * 60
            for k in ("code", "config", "assets", "logs") if app.get(k)}


def monitoring_period(settings: dict[str, Any]) -> int:
    return settings[f"{NS}:monitoring"]["statusEveryMinutes"] * 60


def chart_of(body: dict[str, Any], cls: str, what: str) -> dict[str, Any]:
    found = [p for t, p in charts(body).items() if t.startswith(f"{cls}: {what}")]
    assert len(found) == 1, (cls, what, list(charts(body)))
    return found[0]


# ---- per stack, against the stack file -------------------------------------------------------

def test_one_dashboard_per_stack_in_its_region_and_exported(stack):
    g, settings = graph_of(stack), stack_settings(stack)
    d = g.one(DASHBOARD)
    assert d.inputs["dashboardName"] == f"vo2dr-{stack}-dr"
    assert d.inputs["region"] == settings["aws:region"]
    assert g.outputs["dashboardName"] == f"vo2dr-{stack}-dr"
    assert g.by_urn(d.parent).type == "vo2dr:aws:Dashboard"
    for props in charts(dashboard_body(g)).values():
        assert props["region"] == settings["aws:region"]


def test_every_class_has_age_duration_size_and_drill_charts(stack):
    body, settings = dashboard_body(graph_of(stack)), stack_settings(stack)
    stores = stores_of(settings)
    for cls, raw in classes_of(settings).items():
        rpo, rto = raw["rpoMinutes"] * 60, raw["rtoMinutes"] * 60
        age = chart_of(body, cls, "backup age")
        assert age["annotations"]["horizontal"][0]["value"] == rpo
        assert age["stat"] == "Maximum"
        assert age["period"] == settings[f"{NS}:monitoring"]["statusEveryMinutes"] * 60
        assert series(age) == [
            ("vo2dr", "BackupAgeSeconds", {"DataClass": cls}),
            *(("vo2dr", "BackupAgeSeconds", {"DataClass": cls, "Store": s}) for s in stores)]
        for what, metric in (("backup duration", "BackupSeconds"),
                             ("backup size", "BackupBytes")):
            chart = chart_of(body, cls, what)
            assert chart["period"] == rpo  # one backup per point
            assert series(chart) == [
                ("vo2dr", metric, {"DataClass": cls}),
                *(("vo2dr", metric, {"DataClass": cls, "Store": s}) for s in stores)]
        duration = chart_of(body, cls, "backup duration")
        assert duration["annotations"]["horizontal"][0]["value"] == \
            settings[f"{NS}:runtime"]["lambdaTimeoutSeconds"]
        drill = chart_of(body, cls, "drill restore time")
        variance = settings[f"{NS}:report"]["rtoVariancePercent"]
        assert [a["value"] for a in drill["annotations"]["horizontal"]] == [
            rto, pytest.approx(rto * (1 + variance / 100))]
        assert series(drill) == [("vo2dr", "DrillRestoreSeconds", {"DataClass": cls})]


def test_every_application_source_has_age_duration_and_size_charts(stack):
    body, settings = dashboard_body(graph_of(stack)), stack_settings(stack)
    stores = stores_of(settings)
    sources = app_sources_of(settings)
    assert set(sources) == {"code", "config", "assets", "logs"}, stack
    for source, rpo in sources.items():
        age = chart_of(body, source, "backup age")
        assert series(age) == [("vo2dr", "BackupAgeSeconds", {"Source": source})]
        assert age["annotations"]["horizontal"][0]["value"] == rpo
        assert age["period"] == monitoring_period(settings)
        for what, metric in (("backup duration", "BackupSeconds"),
                             ("backup size", "BackupBytes")):
            chart = chart_of(body, source, what)
            assert chart["period"] == rpo  # one backup per point
            assert series(chart) == [
                ("vo2dr", metric, {"Source": source}),
                *(("vo2dr", metric, {"Source": source, "Store": s}) for s in stores)]
    # Never drawn by their class: the class charts carry the database's numbers only.
    for props in charts(body).values():
        assert all(not ("Source" in d and "DataClass" in d) for _, _, d in series(props))


def test_failures_row_covers_every_class_function_and_alarm(stack):
    g, settings = graph_of(stack), stack_settings(stack)
    body = dashboard_body(g)
    classes = set(classes_of(settings))
    failed = series(charts(body)["failed backups and drills"])
    assert {(m, d["DataClass"]) for _, m, d in failed if "DataClass" in d} == {
        (m, c) for c in classes for m in ("BackupFailed", "DrillFailed")}
    # The application sources' failed backups, by Source.
    assert {(m, d["Source"]) for _, m, d in failed if "Source" in d} == {
        ("BackupFailed", s) for s in app_sources_of(settings)}
    errors = series(charts(body)["function errors"])
    functions = {r.inputs["name"] for r in g.of_type("aws:lambda/function:Function")}
    assert {d["FunctionName"] for ns, m, d in errors if ns == "AWS/Lambda"} == functions
    alarms = next(w for w in body["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
    assert sorted(alarms) == sorted(r.outputs["arn"] for r in g.of_type(ALARM))


def test_header_names_the_strategy_and_widgets_fit_the_grid(stack):
    body, settings = dashboard_body(graph_of(stack)), stack_settings(stack)
    text = next(w for w in body["widgets"] if w["type"] == "text")["properties"]["markdown"]
    for cls in classes_of(settings):
        assert f"| {cls} |" in text
    cells = set()
    for w in body["widgets"]:
        assert w["x"] >= 0 and w["x"] + w["width"] <= GRID
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, f"widgets overlap at {(x, y)}"
                cells.add((x, y))


# ---- the stack changes, the widgets follow ---------------------------------------------------

def test_a_class_added_to_the_stack_gets_its_widgets():
    """The job knows three classes (vo2dr.strategy.KNOWN_DATA_CLASSES): a stack without
    ``important`` draws none of its charts; with it (and other targets) it gets all of them."""
    settings = stack_settings("staging")
    classes = dict(settings[f"{NS}:dataClasses"])
    important = classes.pop("important")
    # The application sources naming the important class move to critical meanwhile.
    app = settings[f"{NS}:application"]
    app = {**app, **{k: {**v, "dataClass": "critical"} for k, v in app.items()
                     if isinstance(v, dict) and v.get("dataClass") == "important"}}
    without = dashboard_body(run_program("staging", {f"{NS}:dataClasses": classes,
                                                     f"{NS}:application": app}))
    assert not [t for t in charts(without) if t.startswith("important:")]
    assert all(d.get("DataClass") != "important"
               for _, _, d in series(charts(without)["failed backups and drills"]))
    added = {**classes, "important": {**important, "rpoMinutes": 30, "rtoMinutes": 90}}
    body = dashboard_body(run_program("staging", {f"{NS}:dataClasses": added}))
    assert chart_of(body, "important", "backup age")["annotations"]["horizontal"][0][
        "value"] == 30 * 60
    assert chart_of(body, "important", "drill restore time")["annotations"]["horizontal"][0][
        "value"] == 90 * 60
    assert chart_of(body, "important", "backup size")["period"] == 30 * 60
    failed = series(charts(body)["failed backups and drills"])
    assert ("vo2dr", "BackupFailed", {"DataClass": "important"}) in failed
    assert len(charts(body)) == len(charts(without)) + 4


def test_the_rto_variance_line_follows_the_stack():
    body = dashboard_body(run_program("staging", {f"{NS}:report.rtoVariancePercent": 25}))
    rto = classes_of(stack_settings("staging"))["critical"]["rtoMinutes"] * 60
    line = chart_of(body, "critical", "drill restore time")["annotations"]["horizontal"][1]
    assert line["value"] == pytest.approx(rto * 1.25) and line["label"] == "RTO +25 %"


def test_a_disabled_cloud_leaves_the_charts():
    body = dashboard_body(run_program("staging", {f"{NS}:clouds.azure.enabled": False}))
    for props in charts(body).values():
        assert all(d.get("Store") != "azure" for _, _, d in series(props))
    age = chart_of(body, "critical", "backup age")
    assert [d.get("Store") for _, _, d in series(age)] == [None, "s3", "gcs"]


# ---- the metric contract with the job --------------------------------------------------------

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _emitted(docs: list[dict[str, Any]]) -> set[tuple[str, str, frozenset[str]]]:
    out = set()
    for doc in docs:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for dims in directive["Dimensions"]:
                for m in directive["Metrics"]:
                    assert m["Name"] in doc, (m, doc)  # the value is in the document
                    assert all(d in doc for d in dims)
                    out.add((directive["Namespace"], m["Name"], frozenset(dims)))
    return out


def _summary(cls: str, ok: bool = True, source: str = "database") -> BackupSummary:
    dest = {s: DestinationSummary(status=DestinationStatus.VERIFIED,
                                  body=DestinationStatus.VERIFIED, manifest="written",
                                  bytes=4096, seconds=1.5) for s in ("s3", "gcs", "azure")}
    return BackupSummary(
        ok=ok, backup_id="abcdefabcdef", environment="staging", data_class=cls, tier="daily",
        timestamp=format_timestamp(T0), body_key="k", manifest_key="k.manifest", tables={},
        plaintext={"bytes": 9000, "sha256": "0" * 64}, compressed_bytes=5000,
        ciphertext={"bytes": 4096, "sha256": "1" * 64}, server_version="18", pg_dump_version="18",
        kms_key_arn="arn", recovery_key_id="r", destinations=dest, seconds=3.0,
        plaintext_mb_per_s=1.0, source=source)


def job_metrics() -> set[tuple[str, str, frozenset[str]]]:
    """Every (namespace, metric, dimension names) the job's own EMF writers print."""
    strategy = parse_strategy({
        "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
        "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
    })
    stores = [MemoryStore("s3"), MemoryStore("gcs"), MemoryStore("azure")]
    add_backup(stores, BackupRef("staging", "daily", "critical", T0, "bbbbbbbbbbb1"))
    status = compute_status(strategy, {s.name: s for s in stores}, "staging",
                            T0 + timedelta(minutes=5), trust=TRUST)
    # A source's freshness has the shape of a class's (vo2dr.sources.status): what status
    # prints by Source is checked with a real one in tests/integration/snapshot_reads.
    status.sources["code"] = status.classes["critical"]
    drill = DrillReport(ok=True, environment="staging", started_at=T0.isoformat(), seconds=9,
                        classes=[ClassReport("critical", ok=True, restore_seconds=8.0)])
    return (_emitted(status_emf(status)) | _emitted(drill_emf(drill))
            | _emitted(metrics.backup_documents(_summary("critical")))
            | _emitted(metrics.failed_backup_documents("staging", "critical", T0))
            | _emitted(metrics.backup_documents(_summary("important", source="code")))
            | _emitted(metrics.failed_source_documents("staging", "config", T0)))


def test_every_metric_drawn_is_one_the_job_emits(stack):
    emitted = job_metrics()
    drawn = {(ns, m, frozenset(d)) for props in charts(dashboard_body(graph_of(stack))).values()
             for ns, m, d in series(props) if ns != "AWS/Lambda"}
    assert drawn, "the dashboard draws none of the job's metrics"
    assert drawn <= emitted, sorted(drawn - emitted)


def test_the_contract_check_catches_a_renamed_metric():
    """The check above is not vacuous: a metric the job does not print is caught."""
    assert ("vo2dr", "BackupAgeSeconds", frozenset({"DataClass", "Store"})) in job_metrics()
    assert ("vo2dr", "BackupAge", frozenset({"DataClass"})) not in job_metrics()
    assert ("vo2dr", "DrillRestoreSeconds", frozenset({"DataClass", "Store"})) \
        not in job_metrics()
    assert ("vo2dr", "BackupBytes", frozenset({"Source", "Store"})) in job_metrics()
    assert ("vo2dr", "BackupFailed", frozenset({"Source"})) in job_metrics()
    assert ("vo2dr", "BackupAgeSeconds", frozenset({"Source"})) in job_metrics()


# ---- the backup function prints its metrics --------------------------------------------------

def _printed(run) -> list[dict[str, Any]]:
    buf = io.StringIO()
    # The handler re-raises a failure; the lines it printed first are what is checked.
    with redirect_stdout(buf), suppress(Vo2drError):
        run()
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]


def test_a_finished_backup_prints_its_duration_and_bytes_per_store():
    docs = _printed(lambda: handlers._logged_backup(lambda: _summary("critical"),
                                                    {"data_class": "critical"}))
    total = next(d for d in docs if "Store" not in d)
    assert (total["BackupSeconds"], total["BackupBytes"], total["BackupFailed"]) == \
        (3.0, 4096, 0)
    assert total["_aws"]["Timestamp"] == int(T0.timestamp() * 1000)
    assert {d["Store"]: (d["BackupSeconds"], d["BackupBytes"]) for d in docs if "Store" in d} \
        == {s: (1.5, 4096) for s in ("s3", "gcs", "azure")}


def test_an_incomplete_backup_counts_as_failed():
    docs = _printed(lambda: handlers._logged_backup(lambda: _summary("critical", ok=False),
                                                    {"data_class": "critical"}))
    assert next(d for d in docs if "Store" not in d)["BackupFailed"] == 1


def test_a_backup_failing_before_its_summary_counts_as_failed(monkeypatch):
    monkeypatch.setenv("VO2DR_ENVIRONMENT", "production")

    def broken():
        raise StoreError("s3 unreachable", store="s3")

    docs = _printed(lambda: handlers._logged_backup(broken, {"data_class": "full"}))
    assert [(d["DataClass"], d["BackupFailed"], d["Environment"]) for d in docs] == \
        [("full", 1, "production")]
    with pytest.raises(StoreError):
        handlers._logged_backup(broken, {"data_class": "full"})


def test_an_application_source_prints_by_source_never_by_its_class(monkeypatch):
    docs = _printed(lambda: handlers._logged_backup(
        lambda: _summary("important", source="config"), {"source": "config"}))
    assert docs and all("DataClass" not in d for d in docs)
    total = next(d for d in docs if "Store" not in d)
    assert (total["Source"], total["BackupSeconds"], total["BackupBytes"],
            total["BackupFailed"]) == ("config", 3.0, 4096, 0)
    assert {d["Store"] for d in docs if "Store" in d} == {"s3", "gcs", "azure"}
    # A snapshot prints what the run stored: its index and the new content each store got.
    snap = _summary("important", source="assets")
    snap.contents = {"uploaded_bytes": {"s3": 1000, "gcs": 1000, "azure": 0}}
    docs = metrics.backup_documents(snap)
    assert next(d for d in docs if "Store" not in d)["BackupBytes"] == 4096 + 1000
    assert {d["Store"]: d["BackupBytes"] for d in docs if "Store" in d} == {
        "s3": 5096, "gcs": 5096, "azure": 4096}

    monkeypatch.setenv("VO2DR_ENVIRONMENT", "staging")

    def broken():
        raise StoreError("gcs unreachable", store="gcs")

    docs = _printed(lambda: handlers._logged_backup(broken, {"source": "code"}))
    assert [(d["Source"], d["BackupFailed"], d["Environment"]) for d in docs] == \
        [("code", 1, "staging")]
    assert [(d["Source"], d["BackupFailed"]) for d in _printed(
        lambda: handlers._logged_backup(broken, {"source": "logs"}))] == [("logs", 1)]


# ---- make plan shows it ----------------------------------------------------------------------

def test_the_committed_plans_declare_the_dashboard_with_every_class(stack):
    """``make plan`` (dev.plan) writes plan/<stack>.json; its dashboard body is the program's
    (tests/policy/test_plan.py keeps the files current), with every class's charts."""
    from dev.plan import PLAN_DIR

    doc = json.loads((PLAN_DIR / f"{stack}.json").read_text())
    found = [r for r in doc["resources"] if r["type"] == DASHBOARD]
    assert len(found) == 1, f"plan/{stack}.json has no dashboard: run `make plan`"
    body = found[0]["inputs"]["dashboardBody"]["$json"]
    for cls in classes_of(stack_settings(stack)):
        for what in ("backup age", "backup duration", "backup size", "drill restore time"):
            chart_of(body, cls, what)
    assert f"`{DASHBOARD}`" in (PLAN_DIR / f"{stack}.md").read_text()
