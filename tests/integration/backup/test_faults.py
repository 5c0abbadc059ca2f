"""Fault injection: a store dies mid-upload, the pg_dump backend is terminated mid-stream, the
KMS key is denied. Real servers throughout; each fault is produced the way it happens in
production (a killed process, pg_terminate_backend, an IAM denial from the KMS API)."""

from __future__ import annotations

import json
import time

import boto3
import psycopg
import pytest
from vo2dr.backup import run_backup
from vo2dr.cli import main
from vo2dr.dump import DUMP_APP, SNAPSHOT_APP
from vo2dr.exceptions import DumpError, EncryptionError
from vo2dr.manifest import Manifest
from vo2dr.records import check_record
from vo2dr.signing import TrustedKeys

from dev import servers
from tests import signing_keys
from tests.buckets import make_buckets

from .conftest import (
    all_keys,
    create_database,
    decrypt_body,
    make_settings,
    record_keys,
    stores_by_name,
)

pytestmark = pytest.mark.integration

BIG_ROWS = 400_000  # ~40 MB of dump, ~20 MB after zstd: long enough to interrupt


@pytest.fixture
def big_db(pg) -> str:
    return pg.url(create_database(pg, big_rows=BIG_ROWS))


def _our_sessions(db_url: str) -> list[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name = ANY(%s)",
            ([DUMP_APP, SNAPSHOT_APP],)).fetchall()
    return [r[0] for r in rows]


def _wait_no_sessions(db_url: str) -> list[str]:
    deadline = time.monotonic() + 10
    while (left := _our_sessions(db_url)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_a_store_killed_mid_upload_fails_alone(big_db, cloud_env, kms_key, recovery_keys,
                                               monkeypatch):
    with servers.azurite() as doomed:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                           doomed.env["AZURE_STORAGE_CONNECTION_STRING"])
        b = make_buckets("vo2dr-doomed")
        settings = make_settings(big_db, b, kms_key, recovery_keys[1])
        killed = []

        def progress(phase: str, plain: int, cipher: int) -> None:
            if not killed and cipher > 4 * 1024 * 1024:
                doomed.stop()  # SIGKILL, as a crash would
                killed.append(cipher)

        t0 = time.monotonic()
        summary = run_backup(settings, "full", progress=progress, stall_timeout=60)
        elapsed = time.monotonic() - t0

    assert killed, "the dump was too small to interrupt"
    assert not summary["ok"]
    assert summary["destinations"]["azure"]["status"] == "failed"
    assert summary["destinations"]["azure"]["manifest"] == "skipped: body not verified"
    assert summary["error"].startswith("azure:") and "\n" not in summary["error"]
    assert elapsed < 120
    # The other two completed, verified, and hold a manifest recording azure's failure.
    for name in ("s3", "gcs"):
        assert summary["destinations"][name]["status"] == "verified"
    stores = stores_by_name(settings)
    for name in ("s3", "gcs"):
        manifest = Manifest.from_json(stores[name].get_bytes(summary["manifest_key"]))
        assert manifest.destinations["azure"].status == "failed"
        assert manifest.destinations[name].status == "verified"
        body = stores[name].get_bytes(manifest.body_key)
        plain = decrypt_body(body, recovery_private_key_pem=recovery_keys[0])
        assert len(plain) == manifest.plaintext.bytes
    assert _wait_no_sessions(big_db) == []


