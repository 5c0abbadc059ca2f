"""The signing keys as the program declares them (docs/backup-authenticity.md): an AWS KMS
SIGN_VERIFY key only the backup writer role may sign manifests with, a Cloud KMS
EC_SIGN_P256_SHA256 key only the standby's service account may sign with, a record key only the
drill function may sign with (not its role), and the trusted public halves where they are
read. Proven on the real program under mocks, and by the policy rules."""

from __future__ import annotations

import json

import pytest

from dev.mockrun import TEST_RECORD_PUBLIC_KEYS, TEST_SIGNING_PUBLIC_KEYS, Graph, run_program
from policy import policies as P
from policy.aws.kms import check_aws_kms_signing_key
from policy.resources import resources_from_graph
from tests.program_graphs import program_graph

STACKS = ("staging", "production")
_GRAPHS: dict[str, Graph] = {}


@pytest.fixture(params=STACKS)
def g(request) -> Graph:
    if request.param not in _GRAPHS:
        _GRAPHS[request.param] = program_graph(request.param)
    return _GRAPHS[request.param]


def _policy(key) -> dict:
    doc = key.inputs["policy"]
    return json.loads(doc) if isinstance(doc, str) else doc


def _manifest_key(g):
    [key] = [k for k in g.of_type("aws:kms/key:Key") if k.inputs.get("keyUsage") == "SIGN_VERIFY"
             and k.name.endswith("-signing-key") and "record" not in k.name]
    return key


def _record_key(g):
    [key] = [k for k in g.of_type("aws:kms/key:Key") if k.inputs.get("keyUsage") == "SIGN_VERIFY"
             and k.name.endswith("-record-signing-key")]
    return key


def _signers(key) -> list[dict]:
    return [s for s in _policy(key)["Statement"]
            if any(a in ("kms:Sign", "kms:*", "*") for a in s["Action"])]


