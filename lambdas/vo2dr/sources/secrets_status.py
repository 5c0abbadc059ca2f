"""Status of the config backups' secrets: the Cloud Run standby backs up the config
``--without-app-secrets`` (the app's secrets live in AWS, which it neither reaches nor may
read), and its manifest says so (``contents.secrets_unavailable``). Such a backup is fresh and
counts for the RPO, so status shows it, without failing: an operator who restores the newest
config during an AWS outage must know that the secrets are only in older backups, and how old
the newest backup with them is against the config source's RPO.

The logic is :func:`secrets_status` on the facts of a store's backups, newest first;
:func:`add_config_secrets` reads those facts from the signed manifests, newest first, only as
far back as the newest backup with the secrets (at most :data:`MAX_MANIFESTS`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from vo2dr.catalog import Catalog
from vo2dr.exceptions import Vo2drError
from vo2dr.stores.base import BackupStore

if TYPE_CHECKING:
    from vo2dr.status import StatusReport
    from vo2dr.trust import Trust

# How many manifests one store's walk back reads at most, per status run: ~8 days of hourly
# standby backups. Beyond it the note says that none of them has the secrets.
MAX_MANIFESTS = 200


@dataclass(frozen=True)
class ConfigBackupFacts:
    """What status needs of one config backup: when, and why it lacks the secrets ("" when
    it has them)."""

    backup_id: str
    timestamp: datetime
    secrets_unavailable: str = ""


@dataclass
class ConfigSecrets:
    """One store's newest config backup, and whether it holds the app's secrets."""

    store: str
    newest_backup_id: str
    without_secrets: bool
    rpo_seconds: int
    reason: str = ""
    # The newest backup that has them (when the newest does not); None: none found within
    # ``checked`` manifests.
    with_secrets_backup_id: str | None = None
    with_secrets_age_seconds: int | None = None
    checked: int = 0
    note: str = ""

    @property
    def with_secrets_within_rpo(self) -> bool | None:
        if self.with_secrets_age_seconds is None:
            return None
        return self.with_secrets_age_seconds <= self.rpo_seconds


def secrets_status(store: str, newest_first: Iterable[ConfigBackupFacts], now: datetime,
                   rpo_seconds: int, *, limit: int = MAX_MANIFESTS) -> ConfigSecrets | None:
    """The secrets status of ``store`` from its config backups, newest first (read lazily: the
    walk stops at the first backup with the secrets, or after ``limit``). None: no backup."""
    from vo2dr.status import human_duration

    it = iter(newest_first)
    newest = next(it, None)
    if newest is None:
        return None
    status = ConfigSecrets(store=store, newest_backup_id=newest.backup_id,
                           without_secrets=bool(newest.secrets_unavailable),
                           rpo_seconds=rpo_seconds, reason=newest.secrets_unavailable,
                           checked=1)
    if not status.without_secrets:
        return status
    while status.checked < limit:  # each step reads a manifest: check before taking one
        facts = next(it, None)
        if facts is None:
            break
        status.checked += 1
        if not facts.secrets_unavailable:
            status.with_secrets_backup_id = facts.backup_id
            status.with_secrets_age_seconds = max(0, int((now - facts.timestamp)
                                                         .total_seconds()))
            break
    rpo = human_duration(rpo_seconds)
    head = (f"config in {store}: the newest backup {newest.backup_id} holds the files only, "
            "not the app's secrets (taken by the standby)")
    if status.with_secrets_age_seconds is None:
        status.note = (f"{head}; none of the newest {status.checked} backups has them: "
                       "restore the secrets from AWS itself or an older backup")
    else:
        age = human_duration(status.with_secrets_age_seconds)
        against = ("within" if status.with_secrets_within_rpo else "older than")
        status.note = (f"{head}; the newest with them is {status.with_secrets_backup_id}, "
                       f"{age} old, {against} the config's RPO of {rpo}")
    return status


def _facts(store: BackupStore, catalog: Catalog, trust: Trust) -> Iterator[ConfigBackupFacts]:
    """``store``'s complete config backups, newest first, from their signed manifests (a
    manifest that cannot be read or trusted is skipped: the replica check reports it)."""
    from vo2dr.verify import load_manifest

    entries = sorted((e for e in catalog.entries if e.complete_in(store.name)),
                     key=lambda e: (e.timestamp, e.backup_id), reverse=True)
    for entry in entries:
        try:
            manifest = load_manifest(store, entry, trust)
        except (Vo2drError, ValueError):
            continue
        reason = manifest.contents.get("secrets_unavailable") or ""
        yield ConfigBackupFacts(entry.backup_id, entry.timestamp, str(reason))


def add_config_secrets(report: StatusReport, catalog: Catalog,
                       stores: Mapping[str, BackupStore], rpo_seconds: int, now: datetime, *,
                       trust: Trust) -> None:
    """``report.config_secrets[store]`` for every readable store with a config backup, and a
    note (never a breach) for each whose newest backup lacks the app's secrets."""
    for name, store in stores.items():
        if name in catalog.errors:
            continue
        status = secrets_status(name, _facts(store, catalog, trust), now, rpo_seconds)
        if status is None:
            continue
        report.config_secrets[name] = status
        if status.note:
            report.notes.append(status.note)
