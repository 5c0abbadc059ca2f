"""AWS S3: the backup buckets' encryption, public access, TLS, versioning, Object Lock, the
settings every bucket must have, and no grant that can delete or overwrite a backup."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from policy.documents import policy_documents
from policy.expectations import Expectations
from policy.multicloud.snapshots import content_delete_statement
from policy.parsing import (
    _as_list,
    _days,
    _is_public_principal,
    _num,
    _statements,
    get,
)
from policy.resources import S3, Finding, Res, _of


def _linked(companion: Res, target: Res) -> bool:
    """Does ``companion`` (an ``aws.s3.Bucket*`` setting) configure bucket ``target``?"""
    if target.urn in companion.dependencies:
        return True
    name = companion.props.get("bucket")
    return bool(name) and name in (target.props.get("bucket"), target.props.get("id"))


def check_aws_s3_tls_only(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    docs = policy_documents(t, p)
    if not docs:
        return ["bucket policy is not a JSON policy document"]
    for st in _statements(docs[0]):
        cond = st.get("Condition") or {}
        secure = get(cond, "Bool") or {}
        actions = [a.lower() for a in _as_list(st.get("Action"))]
        if (st.get("Effect") == "Deny" and _is_public_principal(st.get("Principal"))
                and str(secure.get("aws:SecureTransport", "")).lower() == "false"
                and ("s3:*" in actions or "*" in actions)):
            return []
    return ["bucket policy has no statement denying s3:* to everyone when "
            "aws:SecureTransport is false"]


def check_aws_s3_policy_not_public(t: str, p: Mapping[str, Any],
                                   _c: Expectations | None) -> list[str]:
    return [f"statement {st.get('Sid', '?')} allows {st.get('Action')} to everyone "
            "(Principal *) without a condition"
            for doc in policy_documents(t, p) for st in _statements(doc)
            if st.get("Effect") == "Allow" and _is_public_principal(st.get("Principal"))
            and not st.get("Condition")]


def check_aws_s3_public_access_block(_t: str, p: Mapping[str, Any],
                                     _c: Expectations | None) -> list[str]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [f for f in flags if p.get(f) is not True]
    return [f"public access block leaves {', '.join(off)} off"] if off else []


def check_aws_s3_acls_disabled(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    owner = get(p, "rule.objectOwnership")
    if owner != "BucketOwnerEnforced":
        return [f"object ownership is {owner!r}, not BucketOwnerEnforced: ACLs still apply"]
    return []


def check_aws_s3_versioning(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    status = get(p, "versioningConfiguration.status")
    return [] if status == "Enabled" else [f"bucket versioning is {status!r}, not Enabled"]


def check_aws_s3_object_lock(_t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    out = []
    if p.get("objectLockEnabled", "Enabled") != "Enabled":
        out.append("object lock configuration is not Enabled")
    mode = get(p, "rule.defaultRetention.mode")
    days = _num(get(p, "rule.defaultRetention.days"))
    years = _num(get(p, "rule.defaultRetention.years"))
    if mode is None:
        out.append("object lock has no default retention: new backups are not locked")
        return out
    if c is not None and c.production and mode != "COMPLIANCE":
        out.append(f"object lock default retention is {mode} in production: it must be "
                   "COMPLIANCE so no one, not even an admin, can shorten it")
    if mode not in ("GOVERNANCE", "COMPLIANCE"):
        out.append(f"object lock mode {mode!r} is not GOVERNANCE or COMPLIANCE")
    total = (days or 0) + (years or 0) * 365
    if c is not None and total != c.lock_days:
        out.append(f"object lock keeps new versions {_days(total)} days, but the stack's "
                   f"immutability.lockDays is {c.lock_days}")
    return out


def _log_targets(resources: Sequence[Res]) -> set[str]:
    return {str(r.props.get("targetBucket"))
            for r in _of(resources, "aws:s3/bucketLogging:BucketLogging")}


def check_aws_s3_sse(resources: Sequence[Res], _c: Expectations | None) -> list[Finding]:
    """Backup buckets: SSE-KMS with a customer key and bucket keys. A bucket that only receives
    S3 server access logs may use SSE-S3: AWS log delivery cannot write SSE-KMS objects."""
    targets = _log_targets(resources)
    out = []
    for sse in _of(resources, f"{S3}bucketServerSideEncryptionConfiguration:"
                              "BucketServerSideEncryptionConfiguration"):
        rules = _as_list(sse.props.get("rules"))
        is_log_target = str(sse.props.get("bucket")) in targets
        if not rules:
            out.append(Finding("default encryption has no rules", sse.urn))
        for rule in rules:
            algo = get(rule, "applyServerSideEncryptionByDefault.sseAlgorithm")
            key = get(rule, "applyServerSideEncryptionByDefault.kmsMasterKeyId")
            if is_log_target and algo in ("AES256", "aws:kms", "aws:kms:dsse"):
                continue
            if algo not in ("aws:kms", "aws:kms:dsse"):
                out.append(Finding(f"default encryption is {algo!r}, not aws:kms with a "
                                   "customer-managed key", sse.urn))
            elif not key or str(key) == "alias/aws/s3":
                out.append(Finding("SSE-KMS uses the AWS-managed key (kmsMasterKeyId unset or "
                                   "alias/aws/s3), not a customer-managed key", sse.urn))
            if rule.get("bucketKeyEnabled") is not True and algo != "AES256":
                out.append(Finding("bucketKeyEnabled is off: every object costs a KMS call",
                                   sse.urn))
    return out


_S3_SETTINGS = {
    "versioning": f"{S3}bucketVersioning:BucketVersioning",
    "default encryption": f"{S3}bucketServerSideEncryptionConfiguration:"
                          "BucketServerSideEncryptionConfiguration",
    "public access block": f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock",
    "ownership controls": f"{S3}bucketOwnershipControls:BucketOwnershipControls",
    "TLS-only bucket policy": f"{S3}bucketPolicy:BucketPolicy",
    "lifecycle": f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration",
}
_S3_BACKUP_SETTINGS = {
    "object lock configuration": f"{S3}bucketObjectLockConfiguration:"
                                 "BucketObjectLockConfiguration",
    "access logging": f"{S3}bucketLogging:BucketLogging",
}


def check_aws_s3_controls_complete(resources: Sequence[Res],
                                   _c: Expectations | None) -> list[Finding]:
    targets = _log_targets(resources)
    out = []
    for bucket in _of(resources, f"{S3}bucket:Bucket"):
        is_backup = str(bucket.props.get("bucket")) not in targets
        needed = {**_S3_SETTINGS, **(_S3_BACKUP_SETTINGS if is_backup else {})}
        for what, type_ in needed.items():
            if not any(_linked(s, bucket) for s in _of(resources, type_)):
                out.append(Finding(f"bucket {bucket.name} has no {what} ({type_})", bucket.urn))
        if is_backup and bucket.props.get("objectLockEnabled") is not True:
            out.append(Finding(f"backup bucket {bucket.name} is created without object lock "
                               "(objectLockEnabled): it cannot be turned on later", bucket.urn))
    return out


# S3 actions that delete or overwrite backups, or switch off what keeps them (versioning,
# Object Lock, lifecycle, the bucket policy). PutObject is not here: on a versioned,
# Object Lock bucket a second PutObject adds a version and the locked one stays.
AWS_DESTRUCTIVE_S3_ACTIONS = (
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket", "s3:DeleteBucketPolicy",
    "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration", "s3:BypassGovernanceRetention", "s3:ReplicateDelete",
)
AWS_POLICY_HOLDERS = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy",
                      "aws:iam/role:Role", f"{S3}bucketPolicy:BucketPolicy")


def _backup_bucket_arns(resources: Sequence[Res]) -> list[str]:
    targets = _log_targets(resources)
    return [f"arn:aws:s3:::{r.props.get('bucket')}" for r in _of(resources, f"{S3}bucket:Bucket")
            if r.props.get("bucket") and str(r.props.get("bucket")) not in targets]


def check_aws_backup_grants(resources: Sequence[Res], _c: Expectations | None) -> list[Finding]:
    """No IAM, role or bucket policy allows deleting or overwriting backups in a backup bucket
    (the buckets that are not only access-log targets). The one exception is the snapshot
    pruner's s3:DeleteObject on ``<root>content/*`` (multicloud-iam-delete-content-only judges
    who holds it); on a versioned Object Lock bucket it only adds a delete marker."""
    buckets = _backup_bucket_arns(resources)
    out = []
    for r in _of(resources, *AWS_POLICY_HOLDERS):
        for doc in policy_documents(r.type, r.props):
            for st in _statements(doc):
                if st.get("Effect") != "Allow" or content_delete_statement(st, _c):
                    continue
                patterns = [str(x) for x in _as_list(st.get("Resource"))]
                # A pattern reaches the bucket when its bucket part (before the first "/")
                # matches: "*", "arn:aws:s3:::*", "arn:aws:s3:::<bucket>/database/*".
                hit = [b for b in buckets for pat in patterns
                       if fnmatch.fnmatchcase(b, pat.split("/", 1)[0])]
                if not hit:
                    continue
                actions = [str(a).lower() for a in _as_list(st.get("Action"))]
                bad = [d for d in AWS_DESTRUCTIVE_S3_ACTIONS
                       if any(fnmatch.fnmatchcase(d.lower(), a) for a in actions)]
                if bad or "NotAction" in st:
                    what = bad or ["everything but " + str(st.get("NotAction"))]
                    out.append(Finding(f"{r.name} statement {st.get('Sid', '?')} allows "
                                       f"{', '.join(what)} on backup bucket {hit[0]}", r.urn))
    return out
