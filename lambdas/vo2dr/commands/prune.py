"""``vo2dr prune --kind assets|logs [--dry-run] [--store s3|gcs|azure]``: delete the snapshot
content objects that no snapshot present in the store references any more, two-phase: a run
marks the unreferenced content whose lock has ended (``VO2DR_LOCK_DAYS``) in a plan under
``<root>prune/``; a later run, at least ``VO2DR_PRUNE_GRACE_HOURS`` after (default 12), deletes
those that are still unreferenced. Runs with the pruner's identity (the only one allowed to
delete, and only content); see :mod:`vo2dr.snapshots.prune`.

Prints a JSON report per store. Exit codes: 0 done; 1 a store was left alone (an index that
cannot be read and verified: its references are unknown) or a delete failed; 2 it could not
run; 3 a setting is missing or invalid.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("prune", help="delete snapshot content no snapshot references "
                              "(mark, then sweep after a grace)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", "--source", dest="kind", required=True, choices=("assets", "logs"),
                   help="the snapshot source")
    p.add_argument("--store", choices=("s3", "gcs", "azure"),
                   help="prune this store only (default: every enabled store)")
    p.add_argument("--dry-run", action="store_true",
                   help="report what would be marked and deleted; write and delete nothing")
    return p


def run(args: argparse.Namespace) -> int:
    from vo2dr.cli import load_settings
    from vo2dr.snapshots.cli import run_prune

    return run_prune(args, load_settings(args, required=("environment",)))
