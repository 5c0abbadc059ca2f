"""The snapshot rules' edge cases (issue 17, retention with dedup): no lifecycle rule of any cloud
reaches content by age, however broad its prefix; only the pruner deletes, only content, and it
writes only prune plans; the writer never deletes; the older "no delete" rules let exactly the
pruner's content grant through and nothing else."""

from __future__ import annotations

import copy
import json

from policy import policies as P
from policy.policies import Res
from tests.policy.cases import BLOB, CONTAINER_ID, PRODUCTION, T_LIFECYCLE, gcs_bucket
from tests.policy.snapshot_cases import (
    ASSETS,
    LOGS,
    OBJ,
    PRUNER_POLICY,
    ROLE_POLICY,
    WITH_SNAPSHOTS,
    WRITER_POLICY,
    az_condition,
    azure_delete_stack,
    content_lifecycle,
    delete_stack,
    gcs_delete_stack,
    gcs_under,
)
from tests.policy.test_rules import run

CONTENT = "multicloud-storage-lifecycle-content-no-expiry"
DELETE = "multicloud-iam-delete-content-only"


def with_rule(props: dict, rule: dict) -> dict:
    props = copy.deepcopy(props)
    props["rules"].append(rule)
    return props


def test_a_broader_s3_rule_that_expires_reaches_content():
    for prefix in ("", "application/", ASSETS, LOGS, f"{ASSETS}content/abc"):
        bad = with_rule(content_lifecycle(), {
            "id": "broad", "status": "Enabled", "filter": {"prefix": prefix},
            "expiration": {"days": 3650.0}})
        assert any("expires objects under" in m
                   for m in run(CONTENT, (T_LIFECYCLE, bad), WITH_SNAPSHOTS)), prefix
    # A date is an expiry too; a disabled rule or a sibling prefix is not.
    dated = with_rule(content_lifecycle(), {
        "id": "dated", "status": "Enabled", "filter": {"and": {"prefix": "logs/"}},
        "expiration": {"date": "2030-01-01T00:00:00Z"}})
    assert run(CONTENT, (T_LIFECYCLE, dated), WITH_SNAPSHOTS)
    off = with_rule(content_lifecycle(), {"id": "off", "status": "Disabled",
                                          "filter": {"prefix": ""}, "expiration": {"days": 1.0}})
    sibling = with_rule(content_lifecycle(), {
        "id": "plans", "status": "Enabled", "filter": {"prefix": f"{ASSETS}prune/"},
        "expiration": {"days": 30.0}})
    for ok in (off, sibling):
        assert run(CONTENT, (T_LIFECYCLE, ok), WITH_SNAPSHOTS) == []
    # The bucket-wide delete-marker rule and noncurrent expiry never expire a live object.
    assert run(CONTENT, (T_LIFECYCLE, content_lifecycle()), WITH_SNAPSHOTS) == []
    # Without snapshot sources, the rule has nothing to judge.
    assert run(CONTENT, (T_LIFECYCLE, with_rule(content_lifecycle(), {
        "id": "x", "status": "Enabled", "filter": {"prefix": ""},
        "expiration": {"days": 1.0}})), PRODUCTION) == []


def test_content_must_stay_readable_without_rehydration():
    props = content_lifecycle()
    rule = next(r for r in props["rules"] if r["id"] == "content-logs")
    rule["transitions"][1]["storageClass"] = "GLACIER"
    assert any("needs a rehydration" in m
               for m in run(CONTENT, (T_LIFECYCLE, props), WITH_SNAPSHOTS))


def test_gcs_only_live_deletes_by_age_count():
    props = gcs_bucket()
    props["lifecycleRules"] = [
        {"action": {"type": "SetStorageClass", "storageClass": "NEARLINE"},
         "condition": {"age": 30, "matchesPrefixes": [f"{ASSETS}content/"]}},
        # Noncurrent versions (content the pruner deleted) go after the grace period: fine.
        {"action": {"type": "Delete"},
         "condition": {"daysSinceNoncurrentTime": 30, "withState": "ARCHIVED"}},
        {"action": {"type": "Delete"},
         "condition": {"age": 30, "matchesPrefixes": ["database/production/daily/"],
                       "withState": "LIVE"}},
    ]
    t = "gcp:storage/bucket:Bucket"
    assert run(CONTENT, (t, props), WITH_SNAPSHOTS) == []
    for condition in ({"age": 400}, {"age": 400, "matchesPrefixes": ["logs/"]},
                      {"createdBefore": "2030-01-01", "matchesPrefixes": [LOGS]}):
        bad = copy.deepcopy(props)
        bad["lifecycleRules"].append({"action": {"type": "Delete"}, "condition": condition})
        assert any(f"expires objects under {LOGS}content/" in m
                   for m in run(CONTENT, (t, bad), WITH_SNAPSHOTS)), condition


