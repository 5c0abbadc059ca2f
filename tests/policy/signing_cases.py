"""Fixtures for the signing keys' rule (aws-kms-signing-key-one-signer): a hand-written stack
with the manifest key (the backup writer role signs) and the drill record key (its policy
delegates kms:Sign to the drill role's IAM policy, which pins it to the drill function), and
the one-resource changes the rule must reject. Written from the providers' schemas and the
AWS docs, not from the program."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from policy.policies import Res

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
MANIFEST_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/00000000-0000-4000-8000-00000000000a"
RECORD_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/00000000-0000-4000-8000-00000000000b"
WRITER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/vo2dr-production-backup-writer"
DRILL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/vo2dr-production-restore-reader"
DRILL_FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:vo2dr-production-drill"
BACKUP_FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:vo2dr-production-backup-critical"
ADMIN = {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Resource": "*",
         "Action": ["kms:DescribeKey", "kms:PutKeyPolicy"]}
READ_PUBLIC = {"Sid": "ReadPublic", "Effect": "Allow", "Principal": {"AWS": ROOT},
               "Resource": "*", "Action": ["kms:GetPublicKey", "kms:DescribeKey"]}


def _urn(type_: str, name: str) -> str:
    return f"urn:pulumi:production::vo2max-dr::{type_}::{name}"


def _res(type_: str, name: str, props: dict[str, Any]) -> Res:
    return Res(type_, name, _urn(type_, name), props)


def key_policy(signer: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [ADMIN, signer, READ_PUBLIC]})


WRITER_SIGNS = {"Sid": "WriterSigns", "Effect": "Allow", "Principal": {"AWS": WRITER_ROLE},
                "Resource": "*", "Action": ["kms:Sign", "kms:GetPublicKey"]}
DRILL_ROLE_POLICY_DECIDES = {"Sid": "RolePolicyDecides", "Effect": "Allow",
                             "Principal": {"AWS": ROOT}, "Resource": "*", "Action": ["kms:Sign"],
                             "Condition": {"ArnEquals": {"aws:PrincipalArn": DRILL_ROLE}}}


def sign_policy(condition: dict[str, Any] | None = None, resource: str = RECORD_KEY) -> str:
    st: dict[str, Any] = {"Sid": "SignAsTheDrillOnly", "Effect": "Allow",
                          "Action": ["kms:Sign", "kms:GetPublicKey"], "Resource": resource}
    if condition is None:
        condition = {"ArnEquals": {"lambda:SourceFunctionArn": DRILL_FN}}
    if condition:
        st["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


def function(name: str, arn: str, role: str, env: dict[str, str]) -> Res:
    return _res("aws:lambda/function:Function", name, {
        "name": arn.rsplit(":", 1)[1], "arn": arn, "role": role,
        "environment": {"variables": {"VO2DR_ENVIRONMENT": "production", **env}}})


def signing_stack() -> list[Res]:
    """Both keys as the stack should declare them."""
    key = "aws:kms/key:Key"
    spec = {"keyUsage": "SIGN_VERIFY", "customerMasterKeySpec": "ECC_NIST_P256"}
    return [
        _res(key, "manifest-key", {**spec, "arn": MANIFEST_KEY,
                                   "policy": key_policy(WRITER_SIGNS)}),
        _res(key, "record-key", {**spec, "arn": RECORD_KEY,
                                 "policy": key_policy(DRILL_ROLE_POLICY_DECIDES)}),
        _res("aws:iam/rolePolicy:RolePolicy", "record-signer",
             {"role": "vo2dr-production-restore-reader", "policy": sign_policy()}),
        function("backup-fn", BACKUP_FN, WRITER_ROLE, {"VO2DR_SIGNING_KEY": MANIFEST_KEY}),
        function("drill-fn", DRILL_FN, DRILL_ROLE, {"VO2DR_RECORD_SIGNING_KEY": RECORD_KEY}),
    ]


def swap(name: str, new: Res) -> Callable[[list[Res]], list[Res]]:
    return lambda resources: [new if r.name == name else r for r in resources]


def with_props(name: str, **props: Any) -> Callable[[list[Res]], list[Res]]:
    def mutate(resources: list[Res]) -> list[Res]:
        return [Res(r.type, r.name, r.urn, {**r.props, **props}, r.parent, r.dependencies)
                if r.name == name else r for r in resources]
    return mutate
