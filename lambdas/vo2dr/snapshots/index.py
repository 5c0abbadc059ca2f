"""A snapshot's index: the plaintext of its encrypted body, as JSON Lines, written and read as
a stream so memory stays flat whatever the number of objects.

Line 1 is the :class:`Header` (``{"format": "vo2dr-snapshot-index/1", "source": ...,
"origins": {...}, "taken_at": iso, "base": id|null}``); then one :class:`Entry` per object,
in strictly increasing key order (the order every origin lists in, so the next snapshot
merge-joins this index with the origin's listing without holding either in memory).

An entry binds a key to its content object (random id), the plaintext SHA-256 and the stored
(ciphertext) SHA-256; the index is authenticated by the signed manifest's body digest, so a
reader that checks both hashes after decrypting knows the object is the one snapshotted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from vo2dr.exceptions import IntegrityError

FORMAT = "vo2dr-snapshot-index/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_ID = re.compile(r"^[0-9a-f]{32}$")
# A line longer than this is not an index line (keys are at most ~1 KB in every cloud).
MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class Header:
    source: str
    origins: Mapping[str, str]
    taken_at: str  # ISO 8601, UTC
    base: str | None = None  # backup id of the snapshot this one was deduplicated against
    format: str = FORMAT

    def to_line(self) -> bytes:
        doc = {"format": self.format, "source": self.source, "origins": dict(self.origins),
               "taken_at": self.taken_at, "base": self.base}
        return _dump(doc)


@dataclass(frozen=True)
class Entry:
    """One source object in a snapshot. ``key`` is ``<origin>/<object key>``; ``etag`` and
    ``version`` are the origin's (``version`` None where it has none); ``mtime`` ISO 8601.
    ``new`` is true when this snapshot uploaded the content, false when it reuses the base's."""

    key: str
    size: int
    etag: str
    version: str | None
    mtime: str
    sha256: str
    content: str
    stored_size: int
    stored_sha256: str
    new: bool = field(default=True)

    def to_line(self) -> bytes:
        return _dump(asdict(self))

    def same_source(self, size: int, etag: str, version: str | None, mtime: str) -> bool:
        """Whether an origin object with these facts is the one this entry recorded (then
        nothing is downloaded or uploaded again). ``version`` None: the listing gives none
        (S3's ListObjectsV2; the entry's version is the one the read was served), so size,
        ETag and mtime decide: any overwrite of a key changes its mtime."""
        same = (self.size, self.etag, self.mtime) == (size, etag, mtime)
        return same and (version is None or version == self.version)

    def reused(self) -> Entry:
        """This entry in a later snapshot that did not upload its content again."""
        return Entry(**{**asdict(self), "new": False})


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class IndexWriter:
    """Serialises a header and entries, checking key order as it goes (a broken order would
    make the next merge-join skip objects)."""

    def __init__(self, header: Header) -> None:
        self.header = header
        self._last: str | None = None
        self.objects = 0

    def header_line(self) -> bytes:
        return self.header.to_line()

    def line(self, entry: Entry) -> bytes:
        if self._last is not None and entry.key <= self._last:
            raise IntegrityError(f"index entries out of order: {entry.key!r} after "
                                 f"{self._last!r}")
        self._last = entry.key
        self.objects += 1
        return entry.to_line()


def write_index(header: Header, entries: Iterable[Entry]) -> Iterator[bytes]:
    """The index's plaintext, line by line (for tests and small tools; the snapshot source
    writes the same lines through an :class:`IndexWriter` while it uploads content)."""
    writer = IndexWriter(header)
    yield writer.header_line()
    for entry in entries:
        yield writer.line(entry)


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without the newline) out of arbitrarily cut chunks; holds at most one line plus
    one chunk."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        if len(pending) > MAX_LINE and b"\n" not in pending:
            raise IntegrityError(f"snapshot index line longer than {MAX_LINE} bytes")
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        raise IntegrityError("snapshot index is truncated: its last line has no newline")


def parse_header(line: bytes) -> Header:
    doc = _load(line, 1)
    if doc.get("format") != FORMAT:
        raise IntegrityError(f"snapshot index format {doc.get('format')!r} is not {FORMAT}")
    origins, base = doc.get("origins"), doc.get("base")
    if not isinstance(doc.get("source"), str) or not isinstance(origins, dict) \
            or not isinstance(doc.get("taken_at"), str) \
            or not (base is None or isinstance(base, str)):
        raise IntegrityError("snapshot index header is malformed")
    return Header(source=doc["source"], origins={str(k): str(v) for k, v in origins.items()},
                  taken_at=doc["taken_at"], base=base)


def parse_entry(line: bytes, number: int = 0) -> Entry:
    doc = _load(line, number)
    try:
        entry = Entry(**doc)
    except TypeError as exc:
        raise IntegrityError(f"snapshot index line {number} has the wrong fields") from exc
    ints = (entry.size, entry.stored_size)
    if not isinstance(entry.key, str) or not entry.key or "\x00" in entry.key \
            or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ints) \
            or not isinstance(entry.etag, str) or not isinstance(entry.mtime, str) \
            or not (entry.version is None or isinstance(entry.version, str)) \
            or not isinstance(entry.sha256, str) or not _HEX64.match(entry.sha256) \
            or not isinstance(entry.stored_sha256, str) \
            or not _HEX64.match(entry.stored_sha256) \
            or not isinstance(entry.content, str) or not _CONTENT_ID.match(entry.content) \
            or not isinstance(entry.new, bool):
        raise IntegrityError(f"snapshot index line {number} is malformed")
    return entry


def _load(line: bytes, number: int) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise IntegrityError(f"snapshot index line {number} is not JSON") from exc
    if not isinstance(doc, dict):
        raise IntegrityError(f"snapshot index line {number} is not an object")
    return doc


def read_index(chunks: Iterable[bytes]) -> tuple[Header, Iterator[Entry]]:
    """The header, and an iterator of the entries, from the index's plaintext chunks. Entries
    are parsed one at a time and checked to be in strictly increasing key order; a malformed
    or out-of-order line raises :class:`IntegrityError` when it is reached."""
    lines = split_lines(chunks)
    first = next(lines, None)
    if first is None:
        raise IntegrityError("snapshot index is empty: it has no header")
    header = parse_header(first)

    def entries() -> Iterator[Entry]:
        last: str | None = None
        for number, line in enumerate(lines, start=2):
            entry = parse_entry(line, number)
            if last is not None and entry.key <= last:
                raise IntegrityError(f"snapshot index line {number} is out of key order")
            last = entry.key
            yield entry

    return header, entries()