def test_azure_base_blob_delete_or_archive_on_content_is_refused():
    def policy(prefix: str, actions: dict) -> dict:
        return {"policy": {"rules": [
            {"name": "gfs-daily", "enabled": True, "type": "Lifecycle", "definition": {
                "filters": {"blobTypes": ["blockBlob"],
                            "prefixMatch": ["backups/database/production/daily/"]},
                "actions": {"baseBlob": {"delete": {"daysAfterCreationGreaterThan": 30}}}}},
            {"name": "x", "enabled": True, "type": "Lifecycle", "definition": {
                "filters": {"blobTypes": ["blockBlob"], "prefixMatch": [prefix]},
                "actions": {"baseBlob": actions}}}]}}
    t = f"{P.AZ}ManagementPolicy"
    cool = {"tierToCool": {"daysAfterCreationGreaterThan": 30}}
    assert run(CONTENT, (t, policy(f"backups/{ASSETS}content/", cool)), WITH_SNAPSHOTS) == []
    # The intraday container never holds content.
    delete = {"delete": {"daysAfterCreationGreaterThan": 3}}
    assert run(CONTENT, (t, policy(f"backups-intraday/{LOGS}", delete)), WITH_SNAPSHOTS) == []
    assert any("expires objects under" in m for m in run(
        CONTENT, (t, policy(f"backups/{LOGS}", delete)), WITH_SNAPSHOTS))
    archive = {"tierToArchive": {"daysAfterCreationGreaterThan": 180}}
    assert any("to Archive" in m for m in run(
        CONTENT, (t, policy(f"backups/{ASSETS}content/", archive)), WITH_SNAPSHOTS))


def _replace(stack: list[Res], name: str, **props) -> list[Res]:
    return [Res(r.type, r.name, r.urn, {**r.props, **props}, r.parent, r.dependencies)
            if r.name == name else r for r in stack]


def _doc_with(base: str, sid: str, **fields) -> str:
    doc = json.loads(base)
    for st in doc["Statement"]:
        if st["Sid"] == sid:
            st.update(fields)
    return json.dumps(doc)


def test_aws_writer_never_deletes_and_pruner_writes_only_plans():
    assert run(DELETE, delete_stack(), WITH_SNAPSHOTS) == []
    writer_deletes = json.loads(WRITER_POLICY)
    writer_deletes["Statement"].append({"Sid": "Oops", "Effect": "Allow",
                                        "Action": ["s3:DeleteObject"],
                                        "Resource": [f"{OBJ}{ASSETS}content/*"]})
    stack = _replace(delete_stack(), "writer-policy", policy=json.dumps(writer_deletes))
    assert any("lets the backup writer delete" in m for m in run(DELETE, stack, WITH_SNAPSHOTS))
    # The pruner writing a snapshot index or content would let it forge what it judges.
    stack = _replace(delete_stack(), "pruner-policy", policy=_doc_with(
        PRUNER_POLICY, "WritePrunePlansOnly", Resource=[f"{OBJ}{ASSETS}daily/*"]))
    assert any("writes outside <root>prune/" in m for m in run(DELETE, stack, WITH_SNAPSHOTS))
    # DeleteObjectVersion would remove a version for good: not the pruner's.
    stack = _replace(delete_stack(), "pruner-policy", policy=_doc_with(
        PRUNER_POLICY, "DeleteUnreferencedContentOnly",
        Action=["s3:DeleteObject", "s3:DeleteObjectVersion"]))
    assert any("beyond snapshot content" in m for m in run(DELETE, stack, WITH_SNAPSHOTS))


def test_gcs_delete_needs_a_content_condition_and_never_the_writer():
    stack = gcs_delete_stack()
    assert run(DELETE, stack, WITH_SNAPSHOTS) == []
    for expression in (None, "", gcs_under(ASSETS), gcs_under(f"{ASSETS}content/") +
                       " || true", gcs_under(f"{ASSETS}prune/")):
        cond = None if expression is None else {"title": "t", "expression": expression}
        bad = _replace(stack, "pruner-delete", condition=cond)
        assert any("beyond snapshot content" in m for m in run(DELETE, bad, WITH_SNAPSHOTS)), \
            expression
    bad = _replace(stack, "writer-create", role="projects/p/roles/delete")
    assert any("lets the backup writer" in m for m in run(DELETE, bad, WITH_SNAPSHOTS))
    bad = _replace(stack, "pruner-plans", condition=None)
    assert any("outside <root>prune/" in m for m in run(DELETE, bad, WITH_SNAPSHOTS))


