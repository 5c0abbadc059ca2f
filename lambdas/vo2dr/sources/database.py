"""The PostgreSQL dump as a :class:`~vo2dr.sources.Source` (the logic stays in vo2dr.dump)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vo2dr.dump import Dump
from vo2dr.strategy import DataClass


class DatabaseSource:
    """One consistent ``pg_dump`` of a data class; the manifest records the server and
    pg_dump versions, the snapshot and every table with its row count."""

    kind = "database"

    def __init__(self, database_url: str, data_class: DataClass) -> None:
        from vo2dr.archive import TocReader

        self.dump = Dump(database_url, data_class)
        self.toc = TocReader()

    def __enter__(self) -> DatabaseSource:
        self.dump.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.dump.__exit__(*exc)

    def chunks(self) -> Iterator[bytes]:
        from vo2dr.backup import _tee

        return _tee(self.dump.chunks(), self.toc.feed)

    def unrestorable(self) -> str:
        """Why the archive could not be restored table by table as the manifest says."""
        from vo2dr.backup import archive_problem

        info = self.dump.info
        assert info is not None  # set on __enter__
        return archive_problem(self.toc, info.table_pairs)

    def manifest_fields(self) -> dict[str, Any]:
        info = self.dump.info
        assert info is not None  # set on __enter__
        return {"server_version": info.server_version, "pg_dump_version": info.pg_dump_version,
                "database": info.database, "snapshot": info.snapshot, "tables": info.tables}
