"""Drill records signed in KMS with the record-only key (infra/aws/signing.py, purpose
"records"), on a real moto server: the drill's own record writer signs with
VO2DR_RECORD_SIGNING_KEY, and `vo2dr report` counts the record when the key's public half is
pinned (VO2DR_RECORD_PUBLIC_KEYS, from the stack's recordPublicKeys), shows one signed with a
key that is not pinned as forged and does not count it. A manifest signed with the record key
is refused by the manifest verifier, which trusts signingPublicKeys only."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from vo2dr.cli import main
from vo2dr.drill import ClassReport, DrillReport, write_drill_record
from vo2dr.manifest import Manifest
from vo2dr.settings import Settings
from vo2dr.signing import AwsKmsSigner, SignatureError, generate_signing_key
from vo2dr.trust import Trust

from tests.unit.test_signing import _manifest_json

ROOT = Path(__file__).resolve().parents[3]
ENV = "staging"


@pytest.fixture
def aws(monkeypatch, moto):
    """moto only (S3 and KMS), through the standard variables; nothing real is reachable."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "GOOGLE_", "AZURE_", "VO2DR_")):
            monkeypatch.delenv(var, raising=False)
    for k, v in moto.env.items():
        monkeypatch.setenv(k, v)
    bucket = f"vo2dr-records-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    kms = boto3.client("kms")
    backup_key = kms.create_key(Description="backup key")["KeyMetadata"]["Arn"]

    def signing_key(description: str) -> tuple[str, str]:
        arn = kms.create_key(Description=description, KeyUsage="SIGN_VERIFY",
                             KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
        der = kms.get_public_key(KeyId=arn)["PublicKey"]
        pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return arn, pem.decode()

    return bucket, backup_key, signing_key


def _drill(started: str, seconds: float) -> DrillReport:
    return DrillReport(ok=True, environment=ENV, started_at=started, seconds=seconds, classes=[
        ClassReport("critical", ok=True, backup_id="abcdefabcde1",
                    backup_time="2026-11-02T08:45:00Z", source="s3", restore_seconds=seconds,
                    rto_seconds=3600, within_rto=True,
                    tables={"users": {"manifest": 10, "restored": 10}})])


def test_a_drill_record_signed_with_the_pinned_record_key_counts_a_forged_one_does_not(
        aws, tmp_path, capsys):
    bucket, backup_key, signing_key = aws
    record_arn, record_pem = signing_key("vo2dr-staging-record-signing")
    rogue_arn, _ = signing_key("someone else's key, not in recordPublicKeys")
    _, manifest_pem = generate_signing_key()  # the manifests' key: not used by the drill
    base = Settings(environment=ENV, s3_bucket=bucket, kms_key_id=backup_key)
    # The drill function's environment: VO2DR_RECORD_SIGNING_KEY, no manifest key.
    ours = write_drill_record(replace(base, record_signing_key=record_arn),
                              _drill("2026-11-02T09:00:00Z", 120.0))
    forged = write_drill_record(replace(base, record_signing_key=rogue_arn),
                                _drill("2026-11-16T09:00:00Z", 60.0))
    assert ours == forged == {"s3": "written"}
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"reports/{ENV}/drills/")
    docs = [json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            for o in listed["Contents"]]
    assert sorted(d["signature"]["signer"] for d in docs) == sorted([record_arn, rogue_arn])

    # `vo2dr report` as an operator runs it with restoreEnvironment (no credentials to sign).
    out = tmp_path / "report.json"
    rc = main(["report", "--environment", ENV, "--s3-bucket", bucket,
               "--stack-file", str(ROOT / "Pulumi.staging.yaml"),
               "--signing-public-keys", manifest_pem.decode(),
               "--record-public-keys", record_pem, "--since", "2026-10-01T00:00:00Z",
               "--now", "2026-11-30T00:00:00Z", "--output", str(tmp_path / "r.html"),
               "--json-output", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["drills"]["count"] == 1
    [run] = doc["drills"]["classes"]["critical"]["drills"]
    assert run["restore_seconds"] == 120.0
    [bad] = doc["history"]["untrusted_records"]
    assert bad["trust"] == "invalid" and "untrusted key" in bad["reason"]
    assert "2026111" in bad["key"] and "drills/" in bad["key"]

    # Without recordPublicKeys pinned (a first deploy): both are shown, neither counts.
    rc = main(["report", "--environment", ENV, "--s3-bucket", bucket,
               "--stack-file", str(ROOT / "Pulumi.staging.yaml"),
               "--signing-public-keys", manifest_pem.decode(),
               "--since", "2026-10-01T00:00:00Z", "--now", "2026-11-30T00:00:00Z",
               "--output", str(tmp_path / "r.html"), "--json-output", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["drills"]["count"] == 0
    assert len(doc["history"]["untrusted_records"]) == 2


def test_the_manifest_verifier_refuses_a_manifest_signed_with_the_record_key(aws):
    _, _, signing_key = aws
    record_arn, record_pem = signing_key("vo2dr-staging-record-signing")
    _, manifest_pem = generate_signing_key()
    # What every reader of backups trusts: signingPublicKeys only (recordPublicKeys is beside
    # it in the same environment, and must not widen it).
    settings = Settings(environment=ENV, signing_public_keys=manifest_pem.decode(),
                        record_public_keys=record_pem)
    trust = Trust.from_settings(settings)
    manifest = Manifest.from_json(_manifest_json())
    manifest.sign(AwsKmsSigner(record_arn))  # signed in KMS, by the drill's key
    with pytest.raises(SignatureError, match="signed by an untrusted key"):
        manifest.verify_signature(trust.signers, source="s3:manifest")
    # The same check passes for a key it does trust (the test can fail).
    assert manifest.verify_signature(
        Trust.from_settings(Settings(signing_public_keys=record_pem)).signers)
