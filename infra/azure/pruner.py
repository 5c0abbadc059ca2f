"""The snapshot pruner's Azure identity: a user-assigned managed identity that reads the
containers, deletes blobs only under ``<root>content/`` and writes blobs only under
``<root>prune/``, signed in from the AWS pruner role's web identity tokens (no secret).

Azure RBAC has no per-prefix role, so the limits are role assignment conditions (Azure ABAC,
condition version 2.0, GA for Blob Storage) on the blob path, which excludes the container name:
``@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]
StringStartsWith '<root>content/'``. Each assignment holds one custom role and one condition:

- Storage Blob Data Reader, unconditioned, on both containers (manifests and indexes of every
  tier, intraday included, and listing);
- a delete-only custom role (``blobs/delete``), on the main container, whose condition admits
  the delete only under the snapshot roots' ``content/``;
- the writer's custom role (write, add, read), on the main container, whose condition admits
  write and add only under the roots' ``prune/``.

A delete of a blob still under the container's time-based immutability policy is refused by
Azure whatever the role; the pruner deletes only content whose lock has ended, and the blob
becomes a previous version that the content rule removes (infra/azure/storage.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

from infra.azure.access import (
    BLOBS,
    CONDITION_VERSION,
    CREATE_ACTIONS,
    ENTRA_TOKEN_EXCHANGE_AUDIENCE,
    STORAGE_BLOB_DATA_READER,
    path_condition,
)
from infra.azure.keys import builtin_role
from infra.config_application import SnapshotRoot

DELETE_ACTION = f"{BLOBS}/delete"


@dataclass
class PrunerIdentityArgs:
    resource_group_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: pulumi.Input[str]
    container_id: pulumi.Input[str]
    identity_name: str
    delete_role_name: str
    delete_role_guid: str
    # The writer's custom role (write, add, read): reused, conditioned to the prune prefixes.
    writer_role_id: pulumi.Input[str]
    roots: Sequence[SnapshotRoot]
    aws_token_issuer: pulumi.Input[str]
    aws_pruner_role_arn: pulumi.Input[str]
    intraday_container_id: pulumi.Input[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)


class PrunerIdentity(pulumi.ComponentResource):
    """Outputs: ``client_id``."""

    client_id: pulumi.Output[str]

    def __init__(self, name: str, args: PrunerIdentityArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:azure:PrunerIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        roots = list(args.roots)
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity", resource_name_=args.identity_name,
            resource_group_name=args.resource_group_name, location=args.location,
            tags=args.tags, opts=child)
        principal = self.identity.principal_id
        reader = builtin_role(args.subscription_id, STORAGE_BLOB_DATA_READER)
        self.read_grants = [
            authorization.RoleAssignment(
                f"{name}-{key}-read", principal_id=principal, principal_type="ServicePrincipal",
                role_definition_id=reader, scope=scope, opts=child)
            for key, scope in (("main", args.container_id),
                               ("intraday", args.intraday_container_id)) if scope is not None]
        self.delete_role = authorization.RoleDefinition(
            f"{name}-delete-role", role_definition_id=args.delete_role_guid,
            role_name=args.delete_role_name, role_type="CustomRole",
            scope=args.resource_group_id,
            description="vo2max-dr snapshot pruner: delete blobs. Assigned only with a "
                        "condition limiting it to snapshot content (<root>content/).",
            permissions=[authorization.PermissionArgs(
                actions=[], not_actions=[], data_actions=[DELETE_ACTION], not_data_actions=[])],
            assignable_scopes=[args.resource_group_id], opts=child)
        self.delete_grant = authorization.RoleAssignment(
            f"{name}-delete-content", principal_id=principal, principal_type="ServicePrincipal",
            role_definition_id=self.delete_role.id, scope=args.container_id,
            condition=path_condition([DELETE_ACTION], [r.content_prefix for r in roots]),
            condition_version=CONDITION_VERSION, opts=child)
        self.plan_grant = authorization.RoleAssignment(
            f"{name}-write-plans", principal_id=principal, principal_type="ServicePrincipal",
            role_definition_id=args.writer_role_id, scope=args.container_id,
            condition=path_condition(CREATE_ACTIONS, [r.prune_prefix for r in roots]),
            condition_version=CONDITION_VERSION, opts=child)
        # Keyless sign-in from the AWS pruner role, exactly as the job's other roles sign in.
        self.federation = managedidentity.FederatedIdentityCredential(
            f"{name}-aws-pruner", resource_name_=self.identity.name,
            resource_group_name=args.resource_group_name,
            federated_identity_credential_resource_name="aws-pruner",
            issuer=args.aws_token_issuer, subject=args.aws_pruner_role_arn,
            audiences=[ENTRA_TOKEN_EXCHANGE_AUDIENCE], opts=child)
        self.client_id = self.identity.client_id
        self.register_outputs({"client_id": self.client_id})
