"""The application sources' stack settings (validated once, errors naming the key) and their
place in the write-once layout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from vo2dr import layout
from vo2dr.exceptions import ConfigError
from vo2dr.strategy import load_strategy, parse_strategy

CLASSES = {
    "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
    "important": {"tables": ["app_config"], "rpoMinutes": 60, "rtoMinutes": 240},
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
}
GOOD = {"repositoryUrl": "https://github.com/vo2max/app.git",
        "code": {"dataClass": "important"},
        "config": {"dataClass": "critical", "paths": [".env.*", "prisma/schema.prisma"],
                   "secretNames": ["vo2max/prod/stripe"], "secretPrefix": "vo2max/prod/app/"}}


def app(**changes):
    doc = {**GOOD, **changes}
    return {k: v for k, v in doc.items() if v is not None}


def test_good_application_settings_parse_and_round_trip_through_json():
    s = parse_strategy(CLASSES, application=GOOD)
    assert s.application is not None
    assert s.source_class("code").rpo_minutes == 60
    assert s.source_class("config").name == "critical"
    again = load_strategy({"VO2DR_STRATEGY": s.to_json()})
    assert again.application == s.application


@pytest.mark.parametrize("change, key", [
    ({"repositoryUrl": "https://u:ghp_SECRETVALUE@github.com/x"}, "application.repositoryUrl"),
    ({"repositoryUrl": "ftp://example.com/x"}, "application.repositoryUrl"),
    ({"repositoryUrl": ""}, "application.repositoryUrl"),
    ({"code": {"dataClass": "gold"}}, "application.code.dataClass"),
    ({"config": {**GOOD["config"], "paths": []}}, "application.config.paths"),
    ({"config": {**GOOD["config"], "paths": ["../etc/passwd"]}}, "application.config.paths"),
    ({"config": {**GOOD["config"], "paths": ["/etc/x"]}}, "application.config.paths"),
    ({"config": {**GOOD["config"], "secretNames": ["bad name!"]}},
     "application.config.secretNames"),
    ({"config": {**GOOD["config"], "secretPrefix": "vo2max/prod"}},
     "application.config.secretPrefix"),
    ({"code": None, "config": None}, "application"),
    ({"assets": {}}, "application.assets"),
])
def test_bad_application_settings_name_the_key(change, key):
    with pytest.raises(ConfigError) as err:
        parse_strategy(CLASSES, application=app(**change))
    assert f"vo2max-dr:{key}" in str(err.value)
    assert "ghp_SECRETVALUE" not in str(err.value)


SSM = {**GOOD["config"], "parameterNames": ["/vo2max/prod/shared/sentry-dsn", "top-level"],
       "parameterPaths": ["/vo2max/prod/app/"]}


def test_ssm_parameter_names_and_paths_parse_and_round_trip_through_json():
    s = parse_strategy(CLASSES, application=app(config=SSM))
    assert s.application is not None and s.application.config is not None
    assert s.application.config.parameter_names == ("/vo2max/prod/shared/sentry-dsn",
                                                    "top-level")
    assert s.application.config.parameter_paths == ("/vo2max/prod/app/",)
    assert load_strategy({"VO2DR_STRATEGY": s.to_json()}).application == s.application
    # Without SSM settings the JSON has no SSM keys (older jobs read it unchanged).
    plain = parse_strategy(CLASSES, application=GOOD).to_json()
    assert "parameter" not in plain


@pytest.mark.parametrize("change, key", [
    ({"parameterNames": "/vo2max/x"}, "parameterNames"),  # not a list
    ({"parameterNames": ["/vo2max/bad name"]}, "parameterNames"),
    ({"parameterNames": ["vo2max/no-leading-slash/x"]}, "parameterNames"),
    ({"parameterNames": ["/aws/reference/secretsmanager/x"]}, "parameterNames"),  # reserved
    ({"parameterNames": ["/vo2max/prod/app/"]}, "parameterNames"),  # a path, not a name
    ({"parameterNames": ["/" + "/".join(["l"] * 16)]}, "parameterNames"),  # > 15 levels
    ({"parameterPaths": ["/"]}, "parameterPaths"),  # the whole account
    ({"parameterPaths": ["/vo2max/prod/app"]}, "parameterPaths"),  # no trailing /
    ({"parameterPaths": ["vo2max/prod/app/"]}, "parameterPaths"),  # no leading /
    ({"parameterPaths": ["/vo2max//app/"]}, "parameterPaths"),
    ({"parameterPaths": ["/ssm/app/"]}, "parameterPaths"),
    ({"parameterPrefix": "/vo2max/"}, "parameterPrefix"),  # not a setting
])
def test_bad_ssm_settings_name_the_key(change, key):
    with pytest.raises(ConfigError) as err:
        parse_strategy(CLASSES, application=app(config={**SSM, **change}))
    assert f"vo2max-dr:application.config.{key}" in str(err.value)


def test_an_unconfigured_source_is_a_config_error():
    s = parse_strategy(CLASSES, application=app(config=None))
    with pytest.raises(ConfigError, match=r"application\.config"):
        s.source_class("config")


def test_source_keys_follow_the_layout_and_parse_back():
    when = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
    for source, prefix, suffix in (("code", "application/production/code/", ".bundle.enc"),
                                   ("config", "application/production/config/", ".tar.enc"),
                                   ("database", "database/production/", ".dump.enc")):
        ref = layout.BackupRef("production", "daily", "important", when, "0123456789ab",
                               source)
        assert ref.body_key == f"{prefix}daily/important/20260304T101500Z-0123456789ab{suffix}"
        assert layout.parse_key(ref.body_key) == (ref, "body")
        assert layout.parse_key(ref.manifest_key) == (ref, "manifest")
        assert layout.class_prefixes("production", "important", 2026, source)[1] == \
            f"{prefix}daily/important/2026"
    # A body suffix of another source is not a key of the layout.
    assert layout.parse_key("application/production/code/daily/important/"
                            "20260304T101500Z-0123456789ab.tar.enc") is None
    assert layout.parse_key("database/production/daily/full/"
                            "20260304T101500Z-0123456789ab.bundle.enc") is None
    with pytest.raises(ConfigError):
        layout.environment_prefix("production", "photos")
