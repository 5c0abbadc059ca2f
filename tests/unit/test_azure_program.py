"""The real program under Pulumi mocks, per stack: every property of the Azure Blob tertiary
store (issue 4), the scope of its role assignments, the federated credential for the AWS
writer role, that the three clouds tier on the same days, and that switching Azure off removes
exactly the Azure resources.

Expected numbers come from the same stack file, parsed by infra/config.py."""

from __future__ import annotations

import re

import pytest

from dev.mockrun import Graph, Resource, run_program, stack_config
from infra import config, config_base, config_keys
from infra.azure.access import MAX_FEDERATED_CREDENTIALS, WRITER_DATA_ACTIONS
from infra.azure.immutability_lock import LOCK_TYPE
from tests.program_graphs import program_graph

STACKS = ("staging", "production")
GROUP = "azure-native:resources:ResourceGroup"
VAULT = "azure-native:keyvault:Vault"
KEY = "azure-native:keyvault:Key"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED = "azure-native:managedidentity:FederatedIdentityCredential"
ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
CONTAINER = "azure-native:storage:BlobContainer"
IMMUTABILITY = "azure-native:storage:BlobContainerImmutabilityPolicy"
MANAGEMENT = "azure-native:storage:ManagementPolicy"
ROLE_DEF = "azure-native:authorization:RoleDefinition"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
DELETE_LOCK = "azure-native:authorization:ManagementLockByScope"
IMMUTABILITY_LOCK = LOCK_TYPE
BUILTIN = {
    "e147488a-f6f5-4113-8e2d-b22465e65bf6": "Key Vault Crypto Service Encryption User",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
}
FORBIDDEN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c4a72458": "User Access Administrator",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}
TIER_ACTIONS = {"Cool": "tierToCool", "Cold": "tierToCold", "Archive": "tierToArchive"}


def cfg_of(stack: str) -> config.StackConfig:
    return stack_config(stack)


@pytest.fixture(scope="module", params=STACKS)
def run(request) -> tuple[Graph, config.StackConfig]:
    return program_graph(request.param), cfg_of(request.param)


def is_azure(r: Resource) -> bool:
    # Also what an Azure component holds of another provider (the grant-propagation sleep).
    return r.type.startswith(("azure-native:", "vo2dr:azure:", LOCK_TYPE)) \
        or "::vo2dr:azure:" in r.urn


def identity(graph: Graph, role: str) -> Resource:
    return graph.one(IDENTITY, f"-{role}")


# ---- key vault and key ---------------------------------------------------------------------

def main_and_intraday(graph: Graph, type_: str) -> tuple[Resource, Resource]:
    """The main container's resource of ``type_`` and the intraday container's."""
    [main] = [r for r in graph.of_type(type_) if "-intraday-" not in r.name]
    [intraday] = [r for r in graph.of_type(type_) if "-intraday-" in r.name]
    return main, intraday


def test_vault_uses_rbac_with_purge_protection_and_soft_delete(run):
    graph, cfg = run
    p = graph.one(VAULT).inputs["properties"]
    assert p["enableRbacAuthorization"] is True
    assert p["enablePurgeProtection"] is True
    assert p["enableSoftDelete"] is True
    assert p["softDeleteRetentionInDays"] == cfg.immutability.soft_delete_days
    assert p["tenantId"] == cfg.azure.tenant_id
    assert not p.get("accessPolicies")


def test_key_rotates_on_the_configured_schedule(run):
    graph, cfg = run
    p = graph.one(KEY).inputs["properties"]
    assert p["kty"] == "RSA" and set(p["keyOps"]) == {"wrapKey", "unwrapKey"}
    policy = p["rotationPolicy"]
    assert policy["attributes"]["expiryTime"] == f"P{cfg.keys.expiry_days}D"
    [action] = policy["lifetimeActions"]
    assert action["action"]["type"] == "rotate"
    assert action["trigger"]["timeAfterCreate"] == f"P{cfg.keys.rotation_days}D"
    assert cfg.keys.rotation_days <= config_keys.KEY_ROTATION_MAX_DAYS


def test_cmk_identity_may_use_that_key_only(run):
    graph, _ = run
    key, cmk = graph.one(KEY), identity(graph, "cmk-identity")
    [grant] = [a for a in graph.of_type(ASSIGNMENT) if a.inputs["scope"] == key.outputs["id"]]
    assert grant.inputs["principalId"] == cmk.outputs["principalId"]
    assert grant.inputs["roleDefinitionId"].endswith("e147488a-f6f5-4113-8e2d-b22465e65bf6")


