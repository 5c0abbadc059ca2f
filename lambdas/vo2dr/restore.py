"""Restore a backup into a new or empty database, never over existing data.

The order is what makes it safe:

1. resolve the backup (an id, ``latest`` or ``--before``) in the source store only, so a restore
   from GCS works while S3 is down;
2. look at the target: a database that exists and holds anything is refused before a byte is
   downloaded, and nothing in it changes;
3. download, verify and spool: the copy is streamed once through every check of
   :mod:`vo2dr.verify` (ciphertext and plaintext SHA-256, authenticated decryption, the
   archive's TOC against the manifest) into a private local spool file. A corrupt, truncated or
   foreign copy stops here, and the target is not even created;
4. create the target database if it does not exist (template0), and ``pg_restore`` the spool
   file into it: in one transaction (``--single-transaction``), or with ``--jobs N`` in
   parallel; ``--table`` restores only the named tables with what belongs to them (their
   sequences, defaults, indexes and constraints; foreign keys only between selected tables);
   a data-class backup (``critical``, ``important``) restores its class's tables the same way
   (see below);
5. count the rows of every restored table against the manifest;
6. with ``--promote``: swap the restored database in under the target's name. The original is
   renamed to ``<name>_pre_restore_<UTC timestamp>``, never dropped.

If pg_restore fails, the database this run created (holding only this run's partial restore)
is dropped again, so a retry starts clean; a database that existed before is never dropped.

**Data-class backups.** Their archive holds the whole schema but table data only for the
class's tables (see :mod:`vo2dr.dump`). Restoring one creates exactly the class's tables (the
manifest's ``tables``), or the ``--table`` subset of them, with everything they depend on
(schemas, extensions, enum and composite types, domains, functions called by defaults, checks
or triggers) and everything that belongs to them (sequences at their dumped values, indexes,
constraints, triggers, foreign keys between restored tables). The definitions of the
database's other tables are in the archive but are **not** created, not even empty: a restored
class is only ever the class's data, so an empty look-alike of a table that was not backed up
can never be taken for restored data, nor promoted as such. Foreign keys from a class table to
a table outside the class are left out (and named in the output); views are not restored.
The target is a new or empty database as always, so no existing data changes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from vo2dr import pgcompat, pgtools
from vo2dr.catalog import Catalog, CatalogEntry, build_catalog
from vo2dr.dbadmin import (
    MAX_IDENTIFIER,
    RESTORE_APP,
    Target,
    check_target,
    count_rows,
    create_database,
    create_schemas,
    database_contents,
    database_exists,
    drop_created_database,
    drop_empty_schemas,
)
from vo2dr.exceptions import ConfigError, RestoreError, Vo2drError
from vo2dr.progress import QuietReporter, Reporter, RichReporter, default_reporter
from vo2dr.promote import preserved_name, promote, staging_name
from vo2dr.recovery_key import read_recovery_key
from vo2dr.settings import Settings
from vo2dr.stores.base import BackupStore
from vo2dr.toc import _selection, missing_schemas, resolve_tables, selective_list
from vo2dr.verify import VerifyResult, load_manifest, spool_file, verify_copy

# Moved out in the restore split (issue 12): import them from vo2dr.progress, vo2dr.dbadmin,
# vo2dr.toc and vo2dr.promote. Re-exported here for one landing, for branches in flight.
__all__ = ["MAX_IDENTIFIER", "RestoreRefused", "RestoreResult", "RichReporter", "Target",
           "database_contents", "database_exists", "default_reporter", "find_backup",
           "open_source", "read_recovery_key", "restore", "selective_list", "stores_for"]

SPOOL_MARGIN = 1.05  # free space wanted on the spool volume, relative to the plaintext size


# -- the restore -----------------------------------------------------------------------------------

@dataclass
class RestoreResult:
    ok: bool
    backup_id: str
    data_class: str
    timestamp: str
    source: str
    database: str
    created_database: bool
    tables: list[str]
    jobs: int
    key_used: str
    rows: dict[str, int | None]
    expected_rows: dict[str, int]
    seconds: dict[str, float]
    promoted: dict[str, Any] | None = None
    verify: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    # The backup's source server and the target server (``server_version``), see pgcompat.
    source_server_version: str = ""
    target_server_version: str = ""

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def open_source(settings: Settings, source: str) -> BackupStore:
    from vo2dr.stores import Access, open_store

    if source not in ("s3", "gcs", "azure"):
        raise ConfigError(f"--source {source!r}: use s3, gcs or azure")
    return open_store(source, settings, Access.READ)


def find_backup(store: BackupStore, environment: str, *, backup: str | None,
                before: datetime | None, data_class: str) -> tuple[CatalogEntry, Catalog]:
    catalog = build_catalog({store.name: store}, environment)
    if store.name in catalog.errors:
        raise RestoreError(f"cannot list {store.name}: {catalog.errors[store.name]}")
    return catalog.resolve(backup, data_class=data_class, store=store.name,
                           before=before), catalog


def restore(settings: Settings, *, source: str, target_url: str, backup: str | None = None,
            before: datetime | None = None, data_class: str = "full",
            tables: Sequence[str] = (), jobs: int = 1,
            recovery_key_pem: bytes | None = None, promote_into_place: bool = False,
            confirm: Callable[[str], bool] | None = None, keep_owners: bool = False,
            spool_dir: str | None = None, reporter: Reporter | None = None,
            store: BackupStore | None = None, now: datetime | None = None) -> RestoreResult:
    """Restore one backup from ``source`` into ``target_url``; see the module docstring.

    With ``promote_into_place``, ``target_url`` names the database to replace: the backup is
    restored into ``<name>_restore_<ts>`` beside it, and after the checks pass (and
    ``confirm(question)`` says yes) swapped in. Raises :class:`RestoreError` (or another
    :class:`Vo2drError`) with the reason; existing databases are never changed on failure.
    """
    if jobs < 1:
        raise ConfigError("--jobs must be 1 or more")
    settings.require("environment")
    reporter = reporter or QuietReporter()
    when = (now or datetime.now(UTC)).astimezone(UTC)
    t0 = time.monotonic()
    final = Target.parse(target_url)
    target = final.with_dbname(staging_name(final.dbname, when)) if promote_into_place \
        else final

    store = store or open_source(settings, source)
    entry, _ = find_backup(store, settings.environment, backup=backup, before=before,
                           data_class=data_class)
    reporter.stage(f"backup {entry.backup_id} ({entry.data_class}, "
                   f"{entry.timestamp:%Y-%m-%d %H:%M:%S} UTC, {entry.ref.tier}) from {store.name}")

    # 2. the target, before any download
    if check_target(target):
        reporter.stage(f"target database {target.dbname!r} exists and is empty")
    manifest = load_manifest(store, entry)
    # Before the promote question: no one confirms a restore the server would refuse.
    target_version = pgcompat.refuse_older_target(manifest.server_version, target)
    if promote_into_place:
        question = (f"Replace database {final.dbname!r} with backup {entry.backup_id}? The "
                    f"current one is kept as {preserved_name(final.dbname, when)!r}; sessions "
                    f"on it will be terminated.")
        if confirm is None or not confirm(question):
            raise RestoreError("promote not confirmed: pass --yes, or answer the question on a "
                               "terminal; nothing was changed")

    if tables:
        selected = resolve_tables(manifest, tables)
    elif manifest.data_class != "full":
        # A class backup defines every table but holds data for the class only: restore the
        # class's tables (with what they depend on), not empty copies of the others.
        selected = sorted(manifest.table_rows())
    else:
        selected = []
    spool = spool_file(spool_dir or settings.spool_dir or None)
    try:
        _check_space(spool.parent, manifest.plaintext.bytes)
        # 3. download + verify into the spool
        reporter.stage(f"downloading and verifying {entry.ref.body_key} "
                       f"({manifest.ciphertext.bytes} bytes) into a local spool file")
        t_dl = time.monotonic()
        advance = reporter.download(manifest.ciphertext.bytes)
        try:
            with open(spool, "wb") as fh:
                os.chmod(spool, 0o600)
                result = verify_copy(store, entry, recovery_key_pem=recovery_key_pem, spool=fh,
                                     progress=advance)
        finally:
            reporter.download_done()
        if not result.ok:
            raise RestoreRefused(result)
        seconds = {"download_verify": time.monotonic() - t_dl}
        reporter.stage(f"verified: ciphertext and plaintext SHA-256, authenticated decryption "
                       f"({result.key_used}), {len(result.tables)} tables in the archive")

        # 4. create + pg_restore
        created = False
        if not check_target(target):
            create_database(target)
            created = True
            reporter.stage(f"created database {target.dbname!r}")
        t_pg = time.monotonic()
        schemas: list[str] = []
        try:
            schemas = missing_schemas(spool)
            if schemas:
                reporter.stage(f"creating schema(s) {', '.join(schemas)}: the archive (a dump of "
                               "selected tables) uses them without defining them")
                create_schemas(target, schemas)
            _pg_restore(target, spool, selected, jobs, keep_owners, reporter,
                        scratch_dir=spool_dir or settings.spool_dir or None)
        except BaseException:
            if created:
                with contextlib.suppress(psycopg.Error, Vo2drError):
                    drop_created_database(target)
                reporter.stage(f"dropped {target.dbname!r}, which this run had created")
            elif schemas:
                with contextlib.suppress(psycopg.Error, Vo2drError):
                    drop_empty_schemas(target, schemas)
            raise
        seconds["pg_restore"] = time.monotonic() - t_pg
    finally:
        shutil.rmtree(spool.parent, ignore_errors=True)

    # 5. row counts
    expected = manifest.table_rows()
    restored_tables = selected or sorted(expected)
    rows = count_rows(target, restored_tables)
    problems = [f"{t}: {rows[t]} rows restored, the manifest says {expected[t]}"
                for t in restored_tables if rows[t] != expected[t]]
    res = RestoreResult(
        ok=not problems, backup_id=entry.backup_id, data_class=entry.data_class,
        timestamp=entry.timestamp.isoformat().replace("+00:00", "Z"), source=store.name,
        database=target.dbname, created_database=created, tables=restored_tables, jobs=jobs,
        key_used=result.key_used, rows=rows, expected_rows={t: expected[t]
                                                            for t in restored_tables},
        seconds=seconds, verify=result.to_json(), problems=problems,
        source_server_version=manifest.server_version, target_server_version=target_version)
    if problems:
        reporter.stage("row counts differ from the manifest: not promoting; the restored "
                       f"database {target.dbname!r} is left for inspection")
    elif promote_into_place:
        res.promoted = promote(final, target.dbname, final.dbname, when, reporter)
        res.database = final.dbname
    res.seconds["total"] = time.monotonic() - t0
    res.seconds = {k: round(v, 3) for k, v in res.seconds.items()}
    return res


class RestoreRefused(RestoreError):
    """The copy failed verification: nothing was restored and no database was touched."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(f"refusing to restore: {result.summary()}. Nothing was written to any "
                         "database; restore from another store (--source)")
        self.result = result


