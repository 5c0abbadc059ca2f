"""GCS: the backup bucket's CMEK, public access prevention, versioning and soft delete, and
every writer's per-object retention (Object Retention Lock)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.expectations import Expectations
from policy.parsing import DAY_SECONDS, _as_list, _days, _num, _seconds, get
from policy.resources import Finding, Res, _of


def check_gcs_cmek(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    return [] if get(p, "encryption.defaultKmsKeyName") else [
        "bucket has no customer-managed default key (encryption.defaultKmsKeyName)"]


def check_gcs_public_access(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if p.get("publicAccessPrevention") != "enforced":
        out.append(f"publicAccessPrevention is {p.get('publicAccessPrevention')!r}, not enforced")
    if p.get("uniformBucketLevelAccess") is not True:
        out.append("uniformBucketLevelAccess is off: object ACLs can still grant access")
    return out


def check_gcs_versioning_soft_delete(_t: str, p: Mapping[str, Any],
                                     c: Expectations | None) -> list[str]:
    out = []
    if get(p, "versioning.enabled") is not True:
        out.append("bucket versioning is off (versioning.enabled): a deleted or expired object "
                   "cannot be brought back as a noncurrent version")
    soft = _seconds(get(p, "softDeletePolicy.retentionDurationSeconds"))
    if not soft:
        out.append("soft delete is off (softDeletePolicy.retentionDurationSeconds)")
    elif c is not None and soft < c.soft_delete_days * DAY_SECONDS:
        out.append(f"soft delete keeps deleted objects {_days(soft / DAY_SECONDS)} days, less "
                   f"than immutability.softDeleteDays ({c.soft_delete_days})")
    return out


GCS_RETENTION_DAYS_ENV = "VO2DR_GCS_RETENTION_DAYS"
GCS_RETENTION_MODE_ENV = "VO2DR_GCS_RETENTION_MODE"


def _gcs_writers(resources: Sequence[Res]) -> list[tuple[Res, dict[str, Any]]]:
    """(resource, environment) of every Lambda function and Cloud Run job configured with a
    GCS bucket (VO2DR_GCS_BUCKET): the job code that may upload to it."""
    out = []
    for r in _of(resources, "aws:lambda/function:Function"):
        env = dict(get(r.props, "environment.variables") or {})
        if "VO2DR_GCS_BUCKET" in env:
            out.append((r, env))
    for r in _of(resources, "gcp:cloudrunv2/job:Job"):
        for container in _as_list(get(r.props, "template.template.containers")):
            env = {e.get("name"): e.get("value") for e in _as_list(get(container, "envs"))
                   if isinstance(e, Mapping)}
            if "VO2DR_GCS_BUCKET" in env:
                out.append((r, env))
    return out


def _bucket_policy_findings(bucket: Res, c: Expectations) -> list[Finding]:
    """A bucket-wide retention policy (Bucket Lock) instead of Object Retention Lock."""
    out = []
    period = _seconds(get(bucket.props, "retentionPolicy.retentionPeriod")) or 0
    if period < c.lock_days * DAY_SECONDS:
        out.append(Finding(f"bucket {bucket.name} retention policy keeps objects "
                           f"{_days(period / DAY_SECONDS)} days, less than "
                           f"immutability.lockDays ({c.lock_days})", bucket.urn))
    if c.production and get(bucket.props, "retentionPolicy.isLocked") is not True:
        out.append(Finding(f"bucket {bucket.name} retention policy is not locked in production "
                           "(retentionPolicy.isLocked)", bucket.urn))
    return out


def check_gcs_retention_locked(resources: Sequence[Res],
                               c: Expectations | None) -> list[Finding]:
    """Every GCS backup object is retained for lockDays, Locked in production. GCS offers two
    ways: a bucket retention policy (Bucket Lock; refuses Object Versioning), or Object Retention
    Lock (works with versioning), where the bucket enables it and the writer sets each object's
    retain-until time and mode at upload: then every job configured with the bucket must carry
    VO2DR_GCS_RETENTION_DAYS >= lockDays and VO2DR_GCS_RETENTION_MODE (Locked in production)."""
    buckets = _of(resources, "gcp:storage/bucket:Bucket")
    if not buckets:
        return []
    if c is None:
        return [Finding("stack expectations are unavailable: cannot check the GCS retention "
                        "against immutability.lockDays")]
    out: list[Finding] = []
    per_object = False
    for bucket in buckets:
        if get(bucket.props, "retentionPolicy.retentionPeriod"):
            out += _bucket_policy_findings(bucket, c)
        elif bucket.props.get("enableObjectRetention") is True:
            per_object = True
        else:
            out.append(Finding(f"bucket {bucket.name} retains nothing: neither a retention "
                               "policy (retentionPolicy) nor Object Retention Lock "
                               "(enableObjectRetention)", bucket.urn))
    if not per_object:
        return out
    writers = _gcs_writers(resources)
    if not writers:
        out.append(Finding("the GCS bucket relies on Object Retention Lock, but no job is "
                           "configured to write to it with a retention (VO2DR_GCS_BUCKET)"))
    want_modes = ("Locked",) if c.production else ("Locked", "Unlocked")
    for r, env in writers:
        days, mode = env.get(GCS_RETENTION_DAYS_ENV), env.get(GCS_RETENTION_MODE_ENV)
        if days is None or mode is None:
            out.append(Finding(f"{r.name} writes to GCS without {GCS_RETENTION_DAYS_ENV} and "
                               f"{GCS_RETENTION_MODE_ENV}: its uploads carry no retention",
                               r.urn))
            continue
        if (_num(days) or 0) < c.lock_days:
            out.append(Finding(f"{r.name} retains GCS uploads {days} days, less than "
                               f"immutability.lockDays ({c.lock_days})", r.urn))
        if mode not in want_modes:
            out.append(Finding(f"{r.name} retains GCS uploads in mode {mode!r}"
                               f"{' in production' if c.production else ''}: use "
                               f"{' or '.join(want_modes)}", r.urn))
    return out
