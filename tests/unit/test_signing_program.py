"""The manifest signing keys as the program declares them (docs/backup-authenticity.md): an AWS
KMS SIGN_VERIFY key only the backup writer role may sign with, a Cloud KMS EC_SIGN_P256_SHA256
key only the standby's service account may sign with, and the trusted public halves in every
reader's environment. Proven on the real program under mocks, and by the policy rules."""

from __future__ import annotations

import json

import pytest

from dev.mockrun import TEST_SIGNING_PUBLIC_KEYS, Graph, run_program
from policy.aws.kms import check_aws_kms_signing_key

STACKS = ("staging", "production")
_GRAPHS: dict[str, Graph] = {}


@pytest.fixture(params=STACKS)
def g(request) -> Graph:
    if request.param not in _GRAPHS:
        _GRAPHS[request.param] = run_program(request.param)
    return _GRAPHS[request.param]


def _policy(key) -> dict:
    doc = key.inputs["policy"]
    return json.loads(doc) if isinstance(doc, str) else doc


def test_the_aws_signing_key_signs_for_the_writer_role_only(g):
    [key] = [k for k in g.of_type("aws:kms/key:Key") if k.inputs.get("keyUsage") == "SIGN_VERIFY"]
    assert key.inputs["customerMasterKeySpec"] == "ECC_NIST_P256"
    writer = g.one("aws:iam/role:Role", "backup-writer").outputs["arn"]
    signers = [s for s in _policy(key)["Statement"]
               if any(a in ("kms:Sign", "kms:*", "*") for a in s["Action"])]
    assert [s["Principal"]["AWS"] for s in signers] == [writer]
    admin = next(s for s in _policy(key)["Statement"] if s["Principal"]["AWS"].endswith(":root")
                 and "kms:PutKeyPolicy" in s["Action"])
    assert "kms:Sign" not in admin["Action"] and "kms:CreateGrant" not in admin["Action"]
    assert key.protect == (g.stack == "production")
    assert check_aws_kms_signing_key("aws:kms/key:Key", key.inputs, None) == []


def test_the_backup_function_signs_with_it_and_every_reader_trusts_the_config(g):
    [key] = [k for k in g.of_type("aws:kms/key:Key") if k.inputs.get("keyUsage") == "SIGN_VERIFY"]
    for fn in g.of_type("aws:lambda/function:Function"):
        env = fn.inputs["environment"]["variables"]
        assert env["VO2DR_SIGNING_PUBLIC_KEYS"] == TEST_SIGNING_PUBLIC_KEYS
        if "-backup" in fn.name:  # one backup function per data class
            assert env["VO2DR_SIGNING_KEY"] == key.outputs["arn"]
        else:  # status and drill verify; they never sign
            assert "VO2DR_SIGNING_KEY" not in env


def test_the_standby_signs_with_its_own_cloud_kms_key_alone(g):
    [key] = [k for k in g.of_type("gcp:kms/cryptoKey:CryptoKey")
             if k.inputs.get("purpose") == "ASYMMETRIC_SIGN"]
    assert key.inputs["versionTemplate"]["algorithm"] == "EC_SIGN_P256_SHA256"
    [binding] = g.of_type("gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding")
    assert binding.inputs["role"] == "roles/cloudkms.signer"
    standby_sa = next(r for r in g.of_type("gcp:serviceaccount/account:Account")
                      if "standby" in r.name and "scheduler" not in r.name)
    assert binding.inputs["members"] == [f"serviceAccount:{standby_sa.outputs['email']}"]
    signer_members = [m for m in g.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
                      if m.inputs["role"] in ("roles/cloudkms.signer",
                                              "roles/cloudkms.signerVerifier")]
    assert signer_members == []  # nobody else: no additive grant of a signer role anywhere
    for job in g.of_type("gcp:cloudrunv2/job:Job"):
        [container] = job.inputs["template"]["template"]["containers"]
        env = {e["name"]: e.get("value") for e in container["envs"]}
        assert env["VO2DR_SIGNING_KEY"].startswith(key.outputs.get("id", "projects/"))
        assert env["VO2DR_SIGNING_KEY"].endswith("/cryptoKeyVersions/1")
        assert env["VO2DR_SIGNING_PUBLIC_KEYS"] == TEST_SIGNING_PUBLIC_KEYS
