"""The report's numbers on a synthetic 90-day history (tests/report_history.py), checked against
values computed by hand from the history's description."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.records import ATTEMPT, check_record, make_record, parse_record_key, record_key
from vo2dr.report import build, cost, metrics
from vo2dr.report.config import report_config
from vo2dr.report.history import load_history
from vo2dr.signing import TrustedKeys

from tests import report_history as H
from tests import signing_keys

TRUSTED = TrustedKeys.from_pem(signing_keys.TRUSTED)


@pytest.fixture(scope="module")
def stores():
    return H.shared_stores()


@pytest.fixture(scope="module")
def cfg():
    return report_config(H.stack(), "staging")


@pytest.fixture(scope="module")
def doc(stores, cfg):
    h = load_history(stores, H.ENV, TRUSTED, H.SINCE, H.UNTIL)
    return build.build_report(cfg, h, [], cost.load_price_table(cfg.settings),
                              build.load_controls(H.ROOT, "staging"))


def test_success_rate_per_class_and_store(doc):
    s = doc["success_rate"]
    c, i, f = (s["classes"][n] for n in ("critical", "important", "full"))
    # 90 days x 96 quarter hours; 3 missed (one failed, two never attempted)
    assert (c["due"], c["completed"]) == (8640, 8637)
    assert c["percent"] == round(100 * 8637 / 8640, 3) == 99.965
    assert c["meets_target"] is True
    # gcs was down on 2026-07-20: its 96 windows are not complete there
    assert (c["stores"]["gcs"]["due"], c["stores"]["gcs"]["completed"]) == (8640, 8637 - 96)
    assert c["stores"]["s3"]["completed"] == c["stores"]["azure"]["completed"] == 8637
    assert c["stores"]["gcs"]["meets_target"] is False
    assert (i["due"], i["completed"], i["stores"]["gcs"]["completed"]) == (2160, 2159, 2135)
    # full: windows 02:00-02:00 that start on 06-01 .. 08-28 (the 08-29 one ends after the
    # period): 30 + 31 + 28 = 89, the 06-15 one failed
    assert (f["due"], f["completed"], f["stores"]["gcs"]["completed"]) == (89, 88, 87)
    assert f["percent"] == round(100 * 88 / 89, 3) and f["meets_target"] is False
    assert (s["due"], s["completed"]) == (8640 + 2160 + 89, 8637 + 2159 + 88)
    assert s["percent"] == round(100 * 10884 / 10889, 3) == 99.954
    assert s["target_percent"] == 99.9 and s["meets_target"] is True


def test_missed_windows_are_listed_with_dates_and_reasons(doc):
    c = doc["success_rate"]["classes"]["critical"]
    assert [(m["start"], m["reason"]) for m in c["missed"]] == [
        ("2026-07-10T10:00:00Z", "DumpError: pg_dump failed (exit 1): connection lost"),
        ("2026-07-10T10:15:00Z", "no backup attempt recorded"),
        ("2026-07-10T10:30:00Z", "no backup attempt recorded")]
    gcs = c["stores"]["gcs"]["missed"]
    assert len(gcs) == 99 and gcs[3]["start"] == "2026-07-20T00:00:00Z"
    assert gcs[3]["reason"] == "failed: gcs: connection refused"
    f = doc["success_rate"]["classes"]["full"]["missed"]
    assert f == [{"start": "2026-06-15T02:00:00Z", "end": "2026-06-16T02:00:00Z",
                  "reason": "EncryptionError: KMS AccessDenied"}]
    assert doc["success_rate"]["classes"]["important"]["missed"][0]["start"] == \
        "2026-08-01T05:00:00Z"
    # attempts: 8637 complete + 1 failed records (the forged and the unsigned do not count)
    assert c["attempts"] == {"attempts": 8638, "succeeded": 8637, "failed": 1,
                             "percent": round(100 * 8637 / 8638, 3)}


def test_forged_and_unsigned_records_are_shown_not_counted(doc):
    untrusted = {u["trust"]: u for u in doc["history"]["untrusted_records"]}
    assert set(untrusted) == {"invalid", "unsigned"}
    assert "untrusted key" in untrusted["invalid"]["reason"]
    assert "-critical-" in untrusted["unsigned"]["key"]


def test_rpo_distribution(doc):
    r = doc["rpo"]["classes"]
    c = r["critical"]
    # a check at :05/:20/:35/:50 sees the backup taken 30 s after the window opened: 270 s;
    # on 07-10 the checks at 10:05, 10:20 and 10:35 see 09:45:30: 1170, 2070, 2970 s
    assert c["checks"] == 8640 and c["checks_without_backup"] == 0
    assert sorted(c["ages_seconds"])[-4:] == [270, 1170, 2070, 2970]
    assert (c["p50_seconds"], c["p99_seconds"], c["max_seconds"]) == (270, 270, 2970)
    assert c["over_rpo_checks"] == 3 and c["within_rpo_percent"] == round(100 * 8637 / 8640, 3)
    f = r["full"]
    # the first full backup is 06-01 02:01: the 8 checks 00:05 .. 01:50 come before it; the
    # oldest age is on 06-16 at 01:50, two days after 06-14 02:01 less 11 minutes
    assert f["checks_without_backup"] == 8 and f["checks"] == 8632
    assert f["max_seconds"] == 2 * 86400 - 11 * 60
    i = r["important"]
    # important backs up at hh:01: checks at :05, :20, :35, :50 see 240, 1140, 2040, 2940 s,
    # 2159 times each; on 08-01 05:xx (skipped) they see 04:01: 3840, 4740, 5640, 6540 s
    ages = sorted(i["ages_seconds"])
    assert ages[-5:] == [2940, 3840, 4740, 5640, 6540]
    assert [ages.count(a) for a in (240, 1140, 2040, 2940)] == [2159] * 4
    # nearest rank 4320 of 8640 falls in the third block (ranks 4319 to 6477)
    assert (i["p50_seconds"], i["p90_seconds"]) == (2040, 2940)
    assert i["over_rpo_checks"] == 4 and i["max_seconds"] == 6540  # all four over 3600 s


def test_drill_history_variance_and_months_without_drill(doc):
    d = doc["drills"]
    assert d["count"] == 2 and d["allowed_variance_percent"] == 10
    crit = d["classes"]["critical"]
    # 4200 s against 3600: +16.667 %, over the 10 % allowed; June: 1800/3600 = -50 %
    assert [(r["variance_percent"], r["within_variance"], r["ok"]) for r in crit["drills"]] \
        == [(-50.0, True, True), (16.667, False, False)]
    full = d["classes"]["full"]["drills"][-1]
    # 15000 s against 14400: +4.167 %: failed the RTO, within the variance
    assert (full["variance_percent"], full["within_variance"], full["ok"]) == \
        (4.167, True, False)
    assert d["classes"]["important"]["drills"][-1]["variance_percent"] == -16.667
    assert crit["months_without_drill"] == ["2026-07"]
    last = doc["controls"]["last_drill"]["critical"]
    assert last["time"] == "2026-08-03T09:00:00Z" and last["rows_checked"] == 100
    assert last["sanity"] == "1/1" and "over the RTO" in last["reasons"][0]


def test_size_growth_trend_and_time_limit(doc):
    g = doc["growth"]
    full = g["classes"]["full"]
    # exactly 5 MB/day on a line; the failed 06-15 is not a point
    assert full["plaintext_trend"]["bytes_per_day"] == pytest.approx(5_000_000, rel=1e-9)
    assert full["ciphertext_trend"]["bytes_per_day"] == pytest.approx(1_500_000, rel=1e-6)
    assert len(full["points"]) == 89
    lim = full["time_limit"]
    # 900 s x 2 MB/s = 1.8 GB, reached 800 MB / 5 MB = 160 days after 06-01 02:01
    assert lim["bytes_per_second"] == 2_000_000 and lim["max_bytes_in_limit"] == 1_800_000_000
    assert g["full_backup_fits_until"] == "2026-11-08T02:01:00Z"
    assert g["full_backup_already_over"] is False


def test_works_from_one_store_and_with_aws_down(stores, cfg):
    table = cost.load_price_table(cfg.settings)
    for only in ("azure", "s3"):
        h = load_history({only: stores[only]}, H.ENV, TRUSTED, H.SINCE, H.UNTIL)
        doc = build.build_report(cfg, h, [], table, {"available": False})
        assert doc["success_rate"]["classes"]["critical"]["completed"] == 8637
        assert doc["history"]["stores_read"] == [only]
    stores["s3"].down = True
    try:
        h = load_history(stores, H.ENV, TRUSTED, H.SINCE, H.UNTIL)
    finally:
        stores["s3"].down = False
    doc = build.build_report(cfg, h, [], table, {"available": False})
    assert "s3" in doc["history"]["store_errors"]
    assert doc["history"]["stores_read"] == ["gcs", "azure"]
    # gcs lacks the outage day's records, azure has them: the merge still counts them all
    assert doc["success_rate"]["percent"] == 99.954


def test_a_valid_record_moved_to_another_key_is_invalid():
    when = datetime(2026, 7, 1, tzinfo=UTC)
    doc = make_record(ATTEMPT, "staging", when, {"data_class": "critical"}, H.SIGNER)
    import json

    data = json.dumps(doc).encode()
    key = record_key("staging", ATTEMPT, when, "critical", "0" * 12)
    assert check_record(key, data, TRUSTED).valid
    moved = record_key("staging", ATTEMPT, when + timedelta(days=1), "critical", "0" * 12)
    assert check_record(moved, data, TRUSTED).trust == "invalid"
    assert parse_record_key("reports/staging/drills/20260701T000000Z-critical-"
                            + "0" * 12 + ".json") is None


def test_windows_and_checks_by_hand(cfg):
    crit = cfg.strategy.data_classes["critical"]
    day = datetime(2026, 6, 1, tzinfo=UTC)
    w = list(metrics.due_windows(crit, day + timedelta(minutes=7), day + timedelta(hours=1)))
    assert [s.minute for s, _ in w] == [15, 30, 45]
    checks = list(metrics.status_checks(day, day + timedelta(hours=1), 15, 5))
    assert [t.minute for t in checks] == [5, 20, 35, 50]
    assert metrics.percentile([1, 2, 3, 4], 50) == 2 and metrics.percentile([5], 99) == 5
    assert metrics.months_between(day, datetime(2026, 8, 30, tzinfo=UTC)) == \
        ["2026-06", "2026-07", "2026-08"]


def test_report_command_rejects_a_bad_period_with_one_line(capsys, monkeypatch):
    from vo2dr.cli import main

    monkeypatch.setenv("VO2DR_ENVIRONMENT", "staging")
    assert main(["report", "--since", "ninety days"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--since 'ninety days'" in err[0]
    assert main(["report", "--since", "2026-06-01", "--now", "2026-05-01"]) == 3
    assert "is not before the end of the period" in capsys.readouterr().err


def test_listing_only_backups_count_only_with_a_trusted_manifest():
    """Backups without a record (older than the records) count from the listing, but only in
    the stores whose manifest is signed by a trusted key: a backup planted by whoever owns one
    cloud is shown as invalid and does not fill its window."""
    from vo2dr.layout import BackupRef

    from tests.unit.recovery_memstore import MemoryStore, add_backup

    stores = {n: MemoryStore(n) for n in ("s3", "gcs")}
    day = datetime(2026, 6, 1, tzinfo=UTC)
    add_backup(list(stores.values()),
               BackupRef("staging", "daily", "full", day + timedelta(hours=2, seconds=60),
                         "a" * 12))
    add_backup([stores["gcs"]],  # the attacker's, in gcs only
               BackupRef("staging", "daily", "full", day + timedelta(days=1, hours=2),
                         "b" * 12), signer=H.FOREIGN)
    h = load_history(stores, "staging", TRUSTED, day, day + timedelta(days=3))
    assert [(e.backup_id, e.evidence, e.stores) for e in h.backups] == [
        ("a" * 12, "listing", {"s3": True, "gcs": True})]
    assert [u["trust"] for u in h.untrusted] == ["invalid"]
    assert "untrusted key" in h.untrusted[0]["reason"]
    cfg = report_config(H.stack(), "staging")
    rate = metrics.success_rate(cfg.strategy.data_classes["full"], h.backups, h.since,
                                h.until, 99.9)
    assert (rate.due, rate.completed) == (2, 1)  # 06-01 and 06-02 02:00 windows


def test_a_replayed_record_counts_once_and_cannot_change_environment():
    import json

    from tests.unit.recovery_memstore import MemoryStore

    store = MemoryStore("s3")
    when = datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC)
    body = {"data_class": "critical", "source": "database", "started_at": "2026-06-01T00:00:30Z",
            "outcome": "failed", "backup_id": "", "reason": "x", "stores": {}}
    doc = make_record(ATTEMPT, "staging", when, body, H.SIGNER)
    data = json.dumps(doc).encode()
    for rid in ("1" * 12, "2" * 12):  # the same signed failure under two ids
        store.put_bytes(record_key("staging", ATTEMPT, when, "critical", rid), data)
    store.put_bytes(record_key("production", ATTEMPT, when, "critical", "3" * 12), data)
    h = load_history({"s3": store}, "staging", TRUSTED, when - timedelta(hours=1),
                     when + timedelta(hours=1))
    assert len(h.backups) == 1 and h.backups[0].outcome == "failed"
    prod = check_record(record_key("production", ATTEMPT, when, "critical", "3" * 12), data,
                        TRUSTED)
    assert prod.trust == "invalid" and "does not match" in prod.reason


def test_records_signed_by_a_record_only_key_count_but_it_never_makes_a_manifest_valid():
    """The drill's identity signs with a key trusted for records only: its drill records count,
    and a backup manifest signed with that key is still refused."""
    from vo2dr.layout import BackupRef
    from vo2dr.signing import LocalSigner, generate_signing_key

    from tests.unit.recovery_memstore import MemoryStore, add_backup

    private, public = generate_signing_key()
    record_signer = LocalSigner(private)
    store = MemoryStore("s3")
    day = datetime(2026, 6, 1, tzinfo=UTC)
    when = day + timedelta(hours=9)
    body = {"ok": True, "started_at": "2026-06-01T09:00:00Z", "seconds": 1,
            "classes": [{"data_class": "full", "ok": True, "restore_seconds": 10.0,
                         "rto_seconds": 14400, "tables": {}, "sanity": [], "reasons": []}]}
    store.put_bytes(record_key("staging", "drill", when),
                    __import__("json").dumps(make_record("drill", "staging", when, body,
                                                         record_signer)).encode())
    add_backup([store], BackupRef("staging", "daily", "full", day + timedelta(hours=2),
                                  "c" * 12), signer=record_signer)
    record_keys = TrustedKeys.from_pem(public)
    h = load_history({"s3": store}, "staging", TRUSTED, day, day + timedelta(days=1),
                     record_keys=record_keys)
    assert len(h.drills) == 1 and h.drills[0].classes[0].ok
    assert h.backups == [] and [u["trust"] for u in h.untrusted] == ["invalid"]
    without = load_history({"s3": store}, "staging", TRUSTED, day, day + timedelta(days=1))
    assert without.drills == [] and len(without.untrusted) == 2


def test_a_private_pem_is_never_logged():
    from vo2dr.settings import Settings

    s = Settings(signing_key=signing_keys.PRIVATE.decode(),
                 record_signing_key=signing_keys.PRIVATE.decode())
    red = s.redacted()
    assert red["signing_key"] == red["record_signing_key"] == "(private key)"
