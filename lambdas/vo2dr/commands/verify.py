"""``vo2dr verify --backup ID|latest --source s3|gcs|azure|all``: stream one store's copy and
check it end to end against its manifest: size and SHA-256 of the ciphertext, authenticated
decryption (KMS, or ``--recovery-key`` offline), SHA-256 of the decompressed dump, and the
archive's table of contents against the manifest's tables. Nothing is written to disk.
The manifest must be signed by a trusted key (``VO2DR_SIGNING_PUBLIC_KEYS``), and ``latest``
is the newest backup complete and authentic in two of the enabled stores
(``--allow-single-copy`` takes a lone copy).

Prints a JSON result per copy on stdout. Exit codes: 0 every copy checked is intact; 1 a copy
failed (the message names the store, the key and what differed); 2 it could not be checked
(an unreachable store or key); 3 a setting is missing or invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vo2dr.strategy import KNOWN_DATA_CLASSES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("verify", help="check one store's copy of a backup end to end",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backup", default="latest", metavar="ID|latest",
                   help="backup id (see `vo2dr list`) or latest (default)")
    p.add_argument("--before", metavar="TIMESTAMP",
                   help="with latest: the newest backup taken at or before this UTC time")
    p.add_argument("--data-class", choices=KNOWN_DATA_CLASSES, default="full",
                   help="data class for latest/--before (default: full)")
    p.add_argument("--kind", default="database",
                   choices=("database", "code", "config", "assets", "logs"),
                   help="what was backed up: the database (default), the code, the config, "
                        "or a snapshot of assets or logs")
    p.add_argument("--source", choices=("s3", "gcs", "azure", "all", "assets", "logs"),
                   help="the store whose copy to check; all = every enabled store (required "
                        "but for --source assets|logs, which take --store)")
    p.add_argument("--recovery-key", metavar="PATH",
                   help="decrypt with the offline recovery private key (PEM) instead of KMS")
    p.add_argument("--recovery-key-password-file", metavar="FILE",
                   help="the recovery key's password (first line), when the key is stored "
                        "encrypted; without it, asked on a terminal")
    p.add_argument("--allow-single-copy", action="store_true",
                   help="latest may be a copy held by one store only (risky: printed why)")
    from vo2dr.snapshots.cli import add_snapshot_flags

    add_snapshot_flags(p)
    return p


def run(args: argparse.Namespace) -> int:
    from vo2dr.catalog import build_catalog, parse_point_in_time
    from vo2dr.cli import load_settings
    from vo2dr.exceptions import ConfigError
    from vo2dr.quorum import select_latest
    from vo2dr.recovery_key import read_recovery_key
    from vo2dr.snapshots.cli import run_verify, snapshot_kind
    from vo2dr.stores import Access, open_stores
    from vo2dr.trust import Trust
    from vo2dr.verify import verify_copy

    settings = load_settings(args, required=("environment",))
    kind = snapshot_kind(args)
    if kind:
        return run_verify(args, settings, kind)
    if args.source is None or args.source not in ("s3", "gcs", "azure", "all"):
        raise ConfigError("--source s3|gcs|azure|all is required")
    key = read_recovery_key(args.recovery_key, args.recovery_key_password_file)
    before = parse_point_in_time(args.before) if args.before else None
    stores = open_stores(settings, Access.READ,
                         names=None if args.source == "all" else [args.source])
    trust = Trust.from_settings(settings)
    names = list(stores.names)
    spec = None if args.backup == "latest" else args.backup
    if args.kind != "database":
        # An application source (vo2dr.sources): its own prefix; latest is the newest complete
        # backup across the stores asked.
        from vo2dr.sources.restore import latest_entry

        catalog = build_catalog(stores, settings.environment, source=args.kind)
        entry = (catalog.resolve(spec, data_class=args.data_class) if spec
                 else latest_entry(catalog, before=before))
    # "latest" is resolved once, by quorum across every enabled store, so every copy checked
    # is the same backup; a store that lacks it fails.
    elif spec is None:
        every = stores if args.source == "all" else open_stores(settings, Access.READ,
                                                                tolerant=True)
        catalog = build_catalog(every, settings.environment)
        catalog.errors.update(every.errors)  # a store that cannot be opened still counts as
        catalog.stores = every.names  # enabled: the quorum is of the enabled stores
        chosen = select_latest(catalog, every, trust, args.data_class, before=before,
                               allow_single_copy=args.allow_single_copy)
        for warning in chosen.warnings:
            print(f"vo2dr verify: warning: {warning}", file=sys.stderr)
        entry = chosen.entry
    else:
        catalog = build_catalog(stores, settings.environment)
        entry = catalog.resolve(spec, data_class=args.data_class, before=before)
    results: list[dict[str, Any]] = []
    failed = 0
    for name in names:
        if name in catalog.errors:
            results.append({"store": name, "ok": False,
                            "problems": [f"cannot list: {catalog.errors[name]}"]})
            failed += 1
            continue
        if not entry.complete_in(name):
            state = entry.copies[name].state if name in entry.copies else "missing"
            results.append({"store": name, "ok": False, "backup_id": entry.backup_id,
                            "problems": [f"no complete copy ({state})"]})
            failed += 1
            continue
        result = verify_copy(stores[name], entry, trust=trust, recovery_key_pem=key)
        results.append(result.to_json())
        if not result.ok:
            failed += 1
        print(f"vo2dr verify: {result.summary()}", file=sys.stderr)
    for r in results:
        if "body_key" not in r:
            print(f"vo2dr verify: {r['store']}: {entry.backup_id}: {'; '.join(r['problems'])}",
                  file=sys.stderr)
    print(json.dumps({"ok": not failed, "backup_id": entry.backup_id,
                      "data_class": entry.data_class, "copies": results}, indent=2))
    return 1 if failed else 0
