"""Who may touch the Azure container: a writer identity with a custom create-only role and a
reader identity with Storage Blob Data Reader, both assigned on the container only, and the
federated credential that lets the AWS backup writer role sign in as the writer identity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

from infra.azure.keys import builtin_role

BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
# Create blobs (Put Blob / Put Block / Put Block List) and read them back to verify the
# upload. No delete, no tag or immutability changes, no container or account management.
# ``write`` also permits an overwrite, but every existing version stays under the container's
# immutability policy and versioning, so an overwrite cannot destroy a backup.
WRITER_DATA_ACTIONS = (f"{BLOBS}/write", f"{BLOBS}/add/action", f"{BLOBS}/read")
# Built-in "Storage Blob Data Reader": read and list blobs.
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
# The audience Entra ID expects in a federated token (workload identity federation).
ENTRA_TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 - not a secret


@dataclass
class ContainerAccessArgs:
    resource_group_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: pulumi.Input[str]
    container_id: pulumi.Input[str]
    writer_identity_name: str
    reader_identity_name: str
    role_name: str
    # Stable GUID of the custom role definition (its ARM name), derived from the stack.
    role_definition_guid: str
    # The AWS account's outbound web identity federation issuer,
    # ``https://<id>.tokens.sts.global.api.aws``, and the writer role whose tokens it signs.
    aws_token_issuer: pulumi.Input[str]
    aws_writer_role_arn: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)


class ContainerAccess(pulumi.ComponentResource):
    writer_client_id: pulumi.Output[str]
    reader_client_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerAccessArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:azure:ContainerAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.writer = managedidentity.UserAssignedIdentity(
            f"{name}-writer", resource_name_=args.writer_identity_name,
            resource_group_name=args.resource_group_name, location=args.location,
            tags=args.tags, opts=child)
        self.reader = managedidentity.UserAssignedIdentity(
            f"{name}-reader", resource_name_=args.reader_identity_name,
            resource_group_name=args.resource_group_name, location=args.location,
            tags=args.tags, opts=child)
        # No built-in role creates blobs without delete (Storage Blob Data Contributor can
        # delete), hence a custom role. It is defined in the resource group (a custom role
        # cannot be made assignable at container scope) but assigned only on the container.
        self.writer_role = authorization.RoleDefinition(
            f"{name}-writer-role", role_definition_id=args.role_definition_guid,
            role_name=args.role_name, role_type="CustomRole", scope=args.resource_group_id,
            description="vo2max-dr backup writer: create and read blobs, never delete.",
            permissions=[authorization.PermissionArgs(
                actions=[], not_actions=[], data_actions=list(WRITER_DATA_ACTIONS),
                not_data_actions=[])],
            assignable_scopes=[args.resource_group_id], opts=child)
        self.writer_grant = authorization.RoleAssignment(
            f"{name}-writer-grant", principal_id=self.writer.principal_id,
            principal_type="ServicePrincipal", role_definition_id=self.writer_role.id,
            scope=args.container_id, opts=child)
        self.reader_grant = authorization.RoleAssignment(
            f"{name}-reader-grant", principal_id=self.reader.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=builtin_role(args.subscription_id, STORAGE_BLOB_DATA_READER),
            scope=args.container_id, opts=child)
        # Keyless sign-in from AWS: the Lambda calls sts:GetWebIdentityToken (AWS IAM outbound
        # identity federation) with this audience and exchanges the JWT for an Entra token of
        # the writer identity. Entra accepts it only from this issuer (one AWS account) with
        # this exact subject (the writer role's ARN).
        self.writer_federation = managedidentity.FederatedIdentityCredential(
            f"{name}-writer-aws", resource_name_=self.writer.name,
            resource_group_name=args.resource_group_name,
            federated_identity_credential_resource_name="aws-backup-writer",
            issuer=args.aws_token_issuer, subject=args.aws_writer_role_arn,
            audiences=[ENTRA_TOKEN_EXCHANGE_AUDIENCE], opts=child)
        self.writer_client_id = self.writer.client_id
        self.reader_client_id = self.reader.client_id
        self.tenant_id = self.writer.tenant_id
        self.register_outputs({"writer_client_id": self.writer_client_id,
                               "reader_client_id": self.reader_client_id})


def stable_guid(*parts: str) -> str:
    """A GUID that is the same on every run for the same stack (ARM names of role definitions
    must be GUIDs, and a random one would replace the role on every deploy)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "vo2max-dr/" + "/".join(parts)))
