"""What the stack promises, in the units the rules compare against (:class:`Expectations`),
built from the same ``Pulumi.<stack>.yaml`` the program reads (:func:`expectations_from_settings`)
or from policy-pack config (``expectations``) when the pack runs without the project around it;
and the organisation's and providers' facts the rules hold every stack to (retention floor,
storage classes and their minimum storage durations)."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = "vo2max-dr"
ROOT = Path(__file__).resolve().parent.parent
GFS_TIERS = ("daily", "weekly", "monthly", "yearly")
CLOUDS = ("aws", "gcp", "azure")

# Classes of the three tiering steps per cloud, and each class's minimum storage duration in
# days: deleting or moving an object earlier is billed as if it had stayed.
TIER_CLASSES: dict[str, tuple[tuple[str, int], ...]] = {
    "aws": (("STANDARD_IA", 30), ("GLACIER", 90), ("DEEP_ARCHIVE", 180)),
    "gcp": (("NEARLINE", 30), ("COLDLINE", 90), ("ARCHIVE", 365)),
    "azure": (("Cool", 30), ("Cold", 90), ("Archive", 180)),
}
MINIMUM_STORAGE_DAYS = {cls: days for classes in TIER_CLASSES.values() for cls, days in classes}
# The organisation's retention floor for health data backups (the GFS baseline of the DR
# strategy: 30 days, 12 weeks, 12 months, 7 years). A stack may keep longer, never shorter.
# Overridable per stack with the policy config property ``minimumRetentionDays``.
RETENTION_FLOOR_DAYS = {"daily": 30, "weekly": 84, "monthly": 365, "yearly": 2555}


@dataclass(frozen=True)
class DataClassExpectation:
    rpo_minutes: int
    daily_at_utc: str | None = None


@dataclass(frozen=True)
class Expectations:
    """What the stack file promises, in the units the rules compare against."""

    stack: str
    environment: str
    retention_days: Mapping[str, int]  # GFS tier -> days kept
    tier_days: tuple[int, int, int]  # days to the infrequent, archive and deep classes
    lock_days: int
    soft_delete_days: int
    log_retention_days: int
    status_every_minutes: int
    drill_schedule: str
    data_classes: Mapping[str, DataClassExpectation]
    enabled_clouds: tuple[str, ...]
    # retention.intradayHours in days: how long intraday backups are kept and locked (0: the
    # stack has no intraday tier).
    intraday_days: int = 0
    # The application sources backed up beside the database (code, config: tiered, kept and
    # locked like it), and the app's secrets only the backup role may read.
    sources: tuple[str, ...] = ()
    app_secrets: tuple[str, ...] = ()
    # Its SSM parameters: names ("/a/b") and paths ("/a/", every parameter under them).
    app_parameters: tuple[str, ...] = ()
    # The snapshot sources' roots (``application/<env>/assets/``, ``logs/<env>/``): their tier
    # prefixes are kept like the database's; their ``content/`` is never expired by age and
    # only the pruner deletes there; their origins (``s3://bucket/prefix/``) are read-only.
    snapshot_roots: tuple[str, ...] = ()
    snapshot_origins: tuple[str, ...] = ()

    @property
    def content_prefixes(self) -> tuple[str, ...]:
        return tuple(f"{r}content/" for r in self.snapshot_roots)

    @property
    def prune_prefixes(self) -> tuple[str, ...]:
        return tuple(f"{r}prune/" for r in self.snapshot_roots)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def min_clouds(self) -> int:
        return 2 if self.production else 1

    def prefix(self, tier: str) -> str:
        return f"database/{self.environment}/{tier}/"

    def prefixes(self, tier: str) -> list[str]:
        """The tier's prefix for the database and for each application source."""
        return [self.prefix(tier), *(f"application/{self.environment}/{kind}/{tier}/"
                                     for kind in self.sources),
                *(f"{root}{tier}/" for root in self.snapshot_roots)]

    def expected_transitions(self, cloud: str, tier: str) -> list[tuple[int, str]]:
        """Transitions a tier's objects should take: only into a class they then stay in for
        at least its minimum storage duration before they expire."""
        expire = self.retention_days[tier]
        return [(day, cls) for day, (cls, minimum) in zip(self.tier_days, TIER_CLASSES[cloud],
                                                          strict=True)
                if expire - day >= minimum]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "environment": self.environment,
            "retentionDays": dict(self.retention_days), "tierDays": list(self.tier_days),
            "lockDays": self.lock_days, "softDeleteDays": self.soft_delete_days,
            "logRetentionDays": self.log_retention_days,
            "statusEveryMinutes": self.status_every_minutes,
            "drillSchedule": self.drill_schedule,
            "dataClasses": {n: {"rpoMinutes": c.rpo_minutes,
                                **({"dailyAtUtc": c.daily_at_utc} if c.daily_at_utc else {})}
                            for n, c in sorted(self.data_classes.items())},
            "enabledClouds": list(self.enabled_clouds),
            "intradayDays": self.intraday_days,
            "sources": list(self.sources), "appSecrets": list(self.app_secrets),
            "appParameters": list(self.app_parameters),
            "snapshotRoots": list(self.snapshot_roots),
            "snapshotOrigins": list(self.snapshot_origins),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Expectations:
        return cls(
            stack=str(d["stack"]), environment=str(d["environment"]),
            retention_days={t: int(d["retentionDays"][t]) for t in GFS_TIERS},
            tier_days=tuple(int(x) for x in d["tierDays"]),  # type: ignore[arg-type]
            lock_days=int(d["lockDays"]), soft_delete_days=int(d["softDeleteDays"]),
            log_retention_days=int(d["logRetentionDays"]),
            status_every_minutes=int(d["statusEveryMinutes"]),
            drill_schedule=str(d["drillSchedule"]),
            data_classes={n: DataClassExpectation(int(c["rpoMinutes"]), c.get("dailyAtUtc"))
                          for n, c in d["dataClasses"].items()},
            enabled_clouds=tuple(d["enabledClouds"]),
            intraday_days=int(d.get("intradayDays", 0)),
            sources=tuple(d.get("sources", ())), app_secrets=tuple(d.get("appSecrets", ())),
            app_parameters=tuple(d.get("appParameters", ())),
            snapshot_roots=tuple(d.get("snapshotRoots", ())),
            snapshot_origins=tuple(d.get("snapshotOrigins", ())),
        )

    @classmethod
    def from_stack_config(cls, cfg: Any) -> Expectations:
        """From a parsed ``infra.config.StackConfig`` (duck-typed: no import of infra here)."""
        return cls(
            stack=cfg.stack, environment=cfg.environment,
            retention_days={t: cfg.retention.days(t) for t in GFS_TIERS},
            tier_days=tuple(cfg.tiering.steps),
            lock_days=cfg.immutability.lock_days,
            soft_delete_days=cfg.immutability.soft_delete_days,
            log_retention_days=cfg.monitoring.log_retention_days,
            status_every_minutes=cfg.monitoring.status_every_minutes,
            drill_schedule=cfg.monitoring.drill_schedule,
            data_classes={n: DataClassExpectation(c.rpo_minutes, c.daily_at_utc)
                          for n, c in cfg.data_classes.items()},
            enabled_clouds=tuple(cfg.enabled_clouds),
            intraday_days=cfg.retention.intraday_days,
            sources=tuple(sorted(cfg.strategy.application.sources()))
            if cfg.strategy.application else (),
            app_secrets=tuple(cfg.strategy.application.config.secret_names)
            if cfg.strategy.application and cfg.strategy.application.config else (),
            app_parameters=(*cfg.strategy.application.config.parameter_names,
                            *cfg.strategy.application.config.parameter_paths)
            if cfg.strategy.application and cfg.strategy.application.config else (),
            snapshot_roots=tuple(r.root for r in cfg.snapshot_roots()),
            snapshot_origins=tuple(url for r in cfg.snapshot_roots()
                                   for _, url in sorted(r.origins.items())),
        )


