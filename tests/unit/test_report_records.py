"""The report records (issue 18: drill results and failed backup attempts, write-once under
``reports/<env>/`` in every store), from the real program under Pulumi mocks, per stack:

- lifecycle in S3, GCS and Azure keeps them exactly as long as the yearly tier (the stack
  file's ``retention.yearlyYears``, read here independently), never moves them to a class that
  needs a restore, and no other rule expires them sooner;
- the stores' default lock covers them (S3 bucket default retention, the Azure main
  container's immutability policy, the GCS retention every job sets on its uploads);
- each job may create its own records only, write-once, and never delete: the backup writer
  ``attempts/``, the drill (restore reader) ``drills/``, in each cloud's own terms (IAM with
  ``s3:if-none-match``, an IAM Condition on the object name, an ABAC condition on the blob
  path)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dev.mockrun import Graph, run_program, stack_settings
from tests.program_graphs import STACKS, GraphCache

NS = "vo2max-dr"
DAYS_PER_YEAR = 365
S3_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
S3_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
GCS_BUCKET = "gcp:storage/bucket:Bucket"
GCS_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
AZ = "azure-native:storage:"
AZ_POLICY = f"{AZ}ManagementPolicy"
AZ_IMMUTABILITY = f"{AZ}BlobContainerImmutabilityPolicy"
AZ_CONTAINER = f"{AZ}BlobContainer"
AZ_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
# Classes a record could not be read from without a restore first.
NEEDS_RESTORE = {"GLACIER", "DEEP_ARCHIVE", "Archive", "tierToArchive"}
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"

graph_of = GraphCache()


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


def yearly_days(stack: str) -> int:
    return stack_settings(stack)[f"{NS}:retention"]["yearlyYears"] * DAYS_PER_YEAR


def s3_rules(g: Graph) -> list[dict[str, Any]]:
    bucket = g.outputs["awsBucketName"]
    (lc,) = [r for r in g.of_type(S3_LIFECYCLE) if r.inputs["bucket"] == bucket]
    return lc.inputs["rules"]


def covers(rule_prefix: str, key_prefix: str) -> bool:
    """A lifecycle rule on ``rule_prefix`` reaches objects under ``key_prefix``."""
    return key_prefix.startswith(rule_prefix) or rule_prefix.startswith(key_prefix)


# ---- lifecycle: kept as long as the yearly tier, readable, nothing sooner ------------------

def test_s3_keeps_report_records_as_long_as_the_yearly_tier(stack):
    g, reports, keep = graph_of(stack), f"reports/{stack}/", yearly_days(stack)
    rules = s3_rules(g)
    (rule,) = [r for r in rules if r.get("filter", {}).get("prefix") == reports]
    assert rule["status"] == "Enabled"
    assert rule["expiration"] == {"days": keep}
    assert not rule.get("transitions")
    # No other rule (a bucket-wide one, say) expires them by age.
    for other in rules:
        prefix = other.get("filter", {}).get("prefix", "")
        if other is not rule and covers(prefix, reports):
            assert "days" not in other.get("expiration", {}), other


def test_gcs_keeps_report_records_as_long_as_the_yearly_tier(stack):
    g, reports, keep = graph_of(stack), f"reports/{stack}/", yearly_days(stack)
    rules = g.one(GCS_BUCKET).inputs["lifecycleRules"]
    mine = [r for r in rules if r["condition"].get("matchesPrefixes") == [reports]]
    assert [(r["action"]["type"], r["condition"]["age"], r["condition"]["withState"])
            for r in mine] == [("Delete", keep, "LIVE")]
    for r in rules:
        prefixes = r["condition"].get("matchesPrefixes") or [""]
        if r in mine or not any(covers(p, reports) for p in prefixes):
            continue
        # Bucket-wide rules: only noncurrent versions and unfinished uploads, never by age.
        assert (r["action"]["type"] == "AbortIncompleteMultipartUpload"
                or r["condition"].get("withState") == "ARCHIVED"), r


def test_azure_keeps_report_records_as_long_as_the_yearly_tier(stack):
    g, reports, keep = graph_of(stack), f"reports/{stack}/", yearly_days(stack)
    main = next(c for c in g.of_type(AZ_CONTAINER)
                if not c.inputs["containerName"].endswith("-intraday"))
    container = main.inputs["containerName"]
    rules = g.one(AZ_POLICY).inputs["policy"]["rules"]
    (rule,) = [r for r in rules
               if r["definition"]["filters"]["prefixMatch"] == [f"{container}/{reports}"]]
    base = rule["definition"]["actions"]["baseBlob"]
    assert base == {"delete": {"daysAfterCreationGreaterThan": keep}}
    assert not set(base) & NEEDS_RESTORE
    for other in rules:
        if other is not rule:
            assert not any(covers(p, f"{container}/{reports}")
                           for p in other["definition"]["filters"]["prefixMatch"]), other


def test_a_longer_yearly_tier_keeps_the_records_longer():
    years = stack_settings("staging")[f"{NS}:retention"]["yearlyYears"] + 3
    g = run_program("staging", {f"{NS}:retention.yearlyYears": years})
    keep = years * DAYS_PER_YEAR
    (rule,) = [r for r in s3_rules(g) if r.get("filter", {}).get("prefix") == "reports/staging/"]
    assert rule["expiration"] == {"days": keep}
    assert any(r["condition"].get("matchesPrefixes") == ["reports/staging/"]
               and r["condition"]["age"] == keep
               for r in g.one(GCS_BUCKET).inputs["lifecycleRules"])


# ---- lock: the stores' default lock covers them ------------------------------------------------

def test_the_default_lock_covers_the_records_in_every_store(stack):
    g, settings = graph_of(stack), stack_settings(stack)
    lock_days = settings[f"{NS}:immutability"]["lockDays"]
    bucket = g.outputs["awsBucketName"]
    (lock,) = [r for r in g.of_type(S3_LOCK) if r.inputs["bucket"] == bucket]
    # A bucket default: every new version, whatever its key, is locked lockDays.
    assert lock.inputs["rule"]["defaultRetention"]["days"] == lock_days
    assert "filter" not in lock.inputs["rule"]
    # Azure: the main container's policy (records are never in the -intraday one).
    main = next(c for c in g.of_type(AZ_CONTAINER)
                if not c.inputs["containerName"].endswith("-intraday"))
    (policy,) = [p for p in g.of_type(AZ_IMMUTABILITY)
                 if p.inputs["containerName"] == main.outputs["name"]]
    assert policy.inputs["immutabilityPeriodSinceCreationInDays"] == lock_days
    # GCS: the jobs that write records (backup, drill) set the retention on every upload.
    for fn in g.of_type(FUNCTION):
        if fn.inputs["name"].endswith(("-drill", "-backup-critical")):
            env = fn.inputs["environment"]["variables"]
            assert env["VO2DR_GCS_RETENTION_DAYS"] == str(lock_days), fn.name
    # The lock ends before the lifecycle may delete the records.
    assert lock_days <= yearly_days(stack)


# ---- grants: create-only, write-once, each job under its own prefix ----------------------------

def role_policy(g: Graph, stack: str, role: str) -> list[dict[str, Any]]:
    (doc,) = [json.loads(r.inputs["policy"]) for r in g.of_type(ROLE_POLICY)
              if r.inputs["role"] == f"vo2dr-{stack}-{role}"
              and r.name.startswith(f"vo2dr-{stack}-permissions")]
    return doc["Statement"]


def report_puts(statements: list[dict[str, Any]], reports: str) -> list[dict[str, Any]]:
    return [s for s in statements if "s3:PutObject" in s["Action"]
            and any(f"/{reports}" in r for r in
                    ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]))]


def test_s3_each_job_puts_its_own_records_once(stack):
    g, reports = graph_of(stack), f"reports/{stack}/"
    bucket = "arn:aws:s3:::" + g.outputs["awsBucketName"]
    expected = {"backup-writer": f"{bucket}/{reports}attempts/*",
                "restore-reader": f"{bucket}/{reports}drills/*"}
    for role, resource in expected.items():
        (put,) = report_puts(role_policy(g, stack, role), reports)
        assert put["Effect"] == "Allow" and put["Action"] == ["s3:PutObject"]
        assert put["Resource"] == resource
        # Write-once: S3 takes the put only with If-None-Match: * (no overwrite).
        assert put["Condition"] == {"Null": {"s3:if-none-match": "false"}}
    assert not report_puts(role_policy(g, stack, "monitor"), reports)
    # The reader (vo2dr report) reads and lists every record.
    reader = role_policy(g, stack, "restore-reader")
    assert any(s["Action"] == ["s3:GetObject"] and s["Resource"] == f"{bucket}/{reports}*"
               for s in reader)
    assert any(s["Action"] == ["s3:ListBucket"]
               and s["Condition"] == {"StringLike": {"s3:prefix": [f"{reports}*"]}}
               for s in reader)
    for role in expected:
        actions = {a for s in role_policy(g, stack, role) for a in s["Action"]}
        assert not any(a.startswith(("s3:Delete", "s3:Bypass")) for a in actions), role


def test_gcs_the_drill_creates_only_under_its_records_prefix(stack):
    g, reports = graph_of(stack), f"reports/{stack}/"
    bucket = g.one(GCS_BUCKET).outputs["name"]
    reader = g.one("gcp:serviceaccount/account:Account", "gcs-access-reader").outputs["member"]
    # (The snapshot pruner's conditioned grants are tests/unit/test_snapshot_program.py's.)
    conditional = [m for m in g.of_type(GCS_MEMBER) if m.inputs.get("condition")
                   and "-pruner-" not in m.name]
    (grant,) = conditional
    assert grant.inputs["member"] == reader
    assert grant.inputs["bucket"] == bucket
    assert grant.inputs["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{reports}drills/")')
    role = next(r for r in g.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
                if r.outputs["name"] == grant.inputs["role"])
    # Create with retention; no delete, so no overwrite either (uniform bucket-level access).
    assert sorted(role.inputs["permissions"]) == ["storage.objects.create",
                                                  "storage.objects.setRetention"]


def test_azure_the_drill_creates_only_under_its_records_prefix(stack):
    g, reports = graph_of(stack), f"reports/{stack}/"
    reader = g.one("azure-native:managedidentity:UserAssignedIdentity", "access-reader")
    main = next(c for c in g.of_type(AZ_CONTAINER)
                if not c.inputs["containerName"].endswith("-intraday"))
    (grant,) = [a for a in g.of_type(AZ_ASSIGNMENT) if a.inputs.get("condition")
                and "-pruner-" not in a.name]
    assert grant.inputs["principalId"] == reader.outputs["principalId"]
    assert grant.inputs["scope"] == main.outputs["id"]
    assert grant.inputs["conditionVersion"] == "2.0"
    cond = grant.inputs["condition"]
    assert f"!(ActionMatches{{'{BLOBS}/write'}})" in cond
    assert f"!(ActionMatches{{'{BLOBS}/add/action'}})" in cond
    assert f"@Resource[{BLOBS}:path] StringStartsWith '{reports}drills/'" in cond
    role = g.one("azure-native:authorization:RoleDefinition", "access-writer-role")
    assert grant.inputs["roleDefinitionId"] == role.outputs["id"]
    assert not any("delete" in a.lower()
                   for p in role.inputs["permissions"] for a in p["dataActions"])


def test_path_condition_refuses_a_quote():
    from infra.azure.access import CREATE_ACTIONS, path_condition

    with pytest.raises(ValueError, match="quote"):
        path_condition(CREATE_ACTIONS, ["reports/x'/"])
    with pytest.raises(ValueError, match="quote"):  # any of them, not only the first
        path_condition(CREATE_ACTIONS, ["application/production/assets/prune/", "logs/x'/"])
