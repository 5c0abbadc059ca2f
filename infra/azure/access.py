"""Who may touch the Azure container: a writer identity with a custom create-only role and a
reader identity with Storage Blob Data Reader, both assigned on the container only, and the
federated credentials that let identities elsewhere sign in without a secret:

- writer identity: the AWS backup writer role (AWS outbound identity tokens), and the GCP
  Cloud Run standby's service account (Google-signed ID tokens), so the standby can still
  write the Azure copy while AWS is down;
- reader identity: the AWS monitor role (status check) and restore reader role (drill).

Entra ID allows at most 20 federated identity credentials per identity and refuses concurrent
writes of them on the same identity, so each identity's credentials are created one after
the other (``depends_on``) and their number is checked here."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
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
# The actions that create or overwrite a blob: a conditioned grant limits these to a prefix.
CREATE_ACTIONS = WRITER_DATA_ACTIONS[:2]
# A role assignment condition's view of a blob's path (without its container), and the ABAC
# condition language version every condition here is written in (GA for Blob Storage).
BLOB_PATH = f"@Resource[{BLOBS}:path]"
CONDITION_VERSION = "2.0"
# Built-in "Storage Blob Data Reader": read and list blobs.
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
# The audience Entra ID expects in a federated token (workload identity federation).
ENTRA_TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 - not a secret
# Google's issuer of service-account ID tokens (the Cloud Run metadata server's ``identity``
# endpoint); their ``sub`` is the service account's numeric unique id.
GOOGLE_ISSUER = "https://accounts.google.com"
# Entra ID's limit of federated identity credentials on one user-assigned identity.
MAX_FEDERATED_CREDENTIALS = 20


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
    # The AWS roles that only read (key -> role ARN: the monitor role of the status check, the
    # restore reader role of the drill): each signs in as the reader identity.
    aws_reader_role_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # The intraday tier's container (infra/azure/storage.py): the same two grants on it.
    intraday_container_id: pulumi.Input[str] | None = None
    # The drill's result records (reports/<env>/drills/ in the main container): the reader
    # identity, which the drill signs in as, may create blobs there and nowhere else.
    drill_records_prefix: str = ""


def path_condition(actions: Sequence[str], prefixes: Sequence[str]) -> str:
    """An Azure ABAC role-assignment condition (version :data:`CONDITION_VERSION`): ``actions``
    are allowed only on blobs whose path (without the container) starts with one of
    ``prefixes``; every other action of the role is left as the role grants it."""
    for prefix in prefixes:
        if "'" in prefix:
            raise ValueError(f"a blob prefix with a quote cannot go into a condition: {prefix!r}")
    not_these = " AND ".join(f"!(ActionMatches{{'{a}'}})" for a in actions)
    under = " OR ".join(f"{BLOB_PATH} StringStartsWith '{p}'" for p in prefixes)
    return f"(({not_these}) OR ({under}))"


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
        self.intraday_grants = [] if args.intraday_container_id is None else [
            authorization.RoleAssignment(
                f"{name}-intraday-writer-grant", principal_id=self.writer.principal_id,
                principal_type="ServicePrincipal", role_definition_id=self.writer_role.id,
                scope=args.intraday_container_id, opts=child),
            authorization.RoleAssignment(
                f"{name}-intraday-reader-grant", principal_id=self.reader.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=builtin_role(args.subscription_id, STORAGE_BLOB_DATA_READER),
                scope=args.intraday_container_id, opts=child)]
        # The drill writes its result records as the reader identity: the create-only role,
        # on the main container, conditioned to their prefix.
        self.reader_drill_records_grant = None if not args.drill_records_prefix else \
            authorization.RoleAssignment(
                f"{name}-reader-drill-records-grant", principal_id=self.reader.principal_id,
                principal_type="ServicePrincipal", role_definition_id=self.writer_role.id,
                scope=args.container_id,
                condition=path_condition(CREATE_ACTIONS, [args.drill_records_prefix]),
                condition_version=CONDITION_VERSION, opts=child)
        # Keyless sign-in from AWS: the Lambda calls sts:GetWebIdentityToken (AWS IAM outbound
        # identity federation) with this audience and exchanges the JWT for an Entra token of
        # the writer identity. Entra accepts it only from this issuer (one AWS account) with
        # this exact subject (the writer role's ARN).
        self._name, self._resource_group_name = name, args.resource_group_name
        self._last_credential: dict[str, pulumi.Resource] = {}
        self._credential_count = {"writer": 0, "reader": 0}
        self.writer_federation = self._federate(
            "writer", "aws-backup-writer", args.aws_token_issuer, args.aws_writer_role_arn,
            resource=f"{name}-writer-aws")
        # The same exchange for the read-only AWS roles, as the reader identity: status lists
        # and reads manifests, the drill reads and restores; neither may create a blob.
        self.reader_federations = {
            key: self._federate("reader", f"aws-{key}", args.aws_token_issuer, arn)
            for key, arn in sorted(args.aws_reader_role_arns.items())
        }
        self.writer_client_id = self.writer.client_id
        self.reader_client_id = self.reader.client_id
        self.tenant_id = self.writer.tenant_id
        self.register_outputs({"writer_client_id": self.writer_client_id,
                               "reader_client_id": self.reader_client_id})


    def _federate(self, identity: str, credential: str, issuer: pulumi.Input[str],
                  subject: pulumi.Input[str], resource: str | None = None,
                  ) -> managedidentity.FederatedIdentityCredential:
        """One federated identity credential on the writer or reader identity, created after
        the identity's previous one (Entra refuses concurrent writes on one identity)."""
        self._credential_count[identity] += 1
        if self._credential_count[identity] > MAX_FEDERATED_CREDENTIALS:
            raise ValueError(f"the {identity} identity would get more than "
                             f"{MAX_FEDERATED_CREDENTIALS} federated credentials (Entra's limit)")
        previous = self._last_credential.get(identity)
        target = self.writer if identity == "writer" else self.reader
        cred = managedidentity.FederatedIdentityCredential(
            resource or f"{self._name}-{identity}-{credential}", resource_name_=target.name,
            resource_group_name=self._resource_group_name,
            federated_identity_credential_resource_name=credential,
            issuer=issuer, subject=subject, audiences=[ENTRA_TOKEN_EXCHANGE_AUDIENCE],
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[previous] if previous else None))
        self._last_credential[identity] = cred
        return cred

    def trust_google_service_account(self, key: str, unique_id: pulumi.Input[str],
                                     ) -> managedidentity.FederatedIdentityCredential:
        """Let one GCP service account (``unique_id``, the numeric id that is the ``sub`` of
        its Google-signed ID tokens) sign in as the writer identity. Used for the Cloud Run
        standby, which must write the Azure copy when AWS, and with it the AWS-issued token,
        is unavailable."""
        return self._federate("writer", f"gcp-{key}", GOOGLE_ISSUER, unique_id)


def stable_guid(*parts: str) -> str:
    """A GUID that is the same on every run for the same stack (ARM names of role definitions
    must be GUIDs, and a random one would replace the role on every deploy)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "vo2max-dr/" + "/".join(parts)))
