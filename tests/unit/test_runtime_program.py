"""The job as infrastructure (issue 6), from the real program under Pulumi mocks, per stack:
schedules against each class's RPO, the drill cron, one function per backup class, dead-letter
queues, alarm thresholds, no plaintext secret anywhere, least privilege, and the GCP standby.

Schedule expressions are not compared with strings: a small evaluator below parses rate(),
EventBridge cron() and Unix cron, lists the instants a schedule fires, and the tests measure
the largest gap between two runs against the RPO read from the stack file.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from vo2dr.exceptions import ConfigError
from vo2dr.strategy import parse_strategy

from dev.mockrun import (
    SECRET_SIG,
    TEST_RECOVERY_PUBLIC_KEY,
    TEST_SECRETS,
    Graph,
    Resource,
    plaintext_leaks,
    run_program,
    stack_settings,
)
from tests.app_secrets import app_secret_arns, origin_arns, snapshot_roots
from tests.cron_eval import Cron, max_gap_seconds
from tests.iam_check import RESOURCELESS_ACTION, check_policy
from tests.program_graphs import STACKS, GraphCache

NS = "vo2max-dr"
FUNCTION = "aws:lambda/function:Function"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
SCHEDULE = "aws:scheduler/schedule:Schedule"
QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SECRET = "aws:secretsmanager/secret:Secret"
TOPIC = "aws:sns/topic:Topic"
KEY = "aws:kms/key:Key"
RUN_JOB = "gcp:cloudrunv2/job:Job"
SCHEDULER_JOB = "gcp:cloudscheduler/job:Job"
ROOT = Path(__file__).resolve().parents[2]
# One backup function per data class (the classes infra.config accepts), then status and drill.
BACKUP_JOBS = ("backup-critical", "backup-full", "backup-important")
# One per application source (issue 16; both stack files set vo2max-dr:application).
SOURCE_JOBS = ("backup-code", "backup-config")
# One per snapshot source and the snapshot pruner (issue 17: tests/unit/test_snapshot_program.py).
SNAPSHOT_JOBS = ("backup-assets", "backup-logs", "prune")
ALL_JOBS = (*BACKUP_JOBS, *SOURCE_JOBS, *SNAPSHOT_JOBS, "status", "drill")

# ---- the program -------------------------------------------------------------------------

graph_of = GraphCache()


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


@pytest.fixture
def g(stack) -> Graph:
    return graph_of(stack)


@pytest.fixture
def settings(stack) -> dict[str, Any]:
    return stack_settings(stack)


def data_classes(settings: dict[str, Any]):
    """The classes with a database backup (its own function, schedule and standby job)."""
    return parse_strategy(settings[f"{NS}:dataClasses"]).database_classes


def monitoring(settings: dict[str, Any]) -> dict[str, Any]:
    return settings[f"{NS}:monitoring"]


def runtime_cfg(settings: dict[str, Any]) -> dict[str, Any]:
    return settings[f"{NS}:runtime"]


def function(g: Graph, job: str) -> Resource:
    return g.one(FUNCTION, f"-{job}")


def unwrap(value: Any) -> Any:
    """A deserialised input that carries a secret comes wrapped as {sig: secret, value: ...}."""
    if isinstance(value, dict) and set(value) == {SECRET_SIG, "value"}:
        return value["value"]
    return value


def function_env(g: Graph, job: str) -> dict[str, str]:
    return unwrap(function(g, job).inputs["environment"])["variables"]


def schedule(g: Graph, key: str) -> Resource:
    found = [r for r in g.of_type(SCHEDULE) if r.inputs["name"] == key]
    assert len(found) == 1, key
    return found[0]


def queue(g: Graph, arn: str) -> Resource:
    return next(q for q in g.of_type(QUEUE) if q.outputs["arn"] == arn)


def key_arn(g: Graph) -> str:
    return g.one(KEY, "backup-key").outputs["arn"]


def test_one_backup_schedule_per_class_meets_its_rpo(g, settings):
    classes = data_classes(settings)
    for name, dc in classes.items():
        s = schedule(g, f"backup-{name}")
        expression = s.inputs["scheduleExpression"]
        assert max_gap_seconds(expression) <= dc.rpo_seconds, (name, expression)
        assert s.inputs["scheduleExpressionTimezone"] == "UTC"
        assert s.inputs["target"]["arn"] == function(g, f"backup-{name}").outputs["arn"]
        assert json.loads(s.inputs["target"]["input"])["data_class"] == name
    full = schedule(g, "backup-full").inputs["scheduleExpression"]
    hour, minute = classes["full"].daily_at_utc.split(":")
    runs = Cron(full).runs(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC))
    assert {(r.hour, r.minute) for r in runs} == {(int(hour), int(minute))}
    # One per data class, and one per application source, snapshot sources included
    # (tests/unit/test_sources_program.py, tests/unit/test_snapshot_program.py).
    app = parse_strategy(settings[f"{NS}:dataClasses"],
                         application=settings.get(f"{NS}:application")).application
    assert len([r for r in g.of_type(SCHEDULE) if r.inputs["name"].startswith("backup-")]) == \
        len(classes) + len(app.all_sources() if app else ())


def test_status_and_drill_schedules_come_from_monitoring(g, settings):
    mon = monitoring(settings)
    status = schedule(g, "status")
    assert status.inputs["target"]["arn"] == function(g, "status").outputs["arn"]
    assert max_gap_seconds(status.inputs["scheduleExpression"]) == mon["statusEveryMinutes"] * 60
    assert status.inputs["scheduleExpressionTimezone"] == "UTC"
    drill = schedule(g, "drill")
    assert drill.inputs["target"]["arn"] == function(g, "drill").outputs["arn"]
    assert drill.inputs["scheduleExpression"] == mon["drillSchedule"]
    runs = Cron(drill.inputs["scheduleExpression"]).runs(
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert len(runs) == 12
    assert all(r.weekday() == 0 and r.day <= 7 and (r.hour, r.minute) == (9, 0) for r in runs)


def status_runs_after_each_backup(g: Graph, settings: dict[str, Any]) -> None:
    """Every backup instant of the tightest class is followed, statusOffsetMinutes later, by a
    status check, and no check runs at a backup instant of any class (where the newest backup
    would still be the previous window's: RPO + dump duration old, a breach every time)."""
    offset = timedelta(minutes=monitoring(settings)["statusOffsetMinutes"])
    start = datetime(2026, 3, 2, tzinfo=UTC)
    end = start + timedelta(days=2)
    status = set(Cron(schedule(g, "status").inputs["scheduleExpression"]).runs(start, end))
    classes = data_classes(settings)
    tightest = min(classes.values(), key=lambda dc: dc.rpo_minutes)
    for name in classes:
        backups = Cron(schedule(g, f"backup-{name}").inputs["scheduleExpression"]).runs(start, end)
        assert not status & set(backups), name
        if name == tightest.name:
            assert all(b + offset in status for b in backups if b + offset < end)


def test_status_checks_run_offset_after_the_backup_instants(g, settings):
    assert 0 < monitoring(settings)["statusOffsetMinutes"] < min(
        dc.rpo_minutes for dc in data_classes(settings).values())
    status_runs_after_each_backup(g, settings)


def test_changing_the_status_offset_moves_the_status_schedule():
    overrides = {f"{NS}:monitoring.statusOffsetMinutes": 7}
    g = run_program("staging", overrides)
    expression = schedule(g, "status").inputs["scheduleExpression"]
    runs = Cron(expression).runs(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 2, 1,
                                                                          tzinfo=UTC))
    assert [r.minute for r in runs] == [7, 22, 37, 52]
    settings = stack_settings("staging")
    settings[f"{NS}:monitoring"] = {**settings[f"{NS}:monitoring"], "statusOffsetMinutes": 7}
    status_runs_after_each_backup(g, settings)


