"""Status of the snapshot sources (``assets``, ``logs``): each one's freshness against its data
class's RPO in every store, and the agreement of its newest snapshot's copies, as
:mod:`vo2dr.sources.status` does for code and config.

Only a *complete* snapshot counts for freshness: a partial one (its run hit the time limit)
did not capture every object. Whether a snapshot is complete is in its signed manifest, so the
newest snapshots of each store are read (one small GET each, newest first, stopping at the
first complete one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from vo2dr.catalog import Catalog, CatalogEntry, build_catalog
from vo2dr.exceptions import IntegrityError, StoreError
from vo2dr.stores.base import BackupStore
from vo2dr.strategy import Strategy

if TYPE_CHECKING:
    from vo2dr.status import StatusReport
    from vo2dr.trust import Trust


def complete_catalog(catalog: Catalog, stores: Mapping[str, BackupStore],
                     trust: Trust) -> tuple[Catalog, list[str]]:
    """``catalog`` narrowed, per store, to the newest snapshot whose signed manifest there says
    complete (what freshness counts), and the partial or unreadable ones passed over."""
    keep: dict[str, CatalogEntry] = {}
    notes: list[str] = []
    newest_first = sorted(catalog.entries, key=lambda e: (e.timestamp, e.backup_id),
                          reverse=True)
    from vo2dr.verify import load_manifest

    for name in catalog.stores:
        if name in catalog.errors or name not in stores:
            continue
        for entry in newest_first:
            if not entry.complete_in(name):
                continue
            try:
                manifest = load_manifest(stores[name], entry, trust)
            except (IntegrityError, StoreError) as exc:
                notes.append(f"{name}: snapshot {entry.backup_id} not counted: {exc}")
                continue
            if manifest.contents.get("complete"):
                kept = keep.setdefault(entry.backup_id, CatalogEntry(ref=entry.ref))
                kept.copies[name] = entry.copies[name]
                break
            notes.append(f"{name}: snapshot {entry.backup_id} is partial (not counted)")
    entries = sorted(keep.values(), key=lambda e: (e.timestamp, e.backup_id))
    return replace(catalog, entries=entries), notes


def add_snapshot_status(report: StatusReport, strategy: Strategy,
                        stores: Mapping[str, BackupStore], environment: str, now: datetime, *,
                        deep: bool = False, grace_seconds: int | None = None,
                        trust: Trust) -> None:
    """Add each configured snapshot source to ``report`` (breach keys ``rpo:<kind>:<store>``
    and ``replica:<kind>:<snapshot id>``)."""
    from vo2dr.sources.status import add_freshness, add_replica_check

    if strategy.application is None:
        return
    for kind in strategy.application.snapshots:
        dc = strategy.source_class(kind)
        full = build_catalog(stores, environment, source=kind)
        catalog, _ = complete_catalog(full, stores, trust)
        add_freshness(report, kind, dc, catalog, now, grace_seconds)
        order = tuple(full.stores)
        if catalog.entries:
            entry = max(catalog.entries, key=lambda e: (e.timestamp, e.backup_id))
            original = next(e for e in full.entries if e.backup_id == entry.backup_id)
            add_replica_check(report, kind, original, stores, full.errors, order, deep,
                              trust=trust, noun="snapshot")
        report.store_errors.update(full.errors)
    report.breaches = sorted(set(report.breaches))
    report.ok = not report.breaches