# ---- storage account -----------------------------------------------------------------------

def test_account_is_https_tls12_private_entra_only_and_double_encrypted(run):
    graph, _ = run
    acct = graph.one(ACCOUNT)
    a = acct.inputs
    assert a["kind"] == "StorageV2"
    assert a["enableHttpsTrafficOnly"] is True
    assert a["minimumTlsVersion"] == "TLS1_2"
    assert a["allowBlobPublicAccess"] is False
    assert a["allowSharedKeyAccess"] is False
    assert a["encryption"]["requireInfrastructureEncryption"] is True
    assert re.fullmatch(r"[a-z0-9]{3,24}", a["accountName"])


def test_account_is_encrypted_with_the_vault_key_through_the_cmk_identity(run):
    graph, _ = run
    acct, vault, key = graph.one(ACCOUNT), graph.one(VAULT), graph.one(KEY)
    cmk = identity(graph, "cmk-identity")
    enc = acct.inputs["encryption"]
    assert enc["keySource"] == "Microsoft.Keyvault"
    assert enc["keyVaultProperties"]["keyVaultUri"] == vault.outputs["properties"]["vaultUri"]
    assert enc["keyVaultProperties"]["keyName"] == key.outputs["name"]
    assert "keyVersion" not in enc["keyVaultProperties"]  # follows every rotation
    assert enc["encryptionIdentity"]["encryptionUserAssignedIdentity"] == cmk.outputs["id"]
    assert acct.inputs["identity"] == {"type": "UserAssigned",
                                       "userAssignedIdentities": [cmk.outputs["id"]]}
    grant = next(a for a in graph.of_type(ASSIGNMENT) if a.inputs["scope"] == key.outputs["id"])
    # Created after the grant, and after it has propagated (tests/unit/test_first_deploy.py).
    waits = [graph.by_urn(u) for u in acct.dependencies]
    assert any(grant.urn in w.dependencies for w in waits if w.type == "time:index/sleep:Sleep")


def test_blob_service_keeps_versions_and_soft_deletes(run):
    graph, cfg = run
    s = graph.one(BLOB_SERVICE).inputs
    days = cfg.immutability.soft_delete_days
    assert s["isVersioningEnabled"] is True
    assert s["deleteRetentionPolicy"] == {"enabled": True, "days": days,
                                          "allowPermanentDelete": False}
    assert s["containerDeleteRetentionPolicy"] == {"enabled": True, "days": days}


def test_container_is_private_and_immutable_for_lock_days(run):
    """The main container is locked lockDays; the intraday one, beside it, the intraday window
    (Azure locks per container: infra/azure/storage.py says why not per blob)."""
    graph, cfg = run
    containers = main_and_intraday(graph, CONTAINER)
    policies = main_and_intraday(graph, IMMUTABILITY)
    days = (cfg.immutability.lock_days, cfg.retention.intraday_days)
    assert containers[1].inputs["containerName"] == containers[0].inputs["containerName"] + \
        "-intraday"
    assert days[1] * 24 == cfg.strategy.intraday.hours < days[0] * 24
    for c, policy, lock_days in zip(containers, policies, days, strict=True):
        assert c.inputs["publicAccess"] == "None"
        assert c.inputs["immutableStorageWithVersioning"] == {"enabled": True}
        assert graph.one(BLOB_SERVICE).urn in c.dependencies
        p = policy.inputs
        assert p["containerName"] == c.outputs["name"]
        assert p["immutabilityPeriodSinceCreationInDays"] == lock_days
        assert p["allowProtectedAppendWrites"] is False


