"""Selecting from an archive's table of contents: which entries a ``--table`` or data-class
restore keeps (:func:`selective_list`, a ``pg_restore --use-list`` file), the schemas an old
archive uses without defining them, and ``--table`` names resolved against the manifest."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vo2dr import pgtools
from vo2dr.exceptions import RestoreError, one_line
from vo2dr.manifest import Manifest
from vo2dr.verify import toc_listing

_DATA_DESCS = ("TABLE DATA", "SEQUENCE SET", "MATERIALIZED VIEW DATA", "LARGE OBJECTS",
               "BLOBS", "BLOB DATA", "BLOB")
_RELATION_TYPES = ("TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE")
_ENTRY_HEAD = re.compile(r"^-- TOC entry (\d+) \(class \d+ OID \d+\)$")
_ENTRY_DEPS = re.compile(r"^-- Dependencies: ([\d ]+)$")
_ENTRY_NAME = re.compile(r"^-- Name: (.*); Type: (.*); Schema: (.*); Owner: ?(.*)$")
_LIST_LINE = re.compile(r"^(\d+); \d+ \d+ (.*)$")


@dataclass
class _TocEntry:
    dump_id: int
    type: str = ""
    schema: str = ""
    name: str = ""
    deps: list[int] = field(default_factory=list)


def _schema_entries(spool: Path) -> dict[int, _TocEntry]:
    """The pre- and post-data entries with their dependencies, from ``pg_restore --schema-only
    --verbose`` (small: no table data)."""
    proc = subprocess.run([pgtools.pg_restore(), "--schema-only", "--verbose", "--file=-",
                           str(spool)], capture_output=True, text=True, env=pgtools.tool_env(),
                          check=False)
    if proc.returncode != 0:
        raise RestoreError(f"pg_restore cannot read the archive's schema: "
                           f"{one_line(proc.stderr)}")
    entries: dict[int, _TocEntry] = {}
    current: _TocEntry | None = None
    for line in proc.stdout.splitlines():
        if m := _ENTRY_HEAD.match(line):
            current = entries.setdefault(int(m[1]), _TocEntry(int(m[1])))
        elif current is not None and (m := _ENTRY_DEPS.match(line)):
            current.deps = [int(x) for x in m[1].split()]
        elif current is not None and (m := _ENTRY_NAME.match(line)):
            current.name, current.type, current.schema = m[1], m[2], m[3]
            current = None
    return entries


def selective_list(spool: Path, tables: Iterable[str]) -> str:
    """A ``pg_restore --use-list`` file restoring only ``tables`` (``schema.name``) and what
    belongs to them: what they depend on (schemas, types, functions), and every object that
    depends only on restored objects (sequences, defaults, indexes, constraints, triggers,
    comments; a foreign key only when both of its tables are restored). Other tables and
    views are left out."""
    return _selection(spool, tables)[0]


def _selection(spool: Path, tables: Iterable[str]) -> tuple[str, list[str]]:
    """:func:`selective_list`'s list, and the foreign keys of selected tables it leaves out
    (``schema.table constraint``: they reference a table that is not restored)."""
    selected = {tuple(t.split(".", 1)) for t in tables}
    entries = _schema_entries(spool)
    keep: set[int] = set()

    def add_up(i: int) -> None:
        stack = [i]
        while stack:
            j = stack.pop()
            if j in keep or j not in entries:
                continue
            keep.add(j)
            stack.extend(entries[j].deps)

    for e in entries.values():
        if (e.type == "TABLE" and (e.schema, e.name) in selected) or e.type in (
                "SCHEMA", "EXTENSION"):
            add_up(e.dump_id)
    changed = True
    while changed:
        changed = False
        for e in entries.values():
            if e.dump_id in keep or e.type in _RELATION_TYPES or not e.deps:
                continue
            if all(d in keep for d in e.deps):
                keep.add(e.dump_id)
                changed = True
    kept_sequences = {(e.schema, e.name) for e in entries.values()
                      if e.dump_id in keep and e.type == "SEQUENCE"}
    # "-- Name: workouts workouts_user_id_fkey; Type: FK CONSTRAINT": table, then constraint
    left_out = sorted(f"{e.schema}.{e.name.split(' ', 1)[0]} {e.name.split(' ', 1)[-1]}"
                      for e in entries.values()
                      if e.type == "FK CONSTRAINT" and e.dump_id not in keep
                      and (e.schema, e.name.split(" ", 1)[0]) in selected)

    out = []
    for line in toc_listing(spool).splitlines():
        m = _LIST_LINE.match(line)
        if not m:
            continue
        dump_id, rest = int(m[1]), m[2]
        desc = next((d for d in _DATA_DESCS if rest.startswith(d + " ")), None)
        if desc is None:
            if dump_id in keep:
                out.append(line)
            continue
        parts = rest[len(desc) + 1:].split(" ")
        key = (parts[0], parts[1]) if len(parts) >= 2 else None
        if (desc == "TABLE DATA" and key in selected) or (
                desc == "SEQUENCE SET" and key in kept_sequences):
            out.append(line)
    return "\n".join(out) + "\n", left_out


def missing_schemas(spool: Path) -> list[str]:
    """Schemas the archive's objects live in but that it does not create. A dump of selected
    tables (``pg_dump --table``: class backups taken by earlier versions, which did not dump the
    whole schema) holds no SCHEMA entry, so a table in schema ``app`` would fail to restore
    into a fresh database without it. Current archives define every schema: none missing."""
    entries = _schema_entries(spool).values()
    defined = {e.name for e in entries if e.type == "SCHEMA"}
    used = {e.schema for e in entries if e.schema not in ("", "-", "public", "pg_catalog")}
    return sorted(used - defined)


def resolve_tables(manifest: Manifest, wanted: Sequence[str]) -> list[str]:
    """``--table`` values (``users`` or ``public.users``) as the manifest's qualified names."""
    known = list(manifest.table_rows())
    out = []
    for name in wanted:
        if name in known:
            out.append(name)
            continue
        hits = [k for k in known if k.split(".", 1)[1] == name]
        if len(hits) != 1:
            why = "is ambiguous" if hits else "is not in this backup"
            raise RestoreError(f"--table {name} {why}: the backup holds "
                               f"{', '.join(known) or 'no tables'}")
        out.append(hits[0])
    return sorted(set(out))

