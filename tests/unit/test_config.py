"""Every validation error of infra/config.py and lambdas/vo2dr/strategy.py: start from the good
stack file, change one field, and assert the message names the key and says how to fix it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from vo2dr import strategy
from vo2dr.exceptions import ConfigError

from infra import config, config_base, config_storage

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("staging", "production")


def stack_file(stack: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(vo2max-dr settings with the namespace stripped, provider settings) of a stack file."""
    raw = strategy.read_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    providers = {k: str(v) for k, v in doc.items() if not k.startswith("vo2max-dr:")}
    return raw, providers


def mutate(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``raw`` with ``a.b.c`` set to ``value`` (``DELETE`` removes it)."""
    out = copy.deepcopy(raw)
    node = out
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return out


class _Delete:
    """The marker for a removed key; its repr is a stable test id (pytest-xdist's workers must
    collect the same ids, and ``object()``'s repr carries an address)."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


def parse(stack: str, raw: dict[str, Any], providers: dict[str, str] | None = None):
    return config.parse(raw, stack=stack, providers=providers or stack_file(stack)[1])


@pytest.mark.parametrize("stack", STACKS)
def test_good_stack_files_parse(stack: str) -> None:
    raw, providers = stack_file(stack)
    cfg = parse(stack, raw, providers)
    assert cfg.environment == stack
    assert set(cfg.data_classes) == {"critical", "important", "full"}
    assert cfg.data_classes["critical"].rpo_minutes == raw["dataClasses"]["critical"]["rpoMinutes"]
    assert [t.tier for t in cfg.lifecycle if t.source == "database"] == list(config_base.TIERS)
    # The application sources are tiered like the database (issue 16).
    assert [t.tier for t in cfg.lifecycle if t.source == "code"] == list(config_base.TIERS)
    # And the snapshot sources' indexes and manifests (issue 17), under their own roots.
    assert {t.source for t in cfg.lifecycle} == {"database", "code", "config", "assets", "logs"}
    assert {t.prefix for t in cfg.lifecycle if t.source == "logs"} == {
        f"logs/{stack}/{tier}/" for tier in config_base.TIERS}
    assert {r.content_prefix for r in cfg.snapshot_roots()} == {
        f"application/{stack}/assets/content/", f"logs/{stack}/content/"}
    assert cfg.immutability.s3_mode == ("COMPLIANCE" if stack == "production" else "GOVERNANCE")
    assert cfg.tags["environment"] == stack and cfg.tags["owner"]
    assert cfg.tags["data-classification"]
    assert cfg.enabled_clouds == ("aws", "gcp", "azure")


def test_lifecycle_plan_follows_minimum_storage_durations() -> None:
    raw, providers = stack_file("staging")
    cfg = parse("staging", raw, providers)
    by_tier = {t.tier: t for t in cfg.lifecycle}
    for tier in by_tier.values():
        for cloud, transitions in tier.transitions.items():
            minimums = dict(config_storage.STORAGE_CLASSES[cloud])
            for t in transitions:
                assert tier.expire_days - t.days >= minimums[t.storage_class], (tier, cloud, t)
    assert by_tier["yearly"].expire_days == raw["retention"]["yearlyYears"] * 365


# (stack, path, bad value, text the message must hold: the key, and the fix)
CASES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    # environment
    ("staging", "environment", "dev", ("vo2max-dr:environment", "use one of")),
    ("staging", "environment", "production", ("vo2max-dr:environment", "name the stack after")),
    # tags
    ("staging", "tags.owner", DELETE, ("vo2max-dr:tags.owner", "every resource must carry")),
    ("staging", "tags.dataClassification", DELETE,
     ("vo2max-dr:tags.dataClassification", "every resource must carry")),
    ("staging", "tags", DELETE, ("vo2max-dr:tags", "add vo2max-dr:tags")),
    # retention
    ("staging", "retention.dailyDays", 0, ("vo2max-dr:retention.dailyDays", "positive whole")),
    ("staging", "retention.dailyDays", "30", ("vo2max-dr:retention.dailyDays", "positive whole")),
    ("staging", "retention.weeklyWeeks", True,
     ("vo2max-dr:retention.weeklyWeeks", "positive whole")),
    ("staging", "retention.weeklyWeeks", 4,
     ("vo2max-dr:retention", "must be kept longer than the one before")),
    ("staging", "retention", DELETE, ("vo2max-dr:retention", "add vo2max-dr:retention")),
    # tiering: not increasing, S3 IA floor, minimum storage duration per class
    ("staging", "tiering.archiveAfterDays", 30,
     ("vo2max-dr:tiering.archiveAfterDays", "strictly increasing")),
    ("staging", "tiering.deepArchiveAfterDays", 60,
     ("vo2max-dr:tiering.deepArchiveAfterDays", "strictly increasing")),
    ("staging", "tiering.infrequentAfterDays", 20,
     ("vo2max-dr:tiering.infrequentAfterDays", "30 or more days")),
    ("staging", "tiering.archiveAfterDays", 50,
     ("vo2max-dr:tiering.archiveAfterDays", "minimum storage duration", "at least 60")),
    ("staging", "tiering.deepArchiveAfterDays", 150,
     ("vo2max-dr:tiering.deepArchiveAfterDays", "minimum storage duration", "at least 180")),
    ("staging", "tiering.infrequentAfterDays", -1,
     ("vo2max-dr:tiering.infrequentAfterDays", "positive whole")),
    # immutability
    ("staging", "immutability.mode", "legal-hold",
     ("vo2max-dr:immutability.mode", "governance or compliance")),
    ("production", "immutability.mode", "governance",
     ("vo2max-dr:immutability.mode", "set it to compliance")),
    ("staging", "immutability.lockDays", 31,
     ("vo2max-dr:immutability.lockDays", "lock must end")),
    ("staging", "immutability.noncurrentVersionDays", 0,
     ("vo2max-dr:immutability.noncurrentVersionDays", "positive whole")),
    ("staging", "immutability.abortIncompleteUploadDays", DELETE,
     ("vo2max-dr:immutability.abortIncompleteUploadDays", "positive whole")),
    # keys (AWS KMS cannot rotate more often than every 90 days)
    ("staging", "keys.rotationDays", 60, ("vo2max-dr:keys.rotationDays", "set it to 90 or more")),
    # clouds
    ("staging", "clouds.oracle", {"enabled": True}, ("vo2max-dr:clouds", "use only aws")),
    ("staging", "clouds.gcp.enabled", "yes", ("vo2max-dr:clouds.gcp.enabled", "true or false")),
    ("staging", "clouds.aws.enabled", False,
     ("vo2max-dr:clouds.aws.enabled", "must stay enabled")),
    ("staging", "clouds.aws.accountId", "1234", ("vo2max-dr:clouds.aws.accountId", "12-digit")),
    ("staging", "clouds.gcp.projectNumber", DELETE,
     ("vo2max-dr:clouds.gcp.projectNumber", "project number")),
    ("staging", "clouds.azure.tenantId", DELETE,
     ("vo2max-dr:clouds.azure.tenantId", "tenant id")),
    # monitoring
    ("staging", "monitoring.statusEveryMinutes", 30,
     ("vo2max-dr:monitoring.statusEveryMinutes", "at least as often as the tightest RPO")),
    ("staging", "monitoring.drillSchedule", "0 9 * * 1",
     ("vo2max-dr:monitoring.drillSchedule", "EventBridge cron")),
    ("staging", "monitoring.standbyOffsetMinutes", 15,
     ("vo2max-dr:monitoring.standbyOffsetMinutes", "inside the primary's window")),
    ("staging", "monitoring.statusOffsetMinutes", 15,
     ("vo2max-dr:monitoring.statusOffsetMinutes", "inside the primary's window", "below 15")),
    ("production", "monitoring.statusOffsetMinutes", 0,
     ("vo2max-dr:monitoring.statusOffsetMinutes", "positive whole")),
    ("staging", "monitoring.statusOffsetMinutes", DELETE,
     ("vo2max-dr:monitoring.statusOffsetMinutes", "positive whole")),
    ("staging", "monitoring.statusEveryMinutes", 7,
     ("vo2max-dr:monitoring.statusEveryMinutes", "does not divide the hour")),
    ("staging", "monitoring.logRetentionDays", 45,
     ("vo2max-dr:monitoring.logRetentionDays", "CloudWatch accepts only")),
    ("staging", "monitoring.alertEmail", "oncall",
     ("vo2max-dr:monitoring.alertEmail", "on-call email")),
    # runtime
    ("staging", "runtime.lambdaMemoryMb", 64, ("vo2max-dr:runtime.lambdaMemoryMb", "128 to 10240")),
    ("staging", "runtime.lambdaTimeoutSeconds", 901,
     ("vo2max-dr:runtime.lambdaTimeoutSeconds", "at most 900")),
    ("staging", "runtime.lambdaEphemeralStorageMb", 256,
     ("vo2max-dr:runtime.lambdaEphemeralStorageMb", "512 to 10240")),
    ("staging", "runtime.lambdaArchitecture", "riscv",
     ("vo2max-dr:runtime.lambdaArchitecture", "x86_64 or arm64")),
    ("staging", "runtime.cloudRunImage", "vo2dr",
     ("vo2max-dr:runtime.cloudRunImage", "Artifact Registry")),
    ("staging", "runtime.scheduleMaxRetryAttempts", 0,
     ("vo2max-dr:runtime.scheduleMaxRetryAttempts", "positive whole")),
    # VPC: both lists or neither
    ("staging", "runtime.vpcSubnetIds", ["subnet-0123456789abcdef0"],
     ("vo2max-dr:runtime.vpcSecurityGroupIds is missing", "needs both subnets and security")),
    ("production", "runtime.vpcSecurityGroupIds", ["sg-0123456789abcdef0"],
     ("vo2max-dr:runtime.vpcSubnetIds is missing", "needs both subnets and security")),
    ("staging", "runtime.vpcSubnetIds", [], ("vo2max-dr:runtime.vpcSubnetIds", "list one or more")),
    ("staging", "runtime.vpcSubnetIds", "subnet-0123456789abcdef0",
     ("vo2max-dr:runtime.vpcSubnetIds", "list one or more")),
    ("staging", "runtime.vpcSecurityGroupIds", ["default"],
     ("vo2max-dr:runtime.vpcSecurityGroupIds", "invalid ids", "sg-0123456789abcdef0")),
    # data classes (lambdas/vo2dr/strategy.py)
    ("staging", "dataClasses", DELETE, ("vo2max-dr:dataClasses", "define critical, important")),
    ("staging", "dataClasses.archive", {"tables": ["x"], "rpoMinutes": 60, "rtoMinutes": 60},
     ("vo2max-dr:dataClasses.archive", "not a known data class", "use one of")),
    ("staging", "dataClasses.critical", "users",
     ("vo2max-dr:dataClasses.critical", "must be a mapping")),
    ("staging", "dataClasses.critical.rpoMinutes", 4,
     ("vo2max-dr:dataClasses.critical.rpoMinutes", "raise it to 5 or more")),
    ("staging", "dataClasses.critical.rpoMinutes", 0,
     ("vo2max-dr:dataClasses.critical.rpoMinutes", "positive whole number of minutes")),
    ("staging", "dataClasses.critical.rtoMinutes", DELETE,
     ("vo2max-dr:dataClasses.critical.rtoMinutes", "positive whole number of minutes")),
    ("staging", "dataClasses.critical.rpoMinutes", 7,
     ("vo2max-dr:dataClasses.critical.rpoMinutes", "use 5, 10, 15, 20 or 30")),
    ("staging", "dataClasses.important.rpoMinutes", 90,
     ("vo2max-dr:dataClasses.important.rpoMinutes", "minutes below 60 or whole hours")),
    ("staging", "dataClasses.important.rpoMinutes", 1440,
     ("vo2max-dr:dataClasses.important.rpoMinutes", "dailyAtUtc")),
    ("staging", "dataClasses.full.dailyAtUtc", "2am",
     ("vo2max-dr:dataClasses.full.dailyAtUtc", "HH:MM")),
    ("staging", "dataClasses.full.rpoMinutes", 60,
     ("vo2max-dr:dataClasses.full.dailyAtUtc", "remove dailyAtUtc or set rpoMinutes")),
    ("staging", "dataClasses.critical.tables", ["Users; DROP"],
     ("vo2max-dr:dataClasses.critical.tables", "lower-case SQL identifiers")),
    ("staging", "dataClasses.critical.tables", ["users", "users"],
     ("vo2max-dr:dataClasses.critical.tables", "list each table once")),
    ("staging", "dataClasses.critical.tables", [],
     ("vo2max-dr:dataClasses.critical.tables", "non-empty list")),
    ("staging", "dataClasses.critical.sanityQueries", "SELECT 1",
     ("vo2max-dr:dataClasses.critical.sanityQueries", "list of SQL queries")),
    ("staging", "dataClasses.full", DELETE,
     ("vo2max-dr:dataClasses.full", "full dump is required")),
    ("staging", "dataClasses.full.tables", ["users"],
     ("vo2max-dr:dataClasses.full.tables", "must be 'all'")),
]


@pytest.mark.parametrize(("stack", "path", "value", "expected"), CASES,
                         ids=[f"{c[0]}:{c[1]}={c[2] if c[2] is not DELETE else 'deleted'}"
                              for c in CASES])
def test_bad_value_is_rejected_with_key_and_fix(stack: str, path: str, value: Any,
                                                expected: tuple[str, ...]) -> None:
    raw, providers = stack_file(stack)
    with pytest.raises(ConfigError) as err:
        parse(stack, mutate(raw, path, value), providers)
    message = str(err.value)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


def test_yearly_retention_must_outlive_the_deepest_tier() -> None:
    raw, providers = stack_file("staging")
    raw = mutate(mutate(raw, "retention.monthlyMonths", 6), "retention.yearlyYears", 1)
    with pytest.raises(ConfigError) as err:
        parse("staging", raw, providers)
    assert "vo2max-dr:retention.yearlyYears" in str(err.value)
    assert "keep yearly backups at least" in str(err.value)


def test_expiry_shorter_than_a_tier_minimum_skips_that_transition() -> None:
    """An expiry shorter than a class's minimum is not an error per tier: the plan leaves that
    transition out (a daily backup kept 30 days never goes to STANDARD_IA at day 30)."""
    raw, providers = stack_file("staging")
    cfg = parse("staging", raw, providers)
    daily = next(t for t in cfg.lifecycle if t.tier == "daily")
    assert daily.transitions["aws"] == ()


def test_production_needs_two_clouds() -> None:
    raw, providers = stack_file("production")
    raw = mutate(mutate(raw, "clouds.gcp.enabled", False), "clouds.azure.enabled", False)
    with pytest.raises(ConfigError) as err:
        parse("production", raw, providers)
    assert "vo2max-dr:clouds" in str(err.value)
    assert "at least two clouds: enable gcp or azure" in str(err.value)
    # Staging may run on AWS alone.
    raw, providers = stack_file("staging")
    raw = mutate(mutate(raw, "clouds.gcp.enabled", False), "clouds.azure.enabled", False)
    assert parse("staging", raw, providers).enabled_clouds == ("aws",)


@pytest.mark.parametrize(("provider_key", "expected"), [
    ("gcp:project", "pulumi config set gcp:project"),
    ("gcp:region", "pulumi config set gcp:region"),
    ("azure-native:location", "pulumi config set azure-native:location"),
])
def test_missing_provider_setting_says_how_to_set_it(provider_key: str, expected: str) -> None:
    raw, providers = stack_file("staging")
    providers = {k: v for k, v in providers.items() if k != provider_key}
    with pytest.raises(ConfigError) as err:
        parse("staging", raw, providers)
    assert provider_key in str(err.value) and expected in str(err.value)


def test_unknown_data_class_at_run_time_names_the_known_ones() -> None:
    raw, _ = stack_file("staging")
    strat = strategy.parse_strategy(raw["dataClasses"])
    with pytest.raises(ConfigError) as err:
        strat.get("archive")
    assert "unknown data class 'archive'" in str(err.value)
    assert "critical, important, full" in str(err.value)
    assert "vo2max-dr:dataClasses" in str(err.value)


def test_job_strategy_sources(tmp_path: Path) -> None:
    raw, _ = stack_file("staging")
    strat = strategy.parse_strategy(raw["dataClasses"], raw["retention"], raw["immutability"],
                                    raw.get("application"), compression=raw["compression"])
    assert strat.intraday == strategy.IntradayTier(raw["retention"]["intradayHours"],
                                                   raw["immutability"]["mode"])
    # The JSON the program hands the job round-trips to the same strategy.
    assert strategy.load_strategy({"VO2DR_STRATEGY": strat.to_json()}) == strat
    assert strategy.load_strategy(
        {"VO2DR_STACK_FILE": str(ROOT / "Pulumi.staging.yaml")}) == strat
    with pytest.raises(ConfigError, match="VO2DR_STRATEGY is not valid JSON"):
        strategy.load_strategy({"VO2DR_STRATEGY": "{"})
    with pytest.raises(ConfigError, match=r"set VO2DR_STRATEGY .* or VO2DR_STACK_FILE"):
        strategy.load_strategy({})
    with pytest.raises(ConfigError, match="cannot read stack file"):
        strategy.read_stack_file(tmp_path / "Pulumi.missing.yaml")


def test_schedules_meet_the_rpo() -> None:
    raw, _ = stack_file("staging")
    strat = strategy.parse_strategy(raw["dataClasses"])
    from infra.runtime import eventbridge_cron

    assert strat.get("critical").cron_expression() == "*/15 * * * *"
    assert strat.get("important").cron_expression() == "0 */1 * * *"
    assert strat.get("full").cron_expression() == "0 2 * * *"
    # What EventBridge Scheduler gets: the same instants.
    assert eventbridge_cron(strat.get("critical")) == "cron(0/15 * * * ? *)"
    assert eventbridge_cron(strat.get("full")) == "cron(0 2 * * ? *)"


def test_vpc_lists_parse_together_and_default_to_none() -> None:
    raw, providers = stack_file("staging")
    assert not parse("staging", raw, providers).runtime.in_vpc
    raw = mutate(raw, "runtime.vpcSubnetIds", ["subnet-0123456789abcdef0"])
    raw = mutate(raw, "runtime.vpcSecurityGroupIds", ["sg-0123456789abcdef0"])
    rt = parse("staging", raw, providers).runtime
    assert rt.in_vpc
    assert rt.vpc_subnet_ids == ("subnet-0123456789abcdef0",)
    assert rt.vpc_security_group_ids == ("sg-0123456789abcdef0",)


def test_status_offset_is_read_from_monitoring() -> None:
    raw, providers = stack_file("production")
    mon = parse("production", raw, providers).monitoring
    assert mon.status_offset_minutes == raw["monitoring"]["statusOffsetMinutes"]


FIX = 'pulumi config set vo2max-dr:recoveryPublicKey -- "$(cat recovery-public.pem)"'


def test_recovery_public_key_is_plain_validated_config() -> None:
    from vo2dr import crypto

    raw, providers = stack_file("staging")
    cfg = parse("staging", raw, providers)
    assert cfg.recovery_public_key is None
    with pytest.raises(ConfigError) as err:
        cfg.require_recovery_public_key()
    assert "vo2max-dr:recoveryPublicKey is not set" in str(err.value) and FIX in str(err.value)

    private, public = crypto.generate_recovery_key(3072)
    cfg = parse("staging", {**raw, "recoveryPublicKey": public.decode()}, providers)
    assert cfg.require_recovery_public_key() == public.decode()

    _, weak = crypto.generate_recovery_key(2048)
    for bad, expected in ((weak.decode(), "RSA-2048"), ("ssh-rsa AAAA", "not usable"),
                          (private.decode(), "never put the private key in config")):
        with pytest.raises(ConfigError) as err:
            parse("staging", {**raw, "recoveryPublicKey": bad}, providers)
        message = str(err.value)
        assert message.startswith("vo2max-dr:recoveryPublicKey ") and FIX in message
        assert expected in message, message
