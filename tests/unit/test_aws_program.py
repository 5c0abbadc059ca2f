"""The real program (infra/program.py) under Pulumi mocks, per stack: every property the AWS
primary store must have (issue 2), and where production differs from staging.

Expected numbers come from the same stack file, parsed by infra/config.py, so a test fails if
the program writes its own number instead of the configured one; `test_overrides_*` proves it by
changing the stack's retention and tiering and watching the lifecycle follow.
"""

from __future__ import annotations

import importlib
import inspect
import json
import tokenize
from pathlib import Path
from typing import Any

import pytest

from dev.mockrun import Graph, Resource, run_program, stack_config
from infra import config, config_base
from tests.app_secrets import snapshot_roots
from tests.program_graphs import program_graph

STACKS = ("staging", "production")
BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"

# Overrides that change every strategy number the AWS store uses.
OVERRIDES = {
    "vo2max-dr:retention.intradayHours": 120,
    "vo2max-dr:retention.dailyDays": 35,
    "vo2max-dr:retention.weeklyWeeks": 20,
    "vo2max-dr:retention.monthlyMonths": 18,
    "vo2max-dr:retention.yearlyYears": 5,
    "vo2max-dr:tiering.infrequentAfterDays": 45,
    "vo2max-dr:tiering.archiveAfterDays": 120,
    "vo2max-dr:tiering.deepArchiveAfterDays": 400,
    "vo2max-dr:immutability.lockDays": 21,
    "vo2max-dr:immutability.noncurrentVersionDays": 11,
    "vo2max-dr:immutability.abortIncompleteUploadDays": 3,
    "vo2max-dr:monitoring.logRetentionDays": 180,
}


def parsed(stack: str, overrides: dict[str, Any] | None = None) -> config.StackConfig:
    """The StackConfig the program sees for ``stack`` (+ overrides), parsed the same way."""
    return stack_config(stack, overrides)


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {stack: program_graph(stack) for stack in STACKS}


