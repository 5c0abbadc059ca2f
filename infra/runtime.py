"""The job as infrastructure, on both runtimes: the AWS primary (Lambda + EventBridge Scheduler
+ alarms) and the GCP standby (Cloud Run jobs + Cloud Scheduler). ``build()`` derives every
schedule and threshold from the stack's strategy, wires in the stores' outputs, and exports
what an operator needs.

Schedules are clock-aligned. A backup of a class with an RPO under a day runs at the start of
every RPO-long window of the UTC clock (``cron(0/15 * * * ? *)`` for 15 minutes, the same
instants as ``DataClass.cron_expression()``) rather than as ``rate(15 minutes)``, whose phase
is wherever the schedule happened to be created: the standby's offset ("10 minutes after the
primary's window") and the job's ``--if-missing`` window only mean something if the primary's
windows are known. The interval, and so the RPO guarantee, is the same.

The status check is clock-aligned too, ``monitoring.statusOffsetMinutes`` after each window
start (``cron(5/15 * * * ? *)`` for every 15 minutes at offset 5): at the backups' own instants
the newest complete backup would always be the previous window's, RPO plus a dump old, and the
age alarm would never clear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from vo2dr.exceptions import ConfigError
from vo2dr.layout import MANIFEST_SUFFIX, SOURCE_LAYOUT
from vo2dr.strategy import DataClass

from infra import packaging
from infra.aws.alerts import Alerts, AlertsArgs
from infra.aws.runtime import (
    LAMBDA_ENVIRONMENT_LIMIT_BYTES,
    FunctionSpec,
    JobFunctions,
    JobFunctionsArgs,
    JobSchedules,
    JobSchedulesArgs,
    ScheduleSpec,
    function_arn,
    schedule_input,
)
from infra.aws.signing import SigningKey, SigningKeyArgs
from infra.config import StackConfig

# Names (not values) of the Secrets Manager secrets.
SECRET_DATABASE_URL = "database-url"  # noqa: S105
SECRET_ALERT_WEBHOOK = "alert-webhook"  # noqa: S105
SECRET_DRILL_DATABASE_URL = "drill-database-url"  # noqa: S105
SECRET_REPOSITORY_TOKEN = "repository-token"  # noqa: S105


def eventbridge_cron(dc: DataClass) -> str:
    """``DataClass.cron_expression()`` (five-field Unix cron) as an EventBridge cron: the same
    instants, in six fields with ``?`` for the day of week and a year."""
    minute, hour, dom, month, dow = dc.cron_expression().split()
    minute, hour = (f.replace("*/", "0/") for f in (minute, hour))
    if dom != "*" or month != "*" or dow != "*":
        raise ConfigError(f"dataClasses.{dc.name}: {dc.cron_expression()!r} is not a daily or "
                          "sub-daily schedule")
    return f"cron({minute} {hour} * * ? *)"


def status_cron(every_minutes: int, offset_minutes: int) -> str:
    """EventBridge cron of the status check: every ``every_minutes`` (a divisor of the hour,
    or whole hours dividing a day; ``infra.config`` checks), ``offset_minutes`` after each
    clock-aligned window start."""
    hour_minutes = 60
    if every_minutes < hour_minutes:
        return f"cron({offset_minutes % every_minutes}/{every_minutes} * * * ? *)"
    hours = every_minutes // hour_minutes
    return f"cron({offset_minutes} 0/{hours} * * ? *)"


def schedules(cfg: StackConfig) -> list[ScheduleSpec]:
    """Every AWS schedule of the stack, from the strategy and the monitoring settings."""
    specs = [
        ScheduleSpec(key=f"backup-{name}", job=f"backup-{name}", expression=eventbridge_cron(dc),
                     input=schedule_input("backup", name),
                     description=f"{name} backup, every {dc.rpo_minutes} min (its RPO)")
        for name, dc in sorted(cfg.data_classes.items())
    ]
    app = cfg.strategy.application
    for kind in sorted(app.all_sources() if app else ()):
        dc = cfg.strategy.source_class(kind)
        specs.append(ScheduleSpec(
            key=f"backup-{kind}", job=f"backup-{kind}", expression=eventbridge_cron(dc),
            input=json.dumps({"job": "backup", "source": kind}, sort_keys=True),
            description=f"{kind} backup, every {dc.rpo_minutes} min (the {dc.name} class's "
                        "RPO)"))
    roots = cfg.snapshot_roots()
    if roots:
        prune = require_prune_schedule(cfg)
        specs.extend(ScheduleSpec(
            key=f"prune-{r.source}", job="prune", expression=prune,
            input=json.dumps({"job": "prune", "source": r.source}, sort_keys=True),
            description=f"{r.source} snapshot pruner: marks unreferenced content, deletes what "
                        "an earlier run marked") for r in roots)
    every, offset = cfg.monitoring.status_every_minutes, cfg.monitoring.status_offset_minutes
    specs.append(ScheduleSpec(key="status", job="status", expression=status_cron(every, offset),
                              input=schedule_input("status"),
                              description=f"freshness and replica check, every {every} min, "
                                          f"{offset} min after each window starts"))
    specs.append(ScheduleSpec(key="drill", job="drill", expression=cfg.monitoring.drill_schedule,
                              input=schedule_input("drill"),
                              description="restore drill into a scratch database"))
    return specs


def source_rpo_seconds(cfg: StackConfig) -> dict[str, int]:
    """Each application source's RPO (its class's), in seconds: its backup-age alarm."""
    app = cfg.strategy.application
    return {kind: cfg.strategy.source_class(kind).rpo_seconds
            for kind in sorted(app.all_sources() if app else ())}


def require_prune_schedule(cfg: StackConfig) -> str:
    """``monitoring.pruneSchedule``, required once the stack has snapshot sources."""
    if not cfg.monitoring.prune_schedule:
        raise ConfigError("vo2max-dr:monitoring.pruneSchedule is not set: the snapshot sources "
                          "(assets, logs) need their daily pruner: set `pruneSchedule: "
                          "cron(<minute> <hour> * * ? *)` under vo2max-dr:monitoring")
    return cfg.monitoring.prune_schedule


def snapshot_reads(root: str) -> tuple[str, str]:
    """Key patterns of a snapshot source's own manifests and indexes (its dedup base)."""
    return (f"{root}*{MANIFEST_SUFFIX}", f"{root}*{SOURCE_LAYOUT['assets'][1]}")


