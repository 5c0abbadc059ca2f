"""The catalog: every backup of an environment, across all enabled stores, merged by backup id.

A backup *counts* in a store only when that store holds a complete copy: the body and the
manifest (the manifest is written last, after the body was verified). The catalog is built
from listings alone (no object is read), so it is cheap enough for ``vo2dr status`` every few
minutes. "Latest" is a listing too: the layout has no mutable pointer.

A store that cannot be listed does not fail the catalog: its error is recorded in
:attr:`Catalog.errors` and the other stores still answer (restore from GCS while S3 is down).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vo2dr.exceptions import StoreError, Vo2drError
from vo2dr.layout import BackupRef, environment_prefix, format_timestamp, parse_key
from vo2dr.stores.base import BackupStore, ObjectInfo

_BACKUP_ID = re.compile(r"^[0-9a-f]{4,12}$")


class BackupNotFound(Vo2drError):
    """No backup matches what was asked (id, latest, --before) in the stores searched."""


@dataclass
class StoreCopy:
    """One store's objects for one backup."""

    store: str
    body: ObjectInfo | None = None
    manifest: ObjectInfo | None = None

    @property
    def complete(self) -> bool:
        return self.body is not None and self.manifest is not None

    @property
    def state(self) -> str:
        if self.complete:
            return "complete"
        if self.body is not None:
            return "no-manifest"  # upload in progress, or a failed backup: does not count
        return "manifest-only"  # body missing: never valid


@dataclass
class CatalogEntry:
    """One backup id and its copies, keyed by store name."""

    ref: BackupRef
    copies: dict[str, StoreCopy] = field(default_factory=dict)
    # Keys of this backup id that do not match ``ref`` in another store (should never happen).
    conflicts: list[str] = field(default_factory=list)

    @property
    def backup_id(self) -> str:
        return self.ref.backup_id

    @property
    def data_class(self) -> str:
        return self.ref.data_class

    @property
    def timestamp(self) -> datetime:
        return self.ref.timestamp

    def complete_in(self, store: str) -> bool:
        copy = self.copies.get(store)
        return copy is not None and copy.complete

    def complete_stores(self, order: Iterable[str] | None = None) -> list[str]:
        names = list(order) if order is not None else sorted(self.copies)
        return [n for n in names if self.complete_in(n)]

    def to_json(self, order: Iterable[str]) -> dict[str, Any]:
        order = list(order)
        return {
            "backup_id": self.backup_id,
            "data_class": self.data_class,
            "tier": self.ref.tier,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "body_key": self.ref.body_key,
            "complete_in": self.complete_stores(order),
            "stores": {
                name: {
                    "state": self.copies[name].state if name in self.copies else "missing",
                    "bytes": _body_size(self.copies.get(name)),
                }
                for name in order
            },
            **({"conflicts": self.conflicts} if self.conflicts else {}),
        }


