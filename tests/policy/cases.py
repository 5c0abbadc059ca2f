"""Known-good fixtures for every rule, and the one-field change each rule must reject.

A resource rule's case is a resource type and its inputs (the engine's camelCase names); a stack
rule's case is a small list of resources. ``mutate`` changes one field (or, for a stack rule,
one resource) and ``expect`` is a phrase the rejection message must contain. The fixtures are
written by hand from the providers' schemas, independent of the program, so a rule cannot pass
just because it agrees with the code it checks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policy import policies as P
from policy.policies import Expectations, Res

PRODUCTION = Expectations.from_dict({
    "stack": "production", "environment": "production",
    "retentionDays": {"daily": 30, "weekly": 84, "monthly": 365, "yearly": 2555},
    "tierDays": [30, 90, 365], "lockDays": 30, "softDeleteDays": 7, "logRetentionDays": 90,
    "statusEveryMinutes": 15, "drillSchedule": "cron(0 9 ? * MON#1 *)",
    "dataClasses": {"critical": {"rpoMinutes": 15}, "important": {"rpoMinutes": 60},
                    "full": {"rpoMinutes": 1440, "dailyAtUtc": "02:00"}},
    "enabledClouds": ["aws", "gcp"], "intradayDays": 3,
})
STAGING = Expectations.from_dict({**PRODUCTION.to_dict(), "stack": "staging",
                                  "environment": "staging"})
# The same stack backing up the application (issue 16): code and config, and the app's secrets.
APP_SECRET = "vo2max/production/app/stripe-secret-key"
WITH_APPLICATION = Expectations.from_dict({**PRODUCTION.to_dict(), "sources": ["code", "config"],
                                           "appSecrets": [APP_SECRET]})

KEY_ARN = "arn:aws:kms:us-east-1:111111111111:key/1f9c2d1e-0000-4000-8000-000000000001"
ROLE_ARN = "arn:aws:iam::111111111111:role/vo2dr-production-backup-writer"
BUCKET = "vo2dr-production-backups-111111111111"
ACCOUNT_ID = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/"
              "storageAccounts/vo2drprod")
IMMUTABILITY_ID = (f"{ACCOUNT_ID}/blobServices/default/containers/backups/"
                   "immutabilityPolicies/default")


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:production::vo2max-dr::{type_}::{name}"


def res(type_: str, name: str, props: dict[str, Any], deps: tuple[str, ...] = ()) -> Res:
    return Res(type_, name, urn(type_, name), props, None, deps)


def set_path(value: Any, path: str, new: Any) -> Any:
    """A deep copy of ``value`` with ``a.b[0].c`` set to ``new`` (``None`` deletes it)."""
    out = copy.deepcopy(value)
    node = out
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = new
    elif new is None:
        node.pop(last, None)
    else:
        node[last] = new
    return out


def in_json(field: str, path: str, new: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Mutate ``path`` inside the JSON document held by ``props[field]``."""
    def mutate(props: dict[str, Any]) -> dict[str, Any]:
        doc = set_path(json.loads(props[field]), path, new)
        return {**props, field: json.dumps(doc)}
    return mutate