def test_azure_delete_needs_a_content_path_condition():
    stack = azure_delete_stack()
    assert run(DELETE, stack, WITH_SNAPSHOTS) == []
    for condition in (None, az_condition([f"{BLOB}/delete"], [ASSETS]),
                      az_condition([f"{BLOB}/read"], [f"{ASSETS}content/"])):
        bad = _replace(stack, "pruner-delete-content", condition=condition)
        assert any("beyond snapshot content" in m for m in run(DELETE, bad, WITH_SNAPSHOTS)), \
            condition
    writer = next(r for r in stack if r.name == "azure-access-writer")
    delete = next(r for r in stack if r.name == "delete-role")
    bad = [*stack, Res("azure-native:authorization:RoleAssignment", "writer-delete",
                       "urn:writer-delete", {
                           "roleDefinitionId": delete.props["id"], "scope": CONTAINER_ID,
                           "conditionVersion": "2.0",
                           "condition": az_condition([f"{BLOB}/delete"],
                                                     [f"{ASSETS}content/"])},
                       None, (writer.urn, delete.urn))]
    assert any("lets the backup writer identity delete" in m
               for m in run(DELETE, bad, WITH_SNAPSHOTS))
    bad = _replace(stack, "pruner-write-plans", condition=None)
    assert any("outside <root>prune/" in m for m in run(DELETE, bad, WITH_SNAPSHOTS))


def test_the_no_delete_rules_let_exactly_the_pruner_content_grant_through():
    pruner = ("aws:iam/rolePolicy:RolePolicy",
              {"role": "vo2dr-production-pruner", "policy": PRUNER_POLICY})
    lock = "multicloud-iam-no-lock-shortening"
    assert run(lock, pruner, WITH_SNAPSHOTS) == []
    wide = ("aws:iam/rolePolicy:RolePolicy", {"role": "vo2dr-production-pruner", "policy":
            _doc_with(PRUNER_POLICY, "DeleteUnreferencedContentOnly",
                      Resource=[f"{OBJ}database/production/*"])})
    assert any("s3:DeleteObject" in m for m in run(lock, wide, WITH_SNAPSHOTS))
    grants = "aws-s3-bucket-grants-no-delete"
    from tests.policy.cases import backup_bucket_stack, res
    ok = [*backup_bucket_stack(), res(ROLE_POLICY, "pruner-policy", pruner[1])]
    assert run(grants, ok, WITH_SNAPSHOTS) == []
    bad = [*backup_bucket_stack(), res(ROLE_POLICY, "pruner-policy", wide[1])]
    assert any("s3:DeleteObject" in m for m in run(grants, bad, WITH_SNAPSHOTS))
    # GCS: a delete-only custom role passes the permission rules (its bindings are judged by
    # the delete rule); delete beside anything else does not.
    t = "gcp:projects/iAMCustomRole:IAMCustomRole"
    for rule in ("gcp-iam-customrole-no-destructive-permissions", lock):
        assert run(rule, (t, {"permissions": ["storage.objects.delete"]}), WITH_SNAPSHOTS) == []
        assert run(rule, (t, {"permissions": ["storage.objects.delete",
                                              "storage.objects.create"]}), WITH_SNAPSHOTS)
    # Azure: the delete-only role's assignment passes only with its content condition.
    stores = "azure-authorization-roleassignment-no-delete-on-stores"
    from tests.policy.cases import azure_grants_stack
    base = azure_grants_stack()
    container = next(r for r in base if r.name == "container")
    extra = [r if r.name != "pruner-delete-content" else
             Res(r.type, r.name, r.urn, r.props, r.parent, (*r.dependencies, container.urn))
             for r in azure_delete_stack() if r.name in ("delete-role", "pruner-delete-content")]
    assert run(stores, [*base, *extra], WITH_SNAPSHOTS) == []
    bad = _replace([*base, *extra], "pruner-delete-content", condition=None)
    assert any("blobs/delete" in m for m in run(stores, bad, WITH_SNAPSHOTS))