@pytest.fixture(scope="module")
def configs() -> dict[str, config.StackConfig]:
    return {stack: parsed(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


def doc(resource: Resource, field: str = "policy") -> dict[str, Any]:
    return json.loads(resource.inputs[field])


def statements(resource: Resource, field: str = "policy") -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in doc(resource, field)["Statement"]}


MY_COMPONENTS = {"vo2dr:aws:BackupKey", "vo2dr:aws:BackupBucket", "vo2dr:aws:AccessLogBucket",
                 "vo2dr:aws:JobRoles", "vo2dr:aws:JobPermissions"}


def job_roles(g: Graph) -> list[Resource]:
    """The three job roles (the runtime may declare roles of its own, e.g. for schedules)."""
    parents = {r.urn for r in g.of_type("vo2dr:aws:JobRoles")}
    return [r for r in g.of_type(ROLE) if r.parent in parents]


def backup_bucket(g: Graph) -> Resource:
    return g.one(BUCKET, "-backups-")


def log_bucket(g: Graph) -> Resource:
    return g.one(BUCKET, "-access-logs-")


def of_bucket(g: Graph, type_: str, bucket: Resource) -> Resource:
    found = [r for r in g.of_type(type_) if r.inputs.get("bucket") == bucket.outputs["bucket"]]
    assert len(found) == 1, f"expected one {type_} for {bucket.name}, got {len(found)}"
    return found[0]


# ---- the backup bucket ----------------------------------------------------------------------

def test_backup_bucket_is_object_locked_and_protected(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    b = backup_bucket(g)
    assert b.inputs["objectLockEnabled"] is True
    assert b.inputs["forceDestroy"] is False
    assert b.protect
    assert b.outputs["bucket"] == f"vo2dr-{stack}-backups-{cfg.aws.account_id}"
    assert g.outputs["awsBucketName"] == b.outputs["bucket"]


@pytest.mark.parametrize("which", ["backup", "log"])
def test_buckets_are_versioned_private_and_owner_enforced(graphs, stack, which) -> None:
    g = graphs[stack]
    b = backup_bucket(g) if which == "backup" else log_bucket(g)
    assert of_bucket(g, VERSIONING, b).inputs["versioningConfiguration"]["status"] == "Enabled"
    pab = of_bucket(g, PAB, b).inputs
    for setting in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                    "restrictPublicBuckets"):
        assert pab[setting] is True, setting
    assert of_bucket(g, OWNERSHIP, b).inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    # Both bucket policies refuse plain HTTP for everyone, on the bucket and its objects.
    tls = statements(of_bucket(g, BUCKET_POLICY, b))["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == ["s3:*"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == [b.outputs["arn"], b.outputs["arn"] + "/*"]


def test_backup_bucket_uses_sse_kms_with_the_key_and_bucket_keys(graphs, stack) -> None:
    g = graphs[stack]
    key_arn = g.one(KEY, "backup-key").outputs["arn"]
    rules = of_bucket(g, SSE, backup_bucket(g)).inputs["rules"]
    assert rules == [{"bucketKeyEnabled": True, "applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}}]
    assert g.outputs["awsKmsKeyArn"] == key_arn


def test_backup_bucket_policy_denies_uploads_not_encrypted_with_the_key(graphs, stack) -> None:
    g = graphs[stack]
    key_arn = g.one(KEY, "backup-key").outputs["arn"]
    b = backup_bucket(g)
    sts = statements(of_bucket(g, BUCKET_POLICY, b))
    objects = b.outputs["arn"] + "/*"
    wrong_sse = sts["DenyUploadsNotEncryptedWithKms"]
    assert (wrong_sse["Effect"], wrong_sse["Principal"], wrong_sse["Action"],
            wrong_sse["Resource"]) == ("Deny", "*", ["s3:PutObject"], objects)
    assert wrong_sse["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
        "Null": {"s3:x-amz-server-side-encryption": "false"}}
    wrong_key = sts["DenyUploadsWithAnotherKey"]
    assert (wrong_key["Effect"], wrong_key["Principal"], wrong_key["Action"],
            wrong_key["Resource"]) == ("Deny", "*", ["s3:PutObject"], objects)
    assert wrong_key["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}}
    assert sts["DenyOldTls"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    # A backup or a snapshot content object is never replaced, by any principal: every call
    # that creates one (in any source's tiers or content pool) needs If-None-Match (the parts
    # of a multipart upload create nothing: not denied). A snapshot root's prune/ plans and
    # everything outside the sources (status, reports) are not covered by this deny.
    arn = b.outputs["arn"]
    roots = snapshot_roots(stack).values()
    pools = [f"{arn}/{root}content/*" for root in roots]
    overwrite = sts["DenyBackupOverwrites"]
    assert pools and set(pools) <= set(overwrite["Resource"])
    assert (overwrite["Effect"], overwrite["Principal"], overwrite["Action"]) == (
        "Deny", "*", ["s3:PutObject"])
    assert overwrite["Condition"] == {"Null": {"s3:if-none-match": "true"},
                                      "Bool": {"s3:ObjectCreationOperation": "true"}}
    from tests import iam_check

    policy = {"Statement": [overwrite]}  # the other denies are about TLS and SSE headers
    creating = {"s3:ObjectCreationOperation": "true"}
    for key in (f"database/{stack}/daily/main/20260101T000000Z-0123456789ab.dump.enc",
                f"database/{stack}/yearly/main/20260101T000000Z-0123456789ab.manifest.json",
                *(f"{root}{tier}/x/20260101T000000Z-0123456789ab.index.enc"
                  for root in roots for tier in ("intraday", "daily")),
                *(f"{root}content/{'0' * 32}" for root in roots)):
        assert iam_check.denies(policy, "s3:PutObject", f"{arn}/{key}", creating), key
        assert not iam_check.denies(policy, "s3:PutObject", f"{arn}/{key}",
                                    {**creating, "s3:if-none-match": "*"}), key
        assert not iam_check.denies(policy, "s3:PutObject", f"{arn}/{key}",
                                    {"s3:ObjectCreationOperation": "false"}), key  # a part
    for key in (*(f"{root}prune/plan.json" for root in roots), f"status/{stack}/x.json",
                f"reports/{stack}/drills/x.json"):
        assert not iam_check.denies(policy, "s3:PutObject", f"{arn}/{key}", creating), key
    # Nothing in the bucket policy grants access: access comes from the roles alone.
    assert all(s["Effect"] == "Deny" for s in sts.values())


def test_object_lock_mode_and_days_come_from_the_stack(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    lock = of_bucket(g, OBJECT_LOCK, backup_bucket(g)).inputs
    expected_mode = {"staging": "GOVERNANCE", "production": "COMPLIANCE"}[stack]
    assert lock["objectLockEnabled"] == "Enabled"
    assert lock["rule"]["defaultRetention"] == {"mode": expected_mode,
                                                "days": cfg.immutability.lock_days}
    # The lock follows versioning (S3 requires versioning for object lock).
    versioning = of_bucket(g, VERSIONING, backup_bucket(g))
    assert versioning.urn in of_bucket(g, OBJECT_LOCK, backup_bucket(g)).dependencies


def test_lifecycle_has_one_rule_per_gfs_tier_from_the_plan(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    lc = of_bucket(g, LIFECYCLE, backup_bucket(g))
    rules = {r["id"]: r for r in lc.inputs["rules"]}
    # One per tier for the database, and one per tier for each application source (issue 16).
    # And per snapshot source (issue 17) its content pool and its pruner's plans.
    snapshots = {f"{kind}-{r.source}" for r in cfg.snapshot_roots()
                 for kind in ("content", "prune")}
    assert set(rules) == {t.rule_id for t in cfg.lifecycle} | {"expired-delete-markers",
                                                               "status-state",
                                                               "report-records"} | snapshots
    assert {f"gfs-{t}" for t in config_base.TIERS} | {f"gfs-{k}-{t}" for t in config_base.TIERS
                                                 for k in ("code", "config")} <= set(rules)
    # The intraday prefix expires at the window's end and never changes storage class.
    assert rules["gfs-intraday"]["expiration"] == {"days": cfg.retention.intraday_days}
    assert not rules["gfs-intraday"].get("transitions")
    for tier in cfg.lifecycle:
        rule = rules[tier.rule_id]
        assert rule["status"] == "Enabled"
        assert rule["filter"] == {"prefix": tier.prefix}
        assert tier.prefix in (f"database/{stack}/{tier.tier}/",
                               f"application/{stack}/{tier.source}/{tier.tier}/",
                               f"logs/{stack}/{tier.tier}/")
        assert rule["expiration"] == {"days": tier.expire_days}
        assert [(t["days"], t["storageClass"]) for t in rule["transitions"]] == [
            (t.days, t.storage_class) for t in tier.transitions["aws"]]
        # An expired intraday version (its own lock over) goes the next day, not after the
        # GFS grace period, or each would be kept a month past its window.
        assert rule["noncurrentVersionExpiration"] == {
            "noncurrentDays": 1 if tier.tier == "intraday"
            else cfg.immutability.noncurrent_version_days}
        assert rule["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": cfg.immutability.abort_incomplete_upload_days}
    assert rules["expired-delete-markers"]["expiration"] == {"expiredObjectDeleteMarker": True}
    assert of_bucket(g, VERSIONING, backup_bucket(g)).urn in lc.dependencies


def test_lifecycle_matches_the_issue_strategy(graphs, stack) -> None:
    """Issue 2 in numbers: transitions at 30/90/365 days wherever the object outlives the
    class's minimum, expiry at 30 d, 84 d (12 w), 365 d (12 m) and 7 years."""
    rules = {r["id"]: r for r in of_bucket(graphs[stack], LIFECYCLE,
                                           backup_bucket(graphs[stack])).inputs["rules"]}
    ia, glacier, deep = (30, "STANDARD_IA"), (90, "GLACIER"), (365, "DEEP_ARCHIVE")
    expected = {"daily": (30, []), "weekly": (84, [ia]), "monthly": (365, [ia, glacier]),
                "yearly": (7 * 365, [ia, glacier, deep])}
    for tier, (expire, transitions) in expected.items():
        rule = rules[f"gfs-{tier}"]
        assert rule["expiration"]["days"] == expire
        assert [(t["days"], t["storageClass"]) for t in rule["transitions"]] == transitions


def test_access_logs_go_to_an_encrypted_private_log_bucket(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    b, logs = backup_bucket(g), log_bucket(g)
    logging = of_bucket(g, LOGGING, b).inputs
    assert logging["targetBucket"] == logs.outputs["bucket"]
    assert logging["targetPrefix"] == f"{b.outputs['bucket']}/"
    # S3 server access logging supports SSE-S3 only on the target bucket.
    assert of_bucket(g, SSE, logs).inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    assert logs.protect and logs.inputs["forceDestroy"] is False
    assert "objectLockEnabled" not in logs.inputs  # a log target must not have default retention
    delivery = statements(of_bucket(g, BUCKET_POLICY, logs))["S3ServerAccessLogsDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == ["s3:PutObject"]
    assert delivery["Resource"] == logs.outputs["arn"] + "/*"
    assert delivery["Condition"] == {"ArnLike": {"aws:SourceArn": [b.outputs["arn"]]},
                                     "StringEquals": {"aws:SourceAccount": cfg.aws.account_id}}
    rules = of_bucket(g, LIFECYCLE, logs).inputs["rules"]
    assert rules == [{
        "id": "access-logs", "status": "Enabled", "filter": {"prefix": ""},
        "expiration": {"days": cfg.monitoring.log_retention_days},
        "noncurrentVersionExpiration": {
            "noncurrentDays": cfg.immutability.noncurrent_version_days},
        "abortIncompleteMultipartUpload": {
            "daysAfterInitiation": cfg.immutability.abort_incomplete_upload_days},
    }]
    assert g.outputs["awsAccessLogBucketName"] == logs.outputs["bucket"]


# ---- the key ----------------------------------------------------------------------------------

def test_key_rotates_has_an_alias_and_is_protected(graphs, configs, stack) -> None:
    g = graphs[stack]
    key = g.one(KEY, "backup-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["rotationPeriodInDays"] == configs[stack].keys.rotation_days
    assert key.inputs["keyUsage"] == "ENCRYPT_DECRYPT"
    assert key.inputs["customerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert key.inputs["bypassPolicyLockoutSafetyCheck"] is False
    assert key.protect
    alias = g.one(ALIAS, "backup-key")
    assert alias.inputs == {"name": f"alias/vo2dr-{stack}-backups",
                            "targetKeyId": key.outputs["keyId"]}
    assert g.outputs["awsKmsKeyAlias"] == alias.inputs["name"]


def test_key_policy_names_its_principals(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    account, region = cfg.aws.account_id, cfg.aws.region
    roles = {r.inputs["name"]: r.outputs["arn"] for r in job_roles(g)}
    sts = statements(g.one(KEY, "backup-key"))
    root = f"arn:aws:iam::{account}:root"

    admin = sts["AccountAdministersKeyWithoutUsingIt"]
    assert admin["Principal"] == {"AWS": root}
    assert {"kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:ScheduleKeyDeletion"} <= set(
        admin["Action"])
    # Administering the key does not include using it.
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant"} & set(
        admin["Action"])

    writer, reader, monitor = (roles[f"vo2dr-{stack}-{n}"]
                               for n in ("backup-writer", "restore-reader", "monitor"))
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
    assert sts["BackupWriterEncrypts"]["Principal"] == {"AWS": writer}
    assert sts["BackupWriterEncrypts"]["Action"] == ["kms:Encrypt", "kms:GenerateDataKey"]
    assert sts["BackupWriterMultipartThroughS3"]["Principal"] == {"AWS": writer}
    assert sts["BackupWriterMultipartThroughS3"]["Action"] == ["kms:Decrypt"]
    assert sts["BackupWriterMultipartThroughS3"]["Condition"] == via_s3
    assert sts["RestoreReaderDecrypts"]["Principal"] == {"AWS": reader}
    assert sts["RestoreReaderDecrypts"]["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
    assert sts["MonitorReadsManifestsThroughS3"]["Principal"] == {"AWS": monitor}
    assert sts["MonitorReadsManifestsThroughS3"]["Condition"] == via_s3

    through = sts["AccountUsesKeyThroughServices"]
    assert through["Principal"] == {"AWS": root}
    assert through["Condition"]["StringEquals"]["kms:CallerAccount"] == account
    assert f"s3.{region}.amazonaws.com" in through["Condition"]["StringEquals"]["kms:ViaService"]
    logs = sts["CloudWatchLogsEncryptsLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].startswith(
        f"arn:aws:logs:{region}:{account}:")
    assert "ServicesPublishToEncryptedTopicsAndQueues" not in sts  # the old, conditioned form
    for s in sts.values():
        assert s["Effect"] == "Allow" and s["Resource"] == "*"
        assert s["Principal"] != "*" and "*" not in json.dumps(s["Principal"])
    # The key exists after the roles it names (KMS rejects a policy naming an unknown role).
    role_urns = {r.urn for r in job_roles(g)}
    key_deps = set(g.one(KEY, "backup-key").dependencies)
    assert role_urns <= key_deps


def test_key_policy_lets_cloudwatch_alarms_publish_to_the_encrypted_topic_as_documented(
        graphs, stack) -> None:
    """AWS documents one key-policy statement for CloudWatch alarms that notify a topic
    encrypted with a customer managed key (AWS Knowledge Center, "How do I configure a
    CloudWatch alarm with an encrypted Amazon SNS topic?",
    https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns, statement
    "Allow_CloudWatch_for_CMK"; also the SNS developer guide, "Key management", "Enable
    compatibility between event sources from AWS services and encrypted topics",
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html):

        {"Effect": "Allow", "Principal": {"Service": ["cloudwatch.amazonaws.com"]},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}

    It carries no ``aws:SourceAccount`` condition; with one, KMS refuses CloudWatch's data-key
    request and alarm e-mails never arrive. Only the data-key call SNS makes
    (``kms:GenerateDataKey``) is granted of the documented wildcard."""
    g = graphs[stack]
    sts = statements(g.one(KEY, "backup-key"))
    cw = [s for s in sts.values()
          if "cloudwatch.amazonaws.com" in json.dumps(s.get("Principal"))]
    assert len(cw) == 1, cw
    st = cw[0]
    assert st["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
    assert "Condition" not in st
    assert st["Resource"] == "*" and st["Effect"] == "Allow"
    documented = {"kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
                  "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext"}
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(st["Action"]) <= documented
    # The topic the alarms publish to is encrypted with this very key.
    topic = g.one("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == g.one(KEY, "backup-key").outputs["arn"]


# ---- roles --------------------------------------------------------------------------------------

def test_one_role_per_job_role_exported(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    roles = {r.inputs["name"]: r for r in job_roles(g)}
    assert set(roles) == {f"vo2dr-{stack}-backup-writer", f"vo2dr-{stack}-restore-reader",
                          f"vo2dr-{stack}-monitor"}
    for export, name in (("awsBackupWriterRoleArn", "backup-writer"),
                         ("awsRestoreReaderRoleArn", "restore-reader"),
                         ("awsMonitorRoleArn", "monitor")):
        assert g.outputs[export] == f"arn:aws:iam::{cfg.aws.account_id}:role/vo2dr-{stack}-{name}"
    permissions = {r.urn for r in g.of_type("vo2dr:aws:JobPermissions")}
    policies = {r.inputs["role"]: r for r in g.of_type(ROLE_POLICY) if r.parent in permissions}
    assert set(policies) == set(roles)
    for name, role in roles.items():
        trust = doc(role, "assumeRolePolicy")["Statement"]
        lambda_trust = [s for s in trust if s["Principal"] == {"Service": "lambda.amazonaws.com"}]
        assert lambda_trust and lambda_trust[0]["Condition"] == {
            "StringEquals": {"aws:SourceAccount": cfg.aws.account_id}}, name
    reader_trust = doc(roles[f"vo2dr-{stack}-restore-reader"], "assumeRolePolicy")["Statement"]
    assert {"AWS": f"arn:aws:iam::{cfg.aws.account_id}:root"} in [
        s["Principal"] for s in reader_trust]


# ---- structure, tags -----------------------------------------------------------------------------

def _resource_class(type_token: str):
    """The pulumi_aws class of a type token such as aws:s3/bucketPolicy:BucketPolicy."""
    _pkg, module_path, cls = type_token.split(":")
    module = module_path.split("/")[0]
    mod = importlib.import_module(f"pulumi_aws.{module}_" if module == "lambda"
                                  else f"pulumi_aws.{module}")
    return getattr(mod, cls)


def test_every_taggable_aws_resource_carries_the_stack_tags(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    assert {"environment", "owner", "data-classification"} <= set(cfg.tags)
    taggable = []
    for r in g.resources:
        if not r.type.startswith("aws:"):
            continue
        params = inspect.signature(_resource_class(r.type)._internal_init).parameters
        if "tags" in params:
            taggable.append(r.type)
            tags = r.inputs.get("tags") or {}
            missing = {k: v for k, v in cfg.tags.items() if tags.get(k) != v}
            assert not missing, f"{r.name} ({r.type}) lacks tags {missing}"
    assert {BUCKET, KEY, ROLE} <= set(taggable)


def test_aws_resources_are_children_of_named_components(graphs, stack) -> None:
    g = graphs[stack]
    components = {r.urn: r for r in g.resources if r.type in MY_COMPONENTS}
    assert sorted(c.type for c in components.values()) == sorted(MY_COMPONENTS)
    aws_resources = [r for r in g.resources if r.type.startswith("aws:")]
    primary_types = {BUCKET, KEY, ALIAS, ROLE, ROLE_POLICY, VERSIONING, SSE, PAB, OWNERSHIP,
                     BUCKET_POLICY, OBJECT_LOCK, LIFECYCLE, LOGGING}
    for r in aws_resources:
        if r.type not in primary_types or r.parent not in components:
            continue
        parent = components[r.parent]
        assert r.name.startswith(parent.name + "-"), (r.name, parent.name)
    store = [r for r in aws_resources if r.parent in components]
    assert {r.type for r in store} == primary_types


# ---- production vs staging, and no hard-coded numbers ------------------------------------------

def test_production_differs_from_staging_where_it_should(graphs, configs) -> None:
    s, p = graphs["staging"], graphs["production"]
    s_lock = of_bucket(s, OBJECT_LOCK, backup_bucket(s)).inputs["rule"]["defaultRetention"]
    p_lock = of_bucket(p, OBJECT_LOCK, backup_bucket(p)).inputs["rule"]["defaultRetention"]
    assert (s_lock["mode"], p_lock["mode"]) == ("GOVERNANCE", "COMPLIANCE")
    assert configs["staging"].aws.account_id != configs["production"].aws.account_id
    assert backup_bucket(s).outputs["bucket"] != backup_bucket(p).outputs["bucket"]
    assert configs["production"].aws.account_id in backup_bucket(p).outputs["bucket"]
    s_prefixes = {r["filter"]["prefix"] for r in of_bucket(s, LIFECYCLE,
                                                            backup_bucket(s)).inputs["rules"]}
    assert "database/staging/daily/" in s_prefixes
    assert not any("production" in x for x in s_prefixes)
    # The store's grants to the writer role (JobPermissions'), not the first policy of that
    # role registered: the runtime attaches its own, and registration order varies with load.
    store = {r.urn for r in p.of_type("vo2dr:aws:JobPermissions")}
    [writer] = [r for r in p.of_type(ROLE_POLICY)
                if r.parent in store and r.inputs["role"].endswith("backup-writer")]
    assert "/database/production/*" in writer.inputs["policy"]
    assert "staging" not in writer.inputs["policy"]
    # Same shape otherwise: the same resources, one for one.
    def shape(g: Graph) -> list[str]:
        return sorted(r.type for r in g.resources if r.type.startswith(("aws:", "vo2dr:aws:")))
    assert shape(s) == shape(p)


@pytest.fixture(scope="module")
def overridden() -> tuple[Graph, config.StackConfig]:
    return run_program("staging", overrides=OVERRIDES), parsed("staging", OVERRIDES)


def test_overrides_change_lifecycle_and_lock_days(overridden) -> None:
    """Every day count in the AWS store follows the stack file: change them, and the program
    changes with them."""
    g, cfg = overridden
    rules = {r["id"]: r for r in of_bucket(g, LIFECYCLE, backup_bucket(g)).inputs["rules"]}
    expected = {
        "intraday": (5, []),
        "daily": (35, []),
        "weekly": (140, [(45, "STANDARD_IA")]),
        "monthly": (18 * 365 // 12, [(45, "STANDARD_IA"), (120, "GLACIER")]),
        "yearly": (5 * 365, [(45, "STANDARD_IA"), (120, "GLACIER"), (400, "DEEP_ARCHIVE")]),
    }
    for tier, (expire, transitions) in expected.items():
        rule = rules[f"gfs-{tier}"]
        assert rule["expiration"] == {"days": expire}, tier
        assert [(t["days"], t["storageClass"]) for t in rule["transitions"]] == transitions
        assert rule["noncurrentVersionExpiration"] == {
            "noncurrentDays": 1 if tier == "intraday" else 11}
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 3}
    assert {t.tier: t.expire_days for t in cfg.lifecycle} == {
        k: v[0] for k, v in expected.items()}
    lock = of_bucket(g, OBJECT_LOCK, backup_bucket(g)).inputs["rule"]["defaultRetention"]
    assert lock == {"mode": "GOVERNANCE", "days": 21}
    log_rule = of_bucket(g, LIFECYCLE, log_bucket(g)).inputs["rules"][0]
    assert log_rule["expiration"] == {"days": 180}


def test_no_strategy_number_in_the_aws_store_code() -> None:
    """A cheap guard next to the override test: the store's modules hold no number literal that
    the strategy sets (strings and comments aside)."""
    root = Path(__file__).resolve().parents[2] / "infra" / "aws"
    numbers = set()
    for module in ("__init__", "keys", "storage", "lifecycle", "access", "policies"):
        with tokenize.open(root / f"{module}.py") as source:
            numbers |= {tok.string for tok in tokenize.generate_tokens(source.readline)
                        if tok.type == tokenize.NUMBER}
    strategy_numbers = {"1", "7", "12", "15", "30", "60", "84", "90", "240", "365", "1440",
                        "2555"}
    assert not numbers & strategy_numbers, numbers & strategy_numbers


@pytest.mark.parametrize("stack", STACKS)
def test_status_state_expires_once_its_lock_ends(graphs, configs, stack) -> None:
    g, cfg = graphs[stack], configs[stack]
    rules = {r["id"]: r for r in of_bucket(g, LIFECYCLE, backup_bucket(g)).inputs["rules"]}
    assert rules["status-state"] == {
        "id": "status-state", "status": "Enabled",
        "filter": {"prefix": f"status/{cfg.environment}/"},
        "expiration": {"days": cfg.immutability.lock_days},
        "noncurrentVersionExpiration": {
            "noncurrentDays": cfg.immutability.noncurrent_version_days},
        "abortIncompleteMultipartUpload": {
            "daysAfterInitiation": cfg.immutability.abort_incomplete_upload_days},
    }