def at(path: str, new: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda props: set_path(props, path, new)


@dataclass(frozen=True)
class Case:
    """``good`` is (type, props) for a resource rule or a list of Res for a stack rule."""

    good: Any
    mutate: Callable[[Any], Any]
    expect: str
    ctx: Expectations | None = PRODUCTION


# ---- AWS fixtures --------------------------------------------------------------------------

S3 = "aws:s3/"
T_BUCKET = f"{S3}bucket:Bucket"
T_SSE = f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
T_PAB = f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock"
T_OWN = f"{S3}bucketOwnershipControls:BucketOwnershipControls"
T_POLICY = f"{S3}bucketPolicy:BucketPolicy"
T_VERSIONING = f"{S3}bucketVersioning:BucketVersioning"
T_LIFECYCLE = f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration"
T_LOCK = f"{S3}bucketObjectLockConfiguration:BucketObjectLockConfiguration"
T_LOGGING = f"{S3}bucketLogging:BucketLogging"

SSE = {"bucket": BUCKET, "rules": [{
    "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN},
    "bucketKeyEnabled": True}]}
BUCKET_POLICY = {"bucket": BUCKET, "policy": json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
     "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Sid": "WriterPuts", "Effect": "Allow", "Principal": {"AWS": ROLE_ARN},
     "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{BUCKET}/database/production/*"},
]})}
OBJECT_LOCK = {"bucket": BUCKET, "objectLockEnabled": "Enabled",
               "rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 30}}}


def s3_lifecycle(env: str = "production") -> dict[str, Any]:
    tiers = {"daily": (30, []), "weekly": (84, [(30, "STANDARD_IA")]),
             "monthly": (365, [(30, "STANDARD_IA"), (90, "GLACIER")]),
             "yearly": (2555, [(30, "STANDARD_IA"), (90, "GLACIER"), (365, "DEEP_ARCHIVE")])}
    rules = [{"id": f"gfs-{tier}", "status": "Enabled",
              "filter": {"prefix": f"database/{env}/{tier}/"},
              "expiration": {"days": float(expire)},
              "transitions": [{"days": float(d), "storageClass": c} for d, c in moves],
              "noncurrentVersionExpiration": {"noncurrentDays": 30.0},
              "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1.0}}
             for tier, (expire, moves) in tiers.items()]
    rules.append({"id": "expired-delete-markers", "status": "Enabled", "filter": {"prefix": ""},
                  "expiration": {"expiredObjectDeleteMarker": True}})
    return {"bucket": BUCKET, "rules": rules}


def backup_bucket_stack() -> list[Res]:
    bucket = res(T_BUCKET, "backups-bucket", {"bucket": BUCKET, "objectLockEnabled": True})
    log_bucket = res(T_BUCKET, "logs-bucket", {"bucket": "vo2dr-logs"})
    d, dl = (bucket.urn,), (log_bucket.urn,)
    settings = [
        res(T_VERSIONING, "v", {"bucket": BUCKET,
                                "versioningConfiguration": {"status": "Enabled"}}, d),
        res(T_SSE, "sse", SSE, d),
        res(T_PAB, "pab", {"bucket": BUCKET}, d),
        res(T_OWN, "own", {"bucket": BUCKET}, d),
        res(T_POLICY, "policy", BUCKET_POLICY, d),
        res(T_LIFECYCLE, "lifecycle", s3_lifecycle(), d),
        res(T_LOCK, "lock", OBJECT_LOCK, d),
        res(T_LOGGING, "logging", {"bucket": BUCKET, "targetBucket": "vo2dr-logs"}, d),
    ]
    log_settings = [
        res(T_VERSIONING, "lv", {"bucket": "vo2dr-logs"}, dl),
        res(T_SSE, "lsse", {"bucket": "vo2dr-logs", "rules": [
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}, dl),
        res(T_PAB, "lpab", {"bucket": "vo2dr-logs"}, dl),
        res(T_OWN, "lown", {"bucket": "vo2dr-logs"}, dl),
        res(T_POLICY, "lpolicy", {"bucket": "vo2dr-logs"}, dl),
        res(T_LIFECYCLE, "llifecycle", {"bucket": "vo2dr-logs"}, dl),
    ]
    return [bucket, log_bucket, *settings, *log_settings]


def drop(name: str) -> Callable[[list[Res]], list[Res]]:
    return lambda resources: [r for r in resources if r.name != name]


def replace(name: str, path: str, new: Any) -> Callable[[list[Res]], list[Res]]:
    def mutate(resources: list[Res]) -> list[Res]:
        return [Res(r.type, r.name, r.urn, set_path(dict(r.props), path, new), r.parent,
                    r.dependencies) if r.name == name else r for r in resources]
    return mutate


def schedules() -> list[Res]:
    t = "aws:scheduler/schedule:Schedule"
    target = {"arn": "arn:aws:lambda:us-east-1:111111111111:function:backup",
              "retryPolicy": {"maximumRetryAttempts": 2},
              "deadLetterConfig": {"arn": "arn:aws:sqs:us-east-1:111111111111:dlq"}}
    return [
        res(t, "schedules-backup-critical", {"scheduleExpression": "rate(15 minutes)",
                                              "target": {**target, "input": '{"data_class": '
                                                                            '"critical"}'}}),
        res(t, "schedules-backup-important", {"scheduleExpression": "cron(0 0/1 * * ? *)",
                                               "target": {**target, "input": '{"data_class": '
                                                                             '"important"}'}}),
        res(t, "schedules-backup-full", {"scheduleExpression": "cron(0 2 * * ? *)",
                                          "target": {**target, "input": '{"data_class": '
                                                                        '"full"}'}}),
        res(t, "schedules-status", {"scheduleExpression": "rate(15 minutes)", "target": target}),
        res(t, "schedules-drill", {"scheduleExpression": "cron(0 9 ? * MON#1 *)",
                                   "target": target}),
    ]


# ---- GCP fixtures --------------------------------------------------------------------------

T_GCS = "gcp:storage/bucket:Bucket"


def gcs_bucket(env: str = "production") -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    plan = {"daily": (30, []), "weekly": (84, [(30, "NEARLINE")]),
            "monthly": (365, [(30, "NEARLINE"), (90, "COLDLINE")]),
            "yearly": (2555, [(30, "NEARLINE"), (90, "COLDLINE"), (365, "ARCHIVE")])}
    for tier, (expire, moves) in plan.items():
        prefixes = [f"database/{env}/{tier}/"]
        rules += [{"condition": {"age": float(d), "matchesPrefixes": prefixes},
                   "action": {"type": "SetStorageClass", "storageClass": c}} for d, c in moves]
        rules.append({"condition": {"age": float(expire), "matchesPrefixes": prefixes,
                                    "withState": "LIVE"},
                      "action": {"type": "Delete"}})
    rules.append({"condition": {"daysSinceNoncurrentTime": 30.0, "withState": "ARCHIVED"},
                  "action": {"type": "Delete"}})
    rules.append({"condition": {"age": 1.0}, "action": {"type": "AbortIncompleteMultipartUpload"}})
    return {
        "name": "vo2dr-production-backups", "location": "US",
        "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced",
        "encryption": {"defaultKmsKeyName": "projects/p/locations/us/keyRings/r/cryptoKeys/k"},
        "versioning": {"enabled": True},
        "enableObjectRetention": True,
        "softDeletePolicy": {"retentionDurationSeconds": 604800.0},
        "lifecycleRules": rules,
    }


GCS_RETENTION = {"VO2DR_GCS_BUCKET": "vo2dr-production-backups",
                 "VO2DR_GCS_RETENTION_DAYS": "30", "VO2DR_GCS_RETENTION_MODE": "Locked"}


def gcs_stack() -> list[Res]:
    """The bucket and the two kinds of job that write to it: the backup Lambda and the Cloud
    Run standby job, each carrying the Object Retention Lock settings."""
    job = copy.deepcopy(CLOUD_RUN_JOB)
    job["template"]["template"]["containers"][0]["envs"] += [
        {"name": k, "value": v} for k, v in GCS_RETENTION.items()]
    return [res(T_GCS, "gcs-backups", gcs_bucket()),
            res("aws:lambda/function:Function", "backup-fn",
                {"environment": {"variables": {"VO2DR_ENVIRONMENT": "production",
                                               **GCS_RETENTION}}}),
            res("gcp:cloudrunv2/job:Job", "standby-job", job)]


CLOUD_RUN_JOB = {"template": {"template": {
    "serviceAccount": "vo2dr-standby@p.iam.gserviceaccount.com",
    "containers": [{"image": "us-central1-docker.pkg.dev/p/vo2dr/vo2dr:0.1.0", "envs": [
        {"name": "VO2DR_DATABASE_URL", "valueSource": {"secretKeyRef": {"secret": "db-url",
                                                                          "version": "latest"}}},
        {"name": "VO2DR_ENVIRONMENT", "value": "production"},
    ]}]}}}

# ---- Azure fixtures ------------------------------------------------------------------------

AZ = "azure-native:storage:"
T_ACCOUNT = f"{AZ}StorageAccount"
STORAGE_ACCOUNT = {
    "accountName": "vo2drprod", "kind": "StorageV2", "enableHttpsTrafficOnly": True,
    "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False, "allowSharedKeyAccess": False,
    "encryption": {"keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": True,
                   "keyVaultProperties": {"keyName": "blob-cmk",
                                          "keyVaultUri": "https://v.vault.azure.net/"}},
}
BLOB_SERVICE = {"accountName": "vo2drprod", "isVersioningEnabled": True,
                "deleteRetentionPolicy": {"enabled": True, "days": 7.0},
                "containerDeleteRetentionPolicy": {"enabled": True, "days": 7.0}}
IMMUTABILITY = {"accountName": "vo2drprod", "containerName": "backups",
                "immutabilityPeriodSinceCreationInDays": 30.0,
                "allowProtectedAppendWrites": False, "allowProtectedAppendWritesAll": False}


def management_policy(env: str = "production") -> dict[str, Any]:
    plan = {"daily": (30, {}), "weekly": (84, {"tierToCool": 30}),
            "monthly": (365, {"tierToCool": 30, "tierToCold": 90}),
            "yearly": (2555, {"tierToCool": 30, "tierToCold": 90, "tierToArchive": 365})}
    rules = []
    for tier, (expire, moves) in plan.items():
        base = {k: {"daysAfterCreationGreaterThan": float(d)} for k, d in moves.items()}
        base["delete"] = {"daysAfterCreationGreaterThan": float(expire)}
        rules.append({"name": f"gfs-{tier}", "enabled": True, "type": "Lifecycle",
                      "definition": {"filters": {"blobTypes": ["blockBlob"],
                                                 "prefixMatch": [f"backups/database/{env}/"
                                                                 f"{tier}/"]},
                                     "actions": {"baseBlob": base}}})
    return {"accountName": "vo2drprod", "policy": {"rules": rules}}


def azure_stack() -> list[Res]:
    account = res(T_ACCOUNT, "account", {**STORAGE_ACCOUNT, "id": ACCOUNT_ID})
    d = (account.urn,)
    immutability = res(f"{AZ}BlobContainerImmutabilityPolicy", "immutability",
                       {**IMMUTABILITY, "state": "Unlocked", "id": IMMUTABILITY_ID}, d)
    return [
        account,
        res(f"{AZ}BlobServiceProperties", "blob-service", BLOB_SERVICE, d),
        res(f"{AZ}ManagementPolicy", "lifecycle", management_policy(), d),
        res(f"{AZ}BlobContainer", "container", {"accountName": "vo2drprod",
                                                 "publicAccess": "None"}, d),
        # As Azure creates it (Unlocked), with the program's lock resource depending on it.
        immutability,
        res(P.AZURE_IMMUTABILITY_LOCK_TYPE, "immutability-lock",
            {"policy_id": IMMUTABILITY_ID, "lock_days": 30.0, "state": "Locked"},
            (immutability.urn,)),
        res("azure-native:authorization:ManagementLockByScope", "delete-lock",
            {"scope": ACCOUNT_ID, "level": "CanNotDelete"}, d),
    ]


WRITER_ROLE_ID = ("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
                  "0f1e2d3c-0000-4000-8000-00000000abcd")
BLOB_DATA_READER = ("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
                    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
CONTAINER_ID = f"{ACCOUNT_ID}/blobServices/default/containers/backups"
BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"


def azure_grants_stack() -> list[Res]:
    """The Azure store with its two grants as the program declares them: the writer custom
    role (create, read; no delete) and Storage Blob Data Reader, both on the container."""
    stack = azure_stack()
    container = next(r for r in stack if r.name == "container")
    container = Res(container.type, container.name, container.urn,
                    {**container.props, "containerName": "backups", "id": CONTAINER_ID},
                    None, container.dependencies)
    stack = [container if r.name == "container" else r for r in stack]
    role = res("azure-native:authorization:RoleDefinition", "writer-role", {
        "id": WRITER_ROLE_ID, "scope": CONTAINER_ID, "permissions": [{
            "actions": [], "dataActions": [f"{BLOB}/write", f"{BLOB}/add/action",
                                           f"{BLOB}/read"]}]})
    writer = res("azure-native:authorization:RoleAssignment", "writer-grant", {
        "roleDefinitionId": WRITER_ROLE_ID, "scope": CONTAINER_ID,
        "principalType": "ServicePrincipal"}, (role.urn, container.urn))
    reader = res("azure-native:authorization:RoleAssignment", "reader-grant", {
        "roleDefinitionId": BLOB_DATA_READER, "scope": CONTAINER_ID,
        "principalType": "ServicePrincipal"}, (container.urn,))
    return [*stack, role, writer, reader]


WRITER_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "PutNewBackups", "Effect": "Allow",
     "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
     "Resource": f"arn:aws:s3:::{BUCKET}/database/production/*"},
    {"Sid": "ReadBackups", "Effect": "Allow", "Action": ["s3:GetObject"],
     "Resource": f"arn:aws:s3:::{BUCKET}/database/production/*"}]})


