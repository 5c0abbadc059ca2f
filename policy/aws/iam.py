"""AWS IAM: no wildcard grants, no admin-class managed policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.expectations import Expectations
from policy.parsing import _as_list, _is_public_principal, _statements, get, parse_policy_document

AWS_ADMIN_POLICY_NAMES = (
    "AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "AmazonS3FullAccess",
    "AWSKeyManagementServicePowerUser", "SecretsManagerReadWrite", "AWSLambda_FullAccess",
)
# Actions that AWS does not scope to a resource: ``"Resource": "*"`` is the only form they take.
AWS_RESOURCELESS_ACTIONS = frozenset({
    "cloudwatch:putmetricdata", "xray:puttracesegments", "xray:puttelemetryrecords",
    "logs:createloggroup", "kms:listaliases", "s3:listallmybuckets", "sts:getcalleridentity",
})
# sts:GetWebIdentityToken (outbound federation to Entra ID) has no resource-level scope: IAM
# accepts only "*". It passes only alone in its statement and with the token audience pinned.
AWS_AUDIENCE_SCOPED_ACTION = "sts:getwebidentitytoken"
AWS_AUDIENCE_KEY = "sts:IdentityTokenAudience"


def _iam_statement_findings(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for st in _statements(doc):
        sid = st.get("Sid", "?")
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            out.append(f"statement {sid} uses NotAction/NotResource, which grants everything else")
        actions = [str(a) for a in _as_list(st.get("Action"))]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                out.append(f"statement {sid} allows the wildcard action {action!r}")
        resources = [str(r) for r in _as_list(st.get("Resource"))]
        if "*" in resources and not all(a.lower() in AWS_RESOURCELESS_ACTIONS for a in actions) \
                and not _audience_scoped_token_grant(actions, st.get("Condition") or {}):
            out.append(f"statement {sid} allows {actions} on Resource '*'")
    return out


def _audience_scoped_token_grant(actions: list[str], condition: Mapping[str, Any]) -> bool:
    if [a.lower() for a in actions] != [AWS_AUDIENCE_SCOPED_ACTION]:
        return False
    audiences = _as_list((condition.get("ForAllValues:StringEquals") or {}).get(AWS_AUDIENCE_KEY))
    required = str((condition.get("Null") or {}).get(AWS_AUDIENCE_KEY, "")).lower() == "false"
    return required and bool(audiences) and all(a and "*" not in str(a) for a in audiences)


def check_aws_iam_no_wildcards(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if t == "aws:iam/role:Role":
        trust = parse_policy_document(p.get("assumeRolePolicy"))
        for st in _statements(trust or {}):
            if st.get("Effect") == "Allow" and _is_public_principal(st.get("Principal")) \
                    and not st.get("Condition"):
                out.append(f"trust statement {st.get('Sid', '?')} lets anyone (Principal *) "
                           "assume the role")
        for inline in _as_list(p.get("inlinePolicies")):
            doc = parse_policy_document(get(inline, "policy"))
            if doc is not None:
                out += _iam_statement_findings(doc)
        return out
    doc = parse_policy_document(p.get("policy"))
    if doc is None:
        return ["policy is not a JSON policy document"]
    return _iam_statement_findings(doc)


def check_aws_iam_no_admin_policies(t: str, p: Mapping[str, Any],
                                    _c: Expectations | None) -> list[str]:
    arns = _as_list(p.get("managedPolicyArns")) + _as_list(p.get("policyArn"))
    return [f"attaches the AWS-managed {arn.rsplit('/', 1)[-1]} policy" for arn in map(str, arns)
            if arn.rsplit("/", 1)[-1] in AWS_ADMIN_POLICY_NAMES]


_SECRET_READ = ("secretsmanager:getsecretvalue", "secretsmanager:*", "*")
BACKUP_ROLE_SUFFIX = "-backup-writer"  # infra/aws: cfg.name("backup-writer")


def check_aws_app_secrets_backup_only(t: str, p: Mapping[str, Any],
                                      c: Expectations | None) -> list[str]:
    """Only the backup role's inline policy may read the app's secrets (the config source):
    any other role, and any managed policy (attachable to anything), is refused."""
    if c is None or not c.app_secrets:
        return []
    doc = parse_policy_document(p.get("policy")) or {}
    role = str(p.get("role") or "")
    if t == "aws:iam/rolePolicy:RolePolicy" and role.endswith(BACKUP_ROLE_SUFFIX):
        return []
    out = []
    for st in _statements(doc):
        actions = [str(a).lower() for a in _as_list(st.get("Action"))]
        if st.get("Effect") != "Allow" or not any(a in _SECRET_READ for a in actions):
            continue
        for res in (str(r) for r in _as_list(st.get("Resource"))):
            hits = [n for n in c.app_secrets if f":secret:{n}" in res
                    or res in ("*", "arn:aws:secretsmanager:*") or res.endswith(":secret:*")]
            if hits:
                who = f"role {role}" if role else "a managed policy"
                out.append(f"{st.get('Sid', '?')} lets {who} read the app secret "
                           f"{hits[0]}: only the backup role ({BACKUP_ROLE_SUFFIX[1:]}) may")
    return out
