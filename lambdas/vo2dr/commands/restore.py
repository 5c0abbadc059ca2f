"""``vo2dr restore --backup ID|latest|--before TIMESTAMP --source s3|gcs|azure --target-url URL``

Restores into a database that does not exist yet (it is created) or is empty; a target holding
anything is refused and left unchanged. The copy is downloaded, verified and decrypted into a
local spool file first (``--spool-dir`` or ``VO2DR_SPOOL_DIR``, default the temp dir), so a
corrupt copy never reaches the database; pg_restore then runs from that file.

  --table T         restore only these tables (repeatable), with their sequences, indexes and
                    constraints: for a data-loss event, restore beside the live database and
                    copy the rows back. A critical/important backup (whole schema, its class's
                    data only) restores exactly its class's tables, with the types, domains and
                    functions they use; the other tables are not created
  --jobs N          parallel pg_restore (default: one job per core, fewer if the target has
                    fewer free connection slots; 1 restores in a single transaction)
  --recovery-key P  decrypt with the offline recovery private key when KMS is unreachable
                    (a password-protected key: --recovery-key-password-file F, or asked on a
                    terminal)
  --allow-superuser restore even when connected as a superuser (refused by default: a dump can
                    carry code that runs during the restore, with the restoring role's rights)
  --allow-single-copy  latest may be a backup authentic in one store only (by default it must
                    be complete and authentic, signed, in two of the enabled stores)
  --promote         --target-url names the database to REPLACE: restore beside it as
                    <name>_restore_<ts>, then rename the original to <name>_pre_restore_<ts>
                    (kept, never dropped) and the restored copy into its place. Sessions on the
                    original are terminated. Asks for confirmation unless --yes.

Application sources (``--kind code|config``), from one store, with ``--recovery-key`` too:

  --kind code --target-dir DIR      a new bare repository (DIR new or empty): every ref of the
                                    manifest is checked present, with its history
  --kind config --target-dir DIR    files/<path> and secrets/<name> in DIR (new or empty),
                                    every file mode 0600
  --kind config --diff-against DIR  which files and secret names differ from DIR (a checkout,
                                    or an earlier restore); no value is printed; exit 1 if any

Prints a JSON summary on stdout. Exit codes: 0 restored (and checked against the manifest's row
counts); 1 restored but the row counts differ (not promoted); 2 refused or failed, nothing
changed in any existing database; 3 a setting or flag is missing or invalid; 4 not enough
space for the spool file (nothing changed).
"""

from __future__ import annotations

import argparse
import json
import sys

from vo2dr.cli import positive_int
from vo2dr.strategy import KNOWN_DATA_CLASSES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("restore", help="restore a backup into a new or empty database",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backup", default="latest", metavar="ID|latest")
    p.add_argument("--before", metavar="TIMESTAMP",
                   help="the newest backup taken at or before this time (ISO 8601, UTC default)")
    p.add_argument("--data-class", choices=KNOWN_DATA_CLASSES, default="full",
                   help="data class for latest/--before (default: full)")
    p.add_argument("--source", choices=("s3", "gcs", "azure", "assets", "logs"),
                   help="the store to restore from (required; --source assets|logs names a "
                        "snapshot source, then --store names the store)")
    p.add_argument("--kind", default="database",
                   choices=("database", "code", "config", "assets", "logs"),
                   help="what to restore: the database (default), the code, the config, or a "
                        "snapshot of assets or logs")
    p.add_argument("--target-url", metavar="URL",
                   help="postgresql://user@host:port/<new or empty database> (the database)")
    p.add_argument("--target-dir", metavar="DIR",
                   help="code or config: a new or empty directory to restore into")
    p.add_argument("--diff-against", metavar="DIR",
                   help="config: list the files and secret names that differ from DIR")
    p.add_argument("--table", action="append", default=[], metavar="T",
                   help="restore only this table (repeatable): users or public.users")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="parallel pg_restore jobs (default: one per core, capped by the "
                        "target's free connection slots; 1: a single transaction); for a "
                        "snapshot, objects restored at once (default 8)")
    p.add_argument("--recovery-key", metavar="PATH",
                   help="the offline recovery private key (PEM): decrypt without KMS")
    p.add_argument("--recovery-key-password-file", metavar="FILE",
                   help="the recovery key's password (first line), when the key is stored "
                        "encrypted; without it, asked on a terminal")
    p.add_argument("--allow-single-copy", action="store_true",
                   help="latest may be a copy held by one store only (risky: printed why)")
    p.add_argument("--promote", action="store_true",
                   help="swap the restored copy in place of --target-url's database (kept)")
    p.add_argument("--yes", action="store_true", help="do not ask before --promote")
    p.add_argument("--keep-owners", action="store_true",
                   help="restore owners and grants (the roles must exist on the target server)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    p.add_argument("--allow-superuser", action="store_true",
                   help="restore even when connected as a superuser (refused by default: a "
                        "dump can carry code that runs during the restore)")
    from vo2dr.snapshots.cli import add_snapshot_flags

    add_snapshot_flags(p, restore=True)
    return p