def aws_grants_stack() -> list[Res]:
    """The backup bucket with its policy, a writer's role policy and an inline role policy."""
    return [*backup_bucket_stack(),
            res("aws:iam/rolePolicy:RolePolicy", "writer-policy",
                {"role": "writer", "policy": WRITER_POLICY}),
            res("aws:iam/role:Role", "reader-role", {"name": "reader", "inlinePolicies": [
                {"name": "read", "policy": WRITER_POLICY}]})]


# ---- the intraday tier ---------------------------------------------------------------------

INTRADAY_RULE = {"id": "gfs-intraday", "status": "Enabled",
                 "filter": {"prefix": "database/production/intraday/"},
                 "expiration": {"days": 3.0}, "transitions": [],
                 "noncurrentVersionExpiration": {"noncurrentDays": 1.0}}
INTRADAY_WRITER_POLICY = {"role": "vo2dr-production-backup-writer", "policy": json.dumps({
    "Version": "2012-10-17", "Statement": [
        {"Sid": "PutNewBackups", "Effect": "Allow",
         "Action": ["s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectRetention"],
         "Resource": f"arn:aws:s3:::{BUCKET}/database/production/*"}]})}
JOB_STRATEGY = json.dumps({"dataClasses": {}, "retention": {"intradayHours": 72},
                           "immutability": {"mode": "compliance"}})


