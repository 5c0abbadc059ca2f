"""Which clouds a stack may switch on or off (issue 4), and the key-rotation and soft-delete
settings the GCS and Azure stores read: start from the good stack file, change one field,
and assert the message names the key and the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vo2dr.exceptions import ConfigError

from dev.mockrun import stack_settings
from infra import config, config_keys

STACKS = ("staging", "production")


def stack(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    settings = stack_settings(name)
    raw = {k.split(":", 1)[1]: v for k, v in settings.items() if k.startswith("vo2max-dr:")}
    providers = {k: str(v) for k, v in settings.items() if not k.startswith("vo2max-dr:")}
    return raw, providers


def parse(name: str, raw: dict[str, Any], providers: dict[str, str]) -> config.StackConfig:
    return config.parse(raw, stack=name, providers=providers)


def with_clouds(name: str, **enabled: bool) -> tuple[dict[str, Any], dict[str, str]]:
    raw, providers = stack(name)
    raw = copy.deepcopy(raw)
    for cloud, on in enabled.items():
        raw["clouds"][cloud]["enabled"] = on
    return raw, providers


@pytest.mark.parametrize("name", STACKS)
def test_stack_files_enable_all_three_clouds(name):
    cfg = parse(name, *stack(name))
    assert cfg.enabled_clouds == ("aws", "gcp", "azure")
    assert cfg.keys is not None
    assert cfg.keys.rotation_days <= config_keys.KEY_ROTATION_MAX_DAYS < cfg.keys.expiry_days


@pytest.mark.parametrize(("gcp", "azure"), [(True, False), (False, True)])
def test_production_may_run_on_two_clouds(gcp, azure):
    cfg = parse("production", *with_clouds("production", gcp=gcp, azure=azure))
    assert len(cfg.enabled_clouds) == 2 and cfg.aws.enabled


def test_production_refuses_a_single_cloud():
    with pytest.raises(ConfigError, match=r"vo2max-dr:clouds .*production.*enable gcp or azure"):
        parse("production", *with_clouds("production", gcp=False, azure=False))


def test_staging_may_run_on_aws_alone():
    cfg = parse("staging", *with_clouds("staging", gcp=False, azure=False))
    assert cfg.enabled_clouds == ("aws",)


@pytest.mark.parametrize("name", STACKS)
def test_aws_cannot_be_switched_off(name):
    with pytest.raises(ConfigError, match=r"clouds\.aws\.enabled.*primary"):
        parse(name, *with_clouds(name, aws=False))


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_enabled_must_be_a_boolean(value):
    raw, providers = with_clouds("staging")
    raw["clouds"]["gcp"]["enabled"] = value
    with pytest.raises(ConfigError, match=r"clouds\.gcp\.enabled must be true or false"):
        parse("staging", raw, providers)


def test_a_missing_cloud_counts_as_off():
    raw, providers = with_clouds("staging")
    del raw["clouds"]["azure"]
    assert parse("staging", raw, providers).enabled_clouds == ("aws", "gcp")


def test_unknown_cloud_is_refused():
    raw, providers = with_clouds("staging")
    raw["clouds"]["oci"] = {"enabled": True}
    with pytest.raises(ConfigError, match=r"clouds names unknown cloud.*oci.*use only"):
        parse("staging", raw, providers)


def test_enabled_gcp_needs_its_project_and_number_and_disabled_gcp_does_not():
    raw, providers = with_clouds("staging")
    no_project = {k: v for k, v in providers.items() if k != "gcp:project"}
    with pytest.raises(ConfigError, match=r"gcp:project is not set"):
        parse("staging", raw, no_project)
    raw["clouds"]["gcp"].pop("projectNumber")
    with pytest.raises(ConfigError, match=r"clouds\.gcp\.projectNumber is missing.*number"):
        parse("staging", raw, providers)
    raw["clouds"]["gcp"]["enabled"] = False
    assert "gcp" not in parse("staging", raw, no_project).enabled_clouds


def test_enabled_azure_needs_location_and_tenant_and_disabled_azure_does_not():
    raw, providers = with_clouds("staging")
    no_location = {k: v for k, v in providers.items() if k != "azure-native:location"}
    with pytest.raises(ConfigError, match=r"azure-native:location is not set"):
        parse("staging", raw, no_location)
    raw["clouds"]["azure"].pop("tenantId")
    with pytest.raises(ConfigError, match=r"clouds\.azure\.tenantId is missing"):
        parse("staging", raw, providers)
    raw["clouds"]["azure"]["enabled"] = False
    assert "azure" not in parse("staging", raw, no_location).enabled_clouds


# ---- keys and soft delete (read by the GCS and Azure stores) -------------------------------

@pytest.mark.parametrize(("rotation", "expiry", "message"), [
    (91, 180, r"keys\.rotationDays is 91: rotate keys at least every 90 days"),
    (0, 180, r"keys\.rotationDays must be a positive whole number"),
    (90, 96, r"keys\.expiryDays is 96: .* set it to 97 or more"),
    (7, 20, r"keys\.expiryDays is 20: .* set it to 28 or more"),
])
def test_key_rotation_limits(rotation, expiry, message):
    raw, providers = stack("staging")
    raw = copy.deepcopy(raw)
    raw["keys"] = {"rotationDays": rotation, "expiryDays": expiry}
    with pytest.raises(ConfigError, match=message):
        parse("staging", raw, providers)


def test_keys_section_is_required():
    raw, providers = stack("staging")
    raw = {k: v for k, v in raw.items() if k != "keys"}
    with pytest.raises(ConfigError, match=r"vo2max-dr:keys is missing"):
        parse("staging", raw, providers)


@pytest.mark.parametrize("days", [6, 91])
def test_soft_delete_days_must_suit_gcs_and_key_vault(days):
    raw, providers = stack("staging")
    raw = copy.deepcopy(raw)
    raw["immutability"]["softDeleteDays"] = days
    with pytest.raises(ConfigError, match=r"immutability\.softDeleteDays is \d+: .*7 to 90"):
        parse("staging", raw, providers)
