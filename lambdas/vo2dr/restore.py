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
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from vo2dr import pgcompat, pgtools
from vo2dr.catalog import Catalog, CatalogEntry, build_catalog
from vo2dr.exceptions import ConfigError, RestoreError, Vo2drError, one_line
from vo2dr.manifest import Manifest
from vo2dr.settings import Settings
from vo2dr.stores.base import BackupStore
from vo2dr.verify import (
    VerifyResult,
    load_manifest,
    spool_file,
    toc_listing,
    verify_copy,
)

MAX_IDENTIFIER = 63
RESTORE_APP = "vo2dr-restore"
SPOOL_MARGIN = 1.05  # free space wanted on the spool volume, relative to the plaintext size
_DATA_DESCS = ("TABLE DATA", "SEQUENCE SET", "MATERIALIZED VIEW DATA", "LARGE OBJECTS",
               "BLOBS", "BLOB DATA", "BLOB")
_RELATION_TYPES = ("TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE")


# -- progress --------------------------------------------------------------------------------------

class Reporter(Protocol):
    def stage(self, message: str) -> None: ...
    def download(self, total: int) -> Callable[[int], None]: ...
    def download_done(self) -> None: ...


class QuietReporter:
    """Stage lines on stderr (they end up in logs), no progress bar."""

    def __init__(self, stream=None) -> None:
        self._stream = stream

    def stage(self, message: str) -> None:
        if self._stream is not None:
            print(f"vo2dr: {message}", file=self._stream, flush=True)

    def download(self, total: int) -> Callable[[int], None]:
        return lambda n: None

    def download_done(self) -> None:
        pass


class RichReporter:
    """A progress bar for the download (verify and decrypt run in the same pass) on a TTY."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress = None

    def stage(self, message: str) -> None:
        self.console.print(f"[bold cyan]•[/] {message}")

    def download(self, total: int) -> Callable[[int], None]:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("  download + verify"), BarColumn(),
                                  DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=self.console, transient=True)
        self._progress.start()
        task = self._progress.add_task("download", total=total)
        progress = self._progress
        return lambda n: progress.advance(task, n)

    def download_done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def default_reporter() -> Reporter:
    return RichReporter() if sys.stderr.isatty() else QuietReporter(sys.stderr)


# -- database targets ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A database named by a URL, and how to reach its server's maintenance database."""

    url: str
    dbname: str
    conninfo: str  # without password
    password: str | None

    @classmethod
    def parse(cls, url: str, what: str = "--target-url") -> Target:
        if not url:
            raise ConfigError(f"missing {what}: the database to restore into, e.g. "
                              "postgresql://user@host:5432/vo2max_restored")
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigError(f"{what} is not a PostgreSQL URL or conninfo") from exc
        dbname = str(params.get("dbname") or "")
        if not dbname:
            raise ConfigError(f"{what} names no database: add /<database> to the URL")
        password = params.pop("password", None)
        return cls(url=url, dbname=dbname,
                   conninfo=make_conninfo(**{k: str(v) for k, v in params.items()}),
                   password=None if password is None else str(password))

    def with_dbname(self, dbname: str) -> Target:
        params = conninfo_to_dict(self.conninfo)
        params["dbname"] = dbname
        url = make_conninfo(**{k: str(v) for k, v in params.items()},
                            **({"password": self.password} if self.password else {}))
        return Target(url=url, dbname=dbname,
                      conninfo=make_conninfo(**{k: str(v) for k, v in params.items()}),
                      password=self.password)

    def maintenance(self) -> Target:
        return self.with_dbname("template1" if self.dbname == "postgres" else "postgres")

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        try:
            return psycopg.connect(self.conninfo, password=self.password,
                                   application_name=RESTORE_APP, connect_timeout=15, **kwargs)
        except psycopg.Error as exc:
            raise RestoreError(f"cannot connect to database {self.dbname!r}: "
                               f"{one_line(exc)}") from exc


def database_exists(server: Target, dbname: str) -> bool:
    with server.maintenance().connect(autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (dbname,)).fetchone() is not None


_CONTENTS = r"""
SELECT 'relation ' || n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
UNION ALL
SELECT 'schema ' || nspname FROM pg_namespace
 WHERE nspname NOT IN ('public', 'pg_catalog', 'information_schema')
   AND nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'type ' || format_type(t.oid, NULL)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_%' AND t.typrelid = 0 AND t.typelem = 0
LIMIT 20
"""


