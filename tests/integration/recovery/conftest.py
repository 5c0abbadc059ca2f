"""Fixtures for the recovery tests: a small VO2Max-like source database (its own schema, with
the features a restore must reproduce: two schemas, an enum (used by a table of the important
class and by one only in full), serial and identity keys, foreign keys, an index, a view,
jsonb), fresh buckets in the three emulators, and backups taken with
the real backup job (``run_backup``).

``world`` is built once per test module (one source, one backup of each class) for the tests
that only read it; tests that damage copies or stop servers build their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import psycopg
import pytest
from vo2dr.backup import run_backup
from vo2dr.settings import Settings
from vo2dr.stores import Access, open_store
from vo2dr.stores.base import BackupStore

from dev import servers
from tests import signing_keys
from tests.buckets import make_buckets
from tests.cli_env import store_env

CRITICAL = ["users", "training_protocols", "vo2max_calculations", "session_metrics"]
IMPORTANT = ["app_config", "app.audit_logs"]
STRATEGY = {"dataClasses": {
    "critical": {"tables": CRITICAL, "rpoMinutes": 15, "rtoMinutes": 60, "sanityQueries": [
        "SELECT count(*) > 0 FROM users",
        "SELECT count(*) = 0 FROM vo2max_calculations WHERE user_id NOT IN (SELECT id FROM users)",
    ]},
    "important": {"tables": IMPORTANT, "rpoMinutes": 60, "rtoMinutes": 240,
                  "sanityQueries": ["SELECT count(*) > 0 FROM app_config"]},
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00",
             "sanityQueries": ["SELECT count(*) > 0 FROM session_metrics",
                               "SELECT count(*) > 0 FROM app.system_logs"]},
}}

SCHEMA = """
CREATE SCHEMA app;
CREATE TYPE app.log_level AS ENUM ('debug', 'info', 'warn', 'error');
CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, name text,
                    created_at timestamptz NOT NULL DEFAULT '2025-01-01');
CREATE TABLE training_protocols (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                 name text NOT NULL, definition jsonb NOT NULL);
CREATE TABLE vo2max_calculations (id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users, measured_at timestamptz NOT NULL,
    vo2max numeric(5,2) NOT NULL CHECK (vo2max > 0));
CREATE INDEX vo2max_by_user ON vo2max_calculations (user_id, measured_at);
CREATE TABLE session_metrics (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,
    protocol_id int REFERENCES training_protocols, samples jsonb NOT NULL);
