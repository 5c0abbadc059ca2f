"""Read the table of contents of a pg_dump custom-format archive, exactly.

``pg_restore --list`` prints each entry as ``ID; TABLEOID OID DESC SCHEMA NAME OWNER`` with the
names unquoted, so ``TABLE DATA Weird Schema t x postgres`` cannot be split back into schema,
table and owner. The archive itself stores every field as a length-prefixed string, so this
module reads the header and the TOC (the first part of the file, before any table data) and
gets every name, description and dependency exactly, whatever the names hold (spaces, quotes,
dots, semicolons, non-ASCII, line breaks).

Restores then select entries by their dump id in a ``pg_restore --use-list`` file: no name is
ever parsed back out of text. The format is pg_dump's (``pg_backup_archiver.c``: ``WriteHead``
and ``WriteToc``; ``pg_backup_custom.c``: the data offset after each entry); archive versions
1.12 (PostgreSQL 9.x) to 1.16 (PostgreSQL 17 and 18) are read.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vo2dr.exceptions import IntegrityError

MAGIC = b"PGDMP"
MIN_VERSION = (1, 12, 0)
MAX_VERSION = (1, 16, 0)
CUSTOM_FORMAT = 1
SECTION_DATA = 3
READ_SIZE = 1024 * 1024
# The TOC holds definitions, not data: even a schema of 100 000 objects stays far below this.
MAX_TOC_BYTES = 512 * 1024 * 1024
# PostgreSQL encoding names -> Python codecs, for the names in an archive not dumped as UTF8.
_CODECS = {"UTF8": "utf-8", "SQL_ASCII": "utf-8", "LATIN1": "latin-1", "LATIN2": "iso8859-2",
           "LATIN9": "iso8859-15", "WIN1250": "cp1250", "WIN1251": "cp1251",
           "WIN1252": "cp1252", "EUC_JP": "euc_jp", "SJIS": "shift_jis", "KOI8R": "koi8-r"}


class _NeedMore(Exception):
    """The buffer ends before the TOC does."""


@dataclass(frozen=True)
class TocEntry:
    dump_id: int
    desc: str  # "TABLE", "TABLE DATA", "SEQUENCE SET", "SCHEMA", "FK CONSTRAINT", ...
    namespace: str  # the schema ("" for objects in none)
    tag: str  # the object's name (a constraint's is "table constraint")
    owner: str
    deps: tuple[int, ...]
    has_data: bool  # a data entry (pg_dump wrote a data dumper for it)
    section: int = 0  # 1 none, 2 pre-data, 3 data, 4 post-data
    defn: str = ""


@dataclass(frozen=True)
class Toc:
    version: tuple[int, int, int]
    database: str
    server_version: str
    dump_version: str
    entries: tuple[TocEntry, ...]

    def by_id(self) -> dict[int, TocEntry]:
        return {e.dump_id: e for e in self.entries}

    def of(self, *descs: str) -> Iterator[TocEntry]:
        return (e for e in self.entries if e.desc in descs)

    def tables(self) -> set[tuple[str, str]]:
        """``(schema, table)`` of every TABLE entry (definitions)."""
        return {(e.namespace, e.tag) for e in self.of("TABLE")}

    def table_data(self) -> set[tuple[str, str]]:
        """``(schema, table)`` of every TABLE DATA entry (tables whose rows are archived)."""
        return {(e.namespace, e.tag) for e in self.of("TABLE DATA")}


def qualified(schema: str, table: str) -> str:
    """The manifest's name of a table: ``schema.table``, unquoted."""
    return f"{schema}.{table}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_name(schema: str, table: str) -> str:
    """``"schema"."table"``: the unambiguous spelling, as accepted by ``--table``."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def split_sql_name(text: str) -> tuple[str, str] | None:
    """``"Weird Schema"."t x"``, ``public."t x"`` or ``"t.x"`` (no schema) as
    ``(schema or "", table)``; ``None`` when ``text`` is not written with SQL quoting (then it
    is matched as a plain name). Unquoted parts are taken as written, not case-folded."""
    if '"' not in text:
        return None
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            j, buf = i + 1, []
            while True:
                k = text.find('"', j)
                if k < 0:
                    return None
                buf.append(text[j:k])
                if text[k + 1:k + 2] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            parts.append("".join(buf))
        else:
            k = text.find(".", i)
            k = n if k < 0 else k
            if '"' in text[i:k]:
                return None
            parts.append(text[i:k])
            i = k
        if i < n:
            if text[i] != ".":
                return None
            i += 1
            if i == n:
                return None
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


class _Reader:
    def __init__(self, buf: bytes | bytearray | memoryview) -> None:
        self.buf = memoryview(buf)
        self.pos = 0
        self.int_size = 4
        self.off_size = 8

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise _NeedMore
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        sign = self.byte()
        raw = self.take(self.int_size)
        value = int.from_bytes(raw, "little")
        return -value if sign else value

    def bytes_(self) -> bytes | None:
        length = self.int()
        if length < 0:
            return None
        if length > MAX_TOC_BYTES:
            raise IntegrityError(f"archive TOC holds a string of {length} bytes: not a TOC")
        return bytes(self.take(length))


def _parse(buf: bytes | bytearray | memoryview) -> Toc:
    r = _Reader(buf)
    if bytes(r.take(5)) != MAGIC:
        raise IntegrityError("not a pg_dump custom-format archive (no PGDMP header)")
    version = (r.byte(), r.byte(), r.byte())
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise IntegrityError(f"unsupported pg_dump archive version {'.'.join(map(str, version))}"
                             f" (this release reads 1.12 to 1.16)")
    r.int_size, r.off_size = r.byte(), r.byte()
    if not (1 <= r.int_size <= 8 and 1 <= r.off_size <= 8):
        raise IntegrityError("archive header has impossible integer sizes")
    if r.byte() != CUSTOM_FORMAT:
        raise IntegrityError("not a custom-format archive (pg_dump --format=custom)")
    if version >= (1, 15, 0):
        r.byte()  # compression algorithm
    else:
        r.int()  # compression level
    for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
        r.int()
    raw_head = [r.bytes_() or b"" for _ in range(3)]  # database, server, pg_dump versions
    count = r.int()
    if count < 0:
        raise IntegrityError("archive TOC has a negative entry count")
    raw: list[tuple[int, bool, list[bytes | None], int, tuple[int, ...]]] = []
    for _ in range(count):
        dump_id = r.int()
        if dump_id <= 0:
            raise IntegrityError(f"archive TOC entry id {dump_id} out of range")
        has_data = r.int() != 0
        r.bytes_()  # catalog tableoid
        r.bytes_()  # catalog oid
        tag, desc = r.bytes_(), r.bytes_()
        section = r.int()
        defn = r.bytes_()
        r.bytes_()  # drop statement
        r.bytes_()  # copy statement
        namespace = r.bytes_()
        r.bytes_()  # tablespace
        if version >= (1, 14, 0):
            r.bytes_()  # table access method
        if version >= (1, 16, 0):
            r.int()  # relkind
        owner = r.bytes_()
        r.bytes_()  # "false": with OIDs
        deps = []
        while (dep := r.bytes_()) is not None:
            try:
                deps.append(int(dep))
            except ValueError as exc:
                raise IntegrityError(f"archive TOC entry {dump_id} has a bad dependency") from exc
        flag = r.byte()  # the custom format's data offset: a state byte, then the offset
        if flag not in (1, 2, 3):
            raise IntegrityError(f"archive TOC entry {dump_id} has a bad data offset")
        r.take(r.off_size)
        raw.append((dump_id, has_data, [tag, desc, namespace, owner, defn], section,
                    tuple(deps)))
    encoding = "utf-8"
    for _, _, (_, desc, _, _, defn), _, _ in raw:
        if desc == b"ENCODING" and defn:
            pg = defn.decode("ascii", "replace").split("'")[1:2]
            encoding = _CODECS.get(pg[0].upper(), "utf-8") if pg else "utf-8"
    codecs.lookup(encoding)

    def text(b: bytes | None) -> str:
        return "" if b is None else b.decode(encoding, "surrogateescape")

    entries = tuple(TocEntry(dump_id=i, desc=text(f[1]), namespace=text(f[2]), tag=text(f[0]),
                             owner=text(f[3]), deps=deps, has_data=has, section=section,
                             defn=text(f[4]))
                    for i, has, f, section, deps in raw)
    return Toc(version=version, database=text(raw_head[0]), server_version=text(raw_head[1]),
               dump_version=text(raw_head[2]), entries=entries)


class TocReader:
    """Feed an archive's bytes in order (``feed``); ``toc`` is set as soon as the TOC is
    complete, and later bytes are ignored. Memory: the TOC's bytes only."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._next_try = 64 * 1024
        self.toc: Toc | None = None
        self.error: IntegrityError | None = None

    def feed(self, chunk: bytes) -> None:
        if self.toc is not None or self.error is not None:
            return
        self._buf += chunk
        if len(self._buf) >= self._next_try:
            self._try()

    def _try(self) -> None:
        try:
            self.toc = _parse(self._buf)
        except _NeedMore:
            if len(self._buf) > MAX_TOC_BYTES:
                self.error = IntegrityError("archive TOC is larger than "
                                            f"{MAX_TOC_BYTES} bytes: not a pg_dump TOC")
            self._next_try = len(self._buf) * 2  # re-parse at doubling sizes: linear overall
            return
        except IntegrityError as exc:
            self.error = exc
        self._buf = bytearray()

    def finish(self) -> Toc:
        """The TOC; raises :class:`IntegrityError` if the bytes held none."""
        if self.toc is None and self.error is None:
            try:
                self.toc = _parse(self._buf)
            except _NeedMore:
                self.error = IntegrityError("the archive ends inside its TOC (truncated)")
            except IntegrityError as exc:
                self.error = exc
            self._buf = bytearray()
        if self.error is not None:
            raise self.error
        assert self.toc is not None
        return self.toc


def read_toc_chunks(chunks: Iterable[bytes]) -> Toc:
    reader = TocReader()
    for chunk in chunks:
        reader.feed(chunk)
        if reader.toc is not None or reader.error is not None:
            break
    return reader.finish()


def read_toc(path: str | Path) -> Toc:
    """The TOC of the archive file at ``path`` (reads only as far as the TOC goes)."""
    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while block := fh.read(READ_SIZE):
                yield block
    try:
        return read_toc_chunks(chunks())
    except OSError as exc:
        raise IntegrityError(f"cannot read the archive {path}: {exc}") from exc


def use_list(toc: Toc, keep: set[int]) -> str:
    """A ``pg_restore --use-list`` file restoring exactly the entries ``keep`` (dump ids), in
    the archive's order (pg_restore restores in the order of the file). pg_restore reads only
    the number before ``;`` on each line; the rest is a comment for people, with line breaks
    taken out of the names."""
    def clean(s: str) -> str:
        return s.replace("\n", " ").replace("\r", " ")
    return "".join(f"{e.dump_id}; {clean(e.desc)} {clean(e.namespace)} {clean(e.tag)}\n"
                   for e in toc.entries if e.dump_id in keep)
