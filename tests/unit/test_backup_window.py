"""``--if-missing`` (the GCP standby's mode): the schedule window of each class, computed from
an injected ``now``, and what counts as covering it. Pure functions and in-memory stores; the
end-to-end run against the emulators is in tests/integration/backup/test_if_missing.py."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from vo2dr import layout
from vo2dr.backup import backup_if_missing, find_covering_backup, schedule_window
from vo2dr.exceptions import StoreError
from vo2dr.settings import Settings
from vo2dr.stores.null import NullStore
from vo2dr.strategy import DataClass

CRITICAL = DataClass("critical", ("users",), 15, 60)
IMPORTANT = DataClass("important", ("app_config",), 60, 240)
EVERY_2H = DataClass("important", ("app_config",), 120, 240)
EVERY_5H = DataClass("important", ("app_config",), 300, 240)
FULL = DataClass("full", (), 1440, 240, "02:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("dc", "now", "start", "end"), [
    # RPO 15: windows start at :00, :15, :30, :45.
    (CRITICAL, "2026-03-04T10:00:00", "2026-03-04T10:00", "2026-03-04T10:15"),
    (CRITICAL, "2026-03-04T10:07:31", "2026-03-04T10:00", "2026-03-04T10:15"),
    (CRITICAL, "2026-03-04T10:14:59.999999", "2026-03-04T10:00", "2026-03-04T10:15"),
    (CRITICAL, "2026-03-04T10:15:00", "2026-03-04T10:15", "2026-03-04T10:30"),
    (CRITICAL, "2026-03-04T10:52:00", "2026-03-04T10:45", "2026-03-04T11:00"),
    (CRITICAL, "2026-03-04T23:59:59", "2026-03-04T23:45", "2026-03-05T00:00"),
    # Hourly and whole hours, counted from midnight UTC like `0 */2 * * *`.
    (IMPORTANT, "2026-03-04T10:59:00", "2026-03-04T10:00", "2026-03-04T11:00"),
    (EVERY_2H, "2026-03-04T11:30:00", "2026-03-04T10:00", "2026-03-04T12:00"),
    # `0 */5 * * *` fires at 00, 05, 10, 15, 20 and again at 00: the last window is cut.
    (EVERY_5H, "2026-03-04T21:00:00", "2026-03-04T20:00", "2026-03-05T00:00"),
    (EVERY_5H, "2026-03-05T00:10:00", "2026-03-05T00:00", "2026-03-05T05:00"),
    # Daily at 02:00: the day since 02:00, across midnight.
    (FULL, "2026-03-04T02:00:00", "2026-03-04T02:00", "2026-03-05T02:00"),
    (FULL, "2026-03-04T23:00:00", "2026-03-04T02:00", "2026-03-05T02:00"),
    (FULL, "2026-03-05T01:59:59", "2026-03-04T02:00", "2026-03-05T02:00"),
    (FULL, "2026-01-01T00:30:00", "2025-12-31T02:00", "2026-01-01T02:00"),
])
def test_schedule_window_of_each_class(dc, now, start, end):
    assert schedule_window(dc, at(now)) == (at(start), at(end))


def test_window_is_computed_in_utc_whatever_the_zone_of_now():
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 4, 11, 7, tzinfo=ZoneInfo("Europe/Oslo"))  # 10:07 UTC
    assert schedule_window(CRITICAL, local) == (at("2026-03-04T10:00"), at("2026-03-04T10:15"))


def test_every_instant_falls_in_exactly_one_window_and_windows_tile_the_day():
    minutes = [at("2026-03-04T00:00") + timedelta(minutes=i) for i in range(2 * 24 * 60)]
    for dc in (CRITICAL, IMPORTANT, EVERY_2H, EVERY_5H, FULL):
        windows = {t: schedule_window(dc, t) for t in minutes}
        assert all(start <= t < end for t, (start, end) in windows.items()), dc.name
        distinct = sorted(set(windows.values()))
        assert all(end - start <= timedelta(minutes=dc.rpo_minutes) for start, end in distinct)
        # No gap and no overlap between consecutive windows.
        assert all(a[1] == b[0] for a, b in itertools.pairwise(distinct)), dc.name


# ---- what covers a window ----------------------------------------------------------------

def put(store: NullStore, data_class: str, when: str, backup_id: str, *,
        manifest: bool = True, tier: str = "daily") -> layout.BackupRef:
    ref = layout.BackupRef("staging", tier, data_class, at(when), backup_id)
    store.put_bytes(ref.body_key, b"body")
    if manifest:
        store.put_bytes(ref.manifest_key, b"{}")
    return ref


class DownStore(NullStore):
    def list(self, prefix):
        raise StoreError("s3: could not connect", store=self.name)


def test_only_a_complete_backup_of_the_class_inside_the_window_covers_it():
    store = NullStore("gcs")
    window = (at("2026-03-04T10:00"), at("2026-03-04T10:15"))
    put(store, "critical", "2026-03-04T09:59:59", "aaaaaaaaaaaa")  # previous window
    put(store, "critical", "2026-03-04T10:15:00", "bbbbbbbbbbbb")  # next window
    put(store, "important", "2026-03-04T10:03:00", "cccccccccccc")  # another class
    put(store, "critical", "2026-03-04T10:05:00", "dddddddddddd", manifest=False)  # no manifest
    assert find_covering_backup({"gcs": store}, "staging", "critical", *window) is None
    ref = put(store, "critical", "2026-03-04T10:00:03", "eeeeeeeeeeee", tier="yearly")
    found = find_covering_backup({"gcs": store}, "staging", "critical", *window)
    assert (found.backup_id, found.store, found.manifest_key) == (
        "eeeeeeeeeeee", "gcs", ref.manifest_key)


def test_an_unreachable_store_is_skipped_and_any_other_store_may_cover():
    gcs = NullStore("gcs")
    put(gcs, "full", "2026-03-05T02:00:04", "ffffffffffff")  # after midnight, same window
    stores = {"s3": DownStore("s3"), "gcs": gcs}
    found = find_covering_backup(stores, "staging", "full", at("2026-03-04T02:00"),
                                 at("2026-03-05T02:00"))
    assert found is None  # 02:00:04 on the 5th is the next day's window
    found = find_covering_backup(stores, "staging", "full", at("2026-03-05T02:00"),
                                 at("2026-03-06T02:00"))
    assert found.backup_id == "ffffffffffff"
    assert find_covering_backup({"s3": DownStore("s3")}, "staging", "full",
                                at("2026-03-05T02:00"), at("2026-03-06T02:00")) is None


def test_backup_if_missing_skips_without_dumping_when_covered():
    store = NullStore("gcs")
    put(store, "critical", "2026-03-04T10:00:02", "abcdefabcdef")
    strategy = json.dumps({"dataClasses": {
        "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
        "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
    }})
    # An unreachable database: a dump would fail, so reaching the summary proves none ran.
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:9/none",
                        environment="staging", gcs_bucket="b", recovery_public_key="unused",
                        signing_key="unused", strategy_json=strategy)
    summary = backup_if_missing(settings, "critical", at("2026-03-04T10:12:00"),
                                stores={"gcs": store})
    assert summary["ok"] is True and summary["skipped"] is True
    assert summary["status"] == "skipped: covered by abcdefabcdef"
    assert summary["covered_by"]["store"] == "gcs"
    assert summary["window"] == {"start": "2026-03-04T10:00:00+00:00",
                                 "end": "2026-03-04T10:15:00+00:00"}
