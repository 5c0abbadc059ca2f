"""Status of the application sources: each one's freshness against its data class's RPO in
every store, and the agreement of its newest backup's copies (the same checks as the
database's, from :mod:`vo2dr.status`, on the source's own prefix)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from vo2dr.catalog import Catalog, CatalogEntry, build_catalog
from vo2dr.stores.base import BackupStore
from vo2dr.strategy import DataClass, Strategy

if TYPE_CHECKING:
    from vo2dr.status import StatusReport
    from vo2dr.trust import Trust


def add_freshness(report: StatusReport, kind: str, dc: DataClass, catalog: Catalog,
                  now: datetime, grace_seconds: int | None) -> None:
    """``report.sources[kind]``: ``kind``'s freshness in every store of ``catalog`` against
    its class's RPO; a store out of it is a breach ``rpo:<kind>:<store>``."""
    from vo2dr.status import freshness

    cs = freshness(catalog, dc, now, grace_seconds)
    report.sources[kind] = cs
    for store, f in cs.stores.items():
        if not f.ok:
            report.breaches.append(f"rpo:{kind}:{store}")
            report.messages.append(f"{kind} ({dc.name} class) in {store}: {f.reason}")


def add_replica_check(report: StatusReport, kind: str, entry: CatalogEntry,
                      stores: Mapping[str, BackupStore], errors: Mapping[str, str],
                      order: tuple[str, ...], deep: bool, *, trust: Trust, noun: str) -> None:
    """The agreement of ``entry``'s copies in ``stores`` (less those in ``errors``) into
    ``report.replicas``; a disagreement is a breach ``replica:<kind>:<backup id>``, each
    problem a message naming the ``noun`` (backup, snapshot)."""
    from vo2dr.status import check_replicas

    rc = check_replicas(entry, {k: v for k, v in stores.items() if k not in errors}, order,
                        deep, trust=trust)
    rc.data_class = kind
    report.replicas.append(rc)
    if not rc.agree:
        report.replica_mismatches += 1
        report.breaches.append(f"replica:{kind}:{entry.backup_id}")
        report.messages.extend(f"{kind} {noun} {entry.backup_id}: {p}" for p in rc.problems)


def add_source_status(report: StatusReport, strategy: Strategy,
                      stores: Mapping[str, BackupStore], environment: str, now: datetime, *,
                      deep: bool = False, grace_seconds: int | None = None,
                      trust: Trust) -> None:
    """Add each configured source to ``report``: ``report.sources[kind]`` is its freshness
    (breach key ``rpo:<kind>:<store>``), its newest backup's replica check goes into
    ``report.replicas`` (breach key ``replica:<kind>:<backup id>``)."""
    if strategy.application is None:
        return
    for kind in strategy.application.sources():
        dc = strategy.source_class(kind)
        catalog = build_catalog(stores, environment, source=kind)
        add_freshness(report, kind, dc, catalog, now, grace_seconds)
        if kind == "config":  # the standby's backups hold the files only: say so
            from vo2dr.sources.secrets_status import add_config_secrets

            add_config_secrets(report, catalog, stores, dc.rpo_seconds, now, trust=trust)
        order = tuple(catalog.stores)
        complete = [e for e in catalog.entries if e.complete_stores(order)]
        if complete:
            entry = max(complete, key=lambda e: (e.timestamp, e.backup_id))
            add_replica_check(report, kind, entry, stores, catalog.errors, order, deep,
                              trust=trust, noun="backup")
        report.store_errors.update(catalog.errors)
    from vo2dr.snapshots.status import add_snapshot_status  # assets and logs

    add_snapshot_status(report, strategy, stores, environment, now, deep=deep,
                        grace_seconds=grace_seconds, trust=trust)
    report.breaches = sorted(set(report.breaches))
    report.ok = not report.breaches