CREATE TABLE app_config (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE app.audit_logs (id bigserial PRIMARY KEY, actor text, action text NOT NULL,
                             at timestamptz NOT NULL,
                             level app.log_level NOT NULL DEFAULT 'info');
CREATE TABLE app.system_logs (id bigserial PRIMARY KEY, level app.log_level NOT NULL,
                              line text);
CREATE VIEW user_best_vo2max AS
  SELECT user_id, max(vo2max) AS best FROM vo2max_calculations GROUP BY user_id;
"""

SEED = [
    "INSERT INTO users (email, name) SELECT 'athlete' || g || '@vo2max.example', "
    "'Athlete ' || g FROM generate_series(1, 120) g",
    "INSERT INTO training_protocols (name, definition) SELECT 'Norwegian 4x4 v' || g, "
    "jsonb_build_object('intervals', 4, 'minutes', 4 + g) FROM generate_series(1, 6) g",
    "INSERT INTO vo2max_calculations (user_id, measured_at, vo2max) SELECT 1 + g % 120, "
    "timestamptz '2025-01-01' + g * interval '1 hour', 30 + (g % 400) / 10.0 "
    "FROM generate_series(1, 600) g",
    "INSERT INTO session_metrics (user_id, protocol_id, samples) SELECT 1 + g % 120, 1 + g % 6, "
    "jsonb_build_object('hr', jsonb_build_array(120 + g % 60, 150 + g % 40), 'note', md5(g::text))"
    " FROM generate_series(1, 1500) g",
    "INSERT INTO app_config VALUES ('feature_flags', '{\"dashboard\": true}'), "
    "('zones', '{\"z2\": [0.6, 0.7]}')",
    "INSERT INTO app.audit_logs (actor, action, at) SELECT 'athlete' || g, 'login', "
    "timestamptz '2025-02-01' + g * interval '1 minute' FROM generate_series(1, 300) g",
    "INSERT INTO app.system_logs (level, line) SELECT (ARRAY['debug','info','warn','error'])"
    "[1 + g % 4]::app.log_level, 'GET /health 200' FROM generate_series(1, 80) g",
]

# The repository's staging stack file: the report reads its schedules, lifecycle and targets.
ROOT_STACK = Path(__file__).resolve().parents[3] / "Pulumi.staging.yaml"

ALL_TABLES = ["app.audit_logs", "app.system_logs", "public.app_config", "public.session_metrics",
              "public.training_protocols", "public.users", "public.vo2max_calculations"]


# Restores and drills refuse a superuser by default (a dump can carry code that runs during the
# restore): the drill server, and the tests that restore as the tool should, use this role.
RESTORER = "vo2dr_restorer"


def ensure_restorer(pg: servers.Postgres) -> None:
    """A login role with CREATEDB that is not a superuser (trust auth: no password)."""
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RESTORER,)).fetchone():
            return
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            conn.execute(f"CREATE ROLE {RESTORER} LOGIN CREATEDB NOSUPERUSER")


def restorer_url(pg: servers.Postgres, database: str = "postgres") -> str:
    return pg.url(database).replace("//postgres@", f"//{RESTORER}@", 1)


def restore_as_superuser(settings: Settings, **kwargs):
    """``restore()`` as the test server's superuser (``postgres``), for the tests about
    something else; the default refusal is tested in test_target_safety.py."""
    from vo2dr.restore import restore

    return restore(settings, allow_superuser=True, **kwargs)


def cli_argv(argv: tuple[str, ...]) -> list[str]:
    """A test's CLI arguments; ``restore`` runs as the test server's superuser (see above)."""
    return [*argv, "--allow-superuser"] if argv[:1] == ("restore",) else list(argv)


def new_database(pg: servers.Postgres, prefix: str = "src") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def seed_database(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for statement in SEED:
            conn.execute(statement)


def database_exists(pg: servers.Postgres, name: str) -> bool:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def user_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")]


def table_checksums(url: str, tables: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """Per table: row count and an ordered checksum of every row's text."""
    out = {}
    with psycopg.connect(url) as conn:
        for name in tables or user_tables(url):
            schema, table = name.split(".", 1)
            out[name] = conn.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, \',\' ORDER BY t::text), \'\'))'
                f' FROM "{schema}"."{table}" t').fetchone()
    return out


SCHEMA_QUERIES = {
    "columns": "SELECT table_schema, table_name, column_name, data_type, udt_name, "
               "column_default, is_nullable, is_identity, identity_generation "
               "FROM information_schema.columns "
               "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                   "FROM pg_constraint WHERE connamespace IN "
                   "(SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'app')) "
                   "ORDER BY 1, 2",
    "indexes": "SELECT schemaname, indexname, indexdef FROM pg_indexes "
               "WHERE schemaname IN ('public', 'app') ORDER BY 1, 2",
    "views": "SELECT schemaname, viewname, definition FROM pg_views "
             "WHERE schemaname IN ('public', 'app') ORDER BY 1, 2",
    "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences "
                 "WHERE schemaname IN ('public', 'app') ORDER BY 1, 2",
    "types": "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
             "ORDER BY 1, e.enumsortorder",
}


