"""Storage and cost: bytes per cloud, GFS tier and storage class, now and in the steady state
the lifecycle rules lead to, priced from the one price table (``prices.yaml``, with its source
and date; overrides from the stack file), and the same for the original strategy's layout.

The lifecycle is the program's rule (``infra/config.py lifecycle_plan``), restated from the
price table's minimum durations so this package needs nothing from ``infra/``: an object moves
to a colder class at a tiering step only when it then stays there at least the class's minimum
storage duration before its tier expires it; intraday objects never move.

**Steady state**: once every tier is full, a tier keeps ``n`` objects (one per schedule slot of
its retention) whose ages are spread evenly over the ``E`` days it keeps them; a class held
from day ``a`` to day ``b`` of that life holds on average ``n * size * (b - a) / E`` bytes.

**The original strategy's layout** (``/work/shared/original-strategy.md``): the same schedules
and GFS retention, but plain SQL dumps (the uncompressed dump's size: no compression), no
intraday tier (every backup of a day kept as long as the daily tier), S3 moving every object at
its lifecycle's days regardless of the tier's retention, and no tiering at all in GCS and
Azure (hot storage for the whole retention).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from vo2dr.exceptions import ConfigError
from vo2dr.layout import INTRADAY, parse_key
from vo2dr.strategy import DataClass, ReportSettings

from .config import STORE_CLOUD, ReportConfig

PRICE_FILE = Path(__file__).with_name("prices.yaml")
GIB = 2 ** 30
REPORTS_TIER = "reports"
MINUTES_PER_DAY = 24 * 60
DAYS_PER_WEEK, DAYS_PER_YEAR, MONTHS_PER_YEAR = 7, 365, 12


@dataclass(frozen=True)
class StorageClass:
    name: str
    usd_per_gb_month: float
    min_days: int


@dataclass(frozen=True)
class PriceTable:
    date: str
    sources: Mapping[str, str]
    clouds: Mapping[str, tuple[StorageClass, ...]]  # hot first, then the three tiering steps
    overridden: tuple[str, ...] = ()  # "aws.STANDARD", ...

    def price(self, cloud: str, cls: str) -> float:
        for c in self.clouds[cloud]:
            if c.name == cls:
                return c.usd_per_gb_month
        raise KeyError(f"{cloud} {cls}")

    def to_json(self) -> dict[str, Any]:
        return {"date": self.date, "sources": dict(self.sources),
                "file": "lambdas/vo2dr/report/prices.yaml", "overridden": list(self.overridden),
                "clouds": {k: [{"class": c.name, "usd_per_gb_month": c.usd_per_gb_month,
                                "min_days": c.min_days} for c in v]
                           for k, v in self.clouds.items()}}


def load_price_table(settings: ReportSettings | None = None,
                     path: Path = PRICE_FILE) -> PriceTable:
    """The price table, with the stack file's overrides applied (an override must name a
    class the table has)."""
    try:
        raw = yaml.safe_load(path.read_text())
        clouds = {cloud: tuple(StorageClass(str(c["class"]), float(c["usd_per_gb_month"]),
                                            int(c["min_days"])) for c in classes)
                  for cloud, classes in raw["clouds"].items()}
        date, sources = str(raw["date"]), {str(k): str(v) for k, v in raw["sources"].items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot read the price table {path}: {exc}") from exc
    if not date or set(sources) != set(clouds) or any(len(v) != 4 for v in clouds.values()):
        raise ConfigError(f"the price table {path} needs a date, a source per cloud and four "
                          "classes per cloud (hot, infrequent, archive, deep archive)")
    overridden = []
    for cloud, prices in (settings.price_overrides if settings else {}).items():
        known = {c.name for c in clouds[cloud]}
        for cls, usd in prices.items():
            if cls not in known:
                raise ConfigError(f"vo2max-dr:report.prices.{cloud}.{cls}: {cloud} has no "
                                  f"storage class {cls} in the price table: use one of "
                                  f"{', '.join(sorted(known))}")
            clouds[cloud] = tuple(StorageClass(c.name, usd, c.min_days) if c.name == cls
                                  else c for c in clouds[cloud])
            overridden.append(f"{cloud}.{cls}")
    return PriceTable(date, sources, clouds, tuple(overridden))


# -- the lifecycle ------------------------------------------------------------------------------

def transitions(table: PriceTable, cloud: str, tier: str, expire_days: int,
                steps: tuple[int, int, int], *, filtered: bool = True) -> list[tuple[int, str]]:
    """``[(day, class), ...]`` an object of ``tier`` goes through in ``cloud`` (``filtered``:
    only where it then serves the class's minimum before expiry, as the program's rules)."""
    if tier in (INTRADAY, REPORTS_TIER):
        return []
    out = []
    for day, cls in zip(steps, table.clouds[cloud][1:], strict=True):
        if day < expire_days and (not filtered or expire_days - day >= cls.min_days):
            out.append((day, cls.name))
    return out


def class_at(table: PriceTable, cloud: str, moves: list[tuple[int, str]], age_days: float) -> str:
    cls = table.clouds[cloud][0].name
    for day, name in moves:
        if age_days >= day:
            cls = name
    return cls


@dataclass
class Holding:
    cloud: str
    tier: str
    storage_class: str
    bytes: float
    usd_per_month: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "tier": self.tier, "storage_class": self.storage_class,
                "bytes": round(self.bytes), "usd_per_month": round(self.usd_per_month, 4)}


def _priced(rows: dict[tuple[str, str, str], float], table: PriceTable) -> list[Holding]:
    return [Holding(c, t, k, b, b / GIB * table.price(c, k))
            for (c, t, k), b in sorted(rows.items())]


@dataclass(frozen=True)
class StoredObject:
    store: str
    key: str
    size: int
    created: datetime


def holdings_now(objects: Iterable[StoredObject], cfg: ReportConfig, table: PriceTable,
                 now: datetime) -> list[Holding]:
    """What the stores hold now, by cloud, tier and the class the lifecycle has moved each
    object to at its age (backups: from their key's time; records: the hot class)."""
    rows: dict[tuple[str, str, str], float] = {}
    for o in objects:
        cloud = STORE_CLOUD.get(o.store)
        if cloud is None:
            continue
        parsed = parse_key(o.key)
        if parsed is not None:
            tier, created = parsed[0].tier, parsed[0].timestamp
        elif o.key.startswith("reports/"):
            tier, created = REPORTS_TIER, o.created
        else:
            continue
        moves = transitions(table, cloud, tier, cfg.retention_days.get(tier, 0),
                            cfg.tiering_days)
        cls = class_at(table, cloud, moves, (now - created).total_seconds() / 86400)
        key = (cloud, tier, cls)
        rows[key] = rows.get(key, 0.0) + o.size
    return _priced(rows, table)


def backups_per_day(dc: DataClass) -> int:
    return 1 if dc.daily_at_utc is not None else MINUTES_PER_DAY // dc.rpo_minutes


def kept_per_tier(dc: DataClass, retention_days: Mapping[str, int], *,
                  intraday: bool = True) -> dict[str, int]:
    """How many backups of ``dc`` each tier holds once full (the program's
    ``steady_state_backups``): without the intraday tier every backup of a day is daily."""
    per_day = backups_per_day(dc)
    has_intraday = intraday and retention_days.get(INTRADAY, 0) > 0
    out = {}
    if has_intraday:
        out[INTRADAY] = (per_day - 1) * retention_days[INTRADAY]
    out["daily"] = retention_days["daily"] * (1 if has_intraday else per_day)
    out["weekly"] = retention_days["weekly"] // DAYS_PER_WEEK
    out["monthly"] = round(retention_days["monthly"] * MONTHS_PER_YEAR / DAYS_PER_YEAR)
    out["yearly"] = retention_days["yearly"] // DAYS_PER_YEAR
    return out


def steady_state(sizes: Mapping[str, float], cfg: ReportConfig, table: PriceTable, *,
                 original: bool = False) -> list[Holding]:
    """Average bytes per cloud, tier and class once every tier is full, for backups of
    ``sizes`` bytes per data class (see the module's docstring for the original layout)."""
    rows: dict[tuple[str, str, str], float] = {}
    retention = dict(cfg.retention_days)
    for name, size in sizes.items():
        dc = cfg.strategy.data_classes[name]
        for tier, n in kept_per_tier(dc, retention, intraday=not original).items():
            expire = retention[tier]
            if n <= 0 or expire <= 0:
                continue
            for cloud in cfg.clouds:
                if original and cloud != "aws":
                    moves: list[tuple[int, str]] = []
                else:
                    moves = transitions(table, cloud, tier, expire, cfg.tiering_days,
                                        filtered=not original)
                bounds = [0, *(d for d, _ in moves), expire]
                classes = [table.clouds[cloud][0].name, *(c for _, c in moves)]
                for cls, a, b in zip(classes, bounds, bounds[1:], strict=False):
                    key = (cloud, tier, cls)
                    rows[key] = rows.get(key, 0.0) + n * size * (b - a) / expire
    return _priced(rows, table)


def totals(holdings: Iterable[Holding]) -> dict[str, Any]:
    by_cloud: dict[str, dict[str, float]] = {}
    for h in holdings:
        c = by_cloud.setdefault(h.cloud, {"bytes": 0.0, "usd_per_month": 0.0})
        c["bytes"] += h.bytes
        c["usd_per_month"] += h.usd_per_month
    return {"by_cloud": {k: {"bytes": round(v["bytes"]),
                             "usd_per_month": round(v["usd_per_month"], 4)}
                         for k, v in by_cloud.items()},
            "bytes": round(sum(v["bytes"] for v in by_cloud.values())),
            "usd_per_month": round(sum(v["usd_per_month"] for v in by_cloud.values()), 4)}