def app_secret_grants(cfg: StackConfig) -> list[str]:
    """The ARNs of the app's secrets the backup function may read: exactly the named ones
    (Secrets Manager appends "-" and six random characters to a secret's ARN). The program
    takes names only (``infra.config`` refuses a prefix), so nothing needs ListSecrets."""
    app = cfg.strategy.application
    if app is None or app.config is None:
        return []
    base = f"arn:aws:secretsmanager:{cfg.aws.region}:{cfg.aws.account_id}:secret:"
    return [f"{base}{n}-??????" for n in app.config.secret_names]


def app_parameter_grants(cfg: StackConfig) -> tuple[list[str], list[str]]:
    """``(parameter ARNs, path ARNs)`` of the app's SSM parameters the backup function may read:
    ``ssm:GetParameters`` on exactly the named parameters, ``ssm:GetParametersByPath`` on
    exactly each path. Parameter Store authorises GetParametersByPath against the path in the
    request (SSM User Guide, "How Parameter Store authorizes parameter retrieval"), which the
    job sends without its trailing slash: ``arn:aws:ssm:<region>:<account>:parameter/<path>``.
    SecureString values under the AWS managed key aws/ssm need no KMS grant."""
    app = cfg.strategy.application
    if app is None or app.config is None:
        return [], []
    base = f"arn:aws:ssm:{cfg.aws.region}:{cfg.aws.account_id}:parameter/"
    return ([f"{base}{n.lstrip('/')}" for n in app.config.parameter_names],
            [f"{base}{p.strip('/')}" for p in app.config.parameter_paths])


