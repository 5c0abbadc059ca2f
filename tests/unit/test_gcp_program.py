"""The real program under Pulumi mocks, per stack: every property of the GCS secondary store
(issue 4), the IAM scope of its grants, the keyless AWS federation, and that switching GCP off
removes exactly the GCP resources.

Expected numbers come from the same stack file, parsed by infra/config.py."""

from __future__ import annotations

import json
import re

import pytest
from vo2dr.stores.credentials import gcs_credentials

from dev.mockrun import Graph, Resource, run_program, stack_config
from infra import config, config_keys, config_storage
from infra.gcp.access import assumed_role_arn
from tests.program_graphs import program_graph

STACKS = ("staging", "production")
DAY = 86_400
KEY_RING = "gcp:kms/keyRing:KeyRing"
CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
POOL = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
LAMBDA = "aws:lambda/function:Function"
# The only IAM resource types the GCP store may declare: each is scoped to one bucket, key or
# service account. Project, folder or organization bindings would be broader than the bucket.
STORE_COMPONENTS = {"vo2dr:gcp:BucketKey", "vo2dr:gcp:BackupBucket", "vo2dr:gcp:BucketAccess",
                    "vo2dr:gcp:AwsFederation"}
ALLOWED_IAM_TYPES = {KEY_MEMBER, BUCKET_MEMBER, SA_MEMBER}
FORBIDDEN_ROLES = {"roles/owner", "roles/editor", "roles/storage.admin",
                   "roles/storage.objectAdmin", "roles/storage.objectUser",
                   "roles/cloudkms.admin", "roles/iam.serviceAccountKeyAdmin",
                   "roles/iam.serviceAccountTokenCreator"}


def cfg_of(stack: str) -> config.StackConfig:
    return stack_config(stack)


@pytest.fixture(scope="module", params=STACKS)
def run(request) -> tuple[Graph, config.StackConfig]:
    return program_graph(request.param), cfg_of(request.param)


def is_gcp(r: Resource) -> bool:
    # Also what a GCP component holds of another provider (the grant-propagation sleep).
    return r.type.startswith(("gcp:", "vo2dr:gcp:")) or "::vo2dr:gcp:" in r.urn


def ours(graph: Graph, type_: str | None = None) -> list[Resource]:
    """Resources of ``type_`` declared inside the GCS store's components (the runtime may add
    its own grants on the bucket; those are tested with the runtime)."""
    components = {r.urn for r in graph.resources if r.type in STORE_COMPONENTS}
    return [r for r in graph.resources
            if r.parent in components and (type_ is None or r.type == type_)]


# ---- keys ----------------------------------------------------------------------------------

def test_crypto_key_rotates_within_90_days_from_config(run):
    graph, cfg = run
    key = graph.one(CRYPTO_KEY, "gcs-key")
    assert key.inputs["rotationPeriod"] == f"{cfg.keys.rotation_days * DAY}s"
    assert int(key.inputs["rotationPeriod"][:-1]) <= config_keys.KEY_ROTATION_MAX_DAYS * DAY
    assert key.inputs["purpose"] == "ENCRYPT_DECRYPT"
    ring = graph.one(KEY_RING, "gcs-key")
    assert key.inputs["keyRing"] == ring.outputs["id"]
    # CMEK needs the key ring in the bucket's location.
    assert ring.inputs["location"] == graph.one(BUCKET).inputs["location"].lower()


def test_bucket_uses_the_key_and_only_the_gcs_agent_may_use_it(run):
    graph, cfg = run
    key, bucket = graph.one(CRYPTO_KEY, "gcs-key"), graph.one(BUCKET)
    assert bucket.inputs["encryption"]["defaultKmsKeyName"] == key.outputs["id"]
    grants = ours(graph, KEY_MEMBER)
    on_key = [m for m in graph.of_type(KEY_MEMBER) if m.inputs["cryptoKeyId"] == key.outputs["id"]]
    assert len(grants) == 1 and on_key == grants
    grant = grants[0]
    assert grant.inputs["cryptoKeyId"] == key.outputs["id"]
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    agent = f"service-{cfg.gcp.project_number}@gs-project-accounts.iam.gserviceaccount.com"
    assert grant.inputs["member"] == f"serviceAccount:{agent}"
    # The bucket is created only after the agent may use the key, and after the grant has
    # propagated (tests/unit/test_first_deploy.py).
    waits = [graph.by_urn(u) for u in bucket.dependencies]
    assert any(grant.urn in w.dependencies for w in waits if w.type == "time:index/sleep:Sleep")