@dataclass
class Catalog:
    environment: str
    stores: tuple[str, ...]  # the stores asked, primary first
    entries: list[CatalogEntry]  # oldest first
    errors: dict[str, str] = field(default_factory=dict)  # store -> why it could not be listed

    def for_class(self, data_class: str | None) -> list[CatalogEntry]:
        return [e for e in self.entries if data_class is None or e.data_class == data_class]

    def find(self, backup_id: str) -> CatalogEntry:
        """The backup with this id, or a unique id prefix of at least 4 hex digits."""
        wanted = backup_id.strip().lower()
        if not _BACKUP_ID.match(wanted):
            raise BackupNotFound(
                f"{backup_id!r} is not a backup id: give the 12 hex digits shown by `vo2dr list`,"
                " or `latest`")
        hits = [e for e in self.entries if e.backup_id.startswith(wanted)]
        if not hits:
            raise BackupNotFound(
                f"no backup {backup_id} in {self._where()}{self._error_hint()}")
        if len(hits) > 1:
            ids = ", ".join(e.backup_id for e in hits)
            raise BackupNotFound(f"backup id prefix {backup_id} is ambiguous: {ids}")
        return hits[0]

    def latest(self, data_class: str, *, store: str | None = None,
               before: datetime | None = None) -> CatalogEntry:
        """The newest backup of ``data_class`` complete in ``store`` (in any store if None),
        taken at or before ``before`` when given."""
        candidates = [
            e for e in self.for_class(data_class)
            if (e.complete_in(store) if store else bool(e.complete_stores(self.stores)))
            and (before is None or e.timestamp <= before)
        ]
        if not candidates:
            cond = f" taken at or before {format_timestamp(before)}" if before else ""
            where = f"store {store}" if store else self._where()
            raise BackupNotFound(
                f"no complete {data_class} backup{cond} in {where}{self._error_hint()}")
        return max(candidates, key=lambda e: (e.timestamp, e.backup_id))

    def resolve(self, spec: str | None, *, data_class: str, store: str | None = None,
                before: datetime | None = None) -> CatalogEntry:
        """``spec`` is a backup id or ``latest`` (``None`` means latest); ``before`` narrows
        latest to a point in time. An id must be complete in ``store`` when one is given."""
        if spec and spec != "latest":
            if before is not None:
                raise BackupNotFound("give either --backup ID or --before TIMESTAMP, not both")
            entry = self.find(spec)
            if store and not entry.complete_in(store):
                copy = entry.copies.get(store)
                state = copy.state if copy else "missing"
                others = ", ".join(entry.complete_stores(self.stores)) or "none listed"
                raise BackupNotFound(
                    f"backup {entry.backup_id} is not complete in {store} ({state}); "
                    f"complete copies: {others}")
            return entry
        return self.latest(data_class, store=store, before=before)

    def _where(self) -> str:
        return "stores " + ", ".join(self.stores) if self.stores else "no store"

    def _error_hint(self) -> str:
        if not self.errors:
            return ""
        return " (could not list: " + "; ".join(f"{k}: {v}" for k, v in self.errors.items()) + ")"

    def to_json(self, data_class: str | None = None) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "stores": list(self.stores),
            "errors": self.errors,
            "backups": [e.to_json(self.stores) for e in self.for_class(data_class)],
        }


def _list_store(store: BackupStore, prefix: str) -> list[ObjectInfo]:
    return list(store.list(prefix))


def build_catalog(stores: Mapping[str, BackupStore], environment: str, *,
                  data_class: str | None = None, source: str = "database") -> Catalog:
    """List every store (concurrently) and merge the layout's keys by backup id.

    ``source`` is what was backed up (``database``, or an application source such as
    ``code``: see :mod:`vo2dr.sources`); each has its own prefix. Keys outside the layout are
    ignored. A store whose listing fails is recorded in ``errors`` and left out; the catalog
    of the others is still returned."""
    prefix = environment_prefix(environment, source)
    names = tuple(stores)
    listings: dict[str, list[ObjectInfo]] = {}
    errors: dict[str, str] = {}
    if names:
        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="vo2dr-list") as pool:
            futures = {n: pool.submit(_list_store, stores[n], prefix) for n in names}
            for name, fut in futures.items():
                try:
                    listings[name] = fut.result()
                except StoreError as exc:
                    errors[name] = str(exc)
    by_id: dict[str, CatalogEntry] = {}
    for name in names:
        for info in listings.get(name, ()):
            parsed = parse_key(info.key)
            if parsed is None:
                continue
            ref, kind = parsed
            if data_class is not None and ref.data_class != data_class:
                continue
            entry = by_id.get(ref.backup_id)
            if entry is None:
                entry = by_id[ref.backup_id] = CatalogEntry(ref=ref)
            elif entry.ref != ref:
                entry.conflicts.append(f"{name}:{info.key}")
                continue
            copy = entry.copies.setdefault(name, StoreCopy(store=name))
            if kind == "body":
                copy.body = info
            else:
                copy.manifest = info
    entries = sorted(by_id.values(), key=lambda e: (e.timestamp, e.backup_id))
    return Catalog(environment=environment, stores=names, entries=entries, errors=errors)


_TS_FORMATS = ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
               "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def parse_point_in_time(text: str) -> datetime:
    """``--before`` values: ISO 8601 (``2025-01-15T14:30:00Z``, ``2025-01-15 14:30``, with an
    offset or without one, meaning UTC) or the layout's ``20250115T143000Z``."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        when = None
        for fmt in _TS_FORMATS:
            try:
                when = datetime.strptime(raw, fmt)
                break
            except ValueError:
                continue
    if when is None:
        raise BackupNotFound(
            f"cannot read the time {text!r}: use ISO 8601 such as 2025-01-15T14:30:00Z "
            "(UTC when no offset is given)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _body_size(copy: StoreCopy | None) -> int | None:
    return copy.body.size if copy is not None and copy.body is not None else None
