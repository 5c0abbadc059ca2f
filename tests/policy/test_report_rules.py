"""The report records' rules beyond their one-field cases (tests/policy/cases.py): each cloud's
lifecycle passing and failing, each way to let a record be replaced in S3, and each way a
conditional GCS or Azure grant can open more than one kind of this stack's records."""

from __future__ import annotations

import copy

from policy import policies as P
from tests.policy import report_cases as R
from tests.policy.cases import (
    PRODUCTION,
    STAGING,
    T_LIFECYCLE,
    gcs_bucket,
    management_policy,
    res,
    s3_lifecycle,
)

RETENTION = P.RULES_BY_NAME["multicloud-storage-reports-retention"]
WRITE_ONCE = P.RULES_BY_NAME["aws-iam-policy-backups-write-once"]
SCOPED = P.RULES_BY_NAME["multicloud-iam-report-grants-scoped"]
T_GCS = "gcp:storage/bucket:Bucket"
T_AZ_POLICY = "azure-native:storage:ManagementPolicy"
T_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
T_GCS_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
T_AZ_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


# ---- lifecycle -----------------------------------------------------------------------------

def test_every_cloud_keeps_the_records_as_long_as_the_yearly_tier():
    assert RETENTION.check(T_LIFECYCLE, R.s3_lifecycle_with_reports(s3_lifecycle()),
                           PRODUCTION) == []
    assert RETENTION.check(T_GCS, R.gcs_with_reports(gcs_bucket()), PRODUCTION) == []
    assert RETENTION.check(T_AZ_POLICY, R.azure_with_reports(management_policy()),
                           PRODUCTION) == []


def test_a_store_without_a_rule_for_the_records_is_reported():
    for t, props in ((T_LIFECYCLE, s3_lifecycle()), (T_GCS, gcs_bucket()),
                     (T_AZ_POLICY, management_policy())):
        (msg,) = RETENTION.check(t, props, PRODUCTION)
        assert "no lifecycle rule expires reports/production/" in msg, t


def test_a_rule_of_another_environment_does_not_count():
    lifecycle = R.s3_lifecycle_with_reports(s3_lifecycle())
    staging = RETENTION.check(T_LIFECYCLE, lifecycle, STAGING)
    assert any("no lifecycle rule expires reports/staging/" in m for m in staging)


def test_a_wider_rule_that_expires_the_records_sooner_is_reported():
    lifecycle = R.s3_lifecycle_with_reports(s3_lifecycle())
    lifecycle["rules"].append({"id": "everything", "status": "Enabled", "filter": {"prefix": ""},
                               "expiration": {"days": 90.0}})
    (msg,) = RETENTION.check(T_LIFECYCLE, lifecycle, PRODUCTION)
    assert msg.startswith("(whole store) expires report records after 90 days")
    # GCS: a bucket-wide Delete by age.
    bucket = R.gcs_with_reports(gcs_bucket())
    bucket["lifecycleRules"].append({"condition": {"age": 400.0}, "action": {"type": "Delete"}})
    assert any("expires report records after 400 days" in m
               for m in RETENTION.check(T_GCS, bucket, PRODUCTION))
    # A disabled rule does not apply.
    lifecycle["rules"][-1]["status"] = "Disabled"
    assert RETENTION.check(T_LIFECYCLE, lifecycle, PRODUCTION) == []


def test_records_must_stay_readable_without_a_restore():
    lifecycle = R.s3_lifecycle_with_reports(s3_lifecycle())
    lifecycle["rules"][0]["transitions"] = [{"days": 90.0, "storageClass": "GLACIER"}]
    (msg,) = RETENTION.check(T_LIFECYCLE, lifecycle, PRODUCTION)
    assert "moves report records to GLACIER at day 90" in msg
    policy = R.azure_with_reports(management_policy())
    policy["policy"]["rules"][0]["definition"]["actions"]["baseBlob"]["tierToArchive"] = {
        "daysAfterCreationGreaterThan": 365.0}
    assert any("moves report records to Archive" in m
               for m in RETENTION.check(T_AZ_POLICY, policy, PRODUCTION))
    # A class readable as it is (S3 Standard-IA) is allowed.
    lifecycle["rules"][0]["transitions"] = [{"days": 30.0, "storageClass": "STANDARD_IA"}]
    assert RETENTION.check(T_LIFECYCLE, lifecycle, PRODUCTION) == []


def test_azure_prefixes_start_with_the_container():
    # The records' rule on the intraday container does not cover the main container's.
    policy = R.azure_with_reports(management_policy(), container="backups-intraday")
    assert RETENTION.check(T_AZ_POLICY, policy, PRODUCTION) == []  # the same prefix, any container
    policy = R.azure_with_reports(management_policy())
    policy["policy"]["rules"][0]["definition"]["filters"]["prefixMatch"] = [
        "backups/reports/production/drills/"]
    assert any("no lifecycle rule expires" in m
               for m in RETENTION.check(T_AZ_POLICY, policy, PRODUCTION))


def test_a_lifecycle_that_is_no_backup_store_is_not_judged():
    logs = {"bucket": "logs", "rules": [{"id": "access-logs", "status": "Enabled",
                                         "filter": {"prefix": ""}, "expiration": {"days": 90.0}}]}
    assert RETENTION.check(T_LIFECYCLE, logs, PRODUCTION) == []