def _sign_grants(g, key_arn: str) -> list[tuple[str, dict]]:
    """(policy name, statement) of every IAM policy statement allowing kms:Sign on the key."""
    out = []
    for r in [*g.of_type("aws:iam/rolePolicy:RolePolicy"), *g.of_type("aws:iam/policy:Policy")]:
        doc = json.loads(r.inputs["policy"])
        for st in doc["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            if st["Effect"] == "Allow" and any(a in ("kms:Sign", "kms:*", "*") for a in actions) \
                    and any(x in (key_arn, "*") for x in res):
                out.append((r.name, st))
    return out


def test_the_aws_signing_key_signs_for_the_writer_role_only(g):
    key = _manifest_key(g)
    assert key.inputs["customerMasterKeySpec"] == "ECC_NIST_P256"
    writer = g.one("aws:iam/role:Role", "backup-writer").outputs["arn"]
    assert [s["Principal"]["AWS"] for s in _signers(key)] == [writer]
    assert "Condition" not in _signers(key)[0]
    # The drill's role holds no kms:Sign on it, in the key policy or in IAM.
    assert _sign_grants(g, key.outputs["arn"]) == []
    admin = next(s for s in _policy(key)["Statement"] if s["Principal"]["AWS"].endswith(":root")
                 and "kms:PutKeyPolicy" in s["Action"])
    assert "kms:Sign" not in admin["Action"] and "kms:CreateGrant" not in admin["Action"]
    assert key.protect == (g.stack == "production")
    assert check_aws_kms_signing_key("aws:kms/key:Key", key.inputs, None) == []


def test_the_backup_function_signs_with_it_and_every_reader_trusts_the_config(g):
    key = _manifest_key(g)
    for fn in g.of_type("aws:lambda/function:Function"):
        env = fn.inputs["environment"]["variables"]
        assert env["VO2DR_SIGNING_PUBLIC_KEYS"] == TEST_SIGNING_PUBLIC_KEYS
        if "-backup" in fn.name:  # one backup function per data class
            assert env["VO2DR_SIGNING_KEY"] == key.outputs["arn"]
        else:  # status and drill verify; they never sign a manifest
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


def test_only_the_drill_function_may_sign_with_the_record_key(g):
    key = _record_key(g)
    assert key.inputs["customerMasterKeySpec"] == "ECC_NIST_P256"
    assert key.protect == (g.stack == "production")
    reader = g.one("aws:iam/role:Role", "restore-reader")
    account = key.outputs["arn"].split(":")[4]
    # The key policy names no signer: it delegates kms:Sign to IAM for the drill's role only.
    [delegation] = _signers(key)
    assert delegation["Principal"]["AWS"] == f"arn:aws:iam::{account}:root"
    assert delegation["Action"] == ["kms:Sign"]
    assert delegation["Condition"] == {"ArnEquals": {"aws:PrincipalArn": reader.outputs["arn"]}}
    # And the role's IAM policy allows it only to the drill function (its deterministic ARN).
    [drill] = [f for f in g.of_type("aws:lambda/function:Function") if f.name.endswith("-drill")]
    [(name, grant)] = _sign_grants(g, key.outputs["arn"])
    assert grant["Resource"] == key.outputs["arn"]
    assert grant["Condition"] == {"ArnEquals": {"lambda:SourceFunctionArn": drill.outputs["arn"]}}
    policy = next(r for r in g.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == name)
    assert policy.inputs["role"] == reader.outputs["name"] == drill.inputs["role"].split("/")[-1]


def test_the_drill_signs_records_with_it_and_the_report_trusts_the_stack_file(g):
    record, manifest = _record_key(g), _manifest_key(g)
    for fn in g.of_type("aws:lambda/function:Function"):
        env = fn.inputs["environment"]["variables"]
        if fn.name.endswith("-drill"):
            assert env["VO2DR_RECORD_SIGNING_KEY"] == record.outputs["arn"]
        else:
            assert "VO2DR_RECORD_SIGNING_KEY" not in env
        assert record.outputs["arn"] != env.get("VO2DR_SIGNING_KEY", manifest.outputs["arn"])
        assert "VO2DR_RECORD_PUBLIC_KEYS" not in env  # no function reads records
    restore = g.outputs["restoreEnvironment"]
    assert restore["VO2DR_RECORD_PUBLIC_KEYS"] == TEST_RECORD_PUBLIC_KEYS
    assert "VO2DR_RECORD_SIGNING_KEY" not in restore
    assert g.outputs["awsRecordSigningKeyArn"] == record.outputs["arn"]


def test_the_signing_rule_passes_on_the_program_and_fails_without_the_pin(g):
    rule = P.RULES_BY_NAME["aws-kms-signing-key-one-signer"]
    resources = resources_from_graph(g)
    assert rule.check(resources, None) == []
    unpinned = []
    for r in resources:
        if r.type == "aws:iam/rolePolicy:RolePolicy" and "record-signing" in r.name:
            doc = json.loads(r.props["policy"])
            doc["Statement"][0].pop("Condition")
            r = type(r)(r.type, r.name, r.urn, {**r.props, "policy": json.dumps(doc)},
                        r.parent, r.dependencies)
        unpinned.append(r)
    assert any("without pinning it to one function" in f.message
               for f in rule.check(unpinned, None))


def test_without_record_public_keys_the_program_warns_and_the_report_trusts_none(caplog):
    # A first deploy: the key is created, its public half is not in the stack file yet. The
    # mocked engine logs the program's warnings (what `pulumi preview` prints) to `logging`.
    caplog.set_level("WARNING")
    g = run_program("staging", {"vo2max-dr:recordPublicKeys": None})
    assert "VO2DR_RECORD_PUBLIC_KEYS" not in g.outputs["restoreEnvironment"]
    [warning] = [r.getMessage() for r in caplog.records
                 if "recordPublicKeys is not set" in r.getMessage()]
    assert "does not count them" in warning
    drill = next(f for f in g.of_type("aws:lambda/function:Function") if f.name.endswith("-drill"))
    assert drill.inputs["environment"]["variables"]["VO2DR_RECORD_SIGNING_KEY"]
