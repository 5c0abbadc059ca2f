"""Key Vault and the customer-managed key that encrypts the Azure Blob tertiary store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumiverse_time as pulumi_time
from pulumi_azure_native import authorization, keyvault, managedidentity

# Built-in role "Key Vault Crypto Service Encryption User": get, wrap and unwrap a key, which is
# all Azure Storage needs for a customer-managed key. Assigned on the key, not the vault.
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
# How long a new role assignment may take to apply: "it can take up to 10 minutes for changes
# to take effect" (Azure RBAC, "Troubleshoot Azure RBAC", role assignment changes not
# detected); Key Vault checks the storage account's identity against it when the account is
# created with the key. The account waits this long after the grant, once, on a first deploy.
GRANT_PROPAGATION = "10m"
# RSA 3072: Azure Storage accepts RSA 2048, 3072 and 4096 keys for CMK.
KEY_TYPE, KEY_SIZE = "RSA", 3072


def rotation_policy_document(rotation_days: int, expiry_days: int) -> dict[str, Any]:
    """The key's rotation policy as Key Vault's data plane and ``az keyvault key
    rotation-policy update --value`` take it."""
    return {"lifetimeActions": [{"trigger": {"timeAfterCreate": f"P{rotation_days}D"},
                                 "action": {"type": "Rotate"}}],
            "attributes": {"expiryTime": f"P{expiry_days}D"}}


def _managed_part(policy: Any) -> tuple[str | None, str | None]:
    """(rotate after, expire after) of a live or wanted rotation policy: the two values the
    stack manages. Other lifetime actions (Key Vault may add a Notify one) are not ours."""
    if policy is None:
        return None, None

    def field_(node: Any, *names: str) -> Any:
        for name in names:
            if node is None:
                return None
            node = node.get(name) if isinstance(node, dict) else getattr(node, name, None)
        return node

    rotate = None
    for action in field_(policy, "lifetime_actions") or field_(policy, "lifetimeActions") or []:
        kind = field_(action, "action", "type")
        if str(kind or "").lower() == "rotate":
            rotate = field_(action, "trigger", "time_after_create") or field_(
                action, "trigger", "timeAfterCreate")
    expiry = field_(policy, "attributes", "expiry_time") or field_(
        policy, "attributes", "expiryTime")
    return (str(rotate) if rotate else None), (str(expiry) if expiry else None)


def _is_not_found(exc: Exception) -> bool:
    text = str(exc).lower()
    return "notfound" in text or "not found" in text or "404" in text


class KeyRotationDrift(pulumi.RunError):
    """The deployed key's rotation policy differs from the stack's and only a manual step can
    change it (see :func:`check_live_rotation_policy`)."""


LiveKeyReader = Callable[[str, str, str], Any]


def _read_live_key(resource_group: str, vault: str, key: str) -> Any:
    return keyvault.get_key(resource_group_name=resource_group, vault_name=vault, key_name=key)


def check_live_rotation_policy(resource_group: str, vault: str, key: str, rotation_days: int,
                               expiry_days: int, read: LiveKeyReader = _read_live_key) -> None:
    """Fail the preview when the deployed key rotates or expires otherwise than the stack says.

    ARM's ``Microsoft.KeyVault/vaults/keys`` PUT (what azure-native ``keyvault.Key`` calls)
    "creates the first version of a new key if it does not exist. If it already exists, then
    the existing key is returned without any write operations being performed. This API does
    not create subsequent versions, and does not update existing keys" (Azure REST reference,
    Keys - Create If Not Exist). So a later change of ``keys.rotationDays`` or ``expiryDays``
    would report success and change nothing. Instead the program reads the live key (an ARM
    GET, which works at preview) and stops with the one command that applies the policy on
    Key Vault's data plane; once it has run, the preview passes. A key that does not exist yet
    (first deploy: its vault or resource group is missing too) is created with the policy."""
    try:
        live = read(resource_group, vault, key)
    except Exception as exc:  # the provider reports a missing key as an invoke failure
        if _is_not_found(exc):
            return
        raise
    wanted = rotation_policy_document(rotation_days, expiry_days)
    have = _managed_part(getattr(live, "rotation_policy", None)
                         if not isinstance(live, dict) else live.get("rotationPolicy"))
    if have == _managed_part(wanted):
        return
    raise KeyRotationDrift(
        f"Key Vault key {key} in vault {vault} rotates after {have[0]} and expires after "
        f"{have[1]}, but the stack wants P{rotation_days}D and P{expiry_days}D "
        "(keys.rotationDays, keys.expiryDays). azure-native keyvault.Key never updates an "
        "existing key, so apply the policy once, then rerun the preview: "
        f"az keyvault key rotation-policy update --vault-name {vault} --name {key} "
        f"--value '{json.dumps(wanted, separators=(',', ':'))}'")


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
    # The resource group's literal name: when set, the live key's rotation policy is read at
    # preview and a drift fails it with the manual step (check_live_rotation_policy).
    live_check_group: str | None = None


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
        if args.live_check_group:
            check_live_rotation_policy(args.live_check_group, args.vault_name, args.key_name,
                                       args.rotation_days, args.expiry_days)
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
        # What uses the key (the storage account) depends on this, not on the grant: a
        # Sleep only waits when it is created, so later updates are not slowed down.
        self.ready = pulumi_time.Sleep(
            f"{name}-cmk-grant-propagation", create_duration=GRANT_PROPAGATION,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cmk_grant]))
        self.vault_uri = self.vault.properties.apply(lambda p: p.vault_uri)
        self.key_name = self.key.name
        self.cmk_identity_id = self.cmk_identity.id
        self.register_outputs({"vault_uri": self.vault_uri, "key_name": self.key_name,
                               "cmk_identity_id": self.cmk_identity_id})
