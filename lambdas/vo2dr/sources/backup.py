"""Back up an application source (``vo2dr backup --source code|config``): the source is built
from the strategy's ``application`` settings and goes through the database's own pipeline
(:func:`vo2dr.backup.run_source_backup`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vo2dr import layout
from vo2dr.exceptions import ConfigError, SourceError, one_line
from vo2dr.settings import Settings
from vo2dr.sources import APPLICATION_SOURCES, Source
from vo2dr.stores.base import BackupStore
from vo2dr.strategy_application import Application
from vo2dr.summary import BackupSummary, SkippedBackup

log = logging.getLogger("vo2dr.sources")


def check_source_settings(settings: Settings, kind: str) -> tuple[Application, str]:
    """``(application settings, data class)`` of ``kind``, before anything is contacted."""
    if kind not in APPLICATION_SOURCES:
        raise ConfigError(f"unknown source {kind!r}: use database, "
                          f"{', '.join(APPLICATION_SOURCES)}, "
                          f"{' or '.join(layout.SNAPSHOT_KINDS)}")
    settings.require("environment", "recovery_public_key", "signing_key")
    settings.validate(strategy=True)
    layout.environment_prefix(settings.environment, kind)
    strategy = settings.strategy()
    data_class = strategy.source_class(kind).name
    assert strategy.application is not None  # source_class raised otherwise
    return strategy.application, data_class


def repository_token(settings: Settings, client: Any = None) -> str:
    """The repository's read-only token from Secrets Manager, or "" (a public or local
    repository). The value is never logged; errors name the secret only."""
    name = settings.repository_token_secret
    if not name:
        return ""
    from vo2dr.sources.secrets import read_secret

    token = read_secret(name, client).value.decode().strip()
    if not token:
        raise ConfigError(f"the secret {name} (VO2DR_REPOSITORY_TOKEN_SECRET) is empty")
    return token


def make_source(settings: Settings, kind: str, app: Application, *, token: str | None = None,
                with_secrets: bool = True) -> Source:
    """``token``: the repository token when the caller has it already (the standby's comes
    from GCP Secret Manager), else read from Secrets Manager. ``with_secrets=False``: the
    config without the app's secrets (:class:`~vo2dr.sources.config.ConfigSource`)."""
    token = repository_token(settings) if token is None else token
    if kind == "code":
        from vo2dr.sources.code import CodeSource

        return CodeSource(app.repository_url, token, scratch_dir=settings.spool_dir or None)
    from vo2dr.sources.config import ConfigSource

    assert app.config is not None
    return ConfigSource(app.repository_url, app.config, token,
                        scratch_dir=settings.spool_dir or None, with_secrets=with_secrets)


def backup_source(settings: Settings, kind: str, now: datetime | None = None,
                  progress: Any = None, *, stores: Mapping[str, BackupStore] | None = None,
                  stall_timeout: float | None = None,
                  time_limit: float | None = None, token: str | None = None,
                  with_secrets: bool = True) -> BackupSummary:
    """Back up the ``code`` or ``config`` source, or snapshot ``assets`` or ``logs``
    (:mod:`vo2dr.snapshots`), to every enabled store; the summary. ``time_limit`` (seconds,
    snapshots only): stop taking new objects in time to finish within it. ``token`` and
    ``with_secrets``: see :func:`make_source` (the standby's)."""
    from vo2dr.backup import run_source_backup

    if kind in layout.SNAPSHOT_KINDS:
        from vo2dr.snapshots.take import Deadline, backup_snapshot

        deadline = Deadline.within(time_limit) if time_limit else None
        return backup_snapshot(settings, kind, now, progress, stores=stores,
                               stall_timeout=stall_timeout, deadline=deadline)
    app, data_class = check_source_settings(settings, kind)
    try:
        source = make_source(settings, kind, app, token=token, with_secrets=with_secrets)
    except SourceError:
        raise
    except OSError as exc:
        raise SourceError(f"cannot prepare the {kind} source: {one_line(exc)}") from exc
    return run_source_backup(settings, source, data_class, now, progress, stores=stores,
                             stall_timeout=stall_timeout)


def source_backup_if_missing(settings: Settings, kind: str, now: datetime | None = None, *,
                             stores: Mapping[str, BackupStore] | None = None,
                             token: str | None = None, with_secrets: bool = True,
                             stall_timeout: float | None = None) -> BackupSummary | SkippedBackup:
    """:func:`backup_source`, unless a complete backup of ``kind`` already exists in the
    current window of its class's schedule in any reachable store (the primary ran): the
    standby's ``--source KIND --if-missing``, as :func:`vo2dr.backup.backup_if_missing` is for
    a data class."""
    from datetime import UTC

    from vo2dr.backup import (
        find_covering_backup,
        open_backup_stores,
        schedule_window,
        skipped_backup,
    )

    _, data_class = check_source_settings(settings, kind)
    dc = settings.strategy().get(data_class)
    if stores is None:
        stores = open_backup_stores(settings)
    at = (now or datetime.now(UTC)).astimezone(UTC)
    start, end = schedule_window(dc, at)
    window = {"start": start.isoformat(), "end": end.isoformat()}
    covering = find_covering_backup(stores, settings.environment, data_class, start, end,
                                    source=kind)
    if covering is None:
        log.info("no %s backup in the window %s to %s: backing up", kind, window["start"],
                 window["end"])
        summary = backup_source(settings, kind, now, stores=stores, token=token,
                                with_secrets=with_secrets, stall_timeout=stall_timeout)
        summary.window = window
        return summary
    return skipped_backup(settings.environment, data_class, window, covering, kind)
