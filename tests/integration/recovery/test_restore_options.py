"""``restore --keep-owners`` and the spool-space check, against a real backup in the emulators
and the embedded PostgreSQL."""

from __future__ import annotations

import json
import shutil
import uuid
from collections import namedtuple

import psycopg
import pytest
from vo2dr import restore as restore_module
from vo2dr.cli import main
from vo2dr.exitcodes import ExitCode

from .conftest import World, build_world, cli_argv, database_exists, seed_database

pytestmark = pytest.mark.integration

OWNER = f"vo2dr_owner_{uuid.uuid4().hex[:8]}"
READER = f"vo2dr_reader_{uuid.uuid4().hex[:8]}"


def seed_with_owner(url: str) -> None:
    """The usual schema, plus a table owned by a role of its own with a grant to another."""
    seed_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE owned_rows (id int PRIMARY KEY); "
                     f"INSERT INTO owned_rows VALUES (1), (2); "
                     f"ALTER TABLE owned_rows OWNER TO {OWNER}; "
                     f"GRANT SELECT ON owned_rows TO {READER}")


@pytest.fixture(scope="module")
def owned_world(pg, module_env, recovery_keys) -> World:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {OWNER} NOLOGIN")  # roles are the server's: they exist
        conn.execute(f"CREATE ROLE {READER} NOLOGIN")  # on the restore target too
    return build_world(pg, recovery_keys, ("full",), seed=seed_with_owner, prefix="own")


def owner_and_grants(url: str) -> tuple[str, list[str]]:
    with psycopg.connect(url) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'owned_rows'"
                             ).fetchone()[0]
        grantees = [r[0] for r in conn.execute(
            "SELECT grantee FROM information_schema.role_table_grants "
            "WHERE table_name = 'owned_rows' AND privilege_type = 'SELECT' ORDER BY 1")]
    return owner, grantees


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(cli_argv(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def use_env(world: World, monkeypatch) -> None:
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)


def test_keep_owners_restores_owners_and_grants_and_the_default_does_not(owned_world, capsys,
                                                                         monkeypatch):
    use_env(owned_world, monkeypatch)
    source = owner_and_grants(owned_world.source_url)
    assert source == (OWNER, sorted([OWNER, READER]))
    kept = f"kept_{owned_world.source_db}"
    code, doc, err = run_cli(capsys, "restore", "--source", "gcs", "--no-progress",
                             "--keep-owners", "--target-url", owned_world.pg.url(kept))
    assert code == 0, err
    assert doc["rows"]["public.owned_rows"] == 2
    assert owner_and_grants(owned_world.pg.url(kept)) == source

    plain = f"plain_{owned_world.source_db}"
    code, _, err = run_cli(capsys, "restore", "--source", "gcs", "--no-progress",
                           "--target-url", owned_world.pg.url(plain))
    assert code == 0, err
    restorer = psycopg.connect(owned_world.pg.url()).info.user
    # --no-owner --no-privileges: the restoring role owns it, and only it has grants.
    assert owner_and_grants(owned_world.pg.url(plain)) == (restorer, [restorer])


def test_too_little_spool_space_is_refused_before_the_target_is_created(owned_world, capsys,
                                                                        monkeypatch, tmp_path):
    use_env(owned_world, monkeypatch)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setenv("VO2DR_SPOOL_DIR", str(spool))
    asked = []
    usage = namedtuple("usage", "total used free")

    def nearly_full(path):
        asked.append(str(path))
        return usage(10**9, 10**9 - 1000, 1000)  # 1000 bytes free

    real_disk_usage = shutil.disk_usage
    monkeypatch.setattr(restore_module.shutil, "disk_usage", nearly_full)
    target = f"nospace_{owned_world.source_db}"
    code, _, err = run_cli(capsys, "restore", "--source", "s3", "--no-progress",
                           "--target-url", owned_world.pg.url(target))
    assert code == ExitCode.NO_SPACE
    assert "not enough space for the spool file in " in err and "1000 bytes free" in err
    assert "point VO2DR_SPOOL_DIR (or --spool-dir) at a larger volume" in err
    assert asked and all(p.startswith(str(spool)) for p in asked)  # the setting was used
    assert not database_exists(owned_world.pg, target)
    assert list(spool.iterdir()) == []  # the spool directory was removed again

    monkeypatch.setattr(restore_module.shutil, "disk_usage", real_disk_usage)
    code, _, err = run_cli(capsys, "restore", "--source", "s3", "--no-progress",
                           "--spool-dir", str(spool), "--target-url",
                           owned_world.pg.url(target))
    assert code == 0, err
