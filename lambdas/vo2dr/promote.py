"""``restore --promote``: swap a restored database in under the name of the one it replaces,
keeping the original under a dated name (never dropped)."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from vo2dr.dbadmin import Target, database_contents, truncate_identifier
from vo2dr.exceptions import RestoreError, Vo2drError, one_line
from vo2dr.progress import Reporter

# How long a promote without ``terminate`` waits for sessions that are ending (see promote).
CLOSING_GRACE_SECONDS = 5.0


def preserved_name(original: str, when: datetime) -> str:
    return truncate_identifier(original,
                               "_pre_restore_" + when.astimezone(UTC).strftime("%Y%m%d_%H%M%S"))


def staging_name(original: str, when: datetime) -> str:
    return truncate_identifier(original,
                               "_restore_" + when.astimezone(UTC).strftime("%Y%m%d_%H%M%S"))


def promote(server: Target, restored: str, original: str, when: datetime,
            reporter: Reporter, wait_seconds: float = 30.0,
            terminate: bool = True) -> dict[str, Any]:
    """Rename ``original`` to its dated name and ``restored`` into its place, atomically (both
    renames in one transaction). Connections to either are terminated first: a database cannot
    be renamed while in use; new connections are refused meanwhile (ALLOW_CONNECTIONS false)
    and allowed again afterwards. The original is kept, never dropped. Without ``terminate``,
    sessions on either database make it fail instead, with nothing renamed."""
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
            if not terminate:
                # A session closed just before (this run's own row counts) stays listed until
                # its backend has exited, later on a busy server. New sessions are refused now,
                # so give those a moment, as PostgreSQL's own DROP and RENAME do (5 s), before
                # refusing for the sessions that stay.
                deadline = time.monotonic() + min(wait_seconds, CLOSING_GRACE_SECONDS)
                while (busy := _count(conn, "SELECT count(*) FROM pg_stat_activity WHERE "
                                      "datname IN (%s, %s) AND pid <> pg_backend_pid()",
                                      (original, restored))) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if busy:
                    raise RestoreError(
                        f"{busy} session(s) are connected to {original!r}: close them and "
                        f"retry; nothing was renamed, the restored copy is {restored!r}")
            terminated = _count(conn,
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname IN (%s, %s) AND pid <> pg_backend_pid()",
                                (original, restored))
            reporter.stage(
                f"promote: refused new connections to {original!r} and terminated "
                f"{terminated} session(s) on it: PostgreSQL cannot rename a database in use. "
                "Applications reconnect to the restored data under the same name.")
            deadline = time.monotonic() + wait_seconds
            while _count(conn, "SELECT count(*) FROM pg_stat_activity WHERE datname IN (%s, %s) "
                         "AND pid <> pg_backend_pid()", (original, restored)):
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


def replace_empty(server: Target, restored: str, when: datetime,
                  reporter: Reporter) -> dict[str, Any]:
    """Swap the restored copy in under the name of the existing empty target (no session is
    terminated: it fails instead), then drop the empty original if it is still empty."""
    original = server.dbname
    out = promote(server, restored, original, when, reporter, terminate=False)
    kept = out["preserved_as"]
    if kept:
        old = server.with_dbname(kept)
        try:
            if not database_contents(old):
                with server.maintenance().connect(autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(kept)))
                out["preserved_as"] = None
                reporter.stage(f"dropped the empty database the restore replaced ({kept!r})")
        except (psycopg.Error, Vo2drError) as exc:
            reporter.stage(f"kept {kept!r} (the empty database replaced): {one_line(exc)}")
    return out


def _count(conn: psycopg.Connection, query: str, params: tuple[str, str]) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row is not None else 0