def test_every_schedule_retries_and_has_an_encrypted_dead_letter_queue(g, settings):
    rt = runtime_cfg(settings)
    arns = set()
    for s in g.of_type(SCHEDULE):
        target = s.inputs["target"]
        assert target["retryPolicy"] == {
            "maximumRetryAttempts": rt["scheduleMaxRetryAttempts"],
            "maximumEventAgeInSeconds": rt["scheduleMaxEventAgeSeconds"]}
        assert s.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
        arns.add(target["deadLetterConfig"]["arn"])
    assert len(arns) == 1
    assert queue(g, arns.pop()).inputs["kmsMasterKeyId"] == key_arn(g)


def test_functions_size_concurrency_failure_destination_and_logs(g, settings):
    rt, mon = runtime_cfg(settings), monitoring(settings)
    for job in ALL_JOBS:
        fn = function(g, job)
        assert fn.inputs["runtime"] == "python3.12"
        assert fn.inputs["handler"] == f"vo2dr.handlers.{job.partition('-')[0]}_handler"
        assert fn.inputs["memorySize"] == rt["lambdaMemoryMb"]
        assert fn.inputs["timeout"] == rt["lambdaTimeoutSeconds"]
        assert fn.inputs["ephemeralStorage"] == {"size": rt["lambdaEphemeralStorageMb"]}
        assert fn.inputs["architectures"] == [rt["lambdaArchitecture"]]
        invoke = next(c for c in g.of_type(INVOKE_CONFIG)
                      if c.inputs["functionName"] == fn.outputs["name"])
        dlq = queue(g, invoke.inputs["destinationConfig"]["onFailure"]["destination"])
        assert dlq.inputs["kmsMasterKeyId"] == key_arn(g)
        logs = g.one(LOG_GROUP, f"-{job}-logs")
        assert logs.inputs["name"] == f"/aws/lambda/{fn.outputs['name']}"
        assert logs.inputs["retentionInDays"] == mon["logRetentionDays"]
        assert logs.inputs["kmsKeyId"] == key_arn(g)
        assert fn.inputs["loggingConfig"]["logGroup"] == logs.inputs["name"]


