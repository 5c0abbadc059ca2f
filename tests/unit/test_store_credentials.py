"""Which credential the GCS and Azure stores sign in with (vo2dr.stores.credentials), the AWS
web identity token callback and the Google metadata-server ID token callback behind the Azure
one, and that no credential value reaches a log.

No cloud is called: google-auth's AWS credentials are built but never refreshed, the STS client
is a real botocore client under botocore's Stubber, the metadata server is a real local HTTP
server standing in for metadata.google.internal, and the Azure credential fails inside our
callback before any request leaves the process."""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google.auth.aws
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, DefaultAzureCredential
from botocore.stub import Stubber
from google.auth.credentials import AnonymousCredentials
from vo2dr.exceptions import AccessDenied, ConfigError
from vo2dr.settings import VARIABLES, Settings
from vo2dr.stores import Access, credentials, open_store
from vo2dr.stores.credentials import (
    ENTRA_AUDIENCE,
    aws_web_identity_token_func,
    azure_credential,
    gcp_identity_token_func,
    gcs_credentials,
    make_sts_client,
)

WRITER = "vo2dr-staging-gcs-writer@vo2dr-staging.iam.gserviceaccount.com"
AUDIENCE = ("//iam.googleapis.com/projects/123456789012/locations/global/"
            "workloadIdentityPools/vo2dr-staging-aws/providers/aws-111111111111")