def intraday_lifecycle() -> dict[str, Any]:
    props = s3_lifecycle()
    props["rules"].insert(0, copy.deepcopy(INTRADAY_RULE))
    return props


def intraday_stack() -> list[Res]:
    """The Azure intraday container's policy, a job that locks intraday objects from its
    strategy, and the S3 writer's policy that lets it send the lock."""
    account = res(T_ACCOUNT, "account", {**STORAGE_ACCOUNT, "id": ACCOUNT_ID})
    return [
        account,
        res(f"{AZ}BlobContainerImmutabilityPolicy", "intraday-immutability",
            {**IMMUTABILITY, "containerName": "backups-intraday",
             "immutabilityPeriodSinceCreationInDays": 3.0}, (account.urn,)),
        res("aws:lambda/function:Function", "backup-fn",
            {"environment": {"variables": {"VO2DR_STRATEGY": JOB_STRATEGY}}}),
        res("aws:iam/rolePolicy:RolePolicy", "writer-policy", INTRADAY_WRITER_POLICY),
    ]


def two_cloud_stores() -> list[Res]:
    return [res(T_BUCKET, "aws-backups", {"bucket": BUCKET}),
            res(T_GCS, "gcs-backups", {"name": "vo2dr-production-backups"})]


CASES: dict[str, Case] = {
    # AWS
    "aws-kms-key-rotation-enabled": Case(
        ("aws:kms/key:Key", {"enableKeyRotation": True, "customerMasterKeySpec":
                             "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT"}),
        at("enableKeyRotation", False), "automatic rotation off"),
    "aws-s3-bucket-sse-kms-cmk": Case(
        backup_bucket_stack(),
        replace("sse", "rules[0].applyServerSideEncryptionByDefault.sseAlgorithm", "AES256"),
        "not aws:kms with a customer-managed key"),
    "aws-sqs-queue-encrypted-cmk": Case(
        ("aws:sqs/queue:Queue", {"kmsMasterKeyId": KEY_ARN}),
        at("kmsMasterKeyId", "alias/aws/sqs"), "AWS-managed key"),
    "aws-sns-topic-encrypted-cmk": Case(
        ("aws:sns/topic:Topic", {"kmsMasterKeyId": KEY_ARN}),
        at("kmsMasterKeyId", None), "not encrypted with a customer-managed KMS key"),
    "aws-secretsmanager-secret-encrypted-cmk": Case(
        ("aws:secretsmanager/secret:Secret", {"kmsKeyId": KEY_ARN}),
        at("kmsKeyId", None), "kmsKeyId unset"),
    "aws-cloudwatch-loggroup-encrypted-cmk": Case(
        ("aws:cloudwatch/logGroup:LogGroup", {"kmsKeyId": KEY_ARN, "retentionInDays": 90.0}),
        at("kmsKeyId", None), "kmsKeyId unset"),
    "aws-s3-bucket-public-access-blocked": Case(
        (T_PAB, {"bucket": BUCKET, "blockPublicAcls": True, "blockPublicPolicy": True,
                 "ignorePublicAcls": True, "restrictPublicBuckets": True}),
        at("restrictPublicBuckets", False), "leaves restrictPublicBuckets off"),
    "aws-s3-bucket-acls-disabled": Case(
        (T_OWN, {"bucket": BUCKET, "rule": {"objectOwnership": "BucketOwnerEnforced"}}),
        at("rule.objectOwnership", "ObjectWriter"), "ACLs still apply"),
    "aws-s3-bucket-tls-only": Case(
        (T_POLICY, BUCKET_POLICY),
        in_json("policy", "Statement[0].Condition.Bool.aws:SecureTransport", "true"),
        "aws:SecureTransport is false"),
    "aws-s3-bucket-policy-not-public": Case(
        (T_POLICY, BUCKET_POLICY), in_json("policy", "Statement[1].Principal", "*"),
        "to everyone (Principal *)"),
    "aws-s3-bucket-versioning-enabled": Case(
        (T_VERSIONING, {"bucket": BUCKET, "versioningConfiguration": {"status": "Enabled"}}),
        at("versioningConfiguration.status", "Suspended"), "'Suspended', not Enabled"),
    "aws-s3-bucket-object-lock-compliance": Case(
        (T_LOCK, OBJECT_LOCK), at("rule.defaultRetention.mode", "GOVERNANCE"),
        "GOVERNANCE in production"),
    "aws-s3-bucket-lifecycle-gfs": Case(
        (T_LIFECYCLE, s3_lifecycle()), at("rules[1].expiration.days", 83.0),
        "database/production/weekly/ expires after 83 days"),
    "aws-s3-bucket-lifecycle-min-duration": Case(
        (T_LIFECYCLE, s3_lifecycle()), at("rules[2].transitions[1].days", 300.0),
        "keeps objects in GLACIER for 65 days"),
    "aws-s3-bucket-controls-complete": Case(
        backup_bucket_stack(), drop("pab"), "has no public access block"),
    "aws-cloudwatch-loggroup-retention-set": Case(
        ("aws:cloudwatch/logGroup:LogGroup", {"kmsKeyId": KEY_ARN, "retentionInDays": 90.0}),
        at("retentionInDays", 0), "keeps logs forever"),
    "aws-iam-policy-no-wildcards": Case(
        ("aws:iam/rolePolicy:RolePolicy", {"role": "writer", "policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Sid": "PutBackups", "Effect": "Allow", "Action": ["s3:PutObject"],
                "Resource": f"arn:aws:s3:::{BUCKET}/database/production/*"}]})}),
        in_json("policy", "Statement[0].Action[0]", "s3:*"), "wildcard action 's3:*'"),
    "aws-iam-policy-app-secrets-backup-only": Case(
        ("aws:iam/rolePolicy:RolePolicy", {
            "role": "vo2dr-production-backup-writer", "policy": json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Sid": "ReadAppSecrets", "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": [f"arn:aws:secretsmanager:us-east-1:111111111111:secret:"
                                 f"{APP_SECRET}-??????"]}]})}),
        at("role", "vo2dr-production-restore-reader"), "only the backup role",
        ctx=WITH_APPLICATION),
    "aws-iam-role-no-admin-policies": Case(
        ("aws:iam/role:Role", {"name": "writer", "managedPolicyArns": []}),
        at("managedPolicyArns", ["arn:aws:iam::aws:policy/AdministratorAccess"]),
        "AdministratorAccess"),
    "aws-lambda-function-no-plaintext-credentials": Case(
        ("aws:lambda/function:Function", {"environment": {"variables": {
            "VO2DR_DATABASE_URL_SECRET": "arn:aws:secretsmanager:us-east-1:1:secret:db",
            "VO2DR_ENVIRONMENT": "production"}}}),
        at("environment.variables.VO2DR_ENVIRONMENT", "postgresql://app:hunter2@db:5432/app"),
        "VO2DR_ENVIRONMENT holds a credential in clear"),
    "aws-scheduler-schedule-retry-dlq": Case(
        ("aws:scheduler/schedule:Schedule", dict(schedules()[0].props)),
        at("target.deadLetterConfig", None), "no dead-letter queue"),
    # GCP
    "gcp-kms-signing-key-one-signer": Case(
        ("gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
         {"role": "roles/cloudkms.signer",
          "members": ["serviceAccount:standby@p.iam.gserviceaccount.com"]}),
        at("members", ["serviceAccount:standby@p.iam.gserviceaccount.com",
                       "user:eve@example.com"]),
        "exactly one service account (the standby's) may sign"),
    "gcp-kms-cryptokey-rotation-90d": Case(
        ("gcp:kms/cryptoKey:CryptoKey", {"rotationPeriod": "7776000s"}),
        at("rotationPeriod", "31536000s"), "rotates every 365 days, more than 90"),
    "gcp-storage-bucket-cmek": Case(
        (T_GCS, gcs_bucket()), at("encryption.defaultKmsKeyName", None), "defaultKmsKeyName"),
    "gcp-storage-bucket-public-access-prevented": Case(
        (T_GCS, gcs_bucket()), at("publicAccessPrevention", "inherited"),
        "'inherited', not enforced"),
    "gcp-storage-bucket-versioning-soft-delete": Case(
        (T_GCS, gcs_bucket()), at("softDeletePolicy.retentionDurationSeconds", 0),
        "soft delete is off"),
    "gcp-iam-customrole-no-destructive-permissions": Case(
        ("gcp:projects/iAMCustomRole:IAMCustomRole",
         {"roleId": "vo2dr_production_gcs_creator",
          "permissions": ["storage.objects.create", "storage.objects.setRetention"]}),
        at("permissions[1]", "storage.objects.overrideUnlockedRetention"),
        "grants storage.objects.overrideUnlockedRetention"),
    "gcp-storage-bucket-retention-locked": Case(
        gcs_stack(), replace("backup-fn", "environment.variables.VO2DR_GCS_RETENTION_MODE",
                             "Unlocked"), "mode 'Unlocked' in production"),
    "gcp-storage-bucket-lifecycle-gfs": Case(
        (T_GCS, gcs_bucket()), at("lifecycleRules[0].condition.age", 14.0),
        "database/production/daily/ expires after 14 days"),
    "gcp-storage-bucket-lifecycle-min-duration": Case(
        (T_GCS, gcs_bucket()), at("lifecycleRules[8].condition.age", 2300.0),
        "keeps objects in ARCHIVE for 255 days"),
    "gcp-iam-binding-no-primitive-roles": Case(
        ("gcp:storage/bucketIAMMember:BucketIAMMember",
         {"bucket": "b", "role": "roles/storage.objectCreator",
          "member": "serviceAccount:writer@p.iam.gserviceaccount.com"}),
        at("role", "roles/editor"), "basic role roles/editor"),
    "gcp-storage-bucketiammember-no-destructive-roles": Case(
        ("gcp:storage/bucketIAMMember:BucketIAMMember",
         {"bucket": "vo2dr-production-backups", "role": "roles/storage.objectViewer",
          "member": "serviceAccount:reader@p.iam.gserviceaccount.com"}),
        at("role", "roles/storage.objectAdmin"),
        "grants roles/storage.objectAdmin on the backup bucket, which can delete or overwrite"),
    "gcp-iam-binding-no-public-members": Case(
        ("gcp:storage/bucketIAMMember:BucketIAMMember",
         {"bucket": "b", "role": "roles/storage.objectViewer",
          "member": "serviceAccount:reader@p.iam.gserviceaccount.com"}),
        at("member", "allUsers"), "to allUsers"),
    "gcp-serviceaccount-key-forbidden": Case(
        ("gcp:serviceaccount/account:Account", {"accountId": "vo2dr-writer"}),
        lambda good: ("gcp:serviceaccount/key:Key", {"serviceAccountId": "vo2dr-writer"}),
        "declares a service-account key"),
    "gcp-iam-workloadidentitypoolprovider-condition-set": Case(
        ("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
         {"aws": {"accountId": "111111111111"},
          "attributeCondition": "attribute.aws_role == 'arn:aws:sts::111111111111:"
                                "assumed-role/vo2dr-production-backup-writer'"}),
        at("attributeCondition", ""), "no attributeCondition"),
    "gcp-cloudrunv2-job-no-plaintext-credentials": Case(
        ("gcp:cloudrunv2/job:Job", CLOUD_RUN_JOB),
        at("template.template.containers[0].envs[1].value", "postgresql://a:pw@db/app"),
        "variable VO2DR_ENVIRONMENT holds a credential in clear"),
    # Azure
    "azure-keyvault-key-rotation-enabled": Case(
        ("azure-native:keyvault:Key", {"properties": {"kty": "RSA", "rotationPolicy": {
            "attributes": {"expiryTime": "P2Y"},
            "lifetimeActions": [{"action": {"type": "rotate"},
                                 "trigger": {"timeAfterCreate": "P90D"}}]}}}),
        at("properties.rotationPolicy.lifetimeActions[0].action.type", "notify"),
        "no rotation policy with a rotate action"),
    "azure-keyvault-vault-purge-protection": Case(
        ("azure-native:keyvault:Vault", {"properties": {"enablePurgeProtection": True,
                                                        "enableSoftDelete": True}}),
        at("properties.enablePurgeProtection", False), "purge protection off"),
    "azure-storage-account-cmk": Case(
        (T_ACCOUNT, STORAGE_ACCOUNT), at("encryption.keySource", "Microsoft.Storage"),
        "Microsoft-managed key"),
    "azure-storage-account-tls-only": Case(
        (T_ACCOUNT, STORAGE_ACCOUNT), at("minimumTlsVersion", "TLS1_0"),
        "'TLS1_0', not TLS1_2 or later"),
    "azure-storage-account-public-access-disabled": Case(
        (T_ACCOUNT, STORAGE_ACCOUNT), at("allowBlobPublicAccess", True),
        "allows public blob access"),
    "azure-storage-account-shared-key-disabled": Case(
        (T_ACCOUNT, STORAGE_ACCOUNT), at("allowSharedKeyAccess", True),
        "allows shared-key access"),
    "azure-storage-blobservice-versioning-soft-delete": Case(
        (f"{AZ}BlobServiceProperties", BLOB_SERVICE), at("deleteRetentionPolicy.enabled", False),
        "deleteRetentionPolicy is off"),
    "azure-storage-container-immutability-set": Case(
        (f"{AZ}BlobContainerImmutabilityPolicy", IMMUTABILITY),
        at("allowProtectedAppendWrites", True), "allows appends to protected blobs"),
    "azure-storage-account-delete-lock-production": Case(
        azure_stack(), replace("delete-lock", "level", "ReadOnly"),
        "has no CanNotDelete management lock"),
    "azure-storage-container-immutability-locked": Case(
        azure_stack(), drop("immutability-lock"),
        "is Unlocked in production and nothing locks it"),
    "azure-storage-managementpolicy-lifecycle-gfs": Case(
        (f"{AZ}ManagementPolicy", management_policy()),
        at("policy.rules[3].definition.actions.baseBlob.delete.daysAfterCreationGreaterThan",
           3000.0), "database/production/yearly/ expires after 3000 days"),
    "azure-storage-managementpolicy-min-duration": Case(
        (f"{AZ}ManagementPolicy", management_policy()),
        at("policy.rules[3].definition.actions.baseBlob.tierToArchive."
           "daysAfterCreationGreaterThan", 2500.0),
        "keeps objects in Archive for 55 days"),
    "azure-storage-account-controls-complete": Case(
        azure_stack(), drop("lifecycle"), "has no lifecycle management policy"),
    "azure-authorization-roleassignment-no-privileged-roles": Case(
        ("azure-native:authorization:RoleAssignment", {
            "roleDefinitionId": "/subscriptions/s/providers/Microsoft.Authorization/"
                                "roleDefinitions/0f1e2d3c-0000-4000-8000-00000000abcd",
            "scope": f"{ACCOUNT_ID}/blobServices/default/containers/backups",
            "principalType": "ServicePrincipal"}),
        at("roleDefinitionId", "/subscriptions/s/providers/Microsoft.Authorization/"
                               "roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"),
        "privileged built-in role Contributor"),
    "azure-authorization-roledefinition-no-wildcards": Case(
        ("azure-native:authorization:RoleDefinition", {"permissions": [{
            "actions": [], "dataActions": [
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"]}]}),
        at("permissions[0].dataActions[0]", "Microsoft.Storage/*"),
        "wildcard 'Microsoft.Storage/*'"),
    "azure-authorization-roleassignment-no-delete-on-stores": Case(
        azure_grants_stack(),
        replace("writer-role", "permissions[0].dataActions[2]", f"{BLOB}/delete"),
        f"writer-grant assigns a role that allows {BLOB}/delete on backup store container"),
    # Stack-wide
    "aws-s3-bucket-grants-no-delete": Case(
        aws_grants_stack(),
        replace("writer-policy", "policy", WRITER_POLICY.replace('"s3:GetObject"',
                                                                   '"s3:DeleteObject"')),
        "writer-policy statement ReadBackups allows s3:DeleteObject on backup bucket "
        f"arn:aws:s3:::{BUCKET}"),
    "multicloud-storage-lifecycle-retention-floor": Case(
        (T_LIFECYCLE, s3_lifecycle()), at("rules[1].expiration.days", 56.0),
        "below the 84-day retention floor"),
    "aws-scheduler-schedule-rpo-met": Case(
        schedules(), replace("schedules-backup-critical", "scheduleExpression",
                             "rate(30 minutes)"),
        "critical must be backed up at least every 15 min"),
    "aws-scheduler-schedule-status-check-present": Case(
        schedules(), replace("schedules-status", "scheduleExpression", "rate(1 hour)"),
        "less often than monitoring.statusEveryMinutes (15)"),
    "aws-scheduler-schedule-drill-monthly": Case(
        schedules(), replace("schedules-drill", "scheduleExpression", "cron(0 9 ? * MON *)"),
        "which is not once a month"),
    "multicloud-storage-backups-min-two-clouds": Case(
        two_cloud_stores(), drop("gcs-backups"), "needs copies in at least 2 clouds"),
    # The intraday tier
    "multicloud-storage-intraday-lifecycle-expiry": Case(
        (T_LIFECYCLE, intraday_lifecycle()), at("rules[0].expiration.days", 30.0),
        "expires after 30 days, but the stack keeps intraday backups 3"),
    "multicloud-storage-intraday-lock-window": Case(
        intraday_stack(), replace("backup-fn", "environment.variables.VO2DR_STRATEGY",
                                  JOB_STRATEGY.replace("72", "720")),
        "locks intraday objects 720 h, but they expire after 3 days"),
    "multicloud-iam-no-lock-shortening": Case(
        ("aws:iam/rolePolicy:RolePolicy", INTRADAY_WRITER_POLICY),
        in_json("policy", "Statement[0].Action[0]", "s3:BypassGovernanceRetention"),
        "allows s3:BypassGovernanceRetention, which can shorten or lift a lock"),
}


# ---- the report records (issue 18) ---------------------------------------------------------

def _report_cases() -> dict[str, Case]:
    from tests.policy import report_cases as R

    return {
        "multicloud-storage-reports-retention": Case(
            (T_LIFECYCLE, R.s3_lifecycle_with_reports(s3_lifecycle())),
            at("rules[0].expiration.days", 365.0),
            "expires report records after 365 days, before the yearly tier's 2555"),
        "aws-iam-policy-backups-write-once": Case(
            R.drill_stack(res), replace("drill-policy", "policy",
                                        R.drill_role_policy({})["policy"]),
            "without requiring If-None-Match"),
        "multicloud-iam-report-grants-scoped": Case(
            ("gcp:storage/bucketIAMMember:BucketIAMMember", R.gcs_drill_grant()),
            lambda props: R.gcs_drill_grant("reports/production/"),
            "does not open exactly one kind"),
    }


CASES.update(_report_cases())

# The snapshot rules' cases live beside their fixtures (issue 17).
from tests.policy.snapshot_cases import SNAPSHOT_CASES  # noqa: E402

CASES.update(SNAPSHOT_CASES)

# The signing keys' rule: the manifest key and the drill record key (signing_cases).
from tests.policy import signing_cases as SC  # noqa: E402

CASES["aws-kms-signing-key-one-signer"] = Case(
    SC.signing_stack(), SC.with_props("record-signer", policy=SC.sign_policy({})),
    "without pinning it to one function")
