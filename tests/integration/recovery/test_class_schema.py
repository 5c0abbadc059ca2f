"""A data-class backup restores standalone into an empty database, whatever its tables depend on.

The source is shaped like a Prisma app: the critical tables use enum types (one with a quoted,
mixed-case name), a domain, a composite type, a column of an extension's type (citext), a default
calling a user function, a check constraint calling another, a trigger function, an index, a
foreign key between critical tables and one to a table outside the class. A ``critical`` backup
(the real backup job) then verifies, restores into an empty database with exactly the critical
tables and their rows, restores one table alone with ``--table``, and passes the drill.
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from vo2dr.archive import read_toc
from vo2dr.cli import main
from vo2dr.drill import run_drill
from vo2dr.restore import restore
from vo2dr.trust import Trust
from vo2dr.verify import archive_tables, toc_listing, verify_copy

from .conftest import World, build_world, table_checksums, user_tables

pytestmark = pytest.mark.integration

CRITICAL = ["users", "app.workouts"]
CRITICAL_QUALIFIED = ["app.workouts", "public.users"]
OTHERS = ["app.devices", "public.logs"]
STRATEGY = {"dataClasses": {
    "critical": {"tables": CRITICAL, "rpoMinutes": 15, "rtoMinutes": 60, "sanityQueries": [
        "SELECT count(*) = 40 FROM app.workouts WHERE sport = 'bike'",
        "SELECT count(*) = 30 FROM users WHERE role = 'ADMIN'",
    ]},
    "important": {"tables": ["logs"], "rpoMinutes": 60, "rtoMinutes": 240},
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
}}

SCHEMA = r"""
CREATE EXTENSION citext;
CREATE SCHEMA app;
CREATE TYPE "Role" AS ENUM ('USER', 'COACH', 'ADMIN');
CREATE TYPE app.sport AS ENUM ('run', 'bike', 'row');
CREATE DOMAIN app.pct AS numeric(5,2) CHECK (VALUE BETWEEN 0 AND 100);
CREATE TYPE app.zone AS (lo int, hi int);
CREATE SEQUENCE app.code_seq;
CREATE FUNCTION app.new_code() RETURNS text LANGUAGE sql
  AS $$ SELECT 'C-' || lpad(nextval('app.code_seq')::text, 6, '0') $$;
CREATE FUNCTION app.valid_email(e text) RETURNS boolean LANGUAGE sql IMMUTABLE
  AS $$ SELECT position('@' in e) > 1 $$;
CREATE FUNCTION app.default_effort() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN NEW.effort := coalesce(NEW.effort, 50); RETURN NEW; END $$;
CREATE TABLE users (id serial PRIMARY KEY,
    email citext NOT NULL UNIQUE CHECK (app.valid_email(email::text)),
    role "Role" NOT NULL DEFAULT 'USER', code text NOT NULL DEFAULT app.new_code());
CREATE TABLE app.devices (id serial PRIMARY KEY, model text NOT NULL, sport app.sport);
CREATE TABLE app.workouts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id int NOT NULL REFERENCES users, device_id int REFERENCES app.devices,
    sport app.sport NOT NULL, effort app.pct, zone app.zone);
CREATE INDEX workouts_by_sport ON app.workouts (sport, user_id);
CREATE TRIGGER workouts_effort BEFORE INSERT ON app.workouts
  FOR EACH ROW EXECUTE FUNCTION app.default_effort();
