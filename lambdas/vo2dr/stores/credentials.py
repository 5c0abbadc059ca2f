"""How the job signs in to GCS and Azure: local emulators, keyless federation from AWS, or the
clouds' default credential chains. See docs/cross-cloud-identity.md for the cloud side.

GCS, in order:
1. ``STORAGE_EMULATOR_HOST`` set: anonymous credentials (the emulator checks none).
2. ``VO2DR_GCS_CREDENTIAL_CONFIG`` set (the Pulumi output ``gcsCredentialConfig``, JSON, not a
   secret): workload identity federation from AWS. google-auth signs an STS
   GetCallerIdentity request with the Lambda's own role credentials (``AWS_ACCESS_KEY_ID``,
   ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, all set by Lambda), Google's
   STS checks it with AWS, and the result impersonates the GCS writer service account.
3. Otherwise Application Default Credentials (Cloud Run's metadata server, a developer login).

Azure, in order:
1. ``AZURE_STORAGE_CONNECTION_STRING`` set (Azurite): the store uses it, no Entra credential.
2. ``VO2DR_AZURE_TENANT_ID`` and ``VO2DR_AZURE_CLIENT_ID`` set (Pulumi outputs ``azureTenantId``
   and ``azureWriterClientId`` or ``azureReaderClientId``): ``ClientAssertionCredential``
   whose assertion is a JWT from AWS IAM outbound identity federation
   (``sts:GetWebIdentityToken``, audience ``api://AzureADTokenExchange``, regional STS
   endpoint). Entra ID trusts it through the
   identity's federated credential (issuer = the account's token issuer, subject = the role
   ARN, which is the token's ``sub``): the backup writer role as the writer identity, the
   monitor and restore reader roles as the reader identity.
   With ``VO2DR_AZURE_ASSERTION=gcp`` (the Cloud Run standby, which must work while AWS is
   down) the assertion is instead a Google-signed ID token of the job's own service account,
   from the metadata server (``.../service-accounts/default/identity?audience=...``); Entra ID
   trusts it through the writer identity's federated credential (issuer
   ``https://accounts.google.com``, subject = the service account's unique id).
3. Otherwise ``DefaultAzureCredential`` (managed identity, ``AZURE_*`` environment, CLI login).

The job's own names are ``VO2DR_*``, not ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``: those would
also steer ``DefaultAzureCredential`` (towards a managed identity that does not exist in AWS).

Nothing here logs a credential: not the JWT, not an access token, not the AWS keys. Only which
kind of credential was chosen and the (public) identity it signs in as.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from vo2dr.exceptions import ConfigError

log = logging.getLogger("vo2dr.stores")

GCS_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
# What a workload identity federation config from our own Pulumi program looks like. Anything
# else is refused: an external-account config can name an arbitrary executable or URL as its
# credential source, so one from a tampered environment must not be followed blindly.
GOOGLE_STS_TOKEN_URL = "https://sts.googleapis.com/v1/token"  # noqa: S105 - a URL, not a secret
GOOGLE_IMPERSONATION_PREFIX = "https://iamcredentials.googleapis.com/"
AWS_SUBJECT_TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"  # noqa: S105

# The audience Entra ID expects in a federated assertion; infra/azure/access.py sets the same
# on the federated credential and infra/aws/access.py allows the writer role no other.
ENTRA_AUDIENCE = "api://AzureADTokenExchange"
# Entra ID validates RS256 federated assertions. The token lives only for the exchange: the
# IAM policy caps sts:DurationSeconds at this value, so it must be sent explicitly.
JWT_ALGORITHM = "RS256"
JWT_LIFETIME_SECONDS = 300
# Where the Azure assertion comes from (VO2DR_AZURE_ASSERTION): AWS outbound identity
# federation (the Lambdas, the default) or the Google metadata server (the Cloud Run standby).
ASSERTION_SOURCES = ("aws", "gcp")
# The metadata server (google-auth's GCE_METADATA_HOST overrides the host, as for ADC).
GCE_METADATA_HOST = "metadata.google.internal"
METADATA_IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
METADATA_TIMEOUT_SECONDS = 10


# ---- Google Cloud Storage ------------------------------------------------------------------


def gcs_credentials(credential_config: str = "",
                    env: Mapping[str, str] | None = None) -> Any:
    """The google-auth credentials the GCS client should use, or ``None`` for Application
    Default Credentials. ``credential_config`` is ``VO2DR_GCS_CREDENTIAL_CONFIG``."""
    env = os.environ if env is None else env
    if env.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    if credential_config:
        return _aws_federated_gcs_credentials(credential_config)
    log.debug("gcs: Application Default Credentials")
    return None


def _aws_federated_gcs_credentials(credential_config: str) -> Any:
    try:
        info = json.loads(credential_config)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"VO2DR_GCS_CREDENTIAL_CONFIG is not JSON ({exc.msg}): set it to the "
                          "Pulumi output gcsCredentialConfig") from None
    problem = _federation_config_problem(info)
    if problem:
        raise ConfigError(f"VO2DR_GCS_CREDENTIAL_CONFIG {problem}: set it to the Pulumi output "
                          "gcsCredentialConfig")
    import google.auth.aws
    import google.auth.exceptions

    try:
        # google.auth.aws rather than load_credentials_from_dict: only the AWS kind is
        # acceptable here, never a service-account key or another credential source.
        creds = google.auth.aws.Credentials.from_info(info, scopes=list(GCS_SCOPES))
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise ConfigError(f"VO2DR_GCS_CREDENTIAL_CONFIG is not a usable AWS workload identity "
                          f"federation config: {exc}") from exc
    log.info("gcs: workload identity federation from AWS as %s",
             creds.service_account_email or "the federated principal")
    return creds


def _federation_config_problem(info: Any) -> str:
    """Why ``info`` is not the AWS federation config our program exports ('' when it is)."""
    if not isinstance(info, dict):
        return "is not a JSON object"
    if info.get("type") != "external_account":
        return f"has type {info.get('type')!r}, not 'external_account'"
    if info.get("subject_token_type") != AWS_SUBJECT_TOKEN_TYPE:
        return "is not for AWS (subject_token_type)"
    source = info.get("credential_source")
    if not isinstance(source, dict) or not str(source.get("environment_id", "")).startswith(
            "aws"):
        return "has no AWS credential_source"
    if set(source) & {"executable", "file"}:
        return "names an executable or file credential source"
    if info.get("token_url", GOOGLE_STS_TOKEN_URL) != GOOGLE_STS_TOKEN_URL:
        return f"sends tokens to {info.get('token_url')!r}, not Google's STS"
    url = info.get("service_account_impersonation_url")
    if url is not None and not str(url).startswith(GOOGLE_IMPERSONATION_PREFIX):
        return f"impersonates through {url!r}, not Google's IAM Credentials API"
    if not str(info.get("audience", "")).startswith("//iam.googleapis.com/"):
        return "has no workload identity pool provider audience"
    return ""


# ---- Azure Blob Storage --------------------------------------------------------------------


def azure_credential(tenant_id: str = "", client_id: str = "",
                     env: Mapping[str, str] | None = None, *, sts_client: Any = None,
                     assertion: str | None = None) -> Any:
    """The Entra ID credential the blob client should use, or ``None`` when the store connects
    with ``AZURE_STORAGE_CONNECTION_STRING`` (the emulator). ``tenant_id`` and ``client_id`` are
    ``VO2DR_AZURE_TENANT_ID`` and ``VO2DR_AZURE_CLIENT_ID``; both or neither. ``assertion`` is
    ``Settings.azure_assertion`` (``VO2DR_AZURE_ASSERTION``, read from ``env`` when None)."""
    env = os.environ if env is None else env
    if env.get("AZURE_STORAGE_CONNECTION_STRING"):
        return None
    if bool(tenant_id) != bool(client_id):
        missing = "VO2DR_AZURE_CLIENT_ID" if tenant_id else "VO2DR_AZURE_TENANT_ID"
        raise ConfigError(f"{missing} is not set: federation from AWS needs both "
                          "VO2DR_AZURE_TENANT_ID and VO2DR_AZURE_CLIENT_ID (Pulumi outputs "
                          "azureTenantId and azureWriterClientId)")
    if tenant_id:
        from azure.identity import ClientAssertionCredential

        source = (assertion if assertion is not None
                  else env.get("VO2DR_AZURE_ASSERTION")) or "aws"
        if source not in ASSERTION_SOURCES:
            raise ConfigError(f"VO2DR_AZURE_ASSERTION is {source!r}: use 'aws' (Lambda, the "
                              "default) or 'gcp' (the Cloud Run standby)")
        if source == "gcp":
            log.info("azure: workload identity federation from GCP (metadata server ID token) "
                     "as client %s", client_id)
            func = gcp_identity_token_func(env=env)
        else:
            log.info("azure: workload identity federation from AWS as client %s", client_id)
            func = aws_web_identity_token_func(sts_client=sts_client, env=env)
        return ClientAssertionCredential(tenant_id=tenant_id, client_id=client_id, func=func)
    from azure.identity import DefaultAzureCredential

    log.debug("azure: DefaultAzureCredential")
    return DefaultAzureCredential()


def aws_web_identity_token_func(audience: str = ENTRA_AUDIENCE, *, sts_client: Any = None,
                                env: Mapping[str, str] | None = None) -> Callable[[], str]:
    """A callable returning a fresh AWS-signed JWT for ``audience`` on each call (azure-identity
    calls it whenever it needs a new Entra token). Failures raise azure-core's
    ``ClientAuthenticationError`` with a one-line cause, which the store maps to AccessDenied."""
    import botocore.exceptions
    from azure.core.exceptions import ClientAuthenticationError

    client = sts_client if sts_client is not None else make_sts_client(env)

    def fetch() -> str:
        try:
            resp = client.get_web_identity_token(
                Audience=[audience], SigningAlgorithm=JWT_ALGORITHM,
                DurationSeconds=JWT_LIFETIME_SECONDS)
        except botocore.exceptions.ClientError as exc:
            err = exc.response.get("Error", {})
            raise ClientAuthenticationError(
                message=f"sts:GetWebIdentityToken for {audience} failed: "
                        f"{err.get('Code', '')} {err.get('Message', '')}".strip()) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise ClientAuthenticationError(
                message=f"sts:GetWebIdentityToken for {audience} failed: "
                        f"{type(exc).__name__}: {exc}") from exc
        token = resp.get("WebIdentityToken")
        if not token:
            raise ClientAuthenticationError(
                message=f"sts:GetWebIdentityToken for {audience} returned no token")
        log.debug("azure: fetched an AWS web identity token for %s (valid %s s)", audience,
                  JWT_LIFETIME_SECONDS)
        return str(token)

    return fetch


def gcp_identity_token_func(audience: str = ENTRA_AUDIENCE, *,
                            env: Mapping[str, str] | None = None) -> Callable[[], str]:
    """A callable returning a fresh Google-signed ID token of the job's service account for
    ``audience`` on each call, from the metadata server (Cloud Run, GCE). Its ``iss`` is
    ``https://accounts.google.com`` and its ``sub`` the service account's unique id, which the
    Azure writer identity's federated credential names. Failures raise azure-core's
    ``ClientAuthenticationError`` with a one-line cause, never the token.

    Kept as one plain GET rather than ``google.oauth2.id_token.fetch_id_token`` (reviewed for
    issue 12): that helper takes a service-account key file from
    ``GOOGLE_APPLICATION_CREDENTIALS`` first when one is set, so an ambient key file would
    silently change the identity the standby signs in to Azure as; only the metadata server's
    identity is acceptable here. And google-auth reads ``GCE_METADATA_HOST`` once, when
    ``google.auth.compute_engine._metadata`` is imported, so the host could not follow
    ``env`` (the tests' local metadata server). The request itself is the documented one:
    ``Metadata-Flavor: Google`` both ways, and a JWT-shaped answer."""
    from azure.core.exceptions import ClientAuthenticationError

    env = os.environ if env is None else env
    host = env.get("GCE_METADATA_HOST") or GCE_METADATA_HOST
    url = (f"http://{host}{METADATA_IDENTITY_PATH}?"
           + urllib.parse.urlencode({"audience": audience}))

    def fetch() -> str:
        what = f"metadata server ID token for {audience}"
        request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})
        try:
            # A plain-HTTP link-local service by design; the URL is fixed above.
            with urllib.request.urlopen(request, timeout=METADATA_TIMEOUT_SECONDS) as resp:  # noqa: S310
                flavor = resp.headers.get("Metadata-Flavor")
                token = resp.read().decode("ascii", "replace").strip()
        except urllib.error.HTTPError as exc:
            raise ClientAuthenticationError(
                message=f"{what} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientAuthenticationError(
                message=f"{what} failed: {host} unreachable ({reason})") from None
        if flavor != "Google":
            raise ClientAuthenticationError(
                message=f"{what} failed: {host} is not a Google metadata server")
        if token.count(".") != 2 or any(c.isspace() for c in token):
            raise ClientAuthenticationError(message=f"{what} returned no JWT")
        log.debug("azure: fetched a Google ID token for %s", audience)
        return token

    return fetch


def make_sts_client(env: Mapping[str, str] | None = None) -> Any:
    """An STS client on the regional endpoint of the job's region (GetWebIdentityToken is not
    served by the global endpoint, so the legacy global setting is overridden)."""
    import botocore
    import botocore.session
    from botocore.config import Config

    env = os.environ if env is None else env
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError("AWS_REGION is not set: sts:GetWebIdentityToken needs a regional STS "
                          "endpoint (Lambda sets AWS_REGION itself)")
    session = botocore.session.get_session()
    session.set_config_variable("sts_regional_endpoints", "regional")
    client = session.create_client(
        "sts", region_name=region,
        config=Config(retries={"mode": "standard", "total_max_attempts": 5},
                      connect_timeout=10, read_timeout=30))
    if "GetWebIdentityToken" not in client.meta.service_model.operation_names:
        raise ConfigError(f"botocore {botocore.__version__} has no sts:GetWebIdentityToken: "
                          "install the locked version from the lock file")
    return client
