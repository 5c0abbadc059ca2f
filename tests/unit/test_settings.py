"""The settings object (every variable, read once, validated before any network call), secret
resolution (plain, JSON and RDS-shaped secrets) and the store factory (read or write access,
strict or tolerant, never zero stores). No cloud is called: clients are built, never used."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from botocore.stub import Stubber
from psycopg.conninfo import conninfo_to_dict
from vo2dr import secret_urls
from vo2dr import settings as settings_module
from vo2dr.exceptions import ConfigError
from vo2dr.secret_urls import resolve_secrets, url_from_secret
from vo2dr.settings import COMMAND_SETTINGS, DESCRIPTIONS, VARIABLES, Settings, find_stack_file
from vo2dr.status import run_status_job
from vo2dr.stores import NO_STORE, Access, StoreSet, open_store, open_stores

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = json.dumps({"dataClasses": {
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"}}})


@pytest.fixture
def no_cloud(monkeypatch):
    """Clients can be built (a region, fake keys, emulator hosts that are never contacted)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
                       "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFP"
                       "TOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")


# -- one object, every variable ----------------------------------------------------------------

def test_every_field_is_a_variable_with_a_flag_and_a_description():
    names = [f.name for f in dataclasses.fields(Settings)]
    assert set(names) == set(VARIABLES) == set(DESCRIPTIONS)
    envs = [var for var, _ in VARIABLES.values()]
    flags = [flag for _, flag in VARIABLES.values()]
    assert len(set(envs)) == len(envs) and len(set(flags)) == len(flags)
    for var in ("VO2DR_SPOOL_DIR", "VO2DR_STATUS_STATE_FILE", "VO2DR_DATA_CLASS",
                "VO2DR_AZURE_ASSERTION", "VO2DR_DATABASE_URL_SECRET",
                "VO2DR_DRILL_DATABASE_URL_SECRET", "VO2DR_ALERT_WEBHOOK_SECRET"):
        assert var in envs, var
    # Every setting is some command's (VO2DR_DATA_CLASS is the Cloud Run job's own flag).
    used = {n for names in COMMAND_SETTINGS.values() for n in names}
    assert set(VARIABLES) - used == {"data_class"}


def test_from_env_reads_the_variables_that_were_read_where_used():
    env = {"VO2DR_SPOOL_DIR": "/big", "VO2DR_STATUS_STATE_FILE": "/s.json",
           "VO2DR_DATA_CLASS": "critical", "VO2DR_AZURE_ASSERTION": "gcp",
           "VO2DR_DATABASE_URL_SECRET": "db", "VO2DR_DRILL_DATABASE_URL_SECRET": "drill",
           "VO2DR_ALERT_WEBHOOK_SECRET": "hook"}
    s = Settings.from_env(env)
    assert (s.spool_dir, s.status_state_file, s.data_class, s.azure_assertion) == (
        "/big", "/s.json", "critical", "gcp")
    assert (s.database_url_secret, s.drill_database_url_secret, s.alert_webhook_secret) == (
        "db", "drill", "hook")
    assert Settings.from_env(env, overrides={"spool_dir": "/flag"}).spool_dir == "/flag"


def test_the_strategy_is_read_and_parsed_once(monkeypatch, tmp_path):
    stack = tmp_path / "Pulumi.staging.yaml"
    shutil.copy(ROOT / "Pulumi.staging.yaml", stack)
    calls = []
    real = settings_module.load_strategy
    monkeypatch.setattr(settings_module, "load_strategy",
                        lambda env: calls.append(env) or real(env))
    s = Settings(environment="staging", stack_file=str(stack))
    first = s.strategy()
    stack.write_text("not: [yaml")  # not read again
    assert s.strategy() is first and s.strategy().get("full") is first.get("full")
    s.validate(strategy=True)
    assert len(calls) == 1


