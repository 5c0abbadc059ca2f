"""Every rule accepts a known-good resource and rejects a one-field change of it, with the
message asserted; plus the edge cases a rule's check must get right."""

from __future__ import annotations

import json

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from policy import policies as P
from tests.policy.cases import (
    CASES,
    CLOUD_RUN_JOB,
    PRODUCTION,
    STAGING,
    Case,
    backup_bucket_stack,
    drop,
    gcs_stack,
    replace,
    s3_lifecycle,
    schedules,
)


def run(name: str, good, ctx) -> list[str]:
    rule = P.RULES_BY_NAME[name]
    if rule.scope == "stack":
        return [f.message for f in rule.check(good, ctx)]
    type_, props = good
    return [f.message for f in P.run_rule(rule, [P.Res(type_, "r", "urn:r", props)], ctx)]


def mutated(case: Case):
    """A stack case's mutation takes the resource list; a resource case's takes the props (or
    returns a whole new (type, props) to change the type)."""
    if isinstance(case.good, tuple):
        out = case.mutate(case.good[1])
        return out if isinstance(out, tuple) else (case.good[0], out)
    return case.mutate(case.good)


def test_every_rule_has_a_case():
    assert sorted(CASES) == sorted(P.RULES_BY_NAME)


def test_each_cloud_table_holds_that_clouds_rules():
    from policy.rules import aws, azure, gcp, multicloud

    tables = {"aws": aws.AWS_RULES, "gcp": gcp.GCP_RULES, "azure": azure.AZURE_RULES,
              "multicloud": multicloud.MULTICLOUD_RULES}
    for cloud, table in tables.items():
        assert table and {r.cloud for r in table} == {cloud}, cloud
    assert sum(len(t) for t in tables.values()) == len(P.RULES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_accepts_known_good(name: str):
    case: Case = CASES[name]
    assert run(name, case.good, case.ctx) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_rejects_one_field_mutation(name: str):
    case: Case = CASES[name]
    messages = run(name, mutated(case), case.ctx)
    assert messages, f"{name} accepted the mutation"
    assert any(case.expect in m for m in messages), messages


def test_rule_names_follow_the_convention_and_carry_metadata():
    for rule in P.RULES:
        cloud, *rest = rule.name.split("-")
        assert cloud in ("aws", "gcp", "azure", "multicloud") and len(rest) >= 3, rule.name
        assert rule.severity in ("low", "medium", "high", "critical")
        assert rule.nist and rule.cis and rule.remediation and rule.url.startswith("https://")
        assert rule.types


# ---- edge cases of individual checks -------------------------------------------------------

def test_staging_may_use_governance_object_lock():
    case = CASES["aws-s3-bucket-object-lock-compliance"]
    assert run("aws-s3-bucket-object-lock-compliance", mutated(case), STAGING) == []


def test_object_lock_days_must_match_the_stack():
    type_, props = CASES["aws-s3-bucket-object-lock-compliance"].good
    props = {**props, "rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 7}}}
    assert any("lockDays is 30" in m for m in run("aws-s3-bucket-object-lock-compliance",
                                                  (type_, props), PRODUCTION))


def test_sse_s3_is_allowed_only_on_the_access_log_target():
    assert run("aws-s3-bucket-sse-kms-cmk", backup_bucket_stack(), PRODUCTION) == []
    # the same AES256 setting on the backup bucket is rejected
    mutated = replace("sse", "rules[0].applyServerSideEncryptionByDefault",
                      {"sseAlgorithm": "AES256"})(backup_bucket_stack())
    assert run("aws-s3-bucket-sse-kms-cmk", mutated, PRODUCTION)


def test_bucket_key_required_for_sse_kms():
    mutated = replace("sse", "rules[0].bucketKeyEnabled", False)(backup_bucket_stack())
    assert any("bucketKeyEnabled" in m for m in run("aws-s3-bucket-sse-kms-cmk", mutated,
                                                    PRODUCTION))


def test_backup_bucket_needs_object_lock_at_creation():
    mutated = replace("backups-bucket", "objectLockEnabled", None)(backup_bucket_stack())
    assert any("created without object lock" in m
               for m in run("aws-s3-bucket-controls-complete", mutated, PRODUCTION))


def test_lifecycle_for_a_missing_tier_is_reported():
    type_, props = CASES["aws-s3-bucket-lifecycle-gfs"].good
    props = {**props, "rules": props["rules"][1:]}
    assert any("no lifecycle rule for database/production/daily/" in m
               for m in run("aws-s3-bucket-lifecycle-gfs", (type_, props), PRODUCTION))


def test_lifecycle_of_another_environment_is_not_this_stacks():
    assert any("no lifecycle rule" in m for m in run(
        "aws-s3-bucket-lifecycle-gfs",
        ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
         s3_lifecycle("staging")), PRODUCTION))


def test_access_log_lifecycle_is_not_a_gfs_lifecycle():
    props = {"rules": [{"id": "access-logs", "status": "Enabled", "filter": {"prefix": ""},
                        "expiration": {"days": 90.0}}]}
    assert run("aws-s3-bucket-lifecycle-gfs",
               ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", props),
               PRODUCTION) == []


def test_transition_into_a_class_left_too_soon_is_rejected():
    type_, props = CASES["aws-s3-bucket-lifecycle-min-duration"].good
    # weekly tier: to STANDARD_IA at day 60, expiring at 84 -> 24 days in a 30-day class
    props = {**props, "rules": [dict(r) for r in props["rules"]]}
    props["rules"][1] = {**props["rules"][1],
                         "transitions": [{"days": 60.0, "storageClass": "STANDARD_IA"}]}
    assert any("STANDARD_IA for 24 days" in m for m in run(
        "aws-s3-bucket-lifecycle-min-duration", (type_, props), PRODUCTION))


def test_expiry_before_the_lock_ends_is_rejected():
    type_, props = CASES["aws-s3-bucket-lifecycle-min-duration"].good
    props = {**props, "rules": [dict(r) for r in props["rules"]]}
    props["rules"][0] = {**props["rules"][0], "expiration": {"days": 10.0}}
    assert any("before the 30-day lock ends" in m for m in run(
        "aws-s3-bucket-lifecycle-min-duration", (type_, props), PRODUCTION))


def test_retention_floor_is_configurable():
    type_, props = CASES["multicloud-storage-lifecycle-retention-floor"].good
    # Through run_rule, as the engine runs it: the rule's config reaches its check.
    rule = P.RULES_BY_NAME["multicloud-storage-lifecycle-retention-floor"]
    assert P.run_rule(rule, [P.Res(type_, "r", "urn:r", props)], None,
                      {"minimumRetentionDays": {**P.RETENTION_FLOOR_DAYS, "daily": 60}})


@pytest.mark.parametrize(("statement", "expect"), [
    ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}, "wildcard action '*'"),
    ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}, "on Resource '*'"),
    ({"Effect": "Allow", "NotAction": ["s3:DeleteObject"], "Resource": "arn:aws:s3:::b"},
     "NotAction"),
])
def test_iam_wildcards(statement, expect):
    props = {"policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}
    assert any(expect in m for m in P.check_aws_iam_no_wildcards(
        "aws:iam/policy:Policy", props, None))


def test_metrics_may_use_resource_star_because_aws_cannot_scope_them():
    props = {"policy": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": "vo2dr"}}}]})}
    assert P.check_aws_iam_no_wildcards("aws:iam/rolePolicy:RolePolicy", props, None) == []


def test_role_trusting_anyone_is_rejected():
    props = {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})}
    assert any("lets anyone" in m for m in P.check_aws_iam_no_wildcards(
        "aws:iam/role:Role", props, None))


