"""A content object altered in one store (an attacker who owns that cloud account, or rot) is
found by ``verify --full``, and refused by restore: that object is not written, the restore
fails saying which one and why, and a marker at the target says the tree is incomplete. The
same snapshot restores whole from a store that was not touched."""

from __future__ import annotations

import pytest
from vo2dr.catalog import build_catalog
from vo2dr.layout import content_key
from vo2dr.snapshots.reader import open_index
from vo2dr.snapshots.restore import INCOMPLETE_MARKER
from vo2dr.stores import Access, open_stores
from vo2dr.trust import Trust

from .conftest import run_cli, take, tree

pytestmark = pytest.mark.integration


def _content_of(settings, store, snapshot_id: str, key: str) -> str:
    entry = build_catalog({store.name: store}, settings.environment, source="assets").find(
        snapshot_id)
    with open_index(store, entry, Trust.from_settings(settings)) as index:
        return next(line["content"] for line in index if line["key"] == key)


@pytest.mark.parametrize("how", ["flip-a-byte", "swap-for-another-object"])
def test_tampered_content_found_by_verify_full_and_refused_by_restore(snap, capsys, tmp_path,
                                                                      how):
    at_snapshot = snap.assets_now()
    taken = take(capsys)
    stores = open_stores(snap.settings, Access.READ)
    gcs = stores["gcs"]
    victim, other = "uploads/exports/big.fit", "uploads/README.txt"
    key = content_key("staging", "assets", _content_of(snap.settings, gcs, taken["backup_id"],
                                                        victim))
    if how == "flip-a-byte":
        data = bytearray(gcs.get_bytes(key))
        data[len(data) // 2] ^= 0x01
        forged = bytes(data)
    else:  # a genuine content object of this source, under the victim's name
        forged = gcs.get_bytes(content_key(
            "staging", "assets", _content_of(snap.settings, gcs, taken["backup_id"], other)))
    gcs.delete(key)
    gcs.put_bytes(key, forged)

    code, doc, err = run_cli(capsys, "verify", "--kind", "assets", "--source", "gcs", "--full")
    assert code == 1, err
    [copy] = doc["copies"]
    assert copy["mode"] == "full" and copy["checked"] == len(at_snapshot)
    assert len(copy["problems"]) == 1 and victim in copy["problems"][0]
    # The untouched stores verify clean.
    code, doc, err = run_cli(capsys, "verify", "--kind", "assets", "--source", "s3", "--full")
    assert code == 0, err

    target = tmp_path / "from-gcs"
    code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "gcs",
                             "--target-dir", str(target), "--no-progress")
    assert code == 1 and victim in err
    assert doc["ok"] is False and [f["key"] for f in doc["failed"]] == [victim]
    restored = tree(target)
    assert victim not in restored  # never written, not even partly
    assert INCOMPLETE_MARKER in restored and victim.encode() in restored[INCOMPLETE_MARKER]
    restored.pop(INCOMPLETE_MARKER)
    assert restored == {k: v for k, v in at_snapshot.items() if k != victim}
    assert not [p for p in target.iterdir() if p.name.startswith(".vo2dr-restoring")]

    whole = tmp_path / "from-azure"
    code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "azure",
                             "--target-dir", str(whole), "--no-progress")
    assert code == 0, err
    assert tree(whole) == at_snapshot


def test_verify_samples_by_default_and_says_how_many(snap, capsys):
    at_snapshot = snap.assets_now()
    take(capsys)
    code, doc, err = run_cli(capsys, "verify", "--kind", "assets", "--source", "all",
                             "--sample", "5")
    assert code == 0, err
    assert [c["store"] for c in doc["copies"]] == ["s3", "gcs", "azure"]
    for c in doc["copies"]:
        assert c["mode"] == "sample" and c["sample_size"] == 5 and c["checked"] == 5
        assert c["objects_in_snapshot"] == len(at_snapshot)
    assert err.count(f"sample size 5 of {len(at_snapshot)} objects") == 3
    code, doc, err = run_cli(capsys, "verify", "--kind", "assets", "--source", "s3")
    assert code == 0, err
    assert doc["copies"][0]["sample_size"] == min(100, len(at_snapshot))
    assert "sample size" in err
