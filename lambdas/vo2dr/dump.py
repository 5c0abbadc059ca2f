"""One consistent pg_dump, streamed.

A REPEATABLE READ, READ ONLY transaction exports its snapshot (``pg_export_snapshot()``);
``pg_dump --snapshot`` dumps exactly that snapshot, and the exact row count of every dumped
table is taken in the same transaction, concurrently with the dump, so the manifest's counts
describe precisely the rows in the body. The exporting transaction stays open until pg_dump
exits (a snapshot can only be imported while its exporter lives).

pg_dump writes the custom format uncompressed (``--compress=0``): the pipeline compresses
once, with zstd, after hashing the plaintext.

Data classes (``critical``, ``important``) dump the **whole schema** (every schema, extension,
type, domain, function, table, sequence, index, constraint and trigger, pre- and post-data) but
**table data only for the class's tables**: every other relation is named in an
``exclude table_data`` line of a ``pg_dump --filter`` read from stdin, resolved in the same
exported snapshot as the dump (so the list is exactly the relations pg_dump sees). ``pg_dump
--table`` is not used: it leaves out what the tables depend on (enum types, domains, functions
called by defaults or checks, extensions, schemas), so such an archive could not be restored into
an empty database. The archive's TABLE DATA entries are thus exactly the manifest's tables, and
:mod:`vo2dr.restore` restores a class backup's tables with what they depend on.

pg_dump takes an ACCESS SHARE lock on every table whose definition it dumps, so a class backup
waits (up to ``--lock-wait-timeout``) for DDL holding an ACCESS EXCLUSIVE lock on any table,
exactly as a full backup does; it needs the same read access as a full backup.
"""

from __future__ import annotations

import collections
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import psycopg
from psycopg import sql

from vo2dr import pgtools, piperead
from vo2dr.archive import qualified
from vo2dr.exceptions import ConfigError, DumpError, one_line
from vo2dr.manifest import TableCount
from vo2dr.strategy import DataClass

# pg_dump's output is handed on in pieces of this size (one per hash / compress call).
READ_SIZE = 4 * 1024 * 1024
PIPE_SIZE = piperead.PIPE_SIZE
SNAPSHOT_APP = "vo2dr-snapshot"
DUMP_APP = "vo2dr-pg_dump"
LOCK_WAIT_TIMEOUT = "120s"

# Ordinary user tables (partitions are counted as their leaves), not those of extensions.
_ALL_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY 1, 2
"""
_ONE_TABLE = """
SELECT n.nspname, c.relname, c.relkind, c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%s)
"""
# Every relation whose data pg_dump could dump (tables, partitions, materialized views, foreign
# tables, extension configuration tables) except the given ones: a class dump excludes their data.
_OTHER_RELATIONS = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'f')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
  AND c.oid <> ALL (%s::oid[])
ORDER BY 1, 2
"""


def filter_pattern(schema: str, name: str) -> str:
    """``"schema"."name"`` as an exact pg_dump pattern: inside double quotes nothing is a
    wildcard, and a double quote is written twice."""
    if "\n" in schema + name or "\r" in schema + name:
        raise ConfigError(f"cannot name table {schema}.{name} in a pg_dump filter: it contains a "
                          "line break")
    return '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))


@dataclass
class DumpInfo:
    """What the manifest records about the dump (``tables`` filled once counting is done)."""

    database: str
    server_version: str
    pg_dump_version: str
    snapshot: str
    table_names: list[str]  # schema-qualified, as dumped
    # The same tables as (schema, table): a name may itself hold dots, so the qualified name
    # is never split back.
    table_pairs: list[tuple[str, str]] = field(default_factory=list)
    tables: list[TableCount] = field(default_factory=list)
    # A data class: the relations (``schema.name``) whose definition is dumped without data.
    data_excluded: list[tuple[str, str]] = field(default_factory=list)


