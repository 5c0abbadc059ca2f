"""The GCP standby covers the application sources (issue 16): ``python -m vo2dr.cloudrun
--source code|config --if-missing`` as the standby's Cloud Run jobs run it, with AWS down (no
S3, no KMS key, the AWS endpoint dead), the repository token from its own environment (GCP
Secret Manager in the cloud). Code: every ref, restorable. Config: the files only, never the
app's secrets (they live in AWS, which the standby neither reaches nor may read); the manifest
says so, the job warns, and a restore of it says so. A covered window is a no-op."""

from __future__ import annotations

import json
import logging

import pytest
from vo2dr import cloudrun

from dev import servers

from .conftest import CONFIG_FILES, for_each_ref, git
from .test_code import run_cli, use_env

pytestmark = pytest.mark.integration


def standby_env(app, monkeypatch) -> None:
    """The standby's environment: GCS and Azure only, no AWS at all."""
    use_env(app, monkeypatch)
    for var in ("VO2DR_S3_BUCKET", "VO2DR_KMS_KEY_ID", "VO2DR_REPOSITORY_TOKEN_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{servers.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # A local repository needs no token; the standby passes whatever Secret Manager holds.
    monkeypatch.setenv("VO2DR_REPOSITORY_TOKEN", "")
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)


def logged(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")]


def test_standby_backs_up_code_and_config_without_aws_and_skips_a_covered_window(
        app, capsys, monkeypatch, tmp_path):
    standby_env(app, monkeypatch)
    assert cloudrun.main(["--source", "code", "--if-missing"]) == 0
    records = logged(capsys)
    finished = [r for r in records if r.get("message") == "backup finished"]
    assert finished, records
    code_summary = finished[0]["summary"]
    assert set(code_summary["destinations"]) == {"gcs", "azure"}
    assert code_summary["kms_key_arn"] == ""  # the recovery key only: AWS is down

    assert cloudrun.main(["--source", "config", "--if-missing", "--without-app-secrets"]) == 0
    records = logged(capsys)
    warnings = [r for r in records if r.get("level", r.get("severity", "")).upper()
                in ("WARNING", "WARN")]
    assert any("WITHOUT the app's secrets" in r.get("message", "") for r in warnings), records
    summary = next(r for r in records if r.get("message") == "backup finished")["summary"]
    contents = summary["contents"]
    assert sorted(f["path"] for f in contents["files"]) == sorted(CONFIG_FILES)
    assert contents["secrets"] == [] and "GCP standby" in contents["secrets_unavailable"]

    # Same window again: both are no-ops.
    assert cloudrun.main(["--source", "code", "--if-missing"]) == 0
    assert any(r.get("message", "").startswith("backup skipped: covered by ")
               for r in logged(capsys))
    assert cloudrun.main(["--source", "config", "--if-missing", "--without-app-secrets"]) == 0
    assert any(r.get("message", "") == f"backup skipped: covered by {summary['backup_id']}"
               for r in logged(capsys))

    # Restored from GCS with the recovery key: every ref; the config's files, and it says
    # that no secret was restored.
    key = tmp_path / "recovery.pem"
    key.write_bytes(app.recovery_private)
    code_dir = tmp_path / "code.git"
    rc, doc, err = run_cli(capsys, "restore", "--kind", "code", "--source", "gcs",
                           "--target-dir", str(code_dir), "--recovery-key", str(key))
    assert rc == 0, err
    assert for_each_ref(code_dir) == for_each_ref(app.repo)
    config_dir = tmp_path / "config"
    rc, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "azure",
                           "--target-dir", str(config_dir), "--recovery-key", str(key))
    assert rc == 0, err
    assert doc["restored"]["secrets"] == [] and "no app secrets restored" in \
        doc["restored"]["warning"]
    assert "WARNING: no app secrets restored" in err
    for name in CONFIG_FILES:
        assert (config_dir / "files" / name).read_bytes() == (app.repo / name).read_bytes()
    assert not (config_dir / "secrets").exists()
    assert git(code_dir, "fsck", "--strict") == ""

    # No secret value of the app in what it wrote or logged: it never read them.
    for value in app.secrets.values():
        assert value not in json.dumps(summary) and value not in json.dumps(records)