def _attr(obj: Any, *names: str) -> Any:
    for n in names:
        if obj is not None and hasattr(obj, n):
            return getattr(obj, n)
    return None


@dataclass(frozen=True)
class Runtime:
    functions: JobFunctions
    schedules: JobSchedules
    alerts: Alerts
    standby: Any  # infra.gcp.standby.Standby | None
    restore_environment: Mapping[str, pulumi.Input[str]]


def _gcs_sign_in(credential_config: pulumi.Input[str] | None) -> dict[str, pulumi.Input[str]]:
    """The job's keyless GCS sign-in: an external-account config for one service account."""
    return {} if credential_config is None else {"VO2DR_GCS_CREDENTIAL_CONFIG": credential_config}


def _azure_sign_in(cfg: StackConfig,
                   client_id: pulumi.Input[str] | None) -> dict[str, pulumi.Input[str]]:
    """The job's keyless Azure sign-in as one user-assigned identity of the tenant."""
    if client_id is None:
        return {}
    return {"VO2DR_AZURE_CLIENT_ID": client_id, "VO2DR_AZURE_TENANT_ID": cfg.azure.tenant_id}


def build(cfg: StackConfig, aws: Any, gcp: Any = None, azure: Any = None) -> Runtime:
    """Declare both runtimes and export their operator-facing outputs."""
    if cfg.secrets.database_url is None:
        raise ConfigError("vo2max-dr:databaseUrl is not set: `pulumi config set --secret "
                          "vo2max-dr:databaseUrl 'postgresql://...'`")
    if cfg.secrets.drill_database_url is None:
        raise ConfigError("vo2max-dr:drillDatabaseUrl is not set: the monthly drill restores into "
                          "scratch databases on a server where its role has CREATEDB: "
                          "`pulumi config set --secret vo2max-dr:drillDatabaseUrl "
                          "'postgresql://drill@scratch.internal:5432/postgres'`")
    recovery_public_key = cfg.require_recovery_public_key()
    tags = dict(cfg.tags)
    gcs_bucket = _attr(gcp, "bucket_name")
    azure_container_url = _attr(azure, "container_url")

    # Job settings that are not secret, shared by every function and the restore laptop.
    settings: dict[str, pulumi.Input[str]] = {
        "VO2DR_ENVIRONMENT": cfg.environment,
        "VO2DR_STRATEGY": cfg.strategy.to_json(),
        "VO2DR_S3_BUCKET": aws.bucket_name,
        "VO2DR_KMS_KEY_ID": aws.key_arn,
    }
    # How each Lambda reaches GCS and Azure without keys, through the stores' workload
    # identity federation: backup (the AWS backup writer role) as the writer service account /
    # identity, status (monitor role) and drill (restore reader role) as the reader ones, which
    # can only view and list. Not secret: an external-account config names an audience and a
    # service account, a client id names an identity.
    writer_env: dict[str, pulumi.Input[str]] = {}
    reader_env: dict[str, pulumi.Input[str]] = {}
    # The snapshot pruner signs in to GCS and Azure as its own identities (infra/*/pruner.py).
    pruner_env: dict[str, pulumi.Input[str]] = {}
    if gcs_bucket is not None:
        settings["VO2DR_GCS_BUCKET"] = gcs_bucket
        settings["GOOGLE_CLOUD_PROJECT"] = cfg.gcp.project
        # Every upload to GCS carries its Object Retention Lock (infra/gcp/storage.py).
        settings.update(gcp.retention_env)
        writer_env.update(_gcs_sign_in(_attr(gcp, "credential_config")))
        reader_env.update(_gcs_sign_in(_attr(gcp, "reader_credential_config")))
        pruner_env.update(_gcs_sign_in(_attr(gcp, "pruner_credential_config")))
    if azure_container_url is not None:
        settings["VO2DR_AZURE_CONTAINER_URL"] = azure_container_url
        writer_env.update(_azure_sign_in(cfg, _attr(azure, "writer_client_id")))
        reader_env.update(_azure_sign_in(cfg, _attr(azure, "reader_client_id")))
        pruner_env.update(_azure_sign_in(cfg, _attr(azure, "pruner_client_id")))
    # Manifest signatures (docs/backup-authenticity.md): the backup function signs with a KMS
    # key only its writer role may use; every reader trusts the configured public halves.
    signing = SigningKey(cfg.name("signing"), SigningKeyArgs(
        account_id=cfg.aws.account_id, alias=f"alias/{cfg.name('signing')}",
        description=f"{cfg.name('signing')}: signs every backup manifest of the job",
        signer_role_arn=aws.roles.writer_arn, tags=tags, protect=cfg.is_production))
    writer_env["VO2DR_SIGNING_KEY"] = signing.arn
    if cfg.signing_public_keys:
        settings["VO2DR_SIGNING_PUBLIC_KEYS"] = cfg.signing_public_keys
    else:
        pulumi.log.warn(f"{cfg.name('signing')}: vo2max-dr:signingPublicKeys is not set: until "
                        "it is, backups are signed but every reader (status, drill, restore) "
                        "refuses them; see docs/backup-authenticity.md")
    # Drill records (vo2dr.records) are signed with a key of their own that only the drill
    # function may use (not its role, which operators assume; infra/aws/signing.py), trusted
    # for records only: the drill can never sign a manifest.
    record_signing = SigningKey(cfg.name("record-signing"), SigningKeyArgs(
        account_id=cfg.aws.account_id, alias=f"alias/{cfg.name('record-signing')}",
        description=f"{cfg.name('record-signing')}: signs the drill's records, never a manifest",
        signer_role_arn=aws.roles.reader_arn, purpose="records",
        signer_function_arn=function_arn(cfg.aws.region, cfg.aws.account_id, cfg.name("drill")),
        signer_role_name=aws.roles.reader_name, tags=tags, protect=cfg.is_production))
    drill_env: dict[str, pulumi.Input[str]] = {"VO2DR_RECORD_SIGNING_KEY": record_signing.arn}
    # Who reads records (`vo2dr report`, run with restoreEnvironment) trusts these for records
    # only; no function reads records.
    record_trust: dict[str, pulumi.Input[str]] = {}
    if cfg.record_public_keys:
        record_trust["VO2DR_RECORD_PUBLIC_KEYS"] = cfg.record_public_keys
    else:
        pulumi.log.warn(f"{cfg.name('record-signing')}: vo2max-dr:recordPublicKeys is not set: "
                        "until it is, the drill signs its records but `vo2dr report` shows "
                        "them as not proven ours and does not count them; see "
                        "docs/backup-authenticity.md")
    # The recovery public key is plain config (a public key), so the functions' environment
    # holds no secret and previews show it. The strategy is not in the functions' environment
    # (Lambda allows 4 KB of it, and the strategy grows with its sanity queries): it ships in
    # the artifact, named by VO2DR_STACK_FILE. The standby and a restore laptop keep it in
    # VO2DR_STRATEGY (no such limit there).
    function_env = {**{k: v for k, v in settings.items() if k != "VO2DR_STRATEGY"},
                    "VO2DR_STACK_FILE": packaging.STRATEGY_PATH,
                    "VO2DR_RECOVERY_PUBLIC_KEY": recovery_public_key}
    strategy_json = cfg.strategy.to_json()

    secrets = {SECRET_DATABASE_URL: cfg.secrets.database_url,
               SECRET_DRILL_DATABASE_URL: cfg.secrets.drill_database_url}
    if cfg.secrets.alert_webhook_url is not None:
        secrets[SECRET_ALERT_WEBHOOK] = cfg.secrets.alert_webhook_url
    status_secrets = ({"VO2DR_ALERT_WEBHOOK_SECRET": SECRET_ALERT_WEBHOOK}
                      if SECRET_ALERT_WEBHOOK in secrets else {})
    # The application sources' functions read the repository token (when the stack sets one)
    # and, for the config, exactly the app secrets the stack names.
    source_secret_env: dict[str, str] = {}
    if cfg.secrets.repository_token is not None:
        secrets[SECRET_REPOSITORY_TOKEN] = cfg.secrets.repository_token
        source_secret_env["VO2DR_REPOSITORY_TOKEN_SECRET"] = SECRET_REPOSITORY_TOKEN
    app_secret_arns = app_secret_grants(cfg)
    app_parameter_arns, app_parameter_path_arns = app_parameter_grants(cfg)
    source_kinds = sorted(cfg.strategy.application.sources()) if cfg.strategy.application \
        else []
    snapshots = cfg.snapshot_roots()
    if snapshots:
        require_prune_schedule(cfg)
    roles = aws.roles
    # Only the functions that connect to the database run in its VPC (when one is set); the
    # status check reads the stores only.
    vpc = cfg.runtime.in_vpc
    # One backup function per data class, so one class's run never delays another's.
    specs = [
        FunctionSpec(f"backup-{name}", cfg.name(f"backup-{name}"), roles.writer_name,
                     roles.writer_arn, {"VO2DR_DATABASE_URL_SECRET": SECRET_DATABASE_URL},
                     writer_env, in_vpc=vpc)
        for name in sorted(cfg.data_classes)
    ] + [
        # One per application source (issue 16): the repository token, and for the config
        # exactly the app secrets named in the stack; no database URL, no VPC.
        FunctionSpec(f"backup-{kind}", cfg.name(f"backup-{kind}"), roles.writer_name,
                     roles.writer_arn, source_secret_env, writer_env,
                     app_secret_arns=app_secret_arns if kind == "config" else (),
                     app_parameter_arns=app_parameter_arns if kind == "config" else (),
                     app_parameter_path_arns=app_parameter_path_arns if kind == "config"
                     else ())
        for kind in source_kinds
    ] + [
        # One per snapshot source (issue 17): read-only on its origins and on its own
        # manifests and indexes (the dedup base), pinned to the function; no secret, no VPC.
        # The Lambda timeout is the snapshot's deadline: the job stops taking objects before
        # it and writes a partial snapshot the next run continues from.
        FunctionSpec(f"backup-{r.source}", cfg.name(f"backup-{r.source}"), roles.writer_name,
                     roles.writer_arn, {}, writer_env, origins=r.s3_origins,
                     read_objects=snapshot_reads(r.root))
        for r in snapshots
    ] + ([
        # The snapshot pruner (infra/aws/pruner.py): its own role and cross-cloud identities.
        # It marks content only once its lock has ended (last modified + lockDays).
        FunctionSpec("prune", cfg.name("prune"), aws.pruner.name, aws.pruner.arn, {},
                     {**pruner_env, "VO2DR_LOCK_DAYS": str(cfg.immutability.lock_days)})
    ] if snapshots else []) + [
        # The status check keeps its last alert under status/<env>/ (vo2dr.status), so it posts
        # to the webhook on a change only.
        FunctionSpec("status", cfg.name("status"), roles.monitor_name, roles.monitor_arn,
                     status_secrets, reader_env, state_prefix=cfg.status_prefix),
        # The drill restores into a scratch database on its own server, dropped afterwards.
        FunctionSpec("drill", cfg.name("drill"), roles.reader_name, roles.reader_arn,
                     {"VO2DR_DRILL_DATABASE_URL_SECRET": SECRET_DRILL_DATABASE_URL},
                     {**reader_env, **drill_env}, in_vpc=vpc),
    ]
    rt, mon = cfg.runtime, cfg.monitoring
    functions = JobFunctions(cfg.name("functions"), JobFunctionsArgs(
        account_id=cfg.aws.account_id, region=cfg.aws.region, functions=specs,
        code=packaging.lambda_archive(rt.lambda_architecture, strategy_json),
        runtime=packaging.LAMBDA_RUNTIME,
        architecture=rt.lambda_architecture, memory_mb=rt.lambda_memory_mb,
        timeout_seconds=rt.lambda_timeout_seconds,
        ephemeral_storage_mb=rt.lambda_ephemeral_storage_mb,
        log_retention_days=mon.log_retention_days,
        max_retry_attempts=rt.schedule_max_retry_attempts,
        max_event_age_seconds=rt.schedule_max_event_age_seconds, key_arn=aws.key_arn,
        bucket_arn=aws.bucket.arn, secrets=secrets, secret_prefix=f"vo2dr/{cfg.environment}/",
        environment=function_env,
        vpc_subnet_ids=rt.vpc_subnet_ids, vpc_security_group_ids=rt.vpc_security_group_ids,
        dlq_name=cfg.name("function-failures"), tags=tags))
    job_schedules = JobSchedules(cfg.name("schedules"), JobSchedulesArgs(
        account_id=cfg.aws.account_id, region=cfg.aws.region, group_name=cfg.name("jobs"),
        role_name=cfg.name("scheduler"), dlq_name=cfg.name("schedule-failures"),
        schedules=schedules(cfg), function_arns=functions.function_arns, key_arn=aws.key_arn,
        max_retry_attempts=rt.schedule_max_retry_attempts,
        max_event_age_seconds=rt.schedule_max_event_age_seconds, tags=tags))
    alerts = Alerts(cfg.name("alerts"), AlertsArgs(
        account_id=cfg.aws.account_id, topic_name=cfg.name("alerts"), key_arn=aws.key_arn,
        alert_email=mon.alert_email,
        rpo_seconds={n: dc.rpo_seconds for n, dc in cfg.data_classes.items()},
        source_rpo_seconds=source_rpo_seconds(cfg),
        period_seconds=mon.status_every_minutes * 60,
        function_names=functions.function_names,
        dlq_names={"function": functions.dlq.name, "schedule": job_schedules.dlq.name},
        name_prefix=f"vo2dr-{cfg.environment}", tags=tags))

    standby = None
    if cfg.gcp.enabled and gcs_bucket is not None:
        from infra.gcp.signing import StandbySigningKey, StandbySigningKeyArgs
        from infra.gcp.standby import Standby, StandbyArgs, parse_image

        standby_env: dict[str, pulumi.Input[str]] = {
            k: v for k, v in {**settings, **function_env}.items()
            if k in ("VO2DR_ENVIRONMENT", "VO2DR_STRATEGY", "GOOGLE_CLOUD_PROJECT",
                     "VO2DR_AZURE_CONTAINER_URL", "VO2DR_RECOVERY_PUBLIC_KEY",
                     "VO2DR_SIGNING_PUBLIC_KEYS", *gcp.retention_env)}
        # The standby signs with a Cloud KMS key of its own (AWS may be down), usable by its
        # service account only (granted below, once the account exists).
        standby_signing = StandbySigningKey(cfg.name("standby-signing"), StandbySigningKeyArgs(
            project=cfg.gcp.project, location=cfg.gcp.region,
            key_ring_name=cfg.name("standby-signing"), key_name=cfg.name("standby-signing"),
            protect=cfg.is_production, labels=_labels(tags)))
        standby_env["VO2DR_SIGNING_KEY"] = standby_signing.version_name
        standby_azure = azure_container_url is not None and _attr(azure, "access") is not None
        if standby_azure:
            # The standby writes the Azure copy as the Azure writer identity, signing in with a
            # Google-signed ID token of its own service account (fetched from the Cloud Run
            # metadata server), never with an AWS token: AWS may be the cloud that is down.
            standby_env.update({**_azure_sign_in(cfg, azure.writer_client_id),
                                "VO2DR_AZURE_ASSERTION": "gcp"})
        standby_secrets = {"DATABASE_URL": cfg.secrets.database_url}
        # The application sources too (issue 16), each on its class's schedule; the repository
        # token as a Secret Manager secret of its own (the AWS copy is out of reach in an AWS
        # outage), mounted into the source jobs only.
        app = cfg.strategy.application
        standby_sources = [(kind, cfg.strategy.source_class(kind))
                           for kind in sorted(app.sources() if app else ())]
        standby_source_secrets = ({"VO2DR_REPOSITORY_TOKEN": cfg.secrets.repository_token}
                                  if standby_sources and cfg.secrets.repository_token is not None
                                  else {})
        standby = Standby(cfg.name("standby"), StandbyArgs(
            project=cfg.gcp.project, region=cfg.gcp.region, name_prefix=f"vo2dr-{cfg.environment}",
            image=parse_image(rt.cloud_run_image, cfg.gcp.project),
            data_classes=[cfg.data_classes[n] for n in sorted(cfg.data_classes)],
            offset_minutes=mon.standby_offset_minutes, cpu=rt.cloud_run_cpu,
            memory=rt.cloud_run_memory, timeout_seconds=rt.cloud_run_timeout_seconds,
            max_retries=rt.schedule_max_retry_attempts, bucket_name=gcs_bucket,
            creator_role=gcp.access.creator_role_name,
            environment=standby_env, secrets=standby_secrets, labels=_labels(tags),
            deletion_protection=cfg.is_production, sources=standby_sources,
            source_secrets=standby_source_secrets))
        if standby_azure:
            azure.access.trust_google_service_account("standby", standby.job_sa.unique_id)
        standby_signing.allow_signer(standby.job_sa.email.apply(lambda e: f"serviceAccount:{e}"))
        pulumi.export("gcpStandbySigningKeyVersion", standby_signing.version_name)

    # What a restore laptop sets (plus its own credentials and --target-url): no secret in it.
    # Having assumed the restore-reader role, it signs in to GCS and Azure as their readers.
    restore_env = {**{k: v for k, v in settings.items()}, **reader_env, **record_trust,
                   "AWS_REGION": cfg.aws.region, "AWS_DEFAULT_REGION": cfg.aws.region}
    pulumi.export("awsSigningKeyArn", signing.arn)
    pulumi.export("awsRecordSigningKeyArn", record_signing.arn)
    pulumi.export("lambdaFunctionNames", functions.function_names)
    pulumi.export("scheduleGroupName", job_schedules.group.name)
    pulumi.export("scheduleNames", job_schedules.schedule_names)
    pulumi.export("deadLetterQueueArns", {"function": functions.dlq_arn,
                                          "schedule": job_schedules.dlq_arn})
    pulumi.export("alertTopicArn", alerts.topic_arn)
    pulumi.export("databaseUrlSecretArn", functions.secret_arns[SECRET_DATABASE_URL])
    pulumi.export("restoreEnvironment", restore_env)
    # The functions' exact environment, to reproduce a run locally. Not secret: it holds no
    # secret value (the database URL and the webhook are named by their secrets' ARNs). Its
    # VO2DR_STACK_FILE is inside the artifact; locally, unpack the artifact there or use
    # restoreEnvironment's VO2DR_STRATEGY.
    pulumi.export("jobEnvironment", function_env)
    # Each function's environment against Lambda's limit (the program fails above it), shown by
    # `make plan`. The artifact's size is not a stack output: it exists only once built.
    pulumi.export("lambdaEnvironmentBytes", {
        "limit": LAMBDA_ENVIRONMENT_LIMIT_BYTES, **functions.environment_sizes})
    if standby is not None:
        pulumi.export("standbyJobNames", standby.job_names)
        pulumi.export("standbySchedulerNames", standby.scheduler_names)
        pulumi.export("standbyImageRepository", standby.repository.name)
    return Runtime(functions, job_schedules, alerts, standby, restore_env)


def _labels(tags: Mapping[str, str]) -> dict[str, str]:
    """GCP labels: lower-case keys and values of [a-z0-9_-]."""
    def clean(s: str) -> str:
        return "".join(c if c.isalnum() or c in "_-" else "-" for c in s.lower())[:63]
    return {clean(k): clean(v) for k, v in tags.items()}