def _check_space(directory: Path, plaintext_bytes: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < plaintext_bytes * SPOOL_MARGIN:
        raise RestoreError(
            f"not enough space for the spool file in {directory}: {free} bytes free, the dump is "
            f"{plaintext_bytes} bytes; point VO2DR_SPOOL_DIR (or --spool-dir) at a larger volume")


def _pg_restore(target: Target, spool: Path, selected: Sequence[str], jobs: int,
                keep_owners: bool, reporter: Reporter, scratch_dir: str | None = None) -> None:
    args = [pgcompat.pg_restore_into(target, scratch_dir), f"--dbname={target.conninfo}",
            "--no-password", "--exit-on-error"]
    if not keep_owners:
        # The restoring role owns everything: the original roles may not exist on a new server.
        args += ["--no-owner", "--no-privileges"]
    args += [f"--jobs={jobs}"] if jobs > 1 else ["--single-transaction"]
    with tempfile.TemporaryDirectory(prefix="vo2dr-list-") as tmp:
        if selected:
            listfile = Path(tmp) / "restore.list"
            text, left_out = _selection(spool, selected)
            listfile.write_text(text)
            args.append(f"--use-list={listfile}")
            if left_out:
                reporter.stage("leaving out foreign key(s) to tables that are not restored: "
                               + ", ".join(left_out))
        args.append(str(spool))
        what = f"{len(selected)} table(s)" if selected else "everything"
        mode = f"{jobs} parallel jobs" if jobs > 1 else "one transaction"
        reporter.stage(f"pg_restore {what} into {target.dbname!r} ({mode})")
        proc = subprocess.run(args, capture_output=True, text=True, check=False,
                              env=pgtools.tool_env(target.password, RESTORE_APP))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines
        raise RestoreError(f"pg_restore into {target.dbname!r} failed: "
                           f"{(errors[-1] if errors else 'exit ' + str(proc.returncode))}")


def stores_for(settings: Settings, names: Iterable[str]) -> Mapping[str, BackupStore]:
    """Deprecated (one landing): use ``vo2dr.stores.open_stores(settings, Access.READ,
    names=...)``."""
    from vo2dr.stores import Access, open_stores

    return open_stores(settings, Access.READ, names=names)
