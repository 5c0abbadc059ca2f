"""Database administration for restores and drills: a target database named by a URL, and
what is done to it from its server's maintenance database (exists, empty, create, drop, count
rows, create missing schemas). Every name is quoted with :mod:`psycopg.sql`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from vo2dr.exceptions import ConfigError, RestoreError, one_line
from vo2dr.progress import QuietReporter, Reporter

MAX_IDENTIFIER = 63
RESTORE_APP = "vo2dr-restore"


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
        check_identifier(dbname, what)
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


def check_identifier(name: str, what: str) -> None:
    """PostgreSQL silently truncates a longer name to 63 bytes (not characters), so a restore
    would land under another name than the one reported: refuse it instead."""
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER:
        raise ConfigError(f"{what}: database name {name!r} is {size} bytes long; PostgreSQL "
                          f"names are at most {MAX_IDENTIFIER} bytes (it would be truncated)")


def truncate_identifier(name: str, suffix: str) -> str:
    """``name`` cut so that ``name + suffix`` fits in 63 bytes, never inside a character."""
    room = MAX_IDENTIFIER - len(suffix.encode("utf-8"))
    return name.encode("utf-8")[:room].decode("utf-8", "ignore") + suffix


def database_exists(server: Target, dbname: str) -> bool:
    with server.maintenance().connect(autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (dbname,)).fetchone() is not None


# Everything a user can create in a database, by its catalog row. Objects made by initdb have
# OIDs below FirstNormalObjectId (16384) and every later one above, so a database copied from
# template0 lists nothing here. Large objects can be created with any OID, so any counts.
_USER_OBJECTS = r"""
WITH objs(cls, oid) AS (
  SELECT 'pg_namespace'::regclass, oid FROM pg_namespace
   WHERE oid >= 16384 AND nspname !~ '^pg_(toast_)?temp_'
  UNION ALL
  SELECT 'pg_class'::regclass, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid >= 16384 AND c.relpersistence <> 't' AND n.nspname !~ '^pg_(toast_)?temp_'
     AND n.nspname <> 'pg_toast'
  UNION ALL SELECT 'pg_extension'::regclass, oid FROM pg_extension WHERE oid >= 16384
  UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc WHERE oid >= 16384
  UNION ALL
  SELECT 'pg_type'::regclass, t.oid FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE t.oid >= 16384 AND n.nspname !~ '^pg_(toast_)?temp_'
  UNION ALL SELECT 'pg_largeobject'::regclass, oid FROM pg_largeobject_metadata
  UNION ALL SELECT 'pg_publication'::regclass, oid FROM pg_publication
  UNION ALL SELECT 'pg_ts_config'::regclass, oid FROM pg_ts_config WHERE oid >= 16384
  UNION ALL SELECT 'pg_ts_dict'::regclass, oid FROM pg_ts_dict WHERE oid >= 16384
  UNION ALL SELECT 'pg_ts_parser'::regclass, oid FROM pg_ts_parser WHERE oid >= 16384
  UNION ALL SELECT 'pg_ts_template'::regclass, oid FROM pg_ts_template WHERE oid >= 16384
  UNION ALL SELECT 'pg_collation'::regclass, oid FROM pg_collation WHERE oid >= 16384
  UNION ALL SELECT 'pg_conversion'::regclass, oid FROM pg_conversion WHERE oid >= 16384
  UNION ALL SELECT 'pg_operator'::regclass, oid FROM pg_operator WHERE oid >= 16384
  UNION ALL SELECT 'pg_opfamily'::regclass, oid FROM pg_opfamily WHERE oid >= 16384
  UNION ALL SELECT 'pg_opclass'::regclass, oid FROM pg_opclass WHERE oid >= 16384
  UNION ALL SELECT 'pg_am'::regclass, oid FROM pg_am WHERE oid >= 16384
  UNION ALL SELECT 'pg_cast'::regclass, oid FROM pg_cast WHERE oid >= 16384
  UNION ALL SELECT 'pg_transform'::regclass, oid FROM pg_transform
  UNION ALL SELECT 'pg_language'::regclass, oid FROM pg_language WHERE oid >= 16384
  UNION ALL SELECT 'pg_event_trigger'::regclass, oid FROM pg_event_trigger
  UNION ALL SELECT 'pg_foreign_data_wrapper'::regclass, oid FROM pg_foreign_data_wrapper
  UNION ALL SELECT 'pg_foreign_server'::regclass, oid FROM pg_foreign_server
  UNION ALL SELECT 'pg_default_acl'::regclass, oid FROM pg_default_acl
  UNION ALL SELECT 'pg_statistic_ext'::regclass, oid FROM pg_statistic_ext
  UNION ALL SELECT 'pg_subscription'::regclass, oid FROM pg_subscription
   WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT coalesce(i.type || ' ' || i.identity, o.cls::text || ' ' || o.oid)
  FROM objs o, LATERAL pg_identify_object(o.cls, o.oid, 0) i
 ORDER BY o.cls::oid, o.oid
 LIMIT 20
"""
# Never restore into these: the templates every new database is copied from (a restore into
# template1 would give every future database the production data) and the maintenance
# databases tools and people connect to.
RESERVED_TARGETS = ("template0", "template1", "postgres")


def database_contents(target: Target) -> list[str]:
    """What a database holds beyond a fresh one (empty list: it is empty): any user object of
    any kind (relations, schemas, functions, types, extensions, large objects, publications,
    text-search configurations, collations, operators, casts, foreign servers, ...)."""
    with target.connect(autocommit=True) as conn:
        return [row[0] for row in conn.execute(_USER_OBJECTS).fetchall()]


def refuse_reserved_target(target: Target) -> None:
    """Refuse a template or maintenance database as a target, before anything else happens."""
    if target.dbname in RESERVED_TARGETS:
        raise RestoreError(f"refusing to restore into {target.dbname!r}: it is a template or "
                           "maintenance database. Restore into a new database name")
    with target.maintenance().connect(autocommit=True) as conn:
        row = conn.execute("SELECT datistemplate FROM pg_database WHERE datname = %s",
                           (target.dbname,)).fetchone()
    if row is not None and row[0]:
        raise RestoreError(f"refusing to restore into {target.dbname!r}: it is a template "
                           "database (datistemplate); new databases would be born with its "
                           "data. Restore into a new database name")


SUPERUSER_RISK = (
    "a dump can carry code that runs during the restore (functions called by CHECK "
    "constraints, defaults, index expressions and triggers) with the restoring role's rights, "
    "and a superuser's rights reach the server's files and programs")


def refuse_superuser(target: Target, allow: bool, reporter: Reporter | None = None) -> None:
    """Refuse to restore as a superuser unless ``allow`` (``--allow-superuser``). Restore as a
    role with CREATEDB that is not a superuser: the restored objects are then owned by it."""
    with target.maintenance().connect(autocommit=True) as conn:
        row = conn.execute("SELECT current_user, rolsuper FROM pg_roles "
                           "WHERE rolname = current_user").fetchone()
    if row is None or not row[1]:
        return
    if not allow:
        raise RestoreError(
            f"refusing to restore as {row[0]!r}, a superuser: {SUPERUSER_RISK}. Connect as a "
            "role with CREATEDB that is not a superuser, or pass --allow-superuser")
    if reporter is not None:
        reporter.stage(f"restoring as the superuser {row[0]!r} (--allow-superuser): "
                       f"{SUPERUSER_RISK}")


def check_target(target: Target) -> bool:
    """``True`` if the database exists (and is empty), ``False`` if it does not exist.
    Raises :class:`RestoreError` if it exists and holds anything, or is a template or
    maintenance database."""
    refuse_reserved_target(target)
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


def count_rows(target: Target, tables: Mapping[str, tuple[str, str]], *,
               connections: int = 1,
               sizes: Mapping[str, int] | None = None) -> dict[str, int | None]:
    """Exact row counts by name (``{name: (schema, table)}``, the exact pair from the archive:
    a name may itself hold dots); ``None`` for a table that does not exist.

    With ``connections`` > 1 the tables are counted on that many connections at once, the
    largest first (by ``sizes``, e.g. the manifest's row counts), so that big tables do not
    queue behind each other: the first scan after a restore also sets every row's hint bits,
    which makes it CPU-bound on the server, one core per connection."""
    names = list(tables)
    if sizes is not None:
        names.sort(key=lambda n: sizes.get(n, 0), reverse=True)
    lanes = max(1, min(connections, len(names)))
    if lanes == 1:
        return _count(target, [(n, tables[n]) for n in names])
    from concurrent.futures import ThreadPoolExecutor

    # Round-robin over the lanes, largest first: lane i gets tables i, i + lanes, ...
    work = [[(n, tables[n]) for n in names[i::lanes]] for i in range(lanes)]
    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="vo2dr-count") as pool:
        parts = list(pool.map(lambda part: _count(target, part), work))
    out: dict[str, int | None] = dict.fromkeys(tables)  # the caller's order
    for part in parts:
        out.update(part)
    return out


def _count(target: Target, tables: Sequence[tuple[str, tuple[str, str]]]
           ) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    with target.connect(autocommit=True) as conn:
        for name, (schema, table) in tables:
            try:
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table))).fetchone()
                assert row is not None  # count(*) always returns one row
                out[name] = int(row[0])
            except psycopg.errors.UndefinedTable:
                out[name] = None
    return out


MAX_COUNT_CONNECTIONS = 4


def count_connections(target: Target, tables: int) -> int:
    """How many connections :func:`count_rows` may use on ``target``'s server: one per core
    here (the server runs beside pg_restore's client, or on a machine of its own: its cores are
    not known, see :func:`default_jobs`), at most :data:`MAX_COUNT_CONNECTIONS` and the
    number of tables, within the connection slots the server has free (:func:`capped_jobs`)."""
    want = min(os.cpu_count() or 1, MAX_COUNT_CONNECTIONS, tables)
    return capped_jobs(target, want, QuietReporter()) if want > 1 else 1


def create_schemas(target: Target, schemas: Sequence[str]) -> None:
    with target.connect(autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


# -- connection slots ------------------------------------------------------------------------------

MAX_JOBS = 32  # beyond this, parallel pg_restore only adds lock and I/O contention
_FREE_SLOTS = """
SELECT current_setting('max_connections')::int
       - current_setting('superuser_reserved_connections')::int
       - coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0)
       - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
       r.rolconnlimit,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND usename = current_user)
  FROM pg_roles r WHERE r.rolname = current_user
