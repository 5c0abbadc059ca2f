"""The Encryption SDK suites, end to end against the emulators (see tests/unit/test_suites.py).

- A new backup's body is written with the committing suite without the SDK's message
  signature, in every store, and its signed manifest records that suite.
- A backup written before (the signing suite, made here by the real backup job with that
  suite) still verifies, restores (KMS and the recovery key) and drills.
- An attacker who owns one store (GCS) replaces a real backup's body under its real signed
  manifest with: a same-key forgery (what anyone who may decrypt it can write: same wrapped data
  keys, context, suite and size; authentic to the SDK under the new suite, and under the old
  one when decrypted with the recovery key, whose wrapping does not bind the context), other
  plaintext encrypted to the public recovery key, or a message of a non-committing suite.
  ``verify`` (with KMS and with the recovery key), ``restore`` and the drill refuse each by the
  signed manifest's pinned ciphertext SHA-256 (and the earlier checks where they apply), and the
  forged rows never reach PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import psycopg
import pytest
import zstandard
from vo2dr import crypto
from vo2dr.catalog import build_catalog
from vo2dr.cli import main
from vo2dr.drill import run_drill
from vo2dr.manifest import Manifest
from vo2dr.verify import expected_context

from tests import forgery

from .conftest import build_world, database_exists, new_database, table_checksums

pytestmark = pytest.mark.integration

NEW, OLD = crypto.ALGORITHM_NAME, crypto.SIGNING_ALGORITHM_NAME
EVIL_SQL = """
CREATE TABLE evil (note text);
INSERT INTO evil VALUES ('this row must never reach a restore');
"""


@pytest.fixture(scope="module")
def new_world(pg, module_env, recovery_keys):
    return build_world(pg, recovery_keys, ("full",), prefix="suite")


@pytest.fixture(scope="module")
def old_world(pg, module_env, recovery_keys):
    """A backup made by the real job before this change: with the signing suite."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(crypto, "ALGORITHM_NAME", OLD)
        return build_world(pg, recovery_keys, ("full",), prefix="oldsuite")


@pytest.fixture(scope="module")
def evil_dump(pg, module_env) -> bytes:
    """The attacker's own database, dumped as our job dumps (pg_dump custom format)."""
    name = new_database(pg, "evil")
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute(EVIL_SQL)
    return subprocess.run([str(pg.bin_dir / "pg_dump"), "--format=custom", "--compress=0",
                           f"--dbname={pg.url(name)}"], capture_output=True, check=True).stdout


