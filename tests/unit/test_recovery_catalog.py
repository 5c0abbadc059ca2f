"""The catalog merges listings by backup id and resolves latest / id / --before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.catalog import BackupNotFound, build_catalog, parse_point_in_time
from vo2dr.layout import BackupRef

from tests.unit.recovery_memstore import MemoryStore, add_backup

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)


def ref(data_class: str, minutes: int, backup_id: str, tier: str = "daily") -> BackupRef:
    return BackupRef("staging", tier, data_class, T0 + timedelta(minutes=minutes), backup_id)


@pytest.fixture
def stores():
    s3, gcs, azure = MemoryStore("s3"), MemoryStore("gcs"), MemoryStore("azure")
    all3 = [s3, gcs, azure]
    add_backup(all3, ref("full", 0, "aaaaaaaaaaa1"))
    add_backup(all3, ref("critical", 0, "bbbbbbbbbbb1"))
    add_backup(all3, ref("critical", 15, "bbbbbbbbbbb2"))
    # newest critical: complete in s3 and gcs only; azure has the body without a manifest
    add_backup(all3, ref("critical", 30, "bbbbbbbbbbb3"), manifest_in=["s3", "gcs"])
    # a key outside the layout and another environment are ignored
    s3.put_bytes("database/staging/daily/full/notes.txt", b"x")
    gcs.put_bytes("database/production/daily/full/20250310T020000Z-cccccccccccc.dump.enc", b"x")
    return {"s3": s3, "gcs": gcs, "azure": azure}


def test_merges_by_backup_id_and_reports_complete_copies(stores):
    cat = build_catalog(stores, "staging")
    assert [e.backup_id for e in cat.entries] == ["aaaaaaaaaaa1", "bbbbbbbbbbb1", "bbbbbbbbbbb2",
                                                  "bbbbbbbbbbb3"]
    newest = cat.find("bbbbbbbbbbb3")
    assert newest.complete_stores(cat.stores) == ["s3", "gcs"]
    assert newest.copies["azure"].state == "no-manifest"
    doc = cat.to_json("critical")
    assert [b["backup_id"] for b in doc["backups"]] == ["bbbbbbbbbbb1", "bbbbbbbbbbb2",
                                                       "bbbbbbbbbbb3"]
    assert doc["backups"][2]["stores"]["azure"]["state"] == "no-manifest"


def test_latest_is_per_store_and_per_class(stores):
    cat = build_catalog(stores, "staging")
    assert cat.latest("critical").backup_id == "bbbbbbbbbbb3"
    assert cat.latest("critical", store="azure").backup_id == "bbbbbbbbbbb2"
    assert cat.latest("full", store="azure").backup_id == "aaaaaaaaaaa1"
    with pytest.raises(BackupNotFound, match="no complete important backup"):
        cat.latest("important")


def test_before_picks_newest_at_or_before(stores):
    cat = build_catalog(stores, "staging")
    assert cat.resolve(None, data_class="critical",
                       before=T0 + timedelta(minutes=20)).backup_id == "bbbbbbbbbbb2"
    assert cat.resolve("latest", data_class="critical",
                       before=T0 + timedelta(minutes=15)).backup_id == "bbbbbbbbbbb2"
    with pytest.raises(BackupNotFound, match="at or before"):
        cat.resolve(None, data_class="critical", before=T0 - timedelta(seconds=1))


def test_resolve_by_id_requires_a_complete_copy_in_the_source(stores):
    cat = build_catalog(stores, "staging")
    assert cat.resolve("bbbbbbbbbbb3", data_class="full", store="gcs").backup_id == "bbbbbbbbbbb3"
    with pytest.raises(BackupNotFound, match=r"not complete in azure \(no-manifest\).*s3, gcs"):
        cat.resolve("bbbbbbbbbbb3", data_class="full", store="azure")
    with pytest.raises(BackupNotFound, match="ambiguous"):
        cat.find("bbbb")
    with pytest.raises(BackupNotFound, match="not a backup id"):
        cat.find("yesterday")


def test_a_store_that_cannot_be_listed_is_reported_not_fatal(stores):
    stores["s3"].down = True
    cat = build_catalog(stores, "staging")
    assert "connection refused" in cat.errors["s3"]
    assert cat.latest("critical", store="gcs").backup_id == "bbbbbbbbbbb3"
    with pytest.raises(BackupNotFound, match="could not list: s3"):
        cat.latest("important")


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03-10T02:15:00Z", datetime(2025, 3, 10, 2, 15, tzinfo=UTC)),
    ("2025-03-10 02:15", datetime(2025, 3, 10, 2, 15, tzinfo=UTC)),
    ("2025-03-10T04:15:00+02:00", datetime(2025, 3, 10, 2, 15, tzinfo=UTC)),
    ("20250310T021500Z", datetime(2025, 3, 10, 2, 15, tzinfo=UTC)),
])
def test_point_in_time_formats(text, expected):
    assert parse_point_in_time(text) == expected


def test_point_in_time_rejects_garbage():
    with pytest.raises(BackupNotFound, match="ISO 8601"):
        parse_point_in_time("last tuesday")
