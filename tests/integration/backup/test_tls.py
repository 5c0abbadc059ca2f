"""The pinned client tools reach a server that accepts TLS connections only (as managed
servers such as RDS with rds.force_ssl do). The libpq that ships with them has no SSL; the job
preloads psycopg-binary's libpq 18, which has. The embedded server has no TLS either, so a
TLS-only front (dev.servers.tls_proxy) stands in for the managed server."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from vo2dr import pgtools

from dev import servers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls(pg):
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tls_source")
        conn.execute("DROP DATABASE IF EXISTS tls_restored")
        conn.execute("CREATE DATABASE tls_source")
        conn.execute("CREATE DATABASE tls_restored")
    with psycopg.connect(pg.url("tls_source"), autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 50) g")
    with servers.tls_proxy(pg.port) as proxy:
        yield proxy


def run(tool: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([tool, *args], capture_output=True, text=True, env=env, check=False)


def test_the_front_refuses_connections_without_tls(tls):
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(tls.url().replace("sslmode=require", "sslmode=disable")).close()


def test_the_tools_own_libpq_cannot_do_tls(tls):
    env = {k: v for k, v in pgtools.tool_env().items() if k != "LD_PRELOAD"}
    out = run(pgtools.pg_dump(), "--schema-only", f"--dbname={tls.url('tls_source')}", env=env)
    assert out.returncode != 0
    assert "SSL support is not compiled in" in out.stderr


def test_pg_dump_and_pg_restore_work_over_tls_with_the_preloaded_libpq(tls, pg, tmp_path):
    assert pgtools.tls_libpq(), "psycopg-binary's libpq 18 should be found"
    before = len(tls.sessions)
    archive = tmp_path / "users.dump"
    dump = run(pgtools.pg_dump(), "-Fc", "-f", str(archive), f"--dbname={tls.url('tls_source')}",
               env=pgtools.tool_env())
    assert dump.returncode == 0, dump.stderr
    restore = run(pgtools.pg_restore(), "--no-owner", str(archive),
                  f"--dbname={tls.url('tls_restored')}", env=pgtools.tool_env())
    assert restore.returncode == 0, restore.stderr
    assert all(v.startswith("TLSv1.") for v in tls.sessions[before:])
    assert len(tls.sessions) - before >= 2  # both tools connected, and only over TLS
    with psycopg.connect(pg.url("tls_restored")) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (50,)