def use(world, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    return world


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def manifest_and_body(world, store: str = "gcs"):
    s = world.store(store)
    entry = build_catalog({store: s}, "staging").find(world.backups["full"])
    return s, entry, Manifest.from_json(s.get_bytes(entry.ref.manifest_key)), \
        s.get_bytes(entry.ref.body_key)


def test_a_new_backup_is_written_with_the_suite_without_a_message_signature(new_world):
    for name in ("s3", "gcs", "azure"):
        _, _, manifest, body = manifest_and_body(new_world, name)
        assert crypto.message_algorithm(body[:4]) == NEW, name
        assert manifest.encryption.algorithm == NEW
        header = forgery.header_of(body, new_world.recovery_private_pem)
        assert header.algorithm.name == NEW
        assert "aws-crypto-public-key" not in header.encryption_context


def test_an_old_signing_suite_backup_still_verifies_restores_and_drills(old_world, capsys,
                                                                        monkeypatch, tmp_path):
    world = use(old_world, monkeypatch)
    _, _, manifest, body = manifest_and_body(world)
    assert crypto.message_algorithm(body[:4]) == OLD and manifest.encryption.algorithm == OLD

    code, doc, err = run_cli(capsys, "verify", "--source", "all")
    assert code == 0 and doc["backup_id"] == world.backups["full"], err
    assert all(c["ok"] for c in doc["copies"]) and len(doc["copies"]) == 3
    key = tmp_path / "recovery.pem"
    key.write_bytes(world.recovery_private_pem)
    for offline in (False, True):
        target = f"oldsuite_{uuid.uuid4().hex[:8]}"
        argv = ["restore", "--source", "gcs", "--target-url", world.restorer_url(target),
                "--no-progress"] + (["--recovery-key", str(key)] if offline else [])
        code, doc, err = run_cli(capsys, *argv)
        assert code == 0 and doc["backup_id"] == world.backups["full"], err
        assert table_checksums(world.restorer_url(target)) == table_checksums(world.source_url)
    report = run_drill(world.settings, data_classes=["full"], source="gcs",
                       rto_override_seconds=600)
    assert report.ok, report.to_json()


def _forge(kind: str, world, manifest: Manifest, body: bytes, evil: bytes) -> bytes:
    """A body of ``kind`` holding the attacker's dump, exactly as long as the real ``body``
    (so it passes the size check made before the download and reaches the decryption)."""
    private = world.recovery_private_pem
    public = world.settings.recovery_public_key_pem()
    if kind == "same-key":
        forged = forgery.same_size_forgery(body, private, evil)
        # Authentic to the SDK with every check the manifest gives it but its digests:
        compressed = b"".join(crypto.decrypt_stream(
            [forged], recovery_private_key_pem=private,
            expected_context=expected_context(manifest),
            expected_data_keys=[(k.provider_id, k.key_info, k.sha256)
                                for k in manifest.encryption.data_keys],
            expected_algorithm=manifest.encryption.algorithm))
        assert zstandard.ZstdDecompressor().decompressobj().decompress(compressed) == evil
        return forged
    guess = len(forgery.decrypt_compressed(body, private))
    if kind == "recovery-key":  # other plaintext, encrypted to the public recovery key
        enc = crypto.Encryptor(kms_key_id="", recovery_public_key_pem=public,
                               context=expected_context(manifest))
        return forgery.same_size(lambda data: b"".join(enc.stream([data])), evil, len(body),
                                 guess)
    assert kind == "non-committing"
    return forgery.same_size(
        lambda data: forgery.message_with_suite(public, data, expected_context(manifest),
                                                "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384"),
        evil, len(body), guess)


@pytest.mark.parametrize(("suite", "kind"), [
    ("new", "same-key"), ("new", "recovery-key"), ("new", "non-committing"),
    ("old", "same-key"), ("old", "recovery-key"),
])
def test_a_forged_body_under_the_real_signed_manifest_is_refused_everywhere(
        request, capsys, monkeypatch, tmp_path, evil_dump, suite, kind):
    world = use(request.getfixturevalue(f"{suite}_world"), monkeypatch)
    gcs, entry, manifest, body = manifest_and_body(world)
    forged = _forge(kind, world, manifest, body, evil_dump)
    assert len(forged) == len(body)
    backup_id = world.backups["full"]
    pinned = "ciphertext SHA-256 of"  # every refusal says so: the rest is hashed after one
    gcs.delete(entry.ref.body_key)  # the attacker owns the account: in place
    gcs.put_bytes(entry.ref.body_key, forged)
    try:
        key = tmp_path / "recovery.pem"
        key.write_bytes(world.recovery_private_pem)
        # KMS, as the job and operators decrypt; and the recovery key, which can unwrap a
        # message written to the public recovery key (the data-key pin is what refuses that)
        for extra in ([], ["--recovery-key", str(key)]):
            code, doc, err = run_cli(capsys, "verify", "--backup", backup_id, "--source", "gcs",
                                     *extra)
            assert code == 1 and doc["copies"][0]["ok"] is False, err
            problems = doc["copies"][0]["problems"]
            assert pinned in problems[-1], problems
            if kind == "same-key" and (suite == "new" or extra):
                assert len(problems) == 1, problems  # the decryption took it: only the digest
            elif kind == "same-key":
                # An old message's KMS-wrapped key is bound to its context, which names its
                # signing key: the forger's own signing key makes KMS refuse to unwrap it.
                assert "decryption failed" in problems[0], problems
            elif kind == "non-committing":
                assert "which vo2dr never writes" in problems[0], problems
            elif extra:  # the suite (new, for an old backup) or the wrapped data keys
                assert ("wrapped data keys are not the ones its signed manifest records"
                        if suite == "new" else f"not the one its signed manifest records "
                        f"({OLD})") in problems[0], problems
        target = f"forged_{uuid.uuid4().hex[:8]}"
        code, _, err = run_cli(capsys, "restore", "--backup", backup_id, "--source", "gcs",
                               "--target-url", world.restorer_url(target), "--no-progress")
        assert code == 2 and "refusing to restore" in err and pinned in err, err
        assert not database_exists(world.pg, target)
        report = run_drill(world.settings, data_classes=["full"], source="gcs",
                           rto_override_seconds=600)
        assert not report.ok and pinned in " ".join(report.classes[0].errors), report.to_json()
    finally:
        gcs.delete(entry.ref.body_key)
        gcs.put_bytes(entry.ref.body_key, body)
