"""The rule table: every CrossGuard rule of the pack in one readable list, with its metadata
for auditors (severity, NIST SP 800-53 and CIS mappings, remediation, a documentation link),
the resource types it reads and its check. The checks live per cloud and service
(``policy/aws``, ``policy/gcp``, ``policy/azure``) and across clouds (``policy/multicloud``).

A rule is named ``<cloud>-<service>-<resource>-<check>``. Its check is either

- a *resource* check ``check(resource_type, props, ctx) -> list[str]`` that sees one resource's
  inputs (the engine's camelCase wire names, e.g. ``enableKeyRotation``); a rule with
  ``config`` properties also gets them, as ``options=``; or
- a *stack* check ``check(resources, ctx) -> list[Finding]`` that sees every resource.

``ctx`` is the stack's :class:`~policy.expectations.Expectations`.
Enforcement: mandatory in production, advisory in staging (:func:`enforcement_for`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
)

from policy.aws.iam import (
    check_aws_app_secrets_backup_only,
    check_aws_iam_no_admin_policies,
    check_aws_iam_no_wildcards,
)
from policy.aws.kms import (
    _cmk_check,
    check_aws_kms_key_rotation,
    check_aws_signing_keys_one_signer,
)
from policy.aws.runtime import (
    check_lambda_no_credentials,
    check_log_group_cmk,
    check_log_group_retention,
    check_scheduler_retry_dlq,
)
from policy.aws.s3 import (
    _S3_BACKUP_SETTINGS,
    _S3_SETTINGS,
    AWS_POLICY_HOLDERS,
    check_aws_backup_grants,
    check_aws_s3_acls_disabled,
    check_aws_s3_controls_complete,
    check_aws_s3_object_lock,
    check_aws_s3_policy_not_public,
    check_aws_s3_public_access_block,
    check_aws_s3_sse,
    check_aws_s3_tls_only,
    check_aws_s3_versioning,
)
from policy.azure.authorization import (
    check_azure_backup_grants,
    check_azure_role_assignment,
    check_azure_role_definition,
)
from policy.azure.keyvault import check_azure_key_rotation, check_azure_vault_recoverable
from policy.azure.storage import (
    AZURE_IMMUTABILITY_LOCK_TYPE,
    check_azure_blob_soft_delete,
    check_azure_delete_lock,
    check_azure_immutability,
    check_azure_immutability_locked,
    check_azure_storage_cmk,
    check_azure_storage_controls_complete,
    check_azure_storage_public,
    check_azure_storage_shared_key,
    check_azure_storage_tls,
)
from policy.gcp.cloudrun import check_cloudrun_no_credentials
from policy.gcp.iam import (
    GCP_PROJECT_IAM_TYPES,
    GCS_BUCKET_IAM_TYPES,
    check_gcp_custom_role,
    check_gcp_iam_no_primitive_roles,
    check_gcp_iam_no_public_members,
    check_gcp_no_sa_keys,
    check_gcp_wif_condition,
    check_gcs_grants_no_destructive_roles,
)
from policy.gcp.kms import check_gcp_kms_rotation, check_gcp_kms_signing_key
from policy.gcp.storage import (
    check_gcs_cmek,
    check_gcs_public_access,
    check_gcs_retention_locked,
    check_gcs_versioning_soft_delete,
)
from policy.multicloud.intraday import (
    check_intraday_expiry,
    check_intraday_lock,
    check_no_lock_shortening,
)
from policy.multicloud.lifecycle import (
    check_lifecycle_gfs,
    check_lifecycle_min_duration,
    check_retention_floor,
)
from policy.multicloud.reports import (
    check_aws_report_puts_write_once,
    check_report_grants_scoped,
    check_reports_retention,
)
from policy.multicloud.schedules import (
    check_schedule_drill,
    check_schedule_rpo,
    check_schedule_status,
)
from policy.multicloud.snapshots import (
    check_content_no_expiry,
    check_delete_content_only,
    check_origins_read_only,
)
from policy.multicloud.stores import STORE_TYPES, check_two_clouds
from policy.resources import AZ, S3

LIFECYCLE_TYPES = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                   "gcp:storage/bucket:Bucket", f"{AZ}ManagementPolicy")
GCP_IAM_TYPES = tuple(
    f"gcp:{t}" for t in (
        "projects/iAMMember:IAMMember", "projects/iAMBinding:IAMBinding",
        "storage/bucketIAMMember:BucketIAMMember", "storage/bucketIAMBinding:BucketIAMBinding",
        "kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
        "kms/keyRingIAMMember:KeyRingIAMMember", "kms/keyRingIAMBinding:KeyRingIAMBinding",
        "serviceaccount/iAMMember:IAMMember", "serviceaccount/iAMBinding:IAMBinding",
        "secretmanager/secretIamMember:SecretIamMember",
        "secretmanager/secretIamBinding:SecretIamBinding",
        "cloudrunv2/jobIamMember:JobIamMember", "cloudrunv2/jobIamBinding:JobIamBinding",
        "artifactregistry/repositoryIamMember:RepositoryIamMember",
        "artifactregistry/repositoryIamBinding:RepositoryIamBinding",
    ))


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    severity: str  # low, medium, high, critical
    nist: tuple[str, ...]
    cis: tuple[str, ...]
    remediation: str
    url: str
    types: tuple[str, ...]  # resource types it checks (stack rules: the types it reads)
    check: Callable[..., Any]
    scope: str = "resource"  # or "stack"
    needs_expectations: bool = False
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # A fixed enforcement level, for a rule that cannot be mandatory before a deploy; None
    # follows the stack (mandatory in production, advisory in staging).
    enforcement: str | None = None

    def enforcement_for(self, environment: str | None) -> EnforcementLevel:
        if self.enforcement is not None:
            return EnforcementLevel(self.enforcement)
        return enforcement_for(environment)

    @property
    def cloud(self) -> str:
        return self.name.split("-", 1)[0]


def _r(name: str, description: str, severity: str, nist: Sequence[str], cis: Sequence[str],
       remediation: str, url: str, types: Sequence[str], check: Callable[..., Any], *,
       scope: str = "resource", needs: bool = False,
       config: Mapping[str, Mapping[str, Any]] | None = None,
       enforcement: str | None = None) -> Rule:
    return Rule(name, description, severity, tuple(nist), tuple(cis), remediation, url,
                tuple(types), check, scope, needs, config or {}, enforcement)


AWS_DOCS = "https://docs.aws.amazon.com"
GCP_DOCS = "https://cloud.google.com"
AZ_DOCS = "https://learn.microsoft.com/en-us/azure"

RULES: tuple[Rule, ...] = (
    # --- AWS: keys and encryption
    _r("aws-kms-key-rotation-enabled",
       "KMS customer-managed keys are symmetric and rotate automatically at least yearly.",
       "high", ["SC-12", "SC-28"],
       ["CIS AWS Foundations 3.0.0 3.6", "CIS Controls v8 3.11"],
       "Set enable_key_rotation=True (and key_spec SYMMETRIC_DEFAULT) on the aws.kms.Key; "
       "rotation keeps old key material so existing backups stay readable.",
       f"{AWS_DOCS}/kms/latest/developerguide/rotate-keys.html",
       ["aws:kms/key:Key"], check_aws_kms_key_rotation),
    _r("aws-s3-bucket-sse-kms-cmk",
       "Backup buckets encrypt by default with SSE-KMS under the customer-managed key, with "
       "S3 Bucket Keys; only a server-access-log target may use SSE-S3.",
       "high", ["SC-28", "SC-12", "SC-13"], ["CIS Controls v8 3.11"],
       "Give the bucket an aws.s3.BucketServerSideEncryptionConfiguration rule with "
       "sse_algorithm='aws:kms', kms_master_key_id=<the backup key ARN> and "
       "bucket_key_enabled=True.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/UsingKMSEncryption.html",
       [f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{S3}bucketLogging:BucketLogging"], check_aws_s3_sse, scope="stack"),
    _r("aws-sqs-queue-encrypted-cmk",
       "SQS dead-letter queues are encrypted with the customer-managed KMS key.",
       "medium", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set kms_master_key_id=<backup key ARN> on the aws.sqs.Queue (not alias/aws/sqs).",
       f"{AWS_DOCS}/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html",
       ["aws:sqs/queue:Queue"], _cmk_check("kmsMasterKeyId", "alias/aws/sqs", "queue")),
    _r("aws-sns-topic-encrypted-cmk",
       "The alert SNS topic is encrypted with the customer-managed KMS key.",
       "medium", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set kms_master_key_id=<backup key ARN> on the aws.sns.Topic (not alias/aws/sns).",
       f"{AWS_DOCS}/sns/latest/dg/sns-server-side-encryption.html",
       ["aws:sns/topic:Topic"], _cmk_check("kmsMasterKeyId", "alias/aws/sns", "topic")),
    _r("aws-secretsmanager-secret-encrypted-cmk",
       "Secrets (the database URL) are encrypted with the customer-managed KMS key.",
       "medium", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set kms_key_id=<backup key ARN> on the aws.secretsmanager.Secret.",
       f"{AWS_DOCS}/secretsmanager/latest/userguide/security-encryption.html",
       ["aws:secretsmanager/secret:Secret"],
       _cmk_check("kmsKeyId", "alias/aws/secretsmanager", "secret")),
    _r("aws-cloudwatch-loggroup-encrypted-cmk",
       "The job's CloudWatch log groups are encrypted with the customer-managed KMS key.",
       "low", ["SC-28", "AU-9"], ["CIS Controls v8 3.11"],
       "Set kms_key_id=<backup key ARN> on the aws.cloudwatch.LogGroup; the key policy must "
       "allow logs.<region>.amazonaws.com.",
       f"{AWS_DOCS}/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
       ["aws:cloudwatch/logGroup:LogGroup"], check_log_group_cmk),
    # --- AWS: public access and transport
    _r("aws-s3-bucket-public-access-blocked",
       "Every bucket blocks public ACLs and policies with all four public-access-block "
       "settings.",
       "critical", ["AC-3", "AC-6", "SC-7"],
       ["CIS AWS Foundations 3.0.0 2.1.4", "CIS Controls v8 3.3"],
       "Declare aws.s3.BucketPublicAccessBlock with block_public_acls, block_public_policy, "
       "ignore_public_acls and restrict_public_buckets all True.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/access-control-block-public-access.html",
       [f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock"],
       check_aws_s3_public_access_block),
    _r("aws-s3-bucket-acls-disabled",
       "Buckets enforce bucket-owner ownership, so ACLs are disabled and policy alone "
       "decides access.",
       "medium", ["AC-3", "AC-6"], ["CIS Controls v8 3.3"],
       "Declare aws.s3.BucketOwnershipControls with object_ownership='BucketOwnerEnforced'.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/about-object-ownership.html",
       [f"{S3}bucketOwnershipControls:BucketOwnershipControls"], check_aws_s3_acls_disabled),
    _r("aws-s3-bucket-tls-only",
       "Bucket policies deny every request that is not made over TLS.",
       "high", ["SC-8", "SC-13"],
       ["CIS AWS Foundations 3.0.0 2.1.1", "CIS Controls v8 3.10"],
       "Add a Deny statement for Principal '*', Action 's3:*' on the bucket and its objects "
       "with Condition Bool aws:SecureTransport = 'false'.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/security-best-practices.html",
       [f"{S3}bucketPolicy:BucketPolicy"], check_aws_s3_tls_only),
    _r("aws-s3-bucket-policy-not-public",
       "No bucket policy allows anonymous (Principal '*') access without a condition.",
       "critical", ["AC-3", "AC-6"], ["CIS AWS Foundations 3.0.0 2.1.4", "CIS Controls v8 3.3"],
       "Name the exact principals (role ARNs, service principals with aws:SourceAccount) in "
       "Allow statements.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/access-control-block-public-access.html",
       [f"{S3}bucketPolicy:BucketPolicy"], check_aws_s3_policy_not_public),
    # --- AWS: recoverability and retention
    _r("aws-s3-bucket-versioning-enabled",
       "Buckets keep every version, so an overwrite or delete can be undone.",
       "high", ["CP-9", "CP-10"], ["CIS Controls v8 11.3"],
       "Declare aws.s3.BucketVersioning with versioning_configuration.status='Enabled'.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/Versioning.html",
       [f"{S3}bucketVersioning:BucketVersioning"], check_aws_s3_versioning),
    _r("aws-s3-bucket-object-lock-compliance",
       "New backups are locked for immutability.lockDays; COMPLIANCE mode (no one can "
       "shorten it) in production, GOVERNANCE allowed in staging.",
       "critical", ["CP-9", "SI-12", "SC-28"], ["CIS Controls v8 11.3"],
       "Declare aws.s3.BucketObjectLockConfiguration with default_retention mode COMPLIANCE "
       "in production and days = vo2max-dr:immutability.lockDays.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock.html",
       [f"{S3}bucketObjectLockConfiguration:BucketObjectLockConfiguration"],
       check_aws_s3_object_lock, needs=True),
    _r("aws-s3-bucket-lifecycle-gfs",
       "The backup bucket's lifecycle has one rule per GFS tier prefix whose expiry and "
       "transitions equal the stack's retention and tiering.",
       "high", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4"],
       "Build the lifecycle from cfg.lifecycle (infra/config.py lifecycle_plan); never edit "
       "days in code. Change vo2max-dr:retention / vo2max-dr:tiering instead.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lifecycle-mgmt.html",
       [LIFECYCLE_TYPES[0]], check_lifecycle_gfs, needs=True),
    _r("aws-s3-bucket-lifecycle-min-duration",
       "No lifecycle rule moves or deletes an object before its storage class's minimum "
       "duration, or before its lock ends.",
       "medium", ["SI-12", "CP-9"], ["CIS Controls v8 3.4"],
       "Drop a transition whose class the object would leave (or expire from) before the "
       "class minimum (STANDARD_IA 30, GLACIER 90, DEEP_ARCHIVE 180 days).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html",
       [LIFECYCLE_TYPES[0]], check_lifecycle_min_duration),
    _r("aws-s3-bucket-controls-complete",
       "Every bucket has versioning, default encryption, a public access block, ownership "
       "controls, a TLS-only policy and a lifecycle; the backup bucket also has object lock "
       "(enabled at creation) and access logging.",
       "high", ["CP-9", "SC-28", "AC-3", "AU-11"], ["CIS AWS Foundations 3.0.0 2.1.4",
                                                     "CIS Controls v8 11.3"],
       "Declare the missing aws.s3.Bucket* resource for the bucket (see infra/aws/storage.py).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/security-best-practices.html",
       [f"{S3}bucket:Bucket", *_S3_SETTINGS.values(), *_S3_BACKUP_SETTINGS.values()],
       check_aws_s3_controls_complete, scope="stack"),
    _r("aws-cloudwatch-loggroup-retention-set",
       "Log groups keep the job's logs exactly monitoring.logRetentionDays, never forever.",
       "medium", ["AU-11", "SI-12"], ["CIS Controls v8 8.10"],
       "Set retention_in_days=cfg.monitoring.log_retention_days on the aws.cloudwatch.LogGroup.",
       f"{AWS_DOCS}/AmazonCloudWatch/latest/logs/Working-with-log-groups-and-streams.html",
       ["aws:cloudwatch/logGroup:LogGroup"], check_log_group_retention, needs=True),
    # --- AWS: identity
    _r("aws-iam-policy-no-wildcards",
       "IAM policies grant no wildcard action ('*' or 'service:*'), no Resource '*' (except "
       "for actions AWS cannot scope), no NotAction/NotResource, and no role trusts anyone.",
       "high", ["AC-6", "AC-3"], ["CIS AWS Foundations 3.0.0 1.16", "CIS Controls v8 6.8"],
       "List the exact actions and the bucket prefix / key ARN; KMS key policies (where "
       "'*' means this key) are not IAM policies and are not checked here.",
       f"{AWS_DOCS}/IAM/latest/UserGuide/best-practices.html#grant-least-privilege",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role"],
       check_aws_iam_no_wildcards),
    _r("aws-iam-policy-app-secrets-backup-only",
       "Only the backup role may read the application's secrets (the config source's "
       "vo2max-dr:application.config.secretNames, parameterNames and parameterPaths); no "
       "other role or managed policy, and no GetParametersByPath on a path above them.",
       "high", ["AC-6", "SC-28"], ["CIS Controls v8 3.3", "CIS Controls v8 6.8"],
       "Grant secretsmanager:GetSecretValue and ssm:GetParameters/GetParametersByPath on the "
       "app's secrets and parameters in the backup function's runtime policy only "
       "(infra/runtime.py app_secret_grants, app_parameter_grants).",
       f"{AWS_DOCS}/secretsmanager/latest/userguide/auth-and-access.html",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"],
       check_aws_app_secrets_backup_only, needs=True),
    _r("aws-iam-role-no-admin-policies",
       "No role gets an administrator-class AWS-managed policy.",
       "high", ["AC-6"], ["CIS AWS Foundations 3.0.0 1.16", "CIS Controls v8 5.4"],
       "Replace the managed policy with an inline aws.iam.RolePolicy listing what the job "
       "needs.",
       f"{AWS_DOCS}/IAM/latest/UserGuide/access_policies_job-functions.html",
       ["aws:iam/role:Role", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"],
       check_aws_iam_no_admin_policies),
    _r("aws-lambda-function-no-plaintext-credentials",
       "Function environments hold no credential, password, account key or connection "
       "secret in clear: only references to Secrets Manager.",
       "high", ["IA-5", "SC-28", "AC-6"], ["CIS Controls v8 3.11", "CIS Controls v8 16.1"],
       "Store the value in aws.secretsmanager.Secret and pass its ARN "
       "(VO2DR_DATABASE_URL_SECRET); the job reads it at run time.",
       f"{AWS_DOCS}/lambda/latest/dg/configuration-envvars.html",
       ["aws:lambda/function:Function"], check_lambda_no_credentials),
    _r("aws-scheduler-schedule-retry-dlq",
       "Every schedule retries a failed invocation and sends what it cannot deliver to a "
       "dead-letter queue.",
       "medium", ["CP-9", "CP-10", "SI-4"], ["CIS Controls v8 11.2"],
       "Set target.retry_policy and target.dead_letter_config.arn on the "
       "aws.scheduler.Schedule.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/configuring-schedule-dlq.html",
       ["aws:scheduler/schedule:Schedule"], check_scheduler_retry_dlq),
    _r("aws-kms-signing-key-one-signer",
       "Each signing key is an ECC_NIST_P256 SIGN_VERIFY key with one signer: the manifest key "
       "the backup writer role alone; the drill record key the drill function alone (its "
       "role's IAM policy pinned with lambda:SourceFunctionArn, so operators who assume the "
       "role cannot sign). No account root, wildcard or grant; the record key never signs "
       "manifests, the drill never holds the manifest key.",
       "high", ["SC-12", "SC-13", "SI-7", "AC-6"], ["CIS Controls v8 3.11"],
       "In the manifest aws.kms.Key's policy, allow kms:Sign to the backup writer role alone. "
       "In the record key's policy, allow kms:Sign to the account only with ArnEquals "
       "aws:PrincipalArn <drill role>, and grant it in that role's policy only with ArnEquals "
       "lambda:SourceFunctionArn <drill function ARN>. Give the account administration "
       "without kms:Sign or kms:CreateGrant; use customer_master_key_spec='ECC_NIST_P256'; "
       "pass the record key as VO2DR_RECORD_SIGNING_KEY to the drill only.",
       f"{AWS_DOCS}/lambda/latest/dg/permissions-source-function-arn.html",
       ["aws:kms/key:Key", "aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/role:Role", "aws:lambda/function:Function"],
       check_aws_signing_keys_one_signer, scope="stack"),
    # --- GCP
    _r("gcp-kms-signing-key-one-signer",
       "The standby's manifest signing key is EC_SIGN_P256_SHA256, and its signer role is held "
       "by the standby's service account alone, through an authoritative binding.",
       "high", ["SC-12", "SC-13", "SI-7"], ["CIS GCP Foundations 3.0.0 1.11"],
       "Create the gcp.kms.CryptoKey with purpose ASYMMETRIC_SIGN and algorithm "
       "EC_SIGN_P256_SHA256, and grant roles/cloudkms.signer with one "
       "gcp.kms.CryptoKeyIAMBinding whose members are the standby's service account only.",
       f"{GCP_DOCS}/kms/docs/create-validate-signatures",
       ["gcp:kms/cryptoKey:CryptoKey", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
        "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding"], check_gcp_kms_signing_key),
    _r("gcp-kms-cryptokey-rotation-90d",
       "Cloud KMS keys rotate every 90 days or less.",
       "high", ["SC-12", "SC-28"], ["CIS GCP Foundations 3.0.0 1.10", "CIS Controls v8 3.11"],
       "Set rotation_period='7776000s' (90 days) or shorter on the gcp.kms.CryptoKey.",
       f"{GCP_DOCS}/kms/docs/key-rotation",
       ["gcp:kms/cryptoKey:CryptoKey"], check_gcp_kms_rotation),
    _r("gcp-storage-bucket-cmek",
       "GCS backup buckets encrypt by default with the Cloud KMS key (CMEK).",
       "high", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set encryption.default_kms_key_name to the crypto key and grant the GCS service agent "
       "roles/cloudkms.cryptoKeyEncrypterDecrypter on that key only.",
       f"{GCP_DOCS}/storage/docs/encryption/customer-managed-keys",
       ["gcp:storage/bucket:Bucket"], check_gcs_cmek),
    _r("gcp-storage-bucket-public-access-prevented",
       "GCS buckets enforce public access prevention and uniform bucket-level access.",
       "critical", ["AC-3", "AC-6"], ["CIS GCP Foundations 3.0.0 5.1",
                                      "CIS GCP Foundations 3.0.0 5.2"],
       "Set public_access_prevention='enforced' and uniform_bucket_level_access=True.",
       f"{GCP_DOCS}/storage/docs/public-access-prevention",
       ["gcp:storage/bucket:Bucket"], check_gcs_public_access),
    _r("gcp-storage-bucket-versioning-soft-delete",
       "GCS buckets keep versions and soft-delete for at least immutability.softDeleteDays.",
       "high", ["CP-9", "CP-10"], ["CIS Controls v8 11.3"],
       "Set versioning.enabled=True and soft_delete_policy.retention_duration_seconds = "
       "softDeleteDays * 86400.",
       f"{GCP_DOCS}/storage/docs/soft-delete",
       ["gcp:storage/bucket:Bucket"], check_gcs_versioning_soft_delete, needs=True),
    _r("gcp-storage-bucket-retention-locked",
       "Every GCS backup object is retained for at least immutability.lockDays, Locked in "
       "production: with Object Retention Lock (which, unlike a bucket retention policy, "
       "allows versioning) the bucket enables it and every job configured with the bucket "
       "sets VO2DR_GCS_RETENTION_DAYS and VO2DR_GCS_RETENTION_MODE; with a bucket retention "
       "policy, the policy covers lockDays and is locked in production.",
       "critical", ["CP-9", "SI-12"], ["CIS GCP Foundations 3.0.0 2.3", "CIS Controls v8 11.3"],
       "Set enable_object_retention=True on the bucket and add "
       "cfg.immutability.gcs_retention_env() to every job's settings (infra/runtime.py), or "
       "declare retention_policy with retention_period = lockDays * 86400 and, in production, "
       "is_locked=True.",
       f"{GCP_DOCS}/storage/docs/object-lock",
       ["gcp:storage/bucket:Bucket", "aws:lambda/function:Function", "gcp:cloudrunv2/job:Job"],
       check_gcs_retention_locked, scope="stack", needs=True),
    _r("gcp-storage-bucket-lifecycle-gfs",
       "The GCS bucket's lifecycle deletes and re-classes each GFS tier prefix on the "
       "stack's retention and tiering days.",
       "high", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4"],
       "Build lifecycle_rules from cfg.lifecycle; change vo2max-dr:retention / tiering, not "
       "code.",
       f"{GCP_DOCS}/storage/docs/lifecycle",
       [LIFECYCLE_TYPES[1]], check_lifecycle_gfs, needs=True),
    _r("gcp-storage-bucket-lifecycle-min-duration",
       "No GCS lifecycle rule moves or deletes an object before its class minimum (NEARLINE "
       "30, COLDLINE 90, ARCHIVE 365 days) or its lock.",
       "medium", ["SI-12", "CP-9"], ["CIS Controls v8 3.4"],
       "Drop the SetStorageClass action whose class the object would leave too early.",
       f"{GCP_DOCS}/storage/docs/storage-classes",
       [LIFECYCLE_TYPES[1]], check_lifecycle_min_duration),
    _r("gcp-iam-binding-no-primitive-roles",
       "No GCP grant uses the basic owner, editor or viewer roles, or a project-wide admin "
       "role.",
       "high", ["AC-6", "AC-3"], ["CIS GCP Foundations 3.0.0 1.5", "CIS Controls v8 5.4"],
       "Grant a predefined or custom role on the bucket, key or secret itself (e.g. "
       "roles/storage.objectCreator on the bucket).",
       f"{GCP_DOCS}/iam/docs/understanding-roles#basic",
       GCP_IAM_TYPES, check_gcp_iam_no_primitive_roles),
    _r("gcp-iam-customrole-no-destructive-permissions",
       "No GCP custom role can delete or overwrite objects, shorten a retention, or change a "
       "bucket or its IAM policy.",
       "high", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Keep custom roles to what the job does: storage.objects.create and "
       "storage.objects.setRetention (infra/gcp/access.py CREATOR_PERMISSIONS).",
       f"{GCP_DOCS}/iam/docs/creating-custom-roles",
       ["gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:organizations/iAMCustomRole:IAMCustomRole"], check_gcp_custom_role),
    _r("gcp-storage-bucketiammember-no-destructive-roles",
       "No grant on the GCS backup bucket (or project-wide) can delete or overwrite backups: "
       "no storage.admin, objectAdmin, objectUser, legacyBucketOwner/Writer, "
       "legacyObjectOwner or basic role; on the bucket only viewer/creator roles.",
       "critical", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Grant roles/storage.objectViewer to readers and the creator custom role "
       "(storage.objects.create + setRetention, infra/gcp/access.py) to writers.",
       f"{GCP_DOCS}/storage/docs/access-control/iam-roles",
       (*GCS_BUCKET_IAM_TYPES, *GCP_PROJECT_IAM_TYPES), check_gcs_grants_no_destructive_roles),
    _r("gcp-iam-binding-no-public-members",
       "No GCP grant names allUsers or allAuthenticatedUsers.",
       "critical", ["AC-3"], ["CIS GCP Foundations 3.0.0 5.1", "CIS Controls v8 3.3"],
       "Name the service account (serviceAccount:...) that needs the role.",
       f"{GCP_DOCS}/storage/docs/access-control/making-data-public",
       GCP_IAM_TYPES, check_gcp_iam_no_public_members),
    _r("gcp-serviceaccount-key-forbidden",
       "No service-account key or HMAC key is declared: the job authenticates with workload "
       "identity federation only.",
       "critical", ["IA-5", "AC-6"], ["CIS GCP Foundations 3.0.0 1.4", "CIS Controls v8 5.2"],
       "Remove the gcp.serviceaccount.Key / gcp.storage.HmacKey; let the AWS role impersonate "
       "the service account through the workload identity pool.",
       f"{GCP_DOCS}/iam/docs/workload-identity-federation",
       ["gcp:serviceaccount/key:Key", "gcp:storage/hmacKey:HmacKey"], check_gcp_no_sa_keys),
    _r("gcp-iam-workloadidentitypoolprovider-condition-set",
       "The workload identity provider admits only the named AWS roles (attributeCondition).",
       "high", ["AC-3", "AC-6", "IA-5"], ["CIS Controls v8 6.8"],
       "Set attribute_condition to match the job roles' session ARNs "
       "(attribute.aws_role in ['arn:aws:sts::<account>:assumed-role/<role>', ...]).",
       f"{GCP_DOCS}/iam/docs/workload-identity-federation-with-other-clouds",
       ["gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"],
       check_gcp_wif_condition),
    _r("gcp-cloudrunv2-job-no-plaintext-credentials",
       "The Cloud Run standby job runs as its own service account and reads secrets from "
       "Secret Manager, never from plain environment values.",
       "high", ["IA-5", "SC-28", "AC-6"], ["CIS Controls v8 3.11", "CIS Controls v8 16.1"],
       "Use envs[].value_source.secret_key_ref and set template.template.service_account.",
       f"{GCP_DOCS}/run/docs/configuring/jobs/secrets",
       ["gcp:cloudrunv2/job:Job"], check_cloudrun_no_credentials),
    # --- Azure
    _r("azure-keyvault-key-rotation-enabled",
       "Key Vault keys have a rotation policy that rotates them within a year.",
       "high", ["SC-12", "SC-28"], ["CIS Azure Foundations 2.1.0 8.8", "CIS Controls v8 3.11"],
       "Set properties.rotation_policy.lifetime_actions with action type 'rotate' and "
       "trigger.time_after_create (e.g. 'P90D').",
       f"{AZ_DOCS}/key-vault/keys/how-to-configure-key-rotation",
       ["azure-native:keyvault:Key"], check_azure_key_rotation),
    _r("azure-keyvault-vault-purge-protection",
       "The Key Vault holding the storage key has purge protection and soft delete.",
       "high", ["CP-9", "SC-12"], ["CIS Azure Foundations 2.1.0 8.5"],
       "Set properties.enable_purge_protection=True and enable_soft_delete=True.",
       f"{AZ_DOCS}/key-vault/general/soft-delete-overview",
       ["azure-native:keyvault:Vault"], check_azure_vault_recoverable),
    _r("azure-storage-account-cmk",
       "Storage accounts encrypt with the Key Vault key (customer-managed) plus "
       "infrastructure encryption.",
       "high", ["SC-28", "SC-12"], ["CIS Azure Foundations 2.1.0 3.12",
                                    "CIS Azure Foundations 2.1.0 3.2"],
       "Set encryption.key_source='Microsoft.Keyvault' with key_vault_properties and "
       "encryption_identity, and require_infrastructure_encryption=True.",
       f"{AZ_DOCS}/storage/common/customer-managed-keys-overview",
       [f"{AZ}StorageAccount"], check_azure_storage_cmk),
    _r("azure-storage-account-tls-only",
       "Storage accounts accept HTTPS only, with TLS 1.2 or later.",
       "high", ["SC-8", "SC-13"], ["CIS Azure Foundations 2.1.0 3.1",
                                   "CIS Azure Foundations 2.1.0 3.15"],
       "Set enable_https_traffic_only=True and minimum_tls_version='TLS1_2'.",
       f"{AZ_DOCS}/storage/common/transport-layer-security-configure-minimum-version",
       [f"{AZ}StorageAccount"], check_azure_storage_tls),
    _r("azure-storage-account-public-access-disabled",
       "Storage accounts forbid anonymous blob access and containers are private.",
       "critical", ["AC-3", "AC-6"], ["CIS Azure Foundations 2.1.0 3.7", "CIS Controls v8 3.3"],
       "Set allow_blob_public_access=False on the account and public_access='None' on each "
       "container.",
       f"{AZ_DOCS}/storage/blobs/anonymous-read-access-prevent",
       [f"{AZ}StorageAccount", f"{AZ}BlobContainer"], check_azure_storage_public),
    _r("azure-storage-account-shared-key-disabled",
       "Storage accounts refuse shared-key (account key and SAS) access: the job uses Entra "
       "ID.",
       "high", ["IA-5", "AC-6"], ["CIS Azure Foundations 2.1.0 3.3", "CIS Controls v8 5.2"],
       "Set allow_shared_key_access=False and authenticate with a managed or federated "
       "identity.",
       f"{AZ_DOCS}/storage/common/shared-key-authorization-prevent",
       [f"{AZ}StorageAccount"], check_azure_storage_shared_key),
    _r("azure-storage-blobservice-versioning-soft-delete",
       "Blob services keep versions and soft-delete blobs and containers for at least "
       "immutability.softDeleteDays.",
       "high", ["CP-9", "CP-10"], ["CIS Azure Foundations 2.1.0 3.11", "CIS Controls v8 11.3"],
       "Set is_versioning_enabled=True, delete_retention_policy and "
       "container_delete_retention_policy enabled with days = softDeleteDays.",
       f"{AZ_DOCS}/storage/blobs/soft-delete-blob-overview",
       [f"{AZ}BlobServiceProperties"], check_azure_blob_soft_delete, needs=True),
    _r("azure-storage-container-immutability-set",
       "Backups are under a time-based immutability policy of at least "
       "immutability.lockDays that allows no appends to protected blobs.",
       "critical", ["CP-9", "SI-12", "SC-28"], ["CIS Controls v8 11.3"],
       "Declare azure-native storage.BlobContainerImmutabilityPolicy with "
       "immutability_period_since_creation_in_days = lockDays and protected appends off.",
       f"{AZ_DOCS}/storage/blobs/immutable-time-based-retention-policy-overview",
       [f"{AZ}BlobContainerImmutabilityPolicy", f"{AZ}StorageAccount"],
       check_azure_immutability, needs=True),
    _r("azure-storage-account-delete-lock-production",
       "In production each storage account carries a CanNotDelete management lock, which "
       "guards the backups from the first deploy until the immutability policy is locked.",
       "high", ["CP-9", "AC-3"], ["CIS Controls v8 11.3"],
       "Declare azure-native authorization.ManagementLockByScope(level='CanNotDelete', "
       "scope=<account id>) when the stack is production.",
       f"{AZ_DOCS}/azure-resource-manager/management/lock-resources",
       [f"{AZ}StorageAccount", "azure-native:authorization:ManagementLockByScope"],
       check_azure_delete_lock, scope="stack", needs=True),
    _r("azure-storage-container-immutability-locked",
       "In production each container immutability policy is Locked (irreversible): Azure "
       "creates every policy unlocked, so the program declares an ImmutabilityPolicyLock that "
       "locks it during `pulumi up`; a policy passes when its state is Locked or such a lock "
       "depends on it.",
       "critical", ["CP-9", "SI-12"], ["CIS Controls v8 11.3"],
       "Declare infra.azure.immutability_lock.ImmutabilityPolicyLock(policy_id=<policy id>, "
       "lock_days=lockDays) with depends_on=[the policy] when the stack is production.",
       f"{AZ_DOCS}/storage/blobs/immutable-policy-configure-container-scope",
       [f"{AZ}BlobContainerImmutabilityPolicy", f"{AZ}StorageAccount",
        AZURE_IMMUTABILITY_LOCK_TYPE],
       check_azure_immutability_locked, scope="stack", needs=True),
    _r("azure-storage-managementpolicy-lifecycle-gfs",
       "The Azure management policy tiers and deletes each GFS tier prefix on the stack's "
       "retention and tiering days.",
       "high", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4"],
       "Build the management policy rules from cfg.lifecycle.",
       f"{AZ_DOCS}/storage/blobs/lifecycle-management-overview",
       [LIFECYCLE_TYPES[2]], check_lifecycle_gfs, needs=True),
    _r("azure-storage-managementpolicy-min-duration",
       "No Azure management rule moves or deletes a blob before its tier minimum (Cool 30, "
       "Cold 90, Archive 180 days) or its lock.",
       "medium", ["SI-12", "CP-9"], ["CIS Controls v8 3.4"],
       "Drop the tierTo* action whose tier the blob would leave too early.",
       f"{AZ_DOCS}/storage/blobs/access-tiers-overview",
       [LIFECYCLE_TYPES[2]], check_lifecycle_min_duration),
    _r("azure-storage-account-controls-complete",
       "Each storage account has blob service properties, a management policy, a container "
       "and a time-based immutability policy.",
       "high", ["CP-9", "SI-12"], ["CIS Controls v8 11.3"],
       "Declare the missing azure-native storage resource for the account (see infra/azure/).",
       f"{AZ_DOCS}/storage/blobs/data-protection-overview",
       [f"{AZ}StorageAccount", f"{AZ}BlobServiceProperties", f"{AZ}ManagementPolicy",
        f"{AZ}BlobContainer", f"{AZ}BlobContainerImmutabilityPolicy"],
       check_azure_storage_controls_complete, scope="stack"),
    _r("azure-authorization-roleassignment-no-privileged-roles",
       "No role assignment grants Owner, Contributor, User Access Administrator, account-key "
       "roles or Blob Data Owner, or any role at subscription scope.",
       "high", ["AC-6", "AC-3"], ["CIS Azure Foundations 2.1.0 1.23", "CIS Controls v8 5.4"],
       "Assign a narrow (custom) role scoped to the container.",
       f"{AZ_DOCS}/role-based-access-control/best-practices",
       ["azure-native:authorization:RoleAssignment"], check_azure_role_assignment),
    _r("azure-authorization-roledefinition-no-wildcards",
       "Custom role definitions list exact actions and data actions, no wildcards.",
       "high", ["AC-6"], ["CIS Azure Foundations 2.1.0 1.23", "CIS Controls v8 6.8"],
       "Replace 'Microsoft.Storage/*' style entries with the exact operations "
       "(e.g. .../containers/blobs/write).",
       f"{AZ_DOCS}/role-based-access-control/custom-roles",
       ["azure-native:authorization:RoleDefinition"], check_azure_role_definition),
    _r("aws-s3-bucket-grants-no-delete",
       "No IAM, role or bucket policy allows deleting or overwriting backups in a backup "
       "bucket, or switching off its versioning, Object Lock, lifecycle or policy.",
       "critical", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Grant writers s3:PutObject on their prefix only; remove s3:Delete*, "
       "s3:BypassGovernanceRetention and bucket-configuration actions from every Allow.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock.html",
       [*AWS_POLICY_HOLDERS, f"{S3}bucket:Bucket"], check_aws_backup_grants, scope="stack"),
    _r("azure-authorization-roleassignment-no-delete-on-stores",
       "Every role assignment reaching a backup storage account or container only reads, or "
       "is a custom role that can neither delete nor, outside WORM, overwrite blobs.",
       "critical", ["AC-6", "CP-9"], ["CIS Azure Foundations 2.1.0 1.23", "CIS Controls v8 11.3"],
       "Assign Storage Blob Data Reader, or the writer custom role (blobs/write, add/action, "
       "read; no delete) on a container with a time-based immutability policy.",
       f"{AZ_DOCS}/storage/blobs/immutable-storage-overview",
       ["azure-native:authorization:RoleAssignment", "azure-native:authorization:RoleDefinition",
        f"{AZ}StorageAccount", f"{AZ}BlobContainer", f"{AZ}BlobContainerImmutabilityPolicy"],
       check_azure_backup_grants, scope="stack"),
    # --- stack-wide
    _r("multicloud-storage-lifecycle-retention-floor",
       "No cloud deletes a GFS tier before the organisation's retention floor (default 30 "
       "days, 12 weeks, 12 months, 7 years), whatever the stack file says.",
       "critical", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4", "CIS Controls v8 11.2"],
       "Raise vo2max-dr:retention back to at least the floor (or change the floor through "
       "policy config minimumRetentionDays with the compliance owner's approval).",
       f"{AWS_DOCS}/prescriptive-guidance/latest/backup-recovery/backup-recovery.html",
       LIFECYCLE_TYPES, check_retention_floor,
       config={"minimumRetentionDays": {"type": "object",
                                        "description": "days per GFS tier"}}),
    _r("aws-scheduler-schedule-rpo-met",
       "Every data class has a backup schedule whose interval meets its RPO (a daily class "
       "runs at its dailyAtUtc).",
       "critical", ["CP-9", "CP-10"], ["CIS Controls v8 11.2"],
       "Derive the schedule from the data class (infra.runtime.eventbridge_cron); change "
       "vo2max-dr:dataClasses.<class>.rpoMinutes, not code.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/schedule-types.html",
       ["aws:scheduler/schedule:Schedule"], check_schedule_rpo, scope="stack", needs=True),
    _r("aws-scheduler-schedule-status-check-present",
       "A status check runs at least every monitoring.statusEveryMinutes.",
       "high", ["CP-9", "SI-4"], ["CIS Controls v8 11.2"],
       "Declare the status schedule from cfg.monitoring.status_every_minutes.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/schedule-types.html",
       ["aws:scheduler/schedule:Schedule", "gcp:cloudscheduler/job:Job"],
       check_schedule_status, scope="stack", needs=True),
    _r("aws-scheduler-schedule-drill-monthly",
       "A restore drill runs once a month, on monitoring.drillSchedule.",
       "high", ["CP-4", "CP-10"], ["CIS Controls v8 11.5"],
       "Declare the drill schedule as cron(0 9 ? * MON#1 *) (first Monday), from "
       "cfg.monitoring.drill_schedule.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/schedule-types.html#cron-based",
       ["aws:scheduler/schedule:Schedule", "gcp:cloudscheduler/job:Job"],
       check_schedule_drill, scope="stack", needs=True),
    _r("multicloud-storage-backups-min-two-clouds",
       "Production keeps backup copies in at least two clouds, and every cloud the stack "
       "enables declares its store.",
       "critical", ["CP-9", "CP-6", "CP-10"], ["CIS Controls v8 11.4"],
       "Enable gcp and/or azure in vo2max-dr:clouds and wire their store in infra/program.py.",
       f"{AWS_DOCS}/whitepapers/latest/disaster-recovery-workloads-on-aws/"
       "disaster-recovery-options-in-the-cloud.html",
       list(STORE_TYPES.values()), check_two_clouds, scope="stack", needs=True),
)

RULES += (
    # --- the intraday tier (kept together)
    _r("multicloud-storage-intraday-lifecycle-expiry",
       "Each cloud expires the intraday prefix when retention.intradayHours ends and never "
       "moves intraday objects to a colder class (on Azure, in the intraday container).",
       "high", ["CP-9", "SI-12"], ["CIS Controls v8 3.4"],
       "Build the lifecycle rules from cfg.lifecycle, whose intraday entry expires at the "
       "window and has no transitions (infra/config.py lifecycle_plan).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html",
       LIFECYCLE_TYPES, check_intraday_expiry, needs=True),
    _r("multicloud-storage-intraday-lock-window",
       "Intraday objects are locked until their window ends in every cloud: S3 and GCS by "
       "their own retain-until time (every job's VO2DR_STRATEGY carries the window, compliance "
       "in production, and the S3 writer may send it), Azure by the intraday container's "
       "immutability policy.",
       "critical", ["CP-9", "SI-12", "SC-28"], ["CIS Controls v8 11.3"],
       "Keep retention.intradayHours in whole days; pass cfg.strategy.to_json() to every job; "
       "grant the S3 writer s3:PutObjectRetention; declare the '<container>-intraday' policy "
       "with immutability_period_since_creation_in_days = the window (infra/azure/storage.py).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock-overview.html",
       [f"{AZ}BlobContainerImmutabilityPolicy", "aws:lambda/function:Function",
        "gcp:cloudrunv2/job:Job", "aws:iam/rolePolicy:RolePolicy"],
       check_intraday_lock, scope="stack", needs=True),
    _r("multicloud-iam-no-lock-shortening",
       "No identity can shorten or lift a lock or delete a locked backup: no S3 governance "
       "bypass, object-lock configuration change or object delete; no Azure blob "
       "immutability, delete or version-delete action; no GCS retention override or object "
       "delete. Setting a lock when an object is created stays allowed.",
       "critical", ["AC-6", "CP-9", "SI-12"], ["CIS Controls v8 11.3", "CIS Controls v8 6.8"],
       "Remove the action from the policy or role; the S3 writer needs only s3:PutObject, "
       "s3:PutObjectRetention and s3:AbortMultipartUpload; the Azure writer only blob write, "
       "add and read.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock-managing.html",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role",
        "aws:s3/bucketPolicy:BucketPolicy", "azure-native:authorization:RoleDefinition",
        "gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:organizations/iAMCustomRole:IAMCustomRole"],
       check_no_lock_shortening),
    # --- The report records (issue 18): reports/<env>/ in every store
    _r("multicloud-storage-reports-retention",
       "The report records (drill results, failed backup attempts under reports/<env>/) are "
       "kept at least as long as the yearly tier in every store, then expired, and never "
       "moved to a class that needs a restore before it can be read.",
       "high", ["AU-11", "CP-9", "SI-12"], ["CIS Controls v8 8.10", "CIS Controls v8 11.1"],
       "Give the store a lifecycle rule for reports/<env>/ that expires after the yearly "
       "tier's days (retention.yearlyYears), with no Glacier, Deep Archive or Archive step, "
       "and no other rule that expires them sooner.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lifecycle-mgmt.html",
       LIFECYCLE_TYPES, check_reports_retention, needs=True),
    _r("aws-iam-policy-report-records-write-once",
       "An S3 grant to put report records (reports/<env>/) or snapshot content "
       "(<root>content/) requires If-None-Match: *, so no record or content object can be "
       "replaced, not even by the job that wrote it (a grant limited to the parts of a "
       "multipart upload, s3:ObjectCreationOperation false, creates nothing and passes).",
       "high", ["AU-9", "SI-7"], ["CIS Controls v8 3.3"],
       "Add \"Condition\": {\"Null\": {\"s3:if-none-match\": \"false\"}} to the statement "
       "that allows s3:PutObject under reports/<env>/ or <root>content/ (and, for multipart "
       "uploads, allow the parts in a statement of their own with \"Bool\": "
       "{\"s3:ObjectCreationOperation\": \"false\"}).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/conditional-writes-enforce.html",
       [*AWS_POLICY_HOLDERS, f"{S3}bucket:Bucket", f"{S3}bucketLogging:BucketLogging"],
       check_aws_report_puts_write_once, scope="stack"),
    _r("multicloud-iam-report-grants-scoped",
       "A conditional grant that lets an identity create report records (a GCS IAM Condition "
       "on the object name, an Azure ABAC condition on the blob path) opens exactly one kind "
       "of this stack's records, reports/<env>/drills/ or attempts/, and on Azure guards "
       "every create action of the role.",
       "high", ["AC-3", "AC-6"], ["CIS Controls v8 3.3", "CIS Controls v8 6.8"],
       "GCS: condition expression resource.name.startsWith(\"projects/_/buckets/<bucket>/"
       "objects/reports/<env>/drills/\"). Azure: guard blobs/write and blobs/add/action with "
       "@Resource[...blobs:path] StringStartsWith 'reports/<env>/drills/' (version 2.0).",
       f"{AZ_DOCS}/storage/blobs/storage-auth-abac-examples",
       [*GCS_BUCKET_IAM_TYPES, "azure-native:authorization:RoleAssignment"],
       check_report_grants_scoped),
)

RULES += (
    # --- snapshots with dedup (issue 17, kept together)
    _r("multicloud-storage-lifecycle-content-no-expiry",
       "No lifecycle rule of any cloud expires an object under a snapshot source's content/ "
       "prefix (by age or date, whatever the rule's prefix: no broader rule reaches it either), "
       "or moves one to a class that needs a rehydration before it can be read.",
       "critical", ["CP-9", "SI-12", "AU-11"], ["CIS Controls v8 11.2", "CIS Controls v8 3.4"],
       "Give <root>content/ its own transitions-only rule (infra/config.py content_transitions) "
       "and keep every expiring rule on a tier prefix (<root><tier>/), never on <root> or "
       "above.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/intro-lifecycle-rules.html",
       LIFECYCLE_TYPES, check_content_no_expiry, needs=True),
    _r("multicloud-iam-delete-content-only",
       "The only delete grant on a backup store is the snapshot pruner's: s3:DeleteObject, a "
       "GCS delete-only role or an Azure delete-only role, limited to <root>content/ (resource "
       "ARNs, an IAM Condition, an ABAC condition on the blob path); the backup writer never "
       "deletes; and whoever deletes content writes only under <root>prune/.",
       "critical", ["AC-6", "CP-9", "AC-3"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Declare the pruner with infra/aws/pruner.py, infra/gcp/pruner.py and "
       "infra/azure/pruner.py; never grant a delete to the writer or on another prefix.",
       f"{AZ_DOCS}/storage/blobs/storage-auth-abac-attributes",
       ["aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/role:Role",
        "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:projects/iAMCustomRole:IAMCustomRole",
        "azure-native:authorization:RoleAssignment",
        "azure-native:authorization:RoleDefinition",
        "azure-native:managedidentity:UserAssignedIdentity"],
       check_delete_content_only, scope="stack"),
    _r("aws-iam-policy-snapshot-origins-read-only",
       "The snapshot origins (vo2max-dr:application.<source>.origins: the uploads bucket, the "
       "log drain) are read-only to every identity of the stack: get, get a version, list.",
       "high", ["AC-6", "AC-3"], ["CIS Controls v8 3.3"],
       "Grant s3:GetObject, s3:GetObjectVersion on arn:aws:s3:::<bucket>/<prefix>* and "
       "s3:ListBucket with an s3:prefix condition, to the source's backup function only.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/security-best-practices.html",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role",
        "aws:s3/bucketPolicy:BucketPolicy"],
       check_origins_read_only, needs=True),
)

RULES_BY_NAME = {r.name: r for r in RULES}
assert len(RULES_BY_NAME) == len(RULES), "rule names must be unique"


def enforcement_for(environment: str | None) -> EnforcementLevel:
    """Mandatory in production (and when the stack is unknown: fail safe), advisory in staging."""
    return EnforcementLevel.ADVISORY if environment == "staging" else EnforcementLevel.MANDATORY
