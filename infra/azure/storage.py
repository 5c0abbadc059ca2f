"""The Azure Blob tertiary store: a StorageV2 account encrypted with the vault key, a private
container under time-based immutability, and lifecycle tiering per GFS prefix from the same
plan (``cfg.lifecycle``) that tiers S3 and GCS.

The intraday tier has a container of its own, ``<container>-intraday``, whose immutability
policy is the intraday window (locked in production like the main one), because an Azure
policy locks every blob of its container. S3 and GCS let each object carry its own shorter
lock; Azure's per-blob (version-level) policy would need the writer to hold
``blobs/immutableStorage/runAsSuperUser/action``, which also deletes unlocked policies and
extends any: with a container per lock, the writer stays create-only (vo2dr.stores.azure_blob
routes the keys)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, storage
from vo2dr.layout import INTRADAY, intraday_container

from infra.azure.immutability_lock import ImmutabilityPolicyLock
from infra.config_storage import INTRADAY_NONCURRENT_DAYS, ContentLifecycle, TierLifecycle

# Lifecycle action per Azure class name of the plan (config.STORAGE_CLASSES["azure"]).
_TIER_ACTION = {"Cool": "tier_to_cool", "Cold": "tier_to_cold", "Archive": "tier_to_archive"}


def management_rules(container: str, plan: Sequence[TierLifecycle],
                     noncurrent_version_days: int) -> list[storage.ManagementPolicyRuleArgs]:
    """One rule per tier prefix: tier at the plan's days, delete at its expiry, and delete
    previous versions after noncurrentVersionDays. Azure prefixes start with the container;
    the intraday prefix is in the intraday container, and its versions (their lock over with
    the window) go the day after it, like S3's and GCS's."""
    rules = []
    for tier in plan:
        intraday = tier.tier == INTRADAY
        base: dict[str, storage.DateAfterModificationArgs] = {
            _TIER_ACTION[step.storage_class]: storage.DateAfterModificationArgs(
                days_after_creation_greater_than=step.days)
            for step in tier.transitions["azure"]
        }
        base["delete"] = storage.DateAfterModificationArgs(
            days_after_creation_greater_than=tier.expire_days)
        # A version's age counts from the write that created it.
        version_days = (tier.expire_days + INTRADAY_NONCURRENT_DAYS if intraday
                        else noncurrent_version_days)
        holder = intraday_container(container) if intraday else container
        rules.append(storage.ManagementPolicyRuleArgs(
            name=tier.rule_id, type="Lifecycle", enabled=True,
            definition=storage.ManagementPolicyDefinitionArgs(
                filters=storage.ManagementPolicyFilterArgs(
                    blob_types=["blockBlob"], prefix_match=[f"{holder}/{tier.prefix}"]),
                actions=storage.ManagementPolicyActionArgs(
                    base_blob=storage.ManagementPolicyBaseBlobArgs(**base),
                    version=storage.ManagementPolicyVersionArgs(
                        delete=storage.DateAfterCreationArgs(
                            days_after_creation_greater_than=version_days))))))
    return rules


def reports_rule(container: str, prefix: str, expire_days: int,
                 noncurrent_version_days: int) -> storage.ManagementPolicyRuleArgs:
    """The job's report records (``reports/<env>/`` in the main container, under its
    immutability policy): deleted once as old as the yearly tier, never moved to a colder tier
    (a few KB each, and ``vo2dr report`` reads them all; Archive would need a rehydration)."""
    return _delete_rule("report-records", f"{container}/{prefix}", expire_days,
                        noncurrent_version_days)


def _delete_rule(name: str, prefix_match: str, expire_days: int,
                 noncurrent_version_days: int) -> storage.ManagementPolicyRuleArgs:
    """Block blobs under ``prefix_match`` (``<container>/<blob prefix>``) are deleted
    ``expire_days`` after creation, their previous versions ``noncurrent_version_days`` after
    theirs; no tier change."""
    return storage.ManagementPolicyRuleArgs(
        name=name, type="Lifecycle", enabled=True,
        definition=storage.ManagementPolicyDefinitionArgs(
            filters=storage.ManagementPolicyFilterArgs(
                blob_types=["blockBlob"], prefix_match=[prefix_match]),
            actions=storage.ManagementPolicyActionArgs(
                base_blob=storage.ManagementPolicyBaseBlobArgs(
                    delete=storage.DateAfterModificationArgs(
                        days_after_creation_greater_than=expire_days)),
                version=storage.ManagementPolicyVersionArgs(
                    delete=storage.DateAfterCreationArgs(
                        days_after_creation_greater_than=noncurrent_version_days)))))


def snapshot_management_rules(container: str, content: Sequence[ContentLifecycle],
                              prune_prefixes: Mapping[str, str], prune_expire_days: int,
                              noncurrent_version_days: int
                              ) -> list[storage.ManagementPolicyRuleArgs]:
    """A snapshot source's content pool (always in the main container: content is never
    intraday) only changes tier, to Cool and Cold (read like Hot; Archive needs rehydration):
    no base-blob delete at any age. A blob the pruner deletes (unreferenced, its lock over)
    becomes a previous version, removed after noncurrentVersionDays like the tiers'. The
    pruner's plans are deleted like daily backups."""
    version = storage.ManagementPolicyVersionArgs(delete=storage.DateAfterCreationArgs(
        days_after_creation_greater_than=noncurrent_version_days))
    rules = [storage.ManagementPolicyRuleArgs(
        name=pool.rule_id, type="Lifecycle", enabled=True,
        definition=storage.ManagementPolicyDefinitionArgs(
            filters=storage.ManagementPolicyFilterArgs(
                blob_types=["blockBlob"], prefix_match=[f"{container}/{pool.prefix}"]),
            actions=storage.ManagementPolicyActionArgs(
                base_blob=storage.ManagementPolicyBaseBlobArgs(**{
                    _TIER_ACTION[step.storage_class]: storage.DateAfterModificationArgs(
                        days_after_creation_greater_than=step.days)
                    for step in pool.transitions["azure"]}),
                version=version)))
        for pool in content]
    rules.extend(_delete_rule(f"prune-{source}", f"{container}/{prefix}", prune_expire_days,
                              noncurrent_version_days)
                 for source, prefix in sorted(prune_prefixes.items()))
    return rules


