"""``vo2dr backup --data-class full|critical|important [--if-missing]``, or
``vo2dr backup --source code|config``: the app's repository (every ref, one git bundle) or its
configuration (the config files and the environment secrets, one archive), each in the data
class the stack file gives it (``vo2max-dr:application``), through the same pipeline.
``vo2dr backup --source assets|logs [--time-limit SECONDS]``: an incremental snapshot of the
uploads bucket or the log drain's prefixes (only new or changed objects are read and uploaded;
``contents`` in the summary says how many and how many bytes); with a time limit it stops
taking new objects in time and writes an incomplete snapshot that the next run continues.

Prints the JSON summary on stdout (a progress bar on stderr when it is a terminal). Exit codes:
0 every enabled destination holds a verified copy and its manifest (or, with ``--if-missing``,
a complete backup already exists in the current schedule window: "skipped: covered by <backup
id>"); 1 at least one destination failed (the others hold a complete backup); 2 no backup at
all (dump or encryption failed: the one-line cause is on stderr); 3 a setting is missing or
invalid (checked before anything is contacted).
"""

from __future__ import annotations

import argparse
import json
import sys

from vo2dr.cli import non_negative_int
from vo2dr.exceptions import Vo2drError
from vo2dr.strategy import KNOWN_DATA_CLASSES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "backup", help="dump, compress, encrypt and upload to every enabled store at once",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", "--kind", dest="kind", default="database",
                   choices=("database", "code", "config", "assets", "logs"),
                   help="what to back up (default: database); code, config, assets and logs "
                        "take their data class from vo2max-dr:application")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="assets and logs: end within this many seconds (an incomplete "
                        "snapshot, continued by the next run)")
    p.add_argument("--data-class", choices=KNOWN_DATA_CLASSES,
                   help="the database's tables: the stack file's critical or important list, "
                        "or full (required for the database)")
    p.add_argument("--null-destinations", type=non_negative_int, default=0, metavar="N",
                   help="benchmarking: send the encrypted stream to N discarding destinations "
                        "instead of the enabled stores")
    p.add_argument("--if-missing", action="store_true",
                   help="back up only if no complete backup of the class exists in the current "
                        "schedule window (RPO-long, clock-aligned; the day since dailyAtUtc) in "
                        "any reachable store")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a TTY")
    return p


def run(args: argparse.Namespace) -> int:
    from vo2dr.backup import backup_if_missing, run_backup
    from vo2dr.cli import load_settings
    from vo2dr.exceptions import ConfigError
    from vo2dr.secret_urls import resolve_database_url
    from vo2dr.stores.null import NullStore

    if args.kind != "database":
        return _run_source(args)
    if args.time_limit is not None:
        raise ConfigError("--time-limit is for --source assets or logs")
    if not args.data_class:
        raise ConfigError("--data-class is required to back up the database: use critical, "
                          "important or full")
    backup = backup_if_missing if args.if_missing else run_backup
    stores = None
    if args.null_destinations:
        stores = {f"null{i + 1}": NullStore(f"null{i + 1}")
                  for i in range(args.null_destinations)}
    try:
        settings = resolve_database_url(load_settings(
            args, required=("database_url", "environment", "recovery_public_key"),
            strategy=True))
        if args.no_progress or not sys.stderr.isatty():
            summary = backup(settings, args.data_class, stores=stores)
        else:
            summary = _with_progress(backup, settings, args.data_class, stores)
    except Vo2drError as exc:
        print(json.dumps({"ok": False, "data_class": args.data_class, "error": str(exc),
                          "error_type": type(exc).__name__}))
        raise
    return _report(summary.to_json())


def _run_source(args: argparse.Namespace) -> int:
    from vo2dr.cli import load_settings
    from vo2dr.exceptions import ConfigError
    from vo2dr.sources.backup import backup_source

    if args.if_missing or args.null_destinations:
        raise ConfigError(f"--if-missing and --null-destinations are for the database, not "
                          f"--source {args.kind}")
    if args.time_limit is not None and (args.kind not in ("assets", "logs")
                                        or args.time_limit <= 0):
        raise ConfigError("--time-limit is a positive number of seconds, for --source assets "
                          "or logs")
    try:
        settings = load_settings(
            args, required=("environment", "recovery_public_key", "signing_key"), strategy=True)
        summary = backup_source(settings, args.kind, time_limit=args.time_limit)
    except Vo2drError as exc:
        print(json.dumps({"ok": False, "source": args.kind, "error": str(exc),
                          "error_type": type(exc).__name__}))
        raise
    return _report(summary.to_json())


def _report(doc: dict) -> int:
    print(json.dumps(doc, indent=2))
    for warning in doc.get("warnings", []):
        print(f"vo2dr backup: warning: {warning}", file=sys.stderr)
    if not doc["ok"]:
        print(f"vo2dr backup: error: {doc.get('error') or 'a destination failed'}",
              file=sys.stderr)
        return 1
    return 0


def _with_progress(run_backup, settings, data_class: str, stores):
    from rich.console import Console
    from rich.progress import (
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), DownloadColumn(),
               TransferSpeedColumn(), TextColumn("→ {task.fields[sent]} encrypted"),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"pg_dump {data_class}", total=None, sent="0 B")

        def progress(phase: str, plain: int, cipher: int) -> None:
            desc = f"pg_dump {data_class}" if phase == "dump" else "writing manifests"
            bar.update(task, completed=plain, description=desc, sent=_human(cipher))

        return run_backup(settings, data_class, progress=progress, stores=stores)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
