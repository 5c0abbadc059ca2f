"""The GCP standby's job against the real servers: ``--if-missing`` skips a window the primary
already covered and backs up the next one; without AWS (no S3 bucket, no KMS key) the copy is
encrypted to the offline recovery key only and still verifies with it."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.backup import backup_if_missing, run_backup, schedule_window
from vo2dr.catalog import build_catalog
from vo2dr.cli import main
from vo2dr.exceptions import EncryptionError
from vo2dr.manifest import Manifest
from vo2dr.settings import Settings
from vo2dr.trust import Trust
from vo2dr.verify import verify_copy

from tests import signing_keys

from .conftest import STRATEGY, all_keys, decrypt_body, restore_list, stores_by_name

pytestmark = pytest.mark.integration


def test_a_second_run_in_the_same_window_skips_and_the_next_window_backs_up(settings):
    first = backup_if_missing(settings, "critical", datetime(2026, 3, 4, 10, 2, tzinfo=UTC))
    assert first["ok"] and not first.get("skipped"), first
    assert first["window"]["start"] == "2026-03-04T10:00:00+00:00"

    again = backup_if_missing(settings, "critical", datetime(2026, 3, 4, 10, 14, tzinfo=UTC))
    assert again["ok"] and again["skipped"], again
    assert again["status"] == f"skipped: covered by {first['backup_id']}"

    following = backup_if_missing(settings, "critical", datetime(2026, 3, 4, 10, 15, tzinfo=UTC))
    assert following["ok"] and not following.get("skipped"), following
    assert following["backup_id"] != first["backup_id"]
    assert following["window"]["start"] == "2026-03-04T10:15:00+00:00"
    # Two backups in each store, no third from the skipped run.
    for keys in all_keys(settings).values():
        assert len([k for k in keys if k.endswith(".manifest.json")]) == 2


def test_cloud_run_and_cli_skip_a_covered_window(settings, cloud_env, monkeypatch, capsys):
    """The entry points as the standby runs them, at the real time: the primary's full backup
    of today's window already exists, so both exit 0 without a new backup."""
    start, _ = schedule_window(settings.strategy().get("full"), datetime.now(UTC))
    primary = run_backup(settings, "full", now=start + timedelta(seconds=1))
    assert primary["ok"], primary
    env = {"DATABASE_URL": settings.database_url, "VO2DR_ENVIRONMENT": settings.environment,
           "VO2DR_GCS_BUCKET": settings.gcs_bucket,
           "VO2DR_AZURE_CONTAINER_URL": settings.azure_container_url,
           "VO2DR_RECOVERY_PUBLIC_KEY": settings.recovery_public_key, **signing_keys.ENV,
           "VO2DR_STRATEGY": settings.strategy_json}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    from vo2dr import cloudrun

    before = all_keys(settings)
    assert cloudrun.main(["--data-class", "full", "--if-missing"]) == 0
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()
              if line.startswith("{")]
    assert any(r.get("message") == f"backup skipped: covered by {primary['backup_id']}"
               for r in logged), logged

    assert main(["backup", "--data-class", "full", "--if-missing", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == f"skipped: covered by {primary['backup_id']}"
    assert out["covered_by"]["manifest_key"] == primary["manifest_key"]
    assert all_keys(settings) == before


def test_standby_without_aws_encrypts_to_the_recovery_key_only(app_db, buckets, recovery_keys,
                                                               tmp_path, caplog):
    private, public = recovery_keys
    standby = Settings(database_url=app_db, environment="staging", gcs_bucket=buckets.gcs,
                       recovery_public_key=public.decode(), strategy_json=STRATEGY,
                       **signing_keys.SETTINGS)
    assert not standby.kms_key_id and standby.enabled_stores == ("gcs",)
    with caplog.at_level(logging.WARNING, logger="vo2dr.backup"):
        summary = backup_if_missing(standby, "important")
    assert summary["ok"] and not summary.get("skipped"), summary
    assert set(summary["destinations"]) == {"gcs"}
    assert summary["kms_key_arn"] == ""
    assert any("recovery key only" in w for w in summary["warnings"])
    assert any("recovery key only" in r.getMessage() for r in caplog.records)

    gcs = stores_by_name(standby)["gcs"]
    manifest = Manifest.from_json(gcs.get_bytes(summary["manifest_key"]))
    assert manifest.encryption.kms_key_arn == ""
    body = gcs.get_bytes(manifest.body_key)
    plain = decrypt_body(body, recovery_private_key_pem=private,
                         expected_context={"backup_id": manifest.backup_id})
    assert hashlib.sha256(plain).hexdigest() == manifest.plaintext.sha256
    assert "TABLE DATA public app_config" in restore_list(plain, tmp_path)

    # The recovery side reads such a copy: with the recovery key it verifies; without one it
    # says which key is needed instead of failing on an empty KMS key ARN.
    entry = build_catalog({"gcs": gcs}, "staging").find(manifest.backup_id)
    trust = Trust.from_settings(standby)
    result = verify_copy(gcs, entry, trust=trust, recovery_key_pem=private)
    assert result.ok and result.key_used == "recovery-key", result.problems
    with pytest.raises(EncryptionError, match="--recovery-key"):
        verify_copy(gcs, entry, trust=trust)