class Dump:
    """``with Dump(url, data_class) as d: for chunk in d.chunks(): ...`` then ``d.info``.

    ``chunks()`` yields pg_dump's stdout (the plaintext) and raises :class:`DumpError` if
    pg_dump or the counting fails, with pg_dump's own last error line. Leaving the block
    early kills pg_dump and ends the transaction.
    """

    def __init__(self, database_url: str, data_class: DataClass, *,
                 read_size: int = READ_SIZE) -> None:
        if not database_url:
            raise ConfigError("missing setting: DATABASE_URL (or --database-url)")
        self.database_url = database_url
        self.data_class = data_class
        self.read_size = read_size
        self.info: DumpInfo | None = None
        self._conn: psycopg.Connection | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._stderr_thread: threading.Thread | None = None
        self._count_thread: threading.Thread | None = None
        self._count_error: BaseException | None = None
        self._pipe_size = 0

    # -- setup ---------------------------------------------------------------------------------

    def __enter__(self) -> Dump:
        try:
            self._open_snapshot()
            self._start_pg_dump()
            self._count_thread = threading.Thread(target=self._count_rows, name="vo2dr-count",
                                                  daemon=True)
            self._count_thread.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open_snapshot(self) -> None:
        try:
            conn = psycopg.connect(self.database_url, application_name=SNAPSHOT_APP,
                                   connect_timeout=15, keepalives=1, keepalives_idle=30)
        except psycopg.Error as exc:
            raise DumpError(f"cannot connect to the database: {one_line(exc)}") from exc
        self._conn = conn
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.cursor() as cur:
                # The snapshot must outlive any idle period while pg_dump works.
                cur.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                cur.execute("SET LOCAL statement_timeout = 0")
                cur.execute("SELECT pg_export_snapshot(), current_database(), "
                            "current_setting('server_version')")
                row = cur.fetchone()
                assert row is not None  # a SELECT without FROM returns one row
                snapshot, database, server_version = row
                names, excluded = self._resolve_tables(cur)
        except psycopg.Error as exc:
            raise DumpError(f"cannot open a snapshot: {one_line(exc)}") from exc
        self.info = DumpInfo(database=database, server_version=server_version,
                             pg_dump_version=pgtools.version("pg_dump"), snapshot=snapshot,
                             table_names=[qualified(s, t) for s, t in names],
                             table_pairs=names, data_excluded=excluded)

    def _resolve_tables(self, cur: psycopg.Cursor
                        ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """``(tables dumped with data, relations dumped without data)``, in the snapshot."""
        if self.data_class.is_full:
            cur.execute(_ALL_TABLES)
            return [(s, t) for s, t in cur.fetchall()], []
        names, oids = [], []
        where = f"vo2max-dr:dataClasses.{self.data_class.name}.tables"
        for table in self.data_class.tables:
            cur.execute(_ONE_TABLE, (table,))
            row = cur.fetchone()
            if row is None or row[2] not in ("r", "p"):
                raise ConfigError(
                    f"table {table!r} of data class {self.data_class.name!r} does not exist in "
                    f"the database: fix {where}")
            if row[2] == "p":
                # Its rows live in its partitions, each a table of its own.
                raise ConfigError(
                    f"table {table!r} of data class {self.data_class.name!r} is partitioned: "
                    f"list its partitions in {where} instead (its rows are stored in them)")
            names.append((row[0], row[1]))
            oids.append(row[3])
        cur.execute(_OTHER_RELATIONS, (oids,))
        return names, [(s, t) for s, t in cur.fetchall()]

    def filter_text(self) -> str:
        """The ``pg_dump --filter`` lines of a data class: no data for any other relation."""
        assert self.info is not None
        return "".join(f"exclude table_data {filter_pattern(s, t)}\n"
                       for s, t in self.info.data_excluded)

    def _pg_dump_args(self, conninfo: str) -> list[str]:
        assert self.info is not None
        args = [pgtools.pg_dump(), "--format=custom", "--compress=0", "--no-password",
                f"--snapshot={self.info.snapshot}", f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}",
                f"--dbname={conninfo}"]
        if not self.data_class.is_full:
            # The whole schema, data only for the class: the exclusions come on stdin (a
            # database may have thousands of tables, too many for a command line).
            args.append("--filter=-")
        return args

    def _start_pg_dump(self) -> None:
        conninfo, password = pgtools.split_password(self.database_url)
        filters = None if self.data_class.is_full else self.filter_text()
        try:
            self._proc = subprocess.Popen(
                self._pg_dump_args(conninfo), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL if filters is None else subprocess.PIPE,
                env=pgtools.tool_env(password, DUMP_APP))
        except OSError as exc:
            raise DumpError(f"cannot start pg_dump: {exc}") from exc
        assert self._proc.stdout is not None  # stdout=PIPE
        if filters is not None:
            assert self._proc.stdin is not None  # stdin=PIPE with filters
            # pg_dump reads the whole filter while parsing its options, before it connects or
            # writes a byte, so this cannot dead-lock; if it died early, its exit code and
            # stderr tell why (read in chunks()).
            with contextlib.suppress(BrokenPipeError, OSError):
                self._proc.stdin.write(filters.encode("utf-8"))
            with contextlib.suppress(BrokenPipeError, OSError):
                self._proc.stdin.close()
        self._pipe_size = piperead.enlarge(self._proc.stdout.fileno(), PIPE_SIZE)
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="vo2dr-pg_dump-err",
                                               daemon=True)
        self._stderr_thread.start()

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        with contextlib.suppress(OSError, ValueError):  # closed under us on teardown
            for raw in self._proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self._stderr.append(line)

    def _count_rows(self) -> None:
        assert self._conn is not None and self.info is not None
        counts = []
        try:
            with self._conn.cursor() as cur:
                for name, (schema, table) in zip(self.info.table_names, self.info.table_pairs,
                                                 strict=True):
                    cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(table)))
                    (rows,) = cur.fetchone() or (0,)  # count(*): always one row
                    counts.append(TableCount(name=name, rows=int(rows)))
            self.info.tables = counts
        except psycopg.Error as exc:
            self._count_error = exc

    # -- streaming -----------------------------------------------------------------------------

    def pg_dump_error(self) -> str:
        """pg_dump's cause on one line: its last ``error:`` line, plus the server's message
        from the ``detail:`` line after it (e.g. "terminating connection due to
        administrator command"); else its last line."""
        lines = list(self._stderr)
        idx = [i for i, ln in enumerate(lines) if "error:" in ln]
        if not idx:
            return lines[-1].removeprefix("pg_dump: ") if lines else ""
        i = idx[-1]
        text = lines[i].split("error:", 1)[1].strip()
        for detail in lines[i + 1:]:
            if "detail:" in detail and "Command was" not in detail:
                extra = detail.split("detail:", 1)[1].strip()
                extra = extra.removeprefix("Error message from server:").strip()
                text = f"{text} ({extra})"
                break
        return text

    def chunks(self) -> Iterator[bytes]:
        """pg_dump's output in pieces of ``read_size`` bytes. Each piece is a memoryview of
        one reused buffer (typed as bytes: its consumers only hash, compress or copy it),
        valid until the next is asked for: the pipeline and the TOC reader use it before."""
        assert self._proc is not None and self._proc.stdout is not None
        pieces = cast(Iterator[bytes], piperead.read_pieces(
            self._proc.stdout.fileno(), self.read_size, self._pipe_size))
        try:
            yield from pieces
        except (OSError, ValueError) as exc:
            raise DumpError(f"reading pg_dump output failed: {exc}") from exc
        rc = self._proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=10)
        if rc != 0:
            cause = self.pg_dump_error() or f"exit code {rc}"
            raise DumpError(f"pg_dump failed (exit {rc}): {cause}")
        self._finish_counts()

    def _finish_counts(self) -> None:
        assert self._count_thread is not None and self._conn is not None
        self._count_thread.join()
        if self._count_error is not None:
            raise DumpError(
                f"counting rows in the snapshot failed: {one_line(self._count_error)}"
            ) from self._count_error
        try:
            self._conn.commit()
        except psycopg.Error as exc:
            raise DumpError(f"the snapshot transaction failed: {one_line(exc)}") from exc

    # -- teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if proc is not None:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        conn = self._conn
        if conn is not None:
            if self._count_thread is not None and self._count_thread.is_alive():
                # Cancel a count still running on a failed dump, then wait for the thread.
                with contextlib.suppress(psycopg.Error):
                    conn.cancel_safe(timeout=5)
                self._count_thread.join(timeout=15)
            with contextlib.suppress(psycopg.Error):
                conn.close()
        self._conn = None
