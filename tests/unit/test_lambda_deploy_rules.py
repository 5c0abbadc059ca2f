"""Cloud rules a mock cannot know, pinned on the real program under Pulumi mocks (issue 11),
each with its source: whom EventBridge Scheduler's execution role must trust, which condition
keys the KMS call Secrets Manager makes can carry, one backup function per data class without a
concurrency reservation, and Lambda's 4 KB environment limit (checked by the program and by
`make plan`)."""

from __future__ import annotations

import json

import pytest
from vo2dr.exceptions import ConfigError

from dev.mockrun import Graph, run_program, stack_settings
from tests.unit.test_runtime_program import (
    ALL_JOBS,
    FUNCTION,
    NS,
    ROLE,
    ROLE_POLICY,
    ROOT,
    SCHEDULE,
    SECRET,
    SNAPSHOT_JOBS,
    STACKS,
    _runtime_resources,
    data_classes,
    function,
    function_env,
    graph_of,
    schedule,
)


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


@pytest.fixture
def g(stack) -> Graph:
    return graph_of(stack)


@pytest.fixture
def settings(stack) -> dict:
    return stack_settings(stack)


def test_scheduler_role_trusts_the_schedule_group_arn(g, settings):
    """EventBridge Scheduler puts the **schedule group** ARN in ``aws:SourceArn`` when it
    assumes a schedule's execution role, and its guide says not to scope the condition to a
    schedule or a schedule name prefix: "The value of aws:SourceArn must be your EventBridge
    Scheduler schedule group ARN ... Do not scope the aws:SourceArn statement to a specific
    schedule or a schedule name prefix" (EventBridge Scheduler User Guide, "Confused deputy
    prevention", https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html).
    A trust scoped to ``schedule/<group>/*`` never matches: no schedule could run."""
    acct = settings[f"{NS}:clouds"]["aws"]["accountId"]
    region = settings["aws:region"]
    group = g.one("aws:scheduler/scheduleGroup:ScheduleGroup").inputs["name"]
    role = _runtime_resources(g, ROLE)[0]
    (st,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    source_arns = [v["aws:SourceArn"] for v in st["Condition"].values() if "aws:SourceArn" in v]
    assert source_arns == [f"arn:aws:scheduler:{region}:{acct}:schedule-group/{group}"]
    assert "ArnEquals" in st["Condition"] or "StringEquals" in st["Condition"]
    assert ":schedule/" not in role.inputs["assumeRolePolicy"]
    # Every schedule is in that group, so every one of them can use the role.
    assert {s.inputs["groupName"] for s in g.of_type(SCHEDULE)} == {group}


def test_secret_decrypt_is_scoped_by_service_and_encryption_context(g, settings):
    """``lambda:SourceFunctionArn`` is in the request context of AWS calls made from inside the
    function's execution environment (Lambda Developer Guide, "Using the SourceFunctionArn
    condition key", https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html),
    so it stays on ``secretsmanager:GetSecretValue``. The KMS ``Decrypt`` is made by Secrets
    Manager on the function's behalf; it is scoped with ``kms:ViaService`` and the encryption
    context Secrets Manager sends with every KMS request, ``SecretARN`` (Secrets Manager User
    Guide, "Secrets Manager encryption context",
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html)."""
    region = settings["aws:region"]
    secret_arns = {s.outputs["arn"] for s in g.of_type(SECRET)}
    seen = 0
    for p in _runtime_resources(g, ROLE_POLICY):
        doc = json.loads(p.inputs["policy"])
        # The job's own secrets (ReadAppSecrets, the app's secrets the config source backs up, is
        # tests/unit/test_sources_program.py's).
        read = [st for st in doc["Statement"] if st["Sid"] == "ReadOwnSecrets"]
        decrypt = [st for st in doc["Statement"] if st["Sid"].startswith("DecryptOwnSecrets")]
        assert len(read) == len(decrypt) <= 1, p.name
        if not read:
            continue
        seen += 1
        own = read[0]["Resource"]
        assert set(own) <= secret_arns
        assert "lambda:SourceFunctionArn" in read[0]["Condition"]["ArnEquals"]
        cond = decrypt[0]["Condition"]
        assert "lambda:SourceFunctionArn" not in json.dumps(cond), p.name
        assert cond["StringEquals"]["kms:ViaService"] == f"secretsmanager.{region}.amazonaws.com"
        assert sorted(cond["StringEquals"]["kms:EncryptionContext:SecretARN"]) == sorted(own)
        assert decrypt[0]["Action"] == ["kms:Decrypt"]
    # each backup (database URL), status (webhook), drill; the snapshot functions and the
    # pruner read no secret
    assert seen == len(ALL_JOBS) - len(SNAPSHOT_JOBS)


def test_each_data_class_backs_up_in_its_own_function_with_no_reservation(g, settings):
    """A class's backup never waits for another class's: each class has its own function and
    its schedule invokes only that one, and no function reserves concurrency. A reservation
    must leave the account 100 unreserved executions ("Configuring reserved concurrency", AWS
    Lambda Developer Guide,
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html), which an
    account on a low default quota cannot, so it would refuse the function."""
    classes = sorted(data_classes(settings))
    targets = {c: schedule(g, f"backup-{c}").inputs["target"]["arn"] for c in classes}
    assert len(set(targets.values())) == len(classes)
    for c, arn in targets.items():
        fn = function(g, f"backup-{c}")
        assert fn.outputs["arn"] == arn
        assert fn.inputs["handler"] == "vo2dr.handlers.backup_handler"
    for fn in g.of_type(FUNCTION):
        assert fn.inputs.get("reservedConcurrentExecutions") in (None, -1), fn.name
    # The README states the concurrency the stack needs: one execution per function at once.
    readme = (ROOT / "README.md").read_text()
    assert f"{len(g.of_type(FUNCTION))} concurrent executions" in readme


def _big_public_key(bits: int = 32768) -> str:
    """A well-formed RSA public key of ``bits`` bits (made from a random modulus: only its size
    matters here, and generating a real 32768-bit key takes minutes)."""
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return RSAPublicNumbers(65537, n).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_environment_sizes_are_measured_and_the_strategy_is_not_in_them(g, settings):
    """Lambda refuses a function whose environment variables exceed 4 KB in total ("Lambda
    quotas", AWS Lambda Developer Guide,
    https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html: "Environment
    variables: 4 KB, for all environment variables associated with the function, in
    aggregate"). The program measures each function's variables as CreateFunction does (one
    JSON object) and exports the sizes for `make plan`."""
    from infra.aws.runtime import LAMBDA_ENVIRONMENT_LIMIT_BYTES, environment_size

    assert LAMBDA_ENVIRONMENT_LIMIT_BYTES == 4096
    sizes = dict(g.outputs["lambdaEnvironmentBytes"])
    assert sizes.pop("limit") == 4096
    assert set(sizes) == set(ALL_JOBS)
    for job, size in sizes.items():
        assert size == environment_size(function_env(g, job)) <= 4096, job
        assert "VO2DR_STRATEGY" not in function_env(g, job)


def test_a_growing_strategy_leaves_the_environment_unchanged():
    """Forty more sanity queries: the strategy (in the artifact) grows, no environment does."""
    base = graph_of("staging").outputs["lambdaEnvironmentBytes"]
    settings = stack_settings("staging")
    classes = settings[f"{NS}:dataClasses"]
    queries = [f"select count(*) >= 0 from pg_catalog.pg_class -- check {i:02d}" for i in range(40)]
    grown = run_program("staging", {f"{NS}:dataClasses.critical.sanityQueries": [
        *classes["critical"].get("sanityQueries", []), *queries]})
    assert grown.outputs["lambdaEnvironmentBytes"] == base


def test_an_environment_above_4_kb_fails_the_program_naming_the_limit_and_the_fix():
    with pytest.raises(ConfigError, match=r"environment variables take \d+ bytes, above Lambda's "
                                          r"4 KB limit.*VO2DR_RECOVERY_PUBLIC_KEY.*Fix:"):
        run_program("staging", {f"{NS}:recoveryPublicKey": _big_public_key()})


def test_make_plan_fails_on_a_stack_above_a_lambda_limit(monkeypatch, capsys):
    from dev import mockrun, plan

    monkeypatch.setattr(mockrun, "TEST_RECOVERY_PUBLIC_KEY", _big_public_key())
    assert plan.main(["staging", "--no-write", "--base", "HEAD"]) == 1
    err = capsys.readouterr().err
    assert "above Lambda's 4 KB limit" in err and "Fix:" in err