def test_functions_environment_names_the_secret_never_the_value(g, settings):
    secret_arns = {s.outputs["arn"]: s for s in g.of_type(SECRET)}
    for s in secret_arns.values():
        assert s.inputs["kmsKeyId"] == key_arn(g)
    backup_env = function_env(g, "backup-critical")
    assert "DATABASE_URL" not in backup_env
    assert backup_env["VO2DR_DATABASE_URL_SECRET"] in secret_arns
    # The strategy ships in the artifact (issue 11 item 7), named by VO2DR_STACK_FILE; the
    # standby and a restore laptop get it as VO2DR_STRATEGY, with the intraday tier's window
    # and lock mode (the job locks intraday objects with them).
    assert "VO2DR_STRATEGY" not in backup_env
    assert backup_env["VO2DR_STACK_FILE"] == "/var/task/vo2dr-strategy.json"
    assert json.loads(g.outputs["restoreEnvironment"]["VO2DR_STRATEGY"]) == {
        "dataClasses": {n: c.to_json() for n, c in
                        parse_strategy(settings[f"{NS}:dataClasses"]).data_classes.items()},
        "retention": {"intradayHours": settings[f"{NS}:retention"]["intradayHours"]},
        "immutability": {"mode": settings[f"{NS}:immutability"]["mode"]},
        # The stack's compression level and threads (issue 19).
        "compression": settings[f"{NS}:compression"],
        # The application sources (issue 16): repository, paths, secret names, never a value.
        **({"application": parse_strategy(
            settings[f"{NS}:dataClasses"],
            application=settings[f"{NS}:application"]).application.to_json()}
           if f"{NS}:application" in settings else {})}
    assert backup_env["VO2DR_ENVIRONMENT"] == stack_env(settings)
    for var in ("VO2DR_S3_BUCKET", "VO2DR_KMS_KEY_ID", "VO2DR_GCS_BUCKET",
                "VO2DR_AZURE_CONTAINER_URL"):
        assert backup_env[var], var
    # The drill restores on its own scratch server, never with the backup's read-only role.
    drill_secret = function_env(g, "drill")["VO2DR_DRILL_DATABASE_URL_SECRET"]
    assert drill_secret in secret_arns
    assert drill_secret != backup_env["VO2DR_DATABASE_URL_SECRET"]
    assert "VO2DR_DATABASE_URL_SECRET" not in function_env(g, "drill")
    status_env = function_env(g, "status")
    assert status_env["VO2DR_ALERT_WEBHOOK_SECRET"] in secret_arns
    assert "VO2DR_ALERT_WEBHOOK" not in status_env


def test_each_function_signs_in_to_gcs_and_azure_as_its_own_identity(g, settings):
    """Backup as the writer service account / identity; status (monitor role) and drill
    (restore reader role) as the reader ones, so they can list and read GCS and Azure, never
    write there."""
    o = g.outputs
    tenant = settings[f"{NS}:clouds"]["azure"]["tenantId"]
    expected = {
        **{job: (o["gcsCredentialConfig"], o["azureWriterClientId"]) for job in BACKUP_JOBS},
        "status": (o["gcsReaderCredentialConfig"], o["azureReaderClientId"]),
        "drill": (o["gcsReaderCredentialConfig"], o["azureReaderClientId"]),
    }
    for job, (gcs_config, client_id) in expected.items():
        env = function_env(g, job)
        assert env["VO2DR_GCS_CREDENTIAL_CONFIG"] == gcs_config, job
        assert (env["VO2DR_AZURE_TENANT_ID"], env["VO2DR_AZURE_CLIENT_ID"]) == (
            tenant, client_id), job
        assert "VO2DR_AZURE_ASSERTION" not in env, job  # AWS tokens, the default
        assert env["VO2DR_GCS_BUCKET"] and env["VO2DR_AZURE_CONTAINER_URL"], job
    impersonates = {job: json.loads(function_env(g, job)["VO2DR_GCS_CREDENTIAL_CONFIG"])[
        "service_account_impersonation_url"] for job in expected}
    assert all(o["gcsWriterServiceAccount"] in impersonates[job] for job in BACKUP_JOBS)
    for job in ("status", "drill"):
        assert o["gcsReaderServiceAccount"] in impersonates[job], job
        assert o["gcsWriterServiceAccount"] not in impersonates[job], job