def expectations_from_settings(settings: Mapping[str, Any], stack: str) -> Expectations:
    """From a stack file's ``config:`` mapping (``vo2max-dr:retention`` ... keys, values parsed),
    validated by the program's own ``infra.config.parse`` (imported here, lazily, so the pack
    also loads where only ``policy/`` is present)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from infra.config import parse

    ns = f"{PROJECT}:"
    raw = {k[len(ns):]: v for k, v in settings.items() if k.startswith(ns)}
    providers = {k: str(v) for k, v in settings.items() if not k.startswith(ns)}
    return Expectations.from_stack_config(parse(raw, stack=stack, providers=providers))


@functools.cache
def expectations_for_stack(stack: str) -> Expectations | None:
    """The engine's fallback: the stack's config from the CLI (``PULUMI_CONFIG``) or else its
    ``Pulumi.<stack>.yaml`` beside ``policy/``. None when neither is available."""
    settings: dict[str, Any] = {}
    env_config = os.environ.get("PULUMI_CONFIG")
    if env_config:
        for key, value in json.loads(env_config).items():
            try:
                settings[key] = json.loads(value) if value[:1] in "{[" else value
            except json.JSONDecodeError:
                settings[key] = value
    if not any(k.startswith(f"{PROJECT}:") for k in settings):
        path = ROOT / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            return None
        import yaml

        settings = dict(yaml.safe_load(path.read_text())["config"])
    return expectations_from_settings(settings, stack)