def test_production_locks_immutability_and_staging_does_not(run):
    graph, cfg = run
    production = cfg.environment == "production"
    for type_ in (ACCOUNT, CONTAINER, IMMUTABILITY, VAULT, KEY):
        assert {r.protect for r in graph.of_type(type_)} == {production}, type_
    locks = graph.of_type(DELETE_LOCK)
    policy, intraday_policy = main_and_intraday(graph, IMMUTABILITY)
    immutability_locks = [r for r in graph.of_type(IMMUTABILITY_LOCK)
                          if "-intraday-" not in r.name]
    intraday_locks = [r for r in graph.of_type(IMMUTABILITY_LOCK) if "-intraday-" in r.name]
    assert "azureImmutabilityLockCommand" not in graph.outputs  # no manual step any more
    if production:
        [lock] = locks
        assert lock.inputs["level"] == "CanNotDelete"
        assert lock.inputs["scope"] == graph.one(ACCOUNT).outputs["id"]
        # The immutability policy is locked by `pulumi up` itself: the lock resource names
        # exactly this policy, is registered after it, depends on it and is protected.
        [ilock] = immutability_locks
        assert ilock.inputs["policy_id"] == policy.outputs["id"]
        assert ilock.inputs["policy_id"].endswith(
            "/blobServices/default/containers/backups/immutabilityPolicies/default")
        assert ilock.inputs["lock_days"] == cfg.immutability.lock_days
        assert ilock.inputs["endpoint"] == "https://management.azure.com"
        assert policy.urn in ilock.dependencies
        assert graph.resources.index(policy) < graph.resources.index(ilock)
        assert ilock.protect
        assert ilock.parent == policy.parent  # inside the BlobStore component
        assert graph.outputs["azureImmutabilityState"] == "Locked"
        # The intraday container's policy is locked the same way, for the intraday window.
        [intraday_lock] = intraday_locks
        assert intraday_lock.inputs["policy_id"] == intraday_policy.outputs["id"]
        assert intraday_lock.inputs["policy_id"].endswith(
            "/containers/backups-intraday/immutabilityPolicies/default")
        assert intraday_lock.inputs["lock_days"] == cfg.retention.intraday_days
        assert intraday_policy.urn in intraday_lock.dependencies and intraday_lock.protect
    else:
        assert not locks and not immutability_locks and not intraday_locks
        assert graph.outputs["azureImmutabilityState"] == "Unlocked"


def test_management_policy_tiers_and_deletes_per_gfs_prefix(run):
    graph, cfg = run
    rules = graph.one(MANAGEMENT).inputs["policy"]["rules"]
    main, intraday = (c.outputs["name"] for c in main_and_intraday(graph, CONTAINER))
    # One rule per tier prefix, the report records' (tests/unit/test_report_records.py), and
    # per snapshot source its content pool and prune plans (tests/unit/test_snapshot_program.py).
    assert len(rules) == len(cfg.lifecycle) + 1 + 2 * len(cfg.snapshot_roots())
    by_prefix = {r["definition"]["filters"]["prefixMatch"][0]: r for r in rules}
    for tier in cfg.lifecycle:
        container = intraday if tier.tier == "intraday" else main
        rule = by_prefix[f"{container}/{tier.prefix}"]
        assert rule["enabled"] is True and rule["type"] == "Lifecycle"
        assert rule["definition"]["filters"]["blobTypes"] == ["blockBlob"]
        base = rule["definition"]["actions"]["baseBlob"]
        want = {TIER_ACTIONS[s.storage_class]: s.days for s in tier.transitions["azure"]}
        want["delete"] = tier.expire_days
        assert {k: v["daysAfterCreationGreaterThan"] for k, v in base.items()} == want
        version = rule["definition"]["actions"]["version"]
        # A version's age counts from its write: intraday versions go the day after their
        # window, the others after noncurrentVersionDays.
        assert version["delete"]["daysAfterCreationGreaterThan"] == (
            tier.expire_days + 1 if tier.tier == "intraday"
            else cfg.immutability.noncurrent_version_days)


# ---- identities and roles ------------------------------------------------------------------

def test_writer_role_creates_and_reads_blobs_but_never_deletes(run):
    graph, _ = run
    role = graph.one(ROLE_DEF, "access-writer-role").inputs
    assert role["roleType"] == "CustomRole"
    [perm] = role["permissions"]
    assert set(perm["dataActions"]) == set(WRITER_DATA_ACTIONS)
    assert not perm.get("actions")
    for action in perm["dataActions"]:
        assert "delete" not in action.lower() and "*" not in action
        assert action.startswith("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/")
    assert role["assignableScopes"] == [graph.one(GROUP).outputs["id"]]


