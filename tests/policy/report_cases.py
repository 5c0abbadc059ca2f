"""The report records' rules (issue 18): a known-good fixture for each and the one-field change
it must reject (merged into tests/policy/cases.py's CASES). Written by hand from the providers'
schemas, independent of the program."""

from __future__ import annotations

import json
from typing import Any

BUCKET = "vo2dr-production-backups-111111111111"
GCS_BUCKET = "vo2dr-production-backups-100000000001"
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
YEARLY_DAYS = 2555  # the PRODUCTION expectations' yearly tier
WRITE_ONCE = {"Null": {"s3:if-none-match": "false"}}


def s3_lifecycle_with_reports(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (an S3 lifecycle of the GFS tiers) with the report records' rule first."""
    rules = [{"id": "report-records", "status": "Enabled",
              "filter": {"prefix": "reports/production/"},
              "expiration": {"days": float(YEARLY_DAYS)},
              "noncurrentVersionExpiration": {"noncurrentDays": 30.0},
              "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1.0}},
             *base["rules"]]
    return {**base, "rules": rules}


def gcs_with_reports(base: dict[str, Any]) -> dict[str, Any]:
    rule = {"condition": {"age": float(YEARLY_DAYS), "matchesPrefixes": ["reports/production/"],
                          "withState": "LIVE"}, "action": {"type": "Delete"}}
    return {**base, "lifecycleRules": [rule, *base["lifecycleRules"]]}


def azure_with_reports(base: dict[str, Any], container: str = "backups") -> dict[str, Any]:
    rule = {"name": "report-records", "enabled": True, "type": "Lifecycle", "definition": {
        "filters": {"blobTypes": ["blockBlob"],
                    "prefixMatch": [f"{container}/reports/production/"]},
        "actions": {"baseBlob": {"delete": {"daysAfterCreationGreaterThan": float(YEARLY_DAYS)}},
                    "version": {"delete": {"daysAfterCreationGreaterThan": 30.0}}}}}
    return {**base, "policy": {"rules": [rule, *base["policy"]["rules"]]}}


def drill_role_policy(condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"role": "vo2dr-production-restore-reader", "policy": json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "PutDrillRecordsOnce", "Effect": "Allow", "Action": ["s3:PutObject"],
             "Resource": f"arn:aws:s3:::{BUCKET}/reports/production/drills/*",
             "Condition": WRITE_ONCE if condition is None else condition},
            {"Sid": "ReadBackups", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": f"arn:aws:s3:::{BUCKET}/database/production/*"}]})}


def drill_stack(res, condition: dict[str, Any] | None = None,
                statement: dict[str, Any] | None = None) -> list:
    """The backup bucket, the access-log bucket (its logging target), and the drill's role
    policy (or one with ``statement`` instead), as policy resources built by ``res``."""
    policy = drill_role_policy(condition)
    if statement is not None:
        policy = {"role": "r", "policy": json.dumps({"Version": "2012-10-17",
                                                     "Statement": [statement]})}
    return [res("aws:s3/bucket:Bucket", "backups", {"bucket": BUCKET}),
            res("aws:s3/bucket:Bucket", "logs", {"bucket": "vo2dr-logs"}),
            res("aws:s3/bucketLogging:BucketLogging", "logging",
                {"bucket": BUCKET, "targetBucket": "vo2dr-logs"}),
            res("aws:s3/bucketPolicy:BucketPolicy", "logs-policy", {
                "bucket": "vo2dr-logs", "policy": json.dumps({"Statement": [{
                    "Sid": "S3ServerAccessLogsDelivery", "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::vo2dr-logs/*"}]})}),
            res("aws:iam/rolePolicy:RolePolicy", "drill-policy", policy)]


def gcs_drill_grant(prefix: str = "reports/production/drills/") -> dict[str, Any]:
    return {"bucket": GCS_BUCKET, "role": "projects/p/roles/vo2dr_production_gcs_creator",
            "member": "serviceAccount:vo2dr-production-gcs-reader@p.iam.gserviceaccount.com",
            "condition": {"title": "drill records only", "expression": (
                f'resource.name.startsWith("projects/_/buckets/{GCS_BUCKET}/objects/{prefix}")')}}


def azure_condition(prefix: str = "reports/production/drills/",
                    actions: tuple[str, ...] = ("write", "add/action")) -> str:
    guards = " AND ".join(f"!(ActionMatches{{'{BLOBS}/{a}'}})" for a in actions)
    return (f"(({guards}) OR (@Resource[{BLOBS}:path] StringStartsWith '{prefix}'))")


def azure_drill_grant(condition: str | None = None) -> dict[str, Any]:
    return {"principalId": "reader-principal", "principalType": "ServicePrincipal",
            "roleDefinitionId": "/subscriptions/s/resourceGroups/rg/providers/"
                                "Microsoft.Authorization/roleDefinitions/writer",
            "scope": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/"
                     "storageAccounts/vo2drprod/blobServices/default/containers/backups",
            "condition": azure_condition() if condition is None else condition,
            "conditionVersion": "2.0"}
