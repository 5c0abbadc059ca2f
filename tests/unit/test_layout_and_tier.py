"""GFS tier choice and the write-once key layout, with injected dates (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vo2dr import layout
from vo2dr.exceptions import ConfigError


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("now", "existing", "tier"), [
    (at(2026, 3, 4, 10), [], "yearly"),
    (at(2026, 1, 1, 0, 5), [at(2025, 12, 31, 23, 59)], "yearly"),  # first of a new year
    (at(2026, 2, 1, 2), [at(2026, 1, 31, 2)], "monthly"),
    (at(2026, 3, 4, 11), [at(2026, 3, 4, 10)], "intraday"),  # same UTC day
    (at(2026, 3, 5, 0, 0), [at(2026, 3, 4, 23, 45)], "daily"),  # first of a new UTC day
    # The first of a day whose earlier backups all failed (none complete) is still daily.
    (at(2026, 3, 4, 23, 45), [at(2026, 3, 3, 0, 0)], "daily"),
    (at(2026, 1, 1, 0, 15), [at(2026, 1, 1, 0, 0)], "intraday"),  # not a second yearly
    (at(2026, 3, 9, 2), [at(2026, 3, 8, 2)], "weekly"),  # Monday after a Sunday
    (at(2026, 3, 8, 2), [at(2026, 3, 2, 2)], "daily"),  # same ISO week (Mon..Sun)
    # ISO week 1 of 2026 starts on Mon 2025-12-29: 2026-01-02 is in the same ISO week as
    # 2025-12-30, but it is the first backup of 2026, so it is yearly anyway.
    (at(2026, 1, 2, 2), [at(2025, 12, 30, 2)], "yearly"),
    (at(2026, 1, 3, 2), [at(2026, 1, 2, 2), at(2025, 12, 30, 2)], "daily"),
    (at(2026, 1, 3, 3), [at(2026, 1, 3, 2), at(2025, 12, 30, 2)], "intraday"),
    # Later backups (clock skew, backfills) never count towards an earlier one's tier.
    (at(2026, 5, 1, 2), [at(2026, 5, 1, 3)], "yearly"),
])
def test_choose_tier(now, existing, tier):
    assert layout.choose_tier(now, existing) == tier


def test_a_day_of_hourly_backups_has_exactly_one_non_intraday():
    start = at(2026, 6, 15, 0)  # a Monday in the middle of the year
    prior = [at(2026, 1, 5), at(2026, 6, 1)]  # this year and this month already have one
    tiers, done = [], list(prior)
    for hour in range(24):
        now = start + timedelta(hours=hour)
        tiers.append(layout.choose_tier(now, done))
        done.append(now)
    assert tiers == ["weekly"] + ["intraday"] * 23


def test_keys_round_trip_and_never_collide():
    when = at(2026, 3, 4, 10, 0, 7)
    ref = layout.BackupRef("staging", "monthly", "critical", when, "0123456789ab")
    assert ref.body_key == ("database/staging/monthly/critical/"
                            "20260304T100007Z-0123456789ab.dump.enc")
    assert ref.manifest_key.endswith("20260304T100007Z-0123456789ab.manifest.json")
    assert layout.parse_key(ref.body_key) == (ref, "body")
    assert layout.parse_key(ref.manifest_key) == (ref, "manifest")
    assert layout.parse_key("database/staging/latest.dump.enc") is None
    assert len({layout.new_backup_id() for _ in range(1000)}) == 1000


def test_environment_must_be_a_safe_prefix():
    with pytest.raises(ConfigError, match="VO2DR_ENVIRONMENT"):
        layout.environment_prefix("../prod")
    assert layout.class_prefixes("staging", "full", 2026) == [
        f"database/staging/{tier}/full/2026"
        for tier in ("intraday", "daily", "weekly", "monthly", "yearly")]


def test_intraday_keys_parse():
    ref = layout.BackupRef("production", "intraday", "critical", at(2026, 3, 4, 10, 15),
                           "0123456789ab")
    assert ref.body_key.startswith("database/production/intraday/critical/20260304T101500Z-")
    assert layout.parse_key(ref.manifest_key) == (ref, "manifest")
