"""The snapshot read side's pure parts: the index check against the manifest's counts, the
uniform reservoir sample, target paths that cannot escape the target, and the CLI's two
spellings of the source and the store."""

from __future__ import annotations

import argparse
import io
import json
import random
from collections import Counter

import pytest
from vo2dr.exceptions import ConfigError, RestoreError
from vo2dr.snapshots.cli import snapshot_kind, store_name
from vo2dr.snapshots.reader import check_index
from vo2dr.snapshots.restore import LocalTarget, S3Target
from vo2dr.snapshots.verify import reservoir

HEADER = {"format": "vo2dr-snapshot-index/1", "source": "assets", "origins": {},
          "taken_at": "2026-11-30T07:00:00Z", "base": None}


def _line(key: str, size: int, new: bool = True) -> dict:
    return {"key": key, "size": size, "etag": "e", "version": None,
            "mtime": "2026-11-30T06:00:00Z", "sha256": "a" * 64, "content": "b" * 32,
            "stored_size": size + 100, "stored_sha256": "c" * 64, "new": new}


def _index(*lines: dict, header: dict | None = None) -> io.BytesIO:
    return io.BytesIO(b"".join(json.dumps(x).encode() + b"\n"
                               for x in (header or HEADER, *lines)))


def test_check_index_agrees_with_its_manifest_or_says_what_differs():
    good = _index(_line("uploads/a", 3), _line("uploads/b", 4, new=False))
    contents = {"objects": 2, "bytes": 7, "new_objects": 1}
    assert check_index("assets", contents, good) == []
    assert check_index("assets", {**contents, "objects": 3}, good) == [
        "the index holds 2 objects, the manifest says 3"]
    assert "not 'logs'" in check_index("logs", contents, good)[0]
    dup = _index(_line("uploads/b", 3), _line("uploads/a", 4))
    assert "out of key order" in check_index("assets", {}, dup)[0]
    bad = _line("uploads/a", 3)
    bad["content"] = "../../database/x"
    assert "malformed" in check_index("assets", {}, _index(bad))[0]
    assert "format" in check_index("assets", {}, io.BytesIO(b'{"format": "x"}\n'))[0]


def test_reservoir_is_uniform_and_takes_all_when_fewer():
    lines = [{"key": str(i)} for i in range(10)]
    picked, seen = reservoir(iter(lines), 20, random.Random(0))
    assert seen == 10 and picked == lines
    counts: Counter[str] = Counter()
    rng = random.Random(7)
    for _ in range(3000):
        picked, _ = reservoir(iter(lines), 3, rng)
        assert len({p["key"] for p in picked}) == 3
        counts.update(p["key"] for p in picked)
    assert all(800 < counts[str(i)] < 1000 for i in range(10)), counts  # 900 expected each


def test_local_target_paths_stay_inside_and_non_empty_is_refused(tmp_path):
    t = LocalTarget(str(tmp_path / "t"))
    t.check_empty()  # missing is fine: it is created
    assert t.path_of("uploads/a/b.jpg") == tmp_path / "t" / "uploads" / "a" / "b.jpg"
    for evil in ("uploads/../../etc/passwd", "../x", "uploads//x", "./x", "a/.."):
        with pytest.raises(RestoreError):
            t.path_of(evil)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x").write_text("x")
    with pytest.raises(RestoreError, match="not empty"):
        t.check_empty()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RestoreError, match="not a directory"):
        LocalTarget(str(tmp_path / "file")).check_empty()


def test_s3_target_url():
    assert S3Target("s3://b/restored").prefix == "restored/"
    assert S3Target("s3://b").prefix == ""
    for bad in ("gs://b/p", "s3:///p", "s3://b/p?x=1"):
        with pytest.raises(ConfigError):
            S3Target(bad)


def test_cli_source_and_store_spellings():
    ns = argparse.Namespace
    assert snapshot_kind(ns(source="s3", kind="assets")) == "assets"
    assert snapshot_kind(ns(source="logs", kind="database")) == "logs"
    assert snapshot_kind(ns(source="s3", kind="code")) is None
    with pytest.raises(ConfigError):
        snapshot_kind(ns(source="logs", kind="assets"))
    assert store_name(ns(source="assets", store="gcs")) == "gcs"
    assert store_name(ns(source="azure", store=None)) == "azure"
    assert store_name(ns(source="all", store=None), allow_all=True) == "all"
    with pytest.raises(ConfigError):
        store_name(ns(source="s3", store="gcs"))
    with pytest.raises(ConfigError):
        store_name(ns(source="all", store=None))


def test_one_decryptor_serves_many_messages_and_keeps_every_check():
    from vo2dr.crypto import Decryptor, Encryptor, generate_recovery_key
    from vo2dr.exceptions import EncryptionError

    private, public = generate_recovery_key(3072)
    ctx = {"vo2dr:purpose": "snapshot-content", "vo2dr:environment": "staging",
           "vo2dr:source": "assets"}
    enc = Encryptor(kms_key_id="", recovery_public_key_pem=public, context=ctx)
    messages = [b"".join(enc.stream([bytes([i]) * 1000])) for i in range(5)]
    dec = Decryptor(recovery_private_key_pem=private)
    for i, m in enumerate(messages):
        assert b"".join(dec.stream([m], expected_context=ctx)) == bytes([i]) * 1000
    with pytest.raises(EncryptionError, match="encryption context"):
        b"".join(dec.stream([messages[0]], expected_context={**ctx, "vo2dr:source": "logs"}))
    bad = bytearray(messages[1])
    bad[-100] ^= 1
    with pytest.raises(EncryptionError):
        b"".join(dec.stream([bytes(bad)], expected_context=ctx))
    other, _ = generate_recovery_key(3072)
    with pytest.raises(EncryptionError):
        b"".join(Decryptor(recovery_private_key_pem=other).stream([messages[2]]))
