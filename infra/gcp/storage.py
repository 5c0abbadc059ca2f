"""The GCS secondary bucket: CMEK, private, retention-locked in production, tiered per GFS
prefix by the same plan (``cfg.lifecycle``) that tiers S3 and Azure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.config import TierLifecycle

SECONDS_PER_DAY = 86_400


def lifecycle_rules(plan: Sequence[TierLifecycle],
                    abort_incomplete_upload_days: int) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """One SetStorageClass rule per transition and one Delete rule per GFS prefix. The plan
    already dropped transitions an object would not outlive (class minimum durations)."""
    rules: list[gcp.storage.BucketLifecycleRuleArgs] = []
    for tier in plan:
        for step in tier.transitions["gcp"]:
            rules.append(gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(
                    type="SetStorageClass", storage_class=step.storage_class),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    age=step.days, matches_prefixes=[tier.prefix])))
        rules.append(gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                age=tier.expire_days, matches_prefixes=[tier.prefix])))
    # XML-API multipart uploads that never completed hold storage and are never a backup.
    rules.append(gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type="AbortIncompleteMultipartUpload"),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=abort_incomplete_upload_days)))
    return rules


@dataclass
class BackupBucketArgs:
    project: str
    bucket_name: str
    location: str
    kms_key_id: pulumi.Input[str]
    lifecycle: Sequence[TierLifecycle]
    retention_days: int
    retention_locked: bool
    soft_delete_days: int
    abort_incomplete_upload_days: int
    labels: dict[str, str] = field(default_factory=dict)
    # The KMS grant to the GCS service agent: the bucket cannot be created with a CMEK
    # default before the agent may use the key.
    depends_on: Sequence[pulumi.Resource] = ()


class BackupBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: BackupBucketArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:BackupBucket", name, None, opts)
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=args.bucket_name,
            project=args.project,
            location=args.location,
            # IAM only, no per-object ACLs, so the bucket-level grants are the whole story.
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=args.kms_key_id),
            # Versioning stays off: Object Versioning and a bucket retention policy (Bucket
            # Lock, https://cloud.google.com/storage/docs/bucket-lock) are documented as
            # mutually exclusive on one bucket ("Object Versioning cannot be enabled on a
            # bucket that currently has a retention policy", as quoted from Google's Object
            # Versioning page by Sonar RSPEC-6412 and still taught as the rule in 2026). Google's
            # own current page could not be re-read for this change; re-check
            # https://cloud.google.com/storage/docs/object-versioning before switching it on.
            # The retention policy is the stronger control: no object can be replaced or
            # deleted before lockDays, which is what versioning would recover from, and soft
            # delete keeps every deleted object for softDeleteDays after that. Keys are
            # write-once (design.md), so there is never a previous version to keep.
            # Object Retention Lock (https://cloud.google.com/storage/docs/object-lock) does
            # work with versioning (a retained object "can still be made noncurrent"), but it
            # is per object: the writer would have to set a retain-until time on every upload
            # and the bucket would need enable_object_retention at creation, replacing the
            # bucket-wide lock the issue asks for. Not adopted (see README).
            versioning=gcp.storage.BucketVersioningArgs(enabled=False),
            soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(
                retention_duration_seconds=args.soft_delete_days * SECONDS_PER_DAY),
            # Bucket Lock: objects cannot be deleted or replaced until they are lockDays old.
            # Locked (irreversible: the period can only grow) in production only, so staging
            # can still be torn down and re-tuned.
            retention_policy=gcp.storage.BucketRetentionPolicyArgs(
                retention_period=str(args.retention_days * SECONDS_PER_DAY),
                is_locked=args.retention_locked),
            lifecycle_rules=lifecycle_rules(args.lifecycle, args.abort_incomplete_upload_days),
            # Never empty a backup bucket to delete it.
            force_destroy=False,
            labels=args.labels,
            opts=pulumi.ResourceOptions(parent=self, protect=args.retention_locked,
                                        depends_on=list(args.depends_on)))
        self.bucket_name = self.bucket.name
        self.url = self.bucket.url
        self.register_outputs({"bucket_name": self.bucket_name, "url": self.url})
