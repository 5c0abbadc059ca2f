"""The stack's backup strategy, read once from ``Pulumi.<stack>.yaml`` and validated into typed
objects. This is the only module that reads ``pulumi.Config``; components receive the objects.

Every number of the strategy (days, RPO, RTO, schedules) comes from the stack file. The only
numbers here are the providers' own facts (minimum storage durations, allowed log retentions),
which no stack can change.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from vo2dr.exceptions import ConfigError
from vo2dr.layout import INTRADAY, SOURCE_LAYOUT
from vo2dr.strategy import (
    MINUTES_PER_DAY,
    DataClass,
    IntradayTier,
    ReportSettings,
    Strategy,
    parse_report_settings,
    parse_strategy,
)

NS = "vo2max-dr"
ENVIRONMENTS = ("staging", "production")
GFS_TIERS = ("daily", "weekly", "monthly", "yearly")
# Every tier prefix of the layout (vo2dr.layout.TIERS), shortest-kept first.
TIERS = (INTRADAY, *GFS_TIERS)
CLOUDS = ("aws", "gcp", "azure")
# The report records under reports/<env>/ (issue 18): drill results (written by the drill's
# identity) and failed backup attempts (written by the backup's).
REPORT_KINDS = ("drills", "attempts")

# Storage classes per cloud for the three tiering steps, and each class's minimum storage
# duration in days (deleting or moving an object earlier is billed as if it stayed).
STORAGE_CLASSES: dict[str, tuple[tuple[str, int], ...]] = {
    "aws": (("STANDARD_IA", 30), ("GLACIER", 90), ("DEEP_ARCHIVE", 180)),
    "gcp": (("NEARLINE", 30), ("COLDLINE", 90), ("ARCHIVE", 365)),
    "azure": (("Cool", 30), ("Cold", 90), ("Archive", 180)),
}
# The content pool of a snapshot source (``<root>content/``) has no expiry: an object stays
# while any retained snapshot references it. Its transitions go only to classes that are read
# like any other (no rehydration: S3 GLACIER and DEEP_ARCHIVE and Azure Archive need a restore
# request hours before a read, and a restore reads content of every age), at the tiering's
# infrequent and archive steps.
CONTENT_STORAGE_CLASSES: dict[str, tuple[str, str]] = {
    "aws": ("STANDARD_IA", "GLACIER_IR"),
    "gcp": ("NEARLINE", "COLDLINE"),
    "azure": ("Cool", "Cold"),
}
# S3 refuses a STANDARD_IA transition earlier than this many days after creation.
S3_IA_EARLIEST_DAYS = 30
# The shortest noncurrent-version expiry S3 accepts (NoncurrentDays >= 1): an expired intraday
# version, whose lock has already ended, is removed the next day in every cloud instead of
# being kept immutability.noncurrentVersionDays like the GFS tiers' (which would keep each
# intraday backup a month after its window and undo the tier).
INTRADAY_NONCURRENT_DAYS = 1
CLOUDWATCH_LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)
_DAYS_PER_WEEK, _DAYS_PER_YEAR, _MONTHS_PER_YEAR = 7, 365, 12
# Key rotation: the issue caps it at 90 days; Cloud KMS needs at least one day. Azure Key Vault
# needs a key version to expire at least 28 days after creation and a rotation at least 7 days
# before that expiry (provider facts, not strategy).
KEY_ROTATION_MAX_DAYS = 90
# AWS KMS accepts an automatic rotation period of 90 days or more (provider fact).
AWS_KMS_MIN_ROTATION_DAYS = 90
AZURE_KEY_MIN_EXPIRY_DAYS = 28
AZURE_KEY_ROTATE_BEFORE_EXPIRY_DAYS = 7
# Soft delete that every store accepts: GCS allows 7 to 90 days, Key Vault 7 to 90 days.
SOFT_DELETE_DAYS_RANGE = (7, 90)
_EVENTBRIDGE_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
# Once a day at a fixed UTC minute and hour.
_EVENTBRIDGE_DAILY = re.compile(r"^cron\(([0-5]?\d) ([01]?\d|2[0-3]) \* \* \? \*\)$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_MINUTES_PER_HOUR, _HOURS_PER_DAY = 60, 24
RECOVERY_KEY_FIX = ("`pulumi config set vo2max-dr:recoveryPublicKey -- "
                    '"$(cat recovery-public.pem)"` (a public key: plain config, not --secret)')


def _fail(key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{NS}:{key} {problem}: {fix}")


def _positive_int(raw: Mapping[str, Any], section: str, name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(f"{section}.{name}", f"must be a positive whole number, got {value!r}",
                    f"set {NS}:{section}.{name} in Pulumi.<stack>.yaml")
    return value


def _mapping(raw: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _fail(key, "is missing or not a mapping", f"add {NS}:{key} to Pulumi.<stack>.yaml")
    return raw


@dataclass(frozen=True)
class Transition:
    days: int
    storage_class: str


@dataclass(frozen=True)
class TierLifecycle:
    """Lifecycle of one tier's prefix: when its objects change class, and when they expire.
    The intraday tier never changes class (it lives shorter than any class's minimum)."""

    tier: str
    prefix: str
    expire_days: int
    transitions: Mapping[str, tuple[Transition, ...]]  # per cloud: aws, gcp, azure
    # What the prefix holds: the database, or an application source (application/<env>/<kind>/)
    # tiered, kept and locked exactly like it.
    source: str = "database"

    @property
    def rule_id(self) -> str:
        """The lifecycle rule's name in every cloud (unique per prefix)."""
        return f"gfs-{self.tier}" if self.source == "database" else \
            f"gfs-{self.source}-{self.tier}"


@dataclass(frozen=True)
class Retention:
    daily_days: int
    weekly_days: int
    monthly_days: int
    yearly_days: int
    # retention.intradayHours in days (validated whole days); 0: no intraday tier (a config
    # built without one, e.g. in tests of the GFS tiers alone).
    intraday_days: int = 0

    def days(self, tier: str) -> int:
        return getattr(self, f"{tier}_days")

    @property
    def tiers(self) -> tuple[str, ...]:
        return TIERS if self.intraday_days else GFS_TIERS


@dataclass(frozen=True)
class Tiering:
    """Days after creation at which objects move to the infrequent, archive and deep tiers."""

    infrequent_after_days: int
    archive_after_days: int
    deep_archive_after_days: int

    @property
    def steps(self) -> tuple[int, int, int]:
        return (self.infrequent_after_days, self.archive_after_days, self.deep_archive_after_days)


@dataclass(frozen=True)
class Immutability:
    mode: str  # "governance" or "compliance"
    lock_days: int
    noncurrent_version_days: int
    abort_incomplete_upload_days: int
    soft_delete_days: int

    @property
    def locked(self) -> bool:
        """Compliance mode: retention cannot be shortened or removed, even by an admin."""
        return self.mode == "compliance"

    @property
    def s3_mode(self) -> str:
        return self.mode.upper()

    @property
    def gcs_mode(self) -> str:
        """The GCS Object Retention Lock mode: Locked is GCS's compliance mode."""
        return "Locked" if self.locked else "Unlocked"

    def gcs_retention_env(self) -> dict[str, str]:
        """The job settings that make every GCS upload carry its retention (vo2dr.settings)."""
        return {"VO2DR_GCS_RETENTION_DAYS": str(self.lock_days),
                "VO2DR_GCS_RETENTION_MODE": self.gcs_mode}


@dataclass(frozen=True)
class Keys:
    """Rotation of the customer-managed keys (Cloud KMS, Key Vault; AWS KMS may use it too)."""

    rotation_days: int
    expiry_days: int  # Key Vault: each key version expires this long after it is created


@dataclass(frozen=True)
class SnapshotRoot:
    """Where one snapshot source (``assets``, ``logs``) keeps its objects: the tiers of its
    indexes and manifests (GFS lifecycle like the database's), its content pool (kept by
    references: no expiry) and the pruner's plans."""

    source: str
    root: str  # application/<env>/assets/, logs/<env>/
    data_class: str
    origins: Mapping[str, str]

    @property
    def content_prefix(self) -> str:
        return f"{self.root}content/"

    @property
    def prune_prefix(self) -> str:
        return f"{self.root}prune/"

    @property
    def s3_origins(self) -> tuple[tuple[str, str], ...]:
        """``(bucket, prefix)`` of each origin (``check_snapshot_origins`` admits S3 only)."""
        return tuple(tuple(url[len("s3://"):].split("/", 1))  # type: ignore[misc]
                     for _, url in sorted(self.origins.items()))


@dataclass(frozen=True)
class ContentLifecycle:
    """Lifecycle of a content pool: transitions only (per cloud), never an expiry. Its
    noncurrent versions (content the pruner deleted, after its lock) go after
    ``immutability.noncurrentVersionDays`` like every other version."""

    source: str
    prefix: str  # <root>content/
    transitions: Mapping[str, tuple[Transition, ...]]

    @property
    def rule_id(self) -> str:
        return f"content-{self.source}"


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


@dataclass(frozen=True)
class Secrets:
    """Secret settings, kept as secret Outputs so they never reach state or logs in clear."""

    database_url: pulumi.Output[str] | None
    alert_webhook_url: pulumi.Output[str] | None
    # The drill's scratch server: a role with CREATEDB, never the backup's read-only role.
    drill_database_url: pulumi.Output[str] | None = None
    # The app repository's read-only token (vo2max-dr:application, the code and config sources).
    repository_token: pulumi.Output[str] | None = None


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    environment: str
    tags: Mapping[str, str]
    aws: AwsCloud
    gcp: GcpCloud
    azure: AzureCloud
    strategy: Strategy
    retention: Retention
    tiering: Tiering
    immutability: Immutability
    monitoring: Monitoring
    runtime: Runtime
    secrets: Secrets
    lifecycle: tuple[TierLifecycle, ...] = field(default_factory=tuple)
    keys: Keys | None = None  # always set by parse(); defaulted only to keep the field order
    # PEM of the offline RSA recovery public key (plain config: it is a public key). Validated
    # when set; required by the runtime (require_recovery_public_key).
    recovery_public_key: str | None = None
    # PEM bundle of the manifest signing public keys readers trust (docs/backup-authenticity.md):
    # plain config, like the recovery key. None until set after the first `pulumi up`.
    signing_public_keys: str | None = None
    # PEM bundle of the drill record signing public keys (infra/aws/signing.py, purpose
    # "records"): trusted for records only, never for a manifest. None until set after the
    # first `pulumi up`; until then cloud drill records are shown unsigned and not counted.
    record_public_keys: str | None = None
    # vo2max-dr:report (the report's targets; the dashboard draws the RTO variance). None when
    # the stack has no such section.
    report: ReportSettings | None = None

    def require_recovery_public_key(self) -> str:
        """The recovery public key, or the ConfigError saying how to set it."""
        if not self.recovery_public_key:
            raise _fail("recoveryPublicKey", "is not set",
                        "every backup is encrypted to it as well as to KMS, so it can be "
                        f"restored without AWS: {RECOVERY_KEY_FIX}")
        return self.recovery_public_key

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def enabled_clouds(self) -> tuple[str, ...]:
        return tuple(c for c in CLOUDS if getattr(self, c).enabled)

    @property
    def data_classes(self) -> Mapping[str, DataClass]:
        """The classes with a database backup (its function, schedule, standby job and
        alarm); a class with ``tables: []`` serves application sources only."""
        return self.strategy.database_classes

    def name(self, suffix: str) -> str:
        """Resource name prefix: ``vo2dr-<env>-<suffix>``."""
        return f"vo2dr-{self.environment}-{suffix}"

    @property
    def status_prefix(self) -> str:
        """Where the status check keeps its alert state (``vo2dr.status``)."""
        return f"status/{self.environment}/"

    def application_prefixes(self) -> tuple[str, ...]:
        """The root of each application source the stack backs up: ``application/<env>/
        <kind>/`` (code, config, assets) and ``logs/<env>/`` (the layout's)."""
        app = self.strategy.application
        return tuple(source_root(self.environment, k) for k in sorted(app.all_sources())) \
            if app else ()
    @property
    def reports_prefix(self) -> str:
        """The job's write-once report records (issue 18): drill results under ``drills/``,
        backup attempts that failed before a manifest under ``attempts/``. Kept as long as the
        yearly tier (:attr:`reports_expire_days`), under the stores' default lock."""
        return f"reports/{self.environment}/"

    def reports_writes(self, kind: str) -> str:
        """The part of :attr:`reports_prefix` one job writes: ``drills`` or ``attempts``."""
        if kind not in REPORT_KINDS:
            raise ValueError(f"unknown report records {kind!r}: use one of {REPORT_KINDS}")
        return f"{self.reports_prefix}{kind}/"

    @property
    def reports_expire_days(self) -> int:
        """Report records outlive no backup they describe, and no audit asks for less than the
        longest tier: they expire with the yearly tier, never before."""
        return self.retention.yearly_days

    def writer_prefixes(self) -> tuple[str, ...] | None:
        """Where the backup writer may create objects, when a snapshot source narrows it:
        every root but, for a snapshot source, only its tiers and content pool (its
        ``prune/`` is the pruner's). None: the writer writes under every root."""
        snapshots = self.snapshot_roots()
        if not snapshots:
            return None
        others = [p for p in self.application_prefixes()
                  if p not in {r.root for r in snapshots}]
        return (self.prefix(), *others,
                *(p for r in snapshots for p in (*(f"{r.root}{t}/" for t in self.retention.tiers),
                                                  r.content_prefix)))

    def snapshot_roots(self) -> tuple[SnapshotRoot, ...]:
        """The snapshot sources (assets, logs) with their roots, in name order."""
        app = self.strategy.application
        if app is None:
            return ()
        return tuple(SnapshotRoot(name, source_root(self.environment, name), snap.data_class,
                                  dict(snap.origins))
                     for name, snap in sorted(app.snapshots.items()))

    def content_lifecycle(self) -> tuple[ContentLifecycle, ...]:
        """One transitions-only rule per snapshot source's content pool."""
        return tuple(ContentLifecycle(r.source, r.content_prefix,
                                      content_transitions(self.tiering))
                     for r in self.snapshot_roots())

    def prefix(self, tier: str | None = None) -> str:
        """Object key prefix of the write-once layout: ``database/<env>/[<tier>/]``."""
        base = f"database/{self.environment}/"
        return f"{base}{tier}/" if tier else base


# ---- parsing (pure: tests call these with plain dicts) -------------------------------------

def parse_retention(raw: Any, intraday: IntradayTier | None = None) -> Retention:
    """The GFS retention in days, with the intraday window (validated by the shared strategy
    validator, ``vo2dr.strategy.parse_intraday``) when given."""
    raw = _mapping(raw, "retention")
    daily = _positive_int(raw, "retention", "dailyDays")
    weekly = _positive_int(raw, "retention", "weeklyWeeks") * _DAYS_PER_WEEK
    monthly = _positive_int(raw, "retention", "monthlyMonths") * _DAYS_PER_YEAR // _MONTHS_PER_YEAR
    yearly = _positive_int(raw, "retention", "yearlyYears") * _DAYS_PER_YEAR
    if not daily < weekly < monthly < yearly:
        raise _fail("retention", f"keeps tiers for {daily}/{weekly}/{monthly}/{yearly} days",
                    "each GFS tier (daily, weekly, monthly, yearly) must be kept longer than "
                    "the one before it")
    return Retention(daily, weekly, monthly, yearly, intraday.days if intraday else 0)


def parse_tiering(raw: Any) -> Tiering:
    raw = _mapping(raw, "tiering")
    names = ("infrequentAfterDays", "archiveAfterDays", "deepArchiveAfterDays")
    steps = [_positive_int(raw, "tiering", n) for n in names]
    for (a, da), (b, db) in itertools.pairwise(zip(names, steps, strict=True)):
        if db <= da:
            raise _fail(f"tiering.{b}", f"is {db}, not after tiering.{a} ({da})",
                        "transitions must be strictly increasing: infrequent < archive < deep")
    if steps[0] < S3_IA_EARLIEST_DAYS:
        raise _fail("tiering.infrequentAfterDays", f"is {steps[0]}",
                    f"S3 allows STANDARD_IA only {S3_IA_EARLIEST_DAYS} or more days after "
                    "creation: raise it")
    for cloud, classes in STORAGE_CLASSES.items():
        for i in range(2):
            (cls, minimum), stay = classes[i], steps[i + 1] - steps[i]
            if stay < minimum:
                raise _fail(f"tiering.{names[i + 1]}",
                            f"moves objects out of {cloud} {cls} after {stay} days",
                            f"{cls} has a {minimum}-day minimum storage duration: set "
                            f"{names[i + 1]} to at least {steps[i] + minimum}")
    return Tiering(*steps)


def source_root(environment: str, source: str) -> str:
    """The key prefix of an application source before its tiers (``vo2dr.layout``)."""
    return SOURCE_LAYOUT[source][0].format(environment=environment)


def content_transitions(tiering: Tiering,
                        clouds: tuple[str, ...] = CLOUDS) -> dict[str, tuple[Transition, ...]]:
    """A content pool's transitions per cloud: the infrequent and archive steps, into classes
    read without rehydration (``CONTENT_STORAGE_CLASSES``). ``parse_tiering`` already keeps an
    object in the first class for its minimum before the second step; the second class has no
    next step and the pool no expiry."""
    steps = (tiering.infrequent_after_days, tiering.archive_after_days)
    return {cloud: tuple(Transition(day, cls) for day, cls
                         in zip(steps, CONTENT_STORAGE_CLASSES[cloud], strict=True))
            for cloud in clouds}


def lifecycle_plan(environment: str, retention: Retention, tiering: Tiering,
                   clouds: tuple[str, ...] = CLOUDS,
                   sources: tuple[str, ...] = ()) -> tuple[TierLifecycle, ...]:
    """Per tier and cloud: a transition happens only where the object then stays in the
    class for at least its minimum storage duration before it expires. Intraday objects never
    move: they are kept days, every colder class bills a month or more. Each application
    source in ``sources`` (code, config, and the snapshot sources' indexes and manifests:
    assets, logs) gets the same plan under its own root's tier prefixes; a snapshot source's
    ``content/`` and ``prune/`` are beside the tiers, so no tier rule reaches them."""
    plan = []
    for tier in retention.tiers:
        expire = retention.days(tier)
        per_cloud = {}
        for cloud in clouds:
            per_cloud[cloud] = () if tier == INTRADAY else tuple(
                Transition(day, cls)
                for day, (cls, minimum) in zip(tiering.steps, STORAGE_CLASSES[cloud], strict=True)
                if expire - day >= minimum
            )
        plan.append(TierLifecycle(tier, f"database/{environment}/{tier}/", expire, per_cloud))
        plan.extend(TierLifecycle(tier, f"{source_root(environment, kind)}{tier}/", expire,
                                  per_cloud, kind) for kind in sources)
    return tuple(plan)


def noncurrent_days(tier: TierLifecycle, noncurrent_version_days: int) -> int:
    """How long a tier's expired (noncurrent) versions stay before lifecycle removes them."""
    return INTRADAY_NONCURRENT_DAYS if tier.tier == INTRADAY else noncurrent_version_days


def check_locks_end_by_expiry(plan: tuple[TierLifecycle, ...], imm: Immutability,
                              intraday: IntradayTier | None) -> None:
    """No object's lock may outlive the day lifecycle expires it: a locked object cannot be
    deleted, so GCS and Azure would keep it (and bill it) past its tier's retention. Intraday
    objects are locked ``retention.intradayHours`` (their own retain-until time, or the Azure
    intraday container's policy); every other object ``immutability.lockDays``."""
    for tier in plan:
        if tier.tier == INTRADAY:
            lock_hours = intraday.hours if intraday else 0
            if lock_hours > tier.expire_days * _HOURS_PER_DAY:
                raise _fail("retention.intradayHours",
                            f"locks intraday objects {lock_hours} h, past their expiry after "
                            f"{tier.expire_days} days", "use whole days (a multiple of 24)")
        elif imm.lock_days > tier.expire_days:
            raise _fail("immutability.lockDays", f"is {imm.lock_days}, longer than the "
                        f"{tier.expire_days}-day {tier.tier} retention",
                        "the lock must end by the time lifecycle expires the tier")


def backups_per_day(dc: DataClass) -> int:
    """How many backups of the class its schedule takes in a day (cron_expression)."""
    return 1 if dc.daily_at_utc is not None else MINUTES_PER_DAY // dc.rpo_minutes


def steady_state_backups(strategy: Strategy, retention: Retention, *,
                         intraday: bool = True) -> dict[str, dict[str, int]]:
    """Per data class and tier: how many backups a stack keeps at most once every tier is full
    (each class backed up every RPO). Intraday: the day's backups after the first, for the
    window's days; daily, weekly, monthly, yearly: at most one per day, week, month, year of
    their retention (a backup fills one GFS slot only, so the real total is a little lower).

    ``intraday=False`` counts the same schedules without the intraday tier, as before it
    existed: every backup after the first of a week, month or year was daily, so the daily
    tier kept the whole day's backups for dailyDays."""
    out: dict[str, dict[str, int]] = {}
    for name, dc in strategy.data_classes.items():
        per_day = backups_per_day(dc)
        gfs = {
            "daily": retention.daily_days * (1 if intraday else per_day),
            "weekly": retention.weekly_days // _DAYS_PER_WEEK,
            "monthly": round(retention.monthly_days * _MONTHS_PER_YEAR / _DAYS_PER_YEAR),
            "yearly": retention.yearly_days // _DAYS_PER_YEAR,
        }
        out[name] = ({INTRADAY: (per_day - 1) * retention.intraday_days, **gfs}
                     if intraday and retention.intraday_days else gfs)
    return out


def check_retention_outlives_tiers(retention: Retention, tiering: Tiering) -> None:
    """The longest-kept tier must reach the deepest class and serve its minimum there in every
    cloud; otherwise the deep tier is configured but can never be used."""
    for cloud, classes in STORAGE_CLASSES.items():
        cls, minimum = classes[-1]
        need = tiering.deep_archive_after_days + minimum
        if retention.yearly_days < need:
            raise _fail("retention.yearlyYears",
                        f"keeps yearly backups {retention.yearly_days} days, shorter than "
                        f"{cloud} {cls}'s {minimum}-day minimum after day "
                        f"{tiering.deep_archive_after_days}",
                        f"keep yearly backups at least {need} days, or move "
                        "tiering.deepArchiveAfterDays earlier")


def parse_immutability(raw: Any, environment: str, retention: Retention) -> Immutability:
    raw = _mapping(raw, "immutability")
    mode = raw.get("mode")
    if mode not in ("governance", "compliance"):
        raise _fail("immutability.mode", f"is {mode!r}", "use governance or compliance")
    if environment == "production" and mode != "compliance":
        raise _fail("immutability.mode", "is governance in production",
                    "production backups must be locked: set it to compliance")
    imm = Immutability(
        mode=mode,
        lock_days=_positive_int(raw, "immutability", "lockDays"),
        noncurrent_version_days=_positive_int(raw, "immutability", "noncurrentVersionDays"),
        abort_incomplete_upload_days=_positive_int(
            raw, "immutability", "abortIncompleteUploadDays"),
        soft_delete_days=_positive_int(raw, "immutability", "softDeleteDays"),
    )
    low, high = SOFT_DELETE_DAYS_RANGE
    if not low <= imm.soft_delete_days <= high:
        raise _fail("immutability.softDeleteDays", f"is {imm.soft_delete_days}",
                    f"GCS and Key Vault soft delete accept {low} to {high} days")
    if imm.lock_days > retention.daily_days:
        raise _fail("immutability.lockDays", f"is {imm.lock_days}, longer than the "
                    f"{retention.daily_days}-day daily retention",
                    "the lock must end by the time lifecycle expires the shortest-kept GFS "
                    "tier (intraday objects carry their own, shorter lock)")
    return imm


def parse_keys(raw: Any) -> Keys:
    raw = _mapping(raw, "keys")
    rotation = _positive_int(raw, "keys", "rotationDays")
    expiry = _positive_int(raw, "keys", "expiryDays")
    if rotation > KEY_ROTATION_MAX_DAYS:
        raise _fail("keys.rotationDays", f"is {rotation}",
                    f"rotate keys at least every {KEY_ROTATION_MAX_DAYS} days")
    need = max(AZURE_KEY_MIN_EXPIRY_DAYS, rotation + AZURE_KEY_ROTATE_BEFORE_EXPIRY_DAYS)
    if expiry < need:
        raise _fail("keys.expiryDays", f"is {expiry}",
                    "a key version must outlive its rotation by "
                    f"{AZURE_KEY_ROTATE_BEFORE_EXPIRY_DAYS} days and live at least "
                    f"{AZURE_KEY_MIN_EXPIRY_DAYS}: set it to {need} or more")
    if rotation < AWS_KMS_MIN_ROTATION_DAYS:
        raise _fail("keys.rotationDays", f"is {rotation}",
                    f"AWS KMS rotates a key at most every {AWS_KMS_MIN_ROTATION_DAYS} days: "
                    f"set it to {AWS_KMS_MIN_ROTATION_DAYS} or more")
    return Keys(rotation, expiry)


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


def parse_recovery_public_key(value: Any) -> str | None:
    """``vo2max-dr:recoveryPublicKey``: the PEM of an RSA public key the job accepts (the job's
    own check, ``vo2dr.crypto.recovery_key_id``: RSA, at least 3072 bits). None when unset."""
    if value is None or value == "":
        return None
    from vo2dr.crypto import recovery_key_id
    from vo2dr.exceptions import EncryptionError

    if not isinstance(value, str) or "PRIVATE KEY" in value:
        raise _fail("recoveryPublicKey", "is not a PEM public key (never put the private key "
                    "in config)", f"set the public half: {RECOVERY_KEY_FIX}")
    try:
        recovery_key_id(value.encode())
    except EncryptionError as exc:
        raise _fail("recoveryPublicKey", f"is not usable: {exc}",
                    f"set the PEM of an RSA-3072 or larger public key: {RECOVERY_KEY_FIX}"
                    ) from exc
    return value


SIGNING_KEYS_FIX = ("after the first `pulumi up`, put the public halves of the AWS and Cloud "
                    "KMS signing keys in it: see docs/backup-authenticity.md (plain config)")
RECORD_KEYS_FIX = ("after the first `pulumi up`, put the public half of the AWS KMS record "
                   "signing key (output awsRecordSigningKeyArn) in it: see "
                   "docs/backup-authenticity.md (plain config)")


def parse_signing_public_keys(value: Any, key: str = "signingPublicKeys",
                              fix: str = SIGNING_KEYS_FIX) -> str | None:
    """``vo2max-dr:signingPublicKeys`` (or ``recordPublicKeys``): one or more PEM P-256 public
    keys (the job's own check, ``vo2dr.signing.load_public_keys``). None when unset."""
    if value is None or value == "":
        return None
    from vo2dr.signing import load_public_keys

    if not isinstance(value, str) or "PRIVATE KEY" in value:
        raise _fail(key, "is not a PEM bundle of public keys (never put a private key in "
                    "config)", fix)
    try:
        load_public_keys(value)
    except ConfigError as exc:
        raise _fail(key, f"is not usable: {exc}", fix) from exc
    return value


def parse_record_public_keys(value: Any, signing_public_keys: str | None) -> str | None:
    """``vo2max-dr:recordPublicKeys``: the drill record keys' public halves, none of which may
    also be a manifest key: a key trusted for manifests would let the drill's identity sign a
    backup every reader accepts."""
    records = parse_signing_public_keys(value, "recordPublicKeys", RECORD_KEYS_FIX)
    if records is None or signing_public_keys is None:
        return records
    from vo2dr.signing import load_public_keys

    shared = set(load_public_keys(records)) & set(load_public_keys(signing_public_keys))
    if shared:
        raise _fail("recordPublicKeys", f"shares {len(shared)} key(s) with signingPublicKeys "
                    "(a record key must never be trusted for manifests)",
                    "keep the record signing key's public half in recordPublicKeys only")
    return records


def parse_tags(raw: Any, environment: str) -> dict[str, str]:
    raw = _mapping(raw, "tags")
    for key in ("owner", "dataClassification"):
        if not raw.get(key):
            raise _fail(f"tags.{key}", "is missing", "every resource must carry it for audit")
    return {"environment": environment, "owner": str(raw["owner"]),
            "data-classification": str(raw["dataClassification"]),
            **{k: str(v) for k, v in raw.items() if k not in ("owner", "dataClassification")}}


def check_application(strategy: Strategy) -> None:
    """The deployed job reads exactly the app secrets it is granted: by name. A prefix would
    need secretsmanager:ListSecrets, which has no resource-level permission (every secret name
    in the account), so the program refuses it (the job still takes one, for local runs)."""
    app = strategy.application
    if app is not None and app.config is not None and app.config.secret_prefix:
        raise _fail("application.config.secretPrefix", f"is {app.config.secret_prefix!r}",
                    "list the secrets in application.config.secretNames instead: the backup "
                    "role is granted exactly those, and a prefix would need ListSecrets on "
                    "every secret of the account")


def check_snapshot_origins(strategy: Strategy) -> None:
    """The deployed job reads a snapshot source's origins from S3 only, with read-only grants
    on exactly those buckets and prefixes (infra/aws/runtime.py); ``gs://`` and ``file://``
    origins work for local runs (``vo2dr backup --source``) but have no grant to deploy."""
    app = strategy.application
    for name, snap in sorted((app.snapshots if app else {}).items()):
        for origin, url in sorted(snap.origins.items()):
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            if not url.startswith("s3://") or not bucket or "*" in url:
                raise _fail(f"application.{name}.origins.{origin}", f"is {url!r}",
                            "the deployed job reads origins from S3 only: use "
                            "s3://bucket/prefix/ (gs:// and file:// are for local runs)")
            if prefix and not prefix.endswith("/"):
                raise _fail(f"application.{name}.origins.{origin}", f"is {url!r}",
                            "end the prefix with '/': the read grant is on prefix*, and "
                            f"s3://{bucket}/{prefix} would also grant {prefix}-other/")


def parse(raw: Mapping[str, Any], *, stack: str, project: str = NS,
          providers: Mapping[str, str] | None = None,
          secrets: Secrets | None = None) -> StackConfig:
    """Validate the ``vo2max-dr:*`` settings (namespace stripped) of one stack."""
    providers = providers or {}
    environment = raw.get("environment")
    if environment not in ENVIRONMENTS:
        raise _fail("environment", f"is {environment!r}", f"use one of {ENVIRONMENTS}")
    if environment != stack:
        raise _fail("environment", f"is {environment!r} in stack {stack!r}",
                    "name the stack after its environment (staging or production)")
    if raw.get("compression") is None:
        raise _fail("compression", "is missing",
                    "set compression.level (zstd 1-19) in Pulumi.<stack>.yaml")
    strategy = parse_strategy(raw.get("dataClasses"), _mapping(raw.get("retention"), "retention"),
                              _mapping(raw.get("immutability"), "immutability"),
                              raw.get("application"), compression=raw.get("compression"))
    check_application(strategy)
    check_snapshot_origins(strategy)
    retention = parse_retention(raw.get("retention"), strategy.intraday)
    tiering = parse_tiering(raw.get("tiering"))
    check_retention_outlives_tiers(retention, tiering)
    aws, gcp, azure = parse_clouds(
        raw.get("clouds"), environment, providers.get("aws:region", ""),
        providers.get("gcp:project", ""), providers.get("gcp:region", ""),
        providers.get("azure-native:location", ""),
    )
    immutability = parse_immutability(raw.get("immutability"), environment, retention)
    app = strategy.application
    lifecycle = lifecycle_plan(environment, retention, tiering,
                               sources=tuple(sorted(app.all_sources())) if app else ())
    check_locks_end_by_expiry(lifecycle, immutability, strategy.intraday)
    return StackConfig(
        project=project,
        stack=stack,
        environment=environment,
        tags=parse_tags(raw.get("tags"), environment),
        aws=aws,
        gcp=gcp,
        azure=azure,
        strategy=strategy,
        retention=retention,
        tiering=tiering,
        immutability=immutability,
        monitoring=parse_monitoring(raw.get("monitoring"), strategy),
        runtime=parse_runtime(raw.get("runtime")),
        secrets=secrets or Secrets(None, None),
        lifecycle=lifecycle,
        keys=parse_keys(raw.get("keys")),
        recovery_public_key=parse_recovery_public_key(raw.get("recoveryPublicKey")),
        signing_public_keys=parse_signing_public_keys(raw.get("signingPublicKeys")),
        record_public_keys=parse_record_public_keys(
            raw.get("recordPublicKeys"), parse_signing_public_keys(raw.get("signingPublicKeys"))),
        report=(parse_report_settings(raw["report"]) if raw.get("report") is not None
                else None),
    )


KEYS = ("environment", "tags", "clouds", "dataClasses", "retention", "tiering", "immutability",
        "monitoring", "runtime", "keys", "recoveryPublicKey", "signingPublicKeys",
        "recordPublicKeys", "compression", "application", "report")
# Plain strings; every other key is a YAML object.
STRING_KEYS = ("environment", "recoveryPublicKey", "signingPublicKeys", "recordPublicKeys")
SECRET_KEYS = ("databaseUrl", "alertWebhookUrl", "drillDatabaseUrl", "repositoryToken")


def load() -> StackConfig:
    """Read this stack's config from Pulumi and validate it. Raises ConfigError on bad input."""
    cfg = pulumi.Config(NS)
    raw: dict[str, Any] = {}
    for key in KEYS:
        value = cfg.get(key) if key in STRING_KEYS else cfg.get_object(key)
        if value is not None:
            raw[key] = value
    providers = {
        "aws:region": pulumi.Config("aws").get("region") or "",
        "gcp:project": pulumi.Config("gcp").get("project") or "",
        "gcp:region": pulumi.Config("gcp").get("region") or "",
        "azure-native:location": pulumi.Config("azure-native").get("location") or "",
    }
    secrets = Secrets(*(cfg.get_secret(k) for k in SECRET_KEYS))
    return parse(raw, stack=pulumi.get_stack(), project=pulumi.get_project(),
                 providers=providers, secrets=secrets)
