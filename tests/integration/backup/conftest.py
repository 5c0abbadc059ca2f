"""Fixtures for the backup job's integration tests: a small VO2Max-like database (created
here, independent of dev/seed.py), a KMS key and a recovery key pair, fresh buckets in the
three emulators, and the settings that tie them together."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import boto3
import psycopg
import pytest
import zstandard
from vo2dr import crypto, pgtools
from vo2dr.settings import Settings
from vo2dr.stores import Access, open_stores

from tests import signing_keys
from tests.buckets import Buckets, make_buckets

CRITICAL = ["users", "training_protocols", "user_protocol_assignments", "vo2max_calculations",
            "session_metrics", "biomarker_measurements"]
IMPORTANT = ["app_config", "audit_logs", "analytics_events"]
STRATEGY = json.dumps({"dataClasses": {
    "critical": {"tables": CRITICAL, "rpoMinutes": 15, "rtoMinutes": 60},
    "important": {"tables": IMPORTANT, "rpoMinutes": 60, "rtoMinutes": 240},
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
}, "retention": {"intradayHours": 48}, "immutability": {"mode": "governance"}})  # as staging

SCHEMA = """
CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, name text,
                    birth_year int, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE training_protocols (id serial PRIMARY KEY, name text NOT NULL, weeks int,
                                 definition jsonb NOT NULL);
CREATE TABLE user_protocol_assignments (id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users,
    protocol_id int NOT NULL REFERENCES training_protocols, started_on date NOT NULL);
CREATE TABLE vo2max_calculations (id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users, measured_at timestamptz NOT NULL,
    vo2max numeric(5,2) NOT NULL, method text NOT NULL);
CREATE TABLE session_metrics (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,
    started_at timestamptz NOT NULL, samples jsonb NOT NULL);
CREATE TABLE biomarker_measurements (id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users, taken_at timestamptz NOT NULL, values jsonb NOT NULL);
CREATE TABLE app_config (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE audit_logs (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),
    actor text, action text NOT NULL, detail jsonb);
CREATE TABLE analytics_events (id bigserial PRIMARY KEY, user_id bigint, name text NOT NULL,
    props jsonb);
CREATE TABLE system_logs (id bigserial PRIMARY KEY, line text);
"""

SEED = """
INSERT INTO users (email, name, birth_year)
  SELECT 'athlete' || g || '@vo2max.example', 'Athlete ' || g, 1960 + g %% 45
  FROM generate_series(1, %(users)s) g;
INSERT INTO training_protocols (name, weeks, definition)
  SELECT 'Norwegian 4x4 v' || g, 8 + g, jsonb_build_object('intervals', 4, 'minutes', 4)
  FROM generate_series(1, 12) g;
INSERT INTO user_protocol_assignments (user_id, protocol_id, started_on)
  SELECT g, 1 + g %% 12, date '2025-01-01' + g %% 300 FROM generate_series(1, %(users)s) g;
INSERT INTO vo2max_calculations (user_id, measured_at, vo2max, method)
  SELECT 1 + g %% %(users)s, timestamptz '2025-01-01' + g * interval '1 hour',
         30 + (g %% 400) / 10.0, 'cooper'
  FROM generate_series(1, %(users)s * 5) g;
INSERT INTO session_metrics (user_id, started_at, samples)
  SELECT 1 + g %% %(users)s, timestamptz '2025-01-01' + g * interval '10 minutes',
         jsonb_build_object('hr', jsonb_build_array(120 + g %% 60, 130 + g %% 50, 150 + g %% 40),
                            'power_w', 180 + g %% 120, 'note', md5(g::text))
  FROM generate_series(1, %(sessions)s) g;
INSERT INTO biomarker_measurements (user_id, taken_at, values)
  SELECT 1 + g %% %(users)s, timestamptz '2025-01-01' + g * interval '1 day',
         jsonb_build_object('lactate', 1 + g %% 8, 'ferritin', 40 + g %% 200)
  FROM generate_series(1, %(users)s * 2) g;
INSERT INTO app_config VALUES ('feature_flags', '{"new_dashboard": true}'),
                              ('zones', '{"z2": [0.6, 0.7]}');
INSERT INTO audit_logs (actor, action, detail)
  SELECT 'athlete' || g, 'login', jsonb_build_object('ip', '10.0.0.' || g %% 250)
  FROM generate_series(1, 500) g;
