"""The intraday tier: its settings and validation, its lifecycle, and 45 simulated days of the
production schedules counted against what the retention settings imply."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from vo2dr import layout, strategy
from vo2dr.exceptions import ConfigError

from infra import config, config_base, config_storage
from tests.unit.test_config import DELETE, STACKS, mutate, parse, stack_file

BAD = [
    (0, ("vo2max-dr:retention.intradayHours", "positive whole number of hours")),
    ("72", ("vo2max-dr:retention.intradayHours", "positive whole number of hours")),
    (True, ("vo2max-dr:retention.intradayHours", "positive whole number of hours")),
    (DELETE, ("vo2max-dr:retention.intradayHours", "positive whole number of hours")),
    # 30 daily days are 720 h: the intraday window must be shorter.
    (720, ("vo2max-dr:retention.intradayHours", "not shorter than retention.dailyDays")),
    (1000, ("vo2max-dr:retention.intradayHours", "not shorter than retention.dailyDays")),
    # Lifecycle rules and the Azure intraday lock count days: 36 h would lock past expiry.
    (36, ("vo2max-dr:retention.intradayHours", "lock would outlive the expiry",
          "multiple of 24")),
]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("value", "expected"), BAD, ids=[repr(b[0]) for b in BAD])
def test_bad_intraday_window_is_refused_naming_the_key(stack, value, expected) -> None:
    raw, providers = stack_file(stack)
    with pytest.raises(ConfigError) as err:
        parse(stack, mutate(raw, "retention.intradayHours", value), providers)
    for text in expected:
        assert text in str(err.value), f"{text!r} not in {err.value}"


def test_window_must_hold_two_of_the_tightest_rpo() -> None:
    """With every sub-daily class at 12 h, a 1-day window holds two backups: the least the
    tier may keep. The check is in the shared validator, so the job refuses it too."""
    raw, providers = stack_file("production")
    for cls in ("critical", "important"):
        raw = mutate(raw, f"dataClasses.{cls}.rpoMinutes", 720 + 60)  # 13 h
    raw = mutate(raw, "monitoring.statusEveryMinutes", 60)
    with pytest.raises(ConfigError) as err:
        parse("production", mutate(raw, "retention.intradayHours", 24), providers)
    assert "vo2max-dr:retention.intradayHours is 24, shorter than twice the tightest RPO" \
        in str(err.value)
    assert "at least 26 hours" in str(err.value)
    with pytest.raises(ConfigError, match="twice the tightest RPO"):
        strategy.parse_strategy(raw["dataClasses"], {"intradayHours": 24},
                                {"mode": "compliance"})
    # 48 h holds the two.
    assert parse("production", mutate(raw, "retention.intradayHours", 48),
                 providers).retention.intraday_days == 2


def test_the_job_reads_the_window_and_lock_mode_from_the_program_json() -> None:
    raw, _ = stack_file("production")
    cfg = parse("production", raw)
    strat = strategy.load_strategy({"VO2DR_STRATEGY": cfg.strategy.to_json()})
    assert strat.intraday == strategy.IntradayTier(raw["retention"]["intradayHours"],
                                                   "compliance")
    taken = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
    assert strat.intraday.lock_until(taken) == taken + timedelta(
        hours=raw["retention"]["intradayHours"])
    with pytest.raises(ConfigError, match=r"vo2max-dr:immutability\.mode"):
        strategy.parse_strategy(raw["dataClasses"], raw["retention"], {"mode": "forever"})


@pytest.mark.parametrize("stack", STACKS)
def test_intraday_prefix_expires_at_the_window_and_never_changes_class(stack) -> None:
    raw, providers = stack_file(stack)
    cfg = parse(stack, raw, providers)
    intraday = next(t for t in cfg.lifecycle if t.tier == "intraday")
    assert intraday.prefix == f"database/{stack}/intraday/"
    assert intraday.expire_days * 24 == raw["retention"]["intradayHours"]
    assert intraday.transitions == {"aws": (), "gcp": (), "azure": ()}
    # Even an intraday window long enough for the minimum storage durations never moves:
    # the rule is by tier, not by arithmetic (a daily tier as long does move).
    long = config_storage.Retention(200, 400, 500, 3000, intraday_days=200)
    plan = config_storage.lifecycle_plan(stack, long, config_storage.Tiering(30, 60, 150))
    assert next(t for t in plan if t.tier == "intraday").transitions["aws"] == ()
    assert next(t for t in plan if t.tier == "daily").transitions["aws"] != ()


def test_a_lock_outliving_its_expiry_is_refused() -> None:
    raw, providers = stack_file("staging")
    cfg = parse("staging", raw, providers)
    longer = strategy.IntradayTier(cfg.strategy.intraday.hours + 1, "governance")
    with pytest.raises(ConfigError, match=r"vo2max-dr:retention\.intradayHours"):
        config_storage.check_locks_end_by_expiry(cfg.lifecycle, cfg.immutability, longer)
    config_storage.check_locks_end_by_expiry(cfg.lifecycle, cfg.immutability, cfg.strategy.intraday)


# -- 45 days of the production schedules --------------------------------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday: the first day is yearly
DAYS = 45


def schedule(dc: strategy.DataClass, start: datetime, days: int) -> list[datetime]:
    """Every run of the class's cron (clock-aligned every RPO, or daily at dailyAtUtc)."""
    if dc.daily_at_utc is not None:
        hour, minute = (int(x) for x in dc.daily_at_utc.split(":"))
        return [start + timedelta(days=d, hours=hour, minutes=minute) for d in range(days)]
    step = timedelta(minutes=dc.rpo_minutes)
    return [start + i * step for i in range(days * 24 * 60 // dc.rpo_minutes)]


def simulate(cfg: config.StackConfig, end: datetime) -> dict[str, Counter]:
    """Run choose_tier over every scheduled backup of every class, as the job does (each sees
    the complete backups before it), and count those still live at ``end``: younger than
    their tier's retention."""
    live: dict[str, Counter] = {}
    for name, dc in cfg.data_classes.items():
        done: list[datetime] = []
        tiers = []
        for taken in schedule(dc, START, DAYS):
            tiers.append((taken, layout.choose_tier(taken, done)))
            done.append(taken)
        live[name] = Counter(tier for taken, tier in tiers
                             if end - taken < timedelta(days=cfg.retention.days(tier)))
    return live


def gfs_firsts(first_day: date, days: int) -> int:
    """First-of-day backups in ``days`` days from ``first_day`` that are weekly, monthly or
    yearly (the first day of the run, any Monday, the 1st of a month): by the calendar, not
    by choose_tier."""
    out = 0
    for i in range(days):
        day = first_day + timedelta(days=i)
        out += i == 0 or day.weekday() == 0 or day.day == 1
    return out


def test_45_days_of_production_keep_what_the_retention_implies() -> None:
    raw, providers = stack_file("production")
    cfg = parse("production", raw, providers)
    end = START + timedelta(days=DAYS) - timedelta(seconds=1)  # the last second of day 45
    live = simulate(cfg, end)

    r = cfg.retention
    intraday_days = raw["retention"]["intradayHours"] // 24
    daily_days = raw["retention"]["dailyDays"]
    assert r.intraday_days == intraday_days and r.daily_days == daily_days
    # Weekly, monthly and yearly outlive 45 days: every one taken is still there. Of the
    # first-of-day backups older than the daily retention, only those survive.
    old_keepers = gfs_firsts(START.date(), DAYS - daily_days)
    for name, dc in cfg.data_classes.items():
        per_day = 1 if dc.daily_at_utc else 24 * 60 // dc.rpo_minutes
        counts = live[name]
        assert counts["intraday"] == (per_day - 1) * intraday_days, name
        # One first-of-day backup per day of the daily retention, whatever its tier...
        assert sum(counts[t] for t in config_base.GFS_TIERS) == daily_days + old_keepers, name
        # ... of which the weekly/monthly/yearly ones follow the calendar of all 45 days.
        assert counts["weekly"] + counts["monthly"] + counts["yearly"] == \
            gfs_firsts(START.date(), DAYS), name

    critical = live["critical"]
    assert critical["intraday"] == 95 * intraday_days  # 96 a day, the first is daily
    total = sum(sum(c.values()) for c in live.values())
    expected = sum((p - 1) * intraday_days for p in (96, 24, 1)) + 3 * (daily_days + old_keepers)
    assert total == expected
    # Before the intraday tier every one of critical's later backups was daily, kept 30 days.
    before = sum(1 for _ in schedule(cfg.data_classes["critical"],
                                     end - timedelta(days=daily_days) + timedelta(seconds=1),
                                     daily_days))
    assert before == 96 * daily_days
    assert sum(critical.values()) < before / 5


def test_steady_state_counts_before_and_after() -> None:
    raw, providers = stack_file("production")
    cfg = parse("production", raw, providers)
    after = config_storage.steady_state_backups(cfg.strategy, cfg.retention)
    before = config_storage.steady_state_backups(cfg.strategy, cfg.retention, intraday=False)
    days = raw["retention"]["intradayHours"] // 24
    assert after["critical"] == {"intraday": 95 * days, "daily": 30, "weekly": 12,
                                 "monthly": 12, "yearly": 7}
    assert after["important"]["intraday"] == 23 * days
    assert "intraday" not in before["critical"]
    assert before["critical"]["daily"] == 96 * 30
    assert after["full"]["intraday"] == 0 and before["full"] == {
        k: v for k, v in after["full"].items() if k != "intraday"}


def test_readme_states_the_production_counts() -> None:
    """The README's table of backups kept is the production stack's, not a hand estimate."""
    from tests.unit.test_config import ROOT

    raw, providers = stack_file("production")
    cfg = parse("production", raw, providers)
    after = config_storage.steady_state_backups(cfg.strategy, cfg.retention)
    before = config_storage.steady_state_backups(cfg.strategy, cfg.retention, intraday=False)
    lines = (ROOT / "README.md").read_text().splitlines()
    for name, dc in cfg.data_classes.items():
        row = next(line for line in lines if line.startswith(f"| {name} ("))
        cells = [c.strip().replace(",", "") for c in row.strip("|").split("|")]
        assert cells[1] == str(config_storage.backups_per_day(dc)), name
        assert cells[2:7] == [str(after[name].get(t, 0)) for t in config_base.TIERS], name
        assert cells[7:9] == [str(sum(after[name].values())), str(sum(before[name].values()))]


# -- every consumer sees the intraday tier ---------------------------------------------------

def test_catalog_status_and_if_missing_follow_intraday_backups() -> None:
    """list and restore's ``latest`` (the catalog), status (freshness) and --if-missing (the
    window's covering backup) all see a backup filed under intraday/."""
    from vo2dr.backup import find_covering_backup
    from vo2dr.catalog import build_catalog
    from vo2dr.layout import BackupRef
    from vo2dr.status import compute_status

    from tests.unit.recovery_memstore import TRUST, MemoryStore, add_backup

    t0 = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
    stores = [MemoryStore("s3"), MemoryStore("gcs"), MemoryStore("azure")]
    first = BackupRef("staging", "daily", "critical", t0, "aaaaaaaaaaa1")
    later = BackupRef("staging", "intraday", "critical", t0 + timedelta(hours=10),
                      "bbbbbbbbbbb2")
    full = BackupRef("staging", "daily", "full", t0 + timedelta(hours=2), "ccccccccccc3")
    for ref in (first, later, full):
        add_backup(stores, ref)
    by_name = {s.name: s for s in stores}

    cat = build_catalog(by_name, "staging")
    assert [e.ref.tier for e in cat.for_class("critical")] == ["daily", "intraday"]
    assert cat.latest("critical").backup_id == "bbbbbbbbbbb2"
    assert cat.to_json("critical")["backups"][1]["tier"] == "intraday"

    strat = strategy.parse_strategy({
        "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
        "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
    })
    report = compute_status(strat, by_name, "staging", later.timestamp + timedelta(minutes=5),
                            trust=TRUST)
    assert report.ok, report.messages
    assert report.classes["critical"].stores["azure"].age_seconds == 300

    covering = find_covering_backup(by_name, "staging", "critical", later.timestamp,
                                    later.timestamp + timedelta(minutes=15))
    assert covering is not None and covering.manifest_key == later.manifest_key
