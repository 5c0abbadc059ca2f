"""The GCS secondary bucket: CMEK, private, versioned, with Object Retention Lock, tiered per GFS
prefix by the same plan (``cfg.lifecycle``) that tiers S3 and Azure.

Why Object Retention Lock and not a bucket retention policy (Bucket Lock): GCS has refused
Object Versioning on a bucket with a retention policy ("Object Versioning cannot be enabled on a
bucket that currently has a retention policy", Google's Object Versioning page as quoted by
Sonar RSPEC-6412; Google's own google/exposure-notifications-verification-server#877, "Retention
policy and versioning are mutually exclusive"), and the strategy wants both. Object Retention
Lock (https://cloud.google.com/storage/docs/object-lock) works with versioning ("an object that
hasn't reached this retain-until time can still be made noncurrent") and is GCS's counterpart of
S3 Object Lock: each object carries a retain-until time and a mode, Locked (the XML API calls it
COMPLIANCE: nobody can shorten or remove it) or Unlocked (GOVERNANCE). GCS has no bucket default
for it, so the writer sets it on every upload (``Immutability.gcs_retention_env``, read by
``vo2dr.stores.gcs``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
from vo2dr.layout import INTRADAY

from infra.config_storage import INTRADAY_NONCURRENT_DAYS, ContentLifecycle, TierLifecycle

SECONDS_PER_DAY = 86_400


def reports_rule(prefix: str, expire_days: int) -> gcp.storage.BucketLifecycleRuleArgs:
    """The job's report records (``reports/<env>/``): deleted (made noncurrent, then removed
    with every other noncurrent version) once they are as old as the yearly tier. No class
    change: records are a few KB and ``vo2dr report`` reads them all on every run."""
    return gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
            age=expire_days, matches_prefixes=[prefix], with_state="LIVE"))


def snapshot_rules(content: Sequence[ContentLifecycle], prune_prefixes: Sequence[str],
                   prune_expire_days: int) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """A snapshot source's content pool only changes class: no Delete by age (a content object
    is kept while a retained snapshot references it; the pruner deletes it once unreferenced
    and unlocked, and the bucket's noncurrent rule removes the version later). Its pruner's
    plans expire like daily backups."""
    rules = [gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(
            type="SetStorageClass", storage_class=step.storage_class),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
            age=step.days, matches_prefixes=[pool.prefix]))
        for pool in content for step in pool.transitions["gcp"]]
    rules.extend(gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
            age=prune_expire_days, matches_prefixes=[prefix], with_state="LIVE"))
        for prefix in prune_prefixes)
    return rules


def lifecycle_rules(plan: Sequence[TierLifecycle], noncurrent_version_days: int,
                    abort_incomplete_upload_days: int, reports_prefix: str = "",
                    reports_expire_days: int = 0) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """One SetStorageClass rule per transition and one Delete rule per tier prefix, then the
    removal of noncurrent versions. The plan already dropped transitions an object would not
    outlive (class minimum durations), and gives the intraday tier none. Intraday objects
    carry their own retention, set by the job, which ends by the prefix's expiry."""
    rules: list[gcp.storage.BucketLifecycleRuleArgs] = []
    for tier in plan:
        for step in tier.transitions["gcp"]:
            rules.append(gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(
                    type="SetStorageClass", storage_class=step.storage_class),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    age=step.days, matches_prefixes=[tier.prefix])))
        # On a versioned bucket Delete makes the live object noncurrent. LIVE only: without
        # it, the same age would also remove the noncurrent version on the next pass, and
        # noncurrentVersionDays would mean nothing.
        rules.append(gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                age=tier.expire_days, matches_prefixes=[tier.prefix], with_state="LIVE")))
    if reports_prefix:
        rules.append(reports_rule(reports_prefix, reports_expire_days))
    # Same as S3: an intraday version, once expired (its own retention ended with its
    # window), goes the next day; any other stays recoverable for noncurrentVersionDays.
    rules.extend(
        gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                days_since_noncurrent_time=INTRADAY_NONCURRENT_DAYS,
                matches_prefixes=[tier.prefix], with_state="ARCHIVED"))
        for tier in plan if tier.tier == INTRADAY)
    rules.append(gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
            days_since_noncurrent_time=noncurrent_version_days, with_state="ARCHIVED")))
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
    # Production: the bucket is protected from `pulumi destroy` (its objects are Locked).
    retention_locked: bool
    noncurrent_version_days: int
    soft_delete_days: int
    abort_incomplete_upload_days: int
    labels: dict[str, str] = field(default_factory=dict)
    # The report records (reports/<env>/) and their expiry (the yearly tier's days).
    reports_prefix: str = ""
    reports_expire_days: int = 0
    # The KMS grant to the GCS service agent: the bucket cannot be created with a CMEK
    # default before the agent may use the key.
    depends_on: Sequence[pulumi.Resource] = ()
    # Snapshot sources: content pools (transitions only) and the pruner's plan prefixes.
    content_lifecycle: Sequence[ContentLifecycle] = ()
    prune_prefixes: Sequence[str] = ()
    prune_expire_days: int = 0


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
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            # Object Retention Lock: the writer sets each object's retain-until time and mode
            # (module docstring); enabled from the bucket's creation, so no object lacks it.
            enable_object_retention=True,
            soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(
                retention_duration_seconds=args.soft_delete_days * SECONDS_PER_DAY),
            lifecycle_rules=[
                *lifecycle_rules(args.lifecycle, args.noncurrent_version_days,
                                 args.abort_incomplete_upload_days,
                                 args.reports_prefix, args.reports_expire_days),
                *snapshot_rules(args.content_lifecycle, args.prune_prefixes,
                                args.prune_expire_days)],
            # Never empty a backup bucket to delete it.
            force_destroy=False,
            labels=args.labels,
            opts=pulumi.ResourceOptions(parent=self, protect=args.retention_locked,
                                        depends_on=list(args.depends_on)))
        self.bucket_name = self.bucket.name
        self.url = self.bucket.url
        self.register_outputs({"bucket_name": self.bucket_name, "url": self.url})
