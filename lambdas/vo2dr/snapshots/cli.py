"""The ``vo2dr`` subcommands' snapshot halves (``--kind assets|logs``): thin glue between the
parsed flags and :mod:`vo2dr.snapshots`; the commands in :mod:`vo2dr.commands` dispatch here.

In ``verify`` and ``restore``, ``--source`` names the store (as for every other backup) and
``--kind`` what was backed up; ``--source assets --store s3`` is accepted too, because
``vo2dr backup --source assets`` names the snapshot source that way.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vo2dr.exceptions import ConfigError
from vo2dr.strategy_application import SNAPSHOT_SOURCES

STORES = ("s3", "gcs", "azure")


def snapshot_kind(args: argparse.Namespace) -> str | None:
    """``assets``/``logs`` when the command is about a snapshot source, else ``None``."""
    if getattr(args, "source", None) in SNAPSHOT_SOURCES:
        if args.kind not in ("database", args.source):
            raise ConfigError(f"--source {args.source} and --kind {args.kind} disagree")
        return str(args.source)
    return args.kind if args.kind in SNAPSHOT_SOURCES else None


def store_name(args: argparse.Namespace, *, allow_all: bool = False) -> str | None:
    """The store flag: ``--store``, or ``--source`` when it names a store."""
    store = getattr(args, "store", None)
    source = getattr(args, "source", None)
    if source in SNAPSHOT_SOURCES:
        source = None
    if store and source and store != source:
        raise ConfigError(f"--store {store} and --source {source} disagree")
    name = store or source
    if name == "all" and not allow_all:
        raise ConfigError("read from one store: --store s3, gcs or azure")
    return name


def add_snapshot_flags(p: argparse.ArgumentParser, *, restore: bool = False) -> None:
    """Flags of the snapshot sources, shared by verify and restore."""
    g = p.add_argument_group("snapshot sources (--kind assets|logs)")
    g.add_argument("--store", choices=(*STORES, *(() if restore else ("all",))),
                   help="the store to read from (the same as --source s3|gcs|azure)")
    g.add_argument("--snapshot", metavar="ID|latest",
                   help="the snapshot id (see `vo2dr list --kind assets`) or latest (default: "
                        "the newest complete one)")
    if restore:
        g.add_argument("--at", metavar="TIME",
                       help="the newest complete snapshot taken at or before this UTC time")
        g.add_argument("--prefix", default="", metavar="P",
                       help="restore only the entries under this key prefix, e.g. uploads/2024/ "
                            "or security/")
        g.add_argument("--allow-incomplete", action="store_true",
                       help="restore a partial snapshot (its run stopped at the time limit)")
    else:
        how = g.add_mutually_exclusive_group()
        how.add_argument("--full", action="store_true", help="check every content object")
        how.add_argument("--sample", type=_positive, metavar="N",
                         help="check a random sample of N content objects (default 100)")


def _positive(text: str) -> int:
    from vo2dr.cli import positive_int

    return positive_int(text)


def _trust_and_key(args: argparse.Namespace, settings: Any) -> tuple[Any, bytes | None]:
    from vo2dr.recovery_key import read_recovery_key
    from vo2dr.trust import Trust

    trust = Trust.from_settings(settings)
    return trust, read_recovery_key(args.recovery_key,
                                    getattr(args, "recovery_key_password_file", None))


# -- list -------------------------------------------------------------------------------------

def run_list(args: argparse.Namespace, settings: Any) -> int:
    from vo2dr.snapshots.catalog import list_snapshots
    from vo2dr.stores import Access, open_stores
    from vo2dr.trust import Trust

    stores = open_stores(settings, Access.READ)
    trust = Trust.from_settings(settings)
    catalog, rows = list_snapshots(stores, settings.environment, args.kind, trust)
    doc = {"environment": settings.environment, "source": args.kind,
           "stores": list(catalog.stores), "errors": catalog.errors,
           "snapshots": [r.to_json() for r in rows]}
    if args.json or not sys.stdout.isatty():
        print(json.dumps(doc, indent=2))
    else:
        _render(doc)
    for name, err in catalog.errors.items():
        print(f"vo2dr list: {name} could not be listed: {err}", file=sys.stderr)
    return 1 if catalog.errors else 0


def _render(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"vo2dr {doc['source']} snapshots: {doc['environment']}")
    for col in ("snapshot id", "tier", "taken (UTC)", "objects", "size", "new objects",
                "new bytes", "state", *doc["stores"]):
        table.add_column(col)
    for s in reversed(doc["snapshots"]):
        state = ("[yellow]partial[/]" if s["partial"] else "complete"
                 if s["partial"] is not None else f"[red]{s.get('problem', '?')}[/]")
        table.add_row(s["snapshot_id"], s["tier"], s["timestamp"][:19].replace("T", " "),
                      str(s["objects"]), _mb(s["bytes"]), str(s["new_objects"]),
                      _mb(s["new_bytes"]), state,
                      *(s["stores"].get(n, "missing") for n in doc["stores"]))
    Console().print(table)


def _mb(n: Any) -> str:
    return f"{n / 1e6:.1f} MB" if isinstance(n, int) else "-"


# -- verify -----------------------------------------------------------------------------------

def run_verify(args: argparse.Namespace, settings: Any, kind: str) -> int:
    from vo2dr.snapshots.catalog import find_snapshot
    from vo2dr.snapshots.verify import DEFAULT_SAMPLE, verify_snapshot
    from vo2dr.stores import Access, open_stores

    name = store_name(args, allow_all=True) or "all"
    trust, key = _trust_and_key(args, settings)
    stores = open_stores(settings, Access.READ, names=None if name == "all" else [name])
    spec = None if args.snapshot in (None, "latest") else args.snapshot
    results = []
    failed = 0
    for store in stores.values():
        entry, _ = find_snapshot(store, settings.environment, kind, trust, snapshot=spec,
                                 allow_incomplete=True)
        result = verify_snapshot(store, entry, trust=trust, recovery_key_pem=key,
                                 full=args.full, sample=args.sample or DEFAULT_SAMPLE,
                                 spool_dir=settings.spool_dir or None)
        if not args.full:
            print(f"vo2dr verify: {store.name}: sample size {result.sample_size} of "
                  f"{result.objects_in_snapshot} objects", file=sys.stderr)
        print(f"vo2dr verify: {result.summary()}", file=sys.stderr)
        results.append(result.to_json())
        failed += not result.ok
    print(json.dumps({"ok": not failed, "source": kind, "copies": results}, indent=2))
    return 1 if failed else 0


# -- restore ----------------------------------------------------------------------------------

def run_restore(args: argparse.Namespace, settings: Any, kind: str) -> int:
    from vo2dr.catalog import parse_point_in_time
    from vo2dr.progress import QuietReporter, default_reporter
    from vo2dr.snapshots.restore import DEFAULT_JOBS, restore_snapshot
    from vo2dr.stores import Access, open_store

    if args.table or args.promote or args.diff_against:
        raise ConfigError(f"--table, --promote and --diff-against are not for --kind {kind}")
    name = store_name(args)
    if not name:
        raise ConfigError("--store s3|gcs|azure is required: the store to restore from")
    if args.target_url and not args.target_url.startswith("s3://"):
        raise ConfigError(f"--target-url for --kind {kind} is s3://bucket/prefix/ (or use "
                          "--target-dir DIR)")
    at = parse_point_in_time(args.at) if args.at else None
    if args.before:
        raise ConfigError("use --at TIME for a snapshot source")
    spec = args.snapshot or (args.backup if args.backup != "latest" else None)
    _, key = _trust_and_key(args, settings)
    reporter = QuietReporter(sys.stderr) if args.no_progress else default_reporter()
    result = restore_snapshot(
        settings, kind, store=open_store(name, settings, Access.READ),
        target_dir=args.target_dir, target_url=args.target_url,
        snapshot=None if spec == "latest" else spec, at=at, prefix=args.prefix,
        recovery_key_pem=key, allow_incomplete=args.allow_incomplete,
        jobs=args.jobs or DEFAULT_JOBS, reporter=reporter)
    print(json.dumps(result, indent=2))
    if not result["ok"]:
        print(f"vo2dr restore: error: {result['failed_count']} object(s) could not be restored "
              f"(not written; listed in {result['marker']} at the target): "
              + "; ".join(f"{f['key']}: {f['error']}" for f in result["failed"][:3]),
              file=sys.stderr)
        return 1
    return 0


# -- prune ------------------------------------------------------------------------------------

def run_prune(args: argparse.Namespace, settings: Any) -> int:
    from vo2dr.snapshots.prune import grace_from_settings, lock_days_from_settings, prune
    from vo2dr.stores import Access, open_stores
    from vo2dr.trust import Trust

    settings.require("environment", "lock_days")
    lock_days = lock_days_from_settings(settings.lock_days)
    grace = grace_from_settings(settings.prune_grace_hours)
    trust = Trust.from_settings(settings)
    stores = open_stores(settings, Access.READ, names=[args.store] if args.store else None)
    reports = prune(stores, settings.environment, args.kind, trust, lock_days=lock_days,
                    grace=grace, dry_run=args.dry_run)
    for r in reports:
        verb = "would delete" if r.dry_run else "deleted"
        print(f"vo2dr prune: {r.store}: " + (r.blocked or (
            f"{r.snapshots} snapshots reference {r.referenced} of {r.content_objects} content "
            f"objects; {verb} {r.deleted} ({r.deleted_bytes} bytes) from "
            f"{len(r.plans_swept)} plan(s), kept {r.kept_now_referenced} referenced since "
            f"their mark; marked {r.marked}" + (f" in {r.plan_key}" if r.plan_key else "")
            + (f"; {r.unreferenced_locked} unreferenced still locked"
               if r.unreferenced_locked else ""))), file=sys.stderr)
        for e in r.errors:
            print(f"vo2dr prune: {r.store}: warning: {e}", file=sys.stderr)
    print(json.dumps({"ok": all(r.ok for r in reports), "source": args.kind,
                      "stores": [r.to_json() for r in reports]}, indent=2))
    return 0 if all(r.ok for r in reports) else 1
