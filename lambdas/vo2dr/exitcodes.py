"""The ``vo2dr`` exit codes, one table for every subcommand (the README and ``vo2dr --help``
show it). A scheduler or a person can tell from the code alone whether the backups are in
trouble (1), the run failed (2), the tool is misconfigured (3), or the tool has a bug (70)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # The command ran and found a problem: a status breach, a copy that does not verify, a
    # destination that failed, restored row counts that differ, a failed drill, a store that
    # could not be listed.
    FINDING = 1
    # Refused or could not run: a store, key or database failed or said no. Nothing was
    # changed in any existing database.
    FAILED = 2
    # A setting or flag is missing or invalid (the message names it and the fix). Nothing
    # was changed.
    CONFIG = 3
    # No room for the restore's spool file on its volume (the fix is disk, not a retry).
    # Nothing was changed.
    NO_SPACE = 4
    # An unexpected error: a bug in vo2dr. One line on stderr; --debug shows the traceback.
    INTERNAL = 70
    INTERRUPTED = 130


TABLE = """exit codes (every command):
  0   done: everything checked is fine
  1   the command ran and found a problem (a status breach, a copy that does not verify,
      a failed destination, row counts that differ, a failed drill, an unlistable store)
  2   refused or could not run (a store, key or database failed); nothing existing changed
  3   configuration error: a setting or flag is missing or invalid (the message names it)
  4   restore: not enough space for the spool file (VO2DR_SPOOL_DIR / --spool-dir)
  70  internal error (a bug in vo2dr; rerun with --debug for the traceback)
  130 interrupted"""
