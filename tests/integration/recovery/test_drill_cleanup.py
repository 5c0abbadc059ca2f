"""The drill drops the scratch databases that killed drills left behind, and nothing else: not
a look-alike name, not a recent one (a drill may still be running), not one someone is
connected to, on the real embedded PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from vo2dr import drill
from vo2dr.cli import main
from vo2dr.dbadmin import Target
from vo2dr.drill import drop_stale_scratch, scratch_name

from dev import servers

from .conftest import RESTORER, STRATEGY, World, build_world, database_exists, ensure_restorer

pytestmark = pytest.mark.integration

AGE = timedelta(hours=4)
NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def make_db(pg: servers.Postgres) -> Iterator[Callable[[str], str]]:
    """Create databases by exact name; every one is dropped again after the test."""
    made: list[str] = []
    ensure_restorer(pg)

    def make(name: str) -> str:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            # owned by the drill's role, as the databases of its earlier runs are
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(RESTORER)))
        made.append(name)
        return name

    yield make
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


@pytest.fixture
def server(pg: servers.Postgres) -> Target:
    return Target.parse(pg.url(), "VO2DR_DRILL_DATABASE_URL")


@pytest.fixture
def intruder(pg: servers.Postgres, monkeypatch) -> Iterator[Callable[[str], None]]:
    """Someone connects to a database right after the cleanup listed it as unconnected: the
    race its plain DROP DATABASE must lose without raising."""
    victims: list[str] = []
    sessions: list[psycopg.Connection] = []
    connect = Target.connect

    class Intruding:
        def __init__(self, conn: psycopg.Connection) -> None:
            self._conn = conn

        def __getattr__(self, name: str):
            return getattr(self._conn, name)

        def __enter__(self):
            self._conn.__enter__()
            return self

        def __exit__(self, *exc):
            return self._conn.__exit__(*exc)

        def execute(self, query, params=None):
            cur = self._conn.execute(query, params)
            if query is not drill._UNCONNECTED_SCRATCH:
                return cur
            rows = cur.fetchall()
            sessions.extend(psycopg.connect(pg.url(v)) for v in victims)
            return rows

    def intruding_connect(self: Target, **kwargs):
        return Intruding(connect(self, **kwargs))

    monkeypatch.setattr(Target, "connect", intruding_connect)
    yield victims.append
    for s in sessions:
        s.close()


def test_drops_only_stale_well_named_databases(make_db, server, pg):
    stale = [make_db("vo2dr_drill_full_20200101_000000"),
             make_db(scratch_name("critical", NOW - AGE - timedelta(seconds=1)))]
    kept = [
        make_db(scratch_name("important", NOW - timedelta(minutes=10))),  # a running drill
        make_db(scratch_name("full", NOW - AGE)),  # exactly at the limit: not older
        make_db("vo2dr_drill_notes"),
        make_db("vo2dr_drill_full_20200101_000000_keep"),
        make_db("vo2dr_drill_full_20200231_000000"),  # the shape of a time, but no time
        make_db("vo2dr_drill_nightly_20200101_000000"),  # not a data class
        make_db("vo2dr_drill_full_20200101_000000\n"),
        make_db("Vo2dr_drill_full_20200101_000000"),
        make_db("cleanup_unrelated_20200101_000000"),
    ]
    dropped, errors = drop_stale_scratch(server, NOW, AGE)
    assert errors == []
    assert sorted(dropped) == sorted(stale)
    for name in stale:
        assert not database_exists(pg, name)
    for name in kept:
        assert database_exists(pg, name), name
    assert drop_stale_scratch(server, NOW, AGE) == ([], [])


def test_keeps_a_stale_database_someone_is_connected_to(make_db, server, pg):
    name = make_db("vo2dr_drill_critical_20200101_000001")
    with psycopg.connect(pg.url(name)) as conn:
        conn.execute("SELECT 1")
        assert drop_stale_scratch(server, NOW, AGE) == ([], [])
        assert database_exists(pg, name)
    assert drop_stale_scratch(server, NOW, AGE) == ([name], [])


def test_a_connection_opened_after_the_listing_makes_the_drop_fail_not_raise(
        make_db, server, pg, intruder):
    name = make_db("vo2dr_drill_full_20200101_000002")
    intruder(name)
    dropped, errors = drop_stale_scratch(server, NOW, AGE)
    assert dropped == []
    assert len(errors) == 1 and name in errors[0] and "being accessed" in errors[0], errors
    assert database_exists(pg, name)


def test_an_unreachable_server_is_reported_not_raised():
    server = Target.parse(f"postgresql://postgres@127.0.0.1:{servers.free_port()}/postgres")
    dropped, errors = drop_stale_scratch(server, NOW, AGE)
    assert dropped == [] and len(errors) == 1
    assert errors[0].startswith("cannot clean up stale scratch databases: cannot connect")


@pytest.fixture(scope="module")
def important_world(pg, module_env, recovery_keys) -> World:
    return build_world(pg, recovery_keys, ("important",))


def test_the_drill_reports_what_it_cleaned_up_and_still_passes(
        important_world, make_db, pg, monkeypatch, capsys, intruder):
    world = important_world
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    # All the strategy's RTOs together (540 minutes) are the age after which no drill can
    # still be running.
    bound = sum(c["rtoMinutes"] for c in STRATEGY["dataClasses"].values())
    now = datetime.now(UTC)
    stale = make_db(scratch_name("full", now - timedelta(minutes=bound + 1)))
    busy = make_db(scratch_name("important", now - timedelta(minutes=bound + 2)))
    recent = make_db(scratch_name("critical", now - timedelta(minutes=bound - 5)))
    intruder(busy)
    code = main(["drill", "--data-class", "important", "--source", "s3"])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 0 and report["ok"], err
    assert stale in report["stale_dropped"] and busy not in report["stale_dropped"]
    assert recent not in report["stale_dropped"]
    assert [e for e in report["stale_errors"] if busy in e], report["stale_errors"]
    assert not database_exists(pg, stale)
    assert database_exists(pg, busy) and database_exists(pg, recent)
    (c,) = report["classes"]
    assert c["ok"] and c["dropped"] and not database_exists(pg, c["scratch_database"])
    assert f"vo2dr drill: dropped {stale}, left behind by an earlier drill" in err
    assert f"vo2dr drill: warning: cannot drop stale scratch database {busy}: " in err
