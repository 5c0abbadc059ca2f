"""Lock a blob container's time-based immutability policy as part of ``pulumi up``.

Azure creates every container immutability policy *unlocked*; locking is a separate,
irreversible ARM action, ``POST .../immutabilityPolicies/default/lock`` with the policy's ETag
in ``If-Match`` ("Blob Containers - Lock Immutability Policy", storage RP API 2024-01-01).
pulumi-azure-native exposes the policy's ``state`` as an output only, and the account-level
policy (``immutableStorageWithVersioning.immutabilityPolicy.state``) "can only be created in a
Disabled or Unlocked state" (its own input docs), so neither can be declared Locked.

:class:`ImmutabilityPolicyLock` is a small Pulumi dynamic resource that does that one call:

* ``check`` validates the inputs that are known and lets unknown ones pass: at a first
  preview the policy id is an output of a policy that does not exist yet. ``create`` and
  ``update`` validate every input again, when the engine has resolved them all.
* ``create`` GETs the policy for its ETag, refuses if its period is not the declared one (a
  lock is forever), and POSTs the lock with ``If-Match``. A stale ETag (412) re-reads and
  retries; throttling, 5xx and connection errors back off and retry (azure-core's HTTP
  pipeline and its RetryPolicy, the same the Azure SDKs use; the ETag retry is the lock's own);
  401/403/404 and other 4xx fail at once with the ARM error code and message. A policy that
  is already Locked is taken as is (idempotent: e.g. locked earlier by hand).
* ``diff`` never plans an update: the only change that matters is a different policy, which
  replaces the resource (the new policy is locked; the old lock stays, it cannot be undone).
* ``delete`` is a no-op: Azure has no unlock. Removing the resource from the program only
  forgets it; the policy stays Locked.

The token comes from the same identity the azure-native provider uses: GitHub OIDC with
``ARM_CLIENT_ID``/``ARM_TENANT_ID`` (``ARM_USE_OIDC=true``, as .github/workflows/up.yml sets),
otherwise ``DefaultAzureCredential`` (Azure CLI login, workload identity, managed identity).
The token is only ever put in the ``Authorization`` header; it is never logged or returned.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from azure.core import PipelineClient
from azure.core.exceptions import AzureError
from azure.core.pipeline.policies import HttpLoggingPolicy, RetryPolicy, UserAgentPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown
from pulumi.runtime import rpc

ARM_ENDPOINT = "https://management.azure.com"
# The storage resource provider API version pulumi-azure-native 3.x uses for the policy.
API_VERSION = "2024-01-01"
# pulumi-python:dynamic/<module>:<name>, see pulumi.dynamic.Resource.__init_subclass__.
LOCK_TYPE = "pulumi-python:dynamic/vo2dr:AzureImmutabilityPolicyLock"
LOCK_ACTION = ("Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies/"
               "lock/action")
POLICY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Storage/"
    r"storageAccounts/[a-z0-9]{3,24}/blobServices/default/containers/[a-z0-9-]{3,63}/"
    r"immutabilityPolicies/default$", re.IGNORECASE)
# Inputs that name the policy: a change means a different policy, so a replacement.
_IDENTITY = ("policy_id", "endpoint")


class LockError(Exception):
    """The lock could not be done; the message says why and what to do. Never holds a token."""


TokenSource = Callable[[str], str]  # scope -> bearer token


def _github_oidc_assertion() -> str:
    """GitHub Actions' OIDC token for Entra ID (audience api://AzureADTokenExchange), as the
    azure-native provider fetches it with ARM_USE_OIDC."""
    url = os.environ.get("ARM_OIDC_REQUEST_URL") or os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"]
    bearer = (os.environ.get("ARM_OIDC_REQUEST_TOKEN")
              or os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
    if not url.startswith("https://"):
        raise LockError("the GitHub OIDC request URL is not https")
    sep = "&" if "?" in url else "?"
    req = urllib.request.Request(  # noqa: S310 (https checked above)
        f"{url}{sep}audience={urllib.parse.quote('api://AzureADTokenExchange')}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        return json.load(resp)["value"]


def default_token_source(scope: str) -> str:
    """A bearer token for ``scope`` from the deploying identity (see the module doc)."""
    from azure.identity import ClientAssertionCredential, DefaultAzureCredential

    env = os.environ
    oidc = (env.get("ARM_OIDC_REQUEST_URL") or env.get("ACTIONS_ID_TOKEN_REQUEST_URL"))
    if (env.get("ARM_USE_OIDC", "").lower() == "true" and oidc
            and env.get("ARM_CLIENT_ID") and env.get("ARM_TENANT_ID")):
        credential: Any = ClientAssertionCredential(env["ARM_TENANT_ID"], env["ARM_CLIENT_ID"],
                                                    _github_oidc_assertion)
    else:
        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    try:
        return credential.get_token(scope).token
    # Any failure of the credential chain (azure-identity's own types, or the OIDC fetch)
    # becomes one clear error that names the fix and carries no token.
    except Exception as exc:  # noqa: BLE001
        raise LockError(f"no Azure credential for {scope}: {type(exc).__name__}. Sign in as the "
                        "deploying identity (ARM_USE_OIDC + ARM_CLIENT_ID/ARM_TENANT_ID in CI, "
                        "or `az login`)") from None


def _validate_endpoint(endpoint: str) -> str | None:
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme == "https" and parsed.hostname:
        return None
    if parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1"):
        return None  # local test servers only: a bearer token never goes out in clear text
    return f"must be an https:// URL (http only for 127.0.0.1), got {endpoint!r}"


class _Transport(RequestsTransport):
    """azure-core's requests transport with an injected sleep (tests: no real waiting)."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        super().__init__()
        self._sleep = sleep

    def sleep(self, duration: float) -> None:
        self._sleep(duration)


