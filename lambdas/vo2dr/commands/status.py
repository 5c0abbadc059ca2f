"""``vo2dr status [--json] [--alert-webhook URL]``: for each data class and each enabled store,
the age of the newest complete backup against the RPO; and whether the stores hold the same
bytes for the newest backups (replica agreement).

A table on a terminal, JSON otherwise (or with ``--json``). With an alert webhook
(``--alert-webhook`` or ``VO2DR_ALERT_WEBHOOK``), a Slack-compatible message is posted only when
a breach appears or everything recovers; the previous state is kept in ``--state-file``
(default ``$VO2DR_STATUS_STATE_FILE`` or ``.vo2dr/status-<environment>.json``), or with
``--state-in-store`` in the first enabled store under ``status/<environment>/``.

Exit codes: 0 every class within its RPO everywhere and the replicas agree; 1 a breach;
2 the status could not be computed; 3 a setting is missing or invalid (no store enabled
included). A store that cannot be opened or listed is a breach (1), as in the Lambda.
"""

from __future__ import annotations

import argparse
import json
import sys

from vo2dr.cli import non_negative_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("status", help="freshness against the RPO and replica agreement",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="JSON even on a terminal")
    p.add_argument("--deep", action="store_true",
                   help="also download every checked copy and compare its SHA-256")
    p.add_argument("--check-last", type=non_negative_int, default=1, metavar="N",
                   help="check replica agreement of the newest N backups per class (default 1)")
    p.add_argument("--grace-seconds", type=non_negative_int, metavar="S",
                   help="allowance over the RPO for a backup in progress (default: 10%% of the "
                        "RPO, at least 60)")
    p.add_argument("--now", metavar="TIMESTAMP",
                   help="evaluate as of this UTC time instead of the clock (what-if)")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--state-file", metavar="PATH", help="where the alert state is kept")
    state.add_argument("--state-in-store", action="store_true",
                       help="keep the alert state in the first enabled store (as in the cloud)")
    return p


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from vo2dr.catalog import build_catalog, parse_point_in_time
    from vo2dr.cli import load_settings
    from vo2dr.secret_urls import resolve_secrets
    from vo2dr.status import FileState, StoreState, add_drill_server, compute_status, notify
    from vo2dr.stores import Access, open_stores
    from vo2dr.trust import Trust

    settings = load_settings(args, required=("environment",), strategy=True)
    now = parse_point_in_time(args.now) if args.now else datetime.now(UTC)
    settings = resolve_secrets(settings, names=("alert_webhook", "drill_database_url"))
    # Tolerant, as in the Lambda: a store that cannot be opened is a breach, not a crash.
    stores = open_stores(settings, Access.READ, tolerant=True)
    trust = Trust.from_settings(settings)  # a bad key is a setting error, before any network
    catalog = build_catalog(stores, settings.environment)
    catalog.errors.update(stores.errors)
    catalog.stores = stores.names
    report = compute_status(settings.strategy(), stores, settings.environment, now,
                            check_last=args.check_last, deep=args.deep,
                            grace_seconds=args.grace_seconds, catalog=catalog,
                            trust=trust)
    add_drill_server(report, settings)
    state: StoreState | FileState
    if args.state_in_store and stores:
        state = StoreState(next(iter(stores.values())), settings.environment, now)
    else:
        path = args.state_file or settings.status_state_file or \
            f".vo2dr/status-{settings.environment}.json"
        state = FileState(path)
    if settings.alert_webhook or args.state_file or args.state_in_store:
        notify(report, state, settings.alert_webhook or None)
    if args.json or not sys.stdout.isatty():
        print(json.dumps(report.to_json(), indent=2))
    else:
        render(report)
    for line in report.messages:
        print(f"vo2dr status: breach: {line}", file=sys.stderr)
    for line in report.notes:
        print(f"vo2dr status: note: {line}", file=sys.stderr)
    if report.alert.get("error"):
        print(f"vo2dr status: {report.alert['error']}", file=sys.stderr)
    return 0 if report.ok else 1


def render(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from vo2dr.status import human_duration

    table = Table(title=f"vo2dr status: {report.environment} at {report.checked_at}")
    for col in ("class", "store", "newest backup", "age", "RPO", "state"):
        table.add_column(col)
    for name, cs in report.classes.items():
        for store, f in cs.stores.items():
            table.add_row(name, store, f.newest_backup_id or "-",
                          human_duration(f.age_seconds) if f.age_seconds is not None else "-",
                          human_duration(cs.rpo_seconds),
                          "[green]ok[/]" if f.ok else f"[red]BREACH[/] {f.reason}")
    console = Console()
    console.print(table)
    for r in report.replicas:
        why = [*r.problems, *r.unsigned,
               *([f"missing from {', '.join(r.missing)}"] if r.missing else [])]
        mark = "[green]agree[/]" if r.agree else "[red]BREACH[/] " + "; ".join(why)
        version = (f" (source PostgreSQL {r.source_server_version})"
                   if r.source_server_version else "")
        console.print(f"replicas of {r.data_class} {r.backup_id} "
                      f"({', '.join(r.copies) or 'none'}): {mark}{version}")
    if report.drill_server_version or report.drill_server_error:
        console.print("drill server: " + (f"PostgreSQL {report.drill_server_version}"
                                          if report.drill_server_version
                                          else f"[red]{report.drill_server_error}[/]"))
    for note in report.notes:
        console.print(f"[yellow]note[/]: {note}")
    if report.alert.get("kind"):
        sent = "sent" if report.alert.get("sent") else "not sent"
        console.print(f"alert: {report.alert['kind']} ({sent})")
