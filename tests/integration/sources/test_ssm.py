"""The config source with SSM Parameter Store (issue 16: "names or a path prefix in AWS Secrets
Manager or SSM Parameter Store"), against moto's SSM: parameters by name and every parameter
under a path (recursively, SecureString decrypted) go into the encrypted archive; the manifest
records names, versions and types only; restored byte-identical (the values at backup time)
with `--recovery-key` while AWS is unreachable; a missing name or an empty path fails the
backup before anything is written; and no value appears outside the encrypted bodies."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import uuid

import boto3
import pytest
from vo2dr.manifest import Manifest
from vo2dr.stores import Access, open_stores

from .test_code import aws_down_with_recovery_key, run_cli, use_env

pytestmark = pytest.mark.integration


def with_parameters(app, names: list[str], paths: list[str]) -> None:
    """The app's strategy, plus SSM parameter names and paths for the config source."""
    doc = json.loads(app.settings.strategy_json)
    doc["application"]["config"].update(parameterNames=names, parameterPaths=paths)
    app.settings = dataclasses.replace(app.settings, strategy_json=json.dumps(doc))


@pytest.fixture
def ssm_app(app):
    run = uuid.uuid4().hex[:8]
    ssm = boto3.client("ssm")
    base = f"/vo2max/staging/app{run}"
    values = {
        f"{base}/db-password": ("SecureString", f"pw-{app.marker}"),
        f"{base}/nested/deeper/api-key": ("SecureString", f"key-{app.marker}"),
        f"{base}/feature-flags": ("StringList", f"a,b,{app.marker}"),
        f"/vo2max/shared{run}/sentry-dsn": ("String", f"https://{app.marker}@sentry.example/2"),
    }
    # More than one page of GetParametersByPath (at most 10 per call): the reader paginates.
    values.update({f"{base}/many/p{i:02d}": ("String", f"v{i}-{app.marker}") for i in range(12)})
    for name, (kind, value) in values.items():
        ssm.put_parameter(Name=name, Value=value, Type=kind)
    # A sibling whose name starts with the path's text, and another app's: neither is read.
    ssm.put_parameter(Name=f"{base}x/other", Value=f"other-{app.marker}", Type="SecureString")
    ssm.put_parameter(Name=f"/vo2max/staging/other{run}/x", Value=f"other2-{app.marker}",
                      Type="SecureString")
    with_parameters(app, [f"/vo2max/shared{run}/sentry-dsn"], [f"{base}/"])
    app.parameters = {n: v for n, (_, v) in values.items()}
    app.base = base
    return app


def test_ssm_parameters_round_trip_offline_and_no_value_outside_the_body(
        ssm_app, capsys, monkeypatch, tmp_path):
    app = ssm_app
    use_env(app, monkeypatch)
    aws_endpoint = os.environ["AWS_ENDPOINT_URL"]
    ssm = boto3.client("ssm")
    versions = {n: ssm.get_parameter(Name=n)["Parameter"]["Version"] for n in app.parameters}

    code, doc, err = run_cli(capsys, "--debug", "backup", "--source", "config")
    outputs = [json.dumps(doc), err]
    assert code == 0, err
    contents = doc["contents"]
    assert {p["name"]: p["version"] for p in contents["parameters"]} == versions
    assert {p["name"]: p["type"] for p in contents["parameters"]}[f"{app.base}/db-password"] \
        == "SecureString"
    assert "other" not in json.dumps(contents["parameters"])  # sibling and other app: not read
    # The Secrets Manager secrets still come along beside them.
    assert {s["name"] for s in contents["secrets"]} == set(app.secrets)

    # Rotated after the backup: the restore must give the value at backup time.
    rotated = f"{app.base}/db-password"
    ssm.put_parameter(Name=rotated, Value="rotated-later", Type="SecureString", Overwrite=True)

    code, doc, err = run_cli(capsys, "verify", "--kind", "config", "--source", "all")
    outputs += [json.dumps(doc), err]
    assert code == 0, err

    key = aws_down_with_recovery_key(app, monkeypatch, tmp_path)
    target = tmp_path / "restored"
    code, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "azure",
                             "--target-dir", str(target), "--recovery-key", str(key))
    outputs += [json.dumps(doc), err]
    assert code == 0, err
    assert doc["key_used"] == "recovery-key"
    assert sorted(doc["restored"]["parameters"]) == sorted(n.lstrip("/") for n in app.parameters)
    for name, value in app.parameters.items():
        restored = target / "parameters" / name.lstrip("/")
        assert restored.read_bytes() == value.encode()
        assert stat.S_IMODE(restored.stat().st_mode) == 0o600

    # --diff-against the restore: the same; one parameter changed there: its name only.
    code, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "gcs",
                             "--diff-against", str(target), "--recovery-key", str(key))
    outputs += [json.dumps(doc), err]
    assert code == 0 and doc["diff"]["same"], doc
    (target / "parameters" / rotated.lstrip("/")).write_text("changed")
    code, doc, err = run_cli(capsys, "restore", "--kind", "config", "--source", "gcs",
                             "--diff-against", str(target), "--recovery-key", str(key))
    outputs += [json.dumps(doc), err]
    assert code == 1 and doc["diff"]["parameters"]["differs"] == [rotated.lstrip("/")]

    # Every non-encrypted output: stdout, stderr, manifests, object metadata in every store.
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    values = [app.marker, *app.parameters.values()]
    for name, store in open_stores(app.settings, Access.READ).items():
        for info in store.list("application/"):
            data = store.get_bytes(info.key)
            outputs.append(f"{name}:{info.key}:{json.dumps(store.stat(info.key).metadata)}")
            if info.key.endswith(".manifest.json"):
                outputs.append(data.decode())
                assert Manifest.from_json(data).source == "config"
            else:
                assert all(v.encode() not in data for v in values)
    blob = "\n".join(outputs)
    for value in values:
        assert value not in blob


@pytest.mark.parametrize("broken", ["missing-name", "empty-path"])
def test_a_missing_parameter_or_an_empty_path_fails_before_anything_is_written(
        ssm_app, capsys, monkeypatch, broken):
    app = ssm_app
    if broken == "missing-name":
        with_parameters(app, [f"{app.base}/does-not-exist"], [])
        expected = f"{app.base}/does-not-exist"
    else:
        with_parameters(app, [], [f"{app.base}-typo/"])
        expected = f"no SSM parameter under {app.base}-typo/"
    use_env(app, monkeypatch)
    code, _, err = run_cli(capsys, "backup", "--source", "config")
    assert code != 0
    assert expected in err and app.marker not in err
    for store in open_stores(app.settings, Access.READ).values():
        assert not list(store.list("application/staging/config/"))