def test_gcs_versioning_is_required():
    type_, props = CASES["gcp-storage-bucket-versioning-soft-delete"].good
    off = {**props, "versioning": {"enabled": False}}
    assert any("versioning is off" in m for m in run(
        "gcp-storage-bucket-versioning-soft-delete", (type_, off), PRODUCTION))


GCS_RULE = "gcp-storage-bucket-retention-locked"
BACKUP_ENV = "environment.variables"


def test_gcs_object_retention_may_stay_unlocked_in_staging_only():
    unlocked = replace("backup-fn", f"{BACKUP_ENV}.VO2DR_GCS_RETENTION_MODE", "Unlocked")(
        gcs_stack())
    assert run(GCS_RULE, unlocked, STAGING) == []
    assert run(GCS_RULE, gcs_stack(), STAGING) == []
    odd = replace("backup-fn", f"{BACKUP_ENV}.VO2DR_GCS_RETENTION_MODE", "Compliance")(
        gcs_stack())
    assert any("mode 'Compliance'" in m for m in run(GCS_RULE, odd, STAGING))


def test_every_gcs_writer_must_carry_a_long_enough_retention():
    short = replace("backup-fn", f"{BACKUP_ENV}.VO2DR_GCS_RETENTION_DAYS", "7")(gcs_stack())
    assert any("backup-fn retains GCS uploads 7 days, less than immutability.lockDays (30)"
               in m for m in run(GCS_RULE, short, PRODUCTION))
    # The Cloud Run job is a writer too: its envs list is read like the Lambda's variables.
    no_env = replace("standby-job", "template.template.containers[0].envs",
                     CLOUD_RUN_JOB["template"]["template"]["containers"][0]["envs"]
                     + [{"name": "VO2DR_GCS_BUCKET", "value": "b"}])(gcs_stack())
    assert any("standby-job writes to GCS without VO2DR_GCS_RETENTION_DAYS" in m
               for m in run(GCS_RULE, no_env, PRODUCTION))
    alone = drop("backup-fn")(drop("standby-job")(gcs_stack()))
    assert any("no job is configured" in m for m in run(GCS_RULE, alone, PRODUCTION))


