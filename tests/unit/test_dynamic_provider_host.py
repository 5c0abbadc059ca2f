"""The Azure immutability lock's dynamic provider, started the way the Pulumi engine starts it,
and driven over its gRPC interface: ``Check`` with an input that is unknown at preview, then
``Create`` against a loopback stand-in for ARM (and for the managed-identity token endpoint the
provider's real credential chain signs in with).

How the engine starts a Python dynamic provider (pulumi/pulumi, read at commit 1b59498):

* ``pkg/engine/project.go`` ``getPwdMain``: the plugins' working directory is the program
  directory, ``main`` of ``Pulumi.yaml`` when it names a directory, else the project root.
* ``pkg/resource/plugin/provider_plugin.go``: each runtime option of ``Pulumi.yaml`` reaches the
  plugin as ``PULUMI_RUNTIME_<OPTION>`` (``PULUMI_RUNTIME_VIRTUALENV``, ``..._TOOLCHAIN``),
  with ``PULUMI_PROJECT`` and ``PULUMI_CONFIG``.
* ``sdk/python/dist/pulumi-resource-pulumi-python`` (the launcher shipped with the CLI): a
  relative virtualenv is made absolute against ``$PWD`` (the working directory above, not the
  project root: pulumi/pulumi#7061), the launcher exits 1 when ``<venv>/bin/python`` is missing,
  else runs ``<venv>/bin/python -u -m pulumi.dynamic <engine address>`` with ``<venv>/bin``
  first on ``PATH``. ``-m`` puts the working directory first on ``sys.path``.
* ``sdk/python/lib/pulumi/dynamic/__main__.py``: prints its port, then un-pickles the provider
  from the ``__provider`` input on the first call; unknowns reach ``check`` as
  ``pulumi.runtime.rpc.UNKNOWN``.

:func:`launch` below does exactly that, from ``Pulumi.yaml``. So with ``main: infra/`` back
(item 1 of issue 11) the provider never starts (no ``infra/.venv``); with the venv found but
``infra/`` as the working directory, ``import pulumi`` fails on ``infra/packaging.py`` and the
pickle cannot import ``infra``; with ``check`` rejecting unknowns again (item 2) the preview
fails. Each of those fails a test here.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from infra.azure.immutability_lock import LOCK_TYPE, ImmutabilityLockProvider
from tests.unit.test_immutability_lock import POLICY_ID, FakeArm, _handler

ROOT = Path(__file__).resolve().parents[2]
URN = f"urn:pulumi:production::vo2max-dr::{LOCK_TYPE}::vo2dr-production-lock"
TOKEN = "mi-token-not-for-logs-51c2"
IDENTITY_HEADER = "local-identity-header-7a"
# Settings of the deploying shell that would change which credential the provider picks.
CREDENTIAL_ENV = ("AZURE_", "ARM_", "ACTIONS_ID_TOKEN_", "IDENTITY_", "MSI_", "IMDS_")


def program_dir(root: Path, project: Mapping[str, Any]) -> Path:
    """getPwdMain: ``main`` if it is a directory, its parent if a file, else the root."""
    main = project.get("main")
    if not main:
        return root
    path = (root / main).resolve()
    return path if path.is_dir() else path.parent


def launch(root: Path, extra_env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the dynamic provider as the engine and the pulumi-resource-pulumi-python launcher
    do; fail (as the launcher exits 1) when the virtualenv does not resolve."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    cwd = program_dir(root, project)
    options = {k: str(v) for k, v in (project.get("runtime", {}).get("options") or {}).items()}
    venv = options.get("virtualenv", "")
    if not venv and options.get("toolchain") == "uv":
        venv = ".venv"
    assert venv, "Pulumi.yaml names no virtualenv: the launcher would run whatever python3 is"
    venv_path = Path(venv.rstrip("/"))
    if not venv_path.is_absolute():
        venv_path = cwd / venv_path  # $PWD/$PULUMI_RUNTIME_VIRTUALENV
    python = venv_path / "bin" / "python"
    assert python.is_file(), (
        f"the provider launcher exits 1: virtualenv {venv_path} (from `virtualenv: {venv}` "
        f"resolved against the plugin's working directory {cwd}) doesn't exist")
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith(CREDENTIAL_ENV)}
    env.update({f"PULUMI_RUNTIME_{k.upper()}": v for k, v in options.items()})
    env.update(PULUMI_PROJECT=project["name"], PULUMI_CONFIG="{}",
               PATH=f"{venv_path / 'bin'}:{env.get('PATH', '')}", **extra_env)
    env.pop("PYTHONHOME", None)
    stderr_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"vo2dr-provider-{os.getpid()}.err"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen([str(python), "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
                                cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr)
    return proc, stderr_path


def read_port(proc: subprocess.Popen[bytes], stderr_path: Path, timeout: float = 120) -> int:
    """The first stdout line is the provider's gRPC port (what the engine reads)."""
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    reader.join(timeout)
    text = line[0].strip() if line else b""
    if not text.isdigit():
        proc.kill()
        proc.wait(10)
        raise AssertionError("the dynamic provider did not start:\n"
                             + stderr_path.read_text(errors="replace")[-3000:])
    return int(text)


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(dict(values))
    return s


