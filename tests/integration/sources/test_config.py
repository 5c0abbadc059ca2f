"""The config source end to end: the config files at the default branch's head and the app's
secrets (named, and under a prefix) in one encrypted archive; restored byte-identical with
`--recovery-key` while AWS is unreachable; `--diff-against` prints names only; and no secret
value anywhere outside the encrypted bodies."""

from __future__ import annotations

import json
import os
import stat

import boto3
import pytest
from vo2dr.manifest import Manifest
from vo2dr.stores import Access, open_stores

from .conftest import CONFIG_FILES, git
from .test_code import aws_down_with_recovery_key, run_cli, use_env

pytestmark = pytest.mark.integration


def secret_values(app) -> list[str]:
    values = [app.marker, *app.secrets.values()]
    # JSON secrets: their inner values too.
    for v in app.secrets.values():
        if v.startswith("{"):
            values.extend(str(x) for x in json.loads(v).values())
    return values


def test_config_round_trip_offline_and_no_secret_outside_the_body(app, capsys, monkeypatch,
                                                                  tmp_path):
    use_env(app, monkeypatch)
    aws_endpoint = os.environ["AWS_ENDPOINT_URL"]
    # A file changed on another branch only: the archive takes the default branch's head.
    git(app.repo, "checkout", "-q", "dev")
    (app.repo / "vercel.json").write_text('{"framework": "changed-on-dev"}\n')
    git(app.repo, "commit", "-qam", "dev vercel")
    git(app.repo, "checkout", "-q", "main")
    sm = boto3.client("secretsmanager")
    at_backup = {n: sm.get_secret_value(SecretId=n) for n in app.secrets}

    code, doc, err = run_cli(capsys, "--debug", "backup", "--source", "config")
    outputs = [json.dumps(doc), err]
    assert code == 0, err
    assert doc["body_key"].startswith("application/staging/config/")
    assert doc["body_key"].endswith(".tar.enc") and doc["data_class"] == "important"
    backup_id = doc["backup_id"]
    contents = doc["contents"]
    assert sorted(f["path"] for f in contents["files"]) == sorted(CONFIG_FILES)
    assert {s["name"]: s["version_id"] for s in contents["secrets"]} == \
        {n: v["VersionId"] for n, v in at_backup.items()}
    assert "other-" not in json.dumps(contents)  # not named, not under the prefix

    code, doc, err = run_cli(capsys, "verify", "--kind", "config", "--source", "all")
    outputs += [json.dumps(doc), err]
    assert code == 0, err

    # AWS entirely unreachable; restore from GCS with the offline recovery key.
    key = aws_down_with_recovery_key(app, monkeypatch, tmp_path)
    target = tmp_path / "restored-config"
    code, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "gcs",
                             "--target-dir", str(target), "--recovery-key", str(key))
    outputs += [json.dumps(doc), err]
    assert code == 0, err
    assert doc["backup_id"] == backup_id and doc["key_used"] == "recovery-key"
    for name in CONFIG_FILES:
        restored = target / "files" / name
        assert restored.read_bytes() == (app.repo / name).read_bytes()
        assert stat.S_IMODE(restored.stat().st_mode) == 0o600
    for name, value in at_backup.items():
        restored = target / "secrets" / name
        assert restored.read_text() == value["SecretString"]
        assert stat.S_IMODE(restored.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o700

    # --diff-against a checkout: one changed file, names only.
    (app.repo / ".env.staging").write_text("STRIPE_KEY=rotated\n")
    code, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "azure",
                             "--diff-against", str(app.repo), "--recovery-key", str(key))
    outputs += [json.dumps(doc), err]
    assert code == 1
    assert doc["diff"]["files"]["differs"] == [".env.staging"]
    # --diff-against the earlier restore: the same, secrets included.
    code, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "azure",
                             "--diff-against", str(target), "--recovery-key", str(key))
    outputs += [json.dumps(doc), err]
    assert code == 0 and doc["diff"]["same"], doc
    (target / "secrets" / next(iter(app.secrets))).write_text("changed")
    code, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "azure",
                             "--diff-against", str(target), "--recovery-key", str(key))
    outputs += [json.dumps(doc), err]
    assert code == 1 and doc["diff"]["secrets"]["differs"] == [next(iter(app.secrets))]

    # Nothing the run wrote holds a secret value: stdout, stderr, logs, every manifest and
    # every object's metadata in every store. Only the encrypted bodies may. (The CLI logs
    # to stderr, at info level with --verbose: the logs are in the stderr kept above.)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    for name, store in open_stores(app.settings, Access.READ).items():
        for info in store.list("application/"):
            data = store.get_bytes(info.key)
            meta = json.dumps(store.stat(info.key).metadata)
            outputs.append(f"{name}:{info.key}:{meta}")
            if info.key.endswith(".manifest.json"):
                outputs.append(data.decode())
                assert Manifest.from_json(data).source == "config"
            else:
                assert all(v.encode() not in data for v in secret_values(app))
    blob = "\n".join(outputs)
    for value in secret_values(app):
        assert value not in blob

