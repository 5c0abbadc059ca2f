"""The snapshot index: JSON Lines written and read as a stream, key order enforced both ways,
malformed lines refused; and the snapshot sources' settings and layout."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

import pytest
from vo2dr import layout
from vo2dr.exceptions import ConfigError, IntegrityError
from vo2dr.snapshots.index import (
    FORMAT,
    Entry,
    Header,
    IndexWriter,
    read_index,
    split_lines,
    write_index,
)
from vo2dr.strategy import load_strategy, parse_strategy, read_stack_file

HEADER = Header(source="assets", origins={"uploads": "s3://b/uploads/"},
                taken_at="2026-03-04T10:00:00+00:00", base=None)


def entry(i: int, **changes) -> Entry:
    doc = dict(key=f"uploads/{i:08d}.jpg", size=i, etag=f"e{i}", version=None,
               mtime="2026-03-04T09:00:00+00:00", sha256=hashlib.sha256(b"%d" % i).hexdigest(),
               content=f"{i:032x}", stored_size=i + 100,
               stored_sha256=hashlib.sha256(b"s%d" % i).hexdigest(), new=True)
    doc.update(changes)
    return Entry(**doc)


def test_index_round_trips_through_arbitrarily_cut_chunks():
    entries = [entry(i, key=f"uploads/ü/{i:03d} name.jpg") for i in range(50)]
    data = b"".join(write_index(HEADER, entries))
    assert data.split(b"\n", 1)[0].startswith(b'{"format":"' + FORMAT.encode())
    for cut in (1, 7, 4096):
        chunks = [data[i:i + cut] for i in range(0, len(data), cut)]
        header, it = read_index(chunks)
        assert header == HEADER
        assert list(it) == entries


def test_the_reader_is_lazy_and_holds_one_entry_at_a_time():
    """A generator of a million entries is read without materialising it: taking the first
    three consumes only a few lines of the (infinite) input."""
    consumed = [0]

    def endless():
        yield HEADER.to_line()
        for i in itertools.count():
            consumed[0] += 1
            yield entry(i).to_line()

    header, it = read_index(endless())
    assert header == HEADER
    assert [e.key for e in itertools.islice(it, 3)] == [entry(i).key for i in range(3)]
    assert consumed[0] <= 4


def test_the_writer_is_lazy_too():
    produced = [0]

    def entries():
        for i in itertools.count():
            produced[0] += 1
            yield entry(i)

    lines = write_index(HEADER, entries())
    assert len(list(itertools.islice(lines, 5))) == 5
    assert produced[0] == 4


def test_key_order_is_enforced_when_writing_and_reading():
    w = IndexWriter(HEADER)
    w.line(entry(2))
    with pytest.raises(IntegrityError, match="out of order"):
        w.line(entry(1))
    with pytest.raises(IntegrityError, match="out of order"):
        w.line(entry(2))
    data = HEADER.to_line() + entry(2).to_line() + entry(1).to_line()
    _, it = read_index([data])
    with pytest.raises(IntegrityError, match="out of key order"):
        list(it)


@pytest.mark.parametrize("line", [
    b"not json",
    b"[1]",
    b'{"key": "a"}',
    entry(1, content="../../etc").to_line().strip(),
    entry(1, sha256="A" * 64).to_line().strip(),
    entry(1, size=-1).to_line().strip(),
    entry(1, size=True).to_line().strip(),
    entry(1, key="").to_line().strip(),
])
def test_malformed_lines_are_refused(line):
    _, it = read_index([HEADER.to_line() + line + b"\n"])
    with pytest.raises(IntegrityError):
        list(it)


def test_truncation_and_foreign_headers_are_refused():
    with pytest.raises(IntegrityError, match="empty"):
        read_index([b""])
    with pytest.raises(IntegrityError, match="format"):
        read_index([b'{"format": "other/1"}\n'])
    data = HEADER.to_line() + entry(1).to_line()
    _, it = read_index([data[:-1]])
    with pytest.raises(IntegrityError, match="truncated"):
        list(it)
    with pytest.raises(IntegrityError, match="longer"):
        list(split_lines([b"x" * 70000]))


def test_unchanged_means_same_size_etag_version_and_mtime():
    e = entry(5)
    assert e.same_source(5, "e5", None, e.mtime)
    assert not e.same_source(6, "e5", None, e.mtime)
    assert not e.same_source(5, "e6", None, e.mtime)
    assert not e.same_source(5, "e5", "v2", e.mtime)
    assert e.same_source(5, "e5", None, e.mtime)  # a listing without versions
    versioned = entry(5, version="v1")
    assert versioned.same_source(5, "e5", "v1", e.mtime)
    assert versioned.same_source(5, "e5", None, e.mtime)
    assert not versioned.same_source(5, "e5", "v2", e.mtime)
    assert not e.same_source(5, "e5", None, "2026-03-04T09:00:01+00:00")
    assert e.reused().new is False and e.reused().content == e.content


# -- settings and layout ----------------------------------------------------------------------

CLASSES = {
    "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
    "non-critical": {"tables": [], "rpoMinutes": 1440, "rtoMinutes": 1440,
                     "dailyAtUtc": "03:00"},
}
SNAPS = {"assets": {"dataClass": "critical", "origins": {"uploads": "s3://up-b/uploads/"}},
         "logs": {"dataClass": "non-critical",
                  "origins": {"application": "s3://logs-b/application/",
                              "security": "gs://logs-b/security/",
                              "local": "file:///var/log/app"}}}


def test_snapshot_sources_parse_and_round_trip():
    s = parse_strategy(CLASSES, application=SNAPS)
    assert s.snapshot("assets").origins == {"uploads": "s3://up-b/uploads/"}
    assert s.source_class("logs").name == "non-critical"
    assert s.source_class("assets").rpo_minutes == 15
    assert load_strategy({"VO2DR_STRATEGY": s.to_json()}) == s
    # code/config settings are independent of the snapshot ones
    assert s.application is not None and s.application.sources() == {}


def test_the_non_critical_class_has_no_database_backup():
    s = parse_strategy(CLASSES)
    assert list(s.database_classes) == ["critical", "full"]
    assert not s.get("non-critical").is_full
    with pytest.raises(ConfigError, match=r"non-critical data class has no tables"):
        s.database_class("non-critical")
    assert s.database_class("full").is_full
    bad = {**CLASSES, "non-critical": {**CLASSES["non-critical"], "tables": ["users"]}}
    with pytest.raises(ConfigError, match=r"dataClasses\.non-critical\.tables must be \[\]"):
        parse_strategy(bad)


@pytest.mark.parametrize("source, change, key", [
    ("assets", {"dataClass": "gold"}, "application.assets.dataClass"),
    ("assets", {"origins": {}}, "application.assets.origins"),
    ("assets", {"origins": {"uploads": "http://x/y/"}}, "application.assets.origins.uploads"),
    ("assets", {"origins": {"uploads": "s3://b/uploads"}},
     "application.assets.origins.uploads"),
    ("assets", {"origins": {"uploads": "s3://k:s@bucket/u/"}},
     "application.assets.origins.uploads"),
    ("assets", {"origins": {"uploads": "s3://bucket/../u/"}},
     "application.assets.origins.uploads"),
    ("logs", {"origins": {"local": "file://host/dir"}}, "application.logs.origins.local"),
    ("logs", {"origins": {"Bad Name": "s3://bucket/x/"}}, "application.logs.origins"),
    ("logs", {"retention": 3}, "application.logs.retention"),
])
def test_bad_snapshot_settings_name_the_key(source, change, key):
    app = {**SNAPS, source: {**SNAPS[source], **change}}
    with pytest.raises(ConfigError) as err:
        parse_strategy(CLASSES, application=app)
    assert f"vo2max-dr:{key}" in str(err.value)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_both_stacks_configure_assets_logs_and_the_non_critical_class(stack):
    raw = read_stack_file(f"Pulumi.{stack}.yaml")
    s = parse_strategy(raw["dataClasses"], raw["retention"], raw["immutability"],
                       raw["application"])
    assert s.source_class("assets").name == "important"
    logs = s.snapshot("logs")
    assert logs.data_class == "non-critical" and set(logs.origins) == {"application",
                                                                       "security"}
    nc = s.get("non-critical")
    assert (nc.rpo_minutes, nc.rto_minutes, nc.has_database) == (1440, 1440, False)
    assert "non-critical" not in s.database_classes


def test_snapshot_keys_follow_the_layout():
    when = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
    for source, prefix in (("assets", "application/production/assets/"),
                           ("logs", "logs/production/")):
        for tier in layout.TIERS:
            ref = layout.BackupRef("production", tier, "important", when, "0123456789ab",
                                   source)
            assert ref.body_key == (f"{prefix}{tier}/important/20260304T101500Z-0123456789ab"
                                    ".index.enc")
            assert layout.parse_key(ref.body_key) == (ref, "body")
            assert layout.parse_key(ref.manifest_key) == (ref, "manifest")
            assert layout.is_intraday_key(ref.body_key) == (tier == layout.INTRADAY)
        cid = layout.new_content_id()
        assert len(cid) == 32 and cid != layout.new_content_id()
        key = layout.content_key("production", source, cid)
        assert key == f"{prefix}content/{cid}"
        assert layout.content_prefix("production", source) == f"{prefix}content/"
        assert layout.prune_prefix("production", source) == f"{prefix}prune/"
        assert layout.parse_key(key) is None and not layout.is_intraday_key(key)
        assert layout.content_id_of("production", source, key) == cid
        assert layout.content_id_of("production", source, key + "x") is None
        assert layout.may_hold_intraday(prefix)
    assert layout.may_hold_intraday("logs/")
    with pytest.raises(ValueError):
        layout.content_key("production", "assets", "A" * 32)
    with pytest.raises(ConfigError):
        layout.content_prefix("production", "code")