def test_pg_dump_backend_terminated_mid_stream(big_db, buckets, kms_key, recovery_keys):
    settings = make_settings(big_db, buckets, kms_key, recovery_keys[1])
    terminated = []

    def progress(phase: str, plain: int, cipher: int) -> None:
        if not terminated and plain > 2 * 1024 * 1024:
            with psycopg.connect(big_db, autocommit=True) as conn:
                terminated.extend(r[0] for r in conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s", (DUMP_APP,)).fetchall())

    with pytest.raises(DumpError) as err:
        run_backup(settings, "full", progress=progress)
    assert terminated == [True]
    message = str(err.value)
    assert "\n" not in message and message.startswith("pg_dump failed (exit 1):")
    assert "terminat" in message or "server closed the connection" in message, message
    # No manifest, and no body either: every multipart/resumable/block upload was aborted.
    assert all_keys(settings) == {"s3": [], "gcs": [], "azure": []}
    assert _wait_no_sessions(big_db) == []


@pytest.fixture
def denied_kms(cloud_env, monkeypatch):
    """A KMS (moto with IAM enforced) whose key the job's identity may not use to generate
    data keys: GenerateDataKey answers AccessDenied, exactly as a key policy or IAM denial
    does. moto's KMS ignores a disabled key state, so disabling the key would prove nothing."""
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "4")  # the four setup calls below
    with servers.moto_server() as kms_server:
        monkeypatch.delenv("INITIAL_NO_AUTH_ACTION_COUNT")
        url = kms_server.env["AWS_ENDPOINT_URL"]
        kms = boto3.client("kms", endpoint_url=url)
        iam = boto3.client("iam", endpoint_url=url)
        arn = kms.create_key(Description="denied")["KeyMetadata"]["Arn"]
        iam.create_user(UserName="backup-job")
        iam.put_user_policy(UserName="backup-job", PolicyName="no-data-keys",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"],
                                 "Resource": "*"}]}))
        key = iam.create_access_key(UserName="backup-job")["AccessKey"]
        # The job's credentials become the denied user's; S3 stays on the session moto
        # (which checks no credentials), KMS goes to the enforcing one.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", url)
        yield arn


def test_denied_kms_key_leaves_no_backup_anywhere(app_db, buckets, denied_kms, recovery_keys,
                                                  monkeypatch, capsys):
    settings = make_settings(app_db, buckets, denied_kms, recovery_keys[1])
    with pytest.raises(EncryptionError) as err:
        run_backup(settings, "critical")
    message = str(err.value)
    assert "\n" not in message
    assert "GenerateDataKey" in message and "AccessDenied" in message, message
    assert all_keys(settings) == {"s3": [], "gcs": [], "azure": []}
    assert _wait_no_sessions(app_db) == []
    # ...but the failed attempt left a signed record in every store, for the report's
    # success rate, holding the cause and no secret.
    records = record_keys(settings)
    assert {n: len(k) for n, k in records.items()} == {"s3": 1, "gcs": 1, "azure": 1}
    key = records["s3"][0]
    assert key.startswith("reports/staging/attempts/") and "-critical-" in key
    for name, store in stores_by_name(settings).items():
        data = store.get_bytes(records[name][0])
        rec = check_record(records[name][0], data,
                           TrustedKeys.from_pem(signing_keys.TRUSTED))
        assert rec.valid, rec.reason
        assert rec.body["outcome"] == "failed" and rec.body["backup_id"] == ""
        assert "AccessDenied" in rec.body["reason"]
        assert app_db not in data.decode() and "password" not in data.decode().lower()

    # The CLI: a JSON summary on stdout, one line on stderr, exit 2.
    for var, value in {"DATABASE_URL": app_db, "VO2DR_ENVIRONMENT": "staging",
                       "VO2DR_S3_BUCKET": settings.s3_bucket,
                       "VO2DR_GCS_BUCKET": settings.gcs_bucket,
                       "VO2DR_AZURE_CONTAINER_URL": settings.azure_container_url,
                       "VO2DR_KMS_KEY_ID": denied_kms,
                       "VO2DR_RECOVERY_PUBLIC_KEY": settings.recovery_public_key,
                       **signing_keys.ENV,
                       "VO2DR_STRATEGY": settings.strategy_json}.items():
        monkeypatch.setenv(var, value)
    assert main(["backup", "--data-class", "critical", "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    assert len(captured.err.strip().splitlines()) == 1
    assert "AccessDenied" in captured.err
    assert all_keys(settings) == {"s3": [], "gcs": [], "azure": []}
