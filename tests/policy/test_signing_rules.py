"""aws-kms-signing-key-one-signer on hand-written graphs: the good stack passes, and each way
the drill (or whoever assumes its role) could sign a manifest, or sign records without being
the drill function, is a finding."""

from __future__ import annotations

import json

import pytest

from policy import policies as P
from tests.policy import signing_cases as SC

RULE = P.RULES_BY_NAME["aws-kms-signing-key-one-signer"]


def findings(resources) -> list[str]:
    return [f.message for f in RULE.check(resources, None)]


def test_the_good_stack_has_no_finding():
    assert findings(SC.signing_stack()) == []


VIOLATIONS = {
    "the account root may sign with the manifest key": (
        SC.with_props("manifest-key", policy=SC.key_policy(
            {"Sid": "All", "Effect": "Allow", "Principal": {"AWS": SC.ROOT}, "Resource": "*",
             "Action": ["kms:*"]})),
        "lets 'arn:aws:iam::111122223333:root' sign"),
    "the record key's policy names the drill role itself (operators assume it)": (
        SC.with_props("record-key", policy=SC.key_policy(
            {"Sid": "DrillSigns", "Effect": "Allow", "Principal": {"AWS": SC.DRILL_ROLE},
             "Resource": "*", "Action": ["kms:Sign"]})),
        "lets the role arn:aws:iam::111122223333:role/vo2dr-production-restore-reader itself "
        "sign"),
    "the delegation names every role of the account": (
        SC.with_props("record-key", policy=SC.key_policy(
            {**SC.DRILL_ROLE_POLICY_DECIDES, "Condition": {"ArnLike": {
                "aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}})),
        "lets 'arn:aws:iam::111122223333:root' sign"),
    "the role policy does not pin the function": (
        SC.with_props("record-signer", policy=SC.sign_policy({})),
        "without pinning it to one function"),
    "the role policy pins with a wildcard": (
        SC.with_props("record-signer", policy=SC.sign_policy(
            {"ArnLike": {"lambda:SourceFunctionArn": "arn:aws:lambda:us-east-1:111122223333:"
                                                     "function:*"}})),
        "without pinning it to one function"),
    "a role policy allows kms:Sign on every key": (
        lambda rs: [*rs, SC._res("aws:iam/rolePolicy:RolePolicy", "admin-ish", {
            "role": "vo2dr-production-restore-reader",
            "policy": SC.sign_policy({}, resource="*")})],
        "admin-ish statement SignAsTheDrillOnly allows kms:Sign with the record signing key"),
    "a second function is pinned": (
        lambda rs: [*rs, SC._res("aws:iam/rolePolicy:RolePolicy", "status-signer", {
            "role": "vo2dr-production-restore-reader", "policy": SC.sign_policy(
                {"ArnEquals": {"lambda:SourceFunctionArn": SC.BACKUP_FN}})})],
        "2 functions may sign with the record signing key"),
    "the pinned function is not the drill": (
        SC.with_props("record-signer", policy=SC.sign_policy(
            {"ArnEquals": {"lambda:SourceFunctionArn": SC.BACKUP_FN}})),
        "is not a function of the stack that runs as"),
    "the backup signs manifests with the record key": (
        SC.swap("backup-fn", SC.function("backup-fn", SC.BACKUP_FN, SC.WRITER_ROLE,
                                         {"VO2DR_SIGNING_KEY": SC.RECORD_KEY})),
        "signs manifests (VO2DR_SIGNING_KEY) with the record signing key"),
    "the drill holds the manifest key as its record key": (
        SC.swap("drill-fn", SC.function("drill-fn", SC.DRILL_FN, SC.DRILL_ROLE,
                                        {"VO2DR_RECORD_SIGNING_KEY": SC.MANIFEST_KEY})),
        "signs records (VO2DR_RECORD_SIGNING_KEY) with the manifest signing key"),
    "the record key is not P-256": (
        SC.with_props("record-key", customerMasterKeySpec="RSA_2048"),
        "signing key spec is RSA_2048"),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_each_violation_is_found(case):
    mutate, expect = VIOLATIONS[case]
    found = findings(mutate(SC.signing_stack()))
    assert any(expect in m for m in found), found


def test_a_grant_on_the_record_key_is_a_finding():
    key = json.loads(SC.key_policy(SC.DRILL_ROLE_POLICY_DECIDES))
    key["Statement"][0]["Action"].append("kms:CreateGrant")
    found = findings(SC.with_props("record-key", policy=json.dumps(key))(SC.signing_stack()))
    assert any("allows kms:CreateGrant" in m for m in found), found