@pytest.fixture
def stand_in() -> Iterator[tuple[FakeArm, str, list[dict[str, str]]]]:
    """ARM (the policy and its lock) and an App Service style managed-identity token endpoint,
    which azure-identity's DefaultAzureCredential uses when IDENTITY_ENDPOINT/IDENTITY_HEADER
    are set: the provider's own credential code runs, and nothing leaves 127.0.0.1."""
    fake = FakeArm()
    token_requests: list[dict[str, str]] = []
    arm_handler = _handler(fake)

    class Handler(arm_handler):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path != "/msi/token":
                super().do_GET()
                return
            token_requests.append({"query": query,
                                   "header": self.headers.get("X-IDENTITY-HEADER", "")})
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                self._send(401, {"error": "no identity header"})
                return
            self._send(200, {"access_token": TOKEN, "token_type": "Bearer",
                             "expires_on": str(int(time.time()) + 3600),
                             "resource": "arm"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}", token_requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def provider_stub(stand_in) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    _fake, endpoint, _tokens = stand_in
    proc, stderr_path = launch(ROOT, {"IDENTITY_ENDPOINT": f"{endpoint}/msi/token",
                                      "IDENTITY_HEADER": IDENTITY_HEADER})
    try:
        port = read_port(proc, stderr_path)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        stub.Configure(provider_pb2.ConfigureRequest(args=struct({}), acceptSecrets=True,
                                                     acceptResources=True), timeout=60)
        stub.stderr_path = stderr_path  # type: ignore[attr-defined]
        yield stub
        channel.close()
    finally:
        proc.kill()
        proc.wait(10)
        stderr_path.unlink(missing_ok=True)


def inputs(endpoint: str, **overrides: Any) -> dict[str, Any]:
    """What ImmutabilityPolicyLock registers (its __init__), with the provider pickled the way
    the program pickles it (by reference to infra.azure.immutability_lock)."""
    return {"__provider": serialize_provider(ImmutabilityLockProvider()),
            "policy_id": POLICY_ID, "lock_days": 30, "endpoint": endpoint,
            "state": None, "etag": None, **overrides}


def call(stub: Any, method: str, request: Any) -> Any:
    try:
        return getattr(stub, method)(request, timeout=120)
    except grpc.RpcError as err:
        raise AssertionError(f"{method} failed in the provider process: {err.details()}\n"
                             + stub.stderr_path.read_text(errors="replace")[-2000:]) from None


def test_the_program_directory_holds_the_venv_and_shadows_no_library():
    """The engine's view of Pulumi.yaml: the plugins' working directory (first on the
    provider's sys.path) holds the virtualenv and no module named like an installed library
    (``infra/`` held packaging.py and azure/, which hid ``packaging`` and ``azure.*``)."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    cwd = program_dir(ROOT, project)
    assert (cwd / project["runtime"]["options"]["virtualenv"] / "bin" / "python").is_file()
    code = ("import importlib.util, json, sys; names = json.loads(sys.argv[1]); "
            "sys.path = [p for p in sys.path if p not in ('', sys.argv[2])]; "
            "print(json.dumps([n for n in names if importlib.util.find_spec(n)]))")
    local = sorted({p.stem for p in cwd.glob("*.py") if p.stem != "__main__"}
                   | {p.name for p in cwd.iterdir() if (p / "__init__.py").is_file()})
    python = cwd / project["runtime"]["options"]["virtualenv"] / "bin" / "python"
    out = subprocess.run([str(python), "-c", code, json.dumps(local), str(cwd)], cwd="/",
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert json.loads(out) == [], f"{cwd} shadows installed modules: {out}"


def test_check_passes_an_unknown_policy_id_and_still_rejects_a_bad_one(provider_stub, stand_in):
    """Issue 11 item 2: at a first production preview the policy id is unknown."""
    _fake, endpoint, _tokens = stand_in
    unknown = inputs(endpoint, policy_id=rpc.UNKNOWN)
    resp = call(provider_stub, "Check", provider_pb2.CheckRequest(
        urn=URN, olds=struct({}), news=struct(unknown)))
    assert [(f.property, f.reason) for f in resp.failures] == []
    assert resp.inputs["policy_id"] == rpc.UNKNOWN  # passed through for the engine to resolve
    bad = call(provider_stub, "Check", provider_pb2.CheckRequest(
        urn=URN, olds=struct({}), news=struct(inputs(endpoint, policy_id="/subscriptions/x"))))
    assert [f.property for f in bad.failures] == ["policy_id"]


def test_create_locks_the_policy_through_the_real_credential_chain(provider_stub, stand_in):
    fake, endpoint, tokens = stand_in
    props = inputs(endpoint)
    resp = call(provider_stub, "Create", provider_pb2.CreateRequest(
        urn=URN, properties=struct(props), timeout=120))
    assert resp.id == POLICY_ID
    assert resp.properties["state"] == "Locked"
    assert fake.state == "Locked"
    assert [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in fake.requests] == [
        ("GET", "default"), ("POST", "lock")]
    assert {r["auth"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert tokens and {t["header"] for t in tokens} == {IDENTITY_HEADER}
    # The token stays in the Authorization header: not in the outputs the state keeps.
    assert TOKEN not in json.dumps({k: v for k, v in resp.properties.items()
                                    if k != "__provider"})
    assert TOKEN not in base64.b64decode(props["__provider"]).decode("latin-1")


def test_create_refuses_an_input_that_check_let_through_unknown(provider_stub, stand_in):
    """What check() lets pass as unknown, create() validates once known."""
    fake, endpoint, _tokens = stand_in
    with pytest.raises(AssertionError, match="policy_id must be the ARM id"):
        call(provider_stub, "Create", provider_pb2.CreateRequest(
            urn=URN, properties=struct(inputs(endpoint, policy_id="/subscriptions/x")),
            timeout=120))
    assert fake.requests == []
