"""S3 lifecycle rules built from the validated plan in ``infra/config_storage.py``.

Every number here comes from the stack file through ``cfg``: the tier prefixes, the transition
days and classes (already filtered so an object only moves where it outlives the class's
minimum storage duration), the expiry, the noncurrent-version expiry and the multipart abort.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pulumi_aws as aws

from infra.config_storage import ContentLifecycle, TierLifecycle, noncurrent_days

ENABLED = "Enabled"


def _housekeeping(noncurrent_version_days: int, abort_incomplete_upload_days: int) -> dict:
    return {
        # Versioning keeps an expired object as a noncurrent version (object lock needs it):
        # remove it once the lock and the grace period are over.
        "noncurrent_version_expiration":
            aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=noncurrent_version_days),
        # A crashed job leaves parts that are billed but invisible to listings.
        "abort_incomplete_multipart_upload":
            aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=abort_incomplete_upload_days),
    }


def tier_rules(plan: Iterable[TierLifecycle], *, noncurrent_version_days: int,
               abort_incomplete_upload_days: int,
               cloud: str = "aws") -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """One rule per tier prefix (``database/<env>/<tier>/``). Intraday objects carry their
    own lock (vo2dr.stores.s3), which ends by the rule's expiry; their expired versions go
    the next day (``config.INTRADAY_NONCURRENT_DAYS``), not after the GFS grace period."""
    rules = []
    for tier in plan:
        rules.append(aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=tier.rule_id,
            status=ENABLED,
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=tier.prefix),
            transitions=[
                aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                    days=t.days, storage_class=t.storage_class)
                for t in tier.transitions[cloud]
            ],
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                days=tier.expire_days),
            **_housekeeping(noncurrent_days(tier, noncurrent_version_days),
                            abort_incomplete_upload_days),
        ))
    return rules


def content_rules(pools: Iterable[ContentLifecycle], *, noncurrent_version_days: int,
                  abort_incomplete_upload_days: int
                  ) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """One rule per snapshot content pool (``<root>content/``): transitions, and NO
    expiration: a content object is kept while any retained snapshot references it, which no
    age can tell (dedup shares one object between snapshots of every tier). Only the pruner,
    after the object's lock, deletes one it found unreferenced; S3 then keeps the object as a
    noncurrent version, which this rule removes after ``noncurrent_version_days``."""
    return [aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=pool.rule_id,
        status=ENABLED,
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=pool.prefix),
        transitions=[aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
            days=t.days, storage_class=t.storage_class) for t in pool.transitions["aws"]],
        **_housekeeping(noncurrent_version_days, abort_incomplete_upload_days),
    ) for pool in pools]


def prune_rules(prefixes: Mapping[str, str], *, expire_days: int, noncurrent_version_days: int,
                abort_incomplete_upload_days: int
                ) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The pruner's plans (``<root>prune/``, small JSON): kept as long as daily backups, far
    past the one run that sweeps them."""
    return [aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=f"prune-{source}",
        status=ENABLED,
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_days),
        **_housekeeping(noncurrent_version_days, abort_incomplete_upload_days),
    ) for source, prefix in sorted(prefixes.items())]


def status_rule(prefix: str, *, expire_days: int, noncurrent_version_days: int,
                abort_incomplete_upload_days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """The status check's write-once alert-state objects (a few an hour, vo2dr.status): kept
    only as long as their object lock holds, then removed like any other version."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="status-state",
        status=ENABLED,
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_days),
        **_housekeeping(noncurrent_version_days, abort_incomplete_upload_days),
    )


def reports_rule(prefix: str, *, expire_days: int, noncurrent_version_days: int,
                 abort_incomplete_upload_days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """The job's report records (``reports/<env>/``: drill results, failed backup attempts):
    kept as long as the yearly tier, then expired like any version. No transition: each record
    is a few KB (below S3's 128 KB minimum billable size in the infrequent classes, so moving
    them costs more), and ``vo2dr report`` reads them all, which Glacier would refuse."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="report-records",
        status=ENABLED,
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_days),
        **_housekeeping(noncurrent_version_days, abort_incomplete_upload_days),
    )


def delete_marker_rule() -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """Bucket-wide: drop a delete marker once no version is left behind it. S3 does not allow
    this flag in a rule that also expires by days, hence its own rule."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="expired-delete-markers",
        status=ENABLED,
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
            expired_object_delete_marker=True),
    )


def log_rules(*, expire_days: int, noncurrent_version_days: int,
              abort_incomplete_upload_days: int
              ) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The access-log bucket keeps its logs as long as the job's own logs, then drops them."""
    return [aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="access-logs",
        status=ENABLED,
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_days),
        **_housekeeping(noncurrent_version_days, abort_incomplete_upload_days),
    )]
