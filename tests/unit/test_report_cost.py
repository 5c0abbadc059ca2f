"""Storage and cost: the price table (one data file, with its source and date; overrides from
the stack file), the lifecycle restated from it, and the steady state, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from vo2dr.exceptions import ConfigError
from vo2dr.report import cost
from vo2dr.report.config import report_config
from vo2dr.strategy import parse_report_settings

from infra import config_storage
from tests import report_history as H

GIB = 2 ** 30


@pytest.fixture(scope="module")
def cfg():
    return report_config(H.stack(), "staging")


def test_price_file_names_its_source_and_date_and_matches_the_programs_classes():
    raw = yaml.safe_load(cost.PRICE_FILE.read_text())
    assert raw["date"] and raw["currency"] == "USD"
    assert set(raw["sources"]) == {"aws", "gcp", "azure"}
    assert all(v.startswith("https://") for v in raw["sources"].values())
    table = cost.load_price_table()
    # the classes the three tiering steps move to, and their minimum durations, are the ones
    # the program's lifecycle rules use
    for cloud, classes in config_storage.STORAGE_CLASSES.items():
        assert tuple((c.name, c.min_days) for c in table.clouds[cloud][1:]) == classes
    assert table.to_json()["date"] == raw["date"]


def test_no_price_is_written_in_code():
    import inspect

    src = inspect.getsource(cost)
    for price in ("0.023", "0.0125", "0.026", "0.018", "0.00099"):
        assert price not in src


def test_overrides_from_the_stack_file_are_validated_and_applied():
    s = parse_report_settings({"successRateTargetPercent": 99.9, "rtoVariancePercent": 10,
                               "prices": {"aws": {"STANDARD": 0.02}}})
    table = cost.load_price_table(s)
    assert table.price("aws", "STANDARD") == 0.02 and table.overridden == ("aws.STANDARD",)
    with pytest.raises(ConfigError, match=r"aws has no storage class NEARLINE"):
        cost.load_price_table(parse_report_settings({
            "successRateTargetPercent": 99.9, "rtoVariancePercent": 10,
            "prices": {"aws": {"NEARLINE": 0.01}}}))
    for bad, match in (({"rtoVariancePercent": 10}, "successRateTargetPercent"),
                       ({"successRateTargetPercent": 120, "rtoVariancePercent": 10}, "percent"),
                       ({"successRateTargetPercent": 99, "rtoVariancePercent": 10,
                         "prices": {"oracle": {"X": 1}}}, "unknown cloud"),
                       ({"successRateTargetPercent": 99, "rtoVariancePercent": 10,
                         "prices": {"aws": {"STANDARD": -1}}}, "non-negative"),
                       ({"successRateTargetPercent": 99, "rtoVariancePercent": 10,
                         "target": 1}, "not a setting")):
        with pytest.raises(ConfigError, match=match):
            parse_report_settings(bad)


def _by_class(rows, cloud):
    out: dict[str, float] = {}
    for r in rows:
        if r.cloud == cloud:
            out[r.storage_class] = out.get(r.storage_class, 0.0) + r.bytes / GIB
    return out


def test_steady_state_of_one_gib_full_backup_by_hand(cfg):
    table = cost.load_price_table(cfg.settings)
    rows = cost.steady_state({"full": GIB}, cfg, table)
    aws = _by_class(rows, "aws")
    # staging: daily 30 d (30 kept, all STANDARD: day 30 is not before expiry), weekly 84 d
    # (12: IA from day 30), monthly 365 d (12: IA 30, GLACIER 90; deep at 365 is not before
    # expiry), yearly 2555 d (7: IA 30, GLACIER 90, DEEP 365)
    assert aws["STANDARD"] == pytest.approx(30 + 12 * 30 / 84 + 12 * 30 / 365 + 7 * 30 / 2555)
    assert aws["STANDARD_IA"] == pytest.approx(12 * 54 / 84 + 12 * 60 / 365 + 7 * 60 / 2555)
    assert aws["GLACIER"] == pytest.approx(12 * 275 / 365 + 7 * 275 / 2555)
    assert aws["DEEP_ARCHIVE"] == pytest.approx(7 * 2190 / 2555)
    usd = sum(r.usd_per_month for r in rows if r.cloud == "aws")
    assert usd == pytest.approx(aws["STANDARD"] * 0.023 + aws["STANDARD_IA"] * 0.0125
                                + aws["GLACIER"] * 0.0036 + aws["DEEP_ARCHIVE"] * 0.00099)
    # GCS ARCHIVE needs 365 days there: only the yearly tier (2190 >= 365) gets it
    gcp = _by_class(rows, "gcp")
    assert gcp["ARCHIVE"] == pytest.approx(7 * 2190 / 2555)


def test_original_layout_has_no_tiering_in_gcs_or_azure_and_no_intraday_tier(cfg):
    table = cost.load_price_table(cfg.settings)
    rows = cost.steady_state({"critical": GIB}, cfg, table, original=True)
    assert {r.storage_class for r in rows if r.cloud == "gcp"} == {"STANDARD"}
    assert {r.storage_class for r in rows if r.cloud == "azure"} == {"Hot"}
    assert "intraday" not in {r.tier for r in rows}
    daily = sum(r.bytes for r in rows if r.cloud == "gcp" and r.tier == "daily") / GIB
    assert daily == pytest.approx(96 * 30)  # every quarter-hour backup kept 30 days
    ours = cost.steady_state({"critical": GIB}, cfg, table)
    ours_daily = sum(r.bytes for r in ours if r.cloud == "gcp" and r.tier in
                     ("daily", "intraday")) / GIB
    assert ours_daily == pytest.approx(30 + 95 * 2)  # one daily + 95 intraday for 2 days


def test_holdings_now_by_tier_class_and_age(cfg):
    table = cost.load_price_table(cfg.settings)
    now = datetime(2026, 8, 30, tzinfo=UTC)

    def obj(store, tier, age_days, size=GIB):
        when = now - timedelta(days=age_days)
        key = f"database/staging/{tier}/full/{when:%Y%m%dT%H%M%SZ}-0123456789ab.dump.enc"
        return cost.StoredObject(store, key, size, when)

    rows = cost.holdings_now([obj("s3", "weekly", 40), obj("s3", "weekly", 10),
                              obj("gcs", "yearly", 400), obj("azure", "intraday", 1),
                              cost.StoredObject("s3", "reports/staging/drills/x.json", 1000,
                                                now)], cfg, table, now)
    got = {(r.cloud, r.tier, r.storage_class): r.bytes for r in rows}
    assert got == {("aws", "weekly", "STANDARD_IA"): GIB, ("aws", "weekly", "STANDARD"): GIB,
                   ("gcp", "yearly", "ARCHIVE"): GIB, ("azure", "intraday", "Hot"): GIB,
                   ("aws", "reports", "STANDARD"): 1000}
    assert next(r for r in rows if r.storage_class == "STANDARD_IA").usd_per_month == \
        pytest.approx(0.0125)
