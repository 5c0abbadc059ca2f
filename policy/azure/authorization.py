"""Azure authorization: no privileged or wildcard roles, and no role assignment that can delete
or (outside WORM) overwrite backups on a backup store."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.azure.storage import _account_of
from policy.expectations import Expectations
from policy.multicloud.snapshots import azure_content_delete_assignment, azure_delete_only_role
from policy.parsing import _as_list, get
from policy.resources import AZ, Finding, Res, _of

# Built-in Azure roles that are owner/contributor-class, or that hand out account keys.
AZURE_PRIVILEGED_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}
# Built-in Azure data roles that delete or overwrite blobs (named in findings).
AZURE_DATA_WRITE_ROLES = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
}


def check_azure_role_assignment(_t: str, p: Mapping[str, Any],
                                _c: Expectations | None) -> list[str]:
    role_id = str(p.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    if role_id in AZURE_PRIVILEGED_ROLES:
        return [f"assigns the privileged built-in role {AZURE_PRIVILEGED_ROLES[role_id]}"]
    scope = str(p.get("scope", ""))
    if re.fullmatch(r"/subscriptions/[^/]+/?", scope) or scope in ("", "/"):
        return [f"assigns a role at subscription scope {scope!r}: scope it to the container"]
    return []


def check_azure_role_definition(_t: str, p: Mapping[str, Any],
                                _c: Expectations | None) -> list[str]:
    out = []
    for perm in _as_list(p.get("permissions")):
        for key in ("actions", "dataActions"):
            out += [f"role definition {key} include the wildcard {a!r}"
                    for a in _as_list(get(perm, key)) if "*" in str(a)]
    return out


AZURE_ROLE_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"
# Built-in roles that may be assigned on a backup storage account or container: Storage Blob
# Data Reader (read and list only). Any other built-in role there is refused (fail safe).
AZURE_STORE_SAFE_BUILTIN_ROLES = {
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader"}
# Custom-role operations that delete backups or weaken what keeps them (immutability, soft
# delete, versioning, lifecycle), or hand out keys. "blobs/write" (which can overwrite) is
# allowed only on a container whose time-based immutability policy refuses overwriting.
AZURE_DESTRUCTIVE_OPERATION = re.compile(
    r"(\*|/delete$|/deleteBlobVersion/action$|/permanentDelete/action$"
    r"|immutabilityPolicies/(write|delete)$"
    r"|/blobServices/write$|/managementPolicies/write$|/storageAccounts/write$"
    r"|/listKeys/action$|/regeneratekey/action$|/containers/write$|/setImmutabilityPolicy/action"
    r"|/setLegalHold/action|/clearLegalHold/action)", re.I)
AZURE_OVERWRITE_OPERATION = re.compile(r"/containers/blobs/write$", re.I)


def _azure_store_ids(resources: Sequence[Res]) -> list[tuple[Res, str]]:
    return [(r, str(r.props.get("id") or "")) for r in
            _of(resources, f"{AZ}StorageAccount", f"{AZ}BlobContainer")]


def _covers(scope: str, assignment: Res, store: Res, store_id: str) -> bool:
    """Does a role assignment at ``scope`` reach ``store`` (the store itself, or a parent
    scope: its resource group, subscription or management group)?"""
    if store.urn in assignment.dependencies:
        return True
    scope = scope.rstrip("/").lower()
    sid = store_id.lower()
    return bool(scope) and bool(sid) and (sid == scope or sid.startswith(scope + "/"))


def check_azure_backup_grants(resources: Sequence[Res],
                              _c: Expectations | None) -> list[Finding]:
    """Every role assignment that reaches a backup storage account or container grants only
    reading, or a custom role that can neither delete nor (outside WORM) overwrite."""
    stores = _azure_store_ids(resources)
    definitions = _of(resources, "azure-native:authorization:RoleDefinition")
    worm = _of(resources, f"{AZ}BlobContainerImmutabilityPolicy")
    out = []
    for a in _of(resources, "azure-native:authorization:RoleAssignment"):
        scope = str(a.props.get("scope") or "")
        reached = [s for s, sid in stores if _covers(scope, a, s, sid)]
        if not reached:
            continue
        role_id = str(a.props.get("roleDefinitionId") or "")
        guid = role_id.rsplit("/", 1)[-1].lower()
        custom = [d for d in definitions
                  if d.urn in a.dependencies or (role_id and role_id == str(d.props.get("id")))]
        if not custom:
            if guid not in AZURE_STORE_SAFE_BUILTIN_ROLES:
                name = AZURE_PRIVILEGED_ROLES.get(guid) or AZURE_DATA_WRITE_ROLES.get(guid) \
                    or guid
                out.append(Finding(f"{a.name} assigns role {name} on backup store "
                                   f"{reached[0].name}: only Storage Blob Data Reader or a "
                                   "vetted custom role may be assigned there", a.urn))
            continue
        ops = [str(op) for d in custom for perm in _as_list(d.props.get("permissions"))
               for key in ("actions", "dataActions") for op in _as_list(get(perm, key))]
        bad = [op for op in ops if AZURE_DESTRUCTIVE_OPERATION.search(op)]
        # The snapshot pruner's delete-only role, assigned with a content-path condition
        # (multicloud-iam-delete-content-only holds it there).
        if bad and len(custom) == 1 and azure_delete_only_role(custom[0]) \
                and azure_content_delete_assignment(a, _c):
            bad = []
        if bad:
            out.append(Finding(f"{a.name} assigns a role that allows {', '.join(bad)} on backup "
                               f"store {reached[0].name}", a.urn))
        overwrite = [op for op in ops if AZURE_OVERWRITE_OPERATION.search(op)]
        protected = all(any(_account_of(w, [s]) or s.urn in w.dependencies for w in worm)
                        for s in reached)
        if overwrite and not protected:
            out.append(Finding(f"{a.name} allows overwriting blobs ({overwrite[0]}) on "
                               f"{reached[0].name}, which has no time-based immutability "
                               "policy to refuse it", a.urn))
    return out
