"""Restores that do no damage when they fail (issue 13, item 5 and 6): template and maintenance
databases are refused, "empty" means no user object of any kind, a failed restore leaves an
existing target exactly as it was, ``--jobs`` is capped by the server's free connection slots,
and names over 63 bytes are refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime

import psycopg
import pytest
from vo2dr import pgtools
from vo2dr.dbadmin import MAX_IDENTIFIER, Target, check_target, database_contents
from vo2dr.exceptions import ConfigError, RestoreError
from vo2dr.promote import preserved_name, staging_name

from .conftest import database_exists, new_database, table_checksums
from .conftest import restore_as_superuser as restore

pytestmark = pytest.mark.integration


def databases(pg, prefix: str) -> list[str]:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1",
            (prefix,))]


@pytest.mark.parametrize("name", ["template1", "postgres", "template0"])
def test_template_and_maintenance_databases_are_refused(world, name):
    before = database_contents(Target.parse(world.pg.url("template1")))
    with pytest.raises(RestoreError, match=f"refusing to restore into '{name}'"):
        restore(world.settings, source="s3", target_url=world.pg.url(name))
    with pytest.raises(RestoreError, match=f"refusing to restore into '{name}'"):
        restore(world.settings, source="s3", target_url=world.pg.url(name), promote_into_place=True,
                confirm=lambda q: True)
    assert database_contents(Target.parse(world.pg.url("template1"))) == before == []


def test_any_template_database_is_refused(world):
    name = new_database(world.pg, "tmpl")
    with psycopg.connect(world.pg.url(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE true')
    try:
        with pytest.raises(RestoreError, match="it is a template database"):
            restore(world.settings, source="s3", target_url=world.pg.url(name))
        assert database_contents(Target.parse(world.pg.url(name))) == []
    finally:
        with psycopg.connect(world.pg.url(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE false')


@pytest.mark.parametrize("statement", [
    "SELECT lo_create(0)",
    "SELECT lo_create(42)",
    "CREATE PUBLICATION vo2dr_pub",
    "CREATE TEXT SEARCH CONFIGURATION my_ts (COPY = english)",
    "CREATE TEXT SEARCH DICTIONARY my_dict (TEMPLATE = simple)",
    'CREATE COLLATION my_coll FROM "C"',
    "CREATE EXTENSION citext",
    "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE TYPE mood AS ENUM ('ok')",
    "CREATE OPERATOR === (FUNCTION = texteq, LEFTARG = text, RIGHTARG = text)",
    "CREATE FOREIGN DATA WRAPPER my_fdw",
    "CREATE SCHEMA s",
    "CREATE SEQUENCE seq",
])
def test_a_database_holding_any_user_object_is_not_empty(pg, statement):
    name = new_database(pg, "obj")
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute(statement)
    with pytest.raises(RestoreError, match="it is not empty"):
        check_target(Target.parse(pg.url(name)))


def test_a_fresh_database_is_empty_even_with_temporary_tables_open(pg):
    name = new_database(pg, "fresh")
    target = Target.parse(pg.url(name))
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute("CREATE TEMPORARY TABLE scratch (id int)")
        assert database_contents(target) == []
        assert check_target(target) is True


def test_names_over_63_bytes_are_refused(pg):
    with pytest.raises(ConfigError, match="is 64 bytes long"):
        Target.parse(pg.url("x" * 64))
    with pytest.raises(ConfigError, match="is 64 bytes long"):
        Target.parse(pg.url("ü" * 32))  # 32 characters, 64 bytes
    assert Target.parse(pg.url("x" * 63)).dbname == "x" * 63
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for made in (staging_name("ü" * 31, when), preserved_name("ü" * 31, when)):
        assert len(made.encode()) <= MAX_IDENTIFIER and made.startswith("ü")


@pytest.fixture
def killed_pg_restore(tmp_path, monkeypatch):
    """pg_restore that restores (into the real server) and is then killed with SIGKILL: a
    restore that fails after it wrote. ``pg_restore --list`` runs normally."""
    real = pgtools.pg_restore()
    wrapper = tmp_path / "pg_restore"
    wrapper.write_text("#!/bin/sh\n"
                       f'case " $* " in *" --list "*) exec "{real}" "$@";; esac\n'
                       f'"{real}" "$@"\n'
                       "kill -9 $$\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(pgtools, "pg_restore", lambda: str(wrapper))
    return wrapper


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_killed_pg_restore_leaves_an_existing_empty_target_unchanged(world, killed_pg_restore,
                                                                      jobs):
    name = new_database(world.pg, "keep")
    target = Target.parse(world.pg.url(name))
    with pytest.raises(RestoreError, match=f"pg_restore into '{name}_restore_.*' failed"):
        restore(world.settings, source="gcs", target_url=target.url, jobs=jobs)
    assert database_exists(world.pg, name)
    assert database_contents(target) == []
    assert databases(world.pg, f"{name}_") == []  # the run's own database was dropped
    # and a retry (with a working pg_restore) is not refused as "not empty"
    os.unlink(killed_pg_restore)


def test_a_killed_pg_restore_leaves_a_new_name_absent(world, killed_pg_restore):
    name = f"new_{world.source_db}"
    with pytest.raises(RestoreError, match="failed"):
        restore(world.settings, source="s3", target_url=world.pg.url(name), jobs=2)
    assert not database_exists(world.pg, name)


def test_restore_into_an_existing_empty_target_swaps_in_and_leaves_no_debris(world):
    name = new_database(world.pg, "swap")
    result = restore(world.settings, source="azure", target_url=world.pg.url(name), jobs=2)
    assert result.ok and result.database == name and not result.created_database
    assert table_checksums(world.pg.url(name)) == table_checksums(world.source_url)
    assert databases(world.pg, f"{name}_") == []


def test_jobs_beyond_the_servers_connection_slots_are_capped(world):
    with psycopg.connect(world.pg.url()) as conn:
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    name = f"jobs_{world.source_db}"
    result = restore(world.settings, source="s3", target_url=world.pg.url(name),
                     jobs=max_connections + 50)
    assert result.ok
    assert 1 < result.jobs < max_connections
    assert table_checksums(world.pg.url(name)) == table_checksums(world.source_url)


def test_jobs_default_from_the_cores_and_the_servers_slots(world, monkeypatch):
    """Without --jobs: one job per core (the fewer of this machine's and the server's
    max_worker_processes), capped by the free connection slots; a single transaction when that
    is one."""
    with psycopg.connect(world.pg.url()) as conn:
        workers = int(conn.execute("SHOW max_worker_processes").fetchone()[0])
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    name = f"jobs_default_{world.source_db}"
    result = restore(world.settings, source="s3", target_url=world.pg.url(name), jobs=None)
    assert result.ok
    assert result.jobs == min(3, workers)
    assert table_checksums(world.pg.url(name)) == table_checksums(world.source_url)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    name = f"jobs_one_{world.source_db}"
    result = restore(world.settings, source="s3", target_url=world.pg.url(name), jobs=None)
    assert result.ok and result.jobs == 1


def test_a_superuser_is_refused_unless_allowed(world, capsys, monkeypatch):
    """A dump can carry code that runs during the restore: not as a superuser by default."""
    from vo2dr.cli import main
    from vo2dr.restore import restore as restore_by_default

    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    name = f"su_{world.source_db}"
    code = main(["restore", "--source", "s3", "--target-url", world.pg.url(name)])
    err = capsys.readouterr().err
    assert code == 2
    assert "refusing to restore as 'postgres', a superuser" in err and "--allow-superuser" in err
    assert len(err.strip().splitlines()) == 1
    assert not database_exists(world.pg, name)
    with pytest.raises(RestoreError, match="a superuser"):
        restore_by_default(world.settings, source="s3", target_url=world.pg.url(name))
    assert not database_exists(world.pg, name)
    # as the role with CREATEDB that is not a superuser: restored
    result = restore_by_default(world.settings, source="s3", target_url=world.restorer_url(name))
    assert result.ok
    assert table_checksums(world.pg.url(name)) == table_checksums(world.source_url)


def test_the_drill_refuses_a_superuser_and_runs_as_its_own_role(world):
    from vo2dr.drill import run_drill

    from .conftest import with_settings

    as_superuser = with_settings(world, drill_database_url=world.pg.url())
    with pytest.raises(RestoreError, match="refusing to restore as 'postgres', a superuser"):
        run_drill(as_superuser.settings, data_classes=["important"], source="s3")
    with psycopg.connect(world.settings.drill_database_url) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone() == (False,)
    report = run_drill(world.settings, data_classes=["important"], source="s3")
    assert report.ok, report.to_json()


def test_replacing_an_empty_target_waits_for_ending_sessions_not_for_open_ones(pg):
    """The swap into an existing empty target terminates no session: it refuses while one is
    connected. A session whose client is gone stays listed until its backend exits (the
    restore's own row counts close just before the swap; on a busy server their backends
    linger): that one must not fail the swap. One still open must, renaming nothing."""
    from vo2dr.progress import QuietReporter
    from vo2dr.promote import replace_empty

    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    empty, restored = new_database(pg, "empty"), new_database(pg, "restored")
    with psycopg.connect(pg.url(restored), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
    # A client killed while its backend is busy: the backend ends only when the sleep does.
    client = subprocess.Popen([sys.executable, "-c", "import psycopg, sys; psycopg.connect("
                               "sys.argv[1]).execute('SELECT pg_sleep(2)')", pg.url(restored)])
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        for _ in range(600):
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                            "query LIKE 'SELECT pg_sleep%%'", (restored,)).fetchone()[0]:
                break
            time.sleep(0.05)
    client.kill()
    client.wait()
    out = replace_empty(Target.parse(pg.url(empty)), restored, when, QuietReporter())
    assert out["original"] == empty and out["preserved_as"] is None
    assert not database_exists(pg, restored)
    assert database_contents(Target.parse(pg.url(empty))) != []  # the restored copy

    empty, restored = new_database(pg, "empty"), new_database(pg, "restored")
    with psycopg.connect(pg.url(empty), autocommit=True) as held:
        with pytest.raises(RestoreError, match=r"1 session\(s\) are connected .*nothing was "):
            replace_empty(Target.parse(pg.url(empty)), restored, when, QuietReporter())
        held.execute("SELECT 1")  # not terminated
    assert database_exists(pg, empty) and database_exists(pg, restored)
    assert database_contents(Target.parse(pg.url(empty))) == []
