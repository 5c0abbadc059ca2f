"""The job's AWS runtime: Lambda functions without credentials in clear, EventBridge Scheduler
retries into a dead-letter queue, CloudWatch log groups kept and encrypted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.credentials import _env_findings
from policy.expectations import Expectations
from policy.parsing import _days, _num, get


def check_log_group_retention(_t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    days = _num(p.get("retentionInDays"))
    if not days:
        return ["log group keeps logs forever (retentionInDays unset or 0)"]
    if c is not None and days != c.log_retention_days:
        return [f"log group keeps logs {_days(days)} days, but monitoring.logRetentionDays is "
                f"{c.log_retention_days}"]
    return []


def check_log_group_cmk(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    return [] if p.get("kmsKeyId") else ["log group is not encrypted with a customer key "
                                         "(kmsKeyId unset)"]


def check_lambda_no_credentials(_t: str, p: Mapping[str, Any],
                                _c: Expectations | None) -> list[str]:
    return _env_findings(get(p, "environment.variables") or {}, "function environment")


def check_scheduler_retry_dlq(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if not get(p, "target.deadLetterConfig.arn"):
        out.append("schedule target has no dead-letter queue (target.deadLetterConfig.arn)")
    if get(p, "target.retryPolicy") is None:
        out.append("schedule target has no retry policy (target.retryPolicy)")
    return out
