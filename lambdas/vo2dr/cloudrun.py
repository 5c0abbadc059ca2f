"""Cloud Run job entry point: ``python -m vo2dr.cloudrun [--data-class NAME | --source
code|config] [--if-missing] [--without-app-secrets]``.

The data class comes from ``--data-class`` or ``VO2DR_DATA_CLASS``. The GCP standby runs one
job per class with ``--data-class X --if-missing`` baked in (``infra.gcp.standby``): it backs
up only when no complete backup of the class exists in the current schedule window in any
reachable store, so it is a no-op whenever the primary already ran. DATABASE_URL is injected
by Cloud Run from Secret Manager. Logs are JSON on stdout (Cloud Logging fields); exit 0 when
every destination holds a verified copy or the window was already covered ("skipped: covered
by <backup id>"), 1 when a destination failed, 2 when there is no backup at all.

``--source code|config`` backs up an application source instead (one standby job per source,
``--if-missing`` against the window of the source's class). The repository token comes from
``VO2DR_REPOSITORY_TOKEN``, injected by Cloud Run from GCP Secret Manager (the AWS copy of it
is out of reach in an AWS outage). The standby's config job runs ``--without-app-secrets``:
the app's secrets live in AWS Secrets Manager / SSM, which the standby cannot reach when it
matters and may not read at all (only the AWS backup role may); it backs up the config files
and its manifest records that the secrets are missing (``vo2dr.sources.config``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from vo2dr.exceptions import Vo2drError
from vo2dr.logs import configure_json_logging
from vo2dr.settings import Settings

if TYPE_CHECKING:
    from vo2dr.summary import BackupSummary, SkippedBackup

log = logging.getLogger("vo2dr.cloudrun")


def main(argv: list[str] | None = None) -> int:
    from vo2dr.backup import backup_if_missing, run_backup
    from vo2dr.secret_urls import resolve_database_url

    parser = argparse.ArgumentParser(prog="python -m vo2dr.cloudrun")
    parser.add_argument("--data-class", default="",
                        help="the data class (default: $VO2DR_DATA_CLASS)")
    parser.add_argument("--source", choices=("code", "config"), default="",
                        help="back up this application source instead of a data class")
    parser.add_argument("--without-app-secrets", action="store_true",
                        help="config: the files only, not the app's secrets in AWS (the "
                             "standby; the manifest records why)")
    parser.add_argument("--if-missing", action="store_true",
                        help="back up only if no complete backup of the class exists in the "
                             "current schedule window in any reachable store")
    args = parser.parse_args(argv)
    configure_json_logging()
    if args.source:
        return _source(args.source, args.if_missing, not args.without_app_secrets)
    settings = Settings.from_env(overrides={"data_class": args.data_class})
    if not settings.data_class:
        log.error("no data class: pass --data-class or set VO2DR_DATA_CLASS")
        return 2
    data_class = settings.data_class
    log.info("backup starting", extra={"data_class": data_class,
                                       "if_missing": args.if_missing,
                                       "settings": settings.redacted()})
    run = backup_if_missing if args.if_missing else run_backup

    def backup() -> BackupSummary | SkippedBackup:
        settings.validate(required=("database_url", "environment", "recovery_public_key"),
                          strategy=True)
        return run(resolve_database_url(settings), data_class)

    return _logged_run(backup, {"data_class": data_class})


def _source(kind: str, if_missing: bool, with_secrets: bool) -> int:
    import os

    from vo2dr.sources.backup import backup_source, source_backup_if_missing

    settings = Settings.from_env()
    token = os.environ.get("VO2DR_REPOSITORY_TOKEN")  # never logged
    log.info("backup starting", extra={"source": kind, "if_missing": if_missing,
                                       "with_app_secrets": with_secrets,
                                       "settings": settings.redacted()})
    return _logged_run(
        lambda: (source_backup_if_missing(settings, kind, token=token, with_secrets=with_secrets)
                 if if_missing
                 else backup_source(settings, kind, token=token, with_secrets=with_secrets)),
        {"source": kind})


def _logged_run(backup: Callable[[], BackupSummary | SkippedBackup],
                extra: dict[str, str]) -> int:
    """Run ``backup`` and log its outcome; the exit code (module docstring)."""
    from vo2dr.summary import SkippedBackup

    try:
        summary = backup()
    except Vo2drError as exc:
        log.error("backup failed: %s", exc, extra={**extra, "error_type": type(exc).__name__})
        return 2
    if isinstance(summary, SkippedBackup):
        log.info("backup %s", summary.status, extra={"summary": summary.to_json()})
        return 0
    log.info("backup finished", extra={"summary": summary.to_json()})
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