def test_gcs_bucket_must_retain_one_way_or_the_other():
    bucket = replace("gcs-backups", "enableObjectRetention", None)(gcs_stack())
    assert any("retains nothing" in m for m in run(GCS_RULE, bucket, PRODUCTION))
    # A bucket retention policy (Bucket Lock) is the other way: long enough, and locked in
    # production.
    policy = replace("gcs-backups", "retentionPolicy",
                     {"retentionPeriod": "2592000", "isLocked": True})(bucket)
    assert run(GCS_RULE, policy, PRODUCTION) == []
    unlocked = replace("gcs-backups", "retentionPolicy.isLocked", False)(policy)
    assert any("not locked in production" in m for m in run(GCS_RULE, unlocked, PRODUCTION))
    assert run(GCS_RULE, unlocked, STAGING) == []
    short = replace("gcs-backups", "retentionPolicy.retentionPeriod", "86400")(policy)
    assert any("keeps objects 1 days, less than" in m for m in run(GCS_RULE, short, STAGING))


@pytest.mark.parametrize("perm", ["storage.objects.delete", "storage.buckets.update",
                                  "storage.buckets.setIamPolicy", "storage.objects.*",
                                  "resourcemanager.projects.setIamPolicy"])
def test_custom_role_may_not_destroy_or_expose(perm):
    assert P.check_gcp_custom_role("gcp:projects/iAMCustomRole:IAMCustomRole",
                                   {"permissions": ["storage.objects.create", perm]}, None)


def test_project_wide_admin_role_is_rejected():
    assert P.check_gcp_iam_no_primitive_roles(
        "gcp:projects/iAMMember:IAMMember", {"role": "roles/storage.admin"}, None)


def test_role_assignment_at_subscription_scope_is_rejected():
    props = {"roleDefinitionId": "custom", "scope": "/subscriptions/0000"}
    assert any("subscription scope" in m for m in P.check_azure_role_assignment(
        "azure-native:authorization:RoleAssignment", props, None))


def test_private_container_and_public_container():
    t = "azure-native:storage:BlobContainer"
    assert P.check_azure_storage_public(t, {"publicAccess": "None"}, None) == []
    assert P.check_azure_storage_public(t, {"publicAccess": "Blob"}, None)


def test_staging_immutability_may_stay_unlocked():
    case = CASES["azure-storage-container-immutability-locked"]
    assert run("azure-storage-container-immutability-locked", case.mutate(case.good),
               STAGING) == []


