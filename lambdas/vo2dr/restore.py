"""Restore a backup into a new or empty database, never over existing data.

The order is what makes it safe:

1. resolve the backup: an id in the source store only, so a restore from GCS works while S3 is
   down; ``latest`` (or ``--before``) is the newest backup authentic in a quorum of the enabled
   stores (:mod:`vo2dr.quorum`). The quorum reads the other stores on a thread of its own while
   steps 2 and 3 run for the source store's own newest backup; the restore goes on only if the
   quorum chose that backup, with the same signed manifest (else the quorum's choice goes
   through steps 2 and 3 in turn, or its error ends the restore). Nothing reaches PostgreSQL
   before that;
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
5. count the rows of every restored table against the manifest (on a few connections at once,
   largest tables first);
6. with ``--promote``: swap the restored database in under the target's name. The original is
   renamed to ``<name>_pre_restore_<UTC timestamp>``, never dropped.

If pg_restore fails
(a killed process, no connection slot left, a bad object), the database this run created is
dropped again, so a retry starts clean and an existing target is exactly as it was.

Refused as targets: ``template0``, ``template1``, ``postgres`` and any template database
(``datistemplate``): a restore into ``template1`` would give every database created afterwards
the production data. "Empty" means no user object of any kind: relations, schemas, functions,
types, extensions other than plpgsql, large objects, publications, text-search configurations,
collations, operators, casts, foreign servers, default privileges. Names over 63 bytes are
refused (PostgreSQL would silently truncate them). ``--jobs`` is capped by the connection slots
the target server has free (see :func:`capped_jobs`); without it, one job per core, capped the
same way (:func:`default_jobs`; one job restores in a single transaction).

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
import errno
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from vo2dr import pgcompat, pgtools
from vo2dr.archive import Toc, read_toc, use_list
from vo2dr.catalog import BackupNotFound, Catalog, CatalogEntry, build_catalog
from vo2dr.crypto import warm_up
from vo2dr.dbadmin import (
    MAX_IDENTIFIER,
    RESTORE_APP,
    Target,
    capped_jobs,
    check_target,
    count_connections,
    count_rows,
    create_database,
    create_schemas,
    database_contents,
    database_exists,
    default_jobs,
    drop_created_database,
    refuse_reserved_target,
    refuse_superuser,
)
from vo2dr.exceptions import ConfigError, RestoreError, SpaceError, Vo2drError
from vo2dr.manifest import Manifest
from vo2dr.progress import QuietReporter, Reporter, RichReporter, default_reporter
from vo2dr.promote import preserved_name, promote, replace_empty, staging_name
from vo2dr.quorum import Selection
from vo2dr.recovery_key import read_recovery_key
from vo2dr.settings import Settings
from vo2dr.stores.base import BackupStore
from vo2dr.toc import _selection, missing_schemas, resolve_tables, selective_list, table_pairs
from vo2dr.trust import Trust
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


def source_catalog(store: BackupStore, environment: str, *,
                   data_class: str | None = None) -> Catalog:
    """``store``'s own catalog (of ``data_class`` when given); :class:`RestoreError` when it
    cannot be listed (the restore reads from it)."""
    catalog = build_catalog({store.name: store}, environment, data_class=data_class)
    if store.name in catalog.errors:
        raise RestoreError(f"cannot list {store.name}: {catalog.errors[store.name]}")
    return catalog


def find_backup(store: BackupStore, environment: str, *, backup: str | None,
                before: datetime | None, data_class: str) -> CatalogEntry:
    """An id looked up in the source store alone (its signature is checked when read)."""
    return source_catalog(store, environment).resolve(backup, data_class=data_class,
                                                      store=store.name, before=before)


def select_by_quorum(settings: Settings, source: BackupStore, *, data_class: str,
                     before: datetime | None, trust: Trust,
                     allow_single_copy: bool) -> Selection:
    """The :class:`~vo2dr.quorum.Selection` of latest across every enabled store (the source
    included); reports nothing (it may run on a thread of its own)."""
    from vo2dr.quorum import select_latest
    from vo2dr.stores import Access, open_stores

    names = [n for n in settings.enabled_stores if n != source.name]
    others = open_stores(settings, Access.READ, names=names, tolerant=True) if names else None
    stores = {source.name: source, **(others or {})}
    catalog = build_catalog(stores, settings.environment, data_class=data_class)
    if others is not None:  # a store that cannot be opened still counts as enabled
        catalog.errors.update(others.errors)
    catalog.stores = (source.name, *names)
    return select_latest(catalog, stores, trust, data_class, before=before,
                         need_in=source.name, allow_single_copy=allow_single_copy)


def newest_in(store: BackupStore, environment: str, *, data_class: str,
              before: datetime | None) -> CatalogEntry | None:
    """The newest complete backup of ``data_class`` in ``store``'s own listing (``None`` when
    there is none): only a guess at what the quorum will choose, to start downloading it while
    the quorum reads the other stores. Raises :class:`RestoreError` when the store cannot be
    listed (the quorum needs it too: the restore reads from it)."""
    catalog = source_catalog(store, environment, data_class=data_class)
    try:
        return catalog.latest(data_class, store=store.name, before=before)
    except BackupNotFound:
        return None


def in_background(fn: Callable[[], Any], name: str) -> Future[Any]:
    """``fn()`` started on a thread of its own; the future holds what it returned or raised.
    A daemon thread: a restore that fails first (a refused target) does not wait for it."""
    future: Future[Any] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - raised by whoever takes the result
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def restore(settings: Settings, *, source: str, target_url: str, backup: str | None = None,
            before: datetime | None = None, data_class: str = "full",
            tables: Sequence[str] = (), jobs: int | None = 1,
            recovery_key_pem: bytes | None = None, promote_into_place: bool = False,
            confirm: Callable[[str], bool] | None = None, keep_owners: bool = False,
            spool_dir: str | None = None, reporter: Reporter | None = None,
            store: BackupStore | None = None, now: datetime | None = None,
            allow_superuser: bool = False,
            allow_single_copy: bool = False) -> RestoreResult:
    """Restore one backup from ``source`` into ``target_url``; see the module docstring.

    With ``promote_into_place``, ``target_url`` names the database to replace: the backup is
    restored into ``<name>_restore_<ts>`` beside it, and after the checks pass (and
    ``confirm(question)`` says yes) swapped in. Raises :class:`RestoreError` (or another
    :class:`Vo2drError`) with the reason; existing databases are never changed on failure.
    Connecting as a superuser is refused unless ``allow_superuser`` (see :func:`refuse_superuser`).
    """
    if jobs is not None and jobs < 1:
        raise ConfigError("--jobs must be 1 or more")
    settings.require("environment")
    reporter = reporter or QuietReporter()
    when = (now or datetime.now(UTC)).astimezone(UTC)
    t0 = time.monotonic()
    final = Target.parse(target_url)
    # The decryption's SDK is imported meanwhile (see crypto.warm_up); a failure there shows
    # again where the decryption needs it.
    in_background(warm_up, "vo2dr-warm-up")
    refuse_reserved_target(final)
    refuse_superuser(final, allow_superuser, reporter)

    store = store or open_source(settings, source)
    trust = Trust.from_settings(settings)
    # latest is the quorum's choice across the enabled stores. Reading the other stores
    # (importing their SDKs, listing them, checking each copy's signed manifest) costs about a
    # third of the download of a 1 GB backup, so it runs on a thread of its own while this one
    # checks the target and downloads, verified as always, the newest backup of the source
    # store itself: the backup the quorum nearly always chooses. When the quorum chooses
    # another, that one is downloaded next; when it fails, the restore fails with its error.
    # Either way no byte reaches PostgreSQL before the quorum's choice is verified.
    quorum: Future[Selection] | None = None
    selection: Selection | None = None
    if not backup or backup == "latest":
        quorum = in_background(lambda: select_by_quorum(
            settings, store, data_class=data_class, before=before, trust=trust,
            allow_single_copy=allow_single_copy), "vo2dr-quorum")
        # --promote asks a question naming the backup: the quorum's, never a guess.
        guess = None if promote_into_place else newest_in(
            store, settings.environment, data_class=data_class, before=before)
        if guess is None:
            selection = _settle(quorum, reporter)
            quorum = None
            entry = selection.entry
        else:
            entry = guess
    else:
        entry = find_backup(store, settings.environment, backup=backup, before=before,
                            data_class=data_class)

    fetched: _Fetched | None = None
    try:
        while True:
            reporter.stage(f"backup {entry.backup_id} ({entry.data_class}, "
                           f"{entry.timestamp:%Y-%m-%d %H:%M:%S} UTC, {entry.ref.tier}) from "
                           f"{store.name}" + ("" if quorum is None else
                                             " (its newest; the other stores are read "
                                             "meanwhile to confirm it)"))
            failure: Vo2drError | None = None
            try:
                fetched = _fetch(store, entry, final=final, when=when, trust=trust,
                                 promote_into_place=promote_into_place, confirm=confirm,
                                 tables=tables, recovery_key_pem=recovery_key_pem,
                                 spool_dir=spool_dir or settings.spool_dir or None,
                                 reporter=reporter, t0=t0)
            except Vo2drError as exc:
                if quorum is None:
                    raise
                failure = exc  # about a guess: the quorum's own error, if any, comes first
            if quorum is not None:
                t_wait = time.monotonic()
                selection = _settle(quorum, reporter)
                quorum = None
                if fetched is not None:
                    fetched.seconds["quorum_wait"] = time.monotonic() - t_wait
                if selection.entry.backup_id != entry.backup_id:
                    reporter.stage(f"the stores' quorum chose backup {selection.entry.backup_id}"
                                   f", not {entry.backup_id}: restoring that one instead")
                    if fetched is not None:
                        shutil.rmtree(fetched.spool.parent, ignore_errors=True)
                        fetched = None
                    entry = selection.entry
                    continue
                if failure is not None:
                    raise failure
            break
        assert fetched is not None  # the loop leaves with a verified copy or raises
        if selection is not None:
            same_as_quorum(selection, fetched.result, store.name)
        result, manifest, target = fetched.result, fetched.manifest, fetched.target
        selected, seconds = fetched.selected, fetched.seconds
        reporter.stage(f"verified: ciphertext and plaintext SHA-256, authenticated decryption "
                       f"({result.key_used}), {len(result.tables)} tables in the archive")
        toc = read_toc(fetched.spool)
        # The exact (schema, table) of every table restored and counted, from the archive.
        pairs = table_pairs(toc, selected or sorted(manifest.table_rows()))

        # 4. create + pg_restore, always into a database this run creates
        # None: from the cores and the target's free connection slots (default_jobs).
        jobs = default_jobs(target, reporter) if jobs is None else \
            capped_jobs(target, jobs, reporter)
        check_target(target)
        create_database(target)
        created = True
        reporter.stage(f"created database {target.dbname!r}")
        t_pg = time.monotonic()
        try:
            schemas = missing_schemas(toc)
            if schemas:
                reporter.stage(f"creating schema(s) {', '.join(schemas)}: the archive (a dump of "
                               "selected tables) uses them without defining them")
                create_schemas(target, schemas)
            _pg_restore(target, fetched.spool, toc, [pairs[t] for t in selected], jobs,
                        keep_owners, reporter, scratch_dir=spool_dir or settings.spool_dir or None)
        except BaseException:
            with contextlib.suppress(psycopg.Error, Vo2drError):
                drop_created_database(target)
            reporter.stage(f"dropped {target.dbname!r}, which this run had created"
                           + (f"; {final.dbname!r} is unchanged" if target is not final else ""))
            raise
        seconds["pg_restore"] = time.monotonic() - t_pg
    finally:
        if fetched is not None:
            shutil.rmtree(fetched.spool.parent, ignore_errors=True)

    # 5. row counts
    expected = manifest.table_rows()
    restored_tables = selected or sorted(expected)
    t_rows = time.monotonic()
    rows = count_rows(target, {t: pairs[t] for t in restored_tables}, sizes=expected,
                      connections=count_connections(target, len(restored_tables)))
    seconds["row_counts"] = time.monotonic() - t_rows
    problems = [f"{t}: {rows[t]} rows restored, the manifest says {expected[t]}"
                for t in restored_tables if rows[t] != expected[t]]
    res = RestoreResult(
        ok=not problems, backup_id=entry.backup_id, data_class=entry.data_class,
        timestamp=entry.timestamp.isoformat().replace("+00:00", "Z"), source=store.name,
        database=target.dbname, created_database=created and not fetched.into_existing,
        tables=restored_tables, jobs=jobs,
        key_used=result.key_used, rows=rows, expected_rows={t: expected[t]
                                                            for t in restored_tables},
        seconds=seconds, verify=result.to_json(), problems=problems,
        source_server_version=manifest.server_version,
        target_server_version=fetched.target_version)
    if problems:
        reporter.stage("row counts differ from the manifest: not promoting; the restored "
                       f"database {target.dbname!r} is left for inspection")
    elif promote_into_place:
        res.promoted = promote(final, target.dbname, final.dbname, when, reporter)
        res.database = final.dbname
    elif fetched.into_existing:
        res.promoted = replace_empty(final, target.dbname, when, reporter)
        res.database = final.dbname
    res.seconds["total"] = time.monotonic() - t0
    res.seconds = {k: round(v, 3) for k, v in res.seconds.items()}
    return res


def _settle(quorum: Future[Selection], reporter: Reporter) -> Selection:
    """The quorum's selection (waiting for it), its warnings reported; raises its error."""
    chosen = quorum.result()
    for warning in chosen.warnings:
        reporter.stage(f"warning: {warning}")
    return chosen


