"""The write-once rule (``aws-iam-policy-backups-write-once``) on the snapshot content
pools (issue 17) and the backups' tiers: a stolen backup writer credential must not replace a
content object or a backup, so every S3 grant that can create an object under
``<root>content/`` or in a tier requires ``If-None-Match: *``; only the parts of a multipart
upload (``s3:ObjectCreationOperation`` false: they create nothing) may go without it. The
grants are written as infra/aws/access.py declares them."""

from __future__ import annotations

from typing import Any

import pytest

from policy import policies as P
from tests.policy import report_cases as R
from tests.policy.cases import res
from tests.policy.snapshot_cases import ASSETS, LOGS, WITH_SNAPSHOTS

RULE = P.RULES_BY_NAME["aws-iam-policy-backups-write-once"]
POOLS = [f"arn:aws:s3:::{R.BUCKET}/{root}content/*" for root in (ASSETS, LOGS)]
WRITE_ONCE = {"Null": {"s3:if-none-match": "false"}}
PARTS = {"Bool": {"s3:ObjectCreationOperation": "false"}}


def _put(sid: str, condition: dict[str, Any] | None, resources: Any = None,
         action: str = "s3:PutObject") -> dict[str, Any]:
    st: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": [action],
                          "Resource": POOLS if resources is None else resources}
    if condition is not None:
        st["Condition"] = condition
    return st


def _findings(statement: dict[str, Any], ctx=WITH_SNAPSHOTS) -> list[str]:
    return [f.message for f in RULE.check(R.drill_stack(res, statement=statement), ctx)]


def test_the_programs_content_grants_pass():
    assert _findings(_put("PutContentOnce", WRITE_ONCE)) == []
    assert _findings(_put("UploadContentParts", PARTS)) == []
    assert _findings(_put("PutContentOnce", {"StringEquals": {"s3:if-none-match": "*"}})) == []
    # Aborting an upload creates nothing: no s3:PutObject, not this rule's business.
    assert _findings(_put("Abort", None, action="s3:AbortMultipartUpload")) == []
    # The pruner's plans beside the pool are not written once (not this rule's business).
    plans = f"arn:aws:s3:::{R.BUCKET}/{ASSETS}prune/*"
    assert _findings(_put("PutPlans", None, resources=plans)) == []
    # The tiers beside it are, with the same condition.
    tiers = f"arn:aws:s3:::{R.BUCKET}/{ASSETS}daily/*"
    assert _findings(_put("PutTiersOnce", WRITE_ONCE, resources=tiers)) == []


@pytest.mark.parametrize("target", [
    f"{ASSETS}daily/*",  # a snapshot's index and manifest
    f"{LOGS}intraday/*",
    "database/production/weekly/*",  # a database dump and its manifest
    "database/production/*",
])
def test_a_plain_put_to_a_backup_tier_is_caught(target):
    """Backups are new by construction (a timestamp and a random id), so a put that could
    replace one, under the stack's expectations or any environment's, is caught."""
    statement = _put("PutBackups", None, resources=f"arn:aws:s3:::{R.BUCKET}/{target}")
    for ctx in (WITH_SNAPSHOTS, None):
        (msg,) = _findings(statement, ctx=ctx)
        assert "statement PutBackups allows s3:PutObject on write-once objects" in msg
    assert _findings(_put("PutBackupsOnce", WRITE_ONCE,
                          resources=f"arn:aws:s3:::{R.BUCKET}/{target}")) == []


@pytest.mark.parametrize("statement", [
    _put("Plain", None),  # the overwrite a stolen writer credential would make
    _put("Opposite", {"Null": {"s3:if-none-match": "true"}}),
    _put("CreatingCalls", {"Bool": {"s3:ObjectCreationOperation": "true"}}),
    _put("PartsAndMore", {"Bool": {"s3:ObjectCreationOperation": "false"},
                          "StringEquals": {"aws:SourceAccount": "111111111111"}}),
    _put("WholeRoot", None, resources=f"arn:aws:s3:::{R.BUCKET}/{ASSETS}*"),
    _put("WholeBucket", None, resources=f"arn:aws:s3:::{R.BUCKET}/*", action="s3:Put*"),
    _put("Logs", None, resources=f"arn:aws:s3:::{R.BUCKET}/{LOGS}content/*"),
])
def test_a_put_that_can_replace_content_is_caught(statement):
    (msg,) = _findings(statement)
    assert f"statement {statement['Sid']} allows s3:PutObject on write-once objects" in msg


def test_without_expectations_any_environments_content_is_judged():
    (msg,) = _findings(_put("Plain", None), ctx=None)
    assert "write-once objects" in msg
    assert _findings(_put("PutContentOnce", WRITE_ONCE), ctx=None) == []
