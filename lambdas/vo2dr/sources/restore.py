"""Restore an application source from one store: the code into a new bare repository, the
config into a new directory (files 0600), or ``--diff-against DIR`` (names only).

As for the database: the backup is found by listing that one store (so a restore from GCS
works while AWS is down), the target is checked before a byte is downloaded, and the copy is
verified end to end (ciphertext and plaintext SHA-256, authenticated decryption by KMS or the
offline recovery key, contents against the manifest) before anything is written.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from vo2dr.catalog import BackupNotFound, Catalog, CatalogEntry, build_catalog
from vo2dr.exceptions import ConfigError, RestoreError
from vo2dr.settings import Settings
from vo2dr.sources import APPLICATION_SOURCES, plaintext_spool
from vo2dr.stores.base import BackupStore


def latest_entry(catalog: Catalog, store: str | None = None,
                 before: datetime | None = None) -> CatalogEntry:
    """The newest backup complete in ``store`` (any store if None), at or before ``before``.
    A source belongs to one data class, so any class in its prefix counts."""
    candidates = [e for e in catalog.entries
                  if (e.complete_in(store) if store else bool(e.complete_stores()))
                  and (before is None or e.timestamp <= before)]
    if not candidates:
        where = store or ", ".join(catalog.stores)
        errors = "; ".join(f"{k}: {v}" for k, v in catalog.errors.items())
        raise BackupNotFound(f"no complete backup in {where}"
                             + (f" (could not list: {errors})" if errors else ""))
    return max(candidates, key=lambda e: (e.timestamp, e.backup_id))


def find_source_backup(store: BackupStore, environment: str, kind: str, *,
                       backup: str | None = None,
                       before: datetime | None = None) -> CatalogEntry:
    catalog = build_catalog({store.name: store}, environment, source=kind)
    if store.name in catalog.errors:
        raise RestoreError(f"cannot list {store.name}: {catalog.errors[store.name]}")
    if backup and backup != "latest":
        if before is not None:
            raise BackupNotFound("give either --backup ID or --before TIMESTAMP, not both")
        entry = catalog.find(backup)
        if not entry.complete_in(store.name):
            raise BackupNotFound(f"{kind} backup {entry.backup_id} is not complete in "
                                 f"{store.name}")
        return entry
    return latest_entry(catalog, store.name, before)


def restore_source(settings: Settings, kind: str, *, store: BackupStore,
                   target: str | None = None, diff_against: str | None = None,
                   backup: str | None = None, before: datetime | None = None,
                   recovery_key_pem: bytes | None = None) -> dict[str, Any]:
    """Restore (or diff) the ``kind`` backup from ``store``; a JSON-ready result. Raises
    :class:`RestoreError` / :class:`IntegrityError` (nothing written) on refusal or a bad
    copy."""
    from vo2dr.sources.code import check_target_dir, restore_bundle
    from vo2dr.sources.config import diff_against as diff_config
    from vo2dr.sources.config import restore_archive
    from vo2dr.verify import VerificationFailed, verify_copy

    if kind not in APPLICATION_SOURCES:
        raise ConfigError(f"unknown source {kind!r}: use {' or '.join(APPLICATION_SOURCES)}")
    if bool(target) == bool(diff_against):
        raise ConfigError("give exactly one of --target-dir DIR or --diff-against DIR")
    if diff_against and kind != "config":
        raise ConfigError("--diff-against compares a config backup; restore code with "
                          "--target-dir and compare with git")
    from vo2dr.trust import Trust

    settings.require("environment")
    trust = Trust.from_settings(settings)  # manifests are believed only when signed by these
    t0 = time.monotonic()
    entry = find_source_backup(store, settings.environment, kind, backup=backup, before=before)
    if target:
        check_target_dir(target)  # before a byte is downloaded
    with plaintext_spool(kind, settings.spool_dir or None) as spool:
        result = verify_copy(store, entry, trust=trust, recovery_key_pem=recovery_key_pem,
                             spool=spool)
        if not result.ok:
            raise VerificationFailed(result)
        manifest = result.manifest
        assert manifest is not None  # verified
        if diff_against:
            outcome = diff_config(manifest.contents, spool, diff_against)
        elif kind == "code":
            outcome = restore_bundle(manifest.contents, spool, target or "")
        else:
            outcome = restore_archive(manifest.contents, spool, target or "")
    return {"ok": True, "source": kind, "backup_id": entry.backup_id,
            "data_class": entry.data_class, "timestamp": entry.timestamp.isoformat(),
            "store": store.name, "key_used": result.key_used,
            **({"diff": outcome} if diff_against else {"restored": outcome}),
            "seconds": round(time.monotonic() - t0, 3)}
