"""The terminal tables of `vo2dr list` and `vo2dr status` render every state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vo2dr.catalog import build_catalog
from vo2dr.commands import list as list_command
from vo2dr.commands import status as status_command
from vo2dr.layout import BackupRef
from vo2dr.status import compute_status
from vo2dr.strategy import parse_strategy

from tests.unit.recovery_memstore import TRUST, MemoryStore, add_backup

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)


def _stores():
    stores = [MemoryStore("s3"), MemoryStore("gcs"), MemoryStore("azure")]
    add_backup(stores, BackupRef("staging", "yearly", "full", T0, "aaaaaaaaaaa1"),
               manifest_in=["s3", "gcs"])
    return {s.name: s for s in stores}


def test_list_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    stores = _stores()
    stores["gcs"].down = True
    catalog = build_catalog(stores, "staging")
    list_command.render_table(catalog, None, now=T0 + timedelta(hours=3))
    out = capsys.readouterr().out
    assert "aaaaaaaaaaa1" in out and "3.0h" in out
    assert "✓" in out and "partial" in out and "unlisted" in out


def test_status_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    strategy = parse_strategy({"full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240,
                                        "dailyAtUtc": "02:00"}})
    report = compute_status(strategy, _stores(), "staging", T0 + timedelta(hours=30), trust=TRUST)
    status_command.render(report)
    out = capsys.readouterr().out
    assert "BREACH" in out and "no complete backup" in out and "30.0h" in out
    assert "replicas of full aaaaaaaaaaa1 (s3, gcs): BREACH missing from azure" in out
