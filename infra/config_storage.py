"""The storage settings of the stack config: retention (the GFS tiers and the intraday
window), tiering, immutability, and the lifecycle plan every cloud's store is built from.

The only numbers here are the providers' own facts (minimum storage durations, the classes
read without rehydration), which no stack can change."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vo2dr.layout import INTRADAY
from vo2dr.strategy import MINUTES_PER_DAY, DataClass, IntradayTier, Strategy

from infra.config_application import source_root
from infra.config_base import (
    _DAYS_PER_WEEK,
    _DAYS_PER_YEAR,
    _HOURS_PER_DAY,
    _MONTHS_PER_YEAR,
    CLOUDS,
    GFS_TIERS,
    TIERS,
    _fail,
    _mapping,
    _positive_int,
)

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
# Soft delete that every store accepts: GCS allows 7 to 90 days, Key Vault 7 to 90 days.
SOFT_DELETE_DAYS_RANGE = (7, 90)


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