def test_every_role_assignment_is_scoped_to_the_container_or_the_key(run):
    graph, _ = run
    containers = [c.outputs["id"] for c in main_and_intraday(graph, CONTAINER)]
    key = graph.one(KEY).outputs["id"]
    writer, reader = identity(graph, "access-writer"), identity(graph, "access-reader")
    custom = graph.one(ROLE_DEF, "access-writer-role").outputs["id"]
    # The snapshot pruner's assignments are conditioned and tested on their own
    # (tests/unit/test_snapshot_program.py).
    assignments = [a for a in graph.of_type(ASSIGNMENT) if "-pruner-" not in a.name]
    # Plus the drill's create-only grant on its records' prefix, checked in
    # tests/unit/test_report_records.py.
    assert len(assignments) == 6
    for a in assignments:
        assert a.inputs["scope"] in (*containers, key), a.inputs["scope"]
        guid = a.inputs["roleDefinitionId"].rsplit("/", 1)[1]
        assert guid not in FORBIDDEN_ROLES, FORBIDDEN_ROLES.get(guid)
        assert a.inputs["roleDefinitionId"] == custom or guid in BUILTIN
    # The same two grants on the main and the intraday container.
    for container in containers:
        on_container = {(a.inputs["principalId"], a.inputs["roleDefinitionId"].rsplit("/", 1)[1])
                        for a in assignments if a.inputs["scope"] == container
                        and not a.inputs.get("condition")}
        assert on_container == {
            (writer.outputs["principalId"], custom.rsplit("/", 1)[1]),
            (reader.outputs["principalId"], "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")}
        assert "/blobServices/default/containers/" in container


def federations(graph: Graph) -> dict[str, set[tuple[str, str]]]:
    """Identity ("writer"/"reader") -> the (issuer, subject) pairs it trusts."""
    names = {identity(graph, f"access-{k}").outputs["name"]: k for k in ("writer", "reader")}
    names[identity(graph, "pruner-identity").outputs["name"]] = "pruner"
    out: dict[str, set[tuple[str, str]]] = {"writer": set(), "reader": set(), "pruner": set()}
    for cred in graph.of_type(FEDERATED):
        c = cred.inputs
        assert c["audiences"] == ["api://AzureADTokenExchange"], cred.name
        out[names[c["resourceName"]]].add((c["issuer"], c["subject"]))
    return out


def test_each_identity_trusts_exactly_its_roles_without_a_secret(run):
    graph, _ = run
    o = graph.outputs
    [aws_issuer] = {c.inputs["issuer"] for c in graph.of_type(FEDERATED)
                    if "amazonaws" in c.inputs["issuer"] or c.inputs["issuer"].endswith(".aws")}
    assert re.fullmatch(r"https://[0-9a-f-]{36}\.tokens\.sts\.global\.api\.aws", aws_issuer)
    standby_sa = graph.one("gcp:serviceaccount/account:Account", "standby-job-sa")
    assert standby_sa.outputs["uniqueId"].isdigit()
    # Writer identity (create-only role): the AWS backup writer role, and the Cloud Run
    # standby's service account through Google-signed ID tokens (AWS may be down).
    # Reader identity (Storage Blob Data Reader): the AWS monitor (status) and restore reader
    # (drill) roles. Subjects are the role ARNs, the `sub` of AWS outbound identity tokens.
    assert federations(graph) == {
        "writer": {(aws_issuer, o["awsBackupWriterRoleArn"]),
                   ("https://accounts.google.com", standby_sa.outputs["uniqueId"])},
        "reader": {(aws_issuer, o["awsMonitorRoleArn"]),
                   (aws_issuer, o["awsRestoreReaderRoleArn"])},
        # The snapshot pruner's identity: the AWS pruner role only.
        "pruner": {(aws_issuer, o["awsPrunerRoleArn"])},
    }
    # No client secret or certificate credential of any kind.
    assert not [r for r in graph.resources if is_azure(r) and re.search(
        r"(secret|certificate|password|listStorageAccountKeys)", r.type, re.I)]


def test_federated_credentials_are_within_entra_limits_and_created_one_at_a_time(run):
    """Entra allows at most 20 per identity and refuses concurrent writes on one identity."""
    graph, _ = run
    by_identity: dict[str, list[Resource]] = {}
    for cred in graph.of_type(FEDERATED):
        by_identity.setdefault(cred.inputs["resourceName"], []).append(cred)
    assert len(by_identity) == 3  # writer, reader, snapshot pruner
    for creds in by_identity.values():
        assert len(creds) <= MAX_FEDERATED_CREDENTIALS == 20
        assert len({c.inputs["federatedIdentityCredentialResourceName"] for c in creds}) == len(
            creds)
        urns = {c.urn for c in creds}
        # A chain: every credential but the first waits for exactly one other of its identity.
        waits = [len(urns & set(c.dependencies)) for c in creds]
        assert sorted(waits) == [0] + [1] * (len(creds) - 1), waits


