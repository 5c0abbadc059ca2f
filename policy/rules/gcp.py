"""The GCP rules of the pack (``gcp-*``): keys, the backup bucket, IAM, Cloud Run."""

from __future__ import annotations

from policy.gcp.cloudrun import check_cloudrun_no_credentials
from policy.gcp.iam import (
    GCP_PROJECT_IAM_TYPES,
    GCS_BUCKET_IAM_TYPES,
    check_gcp_custom_role,
    check_gcp_iam_no_primitive_roles,
    check_gcp_iam_no_public_members,
    check_gcp_no_sa_keys,
    check_gcp_wif_condition,
    check_gcs_grants_no_destructive_roles,
)
from policy.gcp.kms import check_gcp_kms_rotation, check_gcp_kms_signing_key
from policy.gcp.storage import (
    check_gcs_cmek,
    check_gcs_public_access,
    check_gcs_retention_locked,
    check_gcs_versioning_soft_delete,
)
from policy.multicloud.lifecycle import (
    check_lifecycle_gfs,
    check_lifecycle_min_duration,
)
from policy.rules.base import GCP_DOCS, LIFECYCLE_TYPES, Rule, _r

GCP_IAM_TYPES = tuple(
    f"gcp:{t}" for t in (
        "projects/iAMMember:IAMMember", "projects/iAMBinding:IAMBinding",
        "storage/bucketIAMMember:BucketIAMMember", "storage/bucketIAMBinding:BucketIAMBinding",
        "kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
        "kms/keyRingIAMMember:KeyRingIAMMember", "kms/keyRingIAMBinding:KeyRingIAMBinding",
        "serviceaccount/iAMMember:IAMMember", "serviceaccount/iAMBinding:IAMBinding",
        "secretmanager/secretIamMember:SecretIamMember",
        "secretmanager/secretIamBinding:SecretIamBinding",
        "cloudrunv2/jobIamMember:JobIamMember", "cloudrunv2/jobIamBinding:JobIamBinding",
        "artifactregistry/repositoryIamMember:RepositoryIamMember",
        "artifactregistry/repositoryIamBinding:RepositoryIamBinding",
    ))