def test_the_stack_file_is_found_from_the_working_directory(monkeypatch, tmp_path):
    shutil.copy(ROOT / "Pulumi.staging.yaml", tmp_path / "Pulumi.staging.yaml")
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "docs" / "deep")
    assert find_stack_file("staging") == tmp_path / "Pulumi.staging.yaml"
    found = Settings.from_env({"VO2DR_ENVIRONMENT": "staging"}).strategy()
    explicit = Settings(stack_file=str(ROOT / "Pulumi.staging.yaml")).strategy()
    assert found == explicit
    with pytest.raises(ConfigError, match=r"no strategy: .*VO2DR_ENVIRONMENT set \(no "
                                          r"Pulumi\.production\.yaml in "):
        Settings.from_env({"VO2DR_ENVIRONMENT": "production"}).strategy()
    # The Pulumi program's JSON wins over a stack file lying around.
    assert Settings(environment="staging", strategy_json=STRATEGY).strategy().get("full")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("database_url", "postgresql://u@h:5432", "DATABASE_URL names no database"),
    ("database_url", "mysql://u:pw@h/db", "DATABASE_URL is not a PostgreSQL URL"),
    ("database_url", "host=h port=5432 dbname", "DATABASE_URL is not a PostgreSQL URL or "),
    ("drill_database_url", "postgres://u@h", "VO2DR_DRILL_DATABASE_URL names no database"),
    ("azure_container_url", "htps//acct.blob.core.windows.net/c",
     "VO2DR_AZURE_CONTAINER_URL 'htps//acct.blob.core.windows.net/c' is not a container URL"),
    ("azure_container_url", "https://acct.blob.core.windows.net",
     "is not a container URL: use https://<account>.blob.core.windows.net/<container>"),
    ("azure_container_url", "https://acct.blob.core.windows.net:x/c", "has an invalid port"),
    ("s3_bucket", "s3://vo2dr-backups", "VO2DR_S3_BUCKET 's3://vo2dr-backups' is not a bucket"),
    ("gcs_bucket", "Backups", "VO2DR_GCS_BUCKET 'Backups' is not a bucket name"),
    ("environment", "Staging", "VO2DR_ENVIRONMENT 'Staging' must be lower-case"),
    ("alert_webhook", "hooks.slack.com/x", "VO2DR_ALERT_WEBHOOK is not an http(s) URL"),
    ("azure_tenant_id", "t", "VO2DR_AZURE_CLIENT_ID is not set"),
    ("azure_assertion", "gpc", "VO2DR_AZURE_ASSERTION is 'gpc'"),
    ("strategy_json", "{", "VO2DR_STRATEGY is not valid JSON"),
])
def test_validate_names_the_setting_and_the_fix(field, value, message):
    with pytest.raises(ConfigError) as info:
        Settings(**{field: value}).validate(strategy=field == "strategy_json")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    if "pw" in value:
        assert "pw" not in str(info.value)  # a URL may hold a password: never echoed


def test_validate_accepts_what_the_program_and_the_emulators_set():
    Settings(database_url="postgresql://vo2dr@db.internal:5432/vo2max?sslmode=require",
             drill_database_url="host=127.0.0.1 port=5433 dbname=postgres user=x",
             environment="staging", s3_bucket="vo2dr-staging-backups-123",
             gcs_bucket="vo2dr_staging.backups",
             azure_container_url="http://127.0.0.1:10000/devstoreaccount1/backups",
             alert_webhook="https://hooks.slack.com/services/x", azure_tenant_id="t",
             azure_client_id="c", azure_assertion="gcp",
             strategy_json=STRATEGY).validate(strategy=True)


def test_a_setting_or_its_secret_satisfies_required():
    Settings(database_url_secret="arn:db").validate(required=("database_url",))
    with pytest.raises(ConfigError, match=r"missing setting: DATABASE_URL \(or --database-url\), "
                                          r"VO2DR_ENVIRONMENT \(or --environment\)"):
        Settings().validate(required=("database_url", "environment"))


# -- secrets --------------------------------------------------------------------------------

def test_a_secret_holds_a_url_json_or_the_rds_shape():
    url = "postgresql://app:pw@db:5432/vo2max"
    assert url_from_secret(f"  {url}\n", "s") == url
    for key in ("url", "database_url", "DATABASE_URL"):
        assert url_from_secret(json.dumps({key: url, "other": 1}), "s") == url
    rds = {"engine": "postgres", "username": "vo2dr", "password": "p w'd", "host": "db.rds",
           "port": 6432, "dbname": "vo2max", "dbInstanceIdentifier": "vo2max"}
    params = conninfo_to_dict(url_from_secret(json.dumps(rds), "s"))
    assert params == {"user": "vo2dr", "password": "p w'd", "host": "db.rds", "port": "6432",
                      "dbname": "vo2max"}
    no_db = conninfo_to_dict(url_from_secret(json.dumps({"username": "u", "host": "h"}), "s"))
    assert (no_db["port"], no_db["dbname"]) == ("5432", "postgres")