def test_the_standby_signs_in_to_azure_with_its_google_identity(g, settings):
    """AWS may be down when the standby runs, so its Azure sign-in must not depend on AWS: a
    Google ID token of its own service account, trusted by the Azure writer identity."""
    tenant = settings[f"{NS}:clouds"]["azure"]["tenantId"]
    for job in g.of_type(RUN_JOB):
        [container] = job.inputs["template"]["template"]["containers"]
        env = {e["name"]: e.get("value") for e in container["envs"]}
        assert env["VO2DR_AZURE_CONTAINER_URL"] == g.outputs["azureContainerUrl"]
        assert env["VO2DR_AZURE_TENANT_ID"] == tenant
        assert env["VO2DR_AZURE_CLIENT_ID"] == g.outputs["azureWriterClientId"]
        assert env["VO2DR_AZURE_ASSERTION"] == "gcp"
        assert "VO2DR_GCS_CREDENTIAL_CONFIG" not in env  # GCS through its own service account
    sa = g.one("gcp:serviceaccount/account:Account", "standby-job-sa")
    writer = g.one("azure-native:managedidentity:UserAssignedIdentity", "access-writer")
    [trust] = [c for c in g.of_type("azure-native:managedidentity:FederatedIdentityCredential")
               if c.inputs["issuer"] == "https://accounts.google.com"]
    assert trust.inputs["subject"] == sa.outputs["uniqueId"]
    assert trust.inputs["resourceName"] == writer.outputs["name"]
    assert trust.inputs["audiences"] == ["api://AzureADTokenExchange"]


def test_without_azure_the_standby_gets_no_azure_settings():
    g = run_program("staging", {f"{NS}:clouds.azure.enabled": False})
    for job in g.of_type(RUN_JOB):
        [container] = job.inputs["template"]["template"]["containers"]
        assert not [e for e in container["envs"] if "AZURE" in e["name"]]
    for job in ("status", "drill"):
        env = function_env(g, job)
        assert not [k for k in env if "AZURE" in k], job
        assert env["VO2DR_GCS_CREDENTIAL_CONFIG"] == g.outputs["gcsReaderCredentialConfig"]


def stack_env(settings: dict[str, Any]) -> str:
    return settings[f"{NS}:environment"]


def test_no_secret_value_in_any_resource_input(g):
    needles = [v.strip() for v in TEST_SECRETS.values()]
    leaks = {r.name: plaintext_leaks(r, needles) for r in g.resources}
    assert not {k: v for k, v in leaks.items() if v}


def test_alarms_fire_above_each_rpo_and_notify_the_encrypted_topic(g, settings):
    topic = g.one(TOPIC)
    assert topic.inputs["kmsMasterKeyId"] == key_arn(g)
    subs = g.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert [(s.inputs["protocol"], s.inputs["endpoint"]) for s in subs] == [
        ("email", monitoring(settings)["alertEmail"])]
    alarms = {a.inputs["name"]: a for a in g.of_type(ALARM)}
    prefix = f"vo2dr-{stack_env(settings)}"
    for name, dc in data_classes(settings).items():
        age = alarms[f"{prefix}-{name}-backup-age"]
        assert age.inputs["metricName"] == "BackupAgeSeconds"
        assert age.inputs["dimensions"] == {"DataClass": name}
        assert age.inputs["threshold"] == dc.rpo_seconds
        assert age.inputs["comparisonOperator"] == "GreaterThanThreshold"
        # One late backup is one breaching check; two in a row alarm (threshold still the RPO).
        assert age.inputs["evaluationPeriods"] == 2
        assert age.inputs["datapointsToAlarm"] == 2
        assert age.inputs["treatMissingData"] == "breaching"
        mismatch = alarms[f"{prefix}-{name}-replica-mismatch"]
        assert mismatch.inputs["metricName"] == "ReplicaMismatch"
        assert mismatch.inputs["threshold"] == 0
    # Each application source alarms on its own age (dimension Source) at its class's RPO,
    # read from the stack file here, not from the program.
    app = settings[f"{NS}:application"]
    strategy = parse_strategy(settings[f"{NS}:dataClasses"], application=app)
    sources = sorted(strategy.application.all_sources())
    assert {"code", "config", "assets", "logs"} <= set(sources)
    for kind in sources:
        age = alarms[f"{prefix}-source-{kind}-backup-age"]
        assert age.inputs["metricName"] == "BackupAgeSeconds"
        assert age.inputs["dimensions"] == {"Source": kind}
        classes = parse_strategy(settings[f"{NS}:dataClasses"]).data_classes
        assert age.inputs["threshold"] == classes[app[kind]["dataClass"]].rpo_seconds
        assert age.inputs["treatMissingData"] == "breaching"
        assert (age.inputs["evaluationPeriods"], age.inputs["datapointsToAlarm"]) == (2, 2)
    for job in ALL_JOBS:
        errors = alarms[f"{prefix}-{job}-errors"]
        assert errors.inputs["dimensions"] == {"FunctionName": function(g, job).outputs["name"]}
        assert (errors.inputs["evaluationPeriods"], errors.inputs["datapointsToAlarm"]) == (1, 1)
    for a in alarms.values():
        assert a.inputs["alarmActions"] == [topic.outputs["arn"]]
        assert a.inputs["period"] == monitoring(settings)["statusEveryMinutes"] * 60


