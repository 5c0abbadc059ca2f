"""Selecting from an archive's table of contents: which entries a ``--table`` or data-class
restore keeps (a ``pg_restore --use-list`` file naming entries by dump id), the schemas an old
archive uses without defining them, and ``--table`` names resolved against the manifest and
then, exactly, against the archive. The TOC is read by :mod:`vo2dr.archive` from the archive's
own length-prefixed fields, so names holding spaces, quotes, dots or non-ASCII letters never
confuse the selection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from vo2dr.archive import (
    SECTION_DATA,
    Toc,
    qualified,
    read_toc,
    split_sql_name,
    sql_name,
    use_list,
)
from vo2dr.exceptions import RestoreError
from vo2dr.manifest import Manifest

_DATA_DESCS = ("TABLE DATA", "SEQUENCE SET", "MATERIALIZED VIEW DATA", "LARGE OBJECTS",
               "BLOBS", "BLOB DATA", "BLOB", "BLOB METADATA")
_RELATION_TYPES = ("TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE")


# Every decision below reads the archive's own TOC (vo2dr.archive): exact names and dependencies,
# and the --use-list file names entries by dump id only, so no name is ever parsed from text.

_SCHEMA_ROOTS = ("SCHEMA", "EXTENSION")


def _selection(toc: Toc, tables: Iterable[tuple[str, str]]) -> tuple[set[int], list[str]]:
    """The dump ids restoring only ``tables`` (``(schema, table)``) and what belongs to them:
    what they depend on (schemas, types, functions), and every object that depends only on
    restored objects (sequences, defaults, indexes, constraints, triggers, comments; a foreign
    key only when both of its tables are restored). Other tables, views and large objects are
    left out. Also returns the foreign keys of selected tables that are left out (they
    reference a table that is not restored), for the output."""
    selected = set(tables)
    entries = {e.dump_id: e for e in toc.entries
               if e.section != SECTION_DATA and e.desc not in _DATA_DESCS}
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
        if (e.desc == "TABLE" and (e.namespace, e.tag) in selected) or e.desc in _SCHEMA_ROOTS:
            add_up(e.dump_id)
    table_ids = {e.dump_id for e in entries.values()
                 if e.desc == "TABLE" and (e.namespace, e.tag) in selected}
    changed = True
    while changed:
        changed = False
        for e in entries.values():
            if e.dump_id in keep or e.desc in _RELATION_TYPES or not e.deps:
                continue
            if all(d in keep for d in e.deps):
                keep.add(e.dump_id)
                changed = True
    left_out = sorted(f"{e.namespace}.{e.tag}" for e in entries.values()
                      if e.desc == "FK CONSTRAINT" and e.dump_id not in keep
                      and table_ids.intersection(e.deps))
    for e in toc.entries:  # the data: the selected tables' rows, the kept sequences' values
        if (e.desc == "TABLE DATA" and (e.namespace, e.tag) in selected) or (
                e.desc == "SEQUENCE SET" and keep.intersection(e.deps)):
            keep.add(e.dump_id)
    return keep, left_out


def selective_list(spool: Path, tables: Iterable[tuple[str, str]]) -> str:
    """A ``pg_restore --use-list`` file restoring only ``tables`` (see :func:`_selection`)."""
    toc = read_toc(spool)
    return use_list(toc, _selection(toc, tables)[0])


def missing_schemas(toc: Toc) -> list[str]:
    """Schemas the archive's objects live in but that it does not create. A dump of selected
    tables (``pg_dump --table``: class backups taken by earlier versions, which did not dump the
    whole schema) holds no SCHEMA entry, so a table in schema ``app`` would fail to restore
    into a fresh database without it. Current archives define every schema: none missing."""
    schema_entries = [e for e in toc.entries if e.section != SECTION_DATA]
    defined = {e.tag for e in schema_entries if e.desc == "SCHEMA"}
    used = {e.namespace for e in schema_entries
            if e.namespace not in ("", "-", "public", "pg_catalog")}
    return sorted(used - defined)


def resolve_tables(manifest: Manifest, wanted: Sequence[str]) -> list[str]:
    """``--table`` values as the manifest's qualified names, checked against the manifest
    before anything is downloaded. Spellings: ``users``, ``public.users`` (the manifest's
    ``schema.table``), or SQL-quoted ``"Weird Schema"."t x"`` / ``"t.x"`` for names holding
    dots or quotes. :func:`table_pairs` then resolves them exactly in the archive's TOC."""
    known = list(manifest.table_rows())
    out = []
    for name in wanted:
        hits = [k for k in known if _may_name(name, k)]
        if name in known:
            hits = [name]
        if len(hits) != 1:
            why = "is ambiguous" if hits else "is not in this backup"
            raise RestoreError(f"--table {name} {why}: the backup holds "
                               f"{', '.join(known) or 'no tables'}"
                               + (' (quote names holding dots: "schema"."table")' if hits
                                  else ""))
        out.append(hits[0])
    return sorted(set(out))


def _may_name(wanted: str, qualified_name: str) -> bool:
    """Whether ``wanted`` can name the table the manifest calls ``qualified_name``."""
    quoted = split_sql_name(wanted)
    if quoted is not None:
        schema, table = quoted
        return (qualified_name == qualified(schema, table) if schema
                else qualified_name.endswith("." + table))
    return qualified_name.endswith("." + wanted)


def table_pairs(toc: Toc, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The manifest's qualified names as the archive's exact ``(schema, table)``: the TOC is
    the only place that knows where the schema ends in ``a.b.c``."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for pair in sorted(toc.table_data() | toc.tables()):
        by_name.setdefault(qualified(*pair), []).append(pair)
    out = {}
    for name in names:
        pairs = by_name.get(name, [])
        data = [p for p in pairs if p in toc.table_data()]
        if len(data or pairs) != 1:
            raise RestoreError(f"table {name} is {'ambiguous' if pairs else 'not'} in the "
                               "archive: " + ", ".join(sql_name(*p) for p in pairs))
        out[name] = (data or pairs)[0]
    return out