def same_as_quorum(selection: Selection, result: VerifyResult, store: str) -> None:
    """The copy verified is the one the quorum agreed on: the same signed manifest, byte for
    byte (the source's manifest is read more than once; a change in between is refused)."""
    agreed = selection.agreement.manifest
    if agreed is None or result.manifest is None or \
            result.manifest.signed_payload() != agreed.signed_payload():
        raise RestoreError(f"{store}: the manifest of backup {selection.entry.backup_id} changed "
                           "while it was restored (it differs from the one the stores agreed "
                           "on): refusing to restore; nothing was written to any database")


@dataclass
class _Fetched:
    """What the steps before pg_restore leave: the checked target and the verified spool."""

    target: Target
    into_existing: bool
    manifest: Manifest
    target_version: str
    selected: list[str]
    spool: Path
    result: VerifyResult
    seconds: dict[str, float]


def _fetch(store: BackupStore, entry: CatalogEntry, *, final: Target, when: datetime,
           trust: Trust, promote_into_place: bool, confirm: Callable[[str], bool] | None,
           tables: Sequence[str], recovery_key_pem: bytes | None, spool_dir: str | None,
           reporter: Reporter, t0: float) -> _Fetched:
    """Steps 2 and 3: check the target, then download and verify ``entry`` into a new spool
    file (removed again if anything fails). Raises :class:`RestoreRefused` for a copy that
    fails verification."""
    # 2. the target, before any download. An existing (empty) target is never restored into
    # directly: the restore goes into a fresh database beside it, swapped in only once it
    # succeeded, so a failure anywhere leaves the target exactly as it was.
    into_existing = False
    if not promote_into_place and check_target(final):
        into_existing = True
        reporter.stage(f"target database {final.dbname!r} exists and is empty: restoring beside "
                       "it, then swapping the restored copy in")
    target = (final.with_dbname(staging_name(final.dbname, when))
              if promote_into_place or into_existing else final)
    if target is not final and database_exists(target, target.dbname):
        raise RestoreError(f"database {target.dbname!r} already exists (another restore started "
                           "in the same second?): retry in a second; nothing was changed")
    manifest = load_manifest(store, entry, trust)
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
    spool = spool_file(spool_dir)
    try:
        reserve_spool(spool, manifest.plaintext.bytes)
        # 3. download + verify into the spool
        reporter.stage(f"downloading and verifying {entry.ref.body_key} "
                       f"({manifest.ciphertext.bytes} bytes) into a local spool file")
        t_dl = time.monotonic()
        advance = reporter.download(manifest.ciphertext.bytes)
        try:
            # r+b: write into the reserved blocks (wb would truncate, giving them back)
            with open(spool, "r+b") as fh:
                result = verify_copy(store, entry, trust=trust,
                                     recovery_key_pem=recovery_key_pem, spool=fh,
                                     progress=advance)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SpaceError(f"not enough space for the spool file in {spool.parent.parent}: "
                                 f"the volume filled up during the download; {SPACE_FIX}"
                                 ) from exc
            raise
        finally:
            reporter.download_done()
        if not result.ok:
            raise RestoreRefused(result)
    except BaseException:
        shutil.rmtree(spool.parent, ignore_errors=True)
        raise
    # Where a restore's time goes besides pg_restore (the bench reports each): finding the
    # backup and its manifest, checking the target and reserving the spool; the verified
    # download; the row counts.
    seconds = {"prepare": t_dl - t0, "download_verify": time.monotonic() - t_dl}
    return _Fetched(target=target, into_existing=into_existing, manifest=manifest,
                    target_version=target_version, selected=selected, spool=spool,
                    result=result, seconds=seconds)