# The shape infra/gcp/access.py exports as gcsCredentialConfig.
CONFIG = {
    "type": "external_account",
    "audience": AUDIENCE,
    "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
    "token_url": "https://sts.googleapis.com/v1/token",
    "service_account_impersonation_url":
        f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{WRITER}"
        ":generateAccessToken",
    "credential_source": {
        "environment_id": "aws1",
        "regional_cred_verification_url":
            "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
    },
}
TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT = "00000000-0000-0000-0000-0000000000bb"
# Values that must never be logged or put into an error message.
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcm46YXdzOmlhbTo6MTExOnJvbGUvdyJ9.c2lnbmF0dXJl"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
AWS_SESSION = "IQoJb3JpZ2luX2VjSESSIONTOKENVALUE"
LAMBDA_ENV = {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEKEYID",
              "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "AWS_SESSION_TOKEN": AWS_SESSION}
EXPECTED_STS_CALL = {"Audience": [ENTRA_AUDIENCE], "SigningAlgorithm": "RS256",
                     "DurationSeconds": 300}


@pytest.fixture
def lambda_env(monkeypatch) -> dict[str, str]:
    """The variables the Lambda runtime sets, and none of the emulators'."""
    for var in ("STORAGE_EMULATOR_HOST", "AZURE_STORAGE_CONNECTION_STRING", "AWS_ENDPOINT_URL",
                "AWS_DEFAULT_REGION", "AWS_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    for key, value in LAMBDA_ENV.items():
        monkeypatch.setenv(key, value)
    return dict(LAMBDA_ENV)


def stubbed_sts() -> tuple[object, Stubber]:
    client = make_sts_client({"AWS_REGION": "eu-west-1"})
    return client, Stubber(client)


# ---- GCS ---------------------------------------------------------------------------------------


def test_gcs_uses_the_federation_config_when_no_emulator_is_set(lambda_env):
    creds = gcs_credentials(json.dumps(CONFIG), env=lambda_env)
    assert isinstance(creds, google.auth.aws.Credentials)
    assert creds.service_account_email == WRITER
    assert creds.scopes == ["https://www.googleapis.com/auth/devstorage.read_write"]
    assert creds.info["audience"] == AUDIENCE
    assert not creds.valid  # nothing was fetched: google-auth signs on first use


def test_gcs_emulator_wins_and_nothing_set_means_adc():
    emulator = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9023"}
    assert isinstance(gcs_credentials(json.dumps(CONFIG), env=emulator), AnonymousCredentials)
    assert gcs_credentials("", env={}) is None  # Application Default Credentials


@pytest.mark.parametrize(("change", "message"), [
    ({"type": "service_account"}, "type 'service_account'"),
    ({"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "not for AWS"),
    ({"credential_source": {"executable": {"command": "/bin/sh -c id"},
                            "environment_id": "aws1"}}, "executable"),
    ({"credential_source": {"file": "/var/run/token"}}, "no AWS credential_source"),
    ({"token_url": "https://attacker.example/token"}, "not Google's STS"),
    ({"service_account_impersonation_url": "https://attacker.example/x"}, "IAM Credentials"),
    ({"audience": "https://attacker.example"}, "audience"),
])
def test_gcs_refuses_a_config_that_is_not_our_aws_federation(change, message):
    with pytest.raises(ConfigError, match=f"VO2DR_GCS_CREDENTIAL_CONFIG .*{message}"):
        gcs_credentials(json.dumps({**CONFIG, **change}), env={})


def test_gcs_refuses_text_that_is_not_json():
    with pytest.raises(ConfigError, match="VO2DR_GCS_CREDENTIAL_CONFIG is not JSON"):
        gcs_credentials("{'type': 'external_account'", env={})


def test_open_store_gives_the_gcs_client_the_federated_credentials(lambda_env, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "vo2dr-staging")
    store = open_store("gcs", Settings(gcs_bucket="vo2dr-staging-backups",
                                       gcs_credential_config=json.dumps(CONFIG)), Access.WRITE)
    assert isinstance(store._client._credentials, google.auth.aws.Credentials)
    assert store._client._credentials.service_account_email == WRITER


# ---- Azure -------------------------------------------------------------------------------------


def test_azure_connection_string_wins():
    env = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    assert azure_credential(TENANT, CLIENT, env=env) is None


def test_azure_federation_when_tenant_and_client_are_set(lambda_env, monkeypatch):
    sts, stub = stubbed_sts()
    stub.add_response("get_web_identity_token", {"WebIdentityToken": JWT}, EXPECTED_STS_CALL)
    made = {}

    class Recording(ClientAssertionCredential):
        def __init__(self, **kwargs):
            made.update(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr("azure.identity.ClientAssertionCredential", Recording)
    cred = azure_credential(TENANT, CLIENT, env=lambda_env, sts_client=sts)
    assert isinstance(cred, ClientAssertionCredential)
    assert made["tenant_id"] == TENANT and made["client_id"] == CLIENT
    with stub:
        assert made["func"]() == JWT  # the assertion Entra ID receives
    stub.assert_no_pending_responses()


def test_azure_default_chain_when_nothing_is_set(lambda_env):
    assert isinstance(azure_credential("", "", env=lambda_env), DefaultAzureCredential)


@pytest.mark.parametrize(("tenant", "client", "missing"), [
    (TENANT, "", "VO2DR_AZURE_CLIENT_ID"), ("", CLIENT, "VO2DR_AZURE_TENANT_ID")])
def test_azure_half_a_federation_is_a_config_error(tenant, client, missing):
    with pytest.raises(ConfigError, match=missing):
        azure_credential(tenant, client, env={})


def test_open_store_gives_the_blob_client_the_federated_credential(lambda_env, monkeypatch):
    sts, stub = stubbed_sts()
    stub.add_response("get_web_identity_token", {"WebIdentityToken": JWT}, EXPECTED_STS_CALL)
    monkeypatch.setattr(credentials, "make_sts_client", lambda env=None: sts)
    store = open_store("azure", Settings(
        azure_container_url="https://vo2drstaging.blob.core.windows.net/backups",
        azure_tenant_id=TENANT, azure_client_id=CLIENT), Access.WRITE)
    cred = store._client.credential
    assert isinstance(cred, ClientAssertionCredential)
    # Not only the type: it signs in as our writer identity in our tenant, with the AWS token
    # of the Lambda's role as its assertion (azure-identity keeps them on the credential).
    assert (cred._client._tenant_id, cred._client._client_id) == (TENANT, CLIENT)
    with stub:
        assert cred._func() == JWT
    stub.assert_no_pending_responses()
    assert store.container == "backups"


# ---- the token callback ------------------------------------------------------------------------


def test_token_callback_asks_sts_for_a_short_lived_entra_token():
    sts, stub = stubbed_sts()
    stub.add_response("get_web_identity_token", {"WebIdentityToken": JWT}, EXPECTED_STS_CALL)
    stub.add_response("get_web_identity_token", {"WebIdentityToken": JWT + "2"},
                      EXPECTED_STS_CALL)
    fetch = aws_web_identity_token_func(sts_client=sts)
    with stub:
        assert fetch() == JWT
        assert fetch() == JWT + "2"  # a fresh token each time azure-identity asks
    stub.assert_no_pending_responses()


def test_sts_client_is_regional():
    client = make_sts_client({"AWS_REGION": "eu-west-1"})
    assert client.meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"
    assert "GetWebIdentityToken" in client.meta.service_model.operation_names
    with pytest.raises(ConfigError, match="AWS_REGION"):
        make_sts_client({})


@pytest.mark.parametrize("code", ["OutboundWebIdentityFederationDisabledException",
                                  "AccessDenied"])
def test_token_failure_is_an_authentication_error_naming_the_cause(code):
    sts, stub = stubbed_sts()
    stub.add_client_error("get_web_identity_token", service_error_code=code,
                          service_message="not allowed", http_status_code=403)
    with stub, pytest.raises(ClientAuthenticationError, match=code) as err:
        aws_web_identity_token_func(sts_client=sts)()
    assert "\n" not in err.value.message


def test_a_denied_token_reaches_the_store_as_access_denied(lambda_env):
    """Through the real azure-identity and blob client: the callback fails before any request
    leaves the process, and the store reports AccessDenied with the STS cause."""
    from vo2dr.stores.azure_blob import AzureBlobStore

    sts, stub = stubbed_sts()
    stub.add_client_error("get_web_identity_token",
                          service_error_code="OutboundWebIdentityFederationDisabledException",
                          http_status_code=403)
    cred = azure_credential(TENANT, CLIENT, env=lambda_env, sts_client=sts)
    store = AzureBlobStore("https://vo2drstaging.blob.core.windows.net/backups",
                           credential=cred, retry_total=0)
    with stub, pytest.raises(AccessDenied, match="OutboundWebIdentityFederationDisabled"):
        store.stat("database/staging/x.manifest.json")


# ---- the Google ID token callback (the Cloud Run standby) ----------------------------------------

GOOGLE_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20ifQ.c2ln"
IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"


class FakeMetadataServer:
    """A real HTTP server on 127.0.0.1 answering like the GCE/Cloud Run metadata server: it
    refuses requests without ``Metadata-Flavor: Google`` (as the real one does) and records
    every request it serves."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.tokens = [GOOGLE_JWT, GOOGLE_JWT + "2"]
        self.status = 200
        self.flavor = "Google"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                outer.requests.append((url.path, urllib.parse.parse_qs(url.query),
                                       dict(self.headers)))
                if self.headers.get("Metadata-Flavor") != "Google":
                    self.send_response(403)
                    body = b"Missing Metadata-Flavor:Google header."
                elif url.path != IDENTITY_PATH or outer.status != 200:
                    self.send_response(404 if url.path != IDENTITY_PATH else outer.status)
                    body = b"not found"
                else:
                    self.send_response(200)
                    body = outer.tokens.pop(0).encode()
                self.send_header("Metadata-Flavor", outer.flavor)
                self.send_header("Content-Type", "application/text")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeMetadataServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata() -> Iterator[FakeMetadataServer]:
    with FakeMetadataServer() as server:
        yield server


def test_gcp_callback_fetches_a_fresh_google_id_token_for_entra(metadata):
    fetch = gcp_identity_token_func(env={"GCE_METADATA_HOST": metadata.host})
    assert fetch() == GOOGLE_JWT
    assert fetch() == GOOGLE_JWT + "2"  # a fresh token each time azure-identity asks
    assert len(metadata.requests) == 2
    for path, query, headers in metadata.requests:
        assert path == IDENTITY_PATH
        assert query == {"audience": [ENTRA_AUDIENCE]}
        assert headers["Metadata-Flavor"] == "Google"


def test_gcp_assertion_is_chosen_by_vo2dr_azure_assertion(metadata):
    env = {"VO2DR_AZURE_ASSERTION": "gcp", "GCE_METADATA_HOST": metadata.host}
    cred = azure_credential(TENANT, CLIENT, env=env)
    assert isinstance(cred, ClientAssertionCredential)
    # azure-identity calls this for each Entra token; it asks the metadata server, not AWS.
    assert cred._func() == GOOGLE_JWT
    assert [p for p, _, _ in metadata.requests] == [IDENTITY_PATH]
    # Without the switch the same settings use AWS tokens (the Lambdas).
    sts, stub = stubbed_sts()
    stub.add_response("get_web_identity_token", {"WebIdentityToken": JWT}, EXPECTED_STS_CALL)
    aws = azure_credential(TENANT, CLIENT, env={"GCE_METADATA_HOST": metadata.host},
                           sts_client=sts)
    with stub:
        assert aws._func() == JWT
    assert len(metadata.requests) == 1


def test_an_unknown_assertion_source_is_a_config_error():
    with pytest.raises(ConfigError, match="VO2DR_AZURE_ASSERTION"):
        azure_credential(TENANT, CLIENT, env={"VO2DR_AZURE_ASSERTION": "gpc"})


@pytest.mark.parametrize(("setup", "expected"), [
    ({"status": 404}, "HTTP 404"),
    ({"status": 500}, "HTTP 500"),
    ({"flavor": "Other"}, "not a Google metadata server"),
    ({"tokens": ["<html>captive portal</html>"]}, "returned no JWT"),
])
def test_gcp_callback_failure_is_an_authentication_error(metadata, setup, expected):
    for attr, value in setup.items():
        setattr(metadata, attr, value)
    with pytest.raises(ClientAuthenticationError, match=expected) as err:
        gcp_identity_token_func(env={"GCE_METADATA_HOST": metadata.host})()
    assert "\n" not in err.value.message and GOOGLE_JWT not in err.value.message


def test_gcp_callback_with_no_metadata_server_names_the_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    host = f"127.0.0.1:{server.server_address[1]}"
    server.server_close()  # nothing listens there any more
    with pytest.raises(ClientAuthenticationError, match=f"{host} unreachable"):
        gcp_identity_token_func(env={"GCE_METADATA_HOST": host})()


def test_a_failed_google_token_reaches_the_store_as_access_denied(lambda_env, metadata):
    """Through the real azure-identity and blob client: the callback fails before any request
    leaves for Entra ID, and the store reports AccessDenied with the cause."""
    from vo2dr.stores.azure_blob import AzureBlobStore

    metadata.status = 404
    cred = azure_credential(TENANT, CLIENT, env={**lambda_env, "VO2DR_AZURE_ASSERTION": "gcp",
                                                 "GCE_METADATA_HOST": metadata.host})
    store = AzureBlobStore("https://vo2drstaging.blob.core.windows.net/backups",
                           credential=cred, retry_total=0)
    with pytest.raises(AccessDenied, match="metadata server ID token"):
        store.stat("database/staging/x.manifest.json")


def test_no_google_token_is_ever_logged(metadata, caplog):
    caplog.set_level(logging.DEBUG)
    cred = azure_credential(TENANT, CLIENT, env={"VO2DR_AZURE_ASSERTION": "gcp",
                                                 "GCE_METADATA_HOST": metadata.host})
    assert cred._func() == GOOGLE_JWT
    assert "federation from GCP" in caplog.text
    assert GOOGLE_JWT not in caplog.text + repr(cred)


# ---- nothing secret is logged ------------------------------------------------------------------


def test_no_credential_value_is_ever_logged(lambda_env, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, ours and the SDKs'
    errors = []
    gcs_credentials(json.dumps(CONFIG), env=lambda_env)
    sts, stub = stubbed_sts()
    stub.add_response("get_web_identity_token", {"WebIdentityToken": JWT}, EXPECTED_STS_CALL)
    stub.add_client_error("get_web_identity_token", service_error_code="AccessDenied",
                          http_status_code=403)
    cred = azure_credential(TENANT, CLIENT, env=lambda_env, sts_client=sts)
    fetch = aws_web_identity_token_func(sts_client=sts)
    with stub:
        assert fetch() == JWT
        with pytest.raises(ClientAuthenticationError) as err:
            fetch()
        errors.append(str(err.value))
    assert cred is not None
    text = caplog.text + "\n".join(errors) + repr(cred)
    assert caplog.records, "the choice of credential is logged"
    for secret in (JWT, AWS_SECRET, AWS_SESSION):
        assert secret not in text
    assert "workload identity federation" in caplog.text  # what was chosen, not its value


def test_settings_carry_the_new_variables_with_flags():
    env = {"VO2DR_GCS_CREDENTIAL_CONFIG": json.dumps(CONFIG),
           "VO2DR_AZURE_TENANT_ID": TENANT, "VO2DR_AZURE_CLIENT_ID": CLIENT}
    s = Settings.from_env(env)
    assert (s.gcs_credential_config, s.azure_tenant_id, s.azure_client_id) == (
        env["VO2DR_GCS_CREDENTIAL_CONFIG"], TENANT, CLIENT)
    assert VARIABLES["gcs_credential_config"] == ("VO2DR_GCS_CREDENTIAL_CONFIG",
                                                  "--gcs-credential-config")
    assert VARIABLES["azure_tenant_id"][1] == "--azure-tenant-id"
    assert VARIABLES["azure_client_id"][1] == "--azure-client-id"
    assert s.redacted()["gcs_credential_config"] == "(json)"
    assert credentials.ENTRA_AUDIENCE == "api://AzureADTokenExchange"