def database_contents(target: Target) -> list[str]:
    """What a database holds beyond a fresh one (empty list: it is empty)."""
    with target.connect(autocommit=True) as conn:
        return [row[0] for row in conn.execute(_CONTENTS).fetchall()]


def check_target(target: Target) -> bool:
    """``True`` if the database exists (and is empty), ``False`` if it does not exist.
    Raises :class:`RestoreError` if it exists and holds anything."""
    if not database_exists(target, target.dbname):
        return False
    found = database_contents(target)
    if found:
        listed = ", ".join(found[:5]) + (" …" if len(found) > 5 else "")
        raise RestoreError(
            f"refusing to restore into database {target.dbname!r}: it is not empty ({listed}). "
            "Restore into a new database name (it is created for you), or use --promote to "
            "swap a restored copy in while keeping this one")
    return True


def create_database(target: Target) -> None:
    with target.maintenance().connect(autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                sql.Identifier(target.dbname)))
        except psycopg.Error as exc:
            raise RestoreError(f"cannot create database {target.dbname!r}: "
                               f"{one_line(exc)}") from exc


def drop_created_database(target: Target) -> None:
    """Drop a database this process created itself (a failed restore's or a drill's)."""
    with target.maintenance().connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(target.dbname)))


def count_rows(target: Target, tables: Iterable[str]) -> dict[str, int | None]:
    """Exact row counts; ``None`` for a table that does not exist."""
    out: dict[str, int | None] = {}
    with target.connect(autocommit=True) as conn:
        for name in tables:
            schema, table = name.split(".", 1)
            try:
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table))).fetchone()
                out[name] = int(row[0])
            except psycopg.errors.UndefinedTable:
                out[name] = None
    return out


# -- selective restore -----------------------------------------------------------------------------

_ENTRY_HEAD = re.compile(r"^-- TOC entry (\d+) \(class \d+ OID \d+\)$")
_ENTRY_DEPS = re.compile(r"^-- Dependencies: ([\d ]+)$")
_ENTRY_NAME = re.compile(r"^-- Name: (.*); Type: (.*); Schema: (.*); Owner: ?(.*)$")
_LIST_LINE = re.compile(r"^(\d+); \d+ \d+ (.*)$")


@dataclass
class _TocEntry:
    dump_id: int
    type: str = ""
    schema: str = ""
    name: str = ""
    deps: list[int] = field(default_factory=list)


def _schema_entries(spool: Path) -> dict[int, _TocEntry]:
    """The pre- and post-data entries with their dependencies, from ``pg_restore --schema-only
    --verbose`` (small: no table data)."""
    proc = subprocess.run([pgtools.pg_restore(), "--schema-only", "--verbose", "--file=-",
                           str(spool)], capture_output=True, text=True, env=pgtools.tool_env(),
                          check=False)
    if proc.returncode != 0:
        raise RestoreError(f"pg_restore cannot read the archive's schema: "
                           f"{one_line(proc.stderr)}")
    entries: dict[int, _TocEntry] = {}
    current: _TocEntry | None = None
    for line in proc.stdout.splitlines():
        if m := _ENTRY_HEAD.match(line):
            current = entries.setdefault(int(m[1]), _TocEntry(int(m[1])))
        elif current is not None and (m := _ENTRY_DEPS.match(line)):
            current.deps = [int(x) for x in m[1].split()]
        elif current is not None and (m := _ENTRY_NAME.match(line)):
            current.name, current.type, current.schema = m[1], m[2], m[3]
            current = None
    return entries


def selective_list(spool: Path, tables: Iterable[str]) -> str:
    """A ``pg_restore --use-list`` file restoring only ``tables`` (``schema.name``) and what
    belongs to them: what they depend on (schemas, types, functions), and every object that
    depends only on restored objects (sequences, defaults, indexes, constraints, triggers,
    comments; a foreign key only when both of its tables are restored). Other tables and
    views are left out."""
    return _selection(spool, tables)[0]


