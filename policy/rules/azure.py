"""The Azure rules of the pack (``azure-*``): Key Vault, the storage account and its containers,
role assignments and definitions."""

from __future__ import annotations

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
from policy.multicloud.lifecycle import (
    check_lifecycle_gfs,
    check_lifecycle_min_duration,
)
from policy.resources import AZ
from policy.rules.base import AZ_DOCS, LIFECYCLE_TYPES, Rule, _r

AZURE_RULES: tuple[Rule, ...] = (
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
)
