"""IAM roles of the job, one per job role, and their least-privilege permissions.

Identities and permissions are two components because the KMS key policy names the roles
(so the roles exist before the key), while the permissions name the key (so they come after).

- backup writer: the scheduled backup Lambda. Puts new objects under ``database/<env>/``, each
  write-once; it can neither read nor delete a backup, so a compromised job cannot destroy
  history. It also mints short-lived web identity tokens for Entra ID only (keyless sign-in
  to the Azure copy).
- restore reader: restores and drills. Reads and lists the environment's backups and
  decrypts; it cannot write.
- monitor: the status check. Lists and reads manifests only, never a dump.

With the Azure copy on, all three may mint the same short-lived, Entra-only web identity
tokens (``WebIdentityTokenForEntraOnly``): the writer to sign in as the Azure writer identity,
the restore reader and the monitor as the Azure reader identity (infra/azure/access.py decides
which identity trusts which role's tokens; the token itself grants nothing in AWS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from vo2dr.layout import MANIFEST_SUFFIX
from vo2dr.stores.credentials import ENTRA_AUDIENCE, JWT_ALGORITHM, JWT_LIFETIME_SECONDS

from infra.aws.policies import account_root, document, statement, trust

LAMBDA_SERVICE = "lambda.amazonaws.com"
ROLES = ("writer", "reader", "monitor")


@dataclass(frozen=True)
class JobRolesArgs:
    account_id: str
    writer_role_name: str
    reader_role_name: str
    monitor_role_name: str
    tags: Mapping[str, str] = field(default_factory=dict)


class JobRoles(pulumi.ComponentResource):
    """The three job identities and who may assume them.

    Outputs: ``writer_arn``, ``reader_arn``, ``monitor_arn`` (and ``*_name``)."""

    writer: aws.iam.Role
    reader: aws.iam.Role
    monitor: aws.iam.Role

    def __init__(self, name: str, args: JobRolesArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:JobRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Lambda may assume the role only for functions of this account (confused deputy).
        from_this_account = {"StringEquals": {"aws:SourceAccount": args.account_id}}
        lambda_trust = trust("LambdaOfThisAccount", {"Service": LAMBDA_SERVICE},
                             from_this_account)
        self.writer = aws.iam.Role(
            f"{name}-backup-writer", name=args.writer_role_name,
            description="vo2dr backup job: writes new backups, cannot read or delete them",
            assume_role_policy=document(lambda_trust), tags=dict(args.tags), opts=child)
        # The reader serves the monthly restore drill (a Lambda) and people restoring from a
        # laptop. Naming the account root delegates "who" to IAM: only principals whose own
        # IAM policy allows sts:AssumeRole on this role (the on-call group) can assume it.
        # No MFA condition here, because Identity Center sessions carry no MFA context; require
        # MFA in the identity provider instead.
        self.reader = aws.iam.Role(
            f"{name}-restore-reader", name=args.reader_role_name,
            description="vo2dr restores and drills: reads and decrypts backups, cannot write",
            assume_role_policy=document(
                lambda_trust,
                trust("OperatorsOfThisAccount", {"AWS": account_root(args.account_id)})),
            tags=dict(args.tags), opts=child)
        self.monitor = aws.iam.Role(
            f"{name}-monitor", name=args.monitor_role_name,
            description="vo2dr status check: lists backups and reads their manifests only",
            assume_role_policy=document(lambda_trust), tags=dict(args.tags), opts=child)
        self.writer_arn, self.reader_arn, self.monitor_arn = (
            self.writer.arn, self.reader.arn, self.monitor.arn)
        self.writer_name, self.reader_name, self.monitor_name = (
            self.writer.name, self.reader.name, self.monitor.name)
        self.register_outputs({
            "writer_arn": self.writer_arn, "reader_arn": self.reader_arn,
            "monitor_arn": self.monitor_arn, "writer_name": self.writer_name,
            "reader_name": self.reader_name, "monitor_name": self.monitor_name,
        })


@dataclass(frozen=True)
class JobPermissionsArgs:
    roles: JobRoles
    bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    prefix: str  # "database/<env>/": the only part of the bucket the job may touch
    region: str
    # The Azure copy is on: every job role signs in to Entra ID with AWS web identity tokens
    # (the writer as the writer identity, the reader and monitor as the reader identity).
    entra_federation: bool = False
    # The application sources' prefixes (application/<env>/code/, …/config/): the same grants.
    extra_prefixes: tuple[str, ...] = ()
    # Where the writer may create objects, when narrower than the prefixes: a snapshot
    # source's tiers and content pool, never the pruner's plans (``<root>prune/``).
    writer_prefixes: tuple[str, ...] | None = None
    # The snapshot content pools (``<root>content/``, among ``writer_prefixes``): like every
    # object the writer creates, write-once (:func:`_backup_puts`), and never given a lock of
    # its own (no s3:PutObjectRetention there).
    content_prefixes: tuple[str, ...] = ()
    # The report records (issue 18, reports/<env>/): the writer creates the failed-attempt
    # records, the reader (the drill) the drill results, each only under its own prefix; the
    # reader (``vo2dr report``) reads and lists them all. Empty: no report records.
    reports_prefix: str = ""
    attempt_records_prefix: str = ""
    drill_records_prefix: str = ""


class JobPermissions(pulumi.ComponentResource):
    """Inline policies that tie each role to the environment's prefix and the backup key.

    Inline rather than managed: each document belongs to exactly one role, is deleted with it,
    and cannot be attached to anything else by mistake."""

    def __init__(self, name: str, args: JobPermissionsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:JobPermissions", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefixes = [args.prefix, *args.extra_prefixes]
        objects: Any = pulumi.Output.concat(args.bucket_arn, "/", args.prefix, "*")
        manifests: Any = pulumi.Output.concat(args.bucket_arn, "/", args.prefix, "*",
                                              MANIFEST_SUFFIX)
        if args.extra_prefixes:
            objects = [pulumi.Output.concat(args.bucket_arn, "/", p, "*") for p in prefixes]
            manifests = [pulumi.Output.concat(args.bucket_arn, "/", p, "*", MANIFEST_SUFFIX)
                         for p in prefixes]
        # ListBucket is granted on the bucket but only for keys under the prefix: the writer
        # lists to choose the GFS tier, the others to find the latest backup.
        list_prefix = statement(
            "ListEnvironmentPrefix", ["s3:ListBucket"], args.bucket_arn,
            condition={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}})
        through_s3 = {"StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}}
        entra = [_entra_web_identity_tokens()] if args.entra_federation else []
        if args.content_prefixes and not set(args.content_prefixes) <= set(
                args.writer_prefixes or ()):
            raise ValueError("content_prefixes must be among writer_prefixes")
        created = [pulumi.Output.concat(args.bucket_arn, "/", p, "*") for p in (
            prefixes if args.writer_prefixes is None else args.writer_prefixes)]
        locked = [pulumi.Output.concat(args.bucket_arn, "/", p, "*") for p in (
            prefixes if args.writer_prefixes is None else args.writer_prefixes)
            if p not in args.content_prefixes]
        reports = _report_records(args, through_s3)

        writer = document(
            # Every object the writer creates is new by construction (a timestamp and a random
            # id, or a random content id; "latest" is found by listing, vo2dr.layout), so
            # every creating call is write-once (:func:`_backup_puts`). No Get, no Delete, no
            # bypass, no policy change.
            *_backup_puts(created),
            # PutObjectRetention: S3 refuses an upload that carries its own lock (the intraday
            # tier, vo2dr.stores.s3) without it; it can only set or lengthen a lock, never
            # shorten one (that needs s3:BypassGovernanceRetention, which no writer holds).
            # Not on snapshot content: it carries the bucket's default lock only.
            statement("LockNewBackups", ["s3:PutObjectRetention"], locked),
            list_prefix,
            statement("EncryptWithBackupKey", ["kms:Encrypt", "kms:GenerateDataKey"],
                      args.key_arn),
            # S3 decrypts the bucket data key to encrypt each part of a multipart upload under
            # SSE-KMS, on the caller's behalf: allowed only through S3.
            statement("MultipartSseKmsThroughS3", ["kms:Decrypt"], args.key_arn,
                      condition=through_s3),
            # Key metadata only (state, ARN): the job checks the key is Enabled before
            # streaming, and resolves an id or alias to the ARN the bucket policy requires.
            statement("DescribeBackupKey", ["kms:DescribeKey"], args.key_arn),
            *reports["writer"],
            *entra,
        )
        reader = document(
            statement("ReadBackups", ["s3:GetObject", "s3:GetObjectVersion"], objects),
            list_prefix,
            # Direct Decrypt: the job's envelope encryption wraps each dump's data key with
            # this key, besides S3's own SSE-KMS.
            statement("DecryptWithBackupKey", ["kms:Decrypt", "kms:DescribeKey"], args.key_arn),
            *reports["reader"],
            *entra,
        )
        monitor = document(
            statement("ReadManifestsOnly", ["s3:GetObject"], manifests),
            list_prefix,
            # Manifests are stored under SSE-KMS too; reading them needs Decrypt through S3.
            statement("ReadEncryptedManifestsThroughS3", ["kms:Decrypt"], args.key_arn,
                      condition=through_s3),
            *entra,
        )
        roles = args.roles
        self.writer = aws.iam.RolePolicy(f"{name}-backup-writer", role=roles.writer.id,
                                         policy=writer, opts=child)
        self.reader = aws.iam.RolePolicy(f"{name}-restore-reader", role=roles.reader.id,
                                         policy=reader, opts=child)
        self.monitor = aws.iam.RolePolicy(f"{name}-monitor", role=roles.monitor.id,
                                          policy=monitor, opts=child)
        self.register_outputs({})


# A report record is written once: S3 takes the PutObject only with ``If-None-Match: *`` (the
# stores' put_bytes sends it), so no record can be replaced, not even by the identity that
# wrote it (S3 User Guide, "Enforce conditional writes"). Records are small single PutObjects,
# so no multipart call needs exempting.
WRITE_ONCE = {"Null": {"s3:if-none-match": "false"}}
# The calls of a multipart upload that create no object (CreateMultipartUpload, UploadPart,
# UploadPartCopy) accept no conditional header, so S3 evaluates s3:if-none-match as absent on
# them; ``s3:ObjectCreationOperation`` is false for exactly those calls and true for PutObject,
# CopyObject and CompleteMultipartUpload (S3 User Guide, "Enforce conditional writes").
UPLOAD_PARTS = {"Bool": {"s3:ObjectCreationOperation": "false"}}


def _backup_puts(created: list[Any]) -> list[dict]:
    """The writer's grants to create backups (bodies, manifests, snapshot indexes, under each
    source's tiers) and snapshot content: every object-creating call (PutObject,
    CompleteMultipartUpload, CopyObject) only with ``If-None-Match: *``, so a stolen writer
    credential cannot replace a backup or a content object that years of snapshots reference
    (the genuine version would outlive the lock only as a noncurrent version); the parts of a
    multipart upload without it (they create nothing until the completion), and aborting its
    own failed upload. The job's stores send the header on every write (vo2dr.stores.s3)."""
    return [statement("PutNewBackupsOnce", ["s3:PutObject"], created, condition=WRITE_ONCE),
            statement("UploadBackupParts", ["s3:PutObject"], created, condition=UPLOAD_PARTS),
            statement("AbortBackupUploads", ["s3:AbortMultipartUpload"], created)]


