"""Run the real Pulumi program (``infra/__main__.py``) under ``pulumi.runtime.set_mocks`` for a
stack, and return every resource it declares, with its inputs, parent and the stack outputs.

The infrastructure tests, the policy tests and the credential-free plan all use this one
harness, so what reviewers see in the plan is exactly what the tests asserted.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "infra" / "__main__.py"
PROJECT = "vo2max-dr"
SECRET_SIG = rpc._special_sig_key  # noqa: SLF001 - the wire marker of a secret value
SECRET_MARK = rpc._special_secret_sig  # noqa: SLF001

# Fake but well-formed values for the stack's secrets: tests scan for these strings to prove
# no secret reaches a resource input in clear.
TEST_SECRETS = {
    "databaseUrl": "postgresql://vo2app:s3cr3t-db-pass@db.internal:5432/vo2max",
    "alertWebhookUrl": "https://hooks.slack.example/services/T000/B000/s3cr3t-webhook",
    "recoveryPublicKey": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n"
                         "-----END PUBLIC KEY-----\n",
}


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    raw_inputs: dict[str, Any]  # wire form: secrets still wrapped, for secret scans
    dependencies: list[str] = field(default_factory=list)


@dataclass
class Graph:
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> Resource:
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_)]
            raise AssertionError(f"expected one {type_} named *{name_contains}*, got {names}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def children(self, parent: Resource) -> list[Resource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


class RealisticMocks(pulumi.runtime.Mocks):
    """Returns the ids and computed outputs a provider would, shaped like the real ones, so the
    program's ARNs, names and policy documents come out realistic."""

    def __init__(self, stack: str, account: str, region: str, gcp_project: str) -> None:
        self.stack, self.account, self.region, self.gcp_project = stack, account, region, gcp_project
        self.subscription = "00000000-0000-0000-0000-0000000000aa"

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        typ, name = args.typ, args.name
        pkg = typ.split(":")[0]
        ident = _stable_id(self.stack, typ, name)
        if pkg == "aws":
            return self._aws(typ, name, state, ident)
        if pkg == "gcp":
            rid = state.get("name") or name
            state.setdefault("name", rid)
            state.setdefault("project", self.gcp_project)
            if typ == "gcp:serviceaccount/account:Account":
                email = f"{state.get('accountId', name)}@{self.gcp_project}.iam.gserviceaccount.com"
                state.update(email=email, member=f"serviceAccount:{email}",
                             uniqueId=str(int(ident[:15], 16)))
            if typ == "gcp:kms/keyRing:KeyRing":
                rid = f"projects/{self.gcp_project}/locations/{state.get('location')}/keyRings/{rid}"
            if typ == "gcp:kms/cryptoKey:CryptoKey":
                rid = f"{state.get('keyRing')}/cryptoKeys/{state.get('name')}"
            if typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
                rid = (f"projects/{self.gcp_project}/locations/global/workloadIdentityPools/"
                       f"{state.get('workloadIdentityPoolId', name)}")
                state["name"] = rid
            state.setdefault("selfLink", f"https://www.googleapis.com/{typ}/{rid}")
            state.setdefault("url", f"gs://{rid}")
            state.setdefault("id", rid)
            return rid, state
        if pkg == "azure-native":
            rg = state.get("resourceGroupName", name)
            provider_type = typ.split(":")[1]
            rid = (f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/"
                   f"Microsoft.{provider_type.capitalize()}/{name}")
            if typ == "azure-native:resources:ResourceGroup":
                rid = f"/subscriptions/{self.subscription}/resourceGroups/{name}"
                state.setdefault("name", state.get("resourceGroupName", name))
            state.setdefault("name", name)
            if typ == "azure-native:managedidentity:UserAssignedIdentity":
                state.update(principalId=str(uuid.UUID(ident[:32])),
                             clientId=str(uuid.UUID(ident[32:64])),
                             tenantId=str(uuid.UUID(ident[:32])))
            if typ == "azure-native:keyvault:Vault":
                state["properties"] = {**state.get("properties", {}),
                                       "vaultUri": f"https://{name}.vault.azure.net/"}
            if typ == "azure-native:keyvault:Key":
                state["keyUri"] = f"https://vault.vault.azure.net/keys/{name}"
                state["keyUriWithVersion"] = f"https://vault.vault.azure.net/keys/{name}/{ident[:32]}"
            if typ == "azure-native:storage:StorageAccount":
                acct = state.get("accountName", name)
                state["primaryEndpoints"] = {"blob": f"https://{acct}.blob.core.windows.net/"}
            if typ == "azure-native:authorization:RoleDefinition":
                state.setdefault("name", str(uuid.UUID(ident[:32])))
            state["id"] = rid
            return rid, state
        return f"{name}-id", state

    def _aws(self, typ: str, name: str, state: dict, ident: str) -> tuple[str, dict]:
        service = typ.split(":")[1].split("/")[0]
        acct, region = self.account, self.region
        if typ == "aws:kms/key:Key":
            kid = str(uuid.UUID(ident[:32]))
            state.update(keyId=kid, arn=f"arn:aws:kms:{region}:{acct}:key/{kid}")
            return kid, state
        if typ == "aws:s3/bucket:Bucket":
            bucket = state.get("bucket") or f"{name}-{ident[:7]}"
            state.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}",
                         bucketDomainName=f"{bucket}.s3.amazonaws.com")
            return bucket, state
        if typ == "aws:iam/role:Role":
            rname = state.get("name") or f"{name}-{ident[:7]}"
            state.update(name=rname, arn=f"arn:aws:iam::{acct}:role/{rname}",
                         uniqueId="AROA" + ident[:17].upper())
            return rname, state
        if typ == "aws:iam/policy:Policy":
            pname = state.get("name") or f"{name}-{ident[:7]}"
            arn = f"arn:aws:iam::{acct}:policy/{pname}"
            state.update(name=pname, arn=arn)
            return arn, state
        if typ == "aws:lambda/function:Function":
            fname = state.get("name") or f"{name}-{ident[:7]}"
            arn = f"arn:aws:lambda:{region}:{acct}:function:{fname}"
            state.update(name=fname, arn=arn, invokeArn=arn, qualifiedArn=f"{arn}:$LATEST")
            return fname, state
        if typ == "aws:sqs/queue:Queue":
            qname = state.get("name") or f"{name}-{ident[:7]}"
            state.update(name=qname, arn=f"arn:aws:sqs:{region}:{acct}:{qname}",
                         url=f"https://sqs.{region}.amazonaws.com/{acct}/{qname}")
            return state["url"], state
        if typ == "aws:sns/topic:Topic":
            tname = state.get("name") or f"{name}-{ident[:7]}"
            arn = f"arn:aws:sns:{region}:{acct}:{tname}"
            state.update(name=tname, arn=arn)
            return arn, state
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            lname = state.get("name") or name
            state.update(name=lname, arn=f"arn:aws:logs:{region}:{acct}:log-group:{lname}")
            return lname, state
        if typ == "aws:secretsmanager/secret:Secret":
            sname = state.get("name") or f"{name}-{ident[:7]}"
            arn = f"arn:aws:secretsmanager:{region}:{acct}:secret:{sname}-{ident[:6]}"
            state.update(name=sname, arn=arn)
            return arn, state
        if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            arn = f"arn:aws:iam::{acct}:oidc-provider/{state.get('url', name)}"
            state["arn"] = arn
            return arn, state
        rid = state.get("name") or f"{name}-{ident[:7]}"
        state.setdefault("arn", f"arn:aws:{service}:{region}:{acct}:{rid}")
        return rid, state

    def call(self, args: pmocks.MockCallArgs) -> tuple[dict, list] | dict:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account, "arn": f"arn:aws:iam::{self.account}:root",
                    "userId": "AIDA0000000000000000"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": self.gcp_project, "number": "100000000001"}
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            email = "service-100000000001@gs-project-accounts.iam.gserviceaccount.com"
            return {"emailAddress": email, "member": f"serviceAccount:{email}"}
        if args.token == "azure-native:authorization:getClientConfig":
            return {"clientId": "c", "objectId": "o", "subscriptionId": self.subscription,
                    "tenantId": "00000000-0000-0000-0000-000000000000"}
        return {}


