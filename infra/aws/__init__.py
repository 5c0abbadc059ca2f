"""AWS primary store: KMS key, S3 bucket (+ access-log bucket), lifecycle, IAM roles.

``build(cfg)`` declares it all and returns :class:`AwsPrimary`, which the other clouds (for
workload identity federation of the writer role) and the runtime (to attach Lambdas to the
roles) take as their input.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.aws.access import JobPermissions, JobPermissionsArgs, JobRoles, JobRolesArgs
from infra.aws.keys import BackupKey, BackupKeyArgs
from infra.aws.policies import bucket_arn
from infra.aws.pruner import (
    PrunerPermissions,
    PrunerPermissionsArgs,
    PrunerRole,
    PrunerRoleArgs,
    snapshot_index_context,
)
from infra.aws.storage import (
    AccessLogBucket,
    AccessLogBucketArgs,
    BackupBucket,
    BackupBucketArgs,
)
from infra.config import StackConfig

__all__ = ["AwsPrimary", "build", "names"]


@dataclass(frozen=True)
class Names:
    """Physical names, fixed so that runbooks, other clouds' trust settings and alarms can be
    written before the first deploy. Bucket names are global, so they carry the account id."""

    bucket: str
    log_bucket: str
    key_alias: str
    writer_role: str
    reader_role: str
    monitor_role: str
    pruner_role: str


def names(cfg: StackConfig) -> Names:
    account = cfg.aws.account_id
    return Names(
        bucket=f"{cfg.name('backups')}-{account}",
        log_bucket=f"{cfg.name('access-logs')}-{account}",
        key_alias=f"alias/{cfg.name('backups')}",
        writer_role=cfg.name("backup-writer"),
        reader_role=cfg.name("restore-reader"),
        monitor_role=cfg.name("monitor"),
        pruner_role=cfg.name("pruner"),
    )


@dataclass(frozen=True)
class AwsPrimary:
    key: BackupKey
    bucket: BackupBucket
    log_bucket: AccessLogBucket
    roles: JobRoles
    permissions: JobPermissions
    names: Names
    # The snapshot pruner (infra/aws/pruner.py): only when the stack has snapshot sources.
    pruner: PrunerRole | None = None

    @property
    def bucket_name(self) -> pulumi.Output[str]:
        return self.bucket.bucket_name

    @property
    def key_arn(self) -> pulumi.Output[str]:
        return self.key.arn

    @property
    def writer_role_arn(self) -> pulumi.Output[str]:
        return self.roles.writer_arn

    @property
    def reader_role_arn(self) -> pulumi.Output[str]:
        return self.roles.reader_arn

    @property
    def monitor_role_arn(self) -> pulumi.Output[str]:
        return self.roles.monitor_arn

    @property
    def pruner_role_arn(self) -> pulumi.Output[str] | None:
        return self.pruner.arn if self.pruner is not None else None


def build(cfg: StackConfig) -> AwsPrimary:
    """Declare the AWS primary store for this stack. Every number comes from ``cfg``."""
    n = names(cfg)
    tags = dict(cfg.tags)
    imm = cfg.immutability
    # Roles first: the key policy names them, and KMS rejects a policy naming an unknown role.
    roles = JobRoles(cfg.name("roles"), JobRolesArgs(
        account_id=cfg.aws.account_id, writer_role_name=n.writer_role,
        reader_role_name=n.reader_role, monitor_role_name=n.monitor_role, tags=tags))
    snapshots = cfg.snapshot_roots()
    pruner = PrunerRole(cfg.name("pruner"), PrunerRoleArgs(
        account_id=cfg.aws.account_id, role_name=n.pruner_role, tags=tags)) if snapshots else None
    index_condition = snapshot_index_context(cfg.environment, [r.source for r in snapshots]) \
        if snapshots else None
    key = BackupKey(cfg.name("backup-key"), BackupKeyArgs(
        account_id=cfg.aws.account_id, region=cfg.aws.region, alias=n.key_alias,
        description=f"vo2dr {cfg.environment} backups: S3 SSE-KMS and the job's envelope key",
        writer_role_arn=roles.writer_arn, reader_role_arn=roles.reader_arn,
        monitor_role_arn=roles.monitor_arn, rotation_days=cfg.keys.rotation_days, tags=tags,
        snapshot_index_condition=index_condition,
        pruner_role_arn=pruner.arn if pruner else None))
    log_bucket = AccessLogBucket(cfg.name("access-logs"), AccessLogBucketArgs(
        bucket_name=n.log_bucket, account_id=cfg.aws.account_id,
        source_bucket_arns=[bucket_arn(n.bucket)],
        expire_days=cfg.monitoring.log_retention_days,
        noncurrent_version_days=imm.noncurrent_version_days,
        abort_incomplete_upload_days=imm.abort_incomplete_upload_days, tags=tags))
    bucket = BackupBucket(cfg.name("backups"), BackupBucketArgs(
        bucket_name=n.bucket, key_arn=key.arn, object_lock_mode=imm.s3_mode,
        object_lock_days=imm.lock_days, status_prefix=cfg.status_prefix, lifecycle=cfg.lifecycle,
        noncurrent_version_days=imm.noncurrent_version_days,
        abort_incomplete_upload_days=imm.abort_incomplete_upload_days,
        log_bucket_name=log_bucket.bucket_name, log_prefix=f"{n.bucket}/", tags=tags,
        reports_prefix=cfg.reports_prefix, reports_expire_days=cfg.reports_expire_days,
        content_lifecycle=cfg.content_lifecycle(),
        prune_prefixes={r.source: r.prune_prefix for r in cfg.snapshot_roots()},
        prune_expire_days=cfg.retention.daily_days,
        # Everything the writer creates is write-once, for every principal: the tiers of
        # each source, and snapshot content (never a snapshot root's prune/ plans).
        write_once_prefixes=cfg.writer_prefixes() or (cfg.prefix(),
                                                       *cfg.application_prefixes())))
    permissions = JobPermissions(cfg.name("permissions"), JobPermissionsArgs(
        roles=roles, bucket_arn=bucket.arn, key_arn=key.arn, prefix=cfg.prefix(),
        region=cfg.aws.region, entra_federation=cfg.azure.enabled,
        extra_prefixes=cfg.application_prefixes(), writer_prefixes=cfg.writer_prefixes(),
        content_prefixes=tuple(r.content_prefix for r in cfg.snapshot_roots()),
        reports_prefix=cfg.reports_prefix,
        attempt_records_prefix=cfg.reports_writes("attempts"),
        drill_records_prefix=cfg.reports_writes("drills")))
    if pruner is not None:
        PrunerPermissions(cfg.name("pruner-permissions"), PrunerPermissionsArgs(
            role=pruner, bucket_arn=bucket.arn, key_arn=key.arn, region=cfg.aws.region,
            environment=cfg.environment, roots=snapshots, entra_federation=cfg.azure.enabled))
    return AwsPrimary(key=key, bucket=bucket, log_bucket=log_bucket, roles=roles,
                      permissions=permissions, names=n, pruner=pruner)
