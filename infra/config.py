"""The stack's backup strategy, read once from ``Pulumi.<stack>.yaml`` and validated into typed
objects. This is the only module that reads ``pulumi.Config`` (:func:`load`) and the one entry
point that validates it all (:func:`parse`); components receive the objects. Its parts, per
concept: ``config_storage`` (retention, tiering, immutability, lifecycle), ``config_platform``
(clouds, runtime, monitoring, tags), ``config_keys`` (key rotation, the recovery and signing
public keys), ``config_application`` (the application and snapshot sources), ``config_base``
(what they share).

Every number of the strategy (days, RPO, RTO, schedules) comes from the stack file. The only
numbers in these modules are the providers' own facts (minimum storage durations, allowed log
retentions), which no stack can change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from vo2dr.strategy import (
    DataClass,
    ReportSettings,
    Strategy,
    parse_report_settings,
    parse_strategy,
)

from infra.config_application import (
    SnapshotRoot,
    check_application,
    check_snapshot_origins,
    source_root,
)
from infra.config_base import CLOUDS, ENVIRONMENTS, NS, _fail, _mapping
from infra.config_keys import (
    RECOVERY_KEY_FIX,
    Keys,
    parse_keys,
    parse_record_public_keys,
    parse_recovery_public_key,
    parse_signing_public_keys,
)
from infra.config_platform import (
    AwsCloud,
    AzureCloud,
    GcpCloud,
    Monitoring,
    Runtime,
    parse_clouds,
    parse_monitoring,
    parse_runtime,
    parse_tags,
)
from infra.config_storage import (
    ContentLifecycle,
    Immutability,
    Retention,
    Tiering,
    TierLifecycle,
    check_locks_end_by_expiry,
    check_retention_outlives_tiers,
    content_transitions,
    lifecycle_plan,
    parse_immutability,
    parse_retention,
    parse_tiering,
)

# The report records under reports/<env>/ (issue 18): drill results (written by the drill's
# identity) and failed backup attempts (written by the backup's).
REPORT_KINDS = ("drills", "attempts")


@dataclass(frozen=True)
class Secrets:
    """Secret settings, kept as secret Outputs so they never reach state or logs in clear."""

    database_url: pulumi.Output[str] | None
    alert_webhook_url: pulumi.Output[str] | None
    # The drill's scratch server: a role with CREATEDB, never the backup's read-only role.
    drill_database_url: pulumi.Output[str] | None = None
    # The app repository's read-only token (vo2max-dr:application, the code and config sources).
    repository_token: pulumi.Output[str] | None = None


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    environment: str
    tags: Mapping[str, str]
    aws: AwsCloud
    gcp: GcpCloud
    azure: AzureCloud
    strategy: Strategy
    retention: Retention
    tiering: Tiering
    immutability: Immutability
    monitoring: Monitoring
    runtime: Runtime
    secrets: Secrets
    lifecycle: tuple[TierLifecycle, ...] = field(default_factory=tuple)
    keys: Keys | None = None  # always set by parse(); defaulted only to keep the field order
    # PEM of the offline RSA recovery public key (plain config: it is a public key). Validated
    # when set; required by the runtime (require_recovery_public_key).
    recovery_public_key: str | None = None
    # PEM bundle of the manifest signing public keys readers trust (docs/backup-authenticity.md):
    # plain config, like the recovery key. None until set after the first `pulumi up`.
    signing_public_keys: str | None = None
    # PEM bundle of the drill record signing public keys (infra/aws/signing.py, purpose
    # "records"): trusted for records only, never for a manifest. None until set after the
    # first `pulumi up`; until then cloud drill records are shown unsigned and not counted.
    record_public_keys: str | None = None
    # vo2max-dr:report (the report's targets; the dashboard draws the RTO variance). None when
    # the stack has no such section.
    report: ReportSettings | None = None

    def require_recovery_public_key(self) -> str:
        """The recovery public key, or the ConfigError saying how to set it."""
        if not self.recovery_public_key:
            raise _fail("recoveryPublicKey", "is not set",
                        "every backup is encrypted to it as well as to KMS, so it can be "
                        f"restored without AWS: {RECOVERY_KEY_FIX}")
        return self.recovery_public_key

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def enabled_clouds(self) -> tuple[str, ...]:
        return tuple(c for c in CLOUDS if getattr(self, c).enabled)

    @property
    def data_classes(self) -> Mapping[str, DataClass]:
        """The classes with a database backup (its function, schedule, standby job and
        alarm); a class with ``tables: []`` serves application sources only."""
        return self.strategy.database_classes

    def name(self, suffix: str) -> str:
        """Resource name prefix: ``vo2dr-<env>-<suffix>``."""
        return f"vo2dr-{self.environment}-{suffix}"

    @property
    def status_prefix(self) -> str:
        """Where the status check keeps its alert state (``vo2dr.status``)."""
        return f"status/{self.environment}/"

    def application_prefixes(self) -> tuple[str, ...]:
        """The root of each application source the stack backs up: ``application/<env>/
        <kind>/`` (code, config, assets) and ``logs/<env>/`` (the layout's)."""
        app = self.strategy.application
        return tuple(source_root(self.environment, k) for k in sorted(app.all_sources())) \
            if app else ()
    @property
    def reports_prefix(self) -> str:
        """The job's write-once report records (issue 18): drill results under ``drills/``,
        backup attempts that failed before a manifest under ``attempts/``. Kept as long as the
        yearly tier (:attr:`reports_expire_days`), under the stores' default lock."""
        return f"reports/{self.environment}/"

    def reports_writes(self, kind: str) -> str:
        """The part of :attr:`reports_prefix` one job writes: ``drills`` or ``attempts``."""
        if kind not in REPORT_KINDS:
            raise ValueError(f"unknown report records {kind!r}: use one of {REPORT_KINDS}")
        return f"{self.reports_prefix}{kind}/"

    @property
    def reports_expire_days(self) -> int:
        """Report records outlive no backup they describe, and no audit asks for less than the
        longest tier: they expire with the yearly tier, never before."""
        return self.retention.yearly_days

    def writer_prefixes(self) -> tuple[str, ...] | None:
        """Where the backup writer may create objects, when a snapshot source narrows it:
        every root but, for a snapshot source, only its tiers and content pool (its
        ``prune/`` is the pruner's). None: the writer writes under every root."""
        snapshots = self.snapshot_roots()
        if not snapshots:
            return None
        others = [p for p in self.application_prefixes()
                  if p not in {r.root for r in snapshots}]
        return (self.prefix(), *others,
                *(p for r in snapshots for p in (*(f"{r.root}{t}/" for t in self.retention.tiers),
                                                  r.content_prefix)))

    def snapshot_roots(self) -> tuple[SnapshotRoot, ...]:
        """The snapshot sources (assets, logs) with their roots, in name order."""
        app = self.strategy.application
        if app is None:
            return ()
        return tuple(SnapshotRoot(name, source_root(self.environment, name), snap.data_class,
                                  dict(snap.origins))
                     for name, snap in sorted(app.snapshots.items()))

    def content_lifecycle(self) -> tuple[ContentLifecycle, ...]:
        """One transitions-only rule per snapshot source's content pool."""
        return tuple(ContentLifecycle(r.source, r.content_prefix,
                                      content_transitions(self.tiering))
                     for r in self.snapshot_roots())

    def prefix(self, tier: str | None = None) -> str:
        """Object key prefix of the write-once layout: ``database/<env>/[<tier>/]``."""
        base = f"database/{self.environment}/"
        return f"{base}{tier}/" if tier else base


def parse(raw: Mapping[str, Any], *, stack: str, project: str = NS,
          providers: Mapping[str, str] | None = None,
          secrets: Secrets | None = None) -> StackConfig:
    """Validate the ``vo2max-dr:*`` settings (namespace stripped) of one stack."""
    providers = providers or {}
    environment = raw.get("environment")
    if environment not in ENVIRONMENTS:
        raise _fail("environment", f"is {environment!r}", f"use one of {ENVIRONMENTS}")
    if environment != stack:
        raise _fail("environment", f"is {environment!r} in stack {stack!r}",
                    "name the stack after its environment (staging or production)")
    if raw.get("compression") is None:
        raise _fail("compression", "is missing",
                    "set compression.level (zstd 1-19) in Pulumi.<stack>.yaml")
    strategy = parse_strategy(raw.get("dataClasses"), _mapping(raw.get("retention"), "retention"),
                              _mapping(raw.get("immutability"), "immutability"),
                              raw.get("application"), compression=raw.get("compression"))
    check_application(strategy)
    check_snapshot_origins(strategy)
    retention = parse_retention(raw.get("retention"), strategy.intraday)
    tiering = parse_tiering(raw.get("tiering"))
    check_retention_outlives_tiers(retention, tiering)
    aws, gcp, azure = parse_clouds(
        raw.get("clouds"), environment, providers.get("aws:region", ""),
        providers.get("gcp:project", ""), providers.get("gcp:region", ""),
        providers.get("azure-native:location", ""),
    )
    immutability = parse_immutability(raw.get("immutability"), environment, retention)
    app = strategy.application
    lifecycle = lifecycle_plan(environment, retention, tiering,
                               sources=tuple(sorted(app.all_sources())) if app else ())
    check_locks_end_by_expiry(lifecycle, immutability, strategy.intraday)
    return StackConfig(
        project=project,
        stack=stack,
        environment=environment,
        tags=parse_tags(raw.get("tags"), environment),
        aws=aws,
        gcp=gcp,
        azure=azure,
        strategy=strategy,
        retention=retention,
        tiering=tiering,
        immutability=immutability,
        monitoring=parse_monitoring(raw.get("monitoring"), strategy),
        runtime=parse_runtime(raw.get("runtime")),
        secrets=secrets or Secrets(None, None),
        lifecycle=lifecycle,
        keys=parse_keys(raw.get("keys")),
        recovery_public_key=parse_recovery_public_key(raw.get("recoveryPublicKey")),
        signing_public_keys=parse_signing_public_keys(raw.get("signingPublicKeys")),
        record_public_keys=parse_record_public_keys(
            raw.get("recordPublicKeys"), parse_signing_public_keys(raw.get("signingPublicKeys"))),
        report=(parse_report_settings(raw["report"]) if raw.get("report") is not None
                else None),
    )


KEYS = ("environment", "tags", "clouds", "dataClasses", "retention", "tiering", "immutability",
        "monitoring", "runtime", "keys", "recoveryPublicKey", "signingPublicKeys",
        "recordPublicKeys", "compression", "application", "report")
# Plain strings; every other key is a YAML object.
STRING_KEYS = ("environment", "recoveryPublicKey", "signingPublicKeys", "recordPublicKeys")
SECRET_KEYS = ("databaseUrl", "alertWebhookUrl", "drillDatabaseUrl", "repositoryToken")


def load() -> StackConfig:
    """Read this stack's config from Pulumi and validate it. Raises ConfigError on bad input."""
    cfg = pulumi.Config(NS)
    raw: dict[str, Any] = {}
    for key in KEYS:
        value = cfg.get(key) if key in STRING_KEYS else cfg.get_object(key)
        if value is not None:
            raw[key] = value
    providers = {
        "aws:region": pulumi.Config("aws").get("region") or "",
        "gcp:project": pulumi.Config("gcp").get("project") or "",
        "gcp:region": pulumi.Config("gcp").get("region") or "",
        "azure-native:location": pulumi.Config("azure-native").get("location") or "",
    }
    secrets = Secrets(*(cfg.get_secret(k) for k in SECRET_KEYS))
    return parse(raw, stack=pulumi.get_stack(), project=pulumi.get_project(),
                 providers=providers, secrets=secrets)
