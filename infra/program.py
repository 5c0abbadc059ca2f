"""The vo2max-dr program: read the stack's strategy once, declare each enabled cloud's store,
the runtime that runs the job on schedule, and export what an operator needs. Pulumi runs it
through the project root's ``__main__.py`` (see there for why the entry is at the root)."""

import pulumi

import infra.aws
import infra.aws.dashboard
import infra.azure
import infra.gcp
import infra.runtime
from infra.config import load


def main() -> None:
    """Declare the stack's resources and outputs."""
    cfg = load()
    pulumi.export("environment", cfg.environment)

    aws = infra.aws.build(cfg)
    pulumi.export("awsBucketName", aws.bucket_name)
    pulumi.export("awsAccessLogBucketName", aws.log_bucket.bucket_name)
    pulumi.export("awsKmsKeyArn", aws.key_arn)
    pulumi.export("awsKmsKeyAlias", aws.key.alias_name)
    pulumi.export("awsBackupWriterRoleArn", aws.writer_role_arn)
    pulumi.export("awsRestoreReaderRoleArn", aws.reader_role_arn)
    pulumi.export("awsMonitorRoleArn", aws.monitor_role_arn)
    if aws.pruner_role_arn is not None:
        pulumi.export("awsPrunerRoleArn", aws.pruner_role_arn)

    # Secondary and tertiary stores, declared only where the stack enables them. Both trust the
    # AWS job roles through keyless federation (docs/cross-cloud-identity.md): the backup writer
    # role as their writer identity, the monitor (status) and restore reader (drill) roles as their
    # reader identity.
    readers = {"monitor": aws.monitor_role_arn, "restore-reader": aws.reader_role_arn}
    gcp = infra.gcp.build(cfg, aws.writer_role_arn, readers,
                          aws_pruner_role_arn=aws.pruner_role_arn) if cfg.gcp.enabled else None
    if gcp is not None:
        pulumi.export("gcsBucketName", gcp.bucket_name)
        pulumi.export("gcsKmsKeyId", gcp.key.key_id)
        pulumi.export("gcsWriterServiceAccount", gcp.writer_email)
        pulumi.export("gcsReaderServiceAccount", gcp.reader_email)
        pulumi.export("gcsWorkloadIdentityAudience", gcp.workload_identity_audience)
        pulumi.export("gcsCredentialConfig", gcp.credential_config)
        pulumi.export("gcsReaderCredentialConfig", gcp.reader_credential_config)
    azure = infra.azure.build(cfg, aws.writer_role_arn, readers,
                              aws_pruner_role_arn=aws.pruner_role_arn) \
        if cfg.azure.enabled else None
    if azure is not None:
        pulumi.export("azureContainerUrl", azure.container_url)
        pulumi.export("azureStorageAccount", azure.store.account_name)
        pulumi.export("azureTenantId", cfg.azure.tenant_id)
        pulumi.export("azureWriterClientId", azure.writer_client_id)
        pulumi.export("azureReaderClientId", azure.reader_client_id)
        pulumi.export("azureKeyVaultUri", azure.key.vault_uri)
        # "Locked" in production (ImmutabilityPolicyLock locks it during `pulumi up`), else
        # "Unlocked".
        pulumi.export("azureImmutabilityState", azure.store.immutability_state)

    # The job as infrastructure: Lambda + schedules + alarms on AWS, the Cloud Run standby on GCP.
    runtime = infra.runtime.build(cfg, aws, gcp, azure)
    # The operators' dashboard over the job's metrics, drawn against the same strategy.
    dashboard = infra.aws.dashboard.build(cfg, runtime)
    pulumi.export("dashboardName", dashboard.dashboard_name)