CREATE TABLE logs (id serial PRIMARY KEY, user_id int REFERENCES users, line text);
CREATE VIEW admins AS SELECT id, email FROM users WHERE role = 'ADMIN';
"""

SEED = [
    "INSERT INTO users (email, role) SELECT 'Athlete' || g || '@VO2max.example', "
    "(ARRAY['USER','COACH','ADMIN'])[1 + g % 3]::\"Role\" FROM generate_series(1, 90) g",
    "INSERT INTO app.devices (model, sport) SELECT 'watch ' || g, 'run' "
    "FROM generate_series(1, 3) g",
    "INSERT INTO app.workouts (user_id, device_id, sport, effort, zone) SELECT 1 + g % 90, "
    "1 + g % 3, (ARRAY['run','bike','row'])[1 + g % 3]::app.sport, "
    "CASE WHEN g % 4 = 0 THEN NULL ELSE g % 100 END, ROW(g % 5, g % 5 + 1)::app.zone "
    "FROM generate_series(1, 120) g",
    "INSERT INTO logs (user_id, line) SELECT 1 + g % 90, 'secret log line ' || g "
    "FROM generate_series(1, 25) g",
]


def seed_prisma(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for statement in SEED:
            conn.execute(statement)


@pytest.fixture(scope="module")
def prisma_world(pg, module_env, recovery_keys) -> World:
    return build_world(pg, recovery_keys, ("critical",), seed=seed_prisma, prefix="prisma",
                       strategy=STRATEGY)


def test_the_archive_has_the_whole_schema_and_only_the_class_data(prisma_world, tmp_path):
    store = prisma_world.store("gcs")
    from vo2dr.catalog import build_catalog

    entry = build_catalog({"gcs": store}, "staging").latest("critical", store="gcs")
    spool = tmp_path / "critical.dump"
    with open(spool, "wb") as fh:
        result = verify_copy(store, entry, trust=Trust.from_settings(prisma_world.settings),
                             spool=fh)
    assert result.ok, result.problems
    assert result.tables == CRITICAL_QUALIFIED
    assert result.manifest.table_rows() == {"app.workouts": 120, "public.users": 90}
    listing = toc_listing(spool)
    tables, data = archive_tables(read_toc(spool))
    assert tables == set(CRITICAL_QUALIFIED + OTHERS)  # every definition ...
    assert data == set(CRITICAL_QUALIFIED)  # ... data for the class only
    for needle in ("TYPE public Role", "TYPE app sport", "DOMAIN app pct", "TYPE app zone",
                   "FUNCTION app new_code()", "FUNCTION app valid_email(text)",
                   "EXTENSION - citext", "SCHEMA - app"):
        assert needle in listing, needle
    plain = spool.read_bytes()
    assert b"secret log line" not in plain and b"watch 1" not in plain
    assert b"Athlete1@VO2max.example" in plain


def test_verify_passes_in_every_store(prisma_world, capsys, monkeypatch):
    for k, v in prisma_world.env().items():
        monkeypatch.setenv(k, v)
    code = main(["verify", "--data-class", "critical", "--source", "all"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert [c["store"] for c in doc["copies"]] == ["s3", "gcs", "azure"]
    assert all(c["ok"] and c["tables"] == CRITICAL_QUALIFIED for c in doc["copies"])


def test_critical_backup_restores_into_an_empty_database(prisma_world):
    w = prisma_world
    target = w.restorer_url(f"crit_{w.source_db}")
    result = restore(w.settings, source="s3", target_url=target, data_class="critical")
    assert result.ok and result.created_database, result.problems
    assert result.tables == CRITICAL_QUALIFIED
    # exactly the critical tables, no empty copy of the others, and their rows, in order
    assert sorted(user_tables(target)) == CRITICAL_QUALIFIED
    assert table_checksums(target) == table_checksums(w.source_url, CRITICAL_QUALIFIED)
    with psycopg.connect(target, autocommit=True) as conn:
        assert [r[0] for r in conn.execute(
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = '\"Role\"'::regtype "
            "ORDER BY enumsortorder")] == ["USER", "COACH", "ADMIN"]
        # the default calls the user function (and its sequence came along at its value)
        code = conn.execute("INSERT INTO users (email) VALUES ('new@x') RETURNING code, role, "
                            "id").fetchone()
        assert code == ("C-000091", "USER", 91)
        assert conn.execute("SELECT count(*) FROM users WHERE email = 'ATHLETE1@vo2max.EXAMPLE'"
                            ).fetchone()[0] == 1  # citext compares case-insensitively
        with pytest.raises(psycopg.errors.CheckViolation):  # check calling a function
            conn.execute("INSERT INTO users (email) VALUES ('no-at-sign')")
        # the trigger, the identity and the composite type
        row = conn.execute("INSERT INTO app.workouts (user_id, sport, zone) VALUES "
                           "(1, 'row', '(2,3)') RETURNING id, effort, (zone).hi").fetchone()
        assert row == (121, 50, 3)
        with pytest.raises(psycopg.errors.CheckViolation):  # the domain's check
            conn.execute("INSERT INTO app.workouts (user_id, sport, effort) VALUES (1, 'run', 101)")
        cons = {r[0] for r in conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'app.workouts'::regclass")}
        assert "workouts_user_id_fkey" in cons  # between two critical tables: kept
        assert "workouts_device_id_fkey" not in cons  # to a table outside the class: left out
        assert conn.execute("SELECT to_regclass('app.workouts_by_sport')").fetchone()[0]
        assert conn.execute("SELECT to_regclass('public.admins')").fetchone()[0] is None


def test_table_restore_of_one_critical_table(prisma_world, capsys, monkeypatch):
    w = prisma_world
    for k, v in w.env().items():
        monkeypatch.setenv(k, v)
    target = w.restorer_url(f"one_{w.source_db}")  # as the non-superuser restore role
    code = main(["restore", "--source", "azure", "--data-class", "critical",
                 "--target-url", target, "--table", "app.workouts"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["tables"] == ["app.workouts"]
    assert re.search(r"leaving out foreign key\(s\).*app\.workouts workouts_device_id_fkey", err)
    assert user_tables(target) == ["app.workouts"]
    assert table_checksums(target) == table_checksums(w.source_url, ["app.workouts"])
    with psycopg.connect(target, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM app.workouts WHERE sport = 'bike'"
                            ).fetchone()[0] == 40


def test_drill_passes_for_the_class(prisma_world):
    w = prisma_world
    report = run_drill(w.settings, data_classes=["critical"], stores=w.stores())
    assert report.ok, report.to_json()
    (c,) = report.classes
    assert c.dropped and c.within_rto
    assert c.tables == {"app.workouts": {"manifest": 120, "restored": 120},
                        "public.users": {"manifest": 90, "restored": 90}}
    assert [s["ok"] for s in c.sanity] == [True, True]
