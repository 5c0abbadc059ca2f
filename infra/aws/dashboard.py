"""The operators' CloudWatch dashboard, as code: one ``aws.cloudwatch.Dashboard`` whose every
widget comes from the stack's strategy (data classes, their RPO and RTO, the enabled stores,
the region, the status interval, the Lambda time limit) and from the metrics the job really
emits (names and dimensions imported from ``vo2dr.metrics``; a program test runs the job's own
EMF writers and checks every metric drawn here against them).

Per data class, one row:

* **backup age** against the RPO: the stalest store's age (``BackupAgeSeconds`` by
  ``DataClass``, what the alarm watches) and each store's (``DataClass, Store``), with the RPO
  as a horizontal annotation;
* **backup duration** per store and in total, with the Lambda time limit as an annotation (a
  full backup that nears it will soon stop fitting);
* **backup size** (encrypted bytes) per store and in total;
* **drill restore time** against the RTO (``DrillRestoreSeconds``), the RTO as an annotation.

Per application source (code, config), by ``Source``: its **backup duration** and **backup
size**, per store and in total, a point per its class's RPO.

Then one row of failures: failed backups (per class and per application source) and drills
and replica mismatches per class, status breaches, each function's errors, and the alarms'
states.

Layout numbers (widths, heights) are presentation, not strategy. Periods come from the
strategy: a backup chart's period is its class's RPO (one backup per point), an age chart's
the status interval (one check per point). Drills run monthly at most once a day, so their
charts use a day per point over as many months as CloudWatch keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws
from vo2dr import metrics
from vo2dr.metrics import METRIC_NAMESPACE

if TYPE_CHECKING:
    from infra.config import StackConfig
    from infra.runtime import Runtime

# The dashboard grid is 24 units wide; four charts per class row.
GRID_WIDTH = 24
CHART_WIDTH = 6
CHART_HEIGHT = 6
TEXT_HEIGHT = 4
SECONDS_PER_DAY = 86_400
# How far back the drill charts look: monthly drills need months of history to show a trend,
# so as far as CloudWatch keeps hourly datapoints (provider fact: 455 days, 15 months).
CLOUDWATCH_HOURLY_RETENTION_DAYS = 455
DRILL_HISTORY = f"-P{CLOUDWATCH_HOURLY_RETENTION_DAYS}D"
LAMBDA_NAMESPACE = "AWS/Lambda"


@dataclass(frozen=True)
class ClassTargets:
    """One data class's objectives, in seconds (from the stack file)."""

    rpo_seconds: int
    rto_seconds: int


@dataclass(frozen=True)
class DashboardArgs:
    dashboard_name: str
    region: str
    environment: str
    classes: Mapping[str, ClassTargets]
    # The job's store names of the enabled clouds (vo2dr.stores.STORE_NAMES), primary first.
    stores: Sequence[str]
    # The status check's interval: one age datapoint per period.
    status_period_seconds: int
    # The backup functions' time limit: a backup nearing it is about to stop fitting.
    function_timeout_seconds: int
    function_names: Mapping[str, pulumi.Input[str]]  # job -> Lambda function name
    # report.rtoVariancePercent: how far over the RTO a drill may go (the strategy's "within
    # 10 % variance"); None: no such line.
    rto_variance_percent: float | None = None
    alarm_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # key -> ARN
    # The application sources that print backup metrics (vo2dr.metrics.APP_SOURCES) and are
    # configured -> their class's RPO in seconds (one backup per point).
    sources: Mapping[str, int] = field(default_factory=dict)


