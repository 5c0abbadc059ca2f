"""The application sources of the stack config (``vo2max-dr:application``): their roots, the
snapshot sources' origins and content pools, and what the deployed job can be granted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vo2dr.layout import SOURCE_LAYOUT
from vo2dr.strategy import Strategy

from infra.config_base import _fail


@dataclass(frozen=True)
class SnapshotRoot:
    """Where one snapshot source (``assets``, ``logs``) keeps its objects: the tiers of its
    indexes and manifests (GFS lifecycle like the database's), its content pool (kept by
    references: no expiry) and the pruner's plans."""

    source: str
    root: str  # application/<env>/assets/, logs/<env>/
    data_class: str
    origins: Mapping[str, str]

    @property
    def content_prefix(self) -> str:
        return f"{self.root}content/"

    @property
    def prune_prefix(self) -> str:
        return f"{self.root}prune/"

    @property
    def s3_origins(self) -> tuple[tuple[str, str], ...]:
        """``(bucket, prefix)`` of each origin (``check_snapshot_origins`` admits S3 only)."""
        return tuple(tuple(url[len("s3://"):].split("/", 1))  # type: ignore[misc]
                     for _, url in sorted(self.origins.items()))


def source_root(environment: str, source: str) -> str:
    """The key prefix of an application source before its tiers (``vo2dr.layout``)."""
    return SOURCE_LAYOUT[source][0].format(environment=environment)


def check_application(strategy: Strategy) -> None:
    """The deployed job reads exactly the app secrets it is granted: by name. A prefix would
    need secretsmanager:ListSecrets, which has no resource-level permission (every secret name
    in the account), so the program refuses it (the job still takes one, for local runs)."""
    app = strategy.application
    if app is not None and app.config is not None and app.config.secret_prefix:
        raise _fail("application.config.secretPrefix", f"is {app.config.secret_prefix!r}",
                    "list the secrets in application.config.secretNames instead: the backup "
                    "role is granted exactly those, and a prefix would need ListSecrets on "
                    "every secret of the account")


def check_snapshot_origins(strategy: Strategy) -> None:
    """The deployed job reads a snapshot source's origins from S3 only, with read-only grants
    on exactly those buckets and prefixes (infra/aws/runtime.py); ``gs://`` and ``file://``
    origins work for local runs (``vo2dr backup --source``) but have no grant to deploy."""
    app = strategy.application
    for name, snap in sorted((app.snapshots if app else {}).items()):
        for origin, url in sorted(snap.origins.items()):
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            if not url.startswith("s3://") or not bucket or "*" in url:
                raise _fail(f"application.{name}.origins.{origin}", f"is {url!r}",
                            "the deployed job reads origins from S3 only: use "
                            "s3://bucket/prefix/ (gs:// and file:// are for local runs)")
            if prefix and not prefix.endswith("/"):
                raise _fail(f"application.{name}.origins.{origin}", f"is {url!r}",
                            "end the prefix with '/': the read grant is on prefix*, and "
                            f"s3://{bucket}/{prefix} would also grant {prefix}-other/")
