"""``vo2dr drill``: for each data class, restore its latest backup into a scratch database on
the server of ``VO2DR_DRILL_DATABASE_URL``, check the row counts against the manifest, run the
class's sanity queries, measure the restore time against the RTO, and drop the scratch database.
First drop the scratch databases that killed drills left behind (older than all the RTOs
together, nobody connected); one that cannot be dropped is reported, without failing the drill.

Prints the JSON report. Exit codes: 0 every class passed within its RTO; 1 a class failed or
missed its RTO; 2 the drill could not run; 3 a setting is missing or invalid.
"""

from __future__ import annotations

import argparse
import json
import sys

from vo2dr.strategy import KNOWN_DATA_CLASSES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("drill", help="restore every class's latest backup, check it, "
                              "time it against the RTO", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-class", action="append", choices=KNOWN_DATA_CLASSES,
                   help="drill only this class (repeatable; default: every class)")
    p.add_argument("--source", choices=("s3", "gcs", "azure"),
                   help="restore from this store (default: the first holding a complete copy)")
    p.add_argument("--recovery-key", metavar="PATH",
                   help="decrypt with the offline recovery private key instead of KMS")
    p.add_argument("--recovery-key-password-file", metavar="FILE",
                   help="the recovery key's password (first line), when the key is stored "
                        "encrypted; without it, asked on a terminal")
    p.add_argument("--allow-superuser", action="store_true",
                   help="restore even when connected as a superuser (refused by default: a "
                        "dump can carry code that runs during the restore)")
    return p


def run(args: argparse.Namespace) -> int:
    from vo2dr.cli import load_settings
    from vo2dr.drill import run_drill
    from vo2dr.progress import QuietReporter
    from vo2dr.recovery_key import read_recovery_key
    from vo2dr.secret_urls import resolve_secrets

    settings = load_settings(args, required=("environment", "drill_database_url"),
                             strategy=True)
    recovery_key = read_recovery_key(args.recovery_key, args.recovery_key_password_file)
    settings = resolve_secrets(settings, names=("drill_database_url",))
    report = run_drill(settings, data_classes=args.data_class, source=args.source,
                       reporter=QuietReporter(sys.stderr), recovery_key_pem=recovery_key,
                       allow_superuser=args.allow_superuser)
    print(json.dumps(report.to_json(), indent=2))
    for c in report.classes:
        verdict = "pass" if c.ok else "FAIL"
        took = f"{c.restore_seconds:.1f}s" if c.restore_seconds is not None else "-"
        print(f"vo2dr drill: {c.data_class}: {verdict} (backup {c.backup_id or '-'} from "
              f"{c.source or '-'}, restore {took} / RTO {c.rto_seconds}s, PostgreSQL "
              f"{c.source_server_version or '-'} into {c.scratch_server_version or '-'})"
              + (": " + "; ".join(c.errors) if c.errors else ""), file=sys.stderr)
    for name in report.stale_dropped:
        print(f"vo2dr drill: dropped {name}, left behind by an earlier drill", file=sys.stderr)
    for error in report.stale_errors:
        print(f"vo2dr drill: warning: {error}", file=sys.stderr)
    return 0 if report.ok else 1
