"""The unpacked Lambda artifact alone (as ``test_artifact.py`` runs it) backs up a PostgreSQL 15
server and drills that backup into a scratch database on a PostgreSQL 15 server: pg_dump 18 from
the artifact reads the older server, and the restore runs the artifact's pg_restore adapted for
servers before 17 (:mod:`vo2dr.pgcompat`), written next to the artifact's own libraries' link."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from dev import localcloud, seed, servers
from infra import packaging

from .test_artifact import unpack

pytestmark = pytest.mark.integration

RUNNER = r"""
import json, sys
sys.path[:0] = [sys.argv[1]]
from vo2dr import handlers, pgcompat
backup = handlers.backup_handler({"data_class": "critical"}, None)
drill = handlers.drill_handler({"data_classes": ["critical"], "source": "gcs"}, None)
print("RESULT " + json.dumps({"backup": backup, "drill": drill,
                              "adapted": str(pgcompat.patched_pg_restore())}))
"""


@pytest.fixture(scope="module")
def pg15() -> Iterator[servers.Postgres]:
    with servers.postgres(major=15) as server:
        yield server


@pytest.fixture(scope="module")
def own_clouds() -> Iterator[list[servers.Service]]:
    """Emulators of this module's own: localcloud.create() makes the stack's fixed bucket names,
    which test_artifact.py already made in the session's emulators."""
    with servers.moto_server() as moto, servers.gcs_emulator() as gcs, \
            servers.azurite() as azurite:
        yield [moto, gcs, azurite]


def drill_role_url(server: servers.Postgres) -> str:
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'vo2dr_drill'").fetchone():
            conn.execute("CREATE ROLE vo2dr_drill LOGIN CREATEDB NOSUPERUSER")
    return server.url().replace("//postgres@", "//vo2dr_drill@", 1)


def test_artifact_backs_up_and_drills_a_postgresql_15_server(pg15, own_clouds, python_of_lambda,
                                                              tmp_path):
    task = tmp_path / "task"
    # As the program builds it: the stack's strategy inside, run on the Lambda runtime's Python.
    unpack(packaging.build("x86_64", strategy=localcloud.load_stack().strategy.to_json()), task)
    (tmp_path / "keys").mkdir()
    cloud = localcloud.create(own_clouds, tmp_path / "keys")
    db_url = seed.create_database(pg15.url(), "artifact15")
    seed.seed(db_url, scale=seed.scale_for_mb(0.5))
    env = {k: v for k, v in cloud.env.items() if k not in ("VO2DR_STACK_FILE", "VO2DR_STRATEGY")}
    env.update({
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),  # like Lambda's /tmp, the only writable place
        "DATABASE_URL": db_url,
        # The drill refuses a superuser: it restores as a CREATEDB role that is not one.
        "VO2DR_DRILL_DATABASE_URL": drill_role_url(pg15),
        "VO2DR_STACK_FILE": str(task / packaging.STRATEGY_FILE),
    })
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run([str(python_of_lambda), "-I", "-S", "-c", RUNNER, str(task)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))

    assert result["backup"]["ok"] is True
    assert result["backup"]["server_version"].startswith("15.")
    (c,) = result["drill"]["classes"]
    assert c["ok"] and c["dropped"], c["errors"]
    assert c["source_server_version"].startswith("15.")
    assert c["scratch_server_version"].startswith("15.")
    assert all(t["manifest"] == t["restored"] for t in c["tables"].values())
    assert result["adapted"].startswith(str(tmp_path / "tmp"))
