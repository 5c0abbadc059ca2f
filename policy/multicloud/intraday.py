"""The intraday tier in every cloud: its expiry, its lock, and no identity that can shorten a
lock (three rules, kept together)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.documents import policy_documents
from policy.expectations import Expectations
from policy.multicloud.lifecycle import lifecycle_rules
from policy.multicloud.snapshots import (
    azure_delete_only_permissions,
    content_delete_statement,
    gcp_delete_only_role,
)
from policy.parsing import _as_list, _days, _num, _statements, get
from policy.resources import AZ, Finding, Res, _of

INTRADAY = "intraday"
INTRADAY_CONTAINER_SUFFIX = "-intraday"  # vo2dr.layout.intraday_container
STRATEGY_ENV = "VO2DR_STRATEGY"
# Grants that would shorten or lift an S3 lock or delete a locked version (an explicit one;
# wildcards are aws-iam-policy-no-wildcards' business).
AWS_LOCK_BREAKING_ACTIONS = frozenset({
    "s3:bypassgovernanceretention", "s3:putbucketobjectlockconfiguration",
    "s3:deleteobject", "s3:deleteobjectversion", "s3:*", "*"})
# Azure data actions that shorten or remove a blob's lock (the one immutability action also
# extends any and deletes unlocked ones) or delete blobs and versions.
AZURE_LOCK_BREAKING = re.compile(
    r"(immutableStorage/runAsSuperUser/action|/blobs/delete$|/deleteBlobVersion/action"
    r"|/permanentDelete/action|\*)", re.IGNORECASE)
GCP_LOCK_BREAKING = re.compile(
    r"^(storage\.objects\.(delete|overrideUnlockedRetention)|storage\.buckets\.update"
    r"|.*\*.*)$")


def _is_intraday_container(name: Any) -> bool:
    return str(name or "").endswith(INTRADAY_CONTAINER_SUFFIX)


def check_intraday_expiry(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    """Each cloud's lifecycle expires the intraday prefix when its window ends and never moves
    it to a colder class; on Azure, in the intraday container (the one locked that long)."""
    cloud, rules = lifecycle_rules(t, p)
    if not any("database/" in r.prefix for r in rules):
        return []  # not a backup store's lifecycle
    if c is None:
        return ["stack expectations are unavailable: cannot check the intraday expiry"]
    if not c.intraday_days:
        return []
    want = c.prefix(INTRADAY)
    mine = [r for r in rules if r.prefix.endswith(want)]
    if not mine:
        return [f"no lifecycle rule for {want}: intraday backups would never expire, and the "
                "tier would keep every backup of the day"]
    out = []
    for rule in mine:
        if rule.expire_days != c.intraday_days:
            out.append(f"{rule.prefix} expires after {_days(rule.expire_days)} days, but the "
                       f"stack keeps intraday backups {c.intraday_days} "
                       "(retention.intradayHours)")
        if rule.transitions:
            out.append(f"{rule.prefix} moves intraday objects to {rule.transitions}: they live "
                       f"{c.intraday_days} days, less than any colder class's minimum")
        if cloud == "azure" and not _is_intraday_container(rule.prefix.split("/", 1)[0]):
            out.append(f"{rule.prefix} is not in the '<container>{INTRADAY_CONTAINER_SUFFIX}' "
                       "container: only that one is locked for the intraday window")
    return out


def _job_envs(resources: Sequence[Res]) -> list[tuple[Res, dict[str, Any]]]:
    """(resource, environment) of every Lambda function and Cloud Run job."""
    out = [(r, dict(get(r.props, "environment.variables") or {}))
           for r in _of(resources, "aws:lambda/function:Function")]
    for r in _of(resources, "gcp:cloudrunv2/job:Job"):
        for container in _as_list(get(r.props, "template.template.containers")):
            out.append((r, {e.get("name"): e.get("value") for e in _as_list(get(container, "envs"))
                            if isinstance(e, Mapping)}))
    return out


def _grants(doc: Mapping[str, Any], action: str) -> bool:
    return any(st.get("Effect") == "Allow" and action in
               [str(a).lower() for a in _as_list(st.get("Action"))] for st in _statements(doc))


def check_intraday_lock(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    """Intraday objects are locked exactly until their window ends, in every cloud: on S3 and
    GCS by their own retain-until time, which the job computes from VO2DR_STRATEGY (so every
    job's strategy carries the stack's window and, in production, compliance) and which the S3
    writer must be allowed to send (s3:PutObjectRetention: S3 refuses it otherwise); on Azure
    by the intraday container's immutability policy."""
    if c is None:
        return [Finding("stack expectations are unavailable: cannot check the intraday lock")]
    if not c.intraday_days:
        return []
    out: list[Finding] = []
    if _of(resources, f"{AZ}StorageAccount"):
        policies = [r for r in _of(resources, f"{AZ}BlobContainerImmutabilityPolicy")
                    if _is_intraday_container(r.props.get("containerName"))]
        if not policies:
            out.append(Finding("no immutability policy on a '<container>-intraday' container: "
                               "Azure intraday blobs would be unlocked"))
        for r in policies:
            days = _num(r.props.get("immutabilityPeriodSinceCreationInDays"))
            if days != c.intraday_days:
                out.append(Finding(f"{r.name} locks intraday blobs {_days(days)} days, but they "
                                   f"expire after {c.intraday_days}", r.urn))
    for r, env in _job_envs(resources):
        if STRATEGY_ENV not in env:
            continue
        try:
            doc = json.loads(env[STRATEGY_ENV])
        except (TypeError, json.JSONDecodeError):
            out.append(Finding(f"{r.name}: {STRATEGY_ENV} is not JSON", r.urn))
            continue
        hours, mode = get(doc, "retention.intradayHours"), get(doc, "immutability.mode")
        if _num(hours) != c.intraday_days * 24:
            out.append(Finding(f"{r.name} locks intraday objects {hours} h, but they expire "
                               f"after {c.intraday_days} days", r.urn))
        if c.production and mode != "compliance":
            out.append(Finding(f"{r.name} locks intraday objects in mode {mode!r} in "
                               "production: use compliance", r.urn))
    for r in _of(resources, "aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        docs = policy_documents(r.type, r.props)
        # A put of backups (under database/), not any put: the drill's role puts its result
        # records under reports/ with the bucket's default lock and reads database/.
        puts_backups = any(
            st.get("Effect") == "Allow"
            and "s3:putobject" in [str(a).lower() for a in _as_list(st.get("Action"))]
            and any("database/" in str(res) for res in _as_list(st.get("Resource")))
            for doc in docs for st in _statements(doc))
        if puts_backups and not any(_grants(doc, "s3:putobjectretention") for doc in docs):
            out.append(Finding(f"{r.name} writes backups without s3:PutObjectRetention: S3 "
                               "refuses an upload that carries its own (intraday) lock", r.urn))
    return out


def check_no_lock_shortening(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    """No identity may shorten or lift a lock, or delete a locked backup: S3 governance bypass
    or object-lock configuration changes, Azure's blob immutability or delete actions, GCS's
    retention override or object delete. Setting a lock at creation stays allowed."""
    # The snapshot pruner's delete-only roles and its content-only S3 delete pass here: a
    # delete never lifts a lock (the clouds refuse deleting a locked blob or retained object,
    # and S3 DeleteObject only adds a delete marker), and multicloud-iam-delete-content-only
    # holds every such grant to <root>content/.
    if t == "azure-native:authorization:RoleDefinition":
        if azure_delete_only_permissions(p.get("permissions")):
            return []
        return [f"role definition grants {a}, which can shorten a lock or delete a backup"
                for perm in _as_list(p.get("permissions"))
                for a in map(str, _as_list(get(perm, "dataActions")))
                if AZURE_LOCK_BREAKING.search(a)]
    if t.endswith("iAMCustomRole:IAMCustomRole"):
        if gcp_delete_only_role(_as_list(p.get("permissions"))):
            return []
        return [f"custom role grants {perm}, which can shorten a retention or delete a backup"
                for perm in map(str, _as_list(p.get("permissions")))
                if GCP_LOCK_BREAKING.match(perm)]
    out = []
    for doc in policy_documents(t, p):
        for st in _statements(doc):
            if st.get("Effect") != "Allow" or content_delete_statement(st, _c):
                continue
            out += [f"statement {st.get('Sid', '?')} allows {a}, which can shorten or lift a "
                    "lock or delete a locked backup"
                    for a in map(str, _as_list(st.get("Action")))
                    if a.lower() in AWS_LOCK_BREAKING_ACTIONS]
    return out
