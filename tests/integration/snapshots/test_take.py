"""Snapshots of a moto uploads bucket into S3, GCS and Azure (real servers on loopback, real KMS
in moto, real signatures): the first uploads everything, the second after a few changes uploads
only the changed content, measured in the stores' own listings; a store that dies mid-snapshot
gets no manifest; the time limit leaves an incomplete snapshot that the next run completes;
content names and metadata reveal nothing; and every entry decrypts back to the origin's bytes
(KMS, and the recovery key alone)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobServiceClient
from vo2dr import layout, metrics
from vo2dr.cli import main
from vo2dr.manifest import Manifest
from vo2dr.snapshots.content import content_plaintext
from vo2dr.snapshots.take import (
    Deadline,
    ManifestReader,
    backup_snapshot,
    list_snapshots,
    open_base,
)
from vo2dr.stores import Access, open_stores
from vo2dr.trust import Trust

from .conftest import LARGE_SIZE

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def content(store, kind: str = "assets") -> dict[str, int]:
    """The store's own listing of the content pool: key -> stored size."""
    return {i.key: i.size for i in store.list(layout.content_prefix("staging", kind))}


def entries_of(snap, store, backup_id: str, kind: str = "assets"):
    trust = Trust.from_settings(snap.settings)
    listed = next(s for s in list_snapshots({store.name: store}, "staging", kind)
                  if s.ref.backup_id == backup_id)
    base = open_base(listed, ManifestReader(store, trust), {"kms_key_id": trust.kms_key_arn})
    return {e.key: e for e in base.entries}


def plaintext(snap, store, entry, kind="assets", **keys) -> bytes:
    keys = keys or {"kms_key_id": snap.settings.kms_key_id}
    stored = store.get_stream(layout.content_key("staging", kind, entry.content))
    return b"".join(content_plaintext(stored, entry, environment="staging", source=kind,
                                      **keys))


def test_second_snapshot_uploads_only_the_changed_content(snap):
    stores = dict(open_stores(snap.settings, Access.WRITE))
    first = backup_snapshot(snap.settings, "assets", T0)
    assert first.ok, first.error
    n = len(snap.objects)
    c1 = first.contents
    assert (c1["objects"], c1["new_objects"], c1["complete"]) == (n, n, True)
    assert c1["bytes"] == sum(len(v) for v in snap.objects.values())
    before = {name: content(s) for name, s in stores.items()}
    for name, listing in before.items():
        assert len(listing) == n, name
        assert sum(listing.values()) == c1["uploaded_bytes"][name]
    e1 = entries_of(snap, stores["s3"], first.backup_id)
    assert set(e1) == {f"uploads/{k}" for k in snap.objects}  # not uploads-old/
    assert all(e.version for e in e1.values())  # the origin is versioned: reads are pinned

    # A few objects (of 55): two rewritten, three deleted.
    changed = ["videos/clip-1.mp4", "users/0003/photos/00003.jpg"]
    for key in changed:
        snap.put(key, os.urandom(len(snap.objects[key]) + 10))
    deleted = {"users/0002/photos/00002.jpg", "users/0004/photos/00004.jpg",
               "users/0006/photos/00006.jpg"}
    gone = {k: snap.objects[k] for k in deleted}
    for key in deleted:
        snap.delete(key)
    changed_bytes = sum(len(snap.objects[k]) for k in changed)

    second = backup_snapshot(snap.settings, "assets", T0 + timedelta(hours=1))
    assert second.ok, second.error
    c2 = second.contents
    assert (c2["objects"], c2["new_objects"], c2["new_bytes"], c2["base"]) == (
        n - 3, 2, changed_bytes, first.backup_id)
    assert second.tier == layout.INTRADAY
    for name, store in stores.items():
        added = {k: v for k, v in content(store).items() if k not in before[name]}
        assert len(added) == 2, name
        uploaded = sum(added.values())
        assert uploaded == c2["uploaded_bytes"][name]
        # Within 10 % of the changed bytes: random bytes do not compress, and each message
        # adds about 1 kB (a header with two wrapped data keys, frame tags, a signature).
        assert changed_bytes <= uploaded <= min(1.1 * changed_bytes,
                                                changed_bytes + 2 * 1536), (name, uploaded)
    # Its metrics (vo2dr.metrics): each store's bytes are the new content plus the index.
    printed = {d.get("Store"): d["BackupBytes"] for d in metrics.backup_documents(second)}
    for name in stores:
        assert printed[name] == c2["uploaded_bytes"][name] + second.destinations[name].bytes
    assert printed[None] == max(c2["uploaded_bytes"].values()) + second.ciphertext["bytes"]

    e2 = entries_of(snap, stores["gcs"], second.backup_id)
    assert set(e2) == {f"uploads/{k}" for k in snap.objects}
    for key in changed:
        assert e2[f"uploads/{key}"].content != e1[f"uploads/{key}"].content
        assert e2[f"uploads/{key}"].version != e1[f"uploads/{key}"].version
    same = [k for k in e2 if k.removeprefix("uploads/") not in changed]
    assert all(e2[k] == e1[k].reused() for k in same)

    # Every object of the second snapshot, from Azure, is byte-identical to the origin's; the
    # deleted ones still come back from the first snapshot (the multipart one by recovery key).
    for key, entry in e2.items():
        assert plaintext(snap, stores["azure"], entry) == snap.objects[key[len("uploads/"):]]
    for key, data in gone.items():
        assert plaintext(snap, stores["s3"], e1[f"uploads/{key}"]) == data
    big = e2["uploads/exports/archive.tar"]
    assert big.size == LARGE_SIZE and not big.new
    assert plaintext(snap, stores["gcs"], big,
                     recovery_private_key_pem=snap.recovery_private) == \
        snap.objects["exports/archive.tar"]