def test_production_immutability_is_locked_by_state_or_by_a_lock_resource():
    rule = "azure-storage-container-immutability-locked"
    stack = CASES[rule].good
    assert run(rule, stack, PRODUCTION) == []  # Unlocked, with the lock depending on it
    # Already Locked (refreshed or imported state) needs no lock resource.
    locked = replace("immutability", "state", "Locked")(drop("immutability-lock")(stack))
    assert run(rule, locked, PRODUCTION) == []
    # A lock resource that names the policy by id also counts, without the dependency.
    by_id = [P.Res(r.type, r.name, r.urn, r.props, r.parent, ())
             if r.name == "immutability-lock" else r for r in stack]
    assert run(rule, by_id, PRODUCTION) == []
    # A lock on some other policy does not.
    other = replace("immutability-lock", "policy_id", "/elsewhere")(by_id)
    assert any("nothing locks it" in m for m in run(rule, other, PRODUCTION))
    # A lock that reports anything but Locked is a finding of its own.
    odd = replace("immutability-lock", "state", "Unlocked")(stack)
    assert any("reports state 'Unlocked'" in m for m in run(rule, odd, PRODUCTION))


def test_daily_class_must_run_at_its_time():
    mutated = replace("schedules-backup-full", "scheduleExpression",
                      "cron(0 3 * * ? *)")(schedules())
    assert any("full must be backed up daily at 02:00 UTC" in m
               for m in run("aws-scheduler-schedule-rpo-met", mutated, PRODUCTION))


def test_a_class_without_schedule_is_reported():
    mutated = [r for r in schedules() if r.name != "schedules-backup-important"]
    assert any("important (RPO 60 min) has no backup schedule" in m
               for m in run("aws-scheduler-schedule-rpo-met", mutated, PRODUCTION))


def test_an_enabled_cloud_without_store_is_reported():
    ctx = P.Expectations.from_dict({**PRODUCTION.to_dict(),
                                    "enabledClouds": ["aws", "gcp", "azure"]})
    assert any("azure is enabled" in m for m in run(
        "multicloud-storage-backups-min-two-clouds", CASES[
            "multicloud-storage-backups-min-two-clouds"].good, ctx))


def test_staging_may_keep_one_cloud():
    ctx = P.Expectations.from_dict({**STAGING.to_dict(), "enabledClouds": ["aws"]})
    one = CASES["multicloud-storage-backups-min-two-clouds"].mutate(
        CASES["multicloud-storage-backups-min-two-clouds"].good)
    assert run("multicloud-storage-backups-min-two-clouds", one, ctx) == []


# ---- schedules -----------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "gap"), [
    ("rate(15 minutes)", 15), ("rate(1 hour)", 60), ("rate(2 hours)", 120),
    ("cron(0/15 * * * ? *)", 15), ("cron(0 0/1 * * ? *)", 60), ("cron(0 2 * * ? *)", 1440),
    ("*/15 * * * *", 15), ("10-59/15 * * * *", 15), ("10 * * * *", 60),
    ("cron(0 9 ? * MON#1 *)", None), ("garbage", None),
])
def test_schedule_gap(expr, gap):
    assert P.schedule_gap_minutes(expr) == gap


@pytest.mark.parametrize(("expr", "monthly"), [
    ("cron(0 9 ? * MON#1 *)", True), ("cron(0 9 1 * ? *)", True), ("0 9 1 * *", True),
    ("cron(0 9 ? * MON *)", False), ("0 9 1-7 * 1", False), ("rate(30 days)", False),
])
def test_monthly(expr, monthly):
    assert P.is_monthly(expr) is monthly


# ---- enforcement and the engine wrappers ---------------------------------------------------

def test_enforcement_is_mandatory_in_production_and_advisory_in_staging():
    assert P.enforcement_for("production") is EnforcementLevel.MANDATORY
    assert P.enforcement_for("staging") is EnforcementLevel.ADVISORY
    assert P.enforcement_for(None) is EnforcementLevel.MANDATORY  # unknown stack: fail safe
    type_, props = mutated(CASES["aws-kms-key-rotation-enabled"])
    bad = [P.Res(type_, "k", "urn:k", props)]
    assert {v.enforcement for v in P.evaluate(bad, PRODUCTION)} == {"mandatory"}
    assert {v.enforcement for v in P.evaluate(bad, STAGING)} == {"advisory"}
    # The Azure lock is declared (ImmutabilityPolicyLock), so its rule follows the stack too.
    locked = P.RULES_BY_NAME["azure-storage-container-immutability-locked"]
    assert locked.enforcement_for("production") is EnforcementLevel.MANDATORY
    assert locked.enforcement_for("staging") is EnforcementLevel.ADVISORY
    assert P.initial_config("production")["all"] is EnforcementLevel.MANDATORY
    assert P.initial_config("staging")["all"] is EnforcementLevel.ADVISORY