def _human(seconds: int) -> str:
    for unit, size in (("d", SECONDS_PER_DAY), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _metric(name: str, dims: Mapping[str, str], label: str,
            namespace: str = METRIC_NAMESPACE) -> list[Any]:
    row: list[Any] = [namespace, name]
    for k, v in dims.items():
        row += [k, v]
    return [*row, {"label": label}]


def _chart(title: str, rows: list[list[Any]], *, region: str, period: int, stat: str,
           annotations: Sequence[dict[str, Any]] = (), start: str | None = None,
           unit: str = "") -> dict[str, Any]:
    props: dict[str, Any] = {
        "title": title, "region": region, "view": "timeSeries", "stacked": False,
        "metrics": rows, "period": period, "stat": stat,
        "yAxis": {"left": {"min": 0, **({"label": unit} if unit else {})}},
    }
    if annotations:
        props["annotations"] = {"horizontal": list(annotations)}
    if start:
        props["start"] = start
    return {"type": "metric", "width": CHART_WIDTH, "height": CHART_HEIGHT, "properties": props}


def class_widgets(name: str, targets: ClassTargets, args: DashboardArgs) -> list[dict[str, Any]]:
    """The four charts of one data class (without positions)."""
    cls = {metrics.DATA_CLASS: name}
    per_store = [{**cls, metrics.STORE: s} for s in args.stores]
    rpo, rto = targets.rpo_seconds, targets.rto_seconds
    region = args.region
    age = _chart(
        f"{name}: backup age vs RPO {_human(rpo)}",
        [_metric(metrics.BACKUP_AGE, cls, "stalest store"),
         *(_metric(metrics.BACKUP_AGE, d, d[metrics.STORE]) for d in per_store)],
        region=region, period=args.status_period_seconds, stat="Maximum", unit="seconds",
        annotations=[{"label": f"RPO {_human(rpo)}", "value": rpo, "fill": "above"}])
    duration = _chart(
        f"{name}: backup duration",
        [_metric(metrics.BACKUP_SECONDS, cls, "whole run"),
         *(_metric(metrics.BACKUP_SECONDS, d, d[metrics.STORE]) for d in per_store)],
        region=region, period=rpo, stat="Maximum", unit="seconds",
        annotations=[{"label": f"Lambda limit {_human(args.function_timeout_seconds)}",
                      "value": args.function_timeout_seconds}])
    size = _chart(
        f"{name}: backup size (encrypted)",
        [_metric(metrics.BACKUP_BYTES, cls, "body"),
         *(_metric(metrics.BACKUP_BYTES, d, d[metrics.STORE]) for d in per_store)],
        region=region, period=rpo, stat="Maximum", unit="bytes")
    drill = _chart(
        f"{name}: drill restore time vs RTO {_human(rto)}",
        [_metric(metrics.DRILL_RESTORE_SECONDS, cls, "restore")],
        region=region, period=SECONDS_PER_DAY, stat="Maximum", unit="seconds",
        start=DRILL_HISTORY,
        annotations=[{"label": f"RTO {_human(rto)}", "value": rto},
                     *([{"label": f"RTO +{args.rto_variance_percent:g} %",
                         "value": round(rto * (1 + args.rto_variance_percent / 100), 3),
                         "fill": "above"}]
                       if args.rto_variance_percent is not None else [])])
    return [age, duration, size, drill]


def source_widgets(source: str, rpo: int, args: DashboardArgs) -> list[dict[str, Any]]:
    """The three charts of one application source (without positions): its newest backup's
    age against its RPO, its backups' duration and size, by ``Source`` (never by its class:
    the database's numbers are there)."""
    key = {metrics.SOURCE: source}
    per_store = [{**key, metrics.STORE: s} for s in args.stores]
    age = _chart(
        f"{source}: backup age vs RPO {_human(rpo)}",
        [_metric(metrics.BACKUP_AGE, key, "stalest store")],
        region=args.region, period=args.status_period_seconds, stat="Maximum", unit="seconds",
        annotations=[{"label": f"RPO {_human(rpo)}", "value": rpo, "fill": "above"}])
    duration = _chart(
        f"{source}: backup duration",
        [_metric(metrics.BACKUP_SECONDS, key, "whole run"),
         *(_metric(metrics.BACKUP_SECONDS, d, d[metrics.STORE]) for d in per_store)],
        region=args.region, period=rpo, stat="Maximum", unit="seconds",
        annotations=[{"label": f"Lambda limit {_human(args.function_timeout_seconds)}",
                      "value": args.function_timeout_seconds}])
    size = _chart(
        f"{source}: backup size (encrypted, stored by the run)",
        [_metric(metrics.BACKUP_BYTES, key, "body"),
         *(_metric(metrics.BACKUP_BYTES, d, d[metrics.STORE]) for d in per_store)],
        region=args.region, period=rpo, stat="Maximum", unit="bytes")
    return [age, duration, size]


def failure_widgets(args: DashboardArgs, function_names: Mapping[str, str],
                    alarm_arns: Mapping[str, str]) -> list[dict[str, Any]]:
    """Failures: per class, per function, and the alarms (without positions)."""
    classes = sorted(args.classes)
    region = args.region
    period = args.status_period_seconds
    job_failures = _chart(
        "failed backups and drills",
        [*(_metric(metrics.BACKUP_FAILED, {metrics.DATA_CLASS: c}, f"{c} backup")
           for c in classes),
         *(_metric(metrics.BACKUP_FAILED, {metrics.SOURCE: s}, f"{s} backup")
           for s in sorted(args.sources)),
         *(_metric(metrics.DRILL_FAILED, {metrics.DATA_CLASS: c}, f"{c} drill")
           for c in classes)],
        region=region, period=period, stat="Sum", unit="count")
    status = _chart(
        "replica mismatches and status breaches",
        [*(_metric(metrics.REPLICA_MISMATCH, {metrics.DATA_CLASS: c}, f"{c} mismatches")
           for c in classes),
         _metric(metrics.STATUS_BREACHES, {}, "breaches")],
        region=region, period=period, stat="Maximum", unit="count")
    errors = _chart(
        "function errors",
        [_metric("Errors", {"FunctionName": fn}, job, namespace=LAMBDA_NAMESPACE)
         for job, fn in sorted(function_names.items())],
        region=region, period=period, stat="Sum", unit="count")
    out = [job_failures, status, errors]
    if alarm_arns:
        out.append({"type": "alarm", "width": CHART_WIDTH, "height": CHART_HEIGHT,
                    "properties": {"title": "alarms", "region": region,
                                   "alarms": [alarm_arns[k] for k in sorted(alarm_arns)]}})
    return out


def header(args: DashboardArgs) -> dict[str, Any]:
    """A text widget: the strategy the charts are drawn against."""
    lines = [f"## vo2dr {args.environment}: backups and recovery",
             f"Stores: {', '.join(args.stores)} · region {args.region} · status every "
             f"{_human(args.status_period_seconds)}", "",
             "| class | RPO | RTO |", "|---|---|---|"]
    lines += [f"| {n} | {_human(t.rpo_seconds)} | {_human(t.rto_seconds)} |"
              for n, t in sorted(args.classes.items())]
    return {"type": "text", "width": GRID_WIDTH, "height": TEXT_HEIGHT,
            "properties": {"markdown": "\n".join(lines)}}


def body(args: DashboardArgs, function_names: Mapping[str, str],
         alarm_arns: Mapping[str, str]) -> dict[str, Any]:
    """The dashboard body (``DashboardBody`` JSON) with every widget placed on the grid."""
    rows = [[header(args)]]
    rows += [class_widgets(n, args.classes[n], args) for n in sorted(args.classes)]
    if args.sources:
        rows.append([w for s in sorted(args.sources)
                     for w in source_widgets(s, args.sources[s], args)])
    rows.append(failure_widgets(args, function_names, alarm_arns))
    widgets, y = [], 0
    for row in rows:
        x = 0
        for w in row:
            if x + w["width"] > GRID_WIDTH:
                x, y = 0, y + CHART_HEIGHT
            widgets.append({**w, "x": x, "y": y})
            x += w["width"]
        y += max(w["height"] for w in row)
    return {"widgets": widgets}


class Dashboard(pulumi.ComponentResource):
    """Outputs: ``dashboard_name``, ``dashboard_arn``."""

    def __init__(self, name: str, args: DashboardArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:Dashboard", name, None, opts)
        functions = dict(args.function_names)
        alarms = dict(args.alarm_arns)
        names = sorted(functions)
        alarm_keys = sorted(alarms)

        def render(values: list[str]) -> str:
            fn = dict(zip(names, values[:len(names)], strict=True))
            al = dict(zip(alarm_keys, values[len(names):], strict=True))
            return json.dumps(body(args, fn, al), sort_keys=True)

        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=args.dashboard_name, region=args.region,
            dashboard_body=pulumi.Output.all(
                *(functions[k] for k in names), *(alarms[k] for k in alarm_keys)).apply(render),
            opts=pulumi.ResourceOptions(parent=self))
        self.dashboard_name = self.dashboard.dashboard_name
        self.dashboard_arn = self.dashboard.dashboard_arn
        self.register_outputs({"dashboard_name": self.dashboard_name,
                               "dashboard_arn": self.dashboard_arn})


def build(cfg: StackConfig, runtime: Runtime) -> Dashboard:
    """The stack's dashboard: the functions' names and the alarms come from ``runtime``."""
    from vo2dr.metrics import APP_SOURCES
    from vo2dr.stores import STORE_NAMES

    from infra.config_base import CLOUDS

    stores = tuple(store for cloud, store in zip(CLOUDS, STORE_NAMES, strict=True)
                   if cloud in cfg.enabled_clouds)
    app = cfg.strategy.application
    sources = {k: cfg.strategy.source_class(k).rpo_seconds for k in APP_SOURCES
               if app is not None and k in app.all_sources()}
    return Dashboard(cfg.name("dashboard"), DashboardArgs(
        dashboard_name=cfg.name("dr"), region=cfg.aws.region, environment=cfg.environment,
        classes={n: ClassTargets(dc.rpo_seconds, dc.rto_seconds)
                 for n, dc in cfg.data_classes.items()},
        stores=stores, status_period_seconds=cfg.monitoring.status_every_minutes * 60,
        function_timeout_seconds=cfg.runtime.lambda_timeout_seconds,
        rto_variance_percent=cfg.report.rto_variance_percent if cfg.report else None,
        function_names=runtime.functions.function_names,
        alarm_arns={k: a.arn for k, a in runtime.alerts.alarms.items()}, sources=sources))