# ---- bucket --------------------------------------------------------------------------------

def test_bucket_is_private_with_soft_delete_and_retention(run):
    graph, cfg = run
    b = graph.one(BUCKET).inputs
    assert b["uniformBucketLevelAccess"] is True
    assert b["publicAccessPrevention"] == "enforced"
    assert b["forceDestroy"] is False
    assert b["location"] == cfg.gcp.location
    soft_delete = cfg.immutability.soft_delete_days * DAY
    assert b["softDeletePolicy"]["retentionDurationSeconds"] == soft_delete


def test_bucket_versions_and_retains_every_object(run):
    # Versioning and retention together: GCS refuses versioning next to a bucket retention
    # policy, so the retention is Object Retention Lock, set per object by the writer.
    graph, _ = run
    b = graph.one(BUCKET).inputs
    assert b["versioning"]["enabled"] is True
    assert b["enableObjectRetention"] is True
    assert "retentionPolicy" not in b


def test_every_gcs_writer_retains_for_lock_days_locked_in_production_only(run):
    graph, cfg = run
    production = cfg.environment == "production"
    want = {"VO2DR_GCS_RETENTION_DAYS": str(cfg.immutability.lock_days),
            "VO2DR_GCS_RETENTION_MODE": "Locked" if production else "Unlocked"}
    backups = [f for f in graph.of_type(LAMBDA) if "-backup-" in f.name]  # one per class
    assert backups
    for backup in backups:
        env = backup.inputs["environment"]["variables"]
        assert {k: env[k] for k in want} == want
    job_envs = [{e["name"]: e.get("value") for e in c["envs"]}
                for job in graph.of_type("gcp:cloudrunv2/job:Job")
                for c in job.inputs["template"]["template"]["containers"]]
    assert job_envs and all({k: e[k] for k in want} == want for e in job_envs)
    # The job refuses a half-set retention (vo2dr.stores.gcs.Retention), so none is half set.
    assert graph.outputs["jobEnvironment"]["VO2DR_GCS_RETENTION_MODE"] == want[
        "VO2DR_GCS_RETENTION_MODE"]


def test_bucket_and_key_protected_in_production_only(run):
    graph, cfg = run
    bucket, key = graph.one(BUCKET), graph.one(CRYPTO_KEY, "gcs-key")
    production = cfg.environment == "production"
    assert bucket.protect is production and key.protect is production