def _policy(name: str):
    return next(p for p in P.POLICIES if p.name == name)


def test_resource_policy_reports_through_the_engine_interface():
    """The pulumi_policy object, called as the analyzer would, with expectations from config."""
    type_, props = mutated(CASES["aws-s3-bucket-object-lock-compliance"])
    reported: list[str] = []
    args = ResourceValidationArgs(
        type_, props, "urn:pulumi:production::vo2max-dr::" + type_ + "::lock", "lock",
        PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []), None,
        {"expectations": PRODUCTION.to_dict()})
    _policy("aws-s3-bucket-object-lock-compliance").validate(
        args, lambda msg, urn=None: reported.append(msg))
    assert len(reported) == 1 and "GOVERNANCE in production" in reported[0]
    assert "Fix: " in reported[0]


def test_stack_policy_reports_through_the_engine_interface():
    case = CASES["aws-scheduler-schedule-drill-monthly"]
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    resources = [PolicyResource(r.type, r.props, r.urn, r.name, opts, None, None, [], {})
                 for r in case.mutate(case.good)]
    reported: list[tuple[str, str | None]] = []
    _policy("aws-scheduler-schedule-drill-monthly").validate(
        StackValidationArgs(resources, {"expectations": PRODUCTION.to_dict()}),
        lambda msg, urn=None: reported.append((msg, urn)))
    assert reported and "not once a month" in reported[0][0]


def test_engine_falls_back_to_the_stack_file(monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_STACK", raising=False)
    P.expectations_for_stack.cache_clear()
    ctx = P._engine_expectations({}, "urn:pulumi:production::vo2max-dr::aws:kms/key:Key::k")
    assert ctx is not None and ctx.production and ctx.retention_days["yearly"] == 2555


def test_pack_entry_point_only_builds_the_pack(monkeypatch):
    """policy/__main__.py hands every policy to PolicyPack, with the stack's enforcement."""
    import runpy

    import pulumi_policy

    built = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kw: built.update(kw))
    monkeypatch.setenv("PULUMI_STACK", "staging")
    runpy.run_path(str(P.ROOT / "policy" / "__main__.py"), run_name="__main__")
    assert built["name"] == P.PACK_NAME
    assert [p.name for p in built["policies"]] == [r.name for r in P.RULES]
    assert built["enforcement_level"] is EnforcementLevel.ADVISORY
    assert built["initial_config"]["all"] is EnforcementLevel.ADVISORY


# ---- issue 11 item 12: no grant on a backup store may delete or overwrite backups ------------

GCS_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"


@pytest.mark.parametrize("role", ["roles/storage.admin", "roles/storage.objectAdmin",
                                  "roles/storage.legacyBucketOwner", "roles/storage.objectUser",
                                  "roles/storage.legacyBucketWriter", "roles/storage.folderAdmin",
                                  "roles/storage.somethingNew"])
def test_gcs_bucket_grant_of_a_destructive_or_unvetted_role_is_mandatory(role: str):
    case = CASES["gcp-storage-bucketiammember-no-destructive-roles"]
    type_, props = case.good
    violations = P.evaluate([P.Res(type_, "grant", "urn:grant", {**props, "role": role})],
                            PRODUCTION)
    mine = [v for v in violations if v.rule == "gcp-storage-bucketiammember-no-destructive-roles"]
    assert mine and mine[0].mandatory, violations
    assert f"grants {role} on the backup bucket" in mine[0].message


