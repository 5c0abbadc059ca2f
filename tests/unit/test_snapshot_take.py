"""Taking snapshots, without servers: a local directory as the origin, in-memory stores, the
real envelope encryption (recovery key only, so no KMS is needed) and real signed manifests.
What the servers add (S3 origins, the three clouds, KMS) is in tests/integration/snapshots."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from vo2dr import crypto, layout
from vo2dr.exceptions import ConfigError, IntegrityError, StoreError
from vo2dr.manifest import Manifest
from vo2dr.settings import Settings
from vo2dr.snapshots.content import ContentWriter, content_plaintext
from vo2dr.snapshots.index import Entry, read_index
from vo2dr.snapshots.origins import LocalOrigin, OriginObject, origin_order
from vo2dr.snapshots.take import (
    Deadline,
    Listed,
    SnapshotTake,
    backup_snapshot,
    choose_snapshot_tier,
    list_snapshots,
)
from vo2dr.stores.null import NullStore

from tests import signing_keys
from tests.unit.recovery_memstore import MemoryStore

PRIVATE, PUBLIC = crypto.generate_recovery_key(3072)
T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
STRATEGY = {
    "dataClasses": {
        "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
        "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
        "non-critical": {"tables": [], "rpoMinutes": 1440, "rtoMinutes": 1440,
                         "dailyAtUtc": "03:00"},
    },
}


def settings_for(origin_dir: Path, kind: str = "assets") -> Settings:
    app = {kind: {"dataClass": "critical" if kind == "assets" else "non-critical",
                  "origins": {"uploads": f"file://{origin_dir}"}}}
    return Settings(environment="staging", recovery_public_key=PUBLIC.decode(),
                    strategy_json=json.dumps({**STRATEGY, "application": app}),
                    **signing_keys.SETTINGS)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def origin(tmp_path) -> Path:
    root = tmp_path / "uploads"
    for i in range(40):
        write(root / f"u{i % 4}" / f"img-{i:03d}.jpg", os.urandom(1000 + i))
    write(root / "a-b" / "x.txt", b"dash sorts before slash")
    write(root / "a" / "y.txt", b"a directory")
    write(root / "big.bin", os.urandom(3 * 1024 * 1024 + 17))
    write(root / "same-1.txt", b"identical bytes")
    write(root / "same-2.txt", b"identical bytes")
    return root


def stores() -> dict[str, MemoryStore]:
    return {"s3": MemoryStore("s3"), "gcs": MemoryStore("gcs")}


def snapshot(origin_dir: Path, st, when: datetime, **kw):
    return backup_snapshot(settings_for(origin_dir), "assets", when, stores=st,
                           recovery_key_pem=PRIVATE, **kw)


def content_keys(store: MemoryStore) -> dict[str, int]:
    prefix = layout.content_prefix("staging", "assets")
    return {k: len(v) for k, v in store.objects.items() if k.startswith(prefix)}


def index_of(store: MemoryStore, summary) -> list[Entry]:
    from vo2dr.verify import _decompress

    body = store.objects[summary.body_key]
    plain = _decompress(crypto.decrypt_stream([body], recovery_private_key_pem=PRIVATE),
                        "zstd")
    header, entries = read_index(plain)
    assert header.source == "assets"
    return list(entries)


def test_first_snapshot_uploads_everything_the_second_only_what_changed(origin):
    st = stores()
    first = snapshot(origin, st, T0)
    assert first.ok, first.error
    files = sorted(str(p.relative_to(origin)) for p in origin.rglob("*") if p.is_file())
    c = first.contents
    assert (c["objects"], c["new_objects"], c["complete"], c["base"]) == (
        len(files), len(files), True, None)
    assert c["bytes"] == c["new_bytes"] == sum((origin / f).stat().st_size for f in files)
    for s in st.values():
        stored = content_keys(s)
        assert len(stored) == len(files)  # one content object per file, identical ones too
        assert c["uploaded_bytes"][s.name] == sum(stored.values())
    entries = index_of(st["s3"], first)
    assert [e.key for e in entries] == sorted(f"uploads/{f}" for f in files)
    assert all(e.new for e in entries)
    same = {e.key: e for e in entries if "same-" in e.key}
    # Identical plaintext, different names: a name confirms nothing about a file.
    assert same["uploads/same-1.txt"].content != same["uploads/same-2.txt"].content
    assert same["uploads/same-1.txt"].sha256 == same["uploads/same-2.txt"].sha256

    # ~1 % of the bytes change: one file rewritten, two deleted, one added.
    before = {k: v for k, v in content_keys(st["s3"]).items()}
    write(origin / "u1" / "img-001.jpg", os.urandom(1001))
    os.utime(origin / "u1" / "img-001.jpg", (1, 1))
    (origin / "u2" / "img-002.jpg").unlink()
    (origin / "u3" / "img-003.jpg").unlink()
    write(origin / "u0" / "new.jpg", os.urandom(5000))
    second = snapshot(origin, st, T0 + timedelta(hours=1))
    assert second.ok, second.error
    c2 = second.contents
    assert (c2["objects"], c2["new_objects"], c2["new_bytes"], c2["base"]) == (
        len(files) - 1, 2, 1001 + 5000, first.backup_id)
    for s in st.values():
        added = {k: v for k, v in content_keys(s).items() if k not in before}
        assert len(added) == 2, s.name  # measured in the store, not by our counters
        assert sum(added.values()) == c2["uploaded_bytes"][s.name]
        assert sum(added.values()) < 1.05 * (1001 + 5000) + 2 * 2048  # header + signature
    entries2 = {e.key: e for e in index_of(st["s3"], second)}
    old = {e.key: e for e in entries}
    assert "uploads/u2/img-002.jpg" not in entries2
    assert entries2["uploads/u1/img-001.jpg"].content != old["uploads/u1/img-001.jpg"].content
    assert entries2["uploads/u0/new.jpg"].new
    unchanged = [k for k in entries2 if k in old and k != "uploads/u1/img-001.jpg"]
    assert all(entries2[k] == old[k].reused() for k in unchanged)
    assert second.tier == layout.INTRADAY and first.tier == "yearly"

    # Every entry's content decrypts (recovery key only) to the file's bytes.
    for key, e in entries2.items():
        stored = st["gcs"].objects[layout.content_key("staging", "assets", e.content)]
        plain = b"".join(content_plaintext([stored], e, environment="staging",
                                           source="assets", recovery_private_key_pem=PRIVATE))
        assert plain == (origin / key.removeprefix("uploads/")).read_bytes(), key


def test_a_failed_store_gets_no_manifest_and_the_next_run_takes_a_full_snapshot(origin):
    class DiesAfter(MemoryStore):
        def __init__(self, name, puts):
            super().__init__(name)
            self.puts = puts

        def put_stream(self, key, chunks, **kw):
            self.puts -= 1
            if self.puts < 0:
                list(chunks)
                raise StoreError(f"{self.name}: connection reset", store=self.name)
            return super().put_stream(key, chunks, **kw)

    st = {"s3": MemoryStore("s3"), "azure": DiesAfter("azure", 5)}
    summary = snapshot(origin, st, T0, workers=1)
    assert not summary.ok
    assert summary.destinations["s3"].status == "verified"
    assert summary.destinations["azure"].status == "failed"
    assert "connection reset" in summary.destinations["azure"].error
    assert summary.manifest_key in st["s3"].objects
    assert summary.manifest_key not in st["azure"].objects
    # The failed store got nothing after its failure.
    assert len(content_keys(st["azure"])) == 5
    manifest = Manifest.from_json(st["s3"].objects[summary.manifest_key])
    assert manifest.destinations["azure"].status == "failed"
    # No snapshot is in both stores: the next one has no base and uploads everything again.
    st["azure"].puts = 10**6
    again = snapshot(origin, st, T0 + timedelta(minutes=5))
    assert again.ok and again.contents["base"] is None
    assert again.contents["new_objects"] == again.contents["objects"]
    # ...and the one after that deduplicates against it in both.
    third = snapshot(origin, st, T0 + timedelta(minutes=10))
    assert third.contents["base"] == again.backup_id and third.contents["new_objects"] == 0
    assert third.contents["uploaded_bytes"] == {"s3": 0, "azure": 0}


def test_every_store_failing_fails_the_snapshot_without_a_manifest(origin):
    st = stores()
    for s in st.values():
        s.down = True
    with pytest.raises(StoreError):
        snapshot(origin, st, T0)
    assert all(not s.objects for s in st.values())


def test_the_deadline_leaves_an_incomplete_snapshot_that_the_next_run_completes(origin):
    st = stores()
    ticks = itertools.count()
    # Each look at the clock is one tick: uploads stop after about 10 objects were taken.
    deadline = Deadline(uploads_until=20, listing_until=10**9,
                        clock=lambda: float(next(ticks)))
    part = snapshot(origin, st, T0, deadline=deadline, workers=1)
    assert part.ok and not part.contents["complete"]
    n_first = part.contents["new_objects"]
    total = part.contents["objects"] + part.contents["skipped"]
    assert 0 < n_first < total
    assert any("incomplete" in w for w in part.warnings)
    assert len(content_keys(st["s3"])) == n_first

    rest = snapshot(origin, st, T0 + timedelta(minutes=30))
    c = rest.contents
    assert rest.ok and c["complete"] and c["base"] == part.backup_id
    assert c["objects"] == total and c["new_objects"] == total - n_first
    for s in st.values():
        assert len(content_keys(s)) == total  # nothing uploaded twice
    # The incomplete snapshot did not count for the tier: the complete one is the year's first.
    assert part.tier == "yearly" and rest.tier == "yearly"
    again = snapshot(origin, st, T0 + timedelta(minutes=40))
    assert again.tier == layout.INTRADAY and again.contents["new_objects"] == 0


def test_a_listing_cut_short_carries_the_rest_of_the_base_over(origin):
    st = stores()
    first = snapshot(origin, st, T0)
    ticks = itertools.count()
    deadline = Deadline(uploads_until=10**9, listing_until=15,
                        clock=lambda: float(next(ticks)))
    cut = snapshot(origin, st, T0 + timedelta(hours=1), deadline=deadline)
    c = cut.contents
    assert not c["complete"] and c["carried"] > 0
    assert c["objects"] == first.contents["objects"] and c["new_objects"] == 0


def test_tier_counts_complete_snapshots_only_and_reads_few_manifests():
    def listed(t: datetime, bid: str) -> Listed:
        return Listed(layout.BackupRef("staging", "daily", "critical", t, bid, "assets"),
                      frozenset({"s3"}))

    day1 = [listed(T0 - timedelta(days=1, hours=h), f"{h:012x}") for h in range(20)]
    asked: list[str] = []

    def complete(s: Listed) -> bool:
        asked.append(s.ref.backup_id)
        return s.ref.backup_id != day1[0].ref.backup_id  # the newest is incomplete

    assert choose_snapshot_tier(T0, day1, complete) == "daily"
    assert len(asked) <= 3
    assert choose_snapshot_tier(T0, day1, lambda s: False) == "yearly"
    today = [listed(T0 - timedelta(hours=1), "0" * 12)]
    assert choose_snapshot_tier(T0, today + day1, lambda s: s in today) == layout.INTRADAY
    assert choose_snapshot_tier(T0, today, lambda s: False) == "yearly"


def test_the_index_streams_with_bounded_lookahead():
    """Memory flat by design: with an endless origin listing, reading the first index lines
    consumes only a bounded number of listed objects (the window), never the whole listing."""
    listed = [0]

    class Endless:
        name, url = "o", "test://o/"

        def list(self):
            for i in itertools.count():
                listed[0] += 1
                yield OriginObject(key=f"{i:09d}", size=3, etag=str(i), mtime="t")

        def open(self, obj):
            from vo2dr.snapshots.origins import Opened

            return Opened(iter([b"abc"]))

        def stat(self, key):
            return None

    writer = ContentWriter(environment="staging", source="assets", kms_key_id="",
                           recovery_public_key_pem=PUBLIC, cache=None)
    take = SnapshotTake("assets", origins={"o": Endless()}, stores={"n": NullStore("n")},
                        writer=writer, base=None, taken_at=T0, workers=2)
    with take:
        lines = take.chunks()
        got = list(itertools.islice(lines, 301))  # the header and 300 entries
        lines.close()
    assert len(got) == 301
    assert listed[0] <= 300 + 256 + 2  # at most the window ahead of what was yielded


def test_origins_keep_key_order():
    assert origin_order(["app", "app-2", "b"]) == ["app-2", "app", "b"]


def test_local_origin_lists_in_bucket_key_order(origin):
    keys = [o.key for o in LocalOrigin("uploads", str(origin)).list()]
    assert keys == sorted(keys) and "a-b/x.txt" in keys and keys.index("a-b/x.txt") < \
        keys.index("a/y.txt")


def test_snapshot_sources_refuse_other_kinds_and_unconfigured_ones(origin):
    with pytest.raises(ConfigError, match="not a snapshot source"):
        backup_snapshot(settings_for(origin), "code", stores=stores())
    with pytest.raises(ConfigError, match=r"application\.logs"):
        backup_snapshot(settings_for(origin), "logs", stores=stores())


def test_content_objects_carry_no_metadata_and_their_ids_are_random(origin):
    class Recording(MemoryStore):
        seen: list = []

        def put_stream(self, key, chunks, *, metadata=None, lock=None):
            self.seen.append((key, metadata, lock))
            return super().put_stream(key, chunks)

    st = {"s3": Recording("s3")}
    summary = snapshot(origin, st, T0)
    content = [(k, m, lk) for k, m, lk in Recording.seen
               if k.startswith(layout.content_prefix("staging", "assets"))]
    assert content and all(not m and lk is None for _, m, lk in content)
    digests = {hashlib.sha256((origin / p).read_bytes()).hexdigest()
               for p in ("same-1.txt", "big.bin")}
    names = {k.rsplit("/", 1)[1] for k, _, _ in content}
    assert not any(n in d for n in names for d in digests)
    assert summary.ok


def test_list_snapshots_ignores_content_and_foreign_keys(origin):
    st = stores()
    s1 = snapshot(origin, st, T0)
    found = list_snapshots(st, "staging", "assets")
    assert [x.ref.backup_id for x in found] == [s1.backup_id]
    assert found[0].stores == frozenset({"s3", "gcs"})


def test_postponed_uploads_never_bring_back_deleted_objects(origin):
    st = stores()
    first = snapshot(origin, st, T0)
    last = sorted(str(p.relative_to(origin)) for p in origin.rglob("*") if p.is_file())[-1]
    (origin / last).unlink()
    write(origin / "a" / "y.txt", b"changed, and postponed by the time limit")
    deadline = Deadline(uploads_until=-1, listing_until=10**9, clock=lambda: 0.0)
    part = snapshot(origin, st, T0 + timedelta(hours=1), deadline=deadline)
    c = part.contents
    assert not c["complete"] and c["skipped"] == 1 and c["carried"] == 0
    assert c["objects"] == first.contents["objects"] - 2 and c["new_objects"] == 0
    keys = {e.key for e in index_of(st["s3"], part)}
    assert f"uploads/{last}" not in keys and "uploads/a/y.txt" not in keys


def test_a_store_down_from_the_start_gets_nothing_and_the_others_complete(origin):
    st = stores()
    st["gcs"].down = True
    summary = snapshot(origin, st, T0)
    assert not summary.ok and summary.destinations["s3"].status == "verified"
    assert summary.destinations["gcs"].status == "failed"
    assert summary.manifest_key in st["s3"].objects and not st["gcs"].objects
    assert summary.contents["new_objects"] == summary.contents["objects"]
    # Back up: no snapshot is in both, so the next one is full again, in both.
    st["gcs"].down = False
    again = snapshot(origin, st, T0 + timedelta(minutes=5))
    assert again.ok and again.contents["base"] is None


def test_a_forged_base_index_fails_the_snapshot_which_writes_no_manifest(origin):
    """The base's index is read by the snapshot (the dedup), streamed, before its digests can
    be checked at its end. A same-key forgery of it (what a holder of its data key writes:
    same wrapped keys, context, suite and size, authentic to the SDK) claiming one object's
    content is another's is refused by the signed manifest's digests: the snapshot fails and
    writes no manifest, so the forged entry is never carried into a snapshot anyone reads."""
    from tests import forgery

    st = stores()
    first = snapshot(origin, st, T0)
    assert first.ok, first.error
    reader = st["s3"]  # the base is read from the first store
    body = reader.objects[first.body_key]
    entries = index_of(reader, first)
    a, b = entries[0].content, entries[1].content
    assert len(a) == len(b)
    plain = b"".join(crypto.decrypt_stream([body], recovery_private_key_pem=PRIVATE))
    index = forgery.zstandard.ZstdDecompressor().decompressobj().decompress(plain)
    swapped = index.replace(a.encode(), b"\0").replace(b.encode(), a.encode()).replace(
        b"\0", b.encode())
    assert swapped != index and len(swapped) == len(index)
    reader.objects[first.body_key] = forgery.same_size_forgery(body, PRIVATE, swapped)
    with pytest.raises(IntegrityError, match="the index differs from its signed manifest"):
        snapshot(origin, st, T0 + timedelta(hours=1))
    for s in st.values():
        assert [k for k in s.objects if k.endswith(".manifest.json")] == [first.manifest_key]
