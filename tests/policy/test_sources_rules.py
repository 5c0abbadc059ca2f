"""Policy rules for the application sources (issue 16): the application prefixes are tiered
and kept like the database's, and only the backup role reads the app's secrets."""

from __future__ import annotations

import copy
import json

from policy import policies as P
from tests.policy.cases import APP_SECRET, CASES, PRODUCTION, WITH_APPLICATION, s3_lifecycle
from tests.policy.test_rules import run

GFS = "aws-s3-bucket-lifecycle-gfs"
T_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def with_application_rules(props: dict) -> dict:
    """The same tier rules repeated for application/<env>/code/ and …/config/."""
    props = copy.deepcopy(props)
    extra = []
    for kind in ("code", "config"):
        for rule in props["rules"]:
            prefix = rule["filter"]["prefix"]
            if prefix.startswith("database/"):
                r = copy.deepcopy(rule)
                r["id"] = rule["id"].replace("gfs-", f"gfs-{kind}-")
                r["filter"]["prefix"] = prefix.replace("database/production/",
                                                       f"application/production/{kind}/")
                extra.append(r)
    props["rules"] += extra
    return props


def test_application_prefixes_need_their_own_gfs_rules():
    assert GFS in P.RULES_BY_NAME
    base = s3_lifecycle()
    # Without application sources, the database's rules are enough.
    assert run(GFS, (T_LIFECYCLE, base), PRODUCTION) == []
    # With them, each source's tiers must be there too...
    missing = run(GFS, (T_LIFECYCLE, base), WITH_APPLICATION)
    assert any("no lifecycle rule for application/production/code/daily/" in m
               for m in missing), missing
    assert any("application/production/config/yearly/" in m for m in missing)
    good = with_application_rules(base)
    assert run(GFS, (T_LIFECYCLE, good), WITH_APPLICATION) == []
    # ...and kept exactly as long as the database's.
    bad = copy.deepcopy(good)
    rule = next(r for r in bad["rules"]
                if r["filter"]["prefix"] == "application/production/config/weekly/")
    rule["expiration"]["days"] = 7.0
    assert any("application/production/config/weekly/ expires after 7 days" in m
               for m in run(GFS, (T_LIFECYCLE, bad), WITH_APPLICATION))


def test_no_identity_but_the_backup_role_reads_the_app_secrets():
    name = "aws-iam-policy-app-secrets-backup-only"
    type_, props = CASES[name].good
    assert run(name, (type_, props), WITH_APPLICATION) == []
    doc = json.loads(props["policy"])
    for resource in ("*", f"arn:aws:secretsmanager:us-east-1:111111111111:secret:{APP_SECRET}"
                          "-AbCdEf"):
        doc["Statement"][0]["Resource"] = resource
        policy = {"name": "anything", "policy": json.dumps(doc)}
        assert any("a managed policy" in m for m in run(
            name, ("aws:iam/policy:Policy", policy), WITH_APPLICATION)), resource
    # Another secret of the account is not the app's: not this rule's business.
    doc["Statement"][0]["Resource"] = "arn:aws:secretsmanager:us-east-1:1:secret:other-AbCdEf"
    reader = {"role": "vo2dr-production-restore-reader", "policy": json.dumps(doc)}
    assert run(name, ("aws:iam/rolePolicy:RolePolicy", reader), WITH_APPLICATION) == []


def test_a_role_inline_policy_reading_the_app_secrets_is_refused_unless_the_backup_role():
    """A role's own inline policies (``aws.iam.Role(inline_policies=...)``) grant as much as a
    role policy: they are judged the same way."""
    name = "aws-iam-policy-app-secrets-backup-only"
    doc = json.loads(CASES[name].good[1]["policy"])

    def role(role_name: str) -> tuple[str, dict]:
        return "aws:iam/role:Role", {"name": role_name, "inlinePolicies": [
            {"name": "inline", "policy": json.dumps(doc)}]}

    found = run(name, role("vo2dr-production-restore-reader"), WITH_APPLICATION)
    assert any("role vo2dr-production-restore-reader" in m and "only the backup role" in m
               for m in found), found
    assert run(name, role("vo2dr-production-backup-writer"), WITH_APPLICATION) == []
    # A role without inline policies declares none.
    assert run(name, ("aws:iam/role:Role", {"name": "x", "inlinePolicies": [{}]}),
               WITH_APPLICATION) == []


WITH_PARAMETERS = P.Expectations.from_dict({
    **WITH_APPLICATION.to_dict(),
    "appParameters": ["/vo2max/production/shared/sentry-dsn", "/vo2max/production/app/"]})
SSM = "arn:aws:ssm:us-east-1:111111111111:parameter"


def _ssm_policy(actions: list[str], resource: str, role: str = "") -> tuple[str, dict]:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Sid": "S", "Effect": "Allow", "Action": actions, "Resource": resource}]}
    if role:
        return "aws:iam/rolePolicy:RolePolicy", {"role": role, "policy": json.dumps(doc)}
    return "aws:iam/policy:Policy", {"name": "anything", "policy": json.dumps(doc)}


def test_no_identity_but_the_backup_role_reads_the_app_ssm_parameters():
    name = "aws-iam-policy-app-secrets-backup-only"
    reader = "vo2dr-production-restore-reader"
    # The backup role's own grant, exactly as the program writes it: passes.
    for actions, resource in ((["ssm:GetParameters"], f"{SSM}/vo2max/production/shared/sentry-dsn"),
                              (["ssm:GetParametersByPath"], f"{SSM}/vo2max/production/app")):
        assert run(name, _ssm_policy(actions, resource, "vo2dr-production-backup-writer"),
                   WITH_PARAMETERS) == []
    # Any other identity reaching them is refused: the named parameter, one under the path, a
    # wildcard action or resource, and GetParametersByPath on any path above the app's (it
    # returns the whole subtree: authorised against the path in the request).
    refused = [
        (["ssm:GetParameter"], f"{SSM}/vo2max/production/shared/sentry-dsn"),
        (["ssm:GetParameters"], f"{SSM}/vo2max/production/app/stripe-key"),
        (["ssm:GetParameter*"], f"{SSM}/vo2max/production/app/*"),
        (["ssm:*"], f"{SSM}/*"),
        (["*"], "*"),
        (["ssm:GetParametersByPath"], f"{SSM}/vo2max/production/app"),
        (["ssm:GetParametersByPath"], f"{SSM}/vo2max"),
        (["ssm:GetParametersByPath"], "arn:aws:ssm:*:*:parameter/*"),
    ]
    for actions, resource in refused:
        found = run(name, _ssm_policy(actions, resource, reader), WITH_PARAMETERS)
        assert any("only the backup role" in m and reader in m for m in found), \
            (actions, resource)
        assert run(name, _ssm_policy(actions, resource), WITH_PARAMETERS), (actions, resource)
    # Not the app's: another app's parameters, a sibling path that only shares the text, a
    # GetParametersByPath below nothing of the app's, and writes.
    allowed = [
        (["ssm:GetParameters"], f"{SSM}/other-app/x"),
        (["ssm:GetParametersByPath"], f"{SSM}/vo2max/production/appx"),
        (["ssm:GetParametersByPath"], f"{SSM}/vo2max/staging"),
        (["ssm:PutParameter"], f"{SSM}/vo2max/production/app/x"),
    ]
    for actions, resource in allowed:
        assert run(name, _ssm_policy(actions, resource, reader), WITH_PARAMETERS) == [], \
            (actions, resource)