def _report_records(args: JobPermissionsArgs, through_s3: dict) -> dict[str, list[dict]]:
    """Statements for the report records (issue 18): create-only, write-once, each job under
    its own prefix; the reader reads and lists the whole ``reports/<env>/``."""
    if not args.reports_prefix:
        return {"writer": [], "reader": []}

    def under(prefix: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(args.bucket_arn, "/", prefix, "*")

    return {
        "writer": [statement("PutAttemptRecordsOnce", ["s3:PutObject"],
                             under(args.attempt_records_prefix), condition=WRITE_ONCE)],
        "reader": [
            statement("PutDrillRecordsOnce", ["s3:PutObject"], under(args.drill_records_prefix),
                      condition=WRITE_ONCE),
            # SSE-KMS with a bucket key: S3 asks KMS for the data key on the caller's behalf.
            statement("EncryptDrillRecordsThroughS3", ["kms:GenerateDataKey"], args.key_arn,
                      condition=through_s3),
            statement("ReadReportRecords", ["s3:GetObject"], under(args.reports_prefix)),
            statement("ListReportRecords", ["s3:ListBucket"], args.bucket_arn,
                      condition={"StringLike": {"s3:prefix": [f"{args.reports_prefix}*"]}}),
        ],
    }


def _entra_web_identity_tokens() -> dict:
    """Keyless sign-in to the Azure copy (docs/cross-cloud-identity.md): a job role may mint
    AWS-signed JWTs (IAM outbound identity federation) for Entra ID's token exchange only, with
    the algorithm and lifetime the job requests (vo2dr.stores.credentials holds those values).

    sts:GetWebIdentityToken has no resource type, so ``"*"`` is the only Resource IAM accepts
    for it (tests/iam_check.py allows exactly this); the conditions are what scope it."""
    return statement("WebIdentityTokenForEntraOnly", ["sts:GetWebIdentityToken"], "*",
                     condition={
                         # Every audience requested must be Entra's...
                         "ForAllValues:StringEquals": {
                             "sts:IdentityTokenAudience": [ENTRA_AUDIENCE]},
                         # ...and one must be requested (ForAllValues passes an empty set).
                         "Null": {"sts:IdentityTokenAudience": "false"},
                         "StringEquals": {"sts:SigningAlgorithm": JWT_ALGORITHM},
                         # A request without DurationSeconds fails this; the job always sends it.
                         "NumericLessThanEquals": {"sts:DurationSeconds": JWT_LIFETIME_SECONDS},
                     })
