"""GCS secondary store: Cloud KMS, bucket, lifecycle, service accounts, workload identity.

``build(cfg, aws_writer_role_arn, aws_reader_role_arns)`` declares it all and returns
:class:`GcpSecondary`. The AWS backup writer role reaches the bucket as the writer service
account, and the AWS monitor and restore reader roles as the reader service account, all
through workload identity federation, never a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.gcp.access import AwsFederation, AwsFederationArgs, BucketAccess, BucketAccessArgs
from infra.gcp.keys import BucketKey, BucketKeyArgs
from infra.gcp.labels import gcp_labels
from infra.gcp.pruner import PrunerAccess, PrunerAccessArgs
from infra.gcp.storage import BackupBucket, BackupBucketArgs

__all__ = ["GcpSecondary", "build", "names"]


@dataclass(frozen=True)
class Names:
    """Physical names, fixed before the first deploy. Bucket names are global, so the bucket
    carries the project number; service account ids are at most 30 characters."""

    bucket: str
    key_ring: str
    key: str
    writer_account_id: str
    reader_account_id: str
    creator_role_id: str
    pool_id: str
    provider_id: str
    pruner_account_id: str
    pruner_delete_role_id: str


def names(cfg: StackConfig) -> Names:
    return Names(
        bucket=f"{cfg.name('backups')}-{cfg.gcp.project_number}",
        key_ring=cfg.name("keys"),
        key="backups",
        writer_account_id=cfg.name("gcs-writer"),
        reader_account_id=cfg.name("gcs-reader"),
        creator_role_id=cfg.name("gcs-creator").replace("-", "_"),
        # Deleted pools are kept (soft-deleted) for 30 days and their ids cannot be reused
        # meanwhile, so the id is stable per environment.
        pool_id=cfg.name("aws"),
        provider_id=f"aws-{cfg.aws.account_id}",
        pruner_account_id=cfg.name("gcs-pruner"),
        pruner_delete_role_id=cfg.name("gcs-content-delete").replace("-", "_"),
    )


@dataclass(frozen=True)
class GcpSecondary:
    key: BucketKey
    bucket: BackupBucket
    access: BucketAccess
    federation: AwsFederation
    names: Names
    # What every GCS writer (backup Lambda, standby job) sets so each upload is retained.
    retention_env: Mapping[str, str]
    # The snapshot pruner's service account (only with snapshot sources).
    pruner: PrunerAccess | None = None

    @property
    def bucket_name(self) -> pulumi.Output[str]:
        return self.bucket.bucket_name

    @property
    def writer_email(self) -> pulumi.Output[str]:
        return self.access.writer_email

    @property
    def reader_email(self) -> pulumi.Output[str]:
        return self.access.reader_email

    @property
    def pruner_credential_config(self) -> pulumi.Output[str] | None:
        """The same for the pruner Lambda (AWS pruner role), acting as the pruner service
        account; None without snapshot sources."""
        return self.federation.pruner_credential_config

    @property
    def workload_identity_audience(self) -> pulumi.Output[str]:
        return self.federation.audience

    @property
    def credential_config(self) -> pulumi.Output[str]:
        """External-account JSON for google-auth in the AWS backup Lambda, acting as the
        writer service account (no secret inside)."""
        return self.federation.credential_config

    @property
    def reader_credential_config(self) -> pulumi.Output[str] | None:
        """The same for the status and drill Lambdas (monitor and restore reader roles),
        acting as the reader service account."""
        return self.federation.reader_credential_config


def build(cfg: StackConfig, aws_writer_role_arn: pulumi.Input[str],
          aws_reader_role_arns: Mapping[str, pulumi.Input[str]] | None = None,
          aws_pruner_role_arn: pulumi.Input[str] | None = None) -> GcpSecondary:
    """Declare the GCS secondary store. Every number comes from ``cfg``.

    ``aws_reader_role_arns`` (key -> role ARN, e.g. ``{"monitor": ..., "restore-reader":
    ...}``) are the AWS roles that may act as the reader service account."""
    if cfg.keys is None:  # parse() always sets it; a hand-built config may not
        raise ValueError("cfg.keys is missing: build the config with infra.config.parse")
    n = names(cfg)
    labels = gcp_labels(cfg.tags)
    project = cfg.gcp.project
    # Asking GCS for its service agent also creates the agent if the project never used GCS,
    # so the KMS grant below cannot fail on a not-yet-existing member.
    agent = gcp.storage.get_project_service_account_output(project=project)
    key = BucketKey(cfg.name("gcs-key"), BucketKeyArgs(
        project=project, location=cfg.gcp.location.lower(), key_ring_name=n.key_ring,
        key_name=n.key, rotation_days=cfg.keys.rotation_days,
        storage_agent_member=agent.member, protect=cfg.is_production, labels=labels))
    bucket = BackupBucket(cfg.name("gcs-backups"), BackupBucketArgs(
        project=project, bucket_name=n.bucket, location=cfg.gcp.location,
        kms_key_id=key.key_id, lifecycle=cfg.lifecycle,
        retention_locked=cfg.immutability.locked,
        noncurrent_version_days=cfg.immutability.noncurrent_version_days,
        soft_delete_days=cfg.immutability.soft_delete_days,
        abort_incomplete_upload_days=cfg.immutability.abort_incomplete_upload_days,
        labels=labels, depends_on=[key.ready], reports_prefix=cfg.reports_prefix,
        reports_expire_days=cfg.reports_expire_days,
        content_lifecycle=cfg.content_lifecycle(),
        prune_prefixes=[r.prune_prefix for r in cfg.snapshot_roots()],
        prune_expire_days=cfg.retention.daily_days))
    access = BucketAccess(cfg.name("gcs-access"), BucketAccessArgs(
        project=project, bucket_name=bucket.bucket_name,
        writer_account_id=n.writer_account_id, reader_account_id=n.reader_account_id,
        creator_role_id=n.creator_role_id, environment=cfg.environment,
        drill_records_prefix=cfg.reports_writes("drills")))
    snapshots = cfg.snapshot_roots()
    pruner = PrunerAccess(cfg.name("gcs-pruner"), PrunerAccessArgs(
        project=project, bucket_name=bucket.bucket_name, account_id=n.pruner_account_id,
        delete_role_id=n.pruner_delete_role_id, creator_role=access.creator_role_name,
        roots=snapshots, environment=cfg.environment)) \
        if snapshots and aws_pruner_role_arn is not None else None
    federation = AwsFederation(cfg.name("gcs-federation"), AwsFederationArgs(
        project=project, project_number=cfg.gcp.project_number, pool_id=n.pool_id,
        provider_id=n.provider_id, aws_account_id=cfg.aws.account_id,
        aws_writer_role_arn=aws_writer_role_arn,
        writer_service_account=access.writer.name, writer_email=access.writer_email,
        environment=cfg.environment, aws_reader_role_arns=dict(aws_reader_role_arns or {}),
        reader_service_account=access.reader.name, reader_email=access.reader_email,
        aws_pruner_role_arn=aws_pruner_role_arn if pruner else None,
        pruner_service_account=pruner.name if pruner else None,
        pruner_email=pruner.email if pruner else None))
    return GcpSecondary(key=key, bucket=bucket, access=access, federation=federation, names=n,
                        retention_env=cfg.immutability.gcs_retention_env(), pruner=pruner)
