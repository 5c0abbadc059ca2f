"""``policy.documents``: the one reader of a resource's IAM policy documents (a JSON string, a
parsed mapping, a value unknown until the deploy, none at all), and what the rules that use it
make of each case."""

from __future__ import annotations

import json

import pytest
from pulumi_policy import proxy

from policy import policies as P
from policy.documents import MISSING, NOT_JSON, UNKNOWN, declared_policies, policy_documents
from policy.resources import UNKNOWN as UNKNOWN_VALUE

DOC = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::b/database/*"}]}
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"


@pytest.mark.parametrize("type_", [ROLE_POLICY, "aws:iam/policy:Policy", BUCKET_POLICY,
                                   "aws:kms/key:Key"])
def test_a_json_string_and_a_dict_read_the_same(type_: str):
    assert policy_documents(type_, {"policy": json.dumps(DOC)}) == [DOC]
    assert policy_documents(type_, {"policy": DOC}) == [DOC]
    assert declared_policies(type_, {"policy": DOC})[0].problem is None


@pytest.mark.parametrize("value", [proxy.UNKNOWN_STRING_VALUE, proxy.UNKNOWN_OBJECT_VALUE,
                                   UNKNOWN_VALUE])
def test_an_unknown_policy_is_unknown_not_missing(value):
    assert policy_documents(ROLE_POLICY, {"policy": value}) == []
    assert [(d.where, d.problem) for d in declared_policies(ROLE_POLICY, {"policy": value})] == \
        [("policy", UNKNOWN)]


@pytest.mark.parametrize("props, problem", [
    ({}, MISSING), ({"policy": None}, MISSING), ({"policy": "{not json"}, NOT_JSON),
    ({"policy": json.dumps(["a list"])}, NOT_JSON), ({"policy": 42}, NOT_JSON)])
def test_a_missing_or_unreadable_policy(props, problem: str):
    assert policy_documents(ROLE_POLICY, props) == []
    assert [(d.where, d.problem) for d in declared_policies(ROLE_POLICY, props)] == \
        [("policy", problem)]


def test_a_role_declares_its_inline_policies_only():
    props = {"policy": json.dumps({"Statement": []}), "inlinePolicies": [
        {"name": "a", "policy": json.dumps(DOC)}, {}, {"name": "b", "policy": DOC},
        {"name": "c", "policy": "nope"}, {"name": "d", "policy": proxy.UNKNOWN_STRING_VALUE}]}
    assert policy_documents(ROLE, props) == [DOC, DOC]
    # An entry without a policy declares none (inline_policies=[{}] removes them all).
    assert [(d.where, d.problem) for d in declared_policies(ROLE, props)] == [
        ("inlinePolicies[0].policy", None), ("inlinePolicies[2].policy", None),
        ("inlinePolicies[3].policy", NOT_JSON), ("inlinePolicies[4].policy", UNKNOWN)]
    assert declared_policies(ROLE, {}) == []
    assert [(d.where, d.problem) for d in declared_policies(
        ROLE, {"inlinePolicies": proxy.UNKNOWN_ARRAY_VALUE})] == [("inlinePolicies", UNKNOWN)]
    assert [(d.where, d.problem) for d in declared_policies(
        ROLE, {"inlinePolicies": [UNKNOWN_VALUE]})] == [("inlinePolicies[0]", UNKNOWN)]


def _no_wildcards(type_: str, props: dict) -> P.Judgement:
    rule = P.RULES_BY_NAME["aws-iam-policy-no-wildcards"]
    return P.judge(rule, [P.Res(type_, "r", "urn:r", props)], None)


def test_no_wildcards_refuses_an_unreadable_policy_and_defers_an_unknown_one():
    bad = _no_wildcards(ROLE_POLICY, {"policy": "{not json"})
    assert [f.message for f in bad.findings] == ["policy is not a JSON policy document"]
    assert bad.unknown == {}
    # An inline policy that does not parse is refused as well, not skipped.
    inline = _no_wildcards(ROLE, {"inlinePolicies": [{"name": "a", "policy": "{not json"}]})
    assert [f.message for f in inline.findings] == [
        "inlinePolicies[0].policy is not a JSON policy document"]
    # At a first preview an unknown document cannot be judged: named, not passed or failed.
    for type_, props in ((ROLE_POLICY, {"policy": proxy.UNKNOWN_STRING_VALUE}),
                         (ROLE, {"inlinePolicies": [{"name": "a",
                                                     "policy": proxy.UNKNOWN_STRING_VALUE}]})):
        later = _no_wildcards(type_, props)
        assert later.findings == [] and list(later.unknown) == ["urn:r"], (type_, later)
    assert _no_wildcards(ROLE, {"inlinePolicies": [{}]}) == P.Judgement([], {})
    assert _no_wildcards(ROLE_POLICY, {"policy": json.dumps(DOC)}) == P.Judgement([], {})