def test_lifecycle_rules_follow_the_plan_per_gfs_prefix(run):
    graph, cfg = run
    rules = graph.one(BUCKET).inputs["lifecycleRules"]
    got = {(r["action"]["type"], r["action"].get("storageClass"),
            tuple(r["condition"].get("matchesPrefixes", ())), r["condition"].get("age"),
            r["condition"].get("withState"), r["condition"].get("daysSinceNoncurrentTime"))
           for r in rules}
    want = set()
    for tier in cfg.lifecycle:
        for step in tier.transitions["gcp"]:
            want.add(("SetStorageClass", step.storage_class, (tier.prefix,), step.days, None,
                      None))
        # Expiry makes the live object noncurrent...
        want.add(("Delete", None, (tier.prefix,), tier.expire_days, "LIVE", None))
    # ...and noncurrent versions go noncurrentVersionDays later, as on S3; intraday ones,
    # whose own retention ended with their window, the next day.
    want.add(("Delete", None, (), None, "ARCHIVED", cfg.immutability.noncurrent_version_days))
    for tier in cfg.lifecycle:  # the database's intraday prefix and each application source's
        if tier.tier == "intraday":
            want.add(("Delete", None, (tier.prefix,), None, "ARCHIVED", 1))
    assert {t.prefix for t in cfg.lifecycle if t.tier == "intraday"} >= {
        f"database/{cfg.environment}/intraday/"}
    # The report records: kept as long as the yearly tier (tests/unit/test_report_records.py).
    want.add(("Delete", None, (f"reports/{cfg.environment}/",), cfg.retention.yearly_days,
              "LIVE", None))
    want.add(("AbortIncompleteMultipartUpload", None, (),
              cfg.immutability.abort_incomplete_upload_days, None, None))
    # A snapshot source's content pool only changes class (no Delete by age: issue 17), and
    # its pruner's plans go like daily backups.
    for pool in cfg.content_lifecycle():
        for step in pool.transitions["gcp"]:
            want.add(("SetStorageClass", step.storage_class, (pool.prefix,), step.days, None,
                      None))
    for root in cfg.snapshot_roots():
        want.add(("Delete", None, (root.prune_prefix,), cfg.retention.daily_days, "LIVE", None))
    assert len(rules) == len(want) and got == want
    # Every transition is one the object outlives by the class minimum.
    minimum = dict(config_storage.STORAGE_CLASSES["gcp"])
    for tier in cfg.lifecycle:
        for step in tier.transitions["gcp"]:
            assert tier.expire_days - step.days >= minimum[step.storage_class]


def test_bucket_and_key_carry_valid_labels(run):
    graph, cfg = run
    for r in (graph.one(BUCKET), graph.one(CRYPTO_KEY, "gcs-key")):
        labels = r.inputs["labels"]
        assert labels["environment"] == cfg.environment
        assert {"owner", "data-classification"} <= set(labels)
        assert all(re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k) for k in labels)
        assert all(re.fullmatch(r"[a-z0-9_-]{0,63}", v) for v in labels.values())


# ---- access --------------------------------------------------------------------------------

def test_writer_may_create_and_read_back_and_reader_only_view_on_the_bucket(run):
    graph, _ = run
    bucket = graph.one(BUCKET).outputs["name"]
    writer = graph.one(ACCOUNT, "gcs-access-writer")
    reader = graph.one(ACCOUNT, "gcs-access-reader")
    # (The reader's one conditional grant, create under the drill records' prefix only, is
    # checked in tests/unit/test_report_records.py.)
    grants = {(g.inputs["member"], g.inputs["role"]) for g in ours(graph, BUCKET_MEMBER)
              if not g.inputs.get("condition")}
    creator = graph.one(CUSTOM_ROLE, "gcs-access-creator-role")
    # No role carries storage.objects.delete, so none can delete or overwrite (the snapshot
    # pruner's content-only delete is tested in tests/unit/test_snapshot_program.py).
    assert grants == {(writer.outputs["member"], creator.outputs["name"]),
                      (writer.outputs["member"], "roles/storage.objectViewer"),
                      (reader.outputs["member"], "roles/storage.objectViewer")}
    # Every grant on GCS, ours or the runtime's, is on this bucket.
    assert all(g.inputs["bucket"] == bucket for g in graph.of_type(BUCKET_MEMBER))


def test_the_creator_role_creates_with_retention_and_nothing_more(run):
    graph, cfg = run
    role = graph.one(CUSTOM_ROLE, "gcs-access-creator-role")
    assert sorted(role.inputs["permissions"]) == ["storage.objects.create",
                                                  "storage.objects.setRetention"]
    assert role.inputs["project"] == cfg.gcp.project
    # Granted on the bucket only, never on the project: to the writer, the standby and (under
    # <root>prune/ only, by an IAM condition) the snapshot pruner.
    users = [g for g in graph.of_type(BUCKET_MEMBER)
             if g.inputs["role"] == role.outputs["name"]]
    assert sorted(g.name.rsplit("-", 2)[-2] for g in users if "pruner" not in g.name) == \
        ["drill", "job", "writer"]
    # The drill's (the reader's) grant only under its records' prefix.
    assert all(g.inputs.get("condition") for g in users if "drill" in g.name)
    # The snapshot pruner's, under <root>prune/ only (an IAM condition).
    pruner = [g for g in users if "pruner" in g.name]
    assert [g.name for g in pruner] == [cfg.name("gcs-pruner-write-plans")]
    assert "/prune/" in pruner[0].inputs["condition"]["expression"]