class ImmutabilityLockProvider(ResourceProvider):
    """The dynamic provider. ``token_source``, ``attempts`` and ``sleep`` are for tests; the
    program uses the defaults (pickled into the state with the provider, so keep them plain)."""

    def __init__(self, token_source: TokenSource | None = None, attempts: int = 6,
                 backoff_seconds: float = 2.0, max_backoff_seconds: float = 60.0,
                 timeout_seconds: float = 60.0,
                 sleep: Callable[[float], None] | None = None) -> None:
        super().__init__()
        self.token_source = token_source
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep

    # --- Pulumi CRUD -----------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate the inputs that are known. At a preview (a first deploy above all) the
        policy id is an output of the policy resource that does not exist yet, and reaches
        this method as Pulumi's unknown sentinel: that is not an error, only not checkable yet.
        :meth:`create` and :meth:`update` check every input again, when all are known."""
        failures = [CheckFailure(name, problem) for name, problem in _problems(news)]
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        _require_valid(props)
        outs = self._lock(props)
        return CreateResult(props["policy_id"], {**props, **outs})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A different policy (or ARM endpoint) replaces the resource; nothing else is ever an
        update: a locked policy cannot be unlocked, and its period is not this resource's to
        change (extending it is ExtendImmutabilityPolicy, not a lock)."""
        replaces = [k for k in _IDENTITY if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces, stables=["policy_id"],
                          delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # diff() never asks for an update; should the engine call it anyway, keep the lock.
        _require_valid(news)
        return UpdateResult({**news, "state": "Locked", "etag": olds.get("etag")})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """``pulumi refresh``: report the live state (Locked stays Locked; a missing policy,
        e.g. after its container expired and was deleted, drops the resource)."""
        status, body, headers = self._request("GET", self._url(props), props)
        if status == 404:
            return ReadResult(None, {})
        self._raise_for(status, body, "read the immutability policy", props)
        return ReadResult(id_, {**props, "state": _props(body).get("state"),
                                "etag": _etag(body, headers)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """No-op by design: Azure cannot unlock an immutability policy. Removing this resource
        only stops Pulumi tracking it; the container's policy stays Locked."""
        print("vo2dr: the container immutability policy stays Locked (Azure has no unlock); "
              "only the Pulumi record of the lock is removed", file=sys.stderr)

    # --- the lock --------------------------------------------------------------------------

    def _lock(self, props: Mapping[str, Any]) -> dict[str, Any]:
        url = self._url(props)
        want_days = int(props["lock_days"])
        for attempt in range(1, self.attempts + 1):
            status, body, headers = self._request("GET", url, props)
            self._raise_for(status, body, "read the immutability policy", props)
            policy = _props(body)
            if policy.get("state") == "Locked":
                return {"state": "Locked", "etag": _etag(body, headers)}
            days = policy.get("immutabilityPeriodSinceCreationInDays")
            if days != want_days:
                raise LockError(
                    f"refusing to lock {props['policy_id']}: its period is {days} days, the "
                    f"program declares {want_days} (immutability.lockDays). A lock is "
                    "irreversible; let the policy update finish first")
            etag = _etag(body, headers)
            if not etag:
                raise LockError(f"the immutability policy {props['policy_id']} has no ETag")
            status, body, headers = self._request("POST", f"{url.split('?')[0]}/lock"
                                                  f"?api-version={API_VERSION}", props,
                                                  headers={"If-Match": etag})
            if status == 412:
                # The policy changed between our GET and POST (e.g. the azure-native update
                # still settling): read the new ETag and try again.
                if attempt < self.attempts:
                    self._pause(attempt, headers)
                    continue
                break
            self._raise_for(status, body, "lock the immutability policy", props)
            state = _props(body).get("state")
            if state != "Locked":
                raise LockError(f"Azure answered the lock of {props['policy_id']} with state "
                                f"{state!r}, not 'Locked'")
            return {"state": "Locked", "etag": _etag(body, headers) or etag}
        raise LockError(f"the ETag of {props['policy_id']} kept changing; "
                        f"gave up after {self.attempts} attempts")

    def _url(self, props: Mapping[str, Any]) -> str:
        return (f"{str(props.get('endpoint') or ARM_ENDPOINT).rstrip('/')}{props['policy_id']}"
                f"?api-version={API_VERSION}")

    def _token(self, props: Mapping[str, Any]) -> str:
        scope = f"{str(props.get('endpoint') or ARM_ENDPOINT).rstrip('/')}/.default"
        return (self.token_source or default_token_source)(scope)

    def _pause(self, attempt: int, headers: Mapping[str, str]) -> None:
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        retry_after = headers.get("retry-after", "")
        if retry_after.isdigit():
            delay = min(self.max_backoff_seconds, max(delay, float(retry_after)))
        (self.sleep or time.sleep)(delay)

    def _pipeline(self) -> PipelineClient:
        """azure-core's HTTP pipeline, with its retry policy: throttling (429, Retry-After
        honoured), 408/500/502/503/504 and connection errors, exponential backoff, for the GET
        and for the lock POST (which is safe to repeat: it needs the ETag it read, and a
        policy that is already Locked is taken as is). Built per call, so the pickled
        provider holds no client."""
        transport = _Transport(self.sleep) if self.sleep is not None else None
        retries = self.attempts - 1
        policies = [
            UserAgentPolicy(base_user_agent="vo2max-dr-immutability-lock"),
            RetryPolicy(retry_total=retries, retry_connect=retries, retry_read=retries,
                        retry_status=retries, retry_backoff_factor=self.backoff_seconds,
                        retry_backoff_max=self.max_backoff_seconds,
                        retry_on_methods=frozenset({"GET", "POST"})),
            # Logs method, URL and status only; azure-core redacts the Authorization header.
            HttpLoggingPolicy(),
        ]
        return PipelineClient(base_url=ARM_ENDPOINT, policies=policies, transport=transport)

    def _request(self, method: str, url: str, props: Mapping[str, Any],
                 headers: Mapping[str, str] | None = None,
                 ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One ARM call through :meth:`_pipeline`. Returns (status, JSON body or {},
        lower-cased headers); throttling or server errors that outlast the retries, and
        connection failures, are a LockError."""
        problem = _validate_endpoint(url)
        if problem:
            raise LockError(f"ARM endpoint {problem}")
        token = self._token(props)
        request = HttpRequest(method, url, content=b"" if method == "POST" else None, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})})
        try:
            with self._pipeline() as client:
                response = client.send_request(request, connection_timeout=self.timeout_seconds,
                                               read_timeout=self.timeout_seconds)
                response.read()
        except AzureError as err:
            reason = str(getattr(err, "message", "") or err).splitlines()[0][:200]
            raise LockError(f"{method} {_safe(url)} kept failing: {type(err).__name__}: "
                            f"{reason}") from None
        status, body = response.status_code, _json(response.content)
        if status == 429 or status >= 500:
            raise LockError(f"{method} {_safe(url)} kept failing: HTTP {status} "
                            f"{_arm_error(body)}")
        return status, body, _lower(response.headers)

    def _raise_for(self, status: int, body: Mapping[str, Any], doing: str,
                   props: Mapping[str, Any]) -> None:
        if 200 <= status < 300:
            return
        where = props["policy_id"]
        if status in (401, 403):
            raise LockError(
                f"could not {doing} {where}: HTTP {status} {_arm_error(body)}. The deploying "
                f"identity needs {LOCK_ACTION} (and .../immutabilityPolicies/read) on the "
                "storage account, e.g. through Owner or Storage Account Contributor on the "
                "resource group")
        if status == 404:
            raise LockError(f"could not {doing} {where}: HTTP 404 {_arm_error(body)}. The "
                            "policy does not exist (yet): it must be created before the lock")
        raise LockError(f"could not {doing} {where}: HTTP {status} {_arm_error(body)}")


def _is_unknown(value: Any) -> bool:
    """An input not known yet (at preview). The dynamic provider host deserializes it with
    ``keep_unknowns`` into a :class:`pulumi.output.Unknown`; the raw wire sentinel is
    accepted too."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN)


def _problems(props: Mapping[str, Any], *, unknown_ok: bool = True) -> list[tuple[str, str]]:
    """(input, problem) for every invalid input. An unknown input is a problem only when
    ``unknown_ok`` is False (create and update, where the engine has resolved every input)."""
    found: list[tuple[str, str]] = []
    for name in ("policy_id", "lock_days", "endpoint"):
        if _is_unknown(props.get(name)):
            if not unknown_ok:
                found.append((name, "is still unknown when the lock is applied"))
            continue
        problem = _invalid(name, props.get(name))
        if problem:
            found.append((name, problem))
    return found


def _invalid(name: str, value: Any) -> str | None:
    if name == "policy_id":
        if not isinstance(value, str) or not POLICY_ID.match(value):
            return ("must be the ARM id of a container's immutabilityPolicies/default, "
                    f"got {value!r}")
    elif name == "lock_days":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 1 \
                or int(value) != value:
            return f"must be a positive whole number, got {value!r}"
    elif name == "endpoint":
        return _validate_endpoint(str(value or ""))
    return None


def _require_valid(props: Mapping[str, Any]) -> None:
    problems = _problems(props, unknown_ok=False)
    if problems:
        raise LockError("invalid ImmutabilityPolicyLock inputs: "
                        + "; ".join(f"{name} {problem}" for name, problem in problems))


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers.items() if headers is not None else [])}


def _props(body: Mapping[str, Any]) -> Mapping[str, Any]:
    props = body.get("properties")
    return props if isinstance(props, Mapping) else {}


def _etag(body: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    return body.get("etag") or headers.get("etag")


def _arm_error(body: Mapping[str, Any]) -> str:
    err = body.get("error")
    if isinstance(err, Mapping):
        return f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")
    return ""


def _safe(url: str) -> str:
    return url.split("?")[0]


class ImmutabilityPolicyLock(pulumi.dynamic.Resource, module="vo2dr",
                             name="AzureImmutabilityPolicyLock"):
    """Locks the immutability policy ``policy_id`` (irreversible). Declare it only where the
    policy must be locked (production), with ``depends_on`` the policy resource."""

    state: pulumi.Output[str]
    etag: pulumi.Output[str]
    policy_id: pulumi.Output[str]

    def __init__(self, name: str, policy_id: pulumi.Input[str], lock_days: int,
                 opts: pulumi.ResourceOptions | None = None,
                 endpoint: str = ARM_ENDPOINT) -> None:
        super().__init__(ImmutabilityLockProvider(), name,
                         {"policy_id": policy_id, "lock_days": lock_days, "endpoint": endpoint,
                          "state": None, "etag": None}, opts)
