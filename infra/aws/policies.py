"""Small builders for IAM policy JSON shared by the AWS components.

Documents are built as plain dicts and serialised with ``pulumi.Output.json_dumps`` (not with
``aws.iam.get_policy_document``): no provider call is needed, so preview equals up, and the
tests read exactly the JSON that reaches AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

# Commercial partition; every ARN the AWS components build by hand goes through these helpers,
# so a move to another partition is one line.
PARTITION = "aws"
VERSION = "2012-10-17"


def account_root(account_id: str) -> str:
    """The account principal: naming it delegates the decision to the account's IAM policies."""
    return f"arn:{PARTITION}:iam::{account_id}:root"


def bucket_arn(bucket_name: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket_name}"


def statement(sid: str, actions: Sequence[str], resources: Any, *, effect: str = "Allow",
              principal: Mapping[str, Any] | str | None = None,
              condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        st["Principal"] = principal
    st["Action"] = list(actions)
    st["Resource"] = resources
    if condition:
        st["Condition"] = condition
    return st


def document(*statements: Mapping[str, Any]) -> pulumi.Output[str]:
    """A policy document whose statements may hold Outputs (ARNs of other resources)."""
    return pulumi.Output.json_dumps({"Version": VERSION, "Statement": list(statements)})


def trust(sid: str, principal: Mapping[str, Any],
          condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One sts:AssumeRole statement of a role's trust policy (it has no Resource)."""
    st: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Principal": principal,
                          "Action": ["sts:AssumeRole"]}
    if condition:
        st["Condition"] = condition
    return st