class _RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks: RealisticMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            pmocks._ensure_event_loop()  # noqa: SLF001
            reg = self.resources.get(response.urn)
            self.recorded.append(Resource(
                urn=response.urn, type=request.type, name=request.name,
                custom=bool(request.custom), parent=request.parent,
                inputs=rpc.deserialize_properties(request.object),
                outputs=dict(reg.state) if reg else {},
                raw_inputs=json_format.MessageToDict(request.object),
                dependencies=list(request.dependencies),
            ))
        return response


def stack_settings(stack: str) -> dict[str, Any]:
    """The ``config:`` mapping of ``Pulumi.<stack>.yaml``, keys as written."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return dict(doc["config"])


def _set(settings: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``vo2max-dr:retention.dailyDays``-style paths; ``None`` removes the key."""
    top, _, rest = dotted.partition(".")
    if not rest:
        if value is None:
            settings.pop(top, None)
        else:
            settings[top] = value
        return
    node = settings.setdefault(top, {})
    parts = rest.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def run_program(stack: str, overrides: Mapping[str, Any] | None = None,
                secrets: Mapping[str, str] | None = None, preview: bool = False) -> Graph:
    """Run ``infra/__main__.py`` for ``stack`` with its stack file, ``overrides`` applied
    (``{"vo2max-dr:clouds.gcp.enabled": False}``), and ``secrets`` (default: TEST_SECRETS) set as
    secret config. Returns every declared resource."""
    settings = stack_settings(stack)
    for path, value in (overrides or {}).items():
        _set(settings, path, value)
    secrets = TEST_SECRETS if secrets is None else secrets
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()}
    secret_keys = []
    for key, value in secrets.items():
        config[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    clouds = settings.get(f"{PROJECT}:clouds", {})
    mocks = RealisticMocks(
        stack, str(clouds.get("aws", {}).get("accountId", "111111111111")),
        settings.get("aws:region", "us-east-1"), settings.get("gcp:project", "p"),
    )
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(config, secret_keys)
    pulumi.runtime.settings.set_root_resource(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview,
                             monitor=monitor)
    pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
    pulumi.runtime.settings.SETTINGS.outputs.clear()
    # A fresh import of the program's modules per run, so no state leaks between stacks.
    for mod in [m for m in sys.modules if m == "infra" or m.startswith("infra.")]:
        del sys.modules[mod]
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))
    finally:
        pulumi.runtime.set_all_config({}, [])
    outputs, secret_outputs = _stack_outputs()
    return Graph(stack, monitor.recorded, outputs, secret_outputs)


def _stack_outputs() -> tuple[dict[str, Any], set[str]]:
    # Under mocks the root Stack registers its outputs before the program runs, so the
    # exports are read from the root resource and resolved here.
    root = pulumi.runtime.settings.get_root_resource()
    exported = dict(getattr(root, "outputs", {}) or {})
    values, secret = {}, set()
    for key, value in exported.items():
        out = pulumi.Output.from_input(value)
        values[key] = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            secret.add(key)
    return values, secret


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, leaf) in a nested input structure."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, value


def plaintext_leaks(resource: Resource, needles: list[str]) -> list[str]:
    """Paths of ``resource``'s inputs that hold one of ``needles`` outside a secret wrapper."""

    def scan(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, Mapping):
            if value.get(SECRET_SIG) == SECRET_MARK:
                return
            for k, v in value.items():
                yield from scan(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from scan(v, f"{path}[{i}]")
        elif isinstance(value, str) and any(n in value for n in needles):
            yield path

    return list(scan(resource.raw_inputs, ""))