def schema_signature(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {k: conn.execute(q).fetchall() for k, q in SCHEMA_QUERIES.items()}


# -- clouds ----------------------------------------------------------------------------------------

@dataclass
class World:
    """A source database, its backups in the three clouds, and how to reach them."""

    pg: servers.Postgres
    source_db: str
    settings: Settings
    recovery_private_pem: bytes
    backups: dict[str, str] = field(default_factory=dict)  # data class -> backup id
    backup_times: dict[str, datetime] = field(default_factory=dict)

    @property
    def source_url(self) -> str:
        return self.pg.url(self.source_db)

    def store(self, name: str) -> BackupStore:
        return open_store(name, self.settings, Access.WRITE)

    def stores(self) -> dict[str, BackupStore]:
        return {n: open_store(n, self.settings, Access.WRITE) for n in ("s3", "gcs", "azure")}

    def env(self) -> dict[str, str]:
        """The CLI's settings as environment variables."""
        return {**store_env(self.settings),
                "VO2DR_SIGNING_PUBLIC_KEYS": self.settings.signing_public_keys,
                "VO2DR_DRILL_DATABASE_URL": self.settings.drill_database_url}

    def restorer_url(self, database: str = "postgres") -> str:
        """``database`` on the test server as the non-superuser restore role."""
        return restorer_url(self.pg, database)

    def backup(self, data_class: str, when: datetime | None = None) -> str:
        summary = run_backup(self.settings, data_class, now=when)
        assert summary["ok"], summary
        self.backups[data_class] = summary["backup_id"]
        self.backup_times[data_class] = datetime.strptime(
            summary["timestamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return summary["backup_id"]


@pytest.fixture(scope="session")
def recovery_keys(session_recovery_keys) -> tuple[bytes, bytes]:
    return session_recovery_keys


def cloud_variables(moto, gcs, azurite) -> dict[str, str]:
    return {**moto.env, **gcs.env, **azurite.env}


def _clean_env(mp: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for var in list(os.environ):
        if var.startswith(("AWS_", "GOOGLE_", "AZURE_", "VO2DR_")) or var in (
                "STORAGE_EMULATOR_HOST", "DATABASE_URL"):
            mp.delenv(var, raising=False)
    for k, v in env.items():
        mp.setenv(k, v)


def build_world(pg, recovery_keys, classes=("full",), *,
                seed: Callable[[str], None] = seed_database, prefix: str = "src",
                strategy: dict | None = None) -> World:
    """A fresh source database (``seed`` fills it from its URL), fresh buckets and KMS key, and
    one backup of each of ``classes`` under ``strategy`` (default: STRATEGY)."""
    kms_arn = boto3.client("kms").create_key(Description="vo2dr recovery tests")[
        "KeyMetadata"]["Arn"]
    b = make_buckets("vo2dr-rec")
    source = new_database(pg, prefix)
    seed(pg.url(source))
    ensure_restorer(pg)
    settings = Settings(database_url=pg.url(source), environment="staging", s3_bucket=b.s3,
                        gcs_bucket=b.gcs, azure_container_url=b.azure_url, kms_key_id=kms_arn,
                        recovery_public_key=recovery_keys[1].decode(), **signing_keys.SETTINGS,
                        strategy_json=json.dumps(strategy or STRATEGY),
                        drill_database_url=restorer_url(pg))
    world = World(pg=pg, source_db=source, settings=settings,
                  recovery_private_pem=recovery_keys[0])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    for i, dc in enumerate(classes):
        world.backup(dc, start + timedelta(seconds=i))
    return world


@pytest.fixture(scope="module")
def module_env(moto, gcs, azurite) -> Iterator[dict[str, str]]:
    """``cloud_env`` for a whole module (the session's servers)."""
    env = cloud_variables(moto, gcs, azurite)
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp, env)
        yield env


@pytest.fixture(scope="module")
def world(pg, module_env, recovery_keys) -> World:
    """One source and one backup of each data class, shared by a module's read-only tests."""
    return build_world(pg, recovery_keys, ("full", "critical", "important"))


@pytest.fixture
def fresh_world(pg, cloud_env, recovery_keys) -> World:
    """A world of its own (full backup only), for tests that damage it."""
    return build_world(pg, recovery_keys, ("full",))


def with_settings(world: World, **changes) -> World:
    return replace(world, settings=replace(world.settings, **changes))
