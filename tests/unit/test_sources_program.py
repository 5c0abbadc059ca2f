"""The application sources in the Pulumi program (issue 16), both stacks, under mocks: one
backup function and schedule per source from its class's RPO, the repository token kept in
Secrets Manager and named (never given) to the source functions, and the config's function
alone reading exactly the app secrets the stack names."""

from __future__ import annotations

import json

import pytest
from vo2dr.exceptions import ConfigError
from vo2dr.strategy import parse_strategy

from dev.mockrun import TEST_SECRETS, run_program, stack_settings
from tests.cron_eval import max_gap_seconds
from tests.unit.test_runtime_program import (
    NS,
    ROLE_POLICY,
    SECRET,
    STACKS,
    data_classes,
    function,
    function_env,
    graph_of,
    schedule,
)


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


def application(stack: str):
    settings = stack_settings(stack)
    strategy = parse_strategy(settings[f"{NS}:dataClasses"],
                              application=settings[f"{NS}:application"])
    assert strategy.application is not None
    return strategy, strategy.application


def test_one_schedule_per_source_meets_its_class_rpo(stack):
    g = graph_of(stack)
    strategy, app = application(stack)
    assert set(app.sources()) == {"code", "config"}
    for kind in app.sources():
        s = schedule(g, f"backup-{kind}")
        dc = strategy.source_class(kind)
        assert max_gap_seconds(s.inputs["scheduleExpression"]) <= dc.rpo_seconds
        # Its own function, as each data class has (one run never delays another's).
        assert s.inputs["target"]["arn"] == function(g, f"backup-{kind}").outputs["arn"]
        assert json.loads(s.inputs["target"]["input"]) == {"job": "backup", "source": kind}


def test_repository_token_is_a_secret_named_to_the_source_functions_only(stack):
    g = graph_of(stack)
    secrets = {s.outputs["arn"]: s for s in g.of_type(SECRET)}
    arn = function_env(g, "backup-code")["VO2DR_REPOSITORY_TOKEN_SECRET"]
    assert secrets[arn].inputs["name"] == f"vo2dr/{stack}/repository-token"
    assert function_env(g, "backup-config")["VO2DR_REPOSITORY_TOKEN_SECRET"] == arn
    for job in ("status", "drill", "backup-critical", "backup-full"):
        assert "VO2DR_REPOSITORY_TOKEN_SECRET" not in function_env(g, job)
    # The source functions never get the database URL.
    for kind in ("code", "config"):
        assert "VO2DR_DATABASE_URL_SECRET" not in function_env(g, f"backup-{kind}")
        policy = json.loads(g.one(ROLE_POLICY, f"-backup-{kind}-runtime").inputs["policy"])
        own = next(st for st in policy["Statement"] if st["Sid"] == "ReadOwnSecrets")
        assert arn in own["Resource"]
    token = TEST_SECRETS["repositoryToken"]
    # Only in the secrets' versions: Secrets Manager's, and Secret Manager's for the standby.
    assert not [r.name for r in g.resources if token in json.dumps(r.inputs, default=str)
                and r.type not in ("aws:secretsmanager/secretVersion:SecretVersion",
                                   "gcp:secretmanager/secretVersion:SecretVersion")]


def test_only_the_backup_role_reads_exactly_the_named_app_secrets(stack):
    g = graph_of(stack)
    _, app = application(stack)
    assert app.config is not None and app.config.secret_names
    expected = sorted(f"arn:aws:secretsmanager:us-east-1:{acct}:secret:{n}-??????"
                      for n in app.config.secret_names
                      for acct in [stack_settings(stack)[f"{NS}:clouds"]["aws"]["accountId"]])
    readers = {}
    for policy in g.of_type(ROLE_POLICY) + g.of_type("aws:iam/policy:Policy"):
        doc = policy.inputs.get("policy")
        if not isinstance(doc, str):
            continue
        for st in json.loads(doc)["Statement"]:
            resources = st.get("Resource")
            resources = resources if isinstance(resources, list) else [resources]
            app_arns = [r for r in resources if isinstance(r, str) and ":secret:vo2max/" in r]
            if app_arns:
                readers[policy.name] = (st["Sid"], sorted(app_arns), st["Action"],
                                        st.get("Condition"))
    assert list(readers) == [g.one(ROLE_POLICY, "-backup-config-runtime").name], readers
    sid, arns, actions, condition = next(iter(readers.values()))
    assert (sid, arns, actions) == ("ReadAppSecrets", expected, ["secretsmanager:GetSecretValue"])
    # Only from inside the backup function, as for its own secrets.
    assert "lambda:SourceFunctionArn" in json.dumps(condition)


def test_a_secret_prefix_is_refused_by_the_program_naming_the_key():
    settings = stack_settings("staging")
    app = dict(settings[f"{NS}:application"])
    app["config"] = {**app["config"], "secretPrefix": "vo2max/staging/app/"}
    with pytest.raises(Exception) as err:
        run_program("staging", {f"{NS}:application": app})
    assert "vo2max-dr:application.config.secretPrefix" in str(err.value)
    assert isinstance(err.value, ConfigError) or "secretPrefix" in str(err.value)


