"""Sources: what is backed up. A source is to the job what a store is to the pipeline: one
small interface (:class:`Source`), one implementation per kind, one conformance suite
(``tests/integration/sources``).

* ``database`` (:mod:`vo2dr.sources.database`): the PostgreSQL dump of a data class;
* ``code`` (:mod:`vo2dr.sources.code`): every ref of the app's repository, as one git bundle;
* ``config`` (:mod:`vo2dr.sources.config`): the app's config files at the default branch's
  head and its environment secrets from AWS Secrets Manager, as one tar archive.

Every source feeds the same one-pass pipeline (:func:`vo2dr.backup.run_source_backup`):
plaintext -> zstd -> envelope encryption once -> every store at once -> manifest last. A source
yields its plaintext (:meth:`Source.chunks`), and then the facts its manifest records
(:meth:`Source.manifest_fields`). Those facts never hold a secret's value: secrets exist in
plaintext only inside the encrypted body.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, Protocol, cast

from vo2dr.layout import SOURCE_KINDS

APPLICATION_SOURCES = ("code", "config")
# The config archive holds secret values: its plaintext is kept in memory, never spooled to disk.
IN_MEMORY_LIMIT = 1 << 30
__all__ = ["APPLICATION_SOURCES", "SOURCE_KINDS", "Source", "check_contents", "plaintext_spool"]


class Source(Protocol):
    """One thing to back up. Use it as a context manager; iterate :meth:`chunks` once."""

    kind: str  # a key of vo2dr.layout.SOURCE_LAYOUT: the backup's key prefix and body suffix

    def __enter__(self) -> Source: ...

    def __exit__(self, *exc: object) -> None: ...

    def chunks(self) -> Iterator[bytes]:
        """The plaintext, in pieces. Raises a :class:`~vo2dr.exceptions.Vo2drError` (one-line
        message, never a secret) if the source cannot be read; the pipeline then aborts every
        upload and no manifest is written."""
        ...

    def manifest_fields(self) -> dict[str, Any]:
        """After :meth:`chunks` is exhausted: the manifest's source-specific fields (for an
        application source ``{"contents": {...}}``)."""
        ...

    def unrestorable(self) -> str:
        """After :meth:`chunks`: why what was read could not be restored ("" if it can); the
        pipeline then fails every copy instead of writing a manifest that would mislead."""
        ...


def check_contents(source: str, contents: dict[str, Any], plaintext: IO[bytes]) -> list[str]:
    """Problems between a decrypted, hash-checked plaintext (a seekable file) and what its
    manifest's ``contents`` say it holds; empty when they agree (verify, restore, drill)."""
    if source == "code":
        from vo2dr.sources.code import check_bundle

        return check_bundle(contents, plaintext)
    if source == "config":
        from vo2dr.sources.config import check_archive

        return check_archive(contents, plaintext)
    if source in ("assets", "logs"):  # a snapshot's index (vo2dr.snapshots)
        from vo2dr.snapshots.reader import check_index

        return check_index(source, contents, plaintext)
    return [f"unknown source {source!r} in the manifest"]


def plaintext_spool(source: str, directory: str | None = None) -> BinaryIO:
    """A private, seekable place for a decrypted application source: in memory for the config
    (secret values never touch the disk in clear), a deleted-on-close temporary file (mode
    0600, in ``directory`` or ``VO2DR_SPOOL_DIR``) for the code bundle."""
    if source == "config":
        return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_LIMIT))
    return tempfile.TemporaryFile(
        dir=directory or os.environ.get("VO2DR_SPOOL_DIR") or None)