def _selection(spool: Path, tables: Iterable[str]) -> tuple[str, list[str]]:
    """:func:`selective_list`'s list, and the foreign keys of selected tables it leaves out
    (``schema.table constraint``: they reference a table that is not restored)."""
    selected = {tuple(t.split(".", 1)) for t in tables}
    entries = _schema_entries(spool)
    keep: set[int] = set()

    def add_up(i: int) -> None:
        stack = [i]
        while stack:
            j = stack.pop()
            if j in keep or j not in entries:
                continue
            keep.add(j)
            stack.extend(entries[j].deps)

    for e in entries.values():
        if (e.type == "TABLE" and (e.schema, e.name) in selected) or e.type in (
                "SCHEMA", "EXTENSION"):
            add_up(e.dump_id)
    changed = True
    while changed:
        changed = False
        for e in entries.values():
            if e.dump_id in keep or e.type in _RELATION_TYPES or not e.deps:
                continue
            if all(d in keep for d in e.deps):
                keep.add(e.dump_id)
                changed = True
    kept_sequences = {(e.schema, e.name) for e in entries.values()
                      if e.dump_id in keep and e.type == "SEQUENCE"}
    # "-- Name: workouts workouts_user_id_fkey; Type: FK CONSTRAINT": table, then constraint
    left_out = sorted(f"{e.schema}.{e.name.split(' ', 1)[0]} {e.name.split(' ', 1)[-1]}"
                      for e in entries.values()
                      if e.type == "FK CONSTRAINT" and e.dump_id not in keep
                      and (e.schema, e.name.split(" ", 1)[0]) in selected)

    out = []
    for line in toc_listing(spool).splitlines():
        m = _LIST_LINE.match(line)
        if not m:
            continue
        dump_id, rest = int(m[1]), m[2]
        desc = next((d for d in _DATA_DESCS if rest.startswith(d + " ")), None)
        if desc is None:
            if dump_id in keep:
                out.append(line)
            continue
        parts = rest[len(desc) + 1:].split(" ")
        key = (parts[0], parts[1]) if len(parts) >= 2 else None
        if (desc == "TABLE DATA" and key in selected) or (
                desc == "SEQUENCE SET" and key in kept_sequences):
            out.append(line)
    return "\n".join(out) + "\n", left_out


def missing_schemas(spool: Path) -> list[str]:
    """Schemas the archive's objects live in but that it does not create. A dump of selected
    tables (``pg_dump --table``: class backups taken by earlier versions, which did not dump the
    whole schema) holds no SCHEMA entry, so a table in schema ``app`` would fail to restore
    into a fresh database without it. Current archives define every schema: none missing."""
    entries = _schema_entries(spool).values()
    defined = {e.name for e in entries if e.type == "SCHEMA"}
    used = {e.schema for e in entries if e.schema not in ("", "-", "public", "pg_catalog")}
    return sorted(used - defined)


def create_schemas(target: Target, schemas: Sequence[str]) -> None:
    with target.connect(autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def drop_empty_schemas(target: Target, schemas: Sequence[str]) -> None:
    """Undo :func:`create_schemas` after a failed restore (RESTRICT: only if still empty)."""
    with target.connect(autocommit=True) as conn:
        for schema in schemas:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} RESTRICT").format(
                    sql.Identifier(schema)))


def resolve_tables(manifest: Manifest, wanted: Sequence[str]) -> list[str]:
    """``--table`` values (``users`` or ``public.users``) as the manifest's qualified names."""
    known = list(manifest.table_rows())
    out = []
    for name in wanted:
        if name in known:
            out.append(name)
            continue
        hits = [k for k in known if k.split(".", 1)[1] == name]
        if len(hits) != 1:
            why = "is ambiguous" if hits else "is not in this backup"
            raise RestoreError(f"--table {name} {why}: the backup holds "
                               f"{', '.join(known) or 'no tables'}")
        out.append(hits[0])
    return sorted(set(out))


# -- promote ---------------------------------------------------------------------------------------

def preserved_name(original: str, when: datetime) -> str:
    suffix = "_pre_restore_" + when.astimezone(UTC).strftime("%Y%m%d_%H%M%S")
    return original[:MAX_IDENTIFIER - len(suffix)] + suffix


def staging_name(original: str, when: datetime) -> str:
    suffix = "_restore_" + when.astimezone(UTC).strftime("%Y%m%d_%H%M%S")
    return original[:MAX_IDENTIFIER - len(suffix)] + suffix


