"""Issue 13's forgeries, tried as an attacker who owns one store (GCS) would, against the
emulators: each one is refused by ``verify``, ``restore`` and the drill, never becomes
``latest``, and raises a ``status`` breach. And a copy deleted from one store breaches after
the replica grace."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import psycopg
import pytest
from vo2dr import layout
from vo2dr.backup import run_backup
from vo2dr.catalog import build_catalog
from vo2dr.cli import main
from vo2dr.drill import run_drill
from vo2dr.manifest import Manifest
from vo2dr.settings import Settings
from vo2dr.status import REPLICA_GRACE_SECONDS, compute_status
from vo2dr.trust import Trust
from vo2dr.verify import verify_copy

from tests import signing_keys

from .conftest import build_world, database_exists, new_database, table_checksums

pytestmark = pytest.mark.integration

EVIL_SQL = """
CREATE TABLE evil (note text);
INSERT INTO evil VALUES ('this row must never reach a restore');
"""


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.fixture(scope="module")
def world(pg, module_env, recovery_keys):
    return build_world(pg, recovery_keys, ("full",), prefix="auth")


@pytest.fixture
def env(world, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    return world


def evil_database(pg) -> str:
    name = new_database(pg, "evil")
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute(EVIL_SQL)
    return pg.url(name)


def attacker(world, **changes) -> Settings:
    """The attacker runs our own tool against their own database, with GCS (the store they
    own) as the only destination and the recovery *public* key (public config)."""
    s = world.settings
    return Settings(database_url=evil_database(world.pg), environment=s.environment,
                    gcs_bucket=s.gcs_bucket, recovery_public_key=s.recovery_public_key,
                    strategy_json=s.strategy_json,
                    **{"signing_key": signing_keys.FOREIGN_PRIVATE.decode(), **changes})


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def assert_refused_everywhere(world, capsys, forged: str, *, real: str) -> None:
    """verify, restore (by id and as latest), the drill and status, on one forged backup."""
    code, doc, err = run_cli(capsys, "verify", "--backup", forged, "--source", "gcs")
    assert code == 1 and "refused" in err, err
    assert doc["copies"][0]["ok"] is False

    target = f"forged_{uuid.uuid4().hex[:8]}"
    code, _, err = run_cli(capsys, "restore", "--backup", forged, "--source", "gcs",
                           "--target-url", world.restorer_url(target), "--no-progress")
    assert code == 2 and "refused" in last_line(err), err
    assert last_line(err).startswith("vo2dr restore: error:")
    assert not database_exists(world.pg, target)

    # latest (verify, restore, drill) is the real backup: the forgery is in one store only
    code, doc, err = run_cli(capsys, "verify", "--source", "gcs")
    assert code == 0 and doc["backup_id"] == real, err
    target = f"latest_{uuid.uuid4().hex[:8]}"
    code, doc, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url",
                             world.restorer_url(target), "--no-progress")
    assert code == 0 and doc["backup_id"] == real, err
    assert table_checksums(world.restorer_url(target)) == table_checksums(world.source_url)
    report = run_drill(world.settings, data_classes=["full"], source="gcs",
                       rto_override_seconds=600)
    assert report.classes[0].backup_id == real and report.ok, report.to_json()

    status = compute_status(world.settings.strategy(), world.stores(), "staging",
                            datetime.now(UTC), trust=Trust.from_settings(world.settings))
    assert f"unsigned:full:{forged}" in status.breaches, status.breaches
    assert not status.ok


def test_a_recovery_key_only_forgery_in_one_store_is_refused(env, capsys, tmp_path):
    world = env
    key = tmp_path / "recovery.pem"
    key.write_bytes(world.recovery_private_pem)
    forged = run_backup(attacker(world), "full")  # the standby's mode: no KMS key
    assert forged["ok"] and forged["kms_key_arn"] == ""
    code, _, err = run_cli(capsys, "verify", "--backup", forged["backup_id"], "--source",
                             "gcs", "--recovery-key", str(key))
    assert code == 1 and "signed by an untrusted key" in err, err
    assert_refused_everywhere(world, capsys, forged["backup_id"], real=world.backups["full"])


def test_a_forgery_under_a_foreign_kms_key_is_refused(env, capsys):
    world = env
    foreign = boto3.client("kms").create_key(Description="the attacker's")["KeyMetadata"]["Arn"]
    forged = run_backup(attacker(world, kms_key_id=foreign), "full")
    assert forged["ok"] and forged["kms_key_arn"] == foreign
    assert_refused_everywhere(world, capsys, forged["backup_id"], real=world.backups["full"])


def test_decryption_uses_only_the_configured_kms_key(env, capsys):
    """Key pinning on its own: even a manifest that passes the signature check (here signed
    by our key, as if the signer were misused) cannot choose the KMS key."""
    world = env
    foreign = boto3.client("kms").create_key(Description="the attacker's")["KeyMetadata"]["Arn"]
    forged = run_backup(attacker(world, kms_key_id=foreign,
                                 signing_key=signing_keys.PRIVATE.decode()), "full")
    gcs = world.store("gcs")
    entry = build_catalog({"gcs": gcs}, "staging").find(forged["backup_id"])
    trust = Trust.from_settings(world.settings)
    with pytest.raises(Exception, match=f"not the configured key {world.settings.kms_key_id}"):
        verify_copy(gcs, entry, trust=trust)
    code, _, err = run_cli(capsys, "verify", "--backup", forged["backup_id"], "--source", "gcs")
    assert code == 2 and "not the configured key" in err
    assert len(err.strip().splitlines()) == 1
    # ... and the recovery key must be the configured one too
    other = replace(trust, recovery_key_id="0" * 64)
    with pytest.raises(Exception, match="not the configured recovery key"):
        verify_copy(gcs, entry, trust=other, recovery_key_pem=world.recovery_private_pem)


def test_a_real_body_copied_under_a_forged_manifest_is_refused(env, capsys):
    world = env
    gcs = world.store("gcs")
    real = build_catalog({"gcs": gcs}, "staging").find(world.backups["full"])
    ref = layout.BackupRef("staging", real.ref.tier, "full",
                           datetime.now(UTC).replace(microsecond=0), layout.new_backup_id())
    manifest = json.loads(gcs.get_bytes(real.ref.manifest_key))
    manifest.update(backup_id=ref.backup_id, body_key=ref.body_key)
    manifest["encryption"]["encryption_context"]["backup_id"] = ref.backup_id
    gcs.put_bytes(ref.body_key, gcs.get_bytes(real.ref.body_key))
    gcs.put_bytes(ref.manifest_key, json.dumps(manifest).encode())  # the old signature kept
    code, _, err = run_cli(capsys, "verify", "--backup", ref.backup_id, "--source", "gcs")
    assert code == 1 and "does not verify" in err
    assert_refused_everywhere(world, capsys, ref.backup_id, real=world.backups["full"])


def test_a_signed_manifest_with_an_edited_row_count_is_refused(pg, cloud_env, recovery_keys,
                                                               capsys, monkeypatch):
    world = build_world(pg, recovery_keys, ("full",), prefix="edit")
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    backup_id = world.backups["full"]
    gcs = world.store("gcs")
    entry = build_catalog({"gcs": gcs}, "staging").find(backup_id)
    doc = json.loads(gcs.get_bytes(entry.ref.manifest_key))
    doc["tables"][0]["rows"] += 1
    gcs.delete(entry.ref.manifest_key)  # the attacker owns the account: in place
    gcs.put_bytes(entry.ref.manifest_key, json.dumps(doc).encode())

    code, _, err = run_cli(capsys, "verify", "--backup", backup_id, "--source", "gcs")
    assert code == 1 and "does not verify (edited or forged): refused" in err
    target = f"edited_{uuid.uuid4().hex[:8]}"
    code, _, err = run_cli(capsys, "restore", "--backup", backup_id, "--source", "gcs",
                           "--target-url", world.restorer_url(target), "--no-progress")
    assert code == 2 and "does not verify" in last_line(err)
    code, _, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url",
                           world.restorer_url(target), "--no-progress")
    assert code == 2 and "authentic (signed) in 2 of the stores" in last_line(err)
    assert not database_exists(pg, target)
    drill = run_drill(world.settings, data_classes=["full"], source="gcs",
                      rto_override_seconds=600)
    assert not drill.ok and "does not verify" in drill.classes[0].errors[0]
    status = compute_status(world.settings.strategy(), world.stores(), "staging",
                            datetime.now(UTC), trust=Trust.from_settings(world.settings))
    # (only the full class was backed up: the others breach their RPO, which is not our test)
    assert [b for b in status.breaches if not b.startswith("rpo:")] == \
        [f"unsigned:full:{backup_id}"]
    # the two untouched copies still agree: the drill without --source restores one
    assert run_drill(world.settings, data_classes=["full"], rto_override_seconds=600).ok


@pytest.mark.parametrize("lost", ["manifest", "body"])
def test_a_copy_deleted_from_one_store_breaches_after_the_grace(pg, cloud_env, recovery_keys,
                                                                lost):
    world = build_world(pg, recovery_keys, ("full",), prefix="del")
    backup_id = world.backups["full"]
    stores = world.stores()
    entry = build_catalog(stores, "staging").find(backup_id)
    manifest = Manifest.from_json(stores["s3"].get_bytes(entry.ref.manifest_key))
    finished = datetime.fromisoformat(manifest.finished_at)
    key = entry.ref.manifest_key if lost == "manifest" else entry.ref.body_key
    stores["azure"].delete(key)
    trust = Trust.from_settings(world.settings)
    strategy = world.settings.strategy()
    soon = compute_status(strategy, stores, "staging", finished + timedelta(seconds=30),
                          trust=trust)
    assert not [b for b in soon.breaches if not b.startswith("rpo:")], soon.messages
    late = compute_status(strategy, stores, "staging",
                          finished + timedelta(seconds=REPLICA_GRACE_SECONDS + 1), trust=trust)
    assert [b for b in late.breaches if not b.startswith("rpo:")] == \
        [f"copies:full:{backup_id}"], late.messages
    state = "no-manifest" if lost == "manifest" else "manifest-only"
    assert any(f"missing from azure ({state})" in m for m in late.messages), late.messages


def test_the_standbys_backups_count_once_signed_and_in_two_stores(pg, cloud_env,
                                                                  recovery_keys, capsys,
                                                                  monkeypatch, tmp_path):
    """AWS down: the standby writes GCS and Azure, recovery key only, signed with its own
    (Cloud KMS) key. latest is then its backup, restorable with the recovery key; status
    reports the copy missing from S3."""
    world = build_world(pg, recovery_keys, ("full",), prefix="standby")
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    standby = replace(world.settings, s3_bucket="", kms_key_id="",
                      signing_key=signing_keys.STANDBY_PRIVATE.decode())
    summary = run_backup(standby, "full")
    assert summary["ok"] and set(summary["destinations"]) == {"gcs", "azure"}
    key = tmp_path / "recovery.pem"
    key.write_bytes(world.recovery_private_pem)
    target = world.restorer_url(f"standby_{uuid.uuid4().hex[:8]}")
    code, doc, err = run_cli(capsys, "restore", "--source", "azure", "--target-url", target,
                             "--recovery-key", str(key), "--no-progress")
    assert code == 0 and doc["backup_id"] == summary["backup_id"], err
    status = compute_status(world.settings.strategy(), world.stores(), "staging",
                            datetime.now(UTC) + timedelta(seconds=REPLICA_GRACE_SECONDS + 60),
                            trust=Trust.from_settings(world.settings))
    assert f"copies:full:{summary['backup_id']}" in status.breaches
    assert not any(b.startswith("unsigned:") for b in status.breaches)


def test_allow_single_copy_takes_a_lone_copy_and_says_why(pg, cloud_env, recovery_keys,
                                                         capsys, monkeypatch):
    world = build_world(pg, recovery_keys, ("full",), prefix="single")
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    lone = run_backup(replace(world.settings, s3_bucket="", azure_container_url=""), "full")
    assert set(lone["destinations"]) == {"gcs"}
    code, doc, err = run_cli(capsys, "verify", "--source", "gcs")
    assert code == 0 and doc["backup_id"] == world.backups["full"], err
    code, doc, err = run_cli(capsys, "verify", "--source", "gcs", "--allow-single-copy")
    assert code == 0 and doc["backup_id"] == lone["backup_id"], err
    assert "is authentic in gcs only" in err and "planted" in err