def test_no_gcp_grant_is_broader_than_the_bucket_key_or_writer(run):
    graph, _ = run
    iam = [r for r in ours(graph) if re.search(r"iam(member|binding|policy)", r.type, re.I)]
    assert iam and {r.type for r in iam} <= ALLOWED_IAM_TYPES
    for r in iam:
        role = r.inputs["role"]
        assert role not in FORBIDDEN_ROLES and "admin" not in role.lower(), role
    writer = graph.one(ACCOUNT, "gcs-access-writer").outputs["name"]
    reader = graph.one(ACCOUNT, "gcs-access-reader").outputs["name"]
    pruner = graph.one(ACCOUNT, "gcs-pruner-account").outputs["name"]
    # Service-account bindings exist only for federation (workloadIdentityUser), on the store
    # accounts and the snapshot pruner's: no token creator, no key admin, nothing on the project.
    assert {r.inputs["serviceAccountId"] for r in ours(graph, SA_MEMBER)} == {writer, reader,
                                                                              pruner}
    assert {r.inputs["role"] for r in ours(graph, SA_MEMBER)} == {"roles/iam.workloadIdentityUser"}


def test_no_service_account_or_hmac_keys(run):
    graph, _ = run
    assert not [r for r in graph.resources
                if r.type in ("gcp:serviceaccount/key:Key", "gcp:storage/hmacKey:HmacKey")]
    assert "privateKey" not in json.dumps(graph.outputs)


# ---- keyless federation from AWS -----------------------------------------------------------

def sessions(graph: Graph, cfg: config.StackConfig) -> dict[str, str]:
    """The session-independent ARN each AWS job role presents to Google."""
    out = {k: assumed_role_arn(graph.outputs[o]) for k, o in (
        ("writer", "awsBackupWriterRoleArn"), ("monitor", "awsMonitorRoleArn"),
        ("reader", "awsRestoreReaderRoleArn"), ("pruner", "awsPrunerRoleArn"))}
    assert out["writer"] == (
        f"arn:aws:sts::{cfg.aws.account_id}:assumed-role/{cfg.name('backup-writer')}")
    return out


def test_the_pool_admits_exactly_the_three_job_roles(run):
    graph, cfg = run
    s = sessions(graph, cfg)
    provider = graph.one(PROVIDER).inputs
    assert provider["aws"] == {"accountId": cfg.aws.account_id}
    # A CEL list of literal ARNs: no other role or user of the account passes the pool.
    condition = provider["attributeCondition"]
    m = re.fullmatch(r"attribute\.aws_role in \[(.*)\]", condition)
    assert m, condition
    admitted = re.findall(r"'([^']*)'", m[1])
    assert len(admitted) == m[1].count(",") + 1  # nothing in the list but quoted literals
    assert sorted(admitted) == sorted(s.values())
    assert provider["attributeMapping"]["google.subject"] == "assertion.arn"
    assert provider["workloadIdentityPoolId"] == graph.one(POOL).inputs["workloadIdentityPoolId"]


