"""Lint AWS policy documents with parliament (https://github.com/duo-labs/parliament), a
maintained IAM linter with AWS's own action, resource-type and condition-key catalogue: it
catches invalid actions, a resource that no listed action can take, a condition key that the
action does not support, malformed documents and the like.

    findings = lint(document, kind="identity")   # [] when clean

Every finding that is known to be wrong for this project is listed in :data:`KNOWN_FALSE_POSITIVES`
(one place), each with the reason. Anything else fails ``tests/unit/test_iam_lint.py``: fix the
document, or, only when parliament is provably wrong, add an entry here with the source.
"""

from __future__ import annotations

import importlib.resources
import json
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _pkg_resources_shim() -> None:
    """parliament 1.6.4 (the newest release) reads its bundled data through
    ``pkg_resources.resource_filename``, and setuptools 81+ no longer ships pkg_resources. It
    uses nothing else of it, so a stand-in backed by importlib.resources is enough."""
    if "pkg_resources" in sys.modules:
        return
    try:
        import pkg_resources  # noqa: F401
        return
    except ImportError:
        pass
    shim = types.ModuleType("pkg_resources")

    def resource_filename(package: str, name: str) -> str:
        return str(importlib.resources.files(package).joinpath(name))

    shim.resource_filename = resource_filename  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim


_pkg_resources_shim()
import parliament  # noqa: E402


@dataclass(frozen=True)
class KnownFalsePositive:
    issue: str  # parliament's finding type
    match: Mapping[str, str]  # what the finding's detail/location must contain
    kinds: tuple[str, ...]  # document kinds it applies to
    reason: str


# Findings parliament gets wrong for these documents, each with why. Keep this list short.
KNOWN_FALSE_POSITIVES: tuple[KnownFalsePositive, ...] = (
    KnownFalsePositive(
        "MALFORMED", {"detail": "Statement contains neither Resource nor NotResource"},
        ("trust",),
        "A role trust policy has no Resource: the role itself is the resource (IAM User Guide, "
        "IAM JSON policy element reference, Resource: \"a role trust policy ... does not "
        "include a Resource element\"). parliament reads every document as an identity "
        "policy."),
    KnownFalsePositive(
        "RESOURCE_STAR", {}, ("key",),
        "In a KMS key policy \"Resource\": \"*\" means this key and is the only form KMS "
        "accepts (KMS Developer Guide, Key policies, \"Resource\"); tests/iam_check.py holds "
        "key policies to exactly that."),
    KnownFalsePositive(
        "PERMISSIONS_MANAGEMENT_ACTIONS", {}, ("key",),
        "Statement AccountAdministersKeyWithoutUsingIt lets the account (through IAM) manage "
        "the key, PutKeyPolicy included, without using it: KMS's lockout safety check refuses a "
        "key policy that no one can change (KMS Developer Guide, Default key policy, \"Allows "
        "access to the AWS account and enables IAM policies\")."),
    KnownFalsePositive(
        "MISMATCHED_TYPE", {"detail": "s3:TlsVersion requires a value of type Numeric"},
        ("resource",),
        "parliament's Numeric pattern is ^\\d+$ (integers only); s3:TlsVersion is compared "
        "with NumericLessThan 1.2 as in S3's documented example (S3 User Guide, Enforcing a "
        "minimum TLS version)."),
    KnownFalsePositive(
        "UNKNOWN_CONDITION_FOR_ACTION", {"detail": "Unknown condition s3:TlsVersion for action"},
        ("resource",),
        "The TLS deny names s3:* and parliament expands it to every S3 action; for the two "
        "that take no s3:TlsVersion key (s3:PutAccessPointPublicAccessBlock, "
        "s3:InitiateReplication) that Deny does not apply, and aws:SecureTransport still "
        "denies plain HTTP for them."),
    KnownFalsePositive(
        "MISMATCHED_TYPE_BUT_USABLE",
        {"detail": "StringNotEquals requires a value of type String but given Arn"},
        ("resource",),
        "s3:x-amz-server-side-encryption-aws-kms-key-id holds the key ARN as a string and S3 "
        "documents it with StringNotEquals (S3 User Guide, Requiring SSE-KMS with a specific "
        "key); parliament flags it as usable anyway."),
    KnownFalsePositive(
        "MISMATCHED_TYPE", {"detail": "ArnLike requires a value of type Arn but given String"},
        ("key",),
        "kms:EncryptionContext:aws:logs:arn with ArnLike is CloudWatch Logs' documented key "
        "policy condition (CloudWatch Logs User Guide, Encrypt log data using AWS KMS, step "
        "2); the value is a log-group ARN pattern."),
    KnownFalsePositive(
        "UNKNOWN_ACTION", {"detail": "Unknown action sts:GetWebIdentityToken"}, ("identity",),
        "sts:GetWebIdentityToken (IAM outbound identity federation) was launched after "
        "parliament 1.6.4's action catalogue (April 2025); the statement's exact form is "
        "pinned by tests/unit/test_iam.py."),
    KnownFalsePositive(
        "UNKNOWN_CONDITION_FOR_ACTION",
        {"detail": "Unknown condition lambda:SourceFunctionArn for action "
                   "secretsmanager:GetSecretValue"}, ("identity",),
        "lambda:SourceFunctionArn is set by Lambda on every call made with the execution "
        "role's credentials from the function's environment, for any action (Lambda "
        "Developer Guide, Using source function ARN to control function access behavior); "
        "parliament only knows service-specific keys per action."),
    KnownFalsePositive(
        "UNKNOWN_CONDITION_FOR_ACTION",
        {"detail": "Unknown condition lambda:SourceFunctionArn for action s3:"}, ("identity",),
        "The same key on the snapshot functions' S3 reads (their origins, their own indexes: "
        "infra/aws/runtime.py): Lambda sets it on every request made from the function's "
        "execution environment, S3's included (same Lambda Developer Guide page)."),
    KnownFalsePositive(
        "UNKNOWN_CONDITION_FOR_ACTION",
        {"detail": "Unknown condition lambda:SourceFunctionArn for action kms:"}, ("identity",),
        "The same key on the drill's kms:Sign and kms:GetPublicKey with the record signing key "
        "(infra/aws/signing.py): Lambda sets it on every request made from the function's "
        "execution environment, KMS's included (same Lambda Developer Guide page); it is what "
        "keeps operators who assume the drill's role from signing."),
)


def _matches(fp: KnownFalsePositive, finding: Any, kind: str) -> bool:
    if finding.issue != fp.issue or kind not in fp.kinds:
        return False
    text = json.dumps({"detail": finding.detail, "location": finding.location}, default=str)
    return all(v in text for v in fp.match.values())


def findings(document: str | Mapping[str, Any]) -> list[Any]:
    """Every parliament finding of ``document``, community auditors included."""
    text = document if isinstance(document, str) else json.dumps(document)
    policy = parliament.analyze_policy_string(text, include_community_auditors=True)
    return list(policy.findings)


def lint(document: str | Mapping[str, Any], *, kind: str) -> list[str]:
    """Findings not listed as known false positives, one readable line each."""
    out = []
    for f in findings(document):
        if any(_matches(fp, f, kind) for fp in KNOWN_FALSE_POSITIVES):
            continue
        out.append(f"{f.issue} ({f.severity}): {f.detail} at {f.location}")
    return out
