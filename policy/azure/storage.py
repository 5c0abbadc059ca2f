"""Azure Storage: the backup account's CMK, TLS, public and shared-key access, versioning and
soft delete, container immutability (locked in production), the delete lock, and the settings
every account must have."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.expectations import Expectations
from policy.multicloud.intraday import _is_intraday_container
from policy.parsing import _days, _num, get
from policy.resources import AZ, Finding, Res, _of


def check_azure_storage_cmk(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if get(p, "encryption.keySource") != "Microsoft.Keyvault":
        out.append(f"encryption.keySource is {get(p, 'encryption.keySource')!r}, not "
                   "Microsoft.Keyvault: data is encrypted with a Microsoft-managed key")
    elif not (get(p, "encryption.keyVaultProperties.keyName")
              and get(p, "encryption.keyVaultProperties.keyVaultUri")):
        out.append("encryption.keyVaultProperties does not name the key and vault")
    if get(p, "encryption.requireInfrastructureEncryption") is not True:
        out.append("infrastructure (double) encryption is off "
                   "(encryption.requireInfrastructureEncryption)")
    return out


def check_azure_storage_tls(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if p.get("enableHttpsTrafficOnly") is not True:
        out.append("storage account accepts plain HTTP (enableHttpsTrafficOnly is not true)")
    if p.get("minimumTlsVersion") not in ("TLS1_2", "TLS1_3"):
        out.append(f"minimumTlsVersion is {p.get('minimumTlsVersion')!r}, not TLS1_2 or later")
    return out


def check_azure_storage_public(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    if t == "azure-native:storage:BlobContainer":
        level = p.get("publicAccess", "None")
        return [] if level == "None" else [f"container publicAccess is {level!r}, not None"]
    return [] if p.get("allowBlobPublicAccess") is False else [
        "storage account allows public blob access (allowBlobPublicAccess is not false)"]


def check_azure_storage_shared_key(_t: str, p: Mapping[str, Any],
                                   _c: Expectations | None) -> list[str]:
    return [] if p.get("allowSharedKeyAccess") is False else [
        "storage account allows shared-key access (allowSharedKeyAccess is not false): "
        "anyone holding an account key bypasses Entra ID and RBAC"]


def check_azure_blob_soft_delete(_t: str, p: Mapping[str, Any],
                                 c: Expectations | None) -> list[str]:
    out = []
    if p.get("isVersioningEnabled") is not True:
        out.append("blob versioning is off (isVersioningEnabled)")
    for key in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        if get(p, f"{key}.enabled") is not True:
            out.append(f"{key} is off: a deleted {'blob' if key[0] == 'd' else 'container'} "
                       "is gone at once")
        elif c is not None and (_num(get(p, f"{key}.days")) or 0) < c.soft_delete_days:
            out.append(f"{key} keeps {_days(get(p, f'{key}.days'))} days, less than "
                       f"immutability.softDeleteDays ({c.soft_delete_days})")
    return out


def check_azure_immutability(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    out = []
    if t == "azure-native:storage:BlobContainerImmutabilityPolicy":
        days = _num(p.get("immutabilityPeriodSinceCreationInDays"))
        if not days:
            return ["immutability policy has no immutabilityPeriodSinceCreationInDays"]
        # The intraday container is locked for the intraday window instead
        # (multicloud-storage-intraday-lock-window checks it).
        intraday = _is_intraday_container(p.get("containerName"))
        if c is not None and days < c.lock_days and not intraday:
            out.append(f"immutability period is {_days(days)} days, less than "
                       f"immutability.lockDays ({c.lock_days})")
        if p.get("allowProtectedAppendWrites") or p.get("allowProtectedAppendWritesAll"):
            out.append("immutability policy allows appends to protected blobs")
        return out
    policy = get(p, "immutableStorageWithVersioning.immutabilityPolicy")
    if isinstance(policy, Mapping) and c is not None:
        days = _num(policy.get("immutabilityPeriodSinceCreationInDays")) or 0
        if days < c.lock_days:
            out.append(f"account immutability period is {_days(days)} days, less than "
                       f"immutability.lockDays ({c.lock_days})")
    return out


def _account_of(r: Res, accounts: Sequence[Res]) -> Res | None:
    for account in accounts:
        if account.urn in r.dependencies or (
                r.props.get("accountName") not in (None, "")
                and r.props.get("accountName") == account.props.get("accountName")):
            return account
    return None


def check_azure_delete_lock(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    """Production: Azure creates every immutability policy unlocked, so until the one-time lock
    the account must at least be protected from deletion by a CanNotDelete management lock."""
    if c is None or not c.production:
        return []
    locks = [r for r in _of(resources, "azure-native:authorization:ManagementLockByScope")
             if r.props.get("level") == "CanNotDelete"]
    out = []
    for account in _of(resources, f"{AZ}StorageAccount"):
        ids = {account.urn, str(account.props.get("id", ""))}
        if not any(account.urn in lock.dependencies or str(lock.props.get("scope")) in ids
                   for lock in locks):
            out.append(Finding(f"production storage account {account.name} has no "
                               "CanNotDelete management lock", account.urn))
    return out


def check_azure_immutability_locked(resources: Sequence[Res],
                                    c: Expectations | None) -> list[Finding]:
    """Production: each container immutability policy is Locked, or locked by ``pulumi up``:
    Azure creates every policy unlocked and locks it only by a separate call (POST
    .../immutabilityPolicies/default/lock with the ETag), which the program's
    ImmutabilityPolicyLock dynamic resource makes. So a policy passes when its deployed state is
    Locked, or when a lock resource depends on it (or names its id)."""
    if c is None or not c.production:
        return []
    locks = _of(resources, AZURE_IMMUTABILITY_LOCK_TYPE)
    out = []
    for policy in _of(resources, f"{AZ}BlobContainerImmutabilityPolicy"):
        state = policy.props.get("state")
        if state == "Locked":
            continue
        ids = {policy.urn, str(policy.props.get("id") or policy.urn)}
        mine = [lock for lock in locks
                if policy.urn in lock.dependencies or lock.props.get("policy_id") in ids]
        if not mine:
            out.append(Finding(f"immutability policy {policy.name} is {state or 'not yet created'}"
                               " in production and nothing locks it: declare "
                               "ImmutabilityPolicyLock (infra/azure/immutability_lock.py) "
                               "depending on it", policy.urn))
        for lock in mine:
            if lock.props.get("state") not in (None, "Locked"):
                out.append(Finding(f"immutability lock {lock.name} reports state "
                                   f"{lock.props.get('state')!r}, not 'Locked'", lock.urn))
    for account in _of(resources, f"{AZ}StorageAccount"):
        policy = get(account.props, "immutableStorageWithVersioning.immutabilityPolicy")
        if isinstance(policy, Mapping) and policy.get("state") != "Locked":
            out.append(Finding(f"account immutability policy of {account.name} is "
                               f"{policy.get('state')!r} in production", account.urn))
    return out


# The program's dynamic resource that locks a container immutability policy during `pulumi up`
# (infra/azure/immutability_lock.py; a test keeps the two names equal).
AZURE_IMMUTABILITY_LOCK_TYPE = "pulumi-python:dynamic/vo2dr:AzureImmutabilityPolicyLock"


def check_azure_storage_controls_complete(resources: Sequence[Res],
                                          c: Expectations | None) -> list[Finding]:
    out = []
    for account in _of(resources, f"{AZ}StorageAccount"):
        def mine(r: Res, account: Res = account) -> bool:
            return account.urn in r.dependencies or (
                r.props.get("accountName") not in (None, "")
                and r.props.get("accountName") == account.props.get("accountName"))
        for what, type_ in (("blob service properties (versioning, soft delete)",
                             f"{AZ}BlobServiceProperties"),
                            ("lifecycle management policy", f"{AZ}ManagementPolicy"),
                            ("blob container", f"{AZ}BlobContainer")):
            if not any(mine(r) for r in _of(resources, type_)):
                out.append(Finding(f"storage account {account.name} has no {what}", account.urn))
        account_policy = get(account.props, "immutableStorageWithVersioning.immutabilityPolicy")
        container_policies = [r for r in _of(resources, f"{AZ}BlobContainerImmutabilityPolicy")
                              if mine(r)]
        if account_policy is None and not container_policies:
            out.append(Finding(f"storage account {account.name} has no time-based "
                               "immutability policy on its backups", account.urn))
    return out
