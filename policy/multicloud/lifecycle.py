"""Lifecycle across clouds: S3 lifecycle configurations, GCS bucket rules and Azure management
policies normalised to :class:`TierRule`, and held to the stack's GFS retention and tiering,
each class's minimum storage duration and the organisation's retention floor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policy.expectations import GFS_TIERS, MINIMUM_STORAGE_DAYS, RETENTION_FLOOR_DAYS, Expectations
from policy.parsing import _as_list, _days, _num, get


@dataclass
class TierRule:
    prefix: str
    expire_days: float | None = None
    transitions: list[tuple[float, str]] = field(default_factory=list)


def lifecycle_rules(t: str, p: Mapping[str, Any]) -> tuple[str, list[TierRule]]:
    """``(cloud, [TierRule])`` for an S3 lifecycle configuration, a GCS bucket or an Azure
    management policy; only enabled rules."""
    if t == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
        rules = []
        for r in _as_list(p.get("rules")):
            if r.get("status") != "Enabled":
                continue
            prefix = get(r, "filter.prefix") or get(r, "filter.and.prefix") or r.get("prefix") or ""
            rules.append(TierRule(
                prefix, _num(get(r, "expiration.days")),
                sorted((_num(x.get("days")) or 0, x.get("storageClass"))
                       for x in _as_list(r.get("transitions")))))
        return "aws", rules
    if t == "gcp:storage/bucket:Bucket":
        by_prefix: dict[str, TierRule] = {}
        for r in _as_list(p.get("lifecycleRules")):
            age = _num(get(r, "condition.age"))
            for prefix in _as_list(get(r, "condition.matchesPrefixes")) or [""]:
                rule = by_prefix.setdefault(prefix, TierRule(prefix))
                kind = get(r, "action.type")
                if kind == "Delete" and age is not None:
                    rule.expire_days = age if rule.expire_days is None else min(rule.expire_days,
                                                                                age)
                elif kind == "SetStorageClass" and age is not None:
                    rule.transitions.append((age, get(r, "action.storageClass")))
        for rule in by_prefix.values():
            rule.transitions.sort()
        return "gcp", list(by_prefix.values())
    rules = []
    for r in _as_list(get(p, "policy.rules")):
        if r.get("enabled") is False:
            continue
        base = get(r, "definition.actions.baseBlob") or {}
        days = {k: _num(get(base, f"{k}.daysAfterCreationGreaterThan"))
                for k in ("tierToCool", "tierToCold", "tierToArchive", "delete")}
        transitions = sorted((d, cls) for cls, d in (("Cool", days["tierToCool"]),
                                                     ("Cold", days["tierToCold"]),
                                                     ("Archive", days["tierToArchive"]))
                             if d is not None)
        for prefix in _as_list(get(r, "definition.filters.prefixMatch")) or [""]:
            rules.append(TierRule(str(prefix), days["delete"], list(transitions)))
    return "azure", rules


def _base_of(prefix: str) -> str | None:
    """A lifecycle prefix from its ``database/`` or ``application/`` part (Azure prefixes start
    with the container name)."""
    for root in ("database/", "application/", "logs/"):
        i = prefix.find(root)
        if i >= 0:
            return prefix[i:]
    return None


def _tier_of(prefix: str, ctx: Expectations | None) -> str | None:
    """The GFS tier of a lifecycle prefix: ``database/<env>/<tier>/`` or an application
    source's ``application/<env>/<kind>/<tier>/``."""
    base = _base_of(prefix)
    if base is None:
        return None
    parts = base.strip("/").split("/")
    size = 4 if parts[0] == "application" else 3  # database/<env>/<tier>, logs/<env>/<tier>
    if len(parts) == size and parts[-1] in GFS_TIERS and (ctx is None or
                                                         parts[1] == ctx.environment):
        return parts[-1]
    return None


def check_lifecycle_gfs(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    cloud, rules = lifecycle_rules(t, p)
    tiers = {}
    for rule in rules:
        if _tier_of(rule.prefix, c):
            tiers[_base_of(rule.prefix)] = rule
    if not tiers and not any("database/" in r.prefix for r in rules):
        return []  # not a backup store's lifecycle (e.g. the access-log bucket)
    if c is None:
        return ["stack expectations are unavailable: cannot compare the lifecycle with the "
                "stack's GFS retention"]
    out = []
    for tier, prefix in ((t, p) for t in GFS_TIERS for p in c.prefixes(t)):
        keep = c.retention_days[tier]
        rule = tiers.get(prefix)
        if rule is None:
            out.append(f"no lifecycle rule for {prefix}: {tier} backups would never expire")
            continue
        if rule.expire_days != keep:
            out.append(f"{prefix} expires after {_days(rule.expire_days)} days, but the stack "
                       f"keeps {tier} backups {keep} days (retention)")
        expected = c.expected_transitions(cloud, tier)
        got = [(int(d), cls) for d, cls in rule.transitions]
        if got != expected:
            out.append(f"{prefix} moves objects {got or 'nowhere'}, but the stack's tiering "
                       f"gives {expected or 'none'}")
    return out


def check_lifecycle_min_duration(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    _, rules = lifecycle_rules(t, p)
    out = []
    for rule in rules:
        where = rule.prefix or "(whole bucket)"
        events = [*rule.transitions]
        for i, (day, cls) in enumerate(events):
            minimum = MINIMUM_STORAGE_DAYS.get(str(cls))
            if minimum is None:
                continue
            nxt = events[i + 1][0] if i + 1 < len(events) else rule.expire_days
            if nxt is not None and nxt - day < minimum:
                out.append(f"{where} keeps objects in {cls} for {_days(nxt - day)} days (from "
                           f"day {_days(day)}), less than its {minimum}-day minimum")
        if (c is not None and rule.expire_days is not None and _tier_of(rule.prefix, c)
                and rule.expire_days < c.lock_days):
            out.append(f"{where} expires after {_days(rule.expire_days)} days, before the "
                       f"{c.lock_days}-day lock ends")
    return out


def check_retention_floor(t: str, p: Mapping[str, Any], c: Expectations | None,
                          options: Mapping[str, Any] | None = None) -> list[str]:
    """The floor is RETENTION_FLOOR_DAYS unless the rule's config ``minimumRetentionDays``
    (days per GFS tier) says otherwise."""
    floor = (options or {}).get("minimumRetentionDays") or RETENTION_FLOOR_DAYS
    _, rules = lifecycle_rules(t, p)
    out = []
    for rule in rules:
        tier = _tier_of(rule.prefix, None)
        if tier and rule.expire_days is not None and rule.expire_days < floor[tier]:
            out.append(f"{rule.prefix} deletes {tier} backups after {_days(rule.expire_days)} "
                       f"days, below the {floor[tier]}-day retention floor")
    return out