def _confirm(assume_yes: bool):
    def ask(question: str) -> bool:
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            return False
        print(question, file=sys.stderr)
        answer = input("Type 'promote' to go ahead: ")
        return answer.strip() == "promote"
    return ask


def run(args: argparse.Namespace) -> int:
    from vo2dr.catalog import parse_point_in_time
    from vo2dr.cli import load_settings
    from vo2dr.dbadmin import Target
    from vo2dr.exceptions import ConfigError
    from vo2dr.progress import QuietReporter, default_reporter
    from vo2dr.recovery_key import read_recovery_key
    from vo2dr.restore import restore
    from vo2dr.snapshots.cli import run_restore, snapshot_kind

    settings = load_settings(args, required=("environment",))
    kind = snapshot_kind(args)
    if kind:
        return run_restore(args, settings, kind)
    if args.source is None:
        raise ConfigError("--source s3|gcs|azure is required: the store to restore from")
    if args.kind != "database":
        return _run_source(args, settings)
    if not args.target_url:
        raise ConfigError("--target-url is required to restore the database")
    if args.target_dir or args.diff_against:
        raise ConfigError("--target-dir and --diff-against are for --kind code or config")
    Target.parse(args.target_url)  # a malformed URL is refused before any store is listed
    before = parse_point_in_time(args.before) if args.before else None
    recovery_key = read_recovery_key(args.recovery_key, args.recovery_key_password_file)
    reporter = QuietReporter(sys.stderr) if args.no_progress else default_reporter()
    backup = None if args.backup == "latest" else args.backup
    result = restore(settings, source=args.source, target_url=args.target_url, backup=backup,
                     before=before, data_class=args.data_class, tables=args.table,
                     jobs=args.jobs, recovery_key_pem=recovery_key,
                     promote_into_place=args.promote, confirm=_confirm(args.yes),
                     keep_owners=args.keep_owners, reporter=reporter,
                     allow_superuser=args.allow_superuser,
                     allow_single_copy=args.allow_single_copy)
    print(json.dumps(result.to_json(), indent=2))
    if not result.ok:
        print("vo2dr restore: error: " + "; ".join(result.problems), file=sys.stderr)
        return 1
    return 0


def _run_source(args: argparse.Namespace, settings) -> int:
    from vo2dr.catalog import parse_point_in_time
    from vo2dr.exceptions import ConfigError
    from vo2dr.recovery_key import read_recovery_key
    from vo2dr.sources.restore import restore_source
    from vo2dr.stores import Access, open_store

    if args.target_url or args.table or args.promote:
        raise ConfigError(f"--target-url, --table and --promote are for the database, not "
                          f"--kind {args.kind}")
    before = parse_point_in_time(args.before) if args.before else None
    result = restore_source(
        settings, args.kind, store=open_store(args.source, settings, Access.READ),
        target=args.target_dir, diff_against=args.diff_against, backup=args.backup,
        before=before, recovery_key_pem=read_recovery_key(args.recovery_key))
    print(json.dumps(result, indent=2))
    warning = (result.get("restored") or {}).get("warning")
    if warning:  # a config backup the standby took without the app's secrets
        print(f"vo2dr restore: WARNING: {warning}", file=sys.stderr)
    if "diff" in result and not result["diff"]["same"]:
        print(f"vo2dr restore: {args.diff_against} differs from backup {result['backup_id']}",
              file=sys.stderr)
        return 1
    return 0
