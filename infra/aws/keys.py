"""The customer-managed KMS key that encrypts every backup in the primary store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.policies import PARTITION, account_root, document, statement

# Key administration without use: the account (through its IAM policies) may manage the key but
# not encrypt or decrypt with it, so an admin cannot read backups just by being an admin. The
# list is explicit because a "kms:*" grant would hand out Decrypt as well.
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
    "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
    "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants",
    "kms:ListKeyPolicies", "kms:ListKeyRotations", "kms:ListResourceTags", "kms:PutKeyPolicy",
    "kms:RetireGrant", "kms:RevokeGrant", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
    "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
)
# What an AWS service needs to encrypt and decrypt its own data with a customer key.
SERVICE_CRYPTO_ACTIONS = (
    "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
)
# What CloudWatch Logs may do, scoped by the log group's encryption context. DescribeKey carries
# no encryption context, so under that condition a grant of it never matches (IAM lint,
# parliament UNKNOWN_CONDITION_FOR_ACTION): it is left out rather than granted in appearance only.
LOGS_CRYPTO_ACTIONS = tuple(a for a in SERVICE_CRYPTO_ACTIONS if a != "kms:DescribeKey")
# Services that use the key on behalf of a principal of the account (kms:ViaService): S3 for the
# backups' SSE-KMS, Secrets Manager for the database URL secret, SQS and SNS for the runtime's
# encrypted queues and alert topic.
VIA_SERVICES = ("s3", "secretsmanager", "sqs", "sns")
# CloudWatch alarms publish into the CMK-encrypted alert topic with their own service principal.
# AWS's documented key-policy statement for this (Knowledge Center "cloudwatch-configure-alarm-
# sns", statement "Allow_CloudWatch_for_CMK"; SNS developer guide, "Key management":
# "Enable compatibility between event sources from AWS services and encrypted topics") names
# the principal and the data-key actions with no condition: the KMS request CloudWatch makes
# is not documented to carry aws:SourceAccount, so a condition on it silently drops every alarm
# e-mail. Who may publish is decided by the topic policy (this account's alarms only); this
# grant only lets CloudWatch encrypt what it publishes there. The documented
# "kms:GenerateDataKey*" is spelled out as the one data-key call SNS makes (GenerateDataKey):
# the house linters refuse wildcard actions.
CLOUDWATCH_ALARMS_SERVICE = "cloudwatch.amazonaws.com"
CLOUDWATCH_ALARMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


@dataclass(frozen=True)
class BackupKeyArgs:
    account_id: str
    region: str
    alias: str  # "alias/<name>"
    description: str
    # Roles named in the key policy. A key policy that does not name a principal (or delegate
    # to IAM for the action) makes that principal's IAM grants useless, so each job role gets
    # exactly the operations its job needs here.
    writer_role_arn: pulumi.Input[str]
    reader_role_arn: pulumi.Input[str]
    monitor_role_arn: pulumi.Input[str]
    rotation_days: int  # cfg.keys.rotation_days: new key material this often
    tags: Mapping[str, str] = field(default_factory=dict)
    via_services: Sequence[str] = VIA_SERVICES
    # Snapshot sources (infra/aws/pruner.py): the KMS condition that admits their indexes
    # only, under which the writer (its dedup base) and the pruner role (references) decrypt.
    snapshot_index_condition: Mapping[str, Any] | None = None
    pruner_role_arn: pulumi.Input[str] | None = None


class BackupKey(pulumi.ComponentResource):
    """KMS CMK with automatic rotation, an alias, and a key policy naming each principal.

    Outputs: ``key_id``, ``arn``, ``alias_name``."""

    key: aws.kms.Key
    alias: aws.kms.Alias
    key_id: pulumi.Output[str]
    arn: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: BackupKeyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:BackupKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        root = account_root(args.account_id)
        via = [f"{svc}.{args.region}.amazonaws.com" for svc in args.via_services]
        # In a key policy "Resource": "*" means "this key": a key policy cannot name other keys.
        this_key = "*"
        snapshots = []
        if args.snapshot_index_condition is not None:
            # A snapshot backup reads its dedup base's index, and the pruner every index: both
            # decrypt directly, but only what carries a snapshot index's encryption context
            # (never a database dump, a code or config body, or a content object).
            snapshots.append(statement(
                "BackupWriterDecryptsSnapshotIndexes", ["kms:Decrypt"], this_key,
                principal={"AWS": args.writer_role_arn},
                condition=args.snapshot_index_condition))
            if args.pruner_role_arn is not None:
                snapshots += [
                    statement("PrunerDecryptsSnapshotIndexes", ["kms:Decrypt"], this_key,
                              principal={"AWS": args.pruner_role_arn},
                              condition=args.snapshot_index_condition),
                    statement("PrunerDescribesKey", ["kms:DescribeKey"], this_key,
                              principal={"AWS": args.pruner_role_arn})]
        policy = document(
            statement("AccountAdministersKeyWithoutUsingIt", ADMIN_ACTIONS, this_key,
                      principal={"AWS": root}),
            *snapshots,
            # The backup writer encrypts: GenerateDataKey for the job's envelope encryption and
            # for S3 SSE-KMS on PutObject, Encrypt for wrapping a data key. S3 also needs
            # kms:Decrypt for a multipart upload under SSE-KMS (it decrypts the data key to
            # encrypt each part), so the writer may Decrypt, but only through S3.
            statement("BackupWriterEncrypts", ["kms:Encrypt", "kms:GenerateDataKey"], this_key,
                      principal={"AWS": args.writer_role_arn}),
            statement("BackupWriterMultipartThroughS3", ["kms:Decrypt"], this_key,
                      principal={"AWS": args.writer_role_arn},
                      condition={"StringEquals": {
                          "kms:ViaService": f"s3.{args.region}.amazonaws.com"}}),
            # Restores decrypt the envelope's data key directly (client-side) and S3 objects.
            statement("RestoreReaderDecrypts", ["kms:Decrypt", "kms:DescribeKey"], this_key,
                      principal={"AWS": args.reader_role_arn}),
            # The monitor reads manifests, which S3 stores under SSE-KMS: Decrypt through S3 only.
            statement("MonitorReadsManifestsThroughS3", ["kms:Decrypt"], this_key,
                      principal={"AWS": args.monitor_role_arn},
                      condition={"StringEquals": {
                          "kms:ViaService": f"s3.{args.region}.amazonaws.com"}}),
            # Principals of this account that IAM allows may use the key only through these
            # services, never directly.
            statement("AccountUsesKeyThroughServices", SERVICE_CRYPTO_ACTIONS, this_key,
                      principal={"AWS": root},
                      condition={"StringEquals": {"kms:ViaService": via,
                                                  "kms:CallerAccount": args.account_id}}),
            # CloudWatch Logs encrypts the job's log groups; the encryption context pins it to
            # log groups of this account and region.
            statement("CloudWatchLogsEncryptsLogGroups", LOGS_CRYPTO_ACTIONS, this_key,
                      principal={"Service": f"logs.{args.region}.amazonaws.com"},
                      condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                             f"arn:{PARTITION}:logs:{args.region}:{args.account_id}"
                                             ":log-group:*"}}),
            # AWS's documented statement for alarms to a CMK-encrypted topic (see above).
            statement("CloudWatchAlarmsPublishToEncryptedTopic", CLOUDWATCH_ALARMS_ACTIONS,
                      this_key, principal={"Service": [CLOUDWATCH_ALARMS_SERVICE]}),
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            # Rotation keeps old key material for decryption, so old backups stay readable;
            # the period is the strategy's (AWS's default of a year is longer than allowed).
            enable_key_rotation=True,
            rotation_period_in_days=args.rotation_days,
            # The lockout check stays on: AWS rejects a policy that would lock out its caller.
            bypass_policy_lockout_safety_check=False,
            policy=policy,
            tags=dict(args.tags),
            # Deleting the key makes every backup unreadable: Pulumi must refuse to do it.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        # The alias is what people and runbooks use; the key id never needs to be copied around.
        self.alias = aws.kms.Alias(f"{name}-alias", name=args.alias,
                                   target_key_id=self.key.key_id, opts=child)
        self.key_id = self.key.key_id
        self.arn = self.key.arn
        self.alias_name = self.alias.name
        self.register_outputs({"key_id": self.key_id, "arn": self.arn,
                               "alias_name": self.alias_name})
