"""Known-good fixtures and one-field mutations for the snapshot rules (issue 17: retention with
dedup), written by hand from the providers' schemas like the rest of ``cases.py``, which merges
them into ``CASES``."""

from __future__ import annotations

import copy
import json
from typing import Any

from policy.policies import Expectations, Res
from tests.policy.cases import (
    BLOB,
    BUCKET,
    CONTAINER_ID,
    PRODUCTION,
    T_LIFECYCLE,
    Case,
    in_json,
    res,
    s3_lifecycle,
)

ASSETS = "application/production/assets/"
LOGS = "logs/production/"
UPLOADS = "vo2max-uploads-production"
WITH_SNAPSHOTS = Expectations.from_dict({
    **PRODUCTION.to_dict(), "snapshotRoots": [ASSETS, LOGS],
    "snapshotOrigins": [f"s3://{UPLOADS}/uploads/",
                        "s3://vo2max-log-drain-production/application/"]})
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
OBJ = f"arn:aws:s3:::{BUCKET}/"


def content_lifecycle() -> dict[str, Any]:
    """The database's tier rules plus, per snapshot root, its tier rules (as the database's)
    and a transitions-only content rule."""
    props = s3_lifecycle()
    extra = []
    for source, root in (("assets", ASSETS), ("logs", LOGS)):
        for rule in props["rules"]:
            prefix = rule["filter"]["prefix"]
            if prefix.startswith("database/production/"):
                r = copy.deepcopy(rule)
                r["filter"]["prefix"] = prefix.replace("database/production/", root)
                extra.append(r)
        extra.append({"id": f"content-{source}", "status": "Enabled",
                      "filter": {"prefix": f"{root}content/"},
                      "transitions": [{"days": 30.0, "storageClass": "STANDARD_IA"},
                                      {"days": 90.0, "storageClass": "GLACIER_IR"}],
                      "noncurrentVersionExpiration": {"noncurrentDays": 30.0},
                      "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1.0}})
    props["rules"] += extra
    return props


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def st(sid: str, actions: list[str], resources: Any, **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


PRUNER_POLICY = policy(
    st("ListSnapshotRoots", ["s3:ListBucket"], f"arn:aws:s3:::{BUCKET}",
       Condition={"StringLike": {"s3:prefix": [f"{ASSETS}*", f"{LOGS}*"]}}),
    st("ReadManifestsIndexesAndPlans", ["s3:GetObject"],
       [f"{OBJ}{ASSETS}*.manifest.json", f"{OBJ}{LOGS}prune/*"]),
    st("WritePrunePlansOnly", ["s3:AbortMultipartUpload", "s3:PutObject"],
       [f"{OBJ}{ASSETS}prune/*", f"{OBJ}{LOGS}prune/*"]),
    st("DeleteUnreferencedContentOnly", ["s3:DeleteObject"],
       [f"{OBJ}{ASSETS}content/*", f"{OBJ}{LOGS}content/*"]),
)
WRITER_POLICY = policy(
    st("PutNewBackups", ["s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectRetention"],
       [f"{OBJ}database/production/*", f"{OBJ}{ASSETS}daily/*", f"{OBJ}{ASSETS}content/*"]))


def aws_delete_stack() -> list[Res]:
    return [res(ROLE_POLICY, "pruner-policy",
                {"role": "vo2dr-production-pruner", "policy": PRUNER_POLICY}),
            res(ROLE_POLICY, "writer-policy",
                {"role": "vo2dr-production-backup-writer", "policy": WRITER_POLICY})]


ORIGIN_POLICY = {"role": "vo2dr-production-backup-writer", "policy": policy(
    st("ReadOriginObjects", ["s3:GetObject", "s3:GetObjectVersion"],
       [f"arn:aws:s3:::{UPLOADS}/uploads/*"]),
    st("ListOrigin0", ["s3:ListBucket"], f"arn:aws:s3:::{UPLOADS}",
       Condition={"StringLike": {"s3:prefix": ["uploads/*"]}}),
    # Unrelated: a wildcard resource for a non-S3 action is not about the origins.
    st("DescribeVpcNetworkInterfaces", ["ec2:DescribeNetworkInterfaces"], "*"))}

# ---- GCS and Azure ------------------------------------------------------------------------

GCS_BUCKET = "vo2dr-production-backups-123456789012"
PRUNER_SA = "serviceAccount:vo2dr-production-gcs-pruner@p.iam.gserviceaccount.com"
WRITER_SA = "serviceAccount:vo2dr-production-gcs-writer@p.iam.gserviceaccount.com"
T_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
T_BINDING = "gcp:storage/bucketIAMMember:BucketIAMMember"


def gcs_under(*prefixes: str) -> str:
    return " || ".join(f'resource.name.startsWith("projects/_/buckets/{GCS_BUCKET}/objects/'
                       f'{p}")' for p in prefixes)


def gcs_delete_stack() -> list[Res]:
    delete = res(T_ROLE, "delete-role", {"name": "projects/p/roles/delete",
                                         "permissions": ["storage.objects.delete"]})
    creator = res(T_ROLE, "creator-role", {"name": "projects/p/roles/creator", "permissions": [
        "storage.objects.create", "storage.objects.setRetention"]})
    return [
        delete, creator,
        res(T_BINDING, "pruner-delete", {
            "bucket": GCS_BUCKET, "role": "projects/p/roles/delete", "member": PRUNER_SA,
            "condition": {"title": "t", "expression": gcs_under(f"{ASSETS}content/",
                                                                 f"{LOGS}content/")}}),
        res(T_BINDING, "pruner-plans", {
            "bucket": GCS_BUCKET, "role": "projects/p/roles/creator", "member": PRUNER_SA,
            "condition": {"title": "t", "expression": gcs_under(f"{ASSETS}prune/",
                                                                 f"{LOGS}prune/")}}),
        res(T_BINDING, "writer-create", {"bucket": GCS_BUCKET, "role": "projects/p/roles/creator",
                                         "member": WRITER_SA}),
    ]


AZ_DEFINITION = "azure-native:authorization:RoleDefinition"
AZ_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
AZ_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
DELETE_ROLE_ID = ("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
                  "0f1e2d3c-0000-4000-8000-00000000dead")
WRITER_ROLE_ID = ("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
                  "0f1e2d3c-0000-4000-8000-00000000abcd")
PATH = f"@Resource[{BLOB}:path]"


def az_condition(actions: list[str], prefixes: list[str]) -> str:
    nots = " AND ".join(f"!(ActionMatches{{'{a}'}})" for a in actions)
    under = " OR ".join(f"{PATH} StringStartsWith '{p}'" for p in prefixes)
    return f"(({nots}) OR ({under}))"


def azure_delete_stack() -> list[Res]:
    pruner = res(AZ_IDENTITY, "azure-pruner-identity", {"resourceName": "vo2dr-production-p"})
    writer = res(AZ_IDENTITY, "azure-access-writer", {"resourceName": "vo2dr-production-w"})
    delete = res(AZ_DEFINITION, "delete-role", {"id": DELETE_ROLE_ID, "permissions": [
        {"actions": [], "dataActions": [f"{BLOB}/delete"]}]})
    write = res(AZ_DEFINITION, "writer-role", {"id": WRITER_ROLE_ID, "permissions": [
        {"actions": [], "dataActions": [f"{BLOB}/write", f"{BLOB}/add/action",
                                        f"{BLOB}/read"]}]})
    return [
        pruner, writer, delete, write,
        res(AZ_ASSIGNMENT, "pruner-delete-content", {
            "roleDefinitionId": DELETE_ROLE_ID, "scope": CONTAINER_ID,
            "conditionVersion": "2.0",
            "condition": az_condition([f"{BLOB}/delete"], [f"{ASSETS}content/",
                                                           f"{LOGS}content/"])},
            (pruner.urn, delete.urn)),
        res(AZ_ASSIGNMENT, "pruner-write-plans", {
            "roleDefinitionId": WRITER_ROLE_ID, "scope": CONTAINER_ID,
            "conditionVersion": "2.0",
            "condition": az_condition([f"{BLOB}/write", f"{BLOB}/add/action"],
                                      [f"{ASSETS}prune/", f"{LOGS}prune/"])},
            (pruner.urn, write.urn)),
        res(AZ_ASSIGNMENT, "writer-grant", {"roleDefinitionId": WRITER_ROLE_ID,
                                            "scope": CONTAINER_ID}, (writer.urn, write.urn)),
    ]


def delete_stack() -> list[Res]:
    return [*aws_delete_stack(), *gcs_delete_stack(), *azure_delete_stack()]


def _widen_pruner_delete(stack: list[Res]) -> list[Res]:
    out = []
    for r in stack:
        if r.name == "pruner-policy":
            props = in_json("policy", "Statement[3].Resource", [f"{OBJ}{ASSETS}*"])(r.props)
            r = Res(r.type, r.name, r.urn, props, r.parent, r.dependencies)
        out.append(r)
    return out


SNAPSHOT_CASES: dict[str, Case] = {
    "multicloud-storage-lifecycle-content-no-expiry": Case(
        (T_LIFECYCLE, content_lifecycle()),
        lambda p: {**p, "rules": [
            {**r, "expiration": {"days": 400.0}} if r["id"] == "content-assets" else r
            for r in p["rules"]]},
        f"expires objects under {ASSETS}content/", WITH_SNAPSHOTS),
    "multicloud-iam-delete-content-only": Case(
        delete_stack(), _widen_pruner_delete, "allows a delete beyond snapshot content",
        WITH_SNAPSHOTS),
    "aws-iam-policy-snapshot-origins-read-only": Case(
        (ROLE_POLICY, ORIGIN_POLICY),
        in_json("policy", "Statement[0].Action", ["s3:GetObject", "s3:PutObject"]),
        f"allows s3:putobject on the snapshot origin bucket {UPLOADS}", WITH_SNAPSHOTS),
}
