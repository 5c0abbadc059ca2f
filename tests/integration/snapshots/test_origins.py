"""A GCS prefix as a snapshot origin (the GCS emulator): listed in key order with generations,
read pinned to the listed generation, unchanged objects not read again."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from vo2dr.snapshots.origins import open_origin
from vo2dr.snapshots.take import backup_snapshot
from vo2dr.stores.gcs import make_client

from .test_take import T0, entries_of, plaintext

pytestmark = pytest.mark.integration


def test_a_gcs_origin_snapshots_incrementally(snap):
    client = make_client()
    name = f"vo2max-gcs-origin-{uuid.uuid4().hex[:8]}"
    bucket = client.create_bucket(name)
    files = {f"p/{d}/{i:03d}.bin": uuid.uuid4().bytes * (50 + i) for d in ("a", "a-b", "b")
             for i in range(5)}
    for key, data in files.items():
        bucket.blob(key).upload_from_string(data)
    bucket.blob("other/x").upload_from_string(b"outside the prefix")

    def origins():
        return {"uploads": open_origin("uploads", f"gs://{name}/p/", gcs_client=client)}

    first = backup_snapshot(snap.settings, "assets", T0, origins=origins())
    assert first.ok, first.error
    assert first.contents["objects"] == first.contents["new_objects"] == len(files)
    bucket.blob("p/b/001.bin").upload_from_string(b"rewritten")
    second = backup_snapshot(snap.settings, "assets", T0 + timedelta(hours=1), origins=origins())
    assert second.ok and second.contents["new_objects"] == 1
    from vo2dr.stores import Access, open_stores

    store = dict(open_stores(snap.settings, Access.READ))["gcs"]
    entries = entries_of(snap, store, second.backup_id)
    assert list(entries) == sorted(f"uploads/{k[2:]}" for k in files)
    e = entries["uploads/b/001.bin"]
    assert e.version == str(bucket.get_blob("p/b/001.bin").generation) and e.new
    assert plaintext(snap, store, e) == b"rewritten"
    assert plaintext(snap, store, entries["uploads/a-b/002.bin"]) == files["p/a-b/002.bin"]