@dataclass
class BlobStoreArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    account_name: str
    container_name: str
    vault_uri: pulumi.Input[str]
    key_name: pulumi.Input[str]
    cmk_identity_id: pulumi.Input[str]
    lifecycle: Sequence[TierLifecycle]
    immutability_days: int
    soft_delete_days: int
    noncurrent_version_days: int
    production: bool
    tags: dict[str, str] = field(default_factory=dict)
    # The intraday window in days: the lock of the intraday container (0: no such tier).
    intraday_days: int = 0
    # The CMK identity's key grant: the account cannot be created with the key before it.
    depends_on: Sequence[pulumi.Resource] = ()
    # The report records (reports/<env>/) and their expiry (the yearly tier's days).
    reports_prefix: str = ""
    reports_expire_days: int = 0
    # Snapshot sources: content pools (tiering only) and the pruner's plan prefixes.
    content_lifecycle: Sequence[ContentLifecycle] = ()
    prune_prefixes: Mapping[str, str] = field(default_factory=dict)  # source -> <root>prune/
    prune_expire_days: int = 0


class BlobStore(pulumi.ComponentResource):
    account_name: pulumi.Output[str]
    container_id: pulumi.Output[str]
    container_url: pulumi.Output[str]
    intraday_container_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: BlobStoreArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:azure:BlobStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=args.production)
        self.account = storage.StorageAccount(
            f"{name}-account", account_name=args.account_name,
            resource_group_name=args.resource_group_name, location=args.location,
            kind="StorageV2",
            # Geo-redundant, and one of the redundancies (LRS/GRS/RA-GRS) that allow the
            # Archive tier the lifecycle uses.
            sku=storage.SkuArgs(name="Standard_GRS"),
            access_tier="Hot",
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            # The job signs in with Entra ID (workload identity federation), so account keys
            # and SAS tokens signed with them are switched off entirely.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            identity=storage.IdentityArgs(type="UserAssigned",
                                          user_assigned_identities=[args.cmk_identity_id]),
            encryption=storage.EncryptionArgs(
                key_source="Microsoft.Keyvault",
                key_vault_properties=storage.KeyVaultPropertiesArgs(
                    key_vault_uri=args.vault_uri, key_name=args.key_name),
                encryption_identity=storage.EncryptionIdentityArgs(
                    encryption_user_assigned_identity=args.cmk_identity_id),
                # A second, platform-managed layer of AES-256 below the CMK layer. It can only
                # be chosen when the account is created.
                require_infrastructure_encryption=True,
                services=storage.EncryptionServicesArgs(
                    blob=storage.EncryptionServiceArgs(enabled=True, key_type="Account"),
                    file=storage.EncryptionServiceArgs(enabled=True, key_type="Account"))),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.production,
                                        depends_on=list(args.depends_on)))
        self.blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service", account_name=self.account.name,
            resource_group_name=args.resource_group_name, blob_services_name="default",
            # Version-level immutability needs versioning; it also keeps every overwritten
            # or deleted blob as a previous version.
            is_versioning_enabled=True,
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days, allow_permanent_delete=False),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days),
            opts=child)
        self.container = storage.BlobContainer(
            f"{name}-container", account_name=self.account.name,
            resource_group_name=args.resource_group_name, container_name=args.container_name,
            public_access="None",
            # Version-level WORM support on the container, so its immutability policy below
            # protects each blob version, which works together with versioning.
            immutable_storage_with_versioning=storage.ImmutableStorageWithVersioningArgs(
                enabled=True),
            opts=pulumi.ResourceOptions(parent=self, protect=args.production,
                                        depends_on=[self.blob_service]))
        # The container's default time-based retention: no blob version can be modified or
        # deleted until it is immutabilityDays old.
        #
        # Locking: Azure always creates an immutability policy *unlocked*; locking is a separate,
        # irreversible POST .../immutabilityPolicies/default/lock with the policy's ETag.
        # pulumi-azure-native has ``state`` as an output only, and the account-level policy,
        # which has a ``state`` input, refuses to be created Locked. So production declares the
        # lock itself: ImmutabilityPolicyLock (infra/azure/immutability_lock.py), a dynamic
        # resource that makes that call during ``pulumi up`` once the policy exists. Staging
        # stays unlocked on purpose so it can be torn down.
        self.immutability = storage.BlobContainerImmutabilityPolicy(
            f"{name}-immutability", account_name=self.account.name,
            resource_group_name=args.resource_group_name,
            container_name=self.container.name, immutability_policy_name="default",
            immutability_period_since_creation_in_days=args.immutability_days,
            # Block blobs only: no appends to protected blobs.
            allow_protected_append_writes=False, allow_protected_append_writes_all=False,
            opts=protected)
        self.management_policy = storage.ManagementPolicy(
            f"{name}-lifecycle", account_name=self.account.name,
            resource_group_name=args.resource_group_name, management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(rules=[
                *management_rules(args.container_name, args.lifecycle,
                                  args.noncurrent_version_days),
                *([reports_rule(args.container_name, args.reports_prefix,
                                args.reports_expire_days, args.noncurrent_version_days)]
                  if args.reports_prefix else []),
                *snapshot_management_rules(args.container_name, args.content_lifecycle,
                                           args.prune_prefixes, args.prune_expire_days,
                                           args.noncurrent_version_days)]),
            opts=child)
        self.immutability_lock: ImmutabilityPolicyLock | None = None
        self.delete_lock = None
        if args.production:
            # Irreversible: from here on the retention can only be extended, and the container
            # and account cannot be deleted while any blob is still under retention.
            self.immutability_lock = ImmutabilityPolicyLock(
                f"{name}-immutability-lock", policy_id=self.immutability.id,
                lock_days=args.immutability_days,
                opts=pulumi.ResourceOptions(parent=self, protect=True,
                                            depends_on=[self.immutability]))
            # Stops deletion of the account (and, through ARM, of its containers) by anyone
            # who does not first remove the lock, which is itself audited.
            self.delete_lock = authorization.ManagementLockByScope(
                f"{name}-delete-lock", scope=self.account.id, level="CanNotDelete",
                lock_name="vo2dr-backups-cannot-delete",
                notes="Production backups (vo2max-dr). Remove only under the DR runbook.",
                opts=child)
        # The intraday tier's container: the same settings, a policy of the intraday window.
        self.intraday_container: storage.BlobContainer | None = None
        self.intraday_immutability: storage.BlobContainerImmutabilityPolicy | None = None
        self.intraday_immutability_lock: ImmutabilityPolicyLock | None = None
        if args.intraday_days:
            self.intraday_container = storage.BlobContainer(
                f"{name}-intraday-container", account_name=self.account.name,
                resource_group_name=args.resource_group_name,
                container_name=intraday_container(args.container_name), public_access="None",
                immutable_storage_with_versioning=storage.ImmutableStorageWithVersioningArgs(
                    enabled=True),
                opts=pulumi.ResourceOptions(parent=self, protect=args.production,
                                            depends_on=[self.blob_service]))
            self.intraday_immutability = storage.BlobContainerImmutabilityPolicy(
                f"{name}-intraday-immutability", account_name=self.account.name,
                resource_group_name=args.resource_group_name,
                container_name=self.intraday_container.name,
                immutability_policy_name="default",
                immutability_period_since_creation_in_days=args.intraday_days,
                allow_protected_append_writes=False, allow_protected_append_writes_all=False,
                opts=protected)
            if args.production:
                self.intraday_immutability_lock = ImmutabilityPolicyLock(
                    f"{name}-intraday-immutability-lock",
                    policy_id=self.intraday_immutability.id, lock_days=args.intraday_days,
                    opts=pulumi.ResourceOptions(parent=self, protect=True,
                                                depends_on=[self.intraday_immutability]))
        self.intraday_container_id = (self.intraday_container.id if self.intraday_container
                                      else None)
        self.account_name = self.account.name
        self.container_id = self.container.id
        self.container_url = pulumi.Output.concat(
            self.account.primary_endpoints.apply(lambda e: e.blob), args.container_name)
        # Production: the lock's state ("Locked" once ``pulumi up`` has run); staging: the
        # policy's own state, "Unlocked".
        self.immutability_state = (self.immutability_lock.state if self.immutability_lock
                                   else self.immutability.state)
        self.register_outputs({"account_name": self.account_name,
                               "container_url": self.container_url})