def test_writer_role_acts_only_as_the_writer_and_read_roles_only_as_the_reader(run):
    graph, cfg = run
    s = sessions(graph, cfg)
    pool = graph.one(POOL).inputs["workloadIdentityPoolId"]
    prefix = (f"principalSet://iam.googleapis.com/projects/{cfg.gcp.project_number}/locations/"
              f"global/workloadIdentityPools/{pool}/attribute.aws_role/")
    writer = graph.one(ACCOUNT, "gcs-access-writer").outputs["name"]
    reader = graph.one(ACCOUNT, "gcs-access-reader").outputs["name"]
    bindings = {(b.inputs["member"], b.inputs["serviceAccountId"])
                for b in ours(graph, SA_MEMBER)
                if b.inputs["role"] == "roles/iam.workloadIdentityUser"}
    pruner = graph.one(ACCOUNT, "gcs-pruner-account").outputs["name"]
    assert bindings == {(prefix + s["writer"], writer), (prefix + s["monitor"], reader),
                        (prefix + s["reader"], reader), (prefix + s["pruner"], pruner)}
    # The reader service account can view and list only: neither the monitor (status) nor the
    # restore reader (drill) role gains create or delete of a backup through federation (the
    # drill creates its result records, only under their prefix: a conditional grant).
    reader_member = graph.one(ACCOUNT, "gcs-access-reader").outputs["member"]
    assert {g.inputs["role"] for g in graph.of_type(BUCKET_MEMBER)
            if g.inputs["member"] == reader_member
            and not g.inputs.get("condition")} == {"roles/storage.objectViewer"}


def test_exports_for_the_job(run):
    graph, cfg = run
    o = graph.outputs
    assert o["gcsBucketName"] == graph.one(BUCKET).outputs["name"]
    assert o["gcsWriterServiceAccount"] == graph.one(ACCOUNT, "gcs-access-writer").outputs["email"]
    assert o["gcsReaderServiceAccount"] == graph.one(ACCOUNT, "gcs-access-reader").outputs["email"]
    creds = json.loads(o["gcsCredentialConfig"])
    assert creds["type"] == "external_account"
    assert creds["audience"] == o["gcsWorkloadIdentityAudience"]
    assert creds["audience"].startswith(f"//iam.googleapis.com/projects/{cfg.gcp.project_number}/")
    assert creds["credential_source"]["environment_id"] == "aws1"
    assert o["gcsWriterServiceAccount"] in creds["service_account_impersonation_url"]
    # The job accepts exactly this output as VO2DR_GCS_CREDENTIAL_CONFIG and acts as the writer.
    federated = gcs_credentials(o["gcsCredentialConfig"], env={})
    assert federated.service_account_email == o["gcsWriterServiceAccount"]
    # The status and drill functions' config: the same pool, acting as the reader.
    reader = json.loads(o["gcsReaderCredentialConfig"])
    assert {k: v for k, v in reader.items() if k != "service_account_impersonation_url"} == {
        k: v for k, v in creds.items() if k != "service_account_impersonation_url"}
    assert gcs_credentials(o["gcsReaderCredentialConfig"], env={}).service_account_email == (
        o["gcsReaderServiceAccount"])


def test_assumed_role_arn_drops_the_role_path_and_rejects_non_roles():
    assert assumed_role_arn("arn:aws:iam::123456789012:role/jobs/writer") == (
        "arn:aws:sts::123456789012:assumed-role/writer")
    with pytest.raises(ValueError):
        assumed_role_arn("arn:aws:iam::123456789012:user/alice")


# ---- on/off --------------------------------------------------------------------------------

def test_disabling_gcp_removes_exactly_the_gcp_resources():
    full = program_graph("staging")
    off = run_program("staging", {"vo2max-dr:clouds.gcp.enabled": False})
    assert not [r for r in off.resources if is_gcp(r)]
    # Besides the GCP resources, only Azure's trust in the standby's service account goes.
    standby_trust = ("azure-native:managedidentity:FederatedIdentityCredential",
                     "vo2dr-staging-azure-access-writer-gcp-standby")
    assert standby_trust in {(r.type, r.name) for r in full.resources}
    assert {(r.type, r.name) for r in off.resources} == {
        (r.type, r.name) for r in full.resources if not is_gcp(r)} - {standby_trust}
    assert not [k for k in off.outputs if k.startswith("gcs")]
    assert "azureContainerUrl" in off.outputs
