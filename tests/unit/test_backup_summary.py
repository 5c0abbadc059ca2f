"""The backup summary is a dataclass and the destination statuses a StrEnum; the JSON printed,
returned and logged is the same as before (optional fields only when set)."""

from __future__ import annotations

import json

from vo2dr.backup import backup_if_missing
from vo2dr.settings import Settings
from vo2dr.stores.null import NullStore
from vo2dr.summary import BackupSummary, DestinationStatus, DestinationSummary, SkippedBackup

from tests.unit.test_backup_window import at, put


def summary(**changes) -> BackupSummary:
    values = dict(
        ok=True, backup_id="abcdefabcdef", environment="staging", data_class="full",
        tier="daily", timestamp="20260304T100000Z", body_key="b", manifest_key="m",
        tables={"public.users": 3}, plaintext={"bytes": 10, "sha256": "p"},
        compressed_bytes=8, ciphertext={"bytes": 12, "sha256": "c"}, server_version="18.1",
        pg_dump_version="18.1", kms_key_arn="", recovery_key_id="r",
        destinations={"s3": DestinationSummary(DestinationStatus.VERIFIED,
                                               DestinationStatus.VERIFIED, "written", 12,
                                               0.5)},
        seconds=1.0, plaintext_mb_per_s=0.0)
    values.update(changes)
    return BackupSummary(**values)


def test_statuses_are_a_str_enum_that_serializes_as_before():
    assert DestinationStatus.VERIFIED == "verified" and DestinationStatus("failed").name == \
        "FAILED"
    assert json.dumps({"status": DestinationStatus.FAILED}) == '{"status": "failed"}'


def test_optional_fields_appear_only_when_set():
    doc = summary().to_json()
    assert list(doc) == ["ok", "backup_id", "environment", "data_class", "tier", "timestamp",
                         "body_key", "manifest_key", "tables", "plaintext",
                         "compressed_bytes", "ciphertext", "server_version",
                         "pg_dump_version", "kms_key_arn", "recovery_key_id", "destinations",
                         "seconds", "plaintext_mb_per_s"]
    assert doc["destinations"] == {"s3": {"status": "verified", "body": "verified",
                                          "manifest": "written", "bytes": 12, "seconds": 0.5}}
    full = summary(ok=False, error="azure: gone", warnings=["no KMS key"],
                   window={"start": "a", "end": "b"}).to_json()
    assert (full["error"], full["warnings"], full["window"]) == (
        "azure: gone", ["no KMS key"], {"start": "a", "end": "b"})
    assert list(full)[:2] == ["ok", "error"]
    s = summary()
    assert s["ok"] is True and s["destinations"]["s3"]["status"] == "verified"  # read as dict


def test_a_covered_window_returns_a_skipped_backup():
    store = NullStore("gcs")
    put(store, "critical", "2026-03-04T10:00:02", "abcdefabcdef")
    strategy = json.dumps({"dataClasses": {
        "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
        "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240,
                 "dailyAtUtc": "02:00"}}})
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:9/none",
                        environment="staging", gcs_bucket="b", recovery_public_key="unused",
                        signing_key="unused", strategy_json=strategy)
    result = backup_if_missing(settings, "critical", at("2026-03-04T10:12:00"),
                               stores={"gcs": store})
    assert isinstance(result, SkippedBackup)
    assert result.status == "skipped: covered by abcdefabcdef"
    assert result.covered_by["store"] == "gcs"
    assert list(result.to_json()) == ["ok", "skipped", "status", "environment", "data_class",
                                      "window", "covered_by"]
