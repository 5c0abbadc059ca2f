"""The primary backup bucket and the bucket that receives its server access logs.

Both buckets are private, versioned, encrypted and owner-enforced. Each setting is its own
``aws.s3.*`` resource (pulumi-aws 7 deprecates the inline bucket arguments), each a child of
its component so ``pulumi preview`` shows them grouped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws import lifecycle
from infra.aws.policies import document, statement
from infra.config_storage import ContentLifecycle, TierLifecycle

# S3 server access logging cannot write to a bucket whose default encryption is SSE-KMS: the
# logging service has no way to use a customer key. SSE-S3 (AES256) is what AWS supports for the
# target, and the logs hold request metadata, not backup data.
LOG_BUCKET_SSE = "AES256"
LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"
SSE_HEADER = "s3:x-amz-server-side-encryption"
SSE_KEY_HEADER = "s3:x-amz-server-side-encryption-aws-kms-key-id"


def _deny_insecure_transport(sid_prefix: str, arn: pulumi.Input[str]) -> list[dict]:
    """Deny any request over plain HTTP and any TLS below 1.2, for everyone."""
    resources = [arn, pulumi.Output.concat(arn, "/*")]
    return [
        statement(f"{sid_prefix}DenyInsecureTransport", ["s3:*"], resources, effect="Deny",
                  principal="*", condition={"Bool": {"aws:SecureTransport": "false"}}),
        statement(f"{sid_prefix}DenyOldTls", ["s3:*"], resources, effect="Deny",
                  principal="*", condition={"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
    ]


def _private(name: str, bucket: aws.s3.Bucket,
             opts: pulumi.ResourceOptions) -> tuple[aws.s3.BucketPublicAccessBlock,
                                                    aws.s3.BucketOwnershipControls]:
    # All four settings: no public ACL can be set or honoured, no public policy can be set,
    # and cross-account access through a public policy is cut.
    pab = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block", bucket=bucket.id, block_public_acls=True,
        block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
        opts=opts)
    # ACLs off: the bucket owner owns every object, and access is decided by policy alone.
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership", bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts)
    return pab, ownership


def _versioning(name: str, bucket: aws.s3.Bucket,
                opts: pulumi.ResourceOptions) -> aws.s3.BucketVersioning:
    return aws.s3.BucketVersioning(
        f"{name}-versioning", bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled"),
        opts=opts)


@dataclass(frozen=True)
class AccessLogBucketArgs:
    bucket_name: str
    account_id: str
    # Buckets allowed to deliver logs here (aws:SourceArn); by name, because the log bucket is
    # created first and the source bucket must exist for its BucketLogging only.
    source_bucket_arns: Sequence[str]
    expire_days: int
    noncurrent_version_days: int
    abort_incomplete_upload_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


class AccessLogBucket(pulumi.ComponentResource):
    """Target of the backup bucket's server access logs: an audit trail of every request,
    kept apart so that the backup roles cannot touch it.

    Outputs: ``bucket_name``, ``arn``."""

    def __init__(self, name: str, args: AccessLogBucketArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Protected: the audit trail must not vanish with a `pulumi destroy`.
        self.bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket_name,
                                    force_destroy=False, tags=dict(args.tags),
                                    opts=pulumi.ResourceOptions(parent=self, protect=True))
        self.public_access_block, self.ownership = _private(name, self.bucket, child)
        self.versioning = _versioning(name, self.bucket, child)
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm=LOG_BUCKET_SSE))],
            opts=child)
        # With BucketOwnerEnforced, log delivery is granted by policy (ACL grants are ignored),
        # and only for the named source buckets of this account.
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=self.bucket.id,
            policy=document(
                statement("S3ServerAccessLogsDelivery", ["s3:PutObject"],
                          pulumi.Output.concat(self.bucket.arn, "/*"),
                          principal={"Service": LOG_DELIVERY_SERVICE},
                          condition={"ArnLike": {"aws:SourceArn": list(args.source_bucket_arns)},
                                     "StringEquals": {"aws:SourceAccount": args.account_id}}),
                *_deny_insecure_transport("", self.bucket.arn),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]))
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=lifecycle.log_rules(
                expire_days=args.expire_days,
                noncurrent_version_days=args.noncurrent_version_days,
                abort_incomplete_upload_days=args.abort_incomplete_upload_days),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})


def _write_once(bucket_arn: pulumi.Output[str], prefixes: Sequence[str]) -> list[dict]:
    """For everyone, not only the writer role: no call that creates an object under
    ``prefixes`` (PutObject, CopyObject, CompleteMultipartUpload; ``s3:ObjectCreationOperation``
    true) without ``If-None-Match``, so no credential of the account that can put objects can
    replace a backup, or content that years of snapshots reference (S3 User Guide, "Enforce
    conditional writes"). The parts of a multipart upload carry no such header and create
    nothing: left alone. The job's writes all send it (vo2dr.stores.s3)."""
    if not prefixes:
        return []
    return [statement("DenyBackupOverwrites", ["s3:PutObject"],
                      [pulumi.Output.concat(bucket_arn, "/", p, "*") for p in prefixes],
                      effect="Deny", principal="*",
                      condition={"Null": {"s3:if-none-match": "true"},
                                 "Bool": {"s3:ObjectCreationOperation": "true"}})]


@dataclass(frozen=True)
class BackupBucketArgs:
    bucket_name: str
    key_arn: pulumi.Input[str]
    object_lock_mode: str  # GOVERNANCE or COMPLIANCE
    object_lock_days: int
    status_prefix: str
    lifecycle: Sequence[TierLifecycle]
    noncurrent_version_days: int
    abort_incomplete_upload_days: int
    log_bucket_name: pulumi.Input[str]
    log_prefix: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # The report records (reports/<env>/) and how long they are kept (the yearly tier's days);
    # empty: no such records.
    reports_prefix: str = ""
    reports_expire_days: int = 0
    # Snapshot sources: their content pools (no expiry) and the pruner's plan prefixes
    # (expired after prune_expire_days).
    content_lifecycle: Sequence[ContentLifecycle] = ()
    prune_prefixes: Mapping[str, str] = field(default_factory=dict)  # source -> <root>prune/
    # Where every object is new by construction (the backups' tiers, snapshot content): no
    # principal may create one there without If-None-Match (:func:`_write_once`).
    write_once_prefixes: Sequence[str] = ()
    prune_expire_days: int = 0


class BackupBucket(pulumi.ComponentResource):
    """The primary store: write-once objects under object lock, SSE-KMS with the backup key,
    lifecycle per GFS tier, and server access logs to the log bucket.

    Outputs: ``bucket_name``, ``arn``."""

    def __init__(self, name: str, args: BackupBucketArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:BackupBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Object Lock can only be switched on when the bucket is created; it also makes S3
        # refuse to suspend versioning. Protected, so Pulumi never plans to delete or replace
        # the backups; force_destroy stays off so not even an emptied-bucket delete happens.
        self.bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket_name,
                                    object_lock_enabled=True, force_destroy=False,
                                    tags=dict(args.tags),
                                    opts=pulumi.ResourceOptions(parent=self, protect=True))
        self.public_access_block, self.ownership = _private(name, self.bucket, child)
        self.versioning = _versioning(name, self.bucket, child)
        # Bucket keys cut KMS requests (and cost) by caching a bucket-level data key; the CMK
        # still protects it, and the key's policy still decides who may decrypt.
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                bucket_key_enabled=True,
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.key_arn))],
            opts=child)
        objects = pulumi.Output.concat(self.bucket.arn, "/*")
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=self.bucket.id,
            policy=document(
                *_deny_insecure_transport("", self.bucket.arn),
                # A request without SSE headers gets the default encryption above (this key).
                # One that names an encryption must name SSE-KMS with this very key (its ARN).
                # A negated operator is true when the header is absent, so each deny also
                # requires the header to be present ("Null": "false"); otherwise header-less
                # PutObject and every multipart UploadPart (which never carries SSE headers)
                # would be refused although S3 encrypts them with this key.
                statement("DenyUploadsNotEncryptedWithKms", ["s3:PutObject"], objects,
                          effect="Deny", principal="*",
                          condition={"StringNotEquals": {SSE_HEADER: "aws:kms"},
                                     "Null": {SSE_HEADER: "false"}}),
                statement("DenyUploadsWithAnotherKey", ["s3:PutObject"], objects,
                          effect="Deny", principal="*",
                          condition={"StringNotEquals": {SSE_KEY_HEADER: args.key_arn},
                                     "Null": {SSE_KEY_HEADER: "false"}}),
                *_write_once(self.bucket.arn, list(dict.fromkeys(
                    [*args.write_once_prefixes, *(p.prefix for p in args.content_lifecycle)]))),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]))
        # Default retention: every new object version is locked for lock_days. GOVERNANCE lets a
        # specially permitted principal lift it (staging); COMPLIANCE lets nobody (production).
        self.object_lock = aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock", bucket=self.bucket.id, object_lock_enabled="Enabled",
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode=args.object_lock_mode, days=args.object_lock_days)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        # Lifecycle on a versioned bucket must follow versioning, or S3 may apply it to a
        # bucket still unversioned and expire objects outright.
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=[*lifecycle.tier_rules(
                args.lifecycle, noncurrent_version_days=args.noncurrent_version_days,
                abort_incomplete_upload_days=args.abort_incomplete_upload_days),
                *lifecycle.content_rules(
                    args.content_lifecycle, noncurrent_version_days=args.noncurrent_version_days,
                    abort_incomplete_upload_days=args.abort_incomplete_upload_days),
                *lifecycle.prune_rules(
                    args.prune_prefixes, expire_days=args.prune_expire_days,
                    noncurrent_version_days=args.noncurrent_version_days,
                    abort_incomplete_upload_days=args.abort_incomplete_upload_days),
                lifecycle.status_rule(
                    args.status_prefix, expire_days=args.object_lock_days,
                    noncurrent_version_days=args.noncurrent_version_days,
                    abort_incomplete_upload_days=args.abort_incomplete_upload_days),
                *([lifecycle.reports_rule(
                    args.reports_prefix, expire_days=args.reports_expire_days,
                    noncurrent_version_days=args.noncurrent_version_days,
                    abort_incomplete_upload_days=args.abort_incomplete_upload_days)]
                  if args.reports_prefix else []),
                lifecycle.delete_marker_rule()],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        # Server access logs: who read or wrote which backup, kept outside this bucket.
        self.logging = aws.s3.BucketLogging(
            f"{name}-logging", bucket=self.bucket.id, target_bucket=args.log_bucket_name,
            target_prefix=args.log_prefix,
            target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                    partition_date_source="EventTime")),
            opts=child)
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