INSERT INTO analytics_events (user_id, name, props)
  SELECT g %% %(users)s, 'screen_view', jsonb_build_object('screen', 'home')
  FROM generate_series(1, 800) g;
INSERT INTO system_logs (line) SELECT 'GET /health 200' FROM generate_series(1, 50);
"""


def create_database(pg, *, users: int = 300, sessions: int = 3000,
                    big_rows: int = 0) -> str:
    """A fresh database with the VO2Max-like schema; ``big_rows`` adds a table of
    hard-to-compress rows (~100 bytes each) so a dump lasts long enough to interrupt."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute(SCHEMA)
        for statement in SEED.split(";"):
            if statement.strip():
                conn.execute(statement, {"users": users, "sessions": sessions})
        if big_rows:
            conn.execute("CREATE TABLE session_samples (id bigserial PRIMARY KEY, raw text)")
            conn.execute(
                "INSERT INTO session_samples (raw) SELECT md5(random()::text) || "
                "md5(random()::text) || md5(random()::text) FROM generate_series(1, %s)",
                (big_rows,))
    return name


def row_counts(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {f"public.{t}": conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in tables}


@pytest.fixture
def app_db(pg) -> str:
    """URL of a fresh small seeded database."""
    return pg.url(create_database(pg))


@pytest.fixture(scope="session")
def recovery_keys(session_recovery_keys) -> tuple[bytes, bytes]:
    """(private PEM, public PEM)."""
    return session_recovery_keys


@pytest.fixture
def kms_key(cloud_env) -> str:
    return boto3.client("kms").create_key(Description="vo2dr test")["KeyMetadata"]["Arn"]


@pytest.fixture
def buckets(cloud_env) -> Buckets:
    return make_buckets("vo2dr-backup")


def make_settings(db_url: str, b: Buckets, kms_arn: str, public_pem: bytes) -> Settings:
    return Settings(database_url=db_url, environment="staging", s3_bucket=b.s3,
                    gcs_bucket=b.gcs, azure_container_url=b.azure_url, kms_key_id=kms_arn,
                    recovery_public_key=public_pem.decode(), strategy_json=STRATEGY,
                    **signing_keys.SETTINGS)


@pytest.fixture
def settings(app_db, buckets, kms_key, recovery_keys) -> Settings:
    return make_settings(app_db, buckets, kms_key, recovery_keys[1])


def stores_by_name(settings: Settings) -> dict:
    return dict(open_stores(settings, Access.WRITE))


def all_keys(settings: Settings) -> dict[str, list[str]]:
    """Every backup object (body or manifest) per store: the attempt records under
    ``reports/`` (vo2dr.records) are not backups; :func:`record_keys` lists them."""
    return {name: [o.key for o in store.list("") if not o.key.startswith("reports/")]
            for name, store in stores_by_name(settings).items()}


def record_keys(settings: Settings) -> dict[str, list[str]]:
    """The attempt and drill records per store (vo2dr.records)."""
    return {name: [o.key for o in store.list("reports/")]
            for name, store in stores_by_name(settings).items()}


def restore_list(plaintext: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{hashlib.sha256(plaintext).hexdigest()[:8]}.dump"
    path.write_bytes(plaintext)
    return subprocess.run([pgtools.pg_restore(), "--list", str(path)], check=True,
                          capture_output=True, text=True).stdout


def decrypt_body(ciphertext: bytes, **keys) -> bytes:
    compressed = b"".join(crypto.decrypt_stream([ciphertext], **keys))
    return zstandard.ZstdDecompressor().decompressobj().decompress(compressed)


def table_data_entries(listing: str) -> set[str]:
    """``public.users`` for every ``TABLE DATA public users`` line of ``pg_restore --list``."""
    out = set()
    for line in listing.splitlines():
        if " TABLE DATA " in line and not line.startswith(";"):
            parts = line.split(" TABLE DATA ")[1].split()
            out.add(f"{parts[0]}.{parts[1]}")
    return out


def table_entries(listing: str) -> set[str]:
    """``public.users`` for every ``TABLE public users`` (definition) line of the listing."""
    out = set()
    for line in listing.splitlines():
        fields = line.split()
        if not line.startswith(";") and len(fields) >= 6 and fields[3] == "TABLE" \
                and fields[4] != "DATA":
            out.add(f"{fields[4]}.{fields[5]}")
    return out
