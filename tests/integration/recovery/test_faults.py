"""Damaged copies, missing manifests, an unreachable KMS and a stopped S3: every failure ends
with a clear message and a non-zero exit, and no database is created or changed by it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from vo2dr import crypto
from vo2dr.catalog import build_catalog
from vo2dr.cli import main
from vo2dr.layout import BackupRef
from vo2dr.status import compute_status
from vo2dr.trust import Trust
from vo2dr.verify import verify_copy

from dev import servers

from .conftest import build_world, cli_argv, database_exists, table_checksums

pytestmark = pytest.mark.integration


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(cli_argv(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def use_env(world, monkeypatch) -> None:
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)


def replace_object(store, key: str, data: bytes) -> None:
    """Overwrite a write-once object the only way a test can: delete, then write again."""
    store.delete(key)
    store.put_bytes(key, data)


def body_key(world, backup_id: str) -> str:
    cat = build_catalog(world.stores(), "staging")
    return cat.find(backup_id).ref.body_key


def test_flipped_byte_and_truncated_copy(fresh_world, capsys, monkeypatch):
    world = fresh_world
    use_env(world, monkeypatch)
    backup_id = world.backups["full"]
    key = body_key(world, backup_id)
    azure, s3 = world.store("azure"), world.store("s3")
    body = bytearray(azure.get_bytes(key))
    body[len(body) // 2] ^= 0x20
    replace_object(azure, key, bytes(body))
    replace_object(s3, key, s3.get_bytes(key)[:-100])

    code, doc, err = run_cli(capsys, "verify", "--backup", backup_id, "--source", "azure")
    assert code == 1
    assert f"azure: {key} failed verification" in err
    assert "ciphertext SHA-256" in err and "authentication tag mismatch" in err
    assert doc["copies"][0]["ok"] is False

    code, doc, err = run_cli(capsys, "verify", "--backup", backup_id, "--source", "s3")
    assert code == 1
    assert f"s3: {key} failed verification: size of {key} differs" in err
    assert "truncated or replaced" in err

    for source in ("azure", "s3"):
        target = f"fromdamaged_{source}_{world.source_db}"
        code, _, err = run_cli(capsys, "restore", "--backup", backup_id, "--source", source,
                               "--target-url", world.pg.url(target))
        assert code == 2
        assert f"refusing to restore: {source}: {key} failed verification" in err
        assert not database_exists(world.pg, target)  # not even created

    target = world.pg.url(f"fromgcs_{world.source_db}")
    code, doc, err = run_cli(capsys, "restore", "--backup", backup_id, "--source", "gcs",
                             "--target-url", target)
    assert code == 0, err
    assert table_checksums(target) == table_checksums(world.source_url)

    # status sees both damaged copies as disagreeing with the manifest
    report = compute_status(world.settings.strategy(), world.stores(), "staging",
                            world.backup_times["full"] + timedelta(minutes=1),
                            trust=Trust.from_settings(world.settings))
    assert report.replica_mismatches == 1
    text = " | ".join(report.messages)
    assert f"azure: {key} changed since it was verified" in text
    assert f"s3: {key} is " in text and "the manifest says" in text


def test_missing_manifest_means_the_copy_does_not_count(fresh_world, capsys, monkeypatch):
    world = fresh_world
    use_env(world, monkeypatch)
    first = world.backups["full"]
    second = world.backup("full", datetime.now(UTC).replace(microsecond=0))
    gcs = world.store("gcs")
    entry = build_catalog(world.stores(), "staging").find(second)
    gcs.delete(entry.ref.manifest_key)

    code, doc, _ = run_cli(capsys, "list", "--json")
    listed = {b["backup_id"]: b for b in doc["backups"]}
    assert listed[second]["complete_in"] == ["s3", "azure"]
    assert listed[second]["stores"]["gcs"]["state"] == "no-manifest"

    code, doc, err = run_cli(capsys, "verify", "--backup", second, "--source", "gcs")
    assert code == 1 and "no complete copy (no-manifest)" in err
    # asked directly, the check names the missing key
    result = verify_copy(gcs, entry, trust=Trust.from_settings(world.settings))
    assert result.problems == [f"manifest {entry.ref.manifest_key} is missing: the backup "
                               "does not count in this store"]

    target = f"nomanifest_{world.source_db}"
    code, _, err = run_cli(capsys, "restore", "--backup", second, "--source", "gcs",
                           "--target-url", world.pg.url(target))
    assert code == 2 and f"backup {second} is not complete in gcs (no-manifest)" in err
    assert not database_exists(world.pg, target)
    # "latest" in gcs is the newest backup that counts there: the first one
    code, doc, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url",
                             world.pg.url(target))
    assert code == 0, err
    assert doc["backup_id"] == first


def test_restore_with_the_recovery_key_while_kms_is_down(world, capsys, monkeypatch, tmp_path):
    use_env(world, monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{servers.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run_cli(capsys, "verify", "--source", "s3")
    assert code == 2
    assert "decryption failed" in err and "Could not connect" in err
    assert "decrypt offline with --recovery-key PATH" in err  # the way out, in the message
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "restore", "--source", "s3", "--target-url",
                           world.pg.url(f"nokms_{world.source_db}"))
    assert code == 2 and "decrypt offline with --recovery-key PATH" in err, err
    assert not database_exists(world.pg, f"nokms_{world.source_db}")

    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(crypto.generate_recovery_key(3072)[0])
    code, _, err = run_cli(capsys, "verify", "--source", "s3", "--recovery-key", str(wrong))
    assert code == 2 and "not the one this backup was encrypted for" in err

    # the recovery key as it should be stored: encrypted, with its password in a file of its own
    from cryptography.hazmat.primitives import serialization

    key = tmp_path / "recovery.pem"
    key.write_bytes(serialization.load_pem_private_key(world.recovery_private_pem, None)
                    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.BestAvailableEncryption(b"s3cret pass")))
    code, _, err = run_cli(capsys, "verify", "--source", "s3", "--recovery-key", str(key))
    assert code == 3 and "password-protected: pass --recovery-key-password-file" in err
    password = tmp_path / "recovery.pw"
    password.write_text("s3cret pass\n")
    target = world.pg.url(f"offline_{world.source_db}")
    code, doc, err = run_cli(capsys, "restore", "--source", "s3", "--target-url", target,
                             "--recovery-key", str(key), "--recovery-key-password-file",
                             str(password))
    assert code == 0, err
    assert doc["key_used"] == "recovery-key"
    assert table_checksums(target) == table_checksums(world.source_url)


def test_restore_from_gcs_while_the_s3_server_is_stopped(pg, cloud_env, recovery_keys, capsys,
                                                         monkeypatch):
    with servers.moto_server() as s3_server:
        # S3 on a server of its own (KMS stays on the session's), so it can be stopped alone.
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.env["AWS_ENDPOINT_URL"])
        world = build_world(pg, recovery_keys, ("full",))
        use_env(world, monkeypatch)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        s3_server.stop()

        code, doc, err = run_cli(capsys, "list", "--json")
        assert code == 1 and "s3 could not be listed" in err
        assert doc["backups"][0]["complete_in"] == ["gcs", "azure"]

        code, _, err = run_cli(capsys, "restore", "--source", "s3", "--target-url",
                               pg.url(f"s3down_{world.source_db}"))
        assert code == 2 and "cannot list s3" in err

        target = pg.url(f"gcsup_{world.source_db}")
        code, doc, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url", target)
        assert code == 0, err
        assert doc["source"] == "gcs" and doc["key_used"] == "kms"
        assert table_checksums(target) == table_checksums(world.source_url)


def test_body_under_another_backups_key_is_refused(fresh_world):
    """A body moved to another backup's key, under an edited copy of its manifest, is refused:
    the edited manifest's signature no longer verifies (and the encryption context would not
    match either)."""
    world = fresh_world
    store = world.store("gcs")
    entry = build_catalog(world.stores(), "staging").find(world.backups["full"])
    other = BackupRef(entry.ref.environment, entry.ref.tier, entry.ref.data_class,
                      entry.ref.timestamp + timedelta(seconds=1), "0123456789ab")
    manifest = json.loads(store.get_bytes(entry.ref.manifest_key))
    manifest.update(backup_id=other.backup_id, body_key=other.body_key)
    store.put_bytes(other.body_key, store.get_bytes(entry.ref.body_key))
    store.put_bytes(other.manifest_key, json.dumps(manifest).encode())
    moved = build_catalog({"gcs": store}, "staging").find(other.backup_id)
    result = verify_copy(store, moved, trust=Trust.from_settings(world.settings))
    assert not result.ok
    assert "signature that does not verify" in result.problems[0]