def test_gcs_project_wide_destructive_role_and_whole_policy_are_caught():
    check = P.check_gcs_grants_no_destructive_roles
    assert check("gcp:projects/iAMMember:IAMMember",
                 {"role": "roles/storage.objectAdmin", "member": "user:a@x"}, None) == [
        "grants roles/storage.objectAdmin project-wide: it can delete or overwrite the backups "
        "in every bucket of the project"]
    # Project-wide roles unrelated to storage are other rules' business.
    assert check("gcp:projects/iAMMember:IAMMember",
                 {"role": "roles/logging.logWriter", "member": "user:a@x"}, None) == []
    policy = {"bucket": "b", "policyData": json.dumps({"bindings": [
        {"role": "roles/storage.objectViewer", "members": ["serviceAccount:r@p"]},
        {"role": "roles/storage.legacyBucketOwner", "members": ["projectOwner:p"]}]})}
    found = check("gcp:storage/bucketIAMPolicy:BucketIAMPolicy", policy, None)
    assert len(found) == 1 and "roles/storage.legacyBucketOwner" in found[0]
    # A managed folder inside the bucket is the bucket's backups too.
    assert check("gcp:storage/managedFolderIamMember:ManagedFolderIamMember",
                 {"bucket": "b", "managedFolder": "database/", "role": "roles/storage.objectAdmin",
                  "member": "user:a@x"}, None)
    assert "gcp:storage/managedFolderIamMember:ManagedFolderIamMember" in P.RULES_BY_NAME[
        "gcp-storage-bucketiammember-no-destructive-roles"].types
    # The program's custom creator role is judged by its permissions, not here.
    assert check(GCS_MEMBER, {"role": "projects/p/roles/vo2dr_production_gcs_creator",
                              "member": "serviceAccount:w@p"}, None) == []


def _azure(mutate) -> list[str]:
    from tests.policy.cases import azure_grants_stack
    return [f.message for f in P.check_azure_backup_grants(mutate(azure_grants_stack()), None)]


def test_azure_program_shaped_grants_pass():
    assert _azure(lambda s: s) == []


@pytest.mark.parametrize("guid,name", [
    ("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "Storage Blob Data Contributor"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
])
def test_azure_builtin_role_other_than_reader_on_a_store_is_caught(guid: str, name: str):
    role = f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    found = _azure(replace("reader-grant", "roleDefinitionId", role))
    assert found == [f"reader-grant assigns role {name} on backup store container: only "
                     "Storage Blob Data Reader or a vetted custom role may be assigned there"]


def test_azure_grant_at_a_parent_scope_reaches_the_store():
    """A Contributor assignment on the resource group (no dependency on the store) still
    reaches the account and container below it."""
    from tests.policy.cases import ACCOUNT_ID, azure_grants_stack

    rg = ACCOUNT_ID.split("/providers/")[0]
    stack_ = azure_grants_stack()
    stack_.append(P.Res("azure-native:authorization:RoleAssignment", "rg-grant", "urn:rg", {
        "roleDefinitionId": "/subscriptions/s/providers/Microsoft.Authorization/"
                            "roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
        "scope": rg}))
    found = [f.message for f in P.check_azure_backup_grants(stack_, None)]
    assert found == ["rg-grant assigns role Contributor on backup store account: only Storage "
                     "Blob Data Reader or a vetted custom role may be assigned there"]


def test_azure_overwrite_needs_a_worm_policy_on_the_container():
    found = _azure(drop("immutability"))
    assert len(found) == 1 and "allows overwriting blobs" in found[0] and \
        "no time-based immutability policy" in found[0]


@pytest.mark.parametrize("action", ["s3:DeleteObjectVersion", "s3:Delete*", "s3:*", "*",
                                    "s3:BypassGovernanceRetention", "s3:PutLifecycleConfiguration",
                                    "s3:PutBucketVersioning"])
def test_aws_policy_allowing_delete_or_overwrite_on_a_backup_bucket_is_caught(action: str):
    from tests.policy.cases import WRITER_POLICY, aws_grants_stack

    bad = WRITER_POLICY.replace('"s3:GetObject"', json.dumps(action))
    for holder, path in (("writer-policy", "policy"), ("reader-role", "inlinePolicies[0].policy")):
        found = P.check_aws_backup_grants(replace(holder, path, bad)(aws_grants_stack()), None)
        assert [f.urn.rsplit("::", 1)[-1] for f in found] == [holder], (action, found)


def test_aws_bucket_policy_and_resource_star_are_judged_and_denies_are_not():
    from tests.policy.cases import BUCKET, aws_grants_stack

    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": f"arn:aws:s3:::{BUCKET}/*"},
        {"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/ops"},
         "Action": "s3:DeleteObject", "Resource": "*"}]})
    found = P.check_aws_backup_grants(replace("policy", "policy", policy)(aws_grants_stack()),
                                      None)
    assert [f.message for f in found] == [
        f"policy statement Ops allows s3:DeleteObject on backup bucket arn:aws:s3:::{BUCKET}"]
    assert P.check_aws_backup_grants(aws_grants_stack(), None) == []