# ---- S3: write-once puts -------------------------------------------------------------------

def _findings(resources) -> list[str]:
    return [f.message for f in WRITE_ONCE.check(resources, PRODUCTION)]


def test_a_put_on_the_records_needs_if_none_match():
    assert _findings(R.drill_stack(res)) == []
    assert _findings(R.drill_stack(res, {"StringEquals": {"s3:if-none-match": "*"}})) == []
    # The opposite condition (only with the header absent) is no guarantee.
    assert _findings(R.drill_stack(res, {"Null": {"s3:if-none-match": "true"}}))


def test_a_wider_put_that_reaches_the_records_is_caught():
    for resource, action in ((f"arn:aws:s3:::{R.BUCKET}/*", "s3:PutObject"),
                             (f"arn:aws:s3:::{R.BUCKET}/reports/*", "s3:Put*"),
                             ("*", "s3:*")):
        (msg,) = _findings(R.drill_stack(res, statement={
            "Sid": "Wide", "Effect": "Allow", "Action": [action], "Resource": resource}))
        assert "statement Wide allows s3:PutObject on write-once objects" in msg, resource


def test_puts_elsewhere_and_denies_are_not_judged():
    # Outside the tiers, the content pools and the records (the status state): not judged.
    status = {"Sid": "PutStatus", "Effect": "Allow", "Action": ["s3:PutObject"],
              "Resource": f"arn:aws:s3:::{R.BUCKET}/status/production/*"}
    assert _findings(R.drill_stack(res, statement=status)) == []
    deny = {"Sid": "Deny", "Effect": "Deny", "Action": ["s3:PutObject"],
            "Resource": f"arn:aws:s3:::{R.BUCKET}/reports/production/drills/*"}
    assert _findings(R.drill_stack(res, statement=deny)) == []
    # The access-log bucket's delivery grant (in every fixture) is no report record's.
    logs_only = [r for r in R.drill_stack(res) if r.name != "drill-policy"]
    assert _findings(logs_only) == []


# ---- GCS and Azure: conditional grants open one kind of this stack's records ---------------

def test_gcs_condition_must_name_one_kind_of_this_stacks_records():
    assert SCOPED.check(T_GCS_MEMBER, R.gcs_drill_grant(), PRODUCTION) == []
    assert SCOPED.check(T_GCS_MEMBER, R.gcs_drill_grant("reports/production/attempts/"),
                        PRODUCTION) == []
    for prefix in ("reports/staging/drills/", "reports/production/", "reports/"):
        assert SCOPED.check(T_GCS_MEMBER, R.gcs_drill_grant(prefix), PRODUCTION), prefix
    widened = R.gcs_drill_grant()
    widened["condition"]["expression"] += ' || resource.name.startsWith("projects/_/")'
    assert SCOPED.check(T_GCS_MEMBER, widened, PRODUCTION)
    # A grant without a condition, or one about something else, is not this rule's business.
    plain = {k: v for k, v in R.gcs_drill_grant().items() if k != "condition"}
    assert SCOPED.check(T_GCS_MEMBER, plain, PRODUCTION) == []


def test_azure_condition_must_guard_every_create_action_and_one_prefix():
    assert SCOPED.check(T_AZ_ASSIGNMENT, R.azure_drill_grant(), PRODUCTION) == []
    only_write = R.azure_drill_grant(R.azure_condition(actions=("write",)))
    (msg,) = SCOPED.check(T_AZ_ASSIGNMENT, only_write, PRODUCTION)
    assert f"does not guard {R.BLOBS}/add/action" in msg
    other_env = R.azure_drill_grant(R.azure_condition("reports/staging/drills/"))
    assert any("not exactly one kind" in m
               for m in SCOPED.check(T_AZ_ASSIGNMENT, other_env, PRODUCTION))
    v1 = copy.deepcopy(R.azure_drill_grant())
    v1["conditionVersion"] = "1.0"
    assert SCOPED.check(T_AZ_ASSIGNMENT, v1, PRODUCTION) == [
        "a blob path condition needs conditionVersion 2.0"]


def test_the_real_program_passes_the_report_rules():
    """Both stacks' graphs against their own stack files, as `make plan` runs the pack: no
    finding of these three, and each has something to judge."""
    from dev.mockrun import stack_settings
    from tests.program_graphs import program_graph

    for stack in ("staging", "production"):
        ctx = P.expectations_from_settings(stack_settings(stack), stack)
        resources = P.resources_from_graph(program_graph(stack))
        assert [f.message for f in WRITE_ONCE.check(resources, ctx)] == []
        for rule in (RETENTION, SCOPED):
            hits = [r for r in resources if r.type in rule.types]
            assert hits, (stack, rule.name)
            for r in hits:
                assert rule.check(r.type, dict(r.props), ctx) == [], (stack, rule.name, r.name)
        # The program does grant report puts, so the write-once rule had something to judge.
        assert any("reports/" in str(r.props.get("policy")) for r in resources
                   if r.type == "aws:iam/rolePolicy:RolePolicy")