GCP_RULES: tuple[Rule, ...] = (
    # --- GCP
    _r("gcp-kms-signing-key-one-signer",
       "The standby's manifest signing key is EC_SIGN_P256_SHA256, and its signer role is held "
       "by the standby's service account alone, through an authoritative binding.",
       "high", ["SC-12", "SC-13", "SI-7"], ["CIS GCP Foundations 3.0.0 1.11"],
       "Create the gcp.kms.CryptoKey with purpose ASYMMETRIC_SIGN and algorithm "
       "EC_SIGN_P256_SHA256, and grant roles/cloudkms.signer with one "
       "gcp.kms.CryptoKeyIAMBinding whose members are the standby's service account only.",
       f"{GCP_DOCS}/kms/docs/create-validate-signatures",
       ["gcp:kms/cryptoKey:CryptoKey", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
        "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding"], check_gcp_kms_signing_key),
    _r("gcp-kms-cryptokey-rotation-90d",
       "Cloud KMS keys rotate every 90 days or less.",
       "high", ["SC-12", "SC-28"], ["CIS GCP Foundations 3.0.0 1.10", "CIS Controls v8 3.11"],
       "Set rotation_period='7776000s' (90 days) or shorter on the gcp.kms.CryptoKey.",
       f"{GCP_DOCS}/kms/docs/key-rotation",
       ["gcp:kms/cryptoKey:CryptoKey"], check_gcp_kms_rotation),
    _r("gcp-storage-bucket-cmek",
       "GCS backup buckets encrypt by default with the Cloud KMS key (CMEK).",
       "high", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set encryption.default_kms_key_name to the crypto key and grant the GCS service agent "
       "roles/cloudkms.cryptoKeyEncrypterDecrypter on that key only.",
       f"{GCP_DOCS}/storage/docs/encryption/customer-managed-keys",
       ["gcp:storage/bucket:Bucket"], check_gcs_cmek),
    _r("gcp-storage-bucket-public-access-prevented",
       "GCS buckets enforce public access prevention and uniform bucket-level access.",
       "critical", ["AC-3", "AC-6"], ["CIS GCP Foundations 3.0.0 5.1",
                                      "CIS GCP Foundations 3.0.0 5.2"],
       "Set public_access_prevention='enforced' and uniform_bucket_level_access=True.",
       f"{GCP_DOCS}/storage/docs/public-access-prevention",
       ["gcp:storage/bucket:Bucket"], check_gcs_public_access),
    _r("gcp-storage-bucket-versioning-soft-delete",
       "GCS buckets keep versions and soft-delete for at least immutability.softDeleteDays.",
       "high", ["CP-9", "CP-10"], ["CIS Controls v8 11.3"],
       "Set versioning.enabled=True and soft_delete_policy.retention_duration_seconds = "
       "softDeleteDays * 86400.",
       f"{GCP_DOCS}/storage/docs/soft-delete",
       ["gcp:storage/bucket:Bucket"], check_gcs_versioning_soft_delete, needs=True),
    _r("gcp-storage-bucket-retention-locked",
       "Every GCS backup object is retained for at least immutability.lockDays, Locked in "
       "production: with Object Retention Lock (which, unlike a bucket retention policy, "
       "allows versioning) the bucket enables it and every job configured with the bucket "
       "sets VO2DR_GCS_RETENTION_DAYS and VO2DR_GCS_RETENTION_MODE; with a bucket retention "
       "policy, the policy covers lockDays and is locked in production.",
       "critical", ["CP-9", "SI-12"], ["CIS GCP Foundations 3.0.0 2.3", "CIS Controls v8 11.3"],
       "Set enable_object_retention=True on the bucket and add "
       "cfg.immutability.gcs_retention_env() to every job's settings (infra/runtime.py), or "
       "declare retention_policy with retention_period = lockDays * 86400 and, in production, "
       "is_locked=True.",
       f"{GCP_DOCS}/storage/docs/object-lock",
       ["gcp:storage/bucket:Bucket", "aws:lambda/function:Function", "gcp:cloudrunv2/job:Job"],
       check_gcs_retention_locked, scope="stack", needs=True),
    _r("gcp-storage-bucket-lifecycle-gfs",
       "The GCS bucket's lifecycle deletes and re-classes each GFS tier prefix on the "
       "stack's retention and tiering days.",
       "high", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4"],
       "Build lifecycle_rules from cfg.lifecycle; change vo2max-dr:retention / tiering, not "
       "code.",
       f"{GCP_DOCS}/storage/docs/lifecycle",
       [LIFECYCLE_TYPES[1]], check_lifecycle_gfs, needs=True),
    _r("gcp-storage-bucket-lifecycle-min-duration",
       "No GCS lifecycle rule moves or deletes an object before its class minimum (NEARLINE "
       "30, COLDLINE 90, ARCHIVE 365 days) or its lock.",
       "medium", ["SI-12", "CP-9"], ["CIS Controls v8 3.4"],
       "Drop the SetStorageClass action whose class the object would leave too early.",
       f"{GCP_DOCS}/storage/docs/storage-classes",
       [LIFECYCLE_TYPES[1]], check_lifecycle_min_duration),
    _r("gcp-iam-binding-no-primitive-roles",
       "No GCP grant uses the basic owner, editor or viewer roles, or a project-wide admin "
       "role.",
       "high", ["AC-6", "AC-3"], ["CIS GCP Foundations 3.0.0 1.5", "CIS Controls v8 5.4"],
       "Grant a predefined or custom role on the bucket, key or secret itself (e.g. "
       "roles/storage.objectCreator on the bucket).",
       f"{GCP_DOCS}/iam/docs/understanding-roles#basic",
       GCP_IAM_TYPES, check_gcp_iam_no_primitive_roles),
    _r("gcp-iam-customrole-no-destructive-permissions",
       "No GCP custom role can delete or overwrite objects, shorten a retention, or change a "
       "bucket or its IAM policy.",
       "high", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Keep custom roles to what the job does: storage.objects.create and "
       "storage.objects.setRetention (infra/gcp/access.py CREATOR_PERMISSIONS).",
       f"{GCP_DOCS}/iam/docs/creating-custom-roles",
       ["gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:organizations/iAMCustomRole:IAMCustomRole"], check_gcp_custom_role),
    _r("gcp-storage-bucketiammember-no-destructive-roles",
       "No grant on the GCS backup bucket (or project-wide) can delete or overwrite backups: "
       "no storage.admin, objectAdmin, objectUser, legacyBucketOwner/Writer, "
       "legacyObjectOwner or basic role; on the bucket only viewer/creator roles.",
       "critical", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Grant roles/storage.objectViewer to readers and the creator custom role "
       "(storage.objects.create + setRetention, infra/gcp/access.py) to writers.",
       f"{GCP_DOCS}/storage/docs/access-control/iam-roles",
       (*GCS_BUCKET_IAM_TYPES, *GCP_PROJECT_IAM_TYPES), check_gcs_grants_no_destructive_roles),
    _r("gcp-iam-binding-no-public-members",
       "No GCP grant names allUsers or allAuthenticatedUsers.",
       "critical", ["AC-3"], ["CIS GCP Foundations 3.0.0 5.1", "CIS Controls v8 3.3"],
       "Name the service account (serviceAccount:...) that needs the role.",
       f"{GCP_DOCS}/storage/docs/access-control/making-data-public",
       GCP_IAM_TYPES, check_gcp_iam_no_public_members),
    _r("gcp-serviceaccount-key-forbidden",
       "No service-account key or HMAC key is declared: the job authenticates with workload "
       "identity federation only.",
       "critical", ["IA-5", "AC-6"], ["CIS GCP Foundations 3.0.0 1.4", "CIS Controls v8 5.2"],
       "Remove the gcp.serviceaccount.Key / gcp.storage.HmacKey; let the AWS role impersonate "
       "the service account through the workload identity pool.",
       f"{GCP_DOCS}/iam/docs/workload-identity-federation",
       ["gcp:serviceaccount/key:Key", "gcp:storage/hmacKey:HmacKey"], check_gcp_no_sa_keys),
    _r("gcp-iam-workloadidentitypoolprovider-condition-set",
       "The workload identity provider admits only the named AWS roles (attributeCondition).",
       "high", ["AC-3", "AC-6", "IA-5"], ["CIS Controls v8 6.8"],
       "Set attribute_condition to match the job roles' session ARNs "
       "(attribute.aws_role in ['arn:aws:sts::<account>:assumed-role/<role>', ...]).",
       f"{GCP_DOCS}/iam/docs/workload-identity-federation-with-other-clouds",
       ["gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"],
       check_gcp_wif_condition),
    _r("gcp-cloudrunv2-job-no-plaintext-credentials",
       "The Cloud Run standby job runs as its own service account and reads secrets from "
       "Secret Manager, never from plain environment values.",
       "high", ["IA-5", "SC-28", "AC-6"], ["CIS Controls v8 3.11", "CIS Controls v8 16.1"],
       "Use envs[].value_source.secret_key_ref and set template.template.service_account.",
       f"{GCP_DOCS}/run/docs/configuring/jobs/secrets",
       ["gcp:cloudrunv2/job:Job"], check_cloudrun_no_credentials),
)
