"""Key Vault and the customer-managed key that encrypts the Azure Blob tertiary store."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, keyvault, managedidentity

# Built-in role "Key Vault Crypto Service Encryption User": get, wrap and unwrap a key, which is
# all Azure Storage needs for a customer-managed key. Assigned on the key, not the vault.
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
# RSA 3072: Azure Storage accepts RSA 2048, 3072 and 4096 keys for CMK.
KEY_TYPE, KEY_SIZE = "RSA", 3072


def builtin_role(subscription_id: pulumi.Input[str], role_guid: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("/subscriptions/", subscription_id,
                                "/providers/Microsoft.Authorization/roleDefinitions/", role_guid)


@dataclass
class StorageKeyArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    tenant_id: str
    subscription_id: pulumi.Input[str]
    vault_name: str
    key_name: str
    cmk_identity_name: str
    soft_delete_days: int
    rotation_days: int
    expiry_days: int
    protect: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class StorageKey(pulumi.ComponentResource):
    """Vault + rotating key + the user-assigned identity the storage account uses to reach it.

    A user-assigned identity (rather than the account's system identity) exists before the
    account does, so the account can be created already encrypted with the key."""

    vault_uri: pulumi.Output[str]
    key_name: pulumi.Output[str]
    cmk_identity_id: pulumi.Output[str]

    def __init__(self, name: str, args: StorageKeyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:azure:StorageKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=args.protect)
        self.vault = keyvault.Vault(
            f"{name}-vault", vault_name=args.vault_name,
            resource_group_name=args.resource_group_name, location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name="standard"),
                # Azure RBAC instead of access policies: grants are role assignments that can
                # be scoped to one key and audited like every other grant.
                enable_rbac_authorization=True,
                # A deleted vault or key stays recoverable for softDeleteDays, and purge
                # protection stops anyone (even an owner) from purging it early: losing the
                # key would make every blob in the account unreadable.
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.soft_delete_days,
                enable_purge_protection=True,
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
            ),
            tags=args.tags, opts=protected)
        period = f"P{args.rotation_days}D"
        self.key = keyvault.Key(
            f"{name}-key", key_name=args.key_name, vault_name=self.vault.name,
            resource_group_name=args.resource_group_name,
            properties=keyvault.KeyPropertiesArgs(
                kty=KEY_TYPE, key_size=KEY_SIZE, key_ops=["wrapKey", "unwrapKey"],
                # Key Vault creates a new key version every rotationDays; the storage account
                # follows the latest version automatically (no key_version pinned below).
                rotation_policy=keyvault.RotationPolicyArgs(
                    attributes=keyvault.KeyRotationPolicyAttributesArgs(
                        expiry_time=f"P{args.expiry_days}D"),
                    lifetime_actions=[keyvault.LifetimeActionArgs(
                        action=keyvault.ActionArgs(type="rotate"),
                        trigger=keyvault.TriggerArgs(time_after_create=period))]),
            ),
            tags=args.tags, opts=protected)
        self.cmk_identity = managedidentity.UserAssignedIdentity(
            f"{name}-cmk-identity", resource_name_=args.cmk_identity_name,
            resource_group_name=args.resource_group_name, location=args.location,
            tags=args.tags, opts=child)
        self.cmk_grant = authorization.RoleAssignment(
            f"{name}-cmk-grant", principal_id=self.cmk_identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=builtin_role(args.subscription_id, CRYPTO_SERVICE_ENCRYPTION_USER),
            scope=self.key.id, opts=child)
        self.vault_uri = self.vault.properties.apply(lambda p: p.vault_uri)
        self.key_name = self.key.name
        self.cmk_identity_id = self.cmk_identity.id
        self.register_outputs({"vault_uri": self.vault_uri, "key_name": self.key_name,
                               "cmk_identity_id": self.cmk_identity_id})