"""


def default_jobs(target: Target, reporter: Reporter) -> int:
    """``--jobs`` when none is given: one pg_restore job per core, capped like any ``--jobs``
    by the connection slots the target has free (:func:`capped_jobs`). Cores are the fewer of
    this machine's (every job is a pg_restore process here) and the server's
    ``max_worker_processes`` (PostgreSQL has no setting for its cores; that one is sized from
    them: by the DBA, and by RDS from the instance's vCPUs). One job restores in a single
    transaction."""
    cores = os.cpu_count() or 1
    with contextlib.suppress(psycopg.Error), \
            target.maintenance().connect(autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('max_worker_processes')::int").fetchone()
        if row is not None and int(row[0]) > 0:
            cores = min(cores, int(row[0]))
    jobs = capped_jobs(target, max(1, cores), QuietReporter())
    reporter.stage(f"--jobs not given: {jobs} (" + (
        "one transaction" if jobs == 1 else "parallel pg_restore") + f"; {cores} core(s), "
        "the target's free connection slots)")
    return jobs


def capped_jobs(target: Target, jobs: int, reporter: Reporter) -> int:
    """``jobs`` limited to what the target server can accept now: its free connection slots
    (max_connections less the reserved ones and those in use) and the role's connection limit,
    keeping one slot free, and at most :data:`MAX_JOBS`. pg_restore --jobs N holds N
    connections; one more than the server accepts fails the restore half-way."""
    if jobs <= 1:
        return 1
    with target.maintenance().connect(autocommit=True) as conn:
        row = conn.execute(_FREE_SLOTS).fetchone()
    if row is None:  # the role is not in pg_roles: nothing to go by, so no parallelism
        return 1
    free, role_limit, role_used = row
    # This connection closes before pg_restore starts: its slot is free again by then.
    free = int(free) + 1
    if role_limit is not None and role_limit >= 0:
        free = min(free, int(role_limit) - int(role_used) + 1)
    capped = max(1, min(jobs, MAX_JOBS, free - 1))
    if capped < jobs:
        reporter.stage(f"--jobs {jobs} capped to {capped}: the target server accepts "
                       f"{max(free, 0)} more connection(s) (max_connections, reserved slots, "
                       f"the role's limit), one is kept free, and at most {MAX_JOBS}")
    return capped