@pytest.mark.parametrize(("value", "message"), [
    ('{"password": "hunter2"', "secret db-secret is neither a URL nor JSON"),
    ('{"password": "hunter2"}', "secret db-secret has no url, database_url or RDS fields"),
])
def test_a_malformed_secret_is_named_never_shown(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        url_from_secret(value, "db-secret")
    assert "hunter2" not in str(info.value)


def test_resolve_secrets_fills_only_what_is_not_set():
    import boto3

    client = boto3.client("secretsmanager", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", {"SecretString": json.dumps(
            {"username": "u", "password": "p", "host": "h", "dbname": "d"})},
            {"SecretId": "drill"})
        stub.add_response("get_secret_value", {"SecretString": "https://hooks.example/x"},
                          {"SecretId": "hook"})
        s = resolve_secrets(Settings(database_url="postgresql://set/db",
                                     database_url_secret="db", alert_webhook_secret="hook",
                                     drill_database_url_secret="drill"), client)
        stub.assert_no_pending_responses()
    assert s.database_url == "postgresql://set/db"  # set directly: its secret is not read
    assert s.alert_webhook == "https://hooks.example/x"
    assert conninfo_to_dict(s.drill_database_url)["dbname"] == "d"
    assert secret_urls.resolve_database_url(s, client) is s


# -- the store factory ------------------------------------------------------------------------

def test_reading_needs_no_kms_key_and_writing_does(no_cloud):
    s = Settings(s3_bucket="b1", gcs_bucket="b2", gcs_retention_days="30",
                 gcs_retention_mode="Unlocked",
                 azure_container_url="http://127.0.0.1:9/devstoreaccount1/backups")
    stores = open_stores(s, Access.READ)
    assert isinstance(stores, StoreSet) and list(stores) == ["s3", "gcs", "azure"]
    assert stores["gcs"].retention is None  # the lock is set on uploads only
    with pytest.raises(ConfigError, match="writing needs VO2DR_KMS_KEY_ID"):
        stores["s3"].put_bytes("k", b"x")  # refused before any request
    with pytest.raises(ConfigError, match=r"missing setting: VO2DR_KMS_KEY_ID"):
        open_stores(s, Access.WRITE)
    arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    written = open_stores(dataclasses.replace(s, kms_key_id=arn), Access.WRITE)
    assert written["s3"].kms_key_id == arn and written["gcs"].retention.days == 30


def test_zero_stores_are_refused_strict_or_tolerant(no_cloud):
    for tolerant in (False, True):
        for access in Access:
            with pytest.raises(ConfigError, match=NO_STORE):
                open_stores(Settings(environment="staging"), access, tolerant=tolerant)


def test_the_status_job_refuses_zero_stores():
    from datetime import UTC, datetime

    with pytest.raises(ConfigError, match="no store enabled"):
        run_status_job(Settings(environment="staging", strategy_json=STRATEGY),
                       datetime.now(UTC), webhook=None)


def test_tolerant_opening_keeps_the_reason_and_the_order(no_cloud, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")  # so the federation config is read
    s = Settings(s3_bucket="b1", gcs_bucket="b2", gcs_credential_config="{not json",
                 azure_container_url="http://127.0.0.1:9/devstoreaccount1/backups")
    with pytest.raises(ConfigError, match="VO2DR_GCS_CREDENTIAL_CONFIG is not JSON"):
        open_stores(s, Access.READ)
    stores = open_stores(s, Access.READ, tolerant=True)
    assert list(stores) == ["s3", "azure"] and stores.names == ("s3", "gcs", "azure")
    assert "VO2DR_GCS_CREDENTIAL_CONFIG is not JSON" in stores.errors["gcs"]


def test_sdk_construction_errors_become_one_line_config_errors(no_cloud, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "not a connection string")
    with pytest.raises(ConfigError) as info:
        open_store("azure", Settings(azure_container_url="https://a.blob.core.windows.net/c"),
                   Access.READ)
    assert str(info.value).startswith("cannot open the azure store: ValueError: ")
    assert "VO2DR_AZURE_CONTAINER_URL" in str(info.value) and "\n" not in str(info.value)
