"""A restore of ``latest`` downloads the source store's newest backup while the quorum reads
the other stores (issue 19): the download only ever counts once the quorum chose the same
backup, with the same signed manifest; a quorum that chooses another backup, or fails, or a
download that fails or is tampered with while the quorum runs, leaves the target untouched and
no spool behind."""

from __future__ import annotations

import functools
import threading
from dataclasses import replace

import psycopg
import pytest
from vo2dr import restore as restore_module
from vo2dr.backup import run_backup
from vo2dr.catalog import BackupNotFound, build_catalog
from vo2dr.dbadmin import Target, count_rows, database_contents
from vo2dr.exceptions import StoreError
from vo2dr.progress import QuietReporter
from vo2dr.restore import RestoreRefused
from vo2dr.stores import ranged

from .conftest import (
    database_exists,
    new_database,
    restore_as_superuser,
    table_checksums,
)

pytestmark = pytest.mark.integration


class Stages(QuietReporter):
    """Keeps every stage line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def stage(self, message: str) -> None:
        self.lines.append(message)


class SourceStore:
    """A store as the restore reads it, with its range reads watched (``reading`` is set by
    the first) and optionally damaged: ``flip`` flips one byte of the second range, ``fail``
    raises a store error instead of answering it."""

    def __init__(self, inner, *, flip: bool = False, fail: bool = False) -> None:
        self._inner = inner
        self._flip, self._fail = flip, fail
        self.reading = threading.Event()
        self._calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def get_stream(self, key: str, chunk_size: int = 8 * 1024 * 1024):
        raise AssertionError("the body is read as ranges (see small_ranges)")

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.reading.set()
        with self._lock:
            self._calls += 1
            call = self._calls
        data = self._inner.get_range(key, start, length)
        if call == 2 and self._fail:
            raise StoreError(f"{self.name}: download range of {key}: connection reset")
        if call == 2 and self._flip:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x01
            data = bytes(data)
        return data


@pytest.fixture
def quorum_after_download_starts(monkeypatch):
    """The quorum (on its thread) waits until the source's download has begun, then runs:
    proof that the download starts before the quorum has chosen. Returns what it saw."""
    real = restore_module.select_by_quorum
    seen: dict[str, bool] = {}

    def gated(settings, source, **kwargs):
        seen["download_started_first"] = source.reading.wait(timeout=60)
        return real(settings, source, **kwargs)

    monkeypatch.setattr(restore_module, "select_by_quorum", gated)
    return seen


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch):
    """Ranges of 4 KiB (the test backup is well under one part of the real size), so the body
    is read as several ranges in parallel, as a real backup is."""
    monkeypatch.setattr("vo2dr.verify.read_ranges",
                        functools.partial(ranged.read_ranges, part_size=4096))


def untouched(world, target: str) -> None:
    """The (empty) target database is still empty, and no database was made beside it."""
    assert database_contents(Target.parse(world.pg.url(target))) == []
    with psycopg.connect(world.pg.url(), autocommit=True) as conn:
        beside = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                              (f"{target}%",)).fetchall()
    assert [r[0] for r in beside] == [target]


def test_latest_is_downloaded_while_the_quorum_reads_the_other_stores(
        world, quorum_after_download_starts, tmp_path):
    source = SourceStore(world.store("gcs"))
    target = f"overlap_{world.source_db}"
    stages = Stages()
    result = restore_as_superuser(world.settings, source="gcs", store=source,
                                  target_url=world.pg.url(target), reporter=stages,
                                  spool_dir=str(tmp_path))
    assert quorum_after_download_starts == {"download_started_first": True}
    assert result.ok and result.backup_id == world.backups["full"]
    assert "quorum_wait" in result.seconds
    assert table_checksums(world.pg.url(target)) == table_checksums(world.source_url)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["flip", "fail"])
def test_a_damaged_download_while_the_quorum_runs_is_refused(
        world, quorum_after_download_starts, damage, tmp_path):
    target = new_database(world.pg, "overlap_damaged")
    source = SourceStore(world.store("gcs"), **{damage: True})
    expected = RestoreRefused if damage == "flip" else StoreError
    with pytest.raises(expected) as caught:
        restore_as_superuser(world.settings, source="gcs", store=source,
                             target_url=world.pg.url(target), spool_dir=str(tmp_path))
    assert quorum_after_download_starts == {"download_started_first": True}
    if damage == "flip":
        assert "SHA-256" in str(caught.value) and "Nothing was written" in str(caught.value)
    untouched(world, target)
    assert list(tmp_path.iterdir()) == []


def test_the_quorums_choice_wins_over_the_sources_newest_and_its_failure_refuses(
        fresh_world, quorum_after_download_starts, tmp_path):
    world = fresh_world
    agreed = world.backups["full"]
    # A newer backup in GCS only (its other uploads "failed"): GCS's own newest, not latest.
    lone = run_backup(replace(world.settings, s3_bucket="", azure_container_url=""), "full")
    assert set(lone["destinations"]) == {"gcs"}

    target = f"overlap_{world.source_db}"
    stages = Stages()
    result = restore_as_superuser(world.settings, source="gcs",
                                  store=SourceStore(world.store("gcs")),
                                  target_url=world.pg.url(target), reporter=stages,
                                  spool_dir=str(tmp_path))
    assert quorum_after_download_starts == {"download_started_first": True}
    assert result.ok and result.backup_id == agreed
    assert any(f"quorum chose backup {agreed}, not {lone['backup_id']}" in line
               for line in stages.lines), stages.lines
    assert list(tmp_path.iterdir()) == []

    # Now no backup is in two stores: the quorum fails while GCS's newest downloads (and
    # verifies): refused, with the quorum's reason, and nothing restored.
    manifest_key = build_catalog(world.stores(), "staging").find(agreed).ref.manifest_key
    for name in ("s3", "azure"):
        world.store(name).delete(manifest_key)
    quorum_after_download_starts.clear()
    empty = new_database(world.pg, "overlap_noquorum")
    with pytest.raises(BackupNotFound, match="authentic"):
        restore_as_superuser(world.settings, source="gcs", store=SourceStore(world.store("gcs")),
                             target_url=world.pg.url(empty), spool_dir=str(tmp_path))
    assert quorum_after_download_starts == {"download_started_first": True}
    untouched(world, empty)
    assert not database_exists(world.pg, f"overlap_x_{world.source_db}")
    assert list(tmp_path.iterdir()) == []


def test_row_counts_on_several_connections_match_one(world):
    """The parallel row counts give exactly what one connection counts, a missing table
    included (as ``None``), in the caller's order."""
    target = Target.parse(world.source_url)
    tables = {"users": ("public", "users"), "app.system_logs": ("app", "system_logs"),
              "missing": ("public", "no_such_table"),
              "vo2max_calculations": ("public", "vo2max_calculations")}
    one = count_rows(target, tables)
    many = count_rows(target, tables, connections=3, sizes={"app.system_logs": 10})
    assert many == one and list(many) == list(tables)
    assert one["missing"] is None and one["users"] == 120