def test_changing_an_rpo_changes_the_schedule_the_alarm_and_the_standby():
    g = run_program("staging", {f"{NS}:dataClasses.critical.rpoMinutes": 30,
                                f"{NS}:dataClasses.important.rpoMinutes": 120})
    assert max_gap_seconds(schedule(g, "backup-critical").inputs["scheduleExpression"]) == 1800
    assert max_gap_seconds(schedule(g, "backup-important").inputs["scheduleExpression"]) == 7200
    alarms = {a.inputs["name"]: a.inputs["threshold"] for a in g.of_type(ALARM)}
    assert alarms["vo2dr-staging-critical-backup-age"] == 1800
    assert alarms["vo2dr-staging-important-backup-age"] == 7200
    trigger = g.one(SCHEDULER_JOB, "-critical-trigger")
    assert max_gap_seconds(trigger.inputs["schedule"]) == 1800
    # And no number or schedule of the strategy is written in the runtime's code (docstrings
    # and comments may give examples).
    for path in ("infra/runtime.py", "infra/aws/runtime.py", "infra/aws/alerts.py",
                 "infra/gcp/standby.py"):
        assert not strategy_literals(ROOT / path), path


def strategy_literals(path: Path) -> list[Any]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docstrings:
            continue
        if isinstance(node.value, int) and node.value in (15, 900, 3600, 86400, 1440, 240):
            found.append(node.value)
        if isinstance(node.value, str) and re.search(r"rate\(\d|cron\(\d|MON#|\d+ minutes",
                                                     node.value):
            found.append(node.value)
    return found


def test_standby_runs_each_class_offset_after_the_primary_window(g, settings):
    mon, rt = monitoring(settings), runtime_cfg(settings)
    offset = timedelta(minutes=mon["standbyOffsetMinutes"])
    start = datetime(2026, 3, 2, tzinfo=UTC)
    end = start + timedelta(days=2)
    for name, dc in data_classes(settings).items():
        primary = set(Cron(schedule(g, f"backup-{name}").inputs["scheduleExpression"])
                      .runs(start - timedelta(days=1), end))
        trigger = g.one(SCHEDULER_JOB, f"-{name}-trigger")
        assert trigger.inputs["timeZone"] == "Etc/UTC"
        standby = Cron(trigger.inputs["schedule"]).runs(start, end)
        assert standby and all(t - offset in primary for t in standby), name
        assert max_gap_seconds(trigger.inputs["schedule"]) == min(dc.rpo_seconds, 86400)
        job = g.one(RUN_JOB, f"-standby-{name}")
        assert trigger.inputs["httpTarget"]["uri"].endswith(f"/jobs/{job.inputs['name']}:run")
        container = job.inputs["template"]["template"]["containers"][0]
        assert container["image"] == rt["cloudRunImage"]
        assert container["args"][-3:] == ["--data-class", name, "--if-missing"]
        assert container["resources"]["limits"] == {"cpu": str(rt["cloudRunCpu"]),
                                                    "memory": rt["cloudRunMemory"]}
        env = {e["name"]: e for e in container["envs"]}
        assert "value" not in env["DATABASE_URL"]
        assert env["DATABASE_URL"]["valueSource"]["secretKeyRef"]["secret"]
        assert env["VO2DR_RECOVERY_PUBLIC_KEY"]["value"] == TEST_RECOVERY_PUBLIC_KEY
        # No AWS in the standby: it must work while AWS is down.
        assert "VO2DR_S3_BUCKET" not in env and "VO2DR_KMS_KEY_ID" not in env
        assert job.inputs["template"]["template"]["timeout"] == \
            f"{rt['cloudRunTimeoutSeconds']}s"
    repo = g.one("gcp:artifactregistry/repository:Repository")
    image = rt["cloudRunImage"]
    assert image.startswith(f"{repo.inputs['location']}-docker.pkg.dev/")
    assert f"/{repo.inputs['repositoryId']}/" in image