def test_a_twenty_first_federated_credential_is_refused():
    from infra.azure.access import ContainerAccess

    access = ContainerAccess.__new__(ContainerAccess)
    access._credential_count = {"writer": MAX_FEDERATED_CREDENTIALS, "reader": 0}
    with pytest.raises(ValueError, match="more than 20 federated credentials"):
        access.trust_google_service_account("one-too-many", "123")


def test_exports_for_the_job(run):
    graph, cfg = run
    o = graph.outputs
    acct = graph.one(ACCOUNT).outputs["name"]
    assert o["azureContainerUrl"] == (
        f"https://{acct}.blob.core.windows.net/"
        f"{main_and_intraday(graph, CONTAINER)[0].outputs['name']}")
    assert o["azureWriterClientId"] == identity(graph, "access-writer").outputs["clientId"]
    assert o["azureReaderClientId"] == identity(graph, "access-reader").outputs["clientId"]
    assert o["azureTenantId"] == cfg.azure.tenant_id


def test_resources_carry_the_tags(run):
    graph, cfg = run
    for type_ in (GROUP, VAULT, KEY, ACCOUNT, IDENTITY):
        for r in graph.of_type(type_):
            assert r.inputs["tags"]["environment"] == cfg.environment, r.name
            assert {"owner", "data-classification"} <= set(r.inputs["tags"]), r.name


# ---- one place for all three clouds' tiers -------------------------------------------------

def test_all_three_clouds_tier_and_expire_on_the_configured_days(run):
    graph, cfg = run
    env = cfg.environment
    s3 = {r["filter"]["prefix"]: r for rule in graph.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        for r in rule.inputs["rules"]
        if r["filter"].get("prefix", "").startswith(("database/", "application/", "logs/"))}
    gcs = graph.one("gcp:storage/bucket:Bucket").inputs["lifecycleRules"]
    azure = {r["definition"]["filters"]["prefixMatch"][0].split("/", 1)[1]: r
             for r in graph.one(MANAGEMENT).inputs["policy"]["rules"]}
    for tier in cfg.lifecycle:
        # The database's tiers, and the same for each application source (issue 16).
        assert tier.prefix == (f"database/{env}/{tier.tier}/" if tier.source == "database"
                               else f"logs/{env}/{tier.tier}/" if tier.source == "logs"
                               else f"application/{env}/{tier.source}/{tier.tier}/")
        want = {c: sorted(s.days for s in tier.transitions[c]) for c in config_base.CLOUDS}
        got = {
            "aws": sorted(int(t["days"]) for t in s3[tier.prefix].get("transitions") or []),
            "gcp": sorted(int(r["condition"]["age"]) for r in gcs
                          if r["action"]["type"] == "SetStorageClass"
                          and r["condition"]["matchesPrefixes"] == [tier.prefix]),
            "azure": sorted(v["daysAfterCreationGreaterThan"] for k, v in
                            azure[tier.prefix]["definition"]["actions"]["baseBlob"].items()
                            if k != "delete"),
        }
        assert got == want, tier.tier
        # The steps are the same three days everywhere; only the per-class minimums differ.
        assert set().union(*want.values()) <= set(cfg.tiering.steps)
        expiry = {
            "aws": int(s3[tier.prefix]["expiration"]["days"]),
            "gcp": next(int(r["condition"]["age"]) for r in gcs if r["action"]["type"] == "Delete"
                        and r["condition"]["matchesPrefixes"] == [tier.prefix]),
            "azure": azure[tier.prefix]["definition"]["actions"]["baseBlob"]["delete"][
                "daysAfterCreationGreaterThan"],
        }
        assert set(expiry.values()) == {cfg.retention.days(tier.tier)}, tier.tier


# ---- on/off --------------------------------------------------------------------------------

def test_disabling_azure_removes_exactly_the_azure_resources():
    full = program_graph("production")
    off = run_program("production", {"vo2max-dr:clouds.azure.enabled": False})
    assert not [r for r in off.resources if is_azure(r)]
    assert {(r.type, r.name) for r in off.resources} == {
        (r.type, r.name) for r in full.resources if not is_azure(r)}
    assert not [k for k in off.outputs if k.startswith("azure")]
    assert "gcsBucketName" in off.outputs
