"""The intraday tier's rules beyond their one-field cases (tests/policy/cases.py): each cloud's
way to get the expiry or the lock wrong, and each cloud's way to let a writer shorten a lock."""

from __future__ import annotations

import json

import pytest

from policy import policies as P
from tests.policy.cases import (
    IMMUTABILITY,
    INTRADAY_WRITER_POLICY,
    PRODUCTION,
    STAGING,
    at,
    drop,
    gcs_bucket,
    in_json,
    intraday_lifecycle,
    intraday_stack,
    management_policy,
    replace,
)

EXPIRY = P.RULES_BY_NAME["multicloud-storage-intraday-lifecycle-expiry"]
LOCK = P.RULES_BY_NAME["multicloud-storage-intraday-lock-window"]
SHORTEN = P.RULES_BY_NAME["multicloud-iam-no-lock-shortening"]
AZ_POLICY = "azure-native:storage:ManagementPolicy"
ROLE_DEF = "azure-native:authorization:RoleDefinition"
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"


def messages(rule, good, ctx=PRODUCTION) -> list[str]:
    if rule.scope == "stack":
        return [f.message for f in rule.check(good, ctx)]
    return rule.check(*good, ctx)


def azure_intraday_policy(container: str = "backups-intraday") -> dict:
    props = management_policy()
    props["policy"]["rules"].append({
        "name": "gfs-intraday", "enabled": True, "type": "Lifecycle",
        "definition": {"filters": {"blobTypes": ["blockBlob"], "prefixMatch": [
            f"{container}/database/production/intraday/"]},
            "actions": {"baseBlob": {"delete": {"daysAfterCreationGreaterThan": 3.0}}}}})
    return props


def gcs_with_intraday() -> dict:
    props = gcs_bucket()
    props["lifecycleRules"].insert(0, {
        "condition": {"age": 3.0, "matchesPrefixes": ["database/production/intraday/"],
                      "withState": "LIVE"}, "action": {"type": "Delete"}})
    return props


def test_every_cloud_must_expire_the_intraday_prefix_on_time_without_tiering():
    assert messages(EXPIRY, ("gcp:storage/bucket:Bucket", gcs_with_intraday())) == []
    assert messages(EXPIRY, (AZ_POLICY, azure_intraday_policy())) == []
    # No rule at all: the tier would keep every backup of the day.
    missing = messages(EXPIRY, ("gcp:storage/bucket:Bucket", gcs_bucket()))
    assert missing and "no lifecycle rule for database/production/intraday/" in missing[0]
    # A transition: intraday objects would pay a colder class's minimum.
    moved = at("rules[0].transitions", [{"days": 1.0, "storageClass": "STANDARD_IA"}])(
        intraday_lifecycle())
    assert any("moves intraday objects" in m for m in messages(
        EXPIRY, (P.LIFECYCLE_TYPES[0], moved)))
    # Azure: the rule must be in the intraday container, the only one locked that briefly.
    wrong = messages(EXPIRY, (AZ_POLICY, azure_intraday_policy("backups")))
    assert wrong == ["backups/database/production/intraday/ is not in the "
                     "'<container>-intraday' container: only that one is locked for the "
                     "intraday window"]
    # A stack without the tier, and a lifecycle that is not a backup store's, pass.
    no_tier = P.Expectations.from_dict({**PRODUCTION.to_dict(), "intradayDays": 0})
    assert messages(EXPIRY, ("gcp:storage/bucket:Bucket", gcs_bucket()), no_tier) == []
    assert messages(EXPIRY, (P.LIFECYCLE_TYPES[0], {"rules": [
        {"id": "logs", "status": "Enabled", "filter": {"prefix": ""},
         "expiration": {"days": 90.0}}]})) == []


def test_the_main_container_keeps_its_lockdays_check_and_the_intraday_one_is_exempt():
    check = P.RULES_BY_NAME["azure-storage-container-immutability-set"]
    short = {**IMMUTABILITY, "immutabilityPeriodSinceCreationInDays": 3.0}
    assert check.check(f"{P.AZ}BlobContainerImmutabilityPolicy", short, PRODUCTION) == [
        "immutability period is 3 days, less than immutability.lockDays (30)"]
    assert check.check(f"{P.AZ}BlobContainerImmutabilityPolicy",
                       {**short, "containerName": "backups-intraday"}, PRODUCTION) == []


@pytest.mark.parametrize(("mutate", "expect"), [
    (replace("intraday-immutability", "immutabilityPeriodSinceCreationInDays", 30.0),
     "locks intraday blobs 30 days, but they expire after 3"),
    (drop("intraday-immutability"), "Azure intraday blobs would be unlocked"),
    (replace("backup-fn", "environment.variables.VO2DR_STRATEGY", json.dumps(
        {"retention": {"intradayHours": 72}, "immutability": {"mode": "governance"}})),
     "mode 'governance' in production"),
    (replace("writer-policy", "policy", in_json("policy", "Statement[0].Action", [
        "s3:PutObject"])(INTRADAY_WRITER_POLICY)["policy"]),
     "writes backups without s3:PutObjectRetention"),
])
def test_the_intraday_lock_must_be_the_window_in_every_cloud(mutate, expect):
    assert messages(LOCK, intraday_stack()) == []
    found = messages(LOCK, mutate(intraday_stack()))
    assert any(expect in m for m in found), found


def test_staging_may_lock_intraday_objects_in_governance():
    stack = replace("backup-fn", "environment.variables.VO2DR_STRATEGY", json.dumps(
        {"retention": {"intradayHours": 72}, "immutability": {"mode": "governance"}}))(
        intraday_stack())
    assert messages(LOCK, stack, STAGING) == []


@pytest.mark.parametrize(("good", "bad", "expect"), [
    # The S3 writer may set a lock at creation, never bypass or delete.
    (("aws:iam/rolePolicy:RolePolicy", INTRADAY_WRITER_POLICY),
     in_json("policy", "Statement[0].Action[1]", "s3:DeleteObjectVersion"),
     "allows s3:DeleteObjectVersion"),
    # A bucket policy granting the bypass to someone is as bad as a role policy.
    (("aws:s3/bucketPolicy:BucketPolicy", {"policy": INTRADAY_WRITER_POLICY["policy"]}),
     in_json("policy", "Statement[0].Action[2]", "s3:PutBucketObjectLockConfiguration"),
     "allows s3:PutBucketObjectLockConfiguration"),
    # Azure's one immutability action also deletes unlocked policies and extends any.
    ((ROLE_DEF, {"permissions": [{"dataActions": [f"{BLOBS}/write", f"{BLOBS}/add/action",
                                                  f"{BLOBS}/read"]}]}),
     at("permissions[0].dataActions[2]", f"{BLOBS}/immutableStorage/runAsSuperUser/action"),
     "immutableStorage/runAsSuperUser/action, which can shorten a lock"),
    (("gcp:projects/iAMCustomRole:IAMCustomRole",
      {"permissions": ["storage.objects.create", "storage.objects.setRetention"]}),
     at("permissions[1]", "storage.objects.overrideUnlockedRetention"),
     "grants storage.objects.overrideUnlockedRetention"),
])
def test_no_identity_can_shorten_a_lock(good, bad, expect):
    type_, props = good
    assert SHORTEN.check(type_, props, PRODUCTION) == []
    found = SHORTEN.check(type_, bad(props), PRODUCTION)
    assert any(expect in m for m in found), found