def test_content_names_and_metadata_reveal_nothing(snap):
    summary = backup_snapshot(snap.settings, "assets", T0)
    assert summary.ok
    stores = dict(open_stores(snap.settings, Access.READ))
    digests = {hashlib.sha256(v).hexdigest() for v in snap.objects.values()}
    names = set()
    for name, store in stores.items():
        for key in itertools.islice(content(store), 25):
            cid = layout.content_id_of("staging", "assets", key)
            assert cid is not None and len(cid) == 32
            names.add(cid)
            assert not any(d.startswith(cid) or cid in d for d in digests)
            info = store.stat(key)
            # Only what the stores themselves set; no name, key, hash or backup id of ours.
            leaked = {k: v for k, v in info.metadata.items()
                      if not k.lower().startswith(("x-ms-", "content-"))}
            assert not leaked, (name, leaked)
    # The manifest and index keys name no object either.
    manifest = stores["s3"].get_bytes(summary.manifest_key).decode()
    assert not any(k in manifest for k in snap.objects)
    assert "uploads/users" not in manifest


def test_a_store_that_dies_mid_snapshot_gets_no_manifest(snap, monkeypatch):
    """Azure's container is deleted after a few content uploads (real Azurite errors from
    then on) and created again at once: the index reaches Azure, but Azure lacks content the
    snapshot references, so it must get no manifest; S3 and GCS complete."""
    stores = dict(open_stores(snap.settings, Access.WRITE))
    azure = stores["azure"]
    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    container = snap.buckets.azure_url.rsplit("/", 1)[1]
    real_put = azure.put_stream
    calls = itertools.count()

    def put_stream(key, chunks, **kw):
        if next(calls) == 10:
            service.delete_container(container)
            try:
                return real_put(key, chunks, **kw)
            finally:
                service.create_container(container)
        return real_put(key, chunks, **kw)

    monkeypatch.setattr(azure, "put_stream", put_stream)
    summary = backup_snapshot(snap.settings, "assets", T0, stores=stores, workers=1)
    assert not summary.ok
    assert summary.destinations["azure"].status == "failed"
    assert "content upload failed" in summary.destinations["azure"].error
    for name in ("s3", "gcs"):
        assert summary.destinations[name].status == "verified"
        manifest = Manifest.from_json(stores[name].get_bytes(summary.manifest_key))
        assert manifest.destinations["azure"].status == "failed"
        assert manifest.contents["objects"] == len(snap.objects)
    azure_keys = {i.key for i in azure.list("application/")}
    assert summary.body_key in azure_keys  # the index went through...
    assert summary.manifest_key not in azure_keys  # ...but does not count there


def test_the_time_limit_leaves_a_snapshot_the_next_run_completes(snap, capsys, monkeypatch):
    stores = dict(open_stores(snap.settings, Access.WRITE))
    ticks = itertools.count()
    deadline = Deadline(uploads_until=60, listing_until=10**9,
                        clock=lambda: float(next(ticks)))
    part = backup_snapshot(snap.settings, "assets", T0, deadline=deadline, workers=2)
    c = part.contents
    assert part.ok and not c["complete"] and 0 < c["new_objects"] < len(snap.objects)
    for store in stores.values():
        assert len(content(store)) == c["new_objects"]
    have = {name: content(s) for name, s in stores.items()}

    # The next run (the CLI, as the schedule runs it) continues: only what was missing moves.
    for k, v in snap.env().items():
        monkeypatch.setenv(k, v)
    assert main(["backup", "--source", "assets", "--time-limit", "600"]) == 0
    doc = json.loads(capsys.readouterr().out)
    c2 = doc["contents"]
    assert c2["complete"] and c2["base"] == part.backup_id
    assert c2["new_objects"] == len(snap.objects) - c["new_objects"]
    for name, store in stores.items():
        now = content(store)
        assert len(now) == len(snap.objects)
        assert set(have[name]) <= set(now)
        assert sum(v for k, v in now.items() if k not in have[name]) == \
            c2["uploaded_bytes"][name]
    # The incomplete one is no GFS backup: the complete one is the year's first.
    assert part.tier == "yearly" and doc["tier"] == "yearly"


def test_log_drain_prefixes_are_one_snapshot(snap, capsys, monkeypatch):
    for k, v in snap.env().items():
        monkeypatch.setenv(k, v)
    assert main(["backup", "--source", "logs"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["body_key"].startswith("logs/staging/") and doc["data_class"] == "non-critical"
    assert doc["contents"]["objects"] == 6
    stores = dict(open_stores(snap.settings, Access.READ))
    entries = entries_of(snap, stores["s3"], doc["backup_id"], "logs")
    assert sorted(entries) == sorted(f"{p}/2026/03/0{d}/{p}.log" for p in
                                     ("application", "security") for d in (1, 2, 3))
    for entry in entries.values():
        # Logs compress: what is stored is far smaller than what was read.
        assert entry.stored_size < entry.size / 5
    assert main(["backup", "--source", "database", "--time-limit", "5"]) == 3
