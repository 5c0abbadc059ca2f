"""Acceptance (issue 17, retention with dedup), for both stacks, from the mocked program's own
resources: no lifecycle rule of S3, GCS or Azure can expire an object under a snapshot source's
``content/`` (a retained snapshot's content), and the backup writer cannot delete in any cloud.

The rules are evaluated here the way each cloud applies them (a rule reaches a key when the key
starts with the rule's prefix; S3 ``Expiration``, a GCS ``Delete`` on live objects by age or
date, an Azure ``baseBlob.delete`` expire the current object), independently of the policy
pack's own check, and each evaluation is shown to work on the same program: the snapshot tier
objects beside the content pool DO expire under it."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from vo2dr.layout import content_key, intraday_container, is_intraday_key

from dev.mockrun import Graph, stack_settings
from tests.unit.test_runtime_program import ROLE_POLICY, STACKS, graph_of

S3_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
GCS_BUCKET = "gcp:storage/bucket:Bucket"
AZ_POLICY = "azure-native:storage:ManagementPolicy"
AZ_CONTAINER = "azure-native:storage:BlobContainer"
CONTENT_ID = "0123456789abcdef0123456789abcdef"
SNAPSHOT_SOURCES = ("assets", "logs")


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


def _keys(stack: str) -> dict[str, tuple[str, str]]:
    """Per source: one content object's key and one daily snapshot index's key."""
    out = {}
    for source in SNAPSHOT_SOURCES:
        content = content_key(stack, source, CONTENT_ID)
        root = content[: -len(f"content/{CONTENT_ID}")]
        out[source] = (content, f"{root}daily/important/20260101T000000Z-0123456789ab.index.enc")
    return out


def s3_rules_expiring(g: Graph, key: str) -> tuple[list[str], list[str]]:
    """(rules of the backup bucket that reach ``key``, those of them that expire it)."""
    backup = [r for r in g.of_type(S3_LIFECYCLE) if "-backups-lifecycle" in r.name]
    assert len(backup) == 1, [r.name for r in g.of_type(S3_LIFECYCLE)]
    reach, expire = [], []
    for rule in backup[0].inputs["rules"]:
        if rule.get("status") != "Enabled":
            continue
        f = rule.get("filter") or {}
        prefix = f.get("prefix", (f.get("and") or {}).get("prefix", ""))
        if not key.startswith(prefix or ""):
            continue
        reach.append(rule["id"])
        exp = rule.get("expiration") or {}
        if exp.get("days") is not None or exp.get("date") is not None:
            expire.append(rule["id"])
    return reach, expire


def gcs_rules_expiring(g: Graph, key: str) -> tuple[list[Any], list[Any]]:
    bucket = g.one(GCS_BUCKET, "-gcs-backups-bucket")
    reach, expire = [], []
    for rule in bucket.inputs["lifecycleRules"]:
        cond = rule.get("condition") or {}
        prefixes = cond.get("matchesPrefixes") or [""]
        if not any(key.startswith(p) for p in prefixes):
            continue
        reach.append(rule)
        live = cond.get("withState") in (None, "LIVE", "ANY")
        by_time = any(cond.get(k) is not None for k in (
            "age", "createdBefore", "customTimeBefore", "daysSinceCustomTime"))
        if rule["action"]["type"] == "Delete" and live and by_time:
            expire.append(rule)
    return reach, expire


def azure_rules_expiring(g: Graph, key: str) -> tuple[list[str], list[str]]:
    main = next(c.inputs["containerName"] for c in g.of_type(AZ_CONTAINER)
                if not c.inputs["containerName"].endswith("-intraday"))
    # Where the Azure store keeps the key: intraday keys in the intraday container.
    container = intraday_container(main) if is_intraday_key(key) else main
    path = f"{container}/{key}"
    policy = g.one(AZ_POLICY)
    reach, expire = [], []
    for rule in policy.inputs["policy"]["rules"]:
        if rule.get("enabled") is False:
            continue
        d = rule["definition"]
        if not any(path.startswith(p) for p in d["filters"].get("prefixMatch") or [""]):
            continue
        reach.append(rule["name"])
        if (d["actions"].get("baseBlob") or {}).get("delete"):
            expire.append(rule["name"])
    return reach, expire


def test_no_lifecycle_rule_in_any_cloud_can_expire_snapshot_content(stack):
    g = graph_of(stack)
    clouds = stack_settings(stack)["vo2max-dr:clouds"]
    assert clouds["gcp"]["enabled"] or clouds["azure"]["enabled"]
    for source, (content, index) in _keys(stack).items():
        assert not is_intraday_key(content)
        evaluations = [("aws", s3_rules_expiring)]
        evaluations += [("gcp", gcs_rules_expiring)] if clouds["gcp"]["enabled"] else []
        evaluations += [("azure", azure_rules_expiring)] if clouds["azure"]["enabled"] else []
        for cloud, evaluate in evaluations:
            reach, expire = evaluate(g, content)
            assert reach, f"{cloud}: no rule reaches {content} (its transitions are missing)"
            assert expire == [], f"{cloud}: {expire} can expire {source} content {content}"
            # The evaluation sees expiries where they are: the snapshot's own index expires.
            _, index_expire = evaluate(g, index)
            assert index_expire, f"{cloud}: nothing expires the daily index {index}"


def _writer_statements(g: Graph, role: str) -> list[dict[str, Any]]:
    out = []
    for policy in g.of_type(ROLE_POLICY):
        if policy.inputs.get("role") == role:
            out += json.loads(policy.inputs["policy"])["Statement"]
    return out


AWS_DELETES = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
               "s3:PutLifecycleConfiguration", "s3:PutBucketObjectLockConfiguration")


def test_the_writer_cannot_delete_in_any_cloud_and_only_the_pruner_deletes_content(stack):
    g = graph_of(stack)
    writer = f"vo2dr-{stack}-backup-writer"
    statements = _writer_statements(g, writer)
    assert any(s["Sid"] == "PutNewBackupsOnce" for s in statements)
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert not [d for d in AWS_DELETES for a in actions
                    if st["Effect"] == "Allow" and fnmatch.fnmatchcase(d, a)], st
    # The writer creates content and tiers of a snapshot source, never its prune plans.
    puts = [r for s in statements if "s3:PutObject" in s["Action"] and s["Effect"] == "Allow"
            for r in s["Resource"] if "/reports/" not in r]
    assert puts and not [r for r in puts if "/prune/" in r or r.endswith("/assets/*")]
    # The one delete in AWS: the pruner's, on content only.
    pruner = _writer_statements(g, f"vo2dr-{stack}-pruner")
    deletes = [s for s in pruner if any("Delete" in a for a in s["Action"])]
    assert [s["Action"] for s in deletes] == [["s3:DeleteObject"]]
    assert all(r.endswith("/content/*") for r in deletes[0]["Resource"])
    assert len(deletes[0]["Resource"]) == len(SNAPSHOT_SOURCES)
    puts = [r for s in pruner if "s3:PutObject" in s["Action"] for r in s["Resource"]]
    assert puts and all(r.endswith("/prune/*") for r in puts)
    others = [p.name for p in g.of_type(ROLE_POLICY) if p.inputs.get("role") not in (
        f"vo2dr-{stack}-pruner",) and "s3:Delete" in p.inputs["policy"]]
    assert others == []

    # GCS: every binding of the writer (and of the standby, which writes too) is to a role
    # without storage.objects.delete; the only delete role is bound with a content condition.
    roles = {r.inputs.get("roleId"): r.inputs["permissions"]
             for r in g.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")}
    for b in g.of_type("gcp:storage/bucketIAMMember:BucketIAMMember"):
        perms = roles.get(b.inputs["role"].rsplit("/", 1)[-1], [])
        if "storage.objects.delete" in perms:
            assert "-gcs-pruner@" in b.inputs["member"], b.name
            assert perms == ["storage.objects.delete"]
            expr = b.inputs["condition"]["expression"]
            assert all(t.strip().endswith('/content/")') for t in expr.split("||")), expr
        elif "-gcs-writer@" in b.inputs["member"] or "-standby@" in b.inputs["member"]:
            assert b.inputs["role"] in ("roles/storage.objectViewer",) or perms, b.name

    # Azure: the writer identity's role holds no delete; the only delete role is assigned with
    # a content-path condition to the pruner identity.
    definitions = {d.urn: [a for p in d.inputs["permissions"] for a in p.get("dataActions", [])]
                   for d in g.of_type("azure-native:authorization:RoleDefinition")}
    for a in g.of_type("azure-native:authorization:RoleAssignment"):
        ops = [op for d in a.dependencies for op in definitions.get(d, [])]
        if any(op.endswith("/blobs/delete") for op in ops):
            assert any("-azure-pruner-identity" in d for d in a.dependencies), a.name
            assert ops == ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/"
                           "delete"]
            assert "StringStartsWith" in a.inputs["condition"]
            assert a.inputs["condition"].count("/content/'") == len(SNAPSHOT_SOURCES)
        if any("-azure-access-writer" in d for d in a.dependencies):
            assert ops and not [op for op in ops if "delete" in op.lower()], a.name
