"""``vo2dr prune``: two-phase mark and sweep per store. Content referenced by any snapshot whose
manifest is present is never deleted; unreferenced content is marked only once its lock has
ended, and deleted only by a later run after the grace, if still unreferenced then. The race:
a snapshot that was running during the mark and reused a candidate has written its manifest
by the sweep, which then keeps the content (and the snapshot restores whole)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vo2dr import layout
from vo2dr.catalog import build_catalog
from vo2dr.snapshots.prune import prune, prune_store
from vo2dr.stores import Access, open_stores
from vo2dr.trust import Trust

from .conftest import change_one_percent, run_cli, take, tree

pytestmark = pytest.mark.integration
GRACE = timedelta(hours=2)


def _refs(store, settings, snapshot_id):
    from vo2dr.snapshots.reader import open_index

    entry = build_catalog({store.name: store}, "staging", source="assets").find(snapshot_id)
    with open_index(store, entry, Trust.from_settings(settings)) as index:
        return {line["content"] for line in index}


def _content(store) -> set[str]:
    return {info.key.rsplit("/", 1)[1]
            for info in store.list(layout.content_prefix("staging", "assets"))}


def _remove(store, summary) -> dict[str, bytes]:
    """What the GFS lifecycle does when a snapshot's tier expires: index and manifest go."""
    saved = {}
    for key in (summary["manifest_key"], summary["body_key"]):
        saved[key] = store.get_bytes(key)
        store.delete(key)
    return saved


def test_the_race_a_snapshot_reusing_a_candidate_keeps_its_content(snap, capsys, tmp_path):
    at_snapshot = snap.assets_now()
    first = take(capsys)
    second = take(capsys)  # nothing changed: reuses every content object of the first
    stores = open_stores(snap.settings, Access.READ)
    s3 = stores["s3"]
    trust = Trust.from_settings(snap.settings)
    assert _refs(s3, snap.settings, second["backup_id"]) == _refs(s3, snap.settings,
                                                                  first["backup_id"])
    # The second snapshot is still running (index written, manifest not yet) while the first
    # expires and the pruner marks.
    saved = _remove(s3, second)
    s3.put_bytes(second["body_key"], saved[second["body_key"]])
    _remove(s3, first)
    now = datetime.now(UTC) + timedelta(days=2)
    mark = prune_store(s3, "staging", "assets", trust, lock_days=1, grace=GRACE, now=now)
    assert mark.ok, mark.blocked
    assert mark.snapshots == 0 and mark.marked == len(_content(s3)) > 0 and mark.plan_key
    # The second snapshot finishes: its manifest is written after the mark.
    s3.put_bytes(second["manifest_key"], saved[second["manifest_key"]])
    sweep = prune_store(s3, "staging", "assets", trust, lock_days=1, grace=GRACE,
                        now=now + GRACE)
    assert sweep.ok and sweep.plans_swept == [mark.plan_key]
    assert sweep.deleted == 0 and sweep.kept_now_referenced == mark.marked
    target = tmp_path / "second"
    code, _, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "s3",
                           "--snapshot", second["backup_id"], "--target-dir", str(target),
                           "--no-progress")
    assert code == 0, err
    assert tree(target) == at_snapshot


def test_mark_then_sweep_deletes_only_unreferenced_content_after_lock_and_grace(snap, capsys,
                                                                                tmp_path):
    first = take(capsys)
    change_one_percent(snap)
    at_second = snap.assets_now()
    second = take(capsys)
    stores = open_stores(snap.settings, Access.READ)
    trust = Trust.from_settings(snap.settings)
    only_first = _refs(stores["s3"], snap.settings, first["backup_id"]) - _refs(
        stores["s3"], snap.settings, second["backup_id"])
    assert len(only_first) == 5  # two overwritten, three deleted since
    now = datetime.now(UTC)

    # While both snapshots are kept: nothing to do anywhere.
    for r in prune(stores, "staging", "assets", trust, lock_days=1, grace=GRACE,
                   now=now + timedelta(days=2)):
        assert r.ok and r.marked == 0 and r.deleted == 0, r

    for store in stores.values():
        _remove(store, first)
    # Within the lock: unreferenced but not a candidate (it might be a running snapshot's).
    for r in prune(stores, "staging", "assets", trust, lock_days=1, grace=GRACE, now=now):
        assert r.marked == 0 and r.unreferenced_locked == 5 and not r.plan_key
    # A dry run marks nothing and writes nothing.
    later = now + timedelta(days=2)
    for r in prune(stores, "staging", "assets", trust, lock_days=1, grace=GRACE, now=later,
                   dry_run=True):
        assert r.marked == 5 and not r.plan_key
    assert not list(stores["s3"].list(layout.prune_prefix("staging", "assets")))
    marks = prune(stores, "staging", "assets", trust, lock_days=1, grace=GRACE, now=later)
    assert all(r.marked == 5 and r.plan_key and r.deleted == 0 for r in marks)
    # Before the grace has passed, the plan is not swept.
    early = prune(stores, "staging", "assets", trust, lock_days=1, grace=GRACE,
                  now=later + GRACE / 2)
    assert all(r.deleted == 0 and not r.plans_swept for r in early)
    sweep = prune(stores, "staging", "assets", trust, lock_days=1, grace=GRACE,
                  now=later + GRACE)
    for r, store in zip(sweep, stores.values(), strict=True):
        assert r.ok and r.deleted == 5, r
        assert not _content(store) & only_first
        assert _refs(store, snap.settings, second["backup_id"]) <= _content(store)
    # The kept snapshot is whole in every store.
    for name in stores:
        code, _, err = run_cli(capsys, "verify", "--kind", "assets", "--source", name,
                               "--full")
        assert code == 0, err
    target = tmp_path / "second"
    code, _, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "azure",
                           "--target-dir", str(target), "--no-progress")
    assert code == 0, err
    assert tree(target) == at_second


def test_an_unreadable_snapshot_stops_the_prune_of_its_store(snap, capsys, monkeypatch):
    taken = take(capsys)
    stores = open_stores(snap.settings, Access.READ)
    gcs = stores["gcs"]
    gcs.delete(taken["body_key"])  # a manifest whose index is gone: references unknown
    monkeypatch.setenv("VO2DR_LOCK_DAYS", "0")
    code, doc, err = run_cli(capsys, "prune", "--kind", "assets")
    assert code == 1
    by_store = {r["store"]: r for r in doc["stores"]}
    assert "no index" in by_store["gcs"]["blocked"] and by_store["gcs"]["deleted"] == 0
    assert by_store["s3"]["ok"] and by_store["s3"]["marked"] == 0
    assert _content(gcs)  # nothing deleted there
    # The pruner's Lambda entry point fails the invocation, naming the store (alarms fire).
    from vo2dr.handlers import PruneIncomplete, prune_handler

    with pytest.raises(PruneIncomplete, match="gcs: nothing pruned"):
        prune_handler({"source": "assets", "dry_run": True})
    code, _, err = run_cli(capsys, "prune", "--kind", "assets", "--lock-days", "x")
    assert code == 3 and "VO2DR_LOCK_DAYS" in err
