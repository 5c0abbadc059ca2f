"""A snapshot cut short by the time limit (``complete: false``) is listed as partial, is never
``latest`` (for restore or for status freshness), and restores only on request
(``--allow-incomplete``), then exactly what it holds; the run that completes it is latest."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from vo2dr.snapshots.take import Deadline, backup_snapshot
from vo2dr.status import compute_status
from vo2dr.stores import Access, open_stores
from vo2dr.trust import Trust

from .conftest import run_cli, take, tree

pytestmark = pytest.mark.integration


def test_partial_snapshot_is_listed_never_latest_and_restored_only_on_request(snap, capsys,
                                                                             tmp_path):
    origin = snap.assets_now()
    ticks = itertools.count()
    deadline = Deadline(uploads_until=25, listing_until=10**9, clock=lambda: float(next(ticks)))
    part = backup_snapshot(snap.settings, "assets", deadline=deadline, workers=2)
    assert part.ok and not part.contents["complete"]
    held = part.contents["objects"]
    assert 0 < held < len(origin)

    code, doc, err = run_cli(capsys, "list", "--kind", "assets", "--json")
    assert code == 0, err
    [row] = doc["snapshots"]
    assert row["partial"] is True and row["objects"] == held

    code, _, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "s3",
                           "--target-dir", str(tmp_path / "latest"), "--no-progress")
    assert code == 2 and "no complete assets snapshot" in err and "partial" in err
    code, _, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "s3",
                           "--snapshot", part.backup_id, "--target-dir",
                           str(tmp_path / "refused"), "--no-progress")
    assert code == 2 and "--allow-incomplete" in err
    assert not (tmp_path / "refused").exists()
    stores = dict(open_stores(snap.settings, Access.READ))
    report = compute_status(snap.settings.strategy(), stores, "staging", datetime.now(UTC),
                            trust=Trust.from_settings(snap.settings))
    assert report.sources["assets"].stores["s3"].reason == "no complete backup"

    target = tmp_path / "partial"
    code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "gcs",
                             "--snapshot", part.backup_id, "--allow-incomplete",
                             "--target-dir", str(target), "--no-progress")
    assert code == 0, err
    assert doc["complete_snapshot"] is False and doc["restored"]["objects"] == held
    got = tree(target)
    assert len(got) == held and all(origin[k] == v for k, v in got.items())

    whole = take(capsys)  # the next run completes it
    assert whole["contents"]["complete"] and whole["contents"]["base"] == part.backup_id
    target = tmp_path / "whole"
    code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "azure",
                             "--target-dir", str(target), "--no-progress")
    assert code == 0, err
    assert doc["snapshot_id"] == whole["backup_id"] and tree(target) == origin
