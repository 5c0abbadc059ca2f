"""GCP IAM: no basic roles, no public members, no service-account keys, conditioned workload
identity, and no grant or custom role that can delete or overwrite backups."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policy.expectations import Expectations
from policy.multicloud.snapshots import gcp_delete_only_role
from policy.parsing import _as_list, parse_policy_document

GCP_PRIMITIVE_ROLES = ("roles/owner", "roles/editor", "roles/viewer")
GCP_PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")

# Custom-role permissions that would let a backup identity destroy or expose backups: deleting
# or overwriting objects, shortening an Unlocked retention, changing the bucket or its IAM.
GCP_DESTRUCTIVE_PERMISSIONS = re.compile(
    r"^(storage\.objects\.(delete|overrideUnlockedRetention)"
    r"|storage\.buckets\.(delete|update|enableObjectRetention)"
    r"|storage\.managedFolders\.delete|.*\.setIamPolicy|.*\*.*)$")


def check_gcp_custom_role(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    # The snapshot pruner's delete-only role: bound only with a content-prefix condition,
    # which multicloud-iam-delete-content-only checks on every binding of it.
    if gcp_delete_only_role(_as_list(p.get("permissions"))):
        return []
    return [f"custom role grants {perm}, which can destroy or expose backups"
            for perm in map(str, _as_list(p.get("permissions")))
            if GCP_DESTRUCTIVE_PERMISSIONS.match(perm)]


def _gcp_members(p: Mapping[str, Any]) -> list[str]:
    return [str(m) for m in _as_list(p.get("member")) + _as_list(p.get("members"))]


def check_gcp_iam_no_primitive_roles(_t: str, p: Mapping[str, Any],
                                     _c: Expectations | None) -> list[str]:
    role = str(p.get("role", ""))
    if role in GCP_PRIMITIVE_ROLES:
        return [f"grants the basic role {role}"]
    if _t.startswith("gcp:projects/") and (role.endswith("admin") or role.endswith("Admin")):
        return [f"grants the project-wide admin role {role}"]
    return []


# Predefined GCS roles a grant on the backup bucket may carry: read, list, create. Overwriting
# an object in GCS needs storage.objects.delete, which none of these has. Anything else on the
# bucket (storage.admin, objectAdmin, objectUser, legacyBucketOwner/Writer, legacyObjectOwner,
# folderAdmin, basic roles, a future predefined role) is refused: fail safe, not a deny list.
# Custom roles (projects/<p>/roles/<id>) pass here; gcp-iam-customrole-no-destructive-permissions
# judges their permissions.
GCS_BUCKET_SAFE_ROLES = frozenset({
    "roles/storage.objectViewer", "roles/storage.objectCreator",
    "roles/storage.legacyBucketReader", "roles/storage.legacyObjectReader",
    "roles/storage.bucketViewer",
})
# Project-wide grants reach the backup bucket too; these predefined roles can delete or
# overwrite its objects, or change the bucket, its retention or its IAM policy.
GCS_DESTRUCTIVE_ROLES = frozenset({
    "roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin",
    "roles/storage.objectUser", "roles/storage.legacyBucketOwner",
    "roles/storage.legacyBucketWriter", "roles/storage.legacyObjectOwner",
    "roles/storage.folderAdmin",
})
# Grants on the bucket, and on managed folders inside it (a folder grant of objectAdmin deletes
# the backups below it just as well).
GCS_BUCKET_IAM_TYPES = (
    "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:storage/bucketIAMPolicy:BucketIAMPolicy",
    "gcp:storage/managedFolderIamMember:ManagedFolderIamMember",
    "gcp:storage/managedFolderIamBinding:ManagedFolderIamBinding",
    "gcp:storage/managedFolderIamPolicy:ManagedFolderIamPolicy",
)
GCP_PROJECT_IAM_TYPES = ("gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding")


def _gcp_roles(p: Mapping[str, Any]) -> list[str]:
    """The roles a member, binding or whole IAM policy (policyData JSON) grants."""
    if "policyData" in p:
        doc = parse_policy_document(p.get("policyData")) or {}
        return [str(b.get("role", "")) for b in _as_list(doc.get("bindings"))
                if isinstance(b, Mapping)]
    return [str(p.get("role", ""))]


def check_gcs_grants_no_destructive_roles(t: str, p: Mapping[str, Any],
                                          _c: Expectations | None) -> list[str]:
    out = []
    for role in _gcp_roles(p):
        if t in GCP_PROJECT_IAM_TYPES:
            if role in GCS_DESTRUCTIVE_ROLES:
                out.append(f"grants {role} project-wide: it can delete or overwrite the "
                           "backups in every bucket of the project")
        elif role.startswith("roles/") and role not in GCS_BUCKET_SAFE_ROLES:
            what = ("can delete or overwrite backups" if role in GCS_DESTRUCTIVE_ROLES
                    else "is not known to leave backups intact")
            out.append(f"grants {role} on the backup bucket, which {what}: only "
                       f"{', '.join(sorted(GCS_BUCKET_SAFE_ROLES))} or a vetted custom role")
    return out


def check_gcp_iam_no_public_members(_t: str, p: Mapping[str, Any],
                                    _c: Expectations | None) -> list[str]:
    return [f"grants {p.get('role')} to {m}" for m in _gcp_members(p)
            if m in GCP_PUBLIC_MEMBERS]


def check_gcp_no_sa_keys(t: str, _p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    what = "an HMAC key" if t.endswith("hmacKey:HmacKey") else "a service-account key"
    return [f"declares {what}: a long-lived credential. Use workload identity federation"]


def check_gcp_wif_condition(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    if not str(p.get("attributeCondition") or "").strip():
        return ["provider has no attributeCondition: every identity of the trusted account "
                "can exchange tokens"]
    return []
