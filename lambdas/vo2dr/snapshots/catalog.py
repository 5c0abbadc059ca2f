"""The snapshots of a source (``assets``, ``logs``): what ``vo2dr list --kind assets`` shows,
and which snapshot ``--snapshot ID|latest`` and ``--at TIME`` mean.

A snapshot is a backup of the layout (an index body and a signed manifest): the catalog of
:mod:`vo2dr.catalog` finds them by listing. Its facts (object count, bytes, new bytes, whether
it is complete) are in the signed manifest's ``contents``: each is read (one small GET) and
its signature checked before a number of it is shown or believed.

An incomplete snapshot (the run hit its time limit and wrote ``complete: false``; the next run
continues from it) is listed as partial, is never ``latest``, and is restored only on request
(``--allow-incomplete``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vo2dr.catalog import BackupNotFound, Catalog, CatalogEntry, build_catalog
from vo2dr.exceptions import ConfigError, IntegrityError, StoreError
from vo2dr.manifest import Manifest
from vo2dr.snapshots.reader import SNAPSHOT_SOURCES
from vo2dr.stores.base import BackupStore
from vo2dr.trust import Trust


def check_source(kind: str) -> str:
    if kind not in SNAPSHOT_SOURCES:
        raise ConfigError(f"{kind!r} is not a snapshot source: use {' or '.join(SNAPSHOT_SOURCES)}")
    return kind


def is_complete(manifest: Manifest) -> bool:
    return bool(manifest.contents.get("complete", False))


@dataclass
class SnapshotRow:
    """One snapshot as ``vo2dr list`` shows it."""

    entry: CatalogEntry
    manifest: Manifest | None = None
    read_from: str = ""
    problem: str = ""  # why no store's manifest could be believed
    stores: dict[str, str] = field(default_factory=dict)  # store -> complete / no-manifest / …

    def to_json(self) -> dict[str, Any]:
        c = self.manifest.contents if self.manifest else {}
        return {
            "snapshot_id": self.entry.backup_id,
            "data_class": self.entry.data_class,
            "tier": self.entry.ref.tier,
            "timestamp": self.entry.timestamp.isoformat().replace("+00:00", "Z"),
            "objects": c.get("objects"), "bytes": c.get("bytes"),
            "new_objects": c.get("new_objects"), "new_bytes": c.get("new_bytes"),
            "uploaded_bytes": c.get("uploaded_bytes"),
            "partial": (not is_complete(self.manifest)) if self.manifest else None,
            "base": c.get("base"),
            "index_bytes": self.manifest.ciphertext.bytes if self.manifest else None,
            "stores": self.stores,
            **({"problem": self.problem} if self.problem else {}),
        }


def list_snapshots(stores: Mapping[str, BackupStore], environment: str, kind: str,
                   trust: Trust, catalog: Catalog | None = None) -> tuple[Catalog,
                                                                          list[SnapshotRow]]:
    """Every snapshot of ``kind`` (oldest first) with its signed facts, read from the first
    store (primary first) whose manifest is authentic."""
    check_source(kind)
    catalog = catalog or build_catalog(stores, environment, source=kind)
    rows = []
    for entry in catalog.entries:
        row = SnapshotRow(entry=entry, stores={
            n: (entry.copies[n].state if n in entry.copies else "missing")
            for n in catalog.stores if n not in catalog.errors})
        problems = []
        for name in entry.complete_stores(catalog.stores):
            try:
                row.manifest = _load(stores[name], entry, trust)
                row.read_from = name
                break
            except (IntegrityError, StoreError) as exc:
                problems.append(str(exc))
        if row.manifest is None:
            row.problem = "; ".join(problems) or "no complete copy in any store"
        rows.append(row)
    return catalog, rows


def _load(store: BackupStore, entry: CatalogEntry, trust: Trust) -> Manifest:
    from vo2dr.verify import load_manifest

    return load_manifest(store, entry, trust)


def find_snapshot(store: BackupStore, environment: str, kind: str, trust: Trust, *,
                  snapshot: str | None = None, at: datetime | None = None,
                  allow_incomplete: bool = False) -> tuple[CatalogEntry, Manifest]:
    """The snapshot to read from ``store``: an id (a unique prefix of it), or the newest
    complete one (taken at or before ``at`` when given). Found by listing that store alone,
    so a restore from GCS works while AWS is down. An incomplete snapshot is refused unless
    ``allow_incomplete`` (and never chosen as latest)."""
    check_source(kind)
    catalog = build_catalog({store.name: store}, environment, source=kind)
    if store.name in catalog.errors:
        raise StoreError(f"cannot list {store.name}: {catalog.errors[store.name]}",
                         store=store.name)
    if snapshot and snapshot != "latest":
        if at is not None:
            raise BackupNotFound("give either --snapshot ID or --at TIME, not both")
        entry = catalog.find(snapshot)
        if not entry.complete_in(store.name):
            state = entry.copies[store.name].state if store.name in entry.copies else "missing"
            raise BackupNotFound(f"{kind} snapshot {entry.backup_id} is not complete in "
                                 f"{store.name} ({state})")
        manifest = _load(store, entry, trust)
        if not is_complete(manifest) and not allow_incomplete:
            raise BackupNotFound(
                f"{kind} snapshot {entry.backup_id} is partial (its run stopped at the time "
                "limit; the next snapshot continues it): restore a complete one, or pass "
                "--allow-incomplete to restore what it holds")
        return entry, manifest
    candidates = [e for e in catalog.entries if e.complete_in(store.name)
                  and (at is None or e.timestamp <= at)]
    skipped = []
    for entry in sorted(candidates, key=lambda e: (e.timestamp, e.backup_id), reverse=True):
        try:
            manifest = _load(store, entry, trust)
        except IntegrityError as exc:
            skipped.append(f"{entry.backup_id}: {exc}")
            continue
        if is_complete(manifest):
            return entry, manifest
        skipped.append(f"{entry.backup_id}: partial")
    cond = f" taken at or before {at.isoformat()}" if at else ""
    detail = f" (passed over: {'; '.join(skipped[:3])})" if skipped else ""
    raise BackupNotFound(f"no complete {kind} snapshot{cond} in {store.name}{detail}")
