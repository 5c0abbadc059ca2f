"""Azure Blob tertiary store: Key Vault key, storage account, container, identities.

``build(cfg, aws_writer_role_arn, aws_reader_role_arns)`` declares it all and returns
:class:`AzureTertiary`. The AWS backup writer role signs in to Entra ID as the writer identity,
and the AWS monitor and restore reader roles as the reader identity, each with a federated
credential, never a secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_azure_native import authorization, resources

from infra.azure.access import ContainerAccess, ContainerAccessArgs, stable_guid
from infra.azure.keys import StorageKey, StorageKeyArgs
from infra.azure.pruner import PrunerIdentity, PrunerIdentityArgs
from infra.azure.storage import BlobStore, BlobStoreArgs
from infra.config import StackConfig

__all__ = ["AzureTertiary", "build", "names"]


@dataclass(frozen=True)
class Names:
    """Physical names. Storage account (3-24 lowercase letters and digits) and vault (3-24)
    names are global, so both carry a short hash of the tenant and environment."""

    resource_group: str
    storage_account: str
    container: str
    vault: str
    key: str
    cmk_identity: str
    writer_identity: str
    reader_identity: str
    writer_role: str
    pruner_identity: str
    pruner_delete_role: str


def names(cfg: StackConfig) -> Names:
    digest = hashlib.sha256(f"{cfg.azure.tenant_id}/{cfg.project}/{cfg.environment}".encode())
    suffix = digest.hexdigest()[:8]
    return Names(
        resource_group=cfg.name("backups"),
        storage_account=f"vo2dr{cfg.environment}{suffix}"[:24],
        container="backups",
        vault=f"vo2dr-{cfg.environment}-{suffix[:6]}"[:24],
        key="blob-cmk",
        cmk_identity=cfg.name("blob-cmk"),
        writer_identity=cfg.name("blob-writer"),
        reader_identity=cfg.name("blob-reader"),
        writer_role=f"vo2dr {cfg.environment} backup blob writer",
        pruner_identity=cfg.name("blob-pruner"),
        pruner_delete_role=f"vo2dr {cfg.environment} snapshot content delete",
    )


@dataclass(frozen=True)
class AzureTertiary:
    resource_group: resources.ResourceGroup
    key: StorageKey
    store: BlobStore
    access: ContainerAccess
    names: Names
    # The snapshot pruner's identity (only with snapshot sources).
    pruner: PrunerIdentity | None = None

    @property
    def container_url(self) -> pulumi.Output[str]:
        return self.store.container_url

    @property
    def writer_client_id(self) -> pulumi.Output[str]:
        return self.access.writer_client_id

    @property
    def reader_client_id(self) -> pulumi.Output[str]:
        return self.access.reader_client_id

    @property
    def pruner_client_id(self) -> pulumi.Output[str] | None:
        return self.pruner.client_id if self.pruner is not None else None


def build(cfg: StackConfig, aws_writer_role_arn: pulumi.Input[str],
          aws_reader_role_arns: Mapping[str, pulumi.Input[str]] | None = None,
          aws_token_issuer: pulumi.Input[str] | None = None,
          aws_pruner_role_arn: pulumi.Input[str] | None = None) -> AzureTertiary:
    """Declare the Azure tertiary store. Every number comes from ``cfg``.

    ``aws_token_issuer`` is the AWS account's outbound identity federation issuer URL; when not
    given it is read from AWS (the feature must have been enabled once, see
    docs/cross-cloud-identity.md)."""
    if cfg.keys is None:  # parse() always sets it; a hand-built config may not
        raise ValueError("cfg.keys is missing: build the config with infra.config.parse")
    n = names(cfg)
    tags = dict(cfg.tags)
    imm = cfg.immutability
    if aws_token_issuer is None:
        aws_token_issuer = aws.iam.get_outbound_web_identity_federation_output().issuer_identifier
    subscription_id = authorization.get_client_config_output().subscription_id
    # The resource group holds every Azure resource of the store; deleting the stack's
    # resources never touches anything else in the subscription.
    group = resources.ResourceGroup(cfg.name("azure-rg"), resource_group_name=n.resource_group,
                                    location=cfg.azure.location, tags=tags)
    key = StorageKey(cfg.name("azure-key"), StorageKeyArgs(
        resource_group_name=group.name, location=cfg.azure.location,
        tenant_id=cfg.azure.tenant_id, subscription_id=subscription_id, vault_name=n.vault,
        key_name=n.key, cmk_identity_name=n.cmk_identity,
        soft_delete_days=imm.soft_delete_days, rotation_days=cfg.keys.rotation_days,
        expiry_days=cfg.keys.expiry_days, protect=cfg.is_production, tags=tags,
        live_check_group=n.resource_group))
    store = BlobStore(cfg.name("azure-blob"), BlobStoreArgs(
        resource_group_name=group.name, location=cfg.azure.location,
        account_name=n.storage_account, container_name=n.container,
        vault_uri=key.vault_uri, key_name=key.key_name, cmk_identity_id=key.cmk_identity_id,
        lifecycle=cfg.lifecycle, immutability_days=imm.lock_days,
        soft_delete_days=imm.soft_delete_days,
        noncurrent_version_days=imm.noncurrent_version_days,
        production=imm.locked, tags=tags, depends_on=[key.ready],
        intraday_days=cfg.retention.intraday_days, reports_prefix=cfg.reports_prefix,
        reports_expire_days=cfg.reports_expire_days,
        content_lifecycle=cfg.content_lifecycle(),
        prune_prefixes={r.source: r.prune_prefix for r in cfg.snapshot_roots()},
        prune_expire_days=cfg.retention.daily_days))
    access = ContainerAccess(cfg.name("azure-access"), ContainerAccessArgs(
        resource_group_id=group.id, resource_group_name=group.name,
        location=cfg.azure.location, subscription_id=subscription_id,
        container_id=store.container_id, intraday_container_id=store.intraday_container_id,
        writer_identity_name=n.writer_identity,
        reader_identity_name=n.reader_identity, role_name=n.writer_role,
        role_definition_guid=stable_guid(cfg.project, cfg.stack, "blob-writer-role"),
        aws_token_issuer=aws_token_issuer, aws_writer_role_arn=aws_writer_role_arn,
        aws_reader_role_arns=dict(aws_reader_role_arns or {}), tags=tags,
        drill_records_prefix=cfg.reports_writes("drills")))
    snapshots = cfg.snapshot_roots()
    pruner = PrunerIdentity(cfg.name("azure-pruner"), PrunerIdentityArgs(
        resource_group_id=group.id, resource_group_name=group.name,
        location=cfg.azure.location, subscription_id=subscription_id,
        container_id=store.container_id, intraday_container_id=store.intraday_container_id,
        identity_name=n.pruner_identity, delete_role_name=n.pruner_delete_role,
        delete_role_guid=stable_guid(cfg.project, cfg.stack, "blob-content-delete-role"),
        writer_role_id=access.writer_role.id, roots=snapshots,
        aws_token_issuer=aws_token_issuer, aws_pruner_role_arn=aws_pruner_role_arn,
        tags=tags)) if snapshots and aws_pruner_role_arn is not None else None
    return AzureTertiary(resource_group=group, key=key, store=store, access=access, names=n,
                         pruner=pruner)