class RestoreRefused(RestoreError):
    """The copy failed verification: nothing was restored and no database was touched."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(f"refusing to restore: {result.summary()}. Nothing was written to any "
                         "database; restore from another store (--source)")
        self.result = result


SPACE_FIX = "point VO2DR_SPOOL_DIR (or --spool-dir) at a larger volume"


def reserve_spool(spool: Path, size: int) -> None:
    """Create the spool file with its ``size`` bytes allocated up front (``posix_fallocate``),
    so the space is this run's: a concurrent restore, or anything else writing to the volume,
    cannot take it between the free-space check and the download, and the second of two
    restores that do not both fit fails here, before a byte is downloaded. Raises
    :class:`SpaceError` (one line) when the volume has not got the room. Where the file system
    cannot preallocate, the free-space check is all there is."""
    directory = spool.parent
    where = directory.parent
    free = shutil.disk_usage(directory).free
    if free < size * SPOOL_MARGIN:
        raise SpaceError(f"not enough space for the spool file in {where}: {free} bytes free, "
                         f"the dump is {size} bytes; {SPACE_FIX}")
    fd = os.open(spool, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if size > 0:
            os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise SpaceError(
                f"not enough space for the spool file in {where}: the dump is {size} bytes, and "
                f"other restores (or other writers) took part of the {free} bytes free; "
                f"{SPACE_FIX}") from exc
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    finally:
        os.close(fd)


def _pg_restore(target: Target, spool: Path, toc: Toc, selected: Sequence[tuple[str, str]],
                jobs: int, keep_owners: bool, reporter: Reporter,
                scratch_dir: str | None = None) -> None:
    args = [pgcompat.pg_restore_into(target, scratch_dir), f"--dbname={target.conninfo}",
            "--no-password", "--exit-on-error"]
    if not keep_owners:
        # The restoring role owns everything: the original roles may not exist on a new server.
        args += ["--no-owner", "--no-privileges"]
    args += [f"--jobs={jobs}"] if jobs > 1 else ["--single-transaction"]
    with tempfile.TemporaryDirectory(prefix="vo2dr-list-") as tmp:
        if selected:
            listfile = Path(tmp) / "restore.list"
            keep, left_out = _selection(toc, selected)
            listfile.write_text(use_list(toc, keep), encoding="utf-8")
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
        cause = errors[-1] if errors else f"exit {proc.returncode}"
        if any(s in proc.stderr for s in ("too many clients", "remaining connection slots",
                                          "too many connections")):
            cause += " (the target server ran out of connection slots: lower --jobs)"
        raise RestoreError(f"pg_restore into {target.dbname!r} failed: {cause}")


def stores_for(settings: Settings, names: Iterable[str]) -> Mapping[str, BackupStore]:
    """Deprecated (one landing): use ``vo2dr.stores.open_stores(settings, Access.READ,
    names=...)``."""
    from vo2dr.stores import Access, open_stores

    return open_stores(settings, Access.READ, names=names)