def test_standby_identities_have_the_minimum_roles(g):
    job_sa = g.one("gcp:serviceaccount/account:Account", "standby-job-sa").outputs["member"]
    sched_sa = g.one("gcp:serviceaccount/account:Account", "standby-scheduler-sa")
    jobs = {j.outputs["name"] for j in g.of_type(RUN_JOB)}
    invokers = g.of_type("gcp:cloudrunv2/jobIamMember:JobIamMember")
    assert {(i.inputs["name"], i.inputs["role"], i.inputs["member"]) for i in invokers} == {
        (j, "roles/run.invoker", sched_sa.outputs["member"]) for j in jobs}
    bucket_roles = [b for b in g.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
                    if b.inputs["member"] == job_sa]
    # The store's own creator role (create with a retention, no delete) and viewer.
    creator = g.one("gcp:projects/iAMCustomRole:IAMCustomRole",
                    "gcs-access-creator-role").outputs["name"]
    assert {b.inputs["role"] for b in bucket_roles} == {creator, "roles/storage.objectViewer"}
    secrets = {s.outputs["secretId"] for s in g.of_type("gcp:secretmanager/secret:Secret")}
    accessors = g.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert {a.inputs["secretId"] for a in accessors} == secrets
    assert all(a.inputs["role"] == "roles/secretmanager.secretAccessor"
               and a.inputs["member"] == job_sa for a in accessors)
    # Nothing project-wide for either account.
    for typ in ("gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding"):
        for r in g.of_type(typ):
            assert r.inputs.get("member") not in (job_sa, sched_sa.outputs["member"])


def _runtime_resources(g: Graph, typ: str) -> list[Resource]:
    mine = {r.urn for r in g.resources if r.type.startswith(("vo2dr:aws:Job", "vo2dr:aws:Alerts"))
            and r.type != "vo2dr:aws:JobRoles" and r.type != "vo2dr:aws:JobPermissions"}
    return [r for r in g.of_type(typ) if r.parent in mine]


