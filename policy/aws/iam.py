"""AWS IAM: no wildcard grants, no admin-class managed policies."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.documents import declared_policies, policy_documents
from policy.expectations import Expectations
from policy.parsing import _as_list, _is_public_principal, _statements, parse_policy_document

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
    # Unreadable (or, at preview, unknown) documents are findings: the engine withholds one
    # made on an unknown value and names the resource as not yet judgeable.
    for d in declared_policies(t, p):
        out += _iam_statement_findings(d.document) if d.document is not None else \
            [f"{d.where} is not a JSON policy document"]
    return out


def check_aws_iam_no_admin_policies(t: str, p: Mapping[str, Any],
                                    _c: Expectations | None) -> list[str]:
    arns = _as_list(p.get("managedPolicyArns")) + _as_list(p.get("policyArn"))
    return [f"attaches the AWS-managed {arn.rsplit('/', 1)[-1]} policy" for arn in map(str, arns)
            if arn.rsplit("/", 1)[-1] in AWS_ADMIN_POLICY_NAMES]


# Every action that returns a secret's or a parameter's value (matched against wildcards in the
# granted actions: "ssm:GetParameter*", "secretsmanager:*", "*" all read).
_SECRET_READ = ("secretsmanager:getsecretvalue",)
_PARAMETER_READ = ("ssm:getparameter", "ssm:getparameters", "ssm:getparameterhistory")
_PARAMETER_PATH_READ = "ssm:getparametersbypath"
BACKUP_ROLE_SUFFIX = "-backup-writer"  # infra/aws: cfg.name("backup-writer")
_SSM_PARAMETER_ARN = re.compile(r"^arn:aws[\w-]*:ssm:[^:]*:[^:]*:parameter(/.*)?$")


def _reads(actions: list[str], reads: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(r, a) for a in actions for r in reads)


def _secret_hits(res: str, c: Expectations) -> list[str]:
    """The app's secrets ``res`` (a secret ARN, possibly a pattern) covers."""
    if res in ("*", "arn:aws:secretsmanager:*"):
        return list(c.app_secrets)
    if ":secret:" not in res:
        return []
    part = res.split(":secret:", 1)[1]
    # Secrets Manager appends "-" and six characters to the name in the ARN.
    return [n for n in c.app_secrets if part.startswith(n) or fnmatch.fnmatchcase(f"{n}-Ab12Cd",
                                                                                   part)]


def _parameter_hits(res: str, by_path: bool, c: Expectations) -> list[str]:
    """The app's parameters (names) and paths (ending in /) that ``res`` lets a reader reach:
    a parameter ARN or pattern that matches one, or, for GetParametersByPath, any path at or
    above one (it is authorised against the path and returns the whole subtree)."""
    if res == "*":
        return list(c.app_parameters)
    m = _SSM_PARAMETER_ARN.match(res)
    if not m:
        return [p for p in c.app_parameters if fnmatch.fnmatchcase(
            f"arn:aws:ssm:x:x:parameter/{p.strip('/')}", res)]
    target = "/" + (m.group(1) or "/").strip("/")
    hits = []
    for p in c.app_parameters:
        item = "/" + p.strip("/")
        probe = item + "/x" if p.endswith("/") else item
        matches = fnmatch.fnmatchcase(probe, target) or fnmatch.fnmatchcase(item, target)
        under = p.endswith("/") and target.startswith(item + "/")  # one of the path's own
        above = by_path and (target == "/" or (item + "/").startswith(target.rstrip("/") + "/"))
        if matches or under or above:
            hits.append(p)
    return hits


def check_aws_app_secrets_backup_only(t: str, p: Mapping[str, Any],
                                      c: Expectations | None) -> list[str]:
    """Only the backup role's inline policy may read the app's secrets (the config source's
    Secrets Manager secrets and SSM parameters): any other role (a role policy or a role's
    own inline policies), and any managed policy (attachable to anything), is refused."""
    if c is None or not (c.app_secrets or c.app_parameters):
        return []
    docs = policy_documents(t, p)
    role = str(p.get("name") if t == "aws:iam/role:Role" else p.get("role") or "")
    if t != "aws:iam/policy:Policy" and role.endswith(BACKUP_ROLE_SUFFIX):
        return []
    out = []
    who = f"role {role}" if role else "a managed policy"
    for st in (st for doc in docs for st in _statements(doc)):
        if st.get("Effect") != "Allow":
            continue
        actions = [str(a).lower() for a in _as_list(st.get("Action"))]
        secret = _reads(actions, _SECRET_READ)
        parameter = _reads(actions, _PARAMETER_READ)
        by_path = _reads(actions, (_PARAMETER_PATH_READ,))
        for res in (str(r) for r in _as_list(st.get("Resource"))):
            hits = (_secret_hits(res, c) if secret else []) + \
                (_parameter_hits(res, by_path, c) if parameter or by_path else [])
            if hits:
                out.append(f"{st.get('Sid', '?')} lets {who} read the app secret "
                           f"{hits[0]}: only the backup role ({BACKUP_ROLE_SUFFIX[1:]}) may")
    return out
