"""``vo2dr list [--json] [--data-class C]``: every backup of the environment, in every enabled
store, merged by backup id, with the stores holding a complete copy (body and manifest).

A table on a terminal, JSON otherwise (or with ``--json``). A store that cannot be listed is
reported and the others are still shown; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from vo2dr.strategy import KNOWN_DATA_CLASSES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("list", help="backups in every enabled store, merged by backup id",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="JSON even on a terminal")
    p.add_argument("--data-class", choices=KNOWN_DATA_CLASSES, help="only this data class")
    p.add_argument("--kind", default="database",
                   choices=("database", "code", "config", "assets", "logs"),
                   help="what was backed up: the database (default), the code, the config, or "
                        "the snapshots of assets or logs (objects, new bytes, partial)")
    return p


def run(args: argparse.Namespace) -> int:
    from vo2dr.catalog import build_catalog
    from vo2dr.cli import load_settings
    from vo2dr.stores import Access, open_stores

    settings = load_settings(args, required=("environment",))
    if args.kind in ("assets", "logs"):
        from vo2dr.snapshots.cli import run_list

        return run_list(args, settings)
    stores = open_stores(settings, Access.READ)
    catalog = build_catalog(stores, settings.environment, data_class=args.data_class,
                            source=args.kind)
    if args.json or not sys.stdout.isatty():
        print(json.dumps(catalog.to_json(args.data_class), indent=2))
    else:
        render_table(catalog, args.data_class)
    for name, err in catalog.errors.items():
        print(f"vo2dr list: {name} could not be listed: {err}", file=sys.stderr)
    return 1 if catalog.errors else 0


def render_table(catalog, data_class: str | None, now: datetime | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from vo2dr.status import human_duration

    now = now or datetime.now(UTC)
    table = Table(title=f"vo2dr backups: {catalog.environment}")
    for col in ("backup id", "class", "tier", "taken (UTC)", "age", "size"):
        table.add_column(col, justify="right" if col in ("age", "size") else "left",
                         no_wrap=col in ("backup id", "taken (UTC)"))
    for store in catalog.stores:
        table.add_column(store, justify="center")
    marks = {"complete": "[green]✓[/]", "no-manifest": "[yellow]partial[/]",
             "manifest-only": "[red]no body[/]", "missing": "[red]✗[/]"}
    for e in reversed(catalog.for_class(data_class)):
        sizes = [c.body.size for c in e.copies.values() if c.body is not None]
        row = [e.backup_id, e.data_class, e.ref.tier, f"{e.timestamp:%Y-%m-%d %H:%M:%S}",
               human_duration(int((now - e.timestamp).total_seconds())),
               f"{max(sizes) / 1e6:.1f} MB" if sizes else "-"]
        for store in catalog.stores:
            state = e.copies[store].state if store in e.copies else "missing"
            row.append("[red]unlisted[/]" if store in catalog.errors else marks[state])
        table.add_row(*row)
    Console().print(table)