def test_ssm_parameters_are_granted_to_the_config_function_exactly(stack):
    """SSM Parameter Store (issue 16): parameter names get ssm:GetParameters on exactly their
    ARNs; a path gets ssm:GetParametersByPath on exactly the path's own ARN (Parameter Store
    authorises it against the path in the request, which the job sends without the trailing
    slash); only the config function, only from inside it; the stack's policy pack passes."""
    from policy.policies import evaluate, expectations_from_settings

    settings = stack_settings(stack)
    acct = settings[f"{NS}:clouds"]["aws"]["accountId"]
    app = dict(settings[f"{NS}:application"])
    app["config"] = {**app["config"],
                     "parameterNames": [f"/vo2max/{stack}/shared/sentry-dsn"],
                     "parameterPaths": [f"/vo2max/{stack}/app/"]}
    g = run_program(stack, {f"{NS}:application": app})
    ssm = f"arn:aws:ssm:us-east-1:{acct}:parameter"
    found = {}
    for policy in g.of_type(ROLE_POLICY) + g.of_type("aws:iam/policy:Policy"):
        for st in json.loads(policy.inputs["policy"])["Statement"]:
            if any(a.startswith("ssm:") for a in st["Action"]):
                found[(policy.name, st["Sid"])] = (st["Action"], st["Resource"],
                                                   json.dumps(st.get("Condition")))
    config = g.one(ROLE_POLICY, "-backup-config-runtime").name
    assert set(found) == {(config, "ReadAppParameters"), (config, "ReadAppParameterPaths")}
    actions, resources, condition = found[(config, "ReadAppParameters")]
    assert (actions, resources) == (["ssm:GetParameters"],
                                    [f"{ssm}/vo2max/{stack}/shared/sentry-dsn"])
    assert "lambda:SourceFunctionArn" in condition
    actions, resources, condition = found[(config, "ReadAppParameterPaths")]
    assert (actions, resources) == (["ssm:GetParametersByPath"], [f"{ssm}/vo2max/{stack}/app"])
    assert "lambda:SourceFunctionArn" in condition
    # The job gets the same names and paths in its strategy.
    strategy = json.loads(g.outputs["restoreEnvironment"]["VO2DR_STRATEGY"])
    assert strategy["application"]["config"]["parameterPaths"] == [f"/vo2max/{stack}/app/"]
    # The pack judges this program (the rule knows the parameters) and finds nothing.
    exp = expectations_from_settings({**settings, f"{NS}:application": app}, stack)
    assert set(exp.app_parameters) == {f"/vo2max/{stack}/shared/sentry-dsn",
                                       f"/vo2max/{stack}/app/"}
    assert [v for v in evaluate(g, exp) if not v.unknown
            and v.rule == "aws-iam-policy-app-secrets-backup-only"] == []


def test_the_standby_covers_both_sources_with_its_own_token_secret(stack):
    """The GCP standby (issue 16): one Cloud Run job and trigger per source, on the source's
    class schedule offset after the primary's, ``--source KIND --if-missing`` (the config
    ``--without-app-secrets``: they live in AWS); the repository token in a Secret Manager
    secret of its own, which only the standby's service account may access, mounted into the
    source jobs only (and the database URL into the database jobs only)."""
    from infra.gcp.standby import standby_cron

    g = graph_of(stack)
    strategy, app = application(stack)
    offset = stack_settings(stack)[f"{NS}:monitoring"]["standbyOffsetMinutes"]
    job_sa = g.one("gcp:serviceaccount/account:Account", "standby-job-sa").outputs["member"]
    secrets = {s.outputs["secretId"]: s for s in g.of_type("gcp:secretmanager/secret:Secret")}
    token_id = f"vo2dr-{stack}-repository-token"
    assert token_id in secrets
    accessors = [a for a in g.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
                 if a.inputs["secretId"] == token_id]
    assert [(a.inputs["role"], a.inputs["member"]) for a in accessors] == \
        [("roles/secretmanager.secretAccessor", job_sa)]
    version = next(v for v in g.of_type("gcp:secretmanager/secretVersion:SecretVersion")
                   if v.name.endswith("vo2dr_repository_token-value"))
    assert TEST_SECRETS["repositoryToken"] not in json.dumps(
        [j.inputs for j in g.of_type("gcp:cloudrunv2/job:Job")])
    # Only in there, and marked secret (encrypted in the state).
    assert isinstance(version.inputs["secretData"], dict)
    assert version.inputs["secretData"]["value"] == TEST_SECRETS["repositoryToken"]
    for kind in app.sources():
        job = g.one("gcp:cloudrunv2/job:Job", f"-standby-{kind}")
        container = job.inputs["template"]["template"]["containers"][0]
        assert container["args"] == ["--source", kind, "--if-missing",
                                     *(["--without-app-secrets"] if kind == "config" else [])]
        env = {e["name"]: e for e in container["envs"]}
        assert env["VO2DR_REPOSITORY_TOKEN"]["valueSource"]["secretKeyRef"]["secret"] \
            == token_id
        assert "value" not in env["VO2DR_REPOSITORY_TOKEN"]
        assert "DATABASE_URL" not in env  # a source job never sees the database URL
        assert "VO2DR_S3_BUCKET" not in env and "VO2DR_KMS_KEY_ID" not in env
        trigger = g.one("gcp:cloudscheduler/job:Job", f"-standby-{kind}-trigger")
        assert trigger.inputs["schedule"] == standby_cron(strategy.source_class(kind), offset)
        assert trigger.inputs["httpTarget"]["uri"].endswith(f"/jobs/{job.inputs['name']}:run")
    classes = data_classes(stack_settings(stack))  # those with a standby job of their own
    for name in classes:
        container = g.one("gcp:cloudrunv2/job:Job", f"-standby-{name}").inputs[
            "template"]["template"]["containers"][0]
        assert "VO2DR_REPOSITORY_TOKEN" not in {e["name"] for e in container["envs"]}
    assert set(g.outputs["standbyJobNames"]) == {*classes, *app.sources()}