def promote(server: Target, restored: str, original: str, when: datetime,
            reporter: Reporter, wait_seconds: float = 30.0) -> dict[str, Any]:
    """Rename ``original`` to its dated name and ``restored`` into its place, atomically (both
    renames in one transaction). Connections to either are terminated first: a database cannot
    be renamed while in use; new connections are refused meanwhile (ALLOW_CONNECTIONS false)
    and allowed again afterwards. The original is kept, never dropped."""
    maintenance = server.maintenance()
    if original == maintenance.dbname:
        raise RestoreError(f"cannot promote over the maintenance database {original!r}")
    keep_as = preserved_name(original, when)
    ident = sql.Identifier
    with maintenance.connect(autocommit=True) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname IN (%s, %s, %s)",
            (original, restored, keep_as)).fetchall()}
        if restored not in names:
            raise RestoreError(f"restored database {restored!r} does not exist")
        if keep_as in names:
            raise RestoreError(f"database {keep_as!r} already exists: retry in a second")
        if original not in names:
            reporter.stage(f"promote: {original!r} does not exist; renaming {restored!r} to it")
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                ident(restored), ident(original)))
            return {"original": original, "preserved_as": None, "terminated": 0}
        try:
            for db in (original, restored):
                conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    ident(db)))
            terminated = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname IN (%s, %s) AND pid <> pg_backend_pid()",
                (original, restored)).fetchone()[0]
            reporter.stage(
                f"promote: refused new connections to {original!r} and terminated "
                f"{terminated} session(s) on it: PostgreSQL cannot rename a database in use. "
                "Applications reconnect to the restored data under the same name.")
            deadline = time.monotonic() + wait_seconds
            while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname IN (%s, %s) "
                               "AND pid <> pg_backend_pid()",
                               (original, restored)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise RestoreError(f"sessions on {original!r} did not end within "
                                       f"{wait_seconds:.0f}s; nothing was renamed")
                time.sleep(0.2)
            with conn.transaction():
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    ident(original), ident(keep_as)))
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    ident(restored), ident(original)))
        except psycopg.Error as exc:
            raise RestoreError(f"promote failed, nothing was renamed: {one_line(exc)}") from exc
        finally:
            now_names = {r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname IN (%s, %s, %s)",
                (original, restored, keep_as)).fetchall()}
            for db in now_names:
                with contextlib.suppress(psycopg.Error):
                    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true")
                                 .format(ident(db)))
    reporter.stage(f"promote: {restored!r} is now {original!r}; the previous database is kept "
                   f"as {keep_as!r}")
    return {"original": original, "preserved_as": keep_as, "terminated": int(terminated)}


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
    from vo2dr.stores import open_store

    if source not in ("s3", "gcs", "azure"):
        raise ConfigError(f"--source {source!r}: use s3, gcs or azure")
    return open_store(source, settings)


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
    if promote_into_place:
        question = (f"Replace database {final.dbname!r} with backup {entry.backup_id}? The "
                    f"current one is kept as {preserved_name(final.dbname, when)!r}; sessions "
                    f"on it will be terminated.")
        if confirm is None or not confirm(question):
            raise RestoreError("promote not confirmed: pass --yes, or answer the question on a "
                               "terminal; nothing was changed")

    manifest = load_manifest(store, entry)
    target_version = pgcompat.refuse_older_target(manifest.server_version, target)
    if tables:
        selected = resolve_tables(manifest, tables)
    elif manifest.data_class != "full":
        # A class backup defines every table but holds data for the class only: restore the
        # class's tables (with what they depend on), not empty copies of the others.
        selected = sorted(manifest.table_rows())
    else:
        selected = []
    spool = spool_file(spool_dir or os.environ.get("VO2DR_SPOOL_DIR") or None)
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
            _pg_restore(target, spool, selected, jobs, keep_owners, reporter)
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
                keep_owners: bool, reporter: Reporter) -> None:
    args = [pgcompat.pg_restore_into(target), f"--dbname={target.conninfo}", "--no-password",
            "--exit-on-error"]
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


def read_recovery_key(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read --recovery-key {path}: {exc}") from exc


def stores_for(settings: Settings, names: Iterable[str]) -> Mapping[str, BackupStore]:
    from vo2dr.stores import open_store

    return {n: open_store(n, settings) for n in names}
