"""The code source end to end: a real repository (≥ 50 commits, 3 branches, 2 tags, a note)
backed up once as a git bundle through the shared pipeline, then restored from each of S3, GCS
and Azure into new bare repositories that `git` itself checks."""

from __future__ import annotations

import json
import subprocess

import pytest
from vo2dr.cli import main
from vo2dr.manifest import Manifest
from vo2dr.sources.backup import backup_source
from vo2dr.stores import Access, open_stores

from dev import servers
from tests import forgery

from .conftest import for_each_ref, git

pytestmark = pytest.mark.integration


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def use_env(app, monkeypatch) -> None:
    for k, v in app.env().items():
        monkeypatch.setenv(k, v)


def aws_down_with_recovery_key(app, monkeypatch, tmp_path):
    """AWS unreachable from here on (S3, KMS, everything); the offline recovery key's file."""
    key = tmp_path / "recovery.pem"
    key.write_bytes(app.recovery_private)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{servers.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return key


def test_code_round_trip_from_each_store(app, tmp_path):
    summary = backup_source(app.settings, "code")
    assert summary.ok, summary.error
    assert summary.body_key.startswith("application/staging/")
    assert summary.body_key.endswith(".bundle.enc") and "/code/" in summary.body_key
    assert summary.data_class == "important"
    source_refs = for_each_ref(app.repo)
    assert len(source_refs.splitlines()) == 6  # main, dev, release, v1.0, v2.0, notes
    assert int(git(app.repo, "rev-list", "--count", "main")) >= 50

    stores = dict(open_stores(app.settings, Access.READ))
    for name, store in stores.items():
        manifest = Manifest.from_json(store.get_bytes(summary.manifest_key))
        assert manifest.source == "code"
        # Every ref with the id it had at backup time, as git itself lists them.
        expected = {line.split()[2]: line.split()[0] for line in source_refs.splitlines()}
        assert manifest.contents["refs"] == expected
        assert manifest.contents["head"] == "refs/heads/main"
        assert manifest.contents["peeled"]["refs/tags/v2.0"] == \
            git(app.repo, "rev-parse", "v2.0^{commit}").strip()

        target = tmp_path / f"restored-{name}.git"
        result = main(["restore", "--kind", "code", "--source", name, "--target-dir",
                       str(target), "--environment", "staging", "--s3-bucket",
                       app.buckets.s3, "--gcs-bucket", app.buckets.gcs,
                       "--azure-container-url", app.buckets.azure_url,
                       "--signing-public-keys", app.settings.signing_public_keys,
                       "--kms-key-id", app.settings.kms_key_id])
        assert result == 0
        assert for_each_ref(target) == source_refs
        fsck = subprocess.run(["git", "-C", str(target), "fsck", "--strict", "--full"],
                              capture_output=True, text=True)
        assert fsck.returncode == 0 and fsck.stdout == "", fsck.stdout + fsck.stderr
        assert git(target, "rev-parse", "--is-bare-repository").strip() == "true"
        assert git(target, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
        assert git(target, "log", "--format=%H", "release") == \
            git(app.repo, "log", "--format=%H", "release")


def test_cli_backup_list_verify_and_recovery_key_restore_with_aws_down(app, capsys,
                                                                        monkeypatch, tmp_path):
    use_env(app, monkeypatch)
    code, doc, err = run_cli(capsys, "backup", "--source", "code")
    assert code == 0, err
    assert doc["ok"] and doc["source"] == "code" and len(doc["contents"]["refs"]) == 6
    backup_id = doc["backup_id"]

    code, doc, err = run_cli(capsys, "list", "--kind", "code", "--json")
    assert code == 0, err
    assert [b["backup_id"] for b in doc["backups"]] == [backup_id]
    assert doc["backups"][0]["complete_in"] == ["s3", "gcs", "azure"]
    # The database listing does not see it.
    code, doc, _ = run_cli(capsys, "list", "--json")
    assert doc["backups"] == []

    code, doc, err = run_cli(capsys, "verify", "--kind", "code", "--source", "all")
    assert code == 0, err
    assert doc["backup_id"] == backup_id and all(c["ok"] for c in doc["copies"])

    # AWS unreachable (S3, KMS, everything): restore from Azure with the recovery key.
    key = aws_down_with_recovery_key(app, monkeypatch, tmp_path)
    target = tmp_path / "offline.git"
    code, doc, err = run_cli(capsys, "restore", "--kind", "code", "--source", "azure",
                             "--target-dir", str(target), "--recovery-key", str(key))
    assert code == 0, err
    assert doc["key_used"] == "recovery-key" and doc["backup_id"] == backup_id
    assert for_each_ref(target) == for_each_ref(app.repo)


def test_non_empty_target_is_refused_before_download(app, capsys, monkeypatch, tmp_path):
    use_env(app, monkeypatch)
    assert backup_source(app.settings, "code").ok
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, "restore", "--kind", "code", "--source", "gcs",
                           "--target-dir", str(target))
    assert code == 2 and "not empty" in err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_tampered_body_missing_manifest_and_dead_store(app, capsys, monkeypatch, tmp_path):
    use_env(app, monkeypatch)
    summary = backup_source(app.settings, "code")
    assert summary.ok
    stores = dict(open_stores(app.settings, Access.READ))
    # Tampered body in Azure: verify names it, restore refuses and writes nothing.
    body = bytearray(stores["azure"].get_bytes(summary.body_key))
    body[len(body) // 2] ^= 0x01
    stores["azure"].delete(summary.body_key)
    stores["azure"].put_bytes(summary.body_key, bytes(body))
    code, doc, err = run_cli(capsys, "verify", "--kind", "code", "--source", "azure")
    assert code == 1 and "ciphertext SHA-256" in err
    target = tmp_path / "from-tampered.git"
    code, _, err = run_cli(capsys, "restore", "--kind", "code", "--source", "azure",
                           "--target-dir", str(target))
    assert code != 0 and "failed verification" in err
    assert not target.exists()
    # A same-key forgery (what a holder of the body's data key writes: same wrapped keys,
    # context, suite and size, authentic to the SDK): the signed manifest's digest refuses it.
    real = stores["s3"].get_bytes(summary.body_key)
    forged = forgery.same_size_forgery(real, app.recovery_private, b"# v2 git bundle\nevil\n")
    stores["azure"].delete(summary.body_key)
    stores["azure"].put_bytes(summary.body_key, forged)
    code, doc, err = run_cli(capsys, "verify", "--kind", "code", "--source", "azure")
    assert code == 1 and "ciphertext SHA-256" in err
    code, _, err = run_cli(capsys, "restore", "--kind", "code", "--source", "azure",
                           "--target-dir", str(target))
    assert code != 0 and "failed verification" in err and "ciphertext SHA-256" in err
    assert not target.exists()
    # Missing manifest in GCS: the copy does not count there.
    stores["gcs"].delete(summary.manifest_key)
    code, doc, _ = run_cli(capsys, "list", "--kind", "code", "--json")
    assert doc["backups"][0]["stores"]["gcs"]["state"] == "no-manifest"
    code, _, err = run_cli(capsys, "restore", "--kind", "code", "--source", "gcs",
                           "--target-dir", str(tmp_path / "from-gcs.git"))
    assert code == 2 and "no complete backup" in err
    # S3 still restores.
    code, _, err = run_cli(capsys, "restore", "--kind", "code", "--source", "s3",
                           "--target-dir", str(tmp_path / "from-s3.git"))
    assert code == 0, err

    # A dead store at backup time: the others complete and get a manifest recording it.
    monkeypatch.setenv("VO2DR_AZURE_CONTAINER_URL",
                       f"http://127.0.0.1:{servers.free_port()}/devstoreaccount1/gone")
    code, doc, err = run_cli(capsys, "backup", "--source", "code")
    assert code == 1 and doc["destinations"]["azure"]["status"] == "failed"
    for name in ("s3", "gcs"):
        assert doc["destinations"][name]["status"] == "verified"
        manifest = Manifest.from_json(stores[name].get_bytes(doc["manifest_key"]))
        assert manifest.destinations["azure"].status == "failed"
