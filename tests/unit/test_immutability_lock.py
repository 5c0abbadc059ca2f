"""The Azure immutability-lock dynamic provider (infra/azure/immutability_lock.py) against a real
HTTP server on 127.0.0.1 that imitates the two ARM endpoints it calls:

  GET  {policy id}?api-version=2024-01-01         -> the policy, with its ETag
  POST {policy id}/lock?api-version=2024-01-01    -> needs If-Match == that ETag

Each test scripts the server (stale ETag, 403, throttling, already locked, wrong period) and
checks what went over the wire, what the provider returned and what it said when it failed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from infra.azure.immutability_lock import (
    API_VERSION,
    LOCK_ACTION,
    LOCK_TYPE,
    ImmutabilityLockProvider,
    ImmutabilityPolicyLock,
    LockError,
)

ROOT = Path(__file__).resolve().parents[2]
POLICY_ID = ("/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg/providers/"
             "Microsoft.Storage/storageAccounts/vo2drproduction1/blobServices/default/"
             "containers/backups/immutabilityPolicies/default")
TOKEN = "tok-do-not-leak-3f9a"


@dataclass
class FakeArm:
    """The imitated policy and the script of failures the next requests get."""

    state: str = "Unlocked"
    days: int = 30
    etag: str = '"8d0000000000001"'
    get_status: int = 200  # e.g. 403 for an identity without read
    stale_posts: int = 0  # the next N lock POSTs find the ETag changed (412)
    throttle: list[int] = field(default_factory=list)  # statuses for the next requests
    retry_after: str = "0"  # the throttled responses' Retry-After (seconds)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def policy(self) -> dict[str, Any]:
        return {"id": POLICY_ID, "name": "default", "etag": self.etag,
                "type": "Microsoft.Storage/storageAccounts/blobServices/containers/"
                        "immutabilityPolicies",
                "properties": {"immutabilityPeriodSinceCreationInDays": self.days,
                               "state": self.state, "allowProtectedAppendWrites": False}}


def _handler(arm: FakeArm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any], **headers: str) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _record(self) -> tuple[str, str]:
            path, _, query = self.path.partition("?")
            arm.requests.append({"method": self.command, "path": path, "query": query,
                                 "auth": self.headers.get("Authorization"),
                                 "if_match": self.headers.get("If-Match")})
            return path, query

        def _throttled(self) -> bool:
            if arm.throttle:
                status = arm.throttle.pop(0)
                self._send(status, {"error": {"code": "TooManyRequests" if status == 429
                                              else "InternalServerError", "message": "later"}},
                           **{"Retry-After": arm.retry_after})
                return True
            return False

        def do_GET(self) -> None:
            path, query = self._record()
            if self._throttled():
                return
            if path != POLICY_ID or query != f"api-version={API_VERSION}":
                self._send(404, {"error": {"code": "ResourceNotFound", "message": path}})
            elif arm.get_status == 403:
                self._send(403, {"error": {
                    "code": "AuthorizationFailed",
                    "message": "The client does not have authorization to perform action "
                               "'Microsoft.Storage/.../immutabilityPolicies/read'"}})
            else:
                self._send(200, arm.policy(), ETag=arm.etag)

        def do_POST(self) -> None:
            path, query = self._record()
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self._throttled():
                return
            if path != f"{POLICY_ID}/lock" or query != f"api-version={API_VERSION}":
                self._send(404, {"error": {"code": "NotFound", "message": path}})
                return
            if arm.stale_posts:
                # Someone updated the policy between our GET and POST: a new ETag.
                arm.stale_posts -= 1
                arm.etag = f'"8d00000000000{len(arm.requests):02d}"'
                self._send(412, {"error": {"code": "ConditionNotMet",
                                           "message": "The condition specified using HTTP "
                                                      "conditional header(s) is not met."}})
                return
            if self.headers.get("If-Match") != arm.etag:
                self._send(412, {"error": {"code": "ConditionNotMet", "message": "etag"}})
                return
            arm.state = "Locked"
            arm.etag = '"8d0000000000fff"'
            self._send(200, arm.policy(), ETag=arm.etag)

    return Handler


@pytest.fixture
def arm() -> Iterator[tuple[FakeArm, str]]:
    fake = FakeArm()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def provider(sleeps: list[float] | None = None, attempts: int = 4) -> ImmutabilityLockProvider:
    scopes: list[str] = []

    def token(scope: str) -> str:
        scopes.append(scope)
        return TOKEN

    p = ImmutabilityLockProvider(token_source=token, attempts=attempts,
                                 sleep=(sleeps.append if sleeps is not None else lambda _s: None))
    p.scopes = scopes  # type: ignore[attr-defined]
    return p


def props(endpoint: str, days: int = 30) -> dict[str, Any]:
    return {"policy_id": POLICY_ID, "lock_days": days, "endpoint": endpoint,
            "state": None, "etag": None}


def calls(fake: FakeArm) -> list[str]:
    return [f"{r['method']} {'lock' if r['path'].endswith('/lock') else 'policy'}"
            for r in fake.requests]


def test_create_locks_the_policy_with_its_etag(arm):
    fake, endpoint = arm
    p = provider()
    result = p.create(props(endpoint))
    assert calls(fake) == ["GET policy", "POST lock"]
    get, post = fake.requests
    assert post["if_match"] == '"8d0000000000001"'  # the ETag the GET returned
    assert {get["auth"], post["auth"]} == {f"Bearer {TOKEN}"}
    assert p.scopes == [f"{endpoint}/.default"] * 2  # type: ignore[attr-defined]
    assert fake.state == "Locked"
    assert result.id == POLICY_ID
    assert result.outs["state"] == "Locked" and result.outs["etag"] == '"8d0000000000fff"'
    assert result.outs["lock_days"] == 30


def test_stale_etag_is_read_again_and_the_lock_retried(arm):
    fake, endpoint = arm
    fake.stale_posts = 1
    sleeps: list[float] = []
    result = provider(sleeps).create(props(endpoint))
    assert calls(fake) == ["GET policy", "POST lock", "GET policy", "POST lock"]
    first, second = fake.requests[1]["if_match"], fake.requests[3]["if_match"]
    assert first == '"8d0000000000001"' and second != first  # retried with the new ETag
    assert result.outs["state"] == "Locked" and len(sleeps) == 1


def test_an_etag_that_keeps_changing_gives_up_with_a_clear_error(arm):
    fake, endpoint = arm
    fake.stale_posts = 10
    with pytest.raises(LockError, match=r"ETag of .* kept changing; gave up after 3 attempts"):
        provider(attempts=3).create(props(endpoint))
    assert calls(fake).count("POST lock") == 3 and fake.state == "Unlocked"


def test_forbidden_fails_at_once_naming_the_permission_and_never_the_token(arm, capsys):
    fake, endpoint = arm
    fake.get_status = 403
    with pytest.raises(LockError) as err:
        provider().create(props(endpoint))
    message = str(err.value)
    assert "HTTP 403 AuthorizationFailed" in message
    assert LOCK_ACTION in message and POLICY_ID in message
    assert calls(fake) == ["GET policy"]  # no retry, no lock attempt
    out = capsys.readouterr()
    assert TOKEN not in message + out.out + out.err


def test_throttling_and_server_errors_back_off_and_retry(arm):
    fake, endpoint = arm
    fake.throttle = [429, 503]
    sleeps: list[float] = []
    result = provider(sleeps).create(props(endpoint))
    assert calls(fake) == ["GET policy", "GET policy", "GET policy", "POST lock"]
    # azure-core's RetryPolicy: the first retry at once, then backoff * 2**(retries - 1);
    # a Retry-After of 0 asks for no longer wait.
    assert sleeps == [4.0]
    assert result.outs["state"] == "Locked"


def test_a_throttled_lock_waits_as_long_as_retry_after_says(arm):
    fake, endpoint = arm
    fake.throttle, fake.retry_after = [429], "7"
    sleeps: list[float] = []
    result = provider(sleeps).create(props(endpoint))
    assert sleeps == [7.0]
    assert calls(fake) == ["GET policy", "GET policy", "POST lock"]
    assert result.outs["state"] == "Locked"


def test_persistent_server_errors_fail_without_locking(arm):
    fake, endpoint = arm
    fake.throttle = [500] * 10
    with pytest.raises(LockError, match=r"GET .*immutabilityPolicies/default kept failing: "
                                        r"HTTP 500 InternalServerError"):
        provider(attempts=3).create(props(endpoint))
    assert fake.state == "Unlocked"


def test_an_already_locked_policy_is_taken_as_is(arm):
    fake, endpoint = arm
    fake.state = "Locked"
    result = provider().create(props(endpoint))
    assert calls(fake) == ["GET policy"]
    assert result.outs["state"] == "Locked"


def test_refuses_to_lock_a_period_other_than_the_declared_one(arm):
    fake, endpoint = arm
    fake.days = 7  # e.g. the policy update to 30 days has not landed
    with pytest.raises(LockError, match="its period is 7 days, the program declares 30"):
        provider().create(props(endpoint))
    assert calls(fake) == ["GET policy"] and fake.state == "Unlocked"


def test_unreachable_endpoint_is_a_clear_error():
    with pytest.raises(LockError, match="kept failing: ServiceRequestError"):
        provider(attempts=2).create(props("http://127.0.0.1:9"))


def test_read_reports_the_live_state(arm):
    fake, endpoint = arm
    fake.state = "Locked"
    result = provider().read(POLICY_ID, props(endpoint))
    assert result.id == POLICY_ID and result.outs["state"] == "Locked"


def test_diff_never_updates_and_delete_never_calls_azure(arm):
    fake, endpoint = arm
    p = provider()
    old = {**props(endpoint), "state": "Locked", "etag": '"e"'}
    assert not p.diff(POLICY_ID, old, props(endpoint)).changes
    # A longer lockDays is not this resource's business (extending is not a lock): no update.
    assert not p.diff(POLICY_ID, old, props(endpoint, days=60)).changes
    other = {**props(endpoint), "policy_id": POLICY_ID.replace("backups", "backups2")}
    d = p.diff(POLICY_ID, old, other)
    assert d.changes and d.replaces == ["policy_id"] and d.delete_before_replace is False
    assert p.update(POLICY_ID, old, props(endpoint)).outs["state"] == "Locked"
    p.delete(POLICY_ID, old)
    assert fake.requests == []  # no unlock, no call at all


def test_check_validates_inputs():
    p = ImmutabilityLockProvider()
    ok = props("https://management.azure.com")
    assert p.check({}, ok).failures == []
    bad = p.check({}, {"policy_id": "/subscriptions/s/whatever", "lock_days": 0,
                       "endpoint": "http://management.azure.com"})
    assert sorted(f.property for f in bad.failures) == ["endpoint", "lock_days", "policy_id"]


def test_the_serialized_provider_loads_in_a_fresh_interpreter():
    """Pulumi pickles the provider (dill) into the state and the dynamic provider host loads it
    in another process started in the project root: prove that works, and that the pickle
    holds no credential."""
    blob = serialize_provider(ImmutabilityLockProvider())
    assert TOKEN not in base64.b64decode(blob).decode("latin-1")
    code = ("import base64, sys, dill; p = dill.loads(base64.b64decode(sys.stdin.read())); "
            "print(type(p).__module__, type(p).__name__, p.token_source, p.attempts)")
    out = subprocess.run([sys.executable, "-c", code], input=blob, text=True, cwd=ROOT,
                         capture_output=True, timeout=120, check=True).stdout.split()
    assert out == ["infra.azure.immutability_lock", "ImmutabilityLockProvider", "None", "6"]


def test_resource_type_is_the_one_the_policy_pack_recognizes():
    from policy import policies

    assert LOCK_TYPE == policies.AZURE_IMMUTABILITY_LOCK_TYPE
    assert ImmutabilityPolicyLock._resource_type_name == LOCK_TYPE.split(":", 1)[1]
