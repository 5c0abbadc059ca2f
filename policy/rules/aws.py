"""The AWS rules of the pack (``aws-*``): keys and encryption, public access, recoverability,
identity, the schedules, and the AWS side of the report records and the snapshot origins."""

from __future__ import annotations

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
from policy.multicloud.lifecycle import (
    check_lifecycle_gfs,
    check_lifecycle_min_duration,
)
from policy.multicloud.reports import (
    check_aws_report_puts_write_once,
)
from policy.multicloud.schedules import (
    check_schedule_drill,
    check_schedule_rpo,
    check_schedule_status,
)
from policy.multicloud.snapshots import (
    check_origins_read_only,
)
from policy.resources import S3
from policy.rules.base import AWS_DOCS, LIFECYCLE_TYPES, Rule, _r

AWS_RULES: tuple[Rule, ...] = (
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
       "Build the lifecycle from cfg.lifecycle (infra/config_storage.py lifecycle_plan); never "
       "edit days in code. Change vo2max-dr:retention / vo2max-dr:tiering instead.",
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
       "other role (by a role policy or its own inline policies) or managed policy, and no "
       "GetParametersByPath on a path above them.",
       "high", ["AC-6", "SC-28"], ["CIS Controls v8 3.3", "CIS Controls v8 6.8"],
       "Grant secretsmanager:GetSecretValue and ssm:GetParameters/GetParametersByPath on the "
       "app's secrets and parameters in the backup function's runtime policy only "
       "(infra/runtime.py app_secret_grants, app_parameter_grants).",
       f"{AWS_DOCS}/secretsmanager/latest/userguide/auth-and-access.html",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role"],
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
    # --- AWS: no grant deletes or overwrites a backup
    _r("aws-s3-bucket-grants-no-delete",
       "No IAM, role or bucket policy allows deleting or overwriting backups in a backup "
       "bucket, or switching off its versioning, Object Lock, lifecycle or policy.",
       "critical", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Grant writers s3:PutObject on their prefix only; remove s3:Delete*, "
       "s3:BypassGovernanceRetention and bucket-configuration actions from every Allow.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock.html",
       [*AWS_POLICY_HOLDERS, f"{S3}bucket:Bucket"], check_aws_backup_grants, scope="stack"),
    # --- AWS: schedules (stack-wide: the RPO, the status check, the drill)
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
    # --- AWS: backups, snapshot content and the report records, written once
    _r("aws-iam-policy-backups-write-once",
       "An S3 grant to put backups (bodies, manifests and snapshot indexes in any source's "
       "tiers), snapshot content (<root>content/) or report records (reports/<env>/) "
       "requires If-None-Match: *, so none can be replaced, not even by the job that wrote "
       "it (a grant limited to the parts of a multipart upload, s3:ObjectCreationOperation "
       "false, creates nothing and passes).",
       "high", ["AU-9", "SI-7"], ["CIS Controls v8 3.3"],
       "Add \"Condition\": {\"Null\": {\"s3:if-none-match\": \"false\"}} to the statement "
       "that allows s3:PutObject in a tier, under reports/<env>/ or <root>content/ (and, "
       "for multipart "
       "uploads, allow the parts in a statement of their own with \"Bool\": "
       "{\"s3:ObjectCreationOperation\": \"false\"}).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/conditional-writes-enforce.html",
       [*AWS_POLICY_HOLDERS, f"{S3}bucket:Bucket", f"{S3}bucketLogging:BucketLogging"],
       check_aws_report_puts_write_once, scope="stack"),
    # --- AWS: snapshots with dedup (issue 17)
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
