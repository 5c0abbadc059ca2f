"""The rules that read every cloud at once (``multicloud-*``): the retention floor and the second
cloud, the intraday tier, the report records and the snapshots with dedup."""

from __future__ import annotations

from policy.gcp.iam import (
    GCS_BUCKET_IAM_TYPES,
)
from policy.multicloud.intraday import (
    check_intraday_expiry,
    check_intraday_lock,
    check_no_lock_shortening,
)
from policy.multicloud.lifecycle import (
    check_retention_floor,
)
from policy.multicloud.reports import (
    check_report_grants_scoped,
    check_reports_retention,
)
from policy.multicloud.snapshots import (
    check_content_no_expiry,
    check_delete_content_only,
)
from policy.multicloud.stores import STORE_TYPES, check_two_clouds
from policy.resources import AZ
from policy.rules.base import AWS_DOCS, AZ_DOCS, LIFECYCLE_TYPES, Rule, _r

MULTICLOUD_RULES: tuple[Rule, ...] = (
    # --- stack-wide
    _r("multicloud-storage-lifecycle-retention-floor",
       "No cloud deletes a GFS tier before the organisation's retention floor (default 30 "
       "days, 12 weeks, 12 months, 7 years), whatever the stack file says.",
       "critical", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4", "CIS Controls v8 11.2"],
       "Raise vo2max-dr:retention back to at least the floor (or change the floor through "
       "policy config minimumRetentionDays with the compliance owner's approval).",
       f"{AWS_DOCS}/prescriptive-guidance/latest/backup-recovery/backup-recovery.html",
       LIFECYCLE_TYPES, check_retention_floor,
       config={"minimumRetentionDays": {"type": "object",
                                        "description": "days per GFS tier"}}),
    _r("multicloud-storage-backups-min-two-clouds",
       "Production keeps backup copies in at least two clouds, and every cloud the stack "
       "enables declares its store.",
       "critical", ["CP-9", "CP-6", "CP-10"], ["CIS Controls v8 11.4"],
       "Enable gcp and/or azure in vo2max-dr:clouds and wire their store in infra/program.py.",
       f"{AWS_DOCS}/whitepapers/latest/disaster-recovery-workloads-on-aws/"
       "disaster-recovery-options-in-the-cloud.html",
       list(STORE_TYPES.values()), check_two_clouds, scope="stack", needs=True),
    # --- the intraday tier (kept together)
    _r("multicloud-storage-intraday-lifecycle-expiry",
       "Each cloud expires the intraday prefix when retention.intradayHours ends and never "
       "moves intraday objects to a colder class (on Azure, in the intraday container).",
       "high", ["CP-9", "SI-12"], ["CIS Controls v8 3.4"],
       "Build the lifecycle rules from cfg.lifecycle, whose intraday entry expires at the "
       "window and has no transitions (infra/config_storage.py lifecycle_plan).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html",
       LIFECYCLE_TYPES, check_intraday_expiry, needs=True),
    _r("multicloud-storage-intraday-lock-window",
       "Intraday objects are locked until their window ends in every cloud: S3 and GCS by "
       "their own retain-until time (every job's VO2DR_STRATEGY carries the window, compliance "
       "in production, and the S3 writer may send it), Azure by the intraday container's "
       "immutability policy.",
       "critical", ["CP-9", "SI-12", "SC-28"], ["CIS Controls v8 11.3"],
       "Keep retention.intradayHours in whole days; pass cfg.strategy.to_json() to every job; "
       "grant the S3 writer s3:PutObjectRetention; declare the '<container>-intraday' policy "
       "with immutability_period_since_creation_in_days = the window (infra/azure/storage.py).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock-overview.html",
       [f"{AZ}BlobContainerImmutabilityPolicy", "aws:lambda/function:Function",
        "gcp:cloudrunv2/job:Job", "aws:iam/rolePolicy:RolePolicy"],
       check_intraday_lock, scope="stack", needs=True),
    _r("multicloud-iam-no-lock-shortening",
       "No identity can shorten or lift a lock or delete a locked backup: no S3 governance "
       "bypass, object-lock configuration change or object delete; no Azure blob "
       "immutability, delete or version-delete action; no GCS retention override or object "
       "delete. Setting a lock when an object is created stays allowed.",
       "critical", ["AC-6", "CP-9", "SI-12"], ["CIS Controls v8 11.3", "CIS Controls v8 6.8"],
       "Remove the action from the policy or role; the S3 writer needs only s3:PutObject, "
       "s3:PutObjectRetention and s3:AbortMultipartUpload; the Azure writer only blob write, "
       "add and read.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock-managing.html",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role",
        "aws:s3/bucketPolicy:BucketPolicy", "azure-native:authorization:RoleDefinition",
        "gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:organizations/iAMCustomRole:IAMCustomRole"],
       check_no_lock_shortening),
    # --- The report records (issue 18): reports/<env>/ in every store
    _r("multicloud-storage-reports-retention",
       "The report records (drill results, failed backup attempts under reports/<env>/) are "
       "kept at least as long as the yearly tier in every store, then expired, and never "
       "moved to a class that needs a restore before it can be read.",
       "high", ["AU-11", "CP-9", "SI-12"], ["CIS Controls v8 8.10", "CIS Controls v8 11.1"],
       "Give the store a lifecycle rule for reports/<env>/ that expires after the yearly "
       "tier's days (retention.yearlyYears), with no Glacier, Deep Archive or Archive step, "
       "and no other rule that expires them sooner.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lifecycle-mgmt.html",
       LIFECYCLE_TYPES, check_reports_retention, needs=True),
    _r("multicloud-iam-report-grants-scoped",
       "A conditional grant that lets an identity create report records (a GCS IAM Condition "
       "on the object name, an Azure ABAC condition on the blob path) opens exactly one kind "
       "of this stack's records, reports/<env>/drills/ or attempts/, and on Azure guards "
       "every create action of the role.",
       "high", ["AC-3", "AC-6"], ["CIS Controls v8 3.3", "CIS Controls v8 6.8"],
       "GCS: condition expression resource.name.startsWith(\"projects/_/buckets/<bucket>/"
       "objects/reports/<env>/drills/\"). Azure: guard blobs/write and blobs/add/action with "
       "@Resource[...blobs:path] StringStartsWith 'reports/<env>/drills/' (version 2.0).",
       f"{AZ_DOCS}/storage/blobs/storage-auth-abac-examples",
       [*GCS_BUCKET_IAM_TYPES, "azure-native:authorization:RoleAssignment"],
       check_report_grants_scoped),
    # --- snapshots with dedup (issue 17, kept together)
    _r("multicloud-storage-lifecycle-content-no-expiry",
       "No lifecycle rule of any cloud expires an object under a snapshot source's content/ "
       "prefix (by age or date, whatever the rule's prefix: no broader rule reaches it either), "
       "or moves one to a class that needs a rehydration before it can be read.",
       "critical", ["CP-9", "SI-12", "AU-11"], ["CIS Controls v8 11.2", "CIS Controls v8 3.4"],
       "Give <root>content/ its own transitions-only rule (infra/config_storage.py "
       "content_transitions) and keep every expiring rule on a tier prefix (<root><tier>/), "
       "never on <root> or above.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/intro-lifecycle-rules.html",
       LIFECYCLE_TYPES, check_content_no_expiry, needs=True),
    _r("multicloud-iam-delete-content-only",
       "The only delete grant on a backup store is the snapshot pruner's: s3:DeleteObject, a "
       "GCS delete-only role or an Azure delete-only role, limited to <root>content/ (resource "
       "ARNs, an IAM Condition, an ABAC condition on the blob path); the backup writer never "
       "deletes; and whoever deletes content writes only under <root>prune/.",
       "critical", ["AC-6", "CP-9", "AC-3"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Declare the pruner with infra/aws/pruner.py, infra/gcp/pruner.py and "
       "infra/azure/pruner.py; never grant a delete to the writer or on another prefix.",
       f"{AZ_DOCS}/storage/blobs/storage-auth-abac-attributes",
       ["aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/role:Role",
        "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:projects/iAMCustomRole:IAMCustomRole",
        "azure-native:authorization:RoleAssignment",
        "azure-native:authorization:RoleDefinition",
        "azure-native:managedidentity:UserAssignedIdentity"],
       check_delete_content_only, scope="stack"),
)
