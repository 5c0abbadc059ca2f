"""Where and how the job runs, from the stack config: the clouds (accounts, projects,
regions), the job's runtime (Lambda, Cloud Run, VPC), its monitoring and the tags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vo2dr.exceptions import ConfigError
from vo2dr.strategy import Strategy

from infra.config_base import (
    _HOURS_PER_DAY,
    _MINUTES_PER_HOUR,
    CLOUDS,
    NS,
    _fail,
    _mapping,
    _positive_int,
)

CLOUDWATCH_LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)
_EVENTBRIDGE_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
# Once a day at a fixed UTC minute and hour.
_EVENTBRIDGE_DAILY = re.compile(r"^cron\(([0-5]?\d) ([01]?\d|2[0-3]) \* \* \? \*\)$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class AwsCloud:
    enabled: bool
    region: str
    account_id: str


@dataclass(frozen=True)
class GcpCloud:
    enabled: bool
    project: str
    project_number: str
    region: str
    location: str


@dataclass(frozen=True)
class AzureCloud:
    enabled: bool
    location: str
    tenant_id: str


@dataclass(frozen=True)
class Monitoring:
    status_every_minutes: int
    drill_schedule: str
    standby_offset_minutes: int
    log_retention_days: int
    alert_email: str
    # Minutes after each clock-aligned window start that the status check runs: after the
    # backups of that instant finished, so a backup's own duration never reads as a breach.
    status_offset_minutes: int
    # When the snapshot pruner runs (EventBridge cron, once a day); required only when the
    # stack has snapshot sources (assets, logs).
    prune_schedule: str | None = None


@dataclass(frozen=True)
class Runtime:
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    lambda_ephemeral_storage_mb: int
    lambda_architecture: str
    schedule_max_retry_attempts: int
    schedule_max_event_age_seconds: int
    cloud_run_image: str
    cloud_run_cpu: str
    cloud_run_memory: str
    cloud_run_timeout_seconds: int
    # A private database: the subnets and security groups the backup and drill functions run
    # in. Both or neither; empty means no VPC.
    vpc_subnet_ids: tuple[str, ...] = ()
    vpc_security_group_ids: tuple[str, ...] = ()

    @property
    def in_vpc(self) -> bool:
        return bool(self.vpc_subnet_ids)


def parse_clouds(raw: Any, environment: str, aws_region: str, gcp_project: str,
                 gcp_region: str, azure_location: str) -> tuple[AwsCloud, GcpCloud, AzureCloud]:
    raw = _mapping(raw, "clouds")
    unknown = set(raw) - set(CLOUDS)
    if unknown:
        raise _fail("clouds", f"names unknown cloud(s) {sorted(unknown)}",
                    f"use only {', '.join(CLOUDS)}")
    parts = {c: _mapping(raw.get(c, {"enabled": False}), f"clouds.{c}") for c in CLOUDS}
    for c, part in parts.items():
        if not isinstance(part.get("enabled"), bool):
            raise _fail(f"clouds.{c}.enabled", "must be true or false", "set it explicitly")
    if not parts["aws"]["enabled"]:
        raise _fail("clouds.aws.enabled", "is false",
                    "AWS is the primary store and runs the job: it must stay enabled")
    enabled = [c for c in CLOUDS if parts[c]["enabled"]]
    if environment == "production" and len(enabled) < 2:
        raise _fail("clouds", f"enables only {enabled} in production",
                    "production must keep copies in at least two clouds: enable gcp or azure")
    account = str(parts["aws"].get("accountId", ""))
    if not _ACCOUNT_ID.match(account):
        raise _fail("clouds.aws.accountId", f"is {account!r}", "set the 12-digit AWS account id")
    gcp = parts["gcp"]
    if gcp["enabled"]:
        for key, value in (("gcp:project", gcp_project), ("gcp:region", gcp_region)):
            if not value:
                raise ConfigError(f"{key} is not set: `pulumi config set {key} <value>`")
        if not str(gcp.get("projectNumber", "")).isdigit():
            raise _fail("clouds.gcp.projectNumber", "is missing",
                        "set the numeric project number (gcloud projects describe)")
    az = parts["azure"]
    if az["enabled"] and not azure_location:
        raise ConfigError("azure-native:location is not set: "
                          "`pulumi config set azure-native:location <region>`")
    if az["enabled"] and not az.get("tenantId"):
        raise _fail("clouds.azure.tenantId", "is missing", "set the Entra ID tenant id")
    return (
        AwsCloud(True, aws_region, account),
        GcpCloud(gcp["enabled"], gcp_project, str(gcp.get("projectNumber", "")), gcp_region,
                 str(gcp.get("location", ""))),
        AzureCloud(az["enabled"], azure_location, str(az.get("tenantId", ""))),
    )


def parse_monitoring(raw: Any, strategy: Strategy) -> Monitoring:
    raw = _mapping(raw, "monitoring")
    every = _positive_int(raw, "monitoring", "statusEveryMinutes")
    tightest = min(c.rpo_minutes for c in strategy.data_classes.values())
    if every > tightest:
        raise _fail("monitoring.statusEveryMinutes", f"is {every}, longer than the tightest RPO "
                    f"({tightest} min)", "check status at least as often as the tightest RPO")
    drill = raw.get("drillSchedule")
    if not isinstance(drill, str) or not _EVENTBRIDGE_CRON.match(drill):
        raise _fail("monitoring.drillSchedule", f"is {drill!r}",
                    "use an EventBridge cron such as cron(0 9 ? * MON#1 *) (first Monday)")
    if every < _MINUTES_PER_HOUR and _MINUTES_PER_HOUR % every:
        raise _fail("monitoring.statusEveryMinutes", f"is {every}, which does not divide the "
                    "hour", "use 5, 10, 15, 20 or 30 so the checks stay clock-aligned")
    if every >= _MINUTES_PER_HOUR and (every % _MINUTES_PER_HOUR
                                       or _HOURS_PER_DAY % (every // _MINUTES_PER_HOUR)):
        raise _fail("monitoring.statusEveryMinutes", f"is {every}",
                    "use whole hours that divide a day (60, 120, 180, ...) so the checks stay "
                    "clock-aligned")
    offset = _positive_int(raw, "monitoring", "standbyOffsetMinutes")
    if offset >= tightest:
        raise _fail("monitoring.standbyOffsetMinutes", f"is {offset}",
                    f"the standby must run inside the primary's window: below {tightest}")
    status_offset = _positive_int(raw, "monitoring", "statusOffsetMinutes")
    if status_offset >= tightest:
        raise _fail("monitoring.statusOffsetMinutes", f"is {status_offset}",
                    "the status check must run inside the primary's window, after its backups "
                    f"finish: below {tightest}")
    logs = _positive_int(raw, "monitoring", "logRetentionDays")
    if logs not in CLOUDWATCH_LOG_RETENTION_DAYS:
        raise _fail("monitoring.logRetentionDays", f"is {logs}",
                    f"CloudWatch accepts only {CLOUDWATCH_LOG_RETENTION_DAYS}")
    email = raw.get("alertEmail")
    if not isinstance(email, str) or "@" not in email:
        raise _fail("monitoring.alertEmail", f"is {email!r}", "set the on-call email address")
    prune = raw.get("pruneSchedule")
    if prune is not None and (not isinstance(prune, str) or not _EVENTBRIDGE_DAILY.match(prune)):
        raise _fail("monitoring.pruneSchedule", f"is {prune!r}",
                    "use a daily EventBridge cron, cron(<minute> <hour> * * ? *): the snapshot "
                    "pruner sweeps a day after it marks")
    return Monitoring(every, drill, offset, logs, email, status_offset, prune)


def parse_runtime(raw: Any) -> Runtime:
    raw = _mapping(raw, "runtime")
    r = "runtime"
    memory = _positive_int(raw, r, "lambdaMemoryMb")
    timeout = _positive_int(raw, r, "lambdaTimeoutSeconds")
    storage = _positive_int(raw, r, "lambdaEphemeralStorageMb")
    if not 128 <= memory <= 10240:
        raise _fail(f"{r}.lambdaMemoryMb", f"is {memory}", "Lambda allows 128 to 10240 MB")
    if timeout > 900:
        raise _fail(f"{r}.lambdaTimeoutSeconds", f"is {timeout}", "Lambda allows at most 900")
    if not 512 <= storage <= 10240:
        raise _fail(f"{r}.lambdaEphemeralStorageMb", f"is {storage}",
                    "Lambda allows 512 to 10240 MB")
    arch = raw.get("lambdaArchitecture")
    if arch not in ("x86_64", "arm64"):
        raise _fail(f"{r}.lambdaArchitecture", f"is {arch!r}", "use x86_64 or arm64")
    image = raw.get("cloudRunImage")
    if not isinstance(image, str) or "/" not in image or ":" not in image:
        raise _fail(f"{r}.cloudRunImage", f"is {image!r}",
                    "set the Artifact Registry image reference, REGION-docker.pkg.dev/P/R/I:TAG")
    subnets = _id_list(raw, "vpcSubnetIds", _SUBNET_ID, "subnet-0123456789abcdef0")
    groups = _id_list(raw, "vpcSecurityGroupIds", _SECURITY_GROUP_ID, "sg-0123456789abcdef0")
    if bool(subnets) != bool(groups):
        missing, given = (("vpcSecurityGroupIds", "vpcSubnetIds") if subnets
                          else ("vpcSubnetIds", "vpcSecurityGroupIds"))
        raise _fail(f"{r}.{missing}", f"is missing while {NS}:{r}.{given} is set",
                    f"a function in a VPC needs both subnets and security groups: set {NS}:"
                    f"{r}.{missing} too, or remove {NS}:{r}.{given}")
    return Runtime(
        memory, timeout, storage, arch,
        _positive_int(raw, r, "scheduleMaxRetryAttempts"),
        _positive_int(raw, r, "scheduleMaxEventAgeSeconds"),
        image, str(raw.get("cloudRunCpu", "")), str(raw.get("cloudRunMemory", "")),
        _positive_int(raw, r, "cloudRunTimeoutSeconds"),
        subnets, groups,
    )


def _id_list(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str],
             example: str) -> tuple[str, ...]:
    """An optional list of AWS resource ids (``runtime.vpcSubnetIds``...); absent means ()."""
    value = raw.get(name)
    if value is None:
        return ()
    key = f"runtime.{name}"
    if not isinstance(value, list) or not value:
        raise _fail(key, f"is {value!r}", f"list one or more ids such as [{example}], or remove "
                    "the key")
    bad = [v for v in value if not isinstance(v, str) or not pattern.match(v)]
    if bad:
        raise _fail(key, f"has invalid ids {bad!r}", f"use ids such as {example}")
    if len(set(value)) != len(value):
        raise _fail(key, "lists an id twice", "list each id once")
    return tuple(value)


def parse_tags(raw: Any, environment: str) -> dict[str, str]:
    raw = _mapping(raw, "tags")
    for key in ("owner", "dataClassification"):
        if not raw.get(key):
            raise _fail(f"tags.{key}", "is missing", "every resource must carry it for audit")
    return {"environment": environment, "owner": str(raw["owner"]),
            "data-classification": str(raw["dataClassification"]),
            **{k: str(v) for k, v in raw.items() if k not in ("owner", "dataClassification")}}
