"""Database administration for restores and drills: a target database named by a URL, and
what is done to it from its server's maintenance database (exists, empty, create, drop, count
rows, create missing schemas). Every name is quoted with :mod:`psycopg.sql`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from vo2dr.exceptions import ConfigError, RestoreError, one_line

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
                assert row is not None  # count(*) always returns one row
                out[name] = int(row[0])
            except psycopg.errors.UndefinedTable:
                out[name] = None
    return out



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

