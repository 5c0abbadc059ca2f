"""The snapshot pruner's AWS identity: the one role that may delete anything in the backup
bucket, and only unreferenced snapshot content.

Retention with dedup (README, "Snapshots: retention with dedup"): a snapshot source's content
object (``<root>content/<id>``) is shared by every snapshot that saw the same source object
version, whatever their GFS tiers, so no age-based lifecycle rule may expire it. The backup
writer still never deletes. This role runs ``vo2dr prune`` (mark and sweep, h17r's job code):
it lists the source's root, reads its manifests and indexes (decrypting indexes only: the KMS
grant is pinned to the snapshot indexes' encryption context, so it cannot decrypt a database
dump or a code/config body), writes its plans under ``<root>prune/`` and deletes under
``<root>content/`` only. ``s3:DeleteObject`` (no version id) on a versioned bucket adds a delete
marker: the content's locked version stays until the content rule's noncurrent-version expiry,
and S3 refuses ``DeleteObjectVersion`` on a locked version anyway, which the role does not have.

Identities and permissions are two components for the same reason as the job roles': the key
policy names the role (so it exists before the key), the permissions name the key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from vo2dr.layout import MANIFEST_SUFFIX

from infra.aws.access import LAMBDA_SERVICE, _entra_web_identity_tokens
from infra.aws.policies import document, statement, trust
from infra.config_application import SnapshotRoot

INDEX_SUFFIX = ".index.enc"  # vo2dr.layout.SOURCE_LAYOUT["assets"|"logs"][1]


def snapshot_index_context(environment: str, sources: Sequence[str]) -> dict[str, Any]:
    """The KMS condition that admits only snapshot indexes of this environment: the job
    encrypts a source's body with ``{"environment": env, "source": <source>, ...}`` as its
    encryption context (vo2dr.backup), and these two keys are what the condition checks."""
    return {"StringEquals": {"kms:EncryptionContext:environment": environment,
                             "kms:EncryptionContext:source": sorted(sources)}}


@dataclass(frozen=True)
class PrunerRoleArgs:
    account_id: str
    role_name: str
    tags: Mapping[str, str] = field(default_factory=dict)


class PrunerRole(pulumi.ComponentResource):
    """The pruner's IAM role, assumable by Lambda functions of this account only.

    Outputs: ``arn``, ``name``."""

    def __init__(self, name: str, args: PrunerRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:PrunerRole", name, None, opts)
        self.role = aws.iam.Role(
            f"{name}-role", name=args.role_name,
            description="vo2dr snapshot pruner: deletes unreferenced snapshot content (under "
                        "<root>content/ only), writes its plans under <root>prune/",
            assume_role_policy=document(trust(
                "LambdaOfThisAccount", {"Service": LAMBDA_SERVICE},
                {"StringEquals": {"aws:SourceAccount": args.account_id}})),
            tags=dict(args.tags), opts=pulumi.ResourceOptions(parent=self))
        self.arn, self.name = self.role.arn, self.role.name
        self.register_outputs({"arn": self.arn, "name": self.name})


@dataclass(frozen=True)
class PrunerPermissionsArgs:
    role: PrunerRole
    bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    region: str
    environment: str
    roots: Sequence[SnapshotRoot]
    entra_federation: bool = False


def _objects(bucket_arn: pulumi.Input[str], *patterns: str) -> list[pulumi.Output[str]]:
    return [pulumi.Output.concat(bucket_arn, "/", p) for p in patterns]


def pruner_document(args: PrunerPermissionsArgs) -> pulumi.Output[str]:
    """The pruner's one inline policy (see the module docstring)."""
    roots = list(args.roots)
    through_s3 = {"StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}}
    return document(
        statement("ListSnapshotRoots", ["s3:ListBucket"], args.bucket_arn,
                  condition={"StringLike": {"s3:prefix": [f"{r.root}*" for r in roots]}}),
        # Manifests and indexes of every tier (complete or not) are what references content;
        # its own earlier plans are what the sweep deletes from.
        statement("ReadManifestsIndexesAndPlans", ["s3:GetObject"], _objects(
            args.bucket_arn, *(p for r in roots for p in (
                f"{r.root}*{MANIFEST_SUFFIX}", f"{r.root}*{INDEX_SUFFIX}",
                f"{r.prune_prefix}*")))),
        statement("WritePrunePlansOnly", ["s3:AbortMultipartUpload", "s3:PutObject"],
                  _objects(args.bucket_arn, *(f"{r.prune_prefix}*" for r in roots))),
        # The one delete grant of the whole stack: unreferenced content, after its lock.
        statement("DeleteUnreferencedContentOnly", ["s3:DeleteObject"],
                  _objects(args.bucket_arn, *(f"{r.content_prefix}*" for r in roots))),
        # SSE-KMS: reading and writing objects through S3.
        statement("ObjectsUnderSseKmsThroughS3", ["kms:Decrypt", "kms:GenerateDataKey"],
                  args.key_arn, condition=through_s3),
        # The indexes' envelope, directly, and only for snapshot indexes of this environment.
        statement("DecryptSnapshotIndexesOnly", ["kms:Decrypt"], args.key_arn,
                  condition=snapshot_index_context(args.environment,
                                                   [r.source for r in roots])),
        # Key metadata only (state, ARN), as every job role has.
        statement("DescribeBackupKey", ["kms:DescribeKey"], args.key_arn),
        *([_entra_web_identity_tokens()] if args.entra_federation else []),
    )


class PrunerPermissions(pulumi.ComponentResource):
    """The pruner role's inline policy on the backup bucket and key."""

    def __init__(self, name: str, args: PrunerPermissionsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:PrunerPermissions", name, None, opts)
        self.policy = aws.iam.RolePolicy(f"{name}-pruner", role=args.role.role.id,
                                         policy=pruner_document(args),
                                         opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