def test_runtime_policies_are_least_privilege(g, settings):
    env = stack_env(settings)
    acct = settings[f"{NS}:clouds"]["aws"]["accountId"]
    region = settings["aws:region"]
    bucket = next(b for b in g.of_type("aws:s3/bucket:Bucket")
                  if b.outputs["bucket"] == g.outputs["awsBucketName"]).outputs["arn"]
    state = f"status/{env}/"
    allowed = [key_arn(g), bucket, f"{bucket}/{state}*",
               *(q.outputs["arn"] for q in g.of_type(QUEUE)),
               *(s.outputs["arn"] for s in g.of_type(SECRET)),
               *(f.outputs["arn"] for f in g.of_type(FUNCTION)), *app_secret_arns(env),
               # The snapshot functions: their origins, their own manifests and indexes.
               *origin_arns(env), *(f"{bucket}/{r}*" for r in snapshot_roots(env).values())]
    origin_prefixes = [a.split("/", 1)[1].rstrip("*") for a in origin_arns(env) if "/" in a]
    own_logs = {f"arn:aws:logs:{region}:{acct}:log-group:/aws/lambda/vo2dr-{env}-{j}:*"
                for j in ALL_JOBS}
    policies = _runtime_resources(g, ROLE_POLICY)
    assert len(policies) == len(ALL_JOBS) + 1  # one per function, one for the scheduler
    for p in policies:
        doc = json.loads(p.inputs["policy"])
        problems = [x for x in check_policy(doc, kind="identity",
                                            list_prefixes=[state, *origin_prefixes],
                                            allowed_resources=[*allowed, *own_logs])
                    # A function's own log streams: "<log group ARN>:*" is the narrowest form.
                    if not any(f"wildcard resource {arn!r}" in x for arn in own_logs)]
        assert not problems, (p.name, problems)
        for st in doc["Statement"]:
            if any(a.startswith("logs:") for a in st["Action"]):
                assert len([st["Resource"]] if isinstance(st["Resource"], str)
                           else st["Resource"]) == 1
            if any(a.startswith("kms:") for a in st["Action"]):
                assert "kms:ViaService" in json.dumps(st.get("Condition", {})), p.name
            if any(a.startswith("s3:") for a in st["Action"]) and "status" not in p.name:
                # Else only a snapshot function, reading its origins and its own indexes.
                assert any(f"-backup-{src}-runtime" in p.name for src in snapshot_roots(env))
                assert set(st["Action"]) <= {"s3:GetObject", "s3:GetObjectVersion",
                                             "s3:ListBucket"}, (p.name, st)
                assert "lambda:SourceFunctionArn" in json.dumps(st["Condition"])
                continue
            if any(a.startswith("s3:") for a in st["Action"]):
                assert "status" in p.name, p.name  # only the status check, only its state
                assert all(r == bucket or r.startswith(f"{bucket}/{state}")
                           for r in ([st["Resource"]] if isinstance(st["Resource"], str)
                                     else st["Resource"]))
            if "secretsmanager:GetSecretValue" in st["Action"]:
                assert "lambda:SourceFunctionArn" in json.dumps(st["Condition"])
    role = _runtime_resources(g, ROLE)
    assert len(role) == 1  # the scheduler's; the functions use the store's job roles
    trust = json.loads(role[0].inputs["assumeRolePolicy"])
    assert not check_policy(trust, kind="trust")
    assert trust["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"] == acct
    topic_policy = json.loads(g.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    assert not check_policy(topic_policy, kind="resource",
                            allowed_resources=[g.one(TOPIC).outputs["arn"]])


def test_no_wildcard_action_or_resource_in_any_role_of_the_program(g):
    for r in g.of_type(ROLE_POLICY) + g.of_type("aws:iam/policy:Policy"):
        for st in json.loads(r.inputs["policy"])["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            assert not [a for a in actions if "*" in a], r.name
            if actions == [RESOURCELESS_ACTION] and resources == ["*"]:
                # IAM accepts only "*" for it; test_iam.py proves its audience is pinned.
                continue
            assert "*" not in resources, r.name


def test_scheduler_invokes_only_the_three_functions(g):
    policy = next(p for p in _runtime_resources(g, ROLE_POLICY) if "schedules" in p.name)
    doc = json.loads(policy.inputs["policy"])
    invoke = next(s for s in doc["Statement"] if s["Action"] == ["lambda:InvokeFunction"])
    assert sorted(invoke["Resource"]) == sorted(f.outputs["arn"] for f in g.of_type(FUNCTION))


def test_exports_for_operators(g, settings):
    out = g.outputs
    assert set(out["lambdaFunctionNames"]) == set(ALL_JOBS)
    assert out["alertTopicArn"] == g.one(TOPIC).outputs["arn"]
    restore = out["restoreEnvironment"]
    assert restore["VO2DR_ENVIRONMENT"] == stack_env(settings)
    assert restore["VO2DR_S3_BUCKET"] == out["awsBucketName"]
    assert restore["VO2DR_GCS_BUCKET"] == out["gcsBucketName"]
    assert restore["VO2DR_AZURE_CONTAINER_URL"] == out["azureContainerUrl"]
    assert restore["VO2DR_KMS_KEY_ID"] == key_arn(g)
    # A laptop that assumed the restore-reader role reads GCS and Azure as their readers.
    assert json.loads(restore["VO2DR_GCS_CREDENTIAL_CONFIG"]) == json.loads(
        out["gcsReaderCredentialConfig"])
    assert restore["VO2DR_AZURE_CLIENT_ID"] == out["azureReaderClientId"]
    assert restore["VO2DR_AZURE_TENANT_ID"] == out["azureTenantId"]
    assert "restoreEnvironment" not in g.secret_outputs
    assert not any(v in json.dumps(restore) for v in TEST_SECRETS.values())
    # The functions' environment holds no secret value (the recovery key is a public key), so
    # previews and the export show it.
    assert "jobEnvironment" not in g.secret_outputs
    assert out["jobEnvironment"]["VO2DR_RECOVERY_PUBLIC_KEY"] == TEST_RECOVERY_PUBLIC_KEY
    # One standby job per class and per application source (tests/unit/test_sources_program.py).
    assert set(out["standbyJobNames"]) == {*data_classes(settings),
                                           *(j.removeprefix("backup-") for j in SOURCE_JOBS)}


def test_production_keeps_its_standby_jobs(stack):
    jobs = graph_of(stack).of_type(RUN_JOB)
    assert {j.inputs["deletionProtection"] for j in jobs} == {stack == "production"}


# ---- the recovery public key: plain config ------------------------------------------------

def test_recovery_public_key_is_plain_config_so_the_environment_is_not_secret(g):
    for job in ALL_JOBS:
        env = function(g, job).inputs["environment"]
        assert SECRET_SIG not in json.dumps(env), job  # previews show it, not [secret]
        assert env["variables"]["VO2DR_RECOVERY_PUBLIC_KEY"] == TEST_RECOVERY_PUBLIC_KEY
    # The standby reads it from its environment too, not from Secret Manager.
    secrets = g.of_type("gcp:secretmanager/secret:Secret")
    assert sorted(s.inputs["secretId"] for s in secrets) == [
        f"vo2dr-{g.stack}-database-url",
        f"vo2dr-{g.stack}-repository-token"]  # the application sources' (issue 16)


def _fresh_private_key_pem() -> str:
    """A real RSA private key, made for the test (never committed)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize(("value", "expected"), [
    (None, "vo2max-dr:recoveryPublicKey is not set"),
    ("not a key", "vo2max-dr:recoveryPublicKey is not usable"),
    ("private", "never put the private key in config"),
])
def test_a_missing_or_bad_recovery_public_key_says_how_to_set_it(value, expected):
    if value == "private":
        value = _fresh_private_key_pem()
    with pytest.raises(ConfigError) as err:
        run_program("staging", {f"{NS}:recoveryPublicKey": value})
    assert expected in str(err.value)
    assert ('pulumi config set vo2max-dr:recoveryPublicKey -- "$(cat recovery-public.pem)"'
            in str(err.value))


# ---- a private database: the functions in its VPC -----------------------------------------

SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
GROUPS = ["sg-0123456789abcdef0"]


def test_vpc_is_unset_in_the_stack_files(g):
    for job in ALL_JOBS:
        assert function(g, job).inputs.get("vpcConfig") is None


def test_vpc_config_puts_backup_and_drill_in_the_subnets_with_eni_rights_only():
    g = run_program("staging", {f"{NS}:runtime.vpcSubnetIds": SUBNETS,
                                f"{NS}:runtime.vpcSecurityGroupIds": GROUPS})
    for job in (*BACKUP_JOBS, "drill"):
        assert function(g, job).inputs["vpcConfig"] == {"subnetIds": SUBNETS,
                                                        "securityGroupIds": GROUPS}, job
    assert function(g, "status").inputs.get("vpcConfig") is None  # it reads stores only
    # The sources reach the repository host and Secrets Manager, never the database.
    for job in SOURCE_JOBS:
        assert function(g, job).inputs.get("vpcConfig") is None, job
    ec2 = "arn:aws:ec2:us-east-1:111111111111"
    for job in ALL_JOBS:
        policy = g.one(ROLE_POLICY, f"-{job}-runtime")
        statements = {st["Sid"]: st for st in json.loads(policy.inputs["policy"])["Statement"]}
        if job in ("status", *SOURCE_JOBS, *SNAPSHOT_JOBS):
            assert not [a for st in statements.values() for a in st["Action"]
                        if a.startswith("ec2:")]
            continue
        manage = statements["ManageVpcNetworkInterfaces"]
        assert sorted(manage["Action"]) == [
            "ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"]
        assert sorted(manage["Resource"]) == sorted([
            f"{ec2}:network-interface/*", *(f"{ec2}:subnet/{s}" for s in SUBNETS),
            *(f"{ec2}:security-group/{sg}" for sg in GROUPS)])
        # The one "Resource": "*": the two Describe actions, which have no resource type.
        describe = statements["DescribeVpcNetworkInterfaces"]
        assert sorted(describe["Action"]) == ["ec2:DescribeNetworkInterfaces",
                                              "ec2:DescribeSubnets"]
        assert describe["Resource"] == "*"
        wildcard = [st["Sid"] for st in statements.values()
                    if "*" in ([st["Resource"]] if isinstance(st["Resource"], str)
                               else st["Resource"])]
        assert wildcard == ["DescribeVpcNetworkInterfaces"], job
        # Everything else of the policy passes the least-privilege check unchanged.
        rest = {"Version": "2012-10-17", "Statement": [
            st for sid, st in statements.items() if sid != "DescribeVpcNetworkInterfaces"]}
        allowed = [key_arn(g), *(q.outputs["arn"] for q in g.of_type(QUEUE)),
                   *(x.outputs["arn"] for x in g.of_type(SECRET)), *manage["Resource"],
                   *app_secret_arns("staging"),
                   f"arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/"
                   f"vo2dr-staging-{job}:*"]
        assert not check_policy(rest, kind="identity", allowed_resources=allowed), job


@pytest.mark.parametrize(("given", "missing"), [
    ({"vpcSubnetIds": SUBNETS}, "vpcSecurityGroupIds"),
    ({"vpcSecurityGroupIds": GROUPS}, "vpcSubnetIds"),
])
def test_vpc_needs_both_subnets_and_security_groups(given, missing):
    overrides = {f"{NS}:runtime.{k}": v for k, v in given.items()}
    with pytest.raises(ConfigError) as err:
        run_program("staging", overrides)
    assert f"vo2max-dr:runtime.{missing} is missing" in str(err.value)


def test_the_runtime_refuses_a_stack_without_a_drill_server():
    from vo2dr.exceptions import ConfigError

    secrets = {k: v for k, v in TEST_SECRETS.items() if k != "drillDatabaseUrl"}
    with pytest.raises(ConfigError, match=r"vo2max-dr:drillDatabaseUrl is not set.*CREATEDB"):
        run_program("staging", secrets=secrets)


def test_lambda_never_retries_a_failed_backup_or_drill(g, settings):
    # A retry is a second full dump (or restore) queued behind reserved concurrency; the next
    # schedule and the standby are the retry. Status checks are cheap and may retry.
    by_function = {c.inputs["functionName"]: c.inputs for c in g.of_type(INVOKE_CONFIG)}
    env = stack_env(settings)
    for job in (*BACKUP_JOBS, "drill"):
        assert by_function[f"vo2dr-{env}-{job}"]["maximumRetryAttempts"] == 0, job
    assert by_function[f"vo2dr-{env}-status"]["maximumRetryAttempts"] == min(
        settings[f"{NS}:runtime"]["scheduleMaxRetryAttempts"], 2)
