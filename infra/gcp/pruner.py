"""The snapshot pruner's GCS identity: a service account that reads the bucket, creates objects
only under ``<root>prune/`` and deletes only under ``<root>content/`` (the AWS pruner role acts
as it through the same workload identity federation as the job's other roles).

Both limits are IAM Conditions on the bucket-level bindings (the bucket has uniform bucket-level
access, which conditions require): ``resource.name`` of an object is
``projects/_/buckets/<bucket>/objects/<key>``, so ``startsWith`` on it is a prefix rule. Listing
is checked against the bucket, not an object, so the read binding (objectViewer, as the other
readers have) carries no condition. A delete of an object still under its Object Retention Lock
is refused by GCS whatever the role (the account has no ``overrideUnlockedRetention``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.config_application import SnapshotRoot

# The one permission the delete role holds; bound only with the content-prefix condition.
DELETE_PERMISSIONS = ("storage.objects.delete",)
READER_ROLE = "roles/storage.objectViewer"


def objects_under(bucket: str, prefixes: Sequence[str]) -> str:
    """CEL: the request's object is under one of ``prefixes`` of ``bucket``."""
    return " || ".join(f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{p}")'
                       for p in prefixes)


@dataclass
class PrunerAccessArgs:
    project: str
    bucket_name: pulumi.Input[str]
    account_id: str  # the service account id (at most 30 characters)
    delete_role_id: str  # the custom delete-only role's id (letters, digits, _ and .)
    # The project's creator role (storage.objects.create + setRetention, infra/gcp/access.py):
    # the pruner's plans carry their retention like every upload.
    creator_role: pulumi.Input[str]
    roots: Sequence[SnapshotRoot]
    environment: str


class PrunerAccess(pulumi.ComponentResource):
    """The pruner service account and its three conditioned bucket bindings.

    Outputs: ``email``, ``name`` (``projects/<p>/serviceAccounts/<email>``)."""

    email: pulumi.Output[str]

    def __init__(self, name: str, args: PrunerAccessArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:PrunerAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        roots = list(args.roots)
        self.account = gcp.serviceaccount.Account(
            f"{name}-account", account_id=args.account_id, project=args.project,
            display_name=f"vo2dr {args.environment} snapshot pruner",
            description="Deletes unreferenced snapshot content (<root>content/ only, after its "
                        "lock) and writes prune plans (<root>prune/ only); reads the rest. "
                        "Used through workload identity federation.",
            opts=child)
        self.delete_role = gcp.projects.IAMCustomRole(
            f"{name}-delete-role", project=args.project, role_id=args.delete_role_id,
            title=f"vo2dr {args.environment} snapshot content delete",
            description="Delete objects. Bound only with a condition limiting it to snapshot "
                        "content prefixes (<root>content/).",
            permissions=list(DELETE_PERMISSIONS), stage="GA", opts=child)
        member = self.account.member
        self.read = gcp.storage.BucketIAMMember(
            f"{name}-read", bucket=args.bucket_name, role=READER_ROLE, member=member,
            opts=child)
        content = pulumi.Output.from_input(args.bucket_name).apply(
            lambda b: objects_under(b, [r.content_prefix for r in roots]))
        self.delete = gcp.storage.BucketIAMMember(
            f"{name}-delete-content", bucket=args.bucket_name, role=self.delete_role.name,
            member=member, condition=gcp.storage.BucketIAMMemberConditionArgs(
                title="snapshot content only",
                description="Delete only under <root>content/ of the snapshot sources",
                expression=content), opts=child)
        plans = pulumi.Output.from_input(args.bucket_name).apply(
            lambda b: objects_under(b, [r.prune_prefix for r in roots]))
        self.write_plans = gcp.storage.BucketIAMMember(
            f"{name}-write-plans", bucket=args.bucket_name, role=args.creator_role,
            member=member, condition=gcp.storage.BucketIAMMemberConditionArgs(
                title="prune plans only",
                description="Create objects only under <root>prune/ of the snapshot sources",
                expression=plans), opts=child)
        self.email = self.account.email
        self.name = self.account.name
        self.register_outputs({"email": self.email})
