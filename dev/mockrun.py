"""Run the real Pulumi program (``__main__.py``, which runs ``infra/program.py``) under
``pulumi.runtime.set_mocks`` for a stack, and return every resource it declares, with its
inputs, parent and the stack outputs.

The infrastructure tests, the policy tests and the credential-free plan all use this one
harness, so what reviewers see in the plan is exactly what the tests asserted.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import runpy
import sys
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format

from dev import pulumi_adapter as engine

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"  # Pulumi.yaml has no main: the program is the root
PROJECT = "vo2max-dr"
SECRET_SIG = engine.SECRET_SIG_KEY
SECRET_MARK = engine.SECRET_SIG
# Invoke results a test may set per token: a dict is the result, a string the provider's
# failure reason (as a missing resource is reported).
InvokeResult = Mapping[str, Any] | str


class UnmockedInvoke(RuntimeError):
    """The program called a provider function the harness does not know: returning ``{}``
    would let the program go on with values no provider returns."""

# Fake but well-formed values for the stack's secrets: tests scan for these strings to prove
# no secret reaches a resource input in clear.
TEST_SECRETS = {
    "databaseUrl": "postgresql://vo2app:s3cr3t-db-pass@db.internal:5432/vo2max",
    "alertWebhookUrl": "https://hooks.slack.example/services/T000/B000/s3cr3t-webhook",
    "drillDatabaseUrl": "postgresql://vo2drill:s3cr3t-drill-pass@scratch.internal:5432/postgres",
    "repositoryToken": "github_pat_s3cr3t-repo-token",
}


def _test_recovery_public_key(bits: int = 3072) -> str:
    """A fresh RSA public key (PEM) for ``vo2max-dr:recoveryPublicKey``, made once per process.
    Only the public half is kept; the plan shows it as ``<PEM public key>``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# Plain config, as a stack sets it: `pulumi config set vo2max-dr:recoveryPublicKey -- "$(cat …)"`.
TEST_RECOVERY_PUBLIC_KEY = _test_recovery_public_key()

# Plain config too: the P-256 public halves of the manifest signing keys (AWS and Cloud KMS).
def _test_signing_public_keys(count: int = 2) -> str:
    from vo2dr.signing import generate_signing_key

    return "".join(generate_signing_key()[1].decode() for _ in range(count))


TEST_SIGNING_PUBLIC_KEYS = _test_signing_public_keys()
# And of the drill record signing key (recordPublicKeys: trusted for records only).
TEST_RECORD_PUBLIC_KEYS = _test_signing_public_keys(1)


# Provider SDK packages that, when first loaded, emit a DeprecationWarning for every deprecated
# class they define (e.g. pulumi_aws.s3 for BucketV2), whether the program uses it or not.
# Loading them here once with those import-time warnings silenced leaves the warnings that
# matter (a deprecated resource or argument the program actually uses) to pytest's
# `error::DeprecationWarning:pulumi_*` filters and to the deprecation test.
_PROVIDER_MODULES_WARNING_ON_IMPORT = (
    "pulumi_aws.s3", "pulumi_aws.lambda_", "pulumi_aws.ec2", "pulumi_aws.vpn",
    "pulumi_gcp.storage", "pulumi_gcp.compute", "pulumi_gcp.bigquery", "pulumi_gcp.monitoring",
)


def load_provider_modules_quietly() -> None:
    for name in _PROVIDER_MODULES_WARNING_ON_IMPORT:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            getattr(module, "__all__", None)  # Pulumi SDK modules load on first attribute access


load_provider_modules_quietly()


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
    protect: bool = False  # the `protect` resource option: Pulumi refuses to delete it


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

    def __init__(self, stack: str, account: str, region: str, gcp_project: str,
                 gcp_project_number: str = "100000000001",
                 tenant: str = "00000000-0000-0000-0000-0000000000bb", preview: bool = False,
                 invokes: Mapping[str, InvokeResult] | None = None) -> None:
        self.stack, self.account, self.region = stack, account, region
        self.gcp_project = gcp_project
        self.gcp_project_number = gcp_project_number
        self.subscription = "00000000-0000-0000-0000-0000000000aa"
        self.tenant = tenant
        self.preview = preview
        self.invokes = dict(invokes or {})

    def new_resource(self, args: engine.MockResourceArgs) -> tuple[str | None, dict]:
        rid, state = self._created(args)
        if self.preview:
            # A first `pulumi preview`: nothing exists yet, so the provider knows only the
            # inputs (in their output shape); the id and every computed output are unknown
            # until the create.
            return "", {k: v for k, v in state.items() if k in args.inputs}
        return rid, state

    def _created(self, args: engine.MockResourceArgs) -> tuple[str | None, dict]:
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
                location = state.get("location")
                rid = f"projects/{self.gcp_project}/locations/{location}/keyRings/{rid}"
            if typ == "gcp:kms/cryptoKey:CryptoKey":
                rid = f"{state.get('keyRing')}/cryptoKeys/{state.get('name')}"
            if typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
                # The resource id uses the project id; its `name` output, as the IAM API
                # returns it, the project *number* (as the provider's does).
                pool = state.get("workloadIdentityPoolId", name)
                rid = f"projects/{self.gcp_project}/locations/global/workloadIdentityPools/{pool}"
                state["name"] = (f"projects/{self.gcp_project_number}/locations/global/"
                                 f"workloadIdentityPools/{pool}")
            if typ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
                rid = (f"projects/{self.gcp_project_number}/locations/global/"
                       f"workloadIdentityPools/{state.get('workloadIdentityPoolId')}/providers/"
                       f"{state.get('workloadIdentityPoolProviderId', name)}")
                state["name"] = rid
            if typ == "gcp:projects/iAMCustomRole:IAMCustomRole":
                rid = f"projects/{state['project']}/roles/{state.get('roleId', name)}"
                state["name"] = rid
            if typ == "gcp:storage/bucket:Bucket":
                state["url"] = f"gs://{rid}"
                state["selfLink"] = f"https://www.googleapis.com/storage/v1/b/{rid}"
            if typ == "gcp:serviceaccount/account:Account":
                rid = f"projects/{self.gcp_project}/serviceAccounts/{state['email']}"
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
            rid = self._azure_id(typ, name, state, rg, ident) or rid
            if typ == "azure-native:resources:ResourceGroup":
                rid = f"/subscriptions/{self.subscription}/resourceGroups/{name}"
                state.setdefault("name", state.get("resourceGroupName", name))
            state.setdefault("name", name)
            if typ == "azure-native:managedidentity:UserAssignedIdentity":
                # The identity lives in the subscription's Entra tenant: the stack's tenant.
                state.update(principalId=str(uuid.UUID(ident[:32])),
                             clientId=str(uuid.UUID(ident[32:64])),
                             tenantId=self.tenant)
            if typ == "azure-native:keyvault:Vault":
                state["properties"] = {**state.get("properties", {}),
                                       "vaultUri": f"https://{state['name']}.vault.azure.net/"}
            if typ == "azure-native:keyvault:Key" and "keyUri" not in state:
                state["keyUri"] = f"https://vault.vault.azure.net/keys/{name}"
                state["keyUriWithVersion"] = f"https://vault.vault.azure.net/keys/{name}/{ident[:32]}"
            if typ == "azure-native:storage:StorageAccount":
                acct = state.get("accountName", name)
                identity = state.get("identity") or {}
                ids = identity.get("userAssignedIdentities")
                if isinstance(ids, list) and any(engine.is_unknown(i) for i in ids):
                    # Preview: the identities do not exist yet, so neither does the map.
                    state.pop("identity")
                elif isinstance(ids, list):
                    # Input: a list of identity ids; output: a map id -> identity details.
                    state["identity"] = {**identity, "userAssignedIdentities": {
                        i: {"principalId": str(uuid.UUID(_stable_id(i)[:32]))}
                        for i in identity["userAssignedIdentities"]}}
                state["primaryEndpoints"] = {"blob": f"https://{acct}.blob.core.windows.net/"}
            if typ == "azure-native:authorization:RoleDefinition":
                state.setdefault("name", str(uuid.UUID(ident[:32])))
            state["id"] = rid
            return rid, state
        if typ == "pulumi-python:dynamic/vo2dr:AzureImmutabilityPolicyLock":
            # What ImmutabilityLockProvider.create returns: the policy id, now Locked.
            state.update(state="Locked", etag=f'"{ident[:16]}"')
            return str(state.get("policy_id")), state
        return f"{name}-id", state

    def _azure_id(self, typ: str, name: str, state: dict, rg: str, ident: str) -> str | None:
        """ARM ids shaped like the real ones, so role-assignment scopes can be checked."""
        base = f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers"
        acct = f"{base}/Microsoft.Storage/storageAccounts/{state.get('accountName', name)}"
        guid = str(uuid.UUID(ident[:32]))
        ids = {
            "azure-native:storage:StorageAccount": acct,
            "azure-native:storage:BlobServiceProperties": f"{acct}/blobServices/default",
            "azure-native:storage:BlobContainer":
                f"{acct}/blobServices/default/containers/{state.get('containerName', name)}",
            "azure-native:storage:BlobContainerImmutabilityPolicy":
                f"{acct}/blobServices/default/containers/{state.get('containerName')}"
                "/immutabilityPolicies/default",
            "azure-native:storage:ManagementPolicy": f"{acct}/managementPolicies/default",
            "azure-native:keyvault:Vault":
                f"{base}/Microsoft.KeyVault/vaults/{state.get('vaultName', name)}",
            "azure-native:keyvault:Key":
                f"{base}/Microsoft.KeyVault/vaults/{state.get('vaultName')}/keys/"
                f"{state.get('keyName', name)}",
            "azure-native:managedidentity:UserAssignedIdentity":
                f"{base}/Microsoft.ManagedIdentity/userAssignedIdentities/"
                f"{state.get('resourceName', name)}",
            "azure-native:managedidentity:FederatedIdentityCredential":
                f"{base}/Microsoft.ManagedIdentity/userAssignedIdentities/"
                f"{state.get('resourceName')}/federatedIdentityCredentials/"
                f"{state.get('federatedIdentityCredentialResourceName', name)}",
            "azure-native:authorization:RoleDefinition":
                f"{state.get('scope')}/providers/Microsoft.Authorization/roleDefinitions/"
                f"{state.get('roleDefinitionId', guid)}",
            "azure-native:authorization:RoleAssignment":
                f"{state.get('scope')}/providers/Microsoft.Authorization/roleAssignments/{guid}",
        }
        physical = {"azure-native:storage:StorageAccount": "accountName",
                    "azure-native:storage:BlobContainer": "containerName",
                    "azure-native:keyvault:Vault": "vaultName",
                    "azure-native:keyvault:Key": "keyName",
                    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
                    "azure-native:managedidentity:FederatedIdentityCredential":
                        "federatedIdentityCredentialResourceName"}.get(typ)
        if physical and state.get(physical):
            state["name"] = state[physical]  # ARM returns the physical name, not Pulumi's
        if typ == "azure-native:keyvault:Key":
            vault = state.get("vaultName")
            state["keyUri"] = f"https://{vault}.vault.azure.net/keys/{state.get('keyName', name)}"
            state["keyUriWithVersion"] = f"{state['keyUri']}/{ident[:32]}"
        if typ == "azure-native:storage:BlobContainerImmutabilityPolicy":
            state.setdefault("state", "Unlocked")  # Azure always creates the policy unlocked
            state.setdefault("etag", f'"{ident[:16]}"')
        return ids.get(typ)

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
            # invokeArn is API Gateway's integration URI for the function, not its ARN.
            invoke = (f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/"
                      "invocations")
            state.update(name=fname, arn=arn, invokeArn=invoke, qualifiedArn=f"{arn}:$LATEST")
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

    def call(self, args: engine.MockCallArgs) -> tuple[dict, list] | dict:
        if args.token in self.invokes:
            result = self.invokes[args.token]
            if isinstance(result, str):
                return {}, [("", result)]  # how a provider reports a failed lookup
            return dict(result)
        if args.token == "azure-native:keyvault:getKey":
            # No key yet: what ARM answers before the first deploy (the vault is missing too).
            return {}, [("", f"Status=404 Code=\"ResourceNotFound\" The Resource "
                             f"'Microsoft.KeyVault/vaults/{args.args.get('vaultName')}' was "
                             "not found")]
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account, "arn": f"arn:aws:iam::{self.account}:root",
                    "userId": "AIDA0000000000000000"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": self.gcp_project, "number": self.gcp_project_number}
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            email = f"service-{self.gcp_project_number}@gs-project-accounts.iam.gserviceaccount.com"
            return {"emailAddress": email, "member": f"serviceAccount:{email}"}
        outbound = "aws:iam/getOutboundWebIdentityFederation:getOutboundWebIdentityFederation"
        if args.token == outbound:
            # The per-account issuer AWS returns once outbound identity federation is enabled.
            issuer = str(uuid.UUID(_stable_id("issuer", self.account)[:32]))
            return {"issuerIdentifier": f"https://{issuer}.tokens.sts.global.api.aws"}
        if args.token == "azure-native:authorization:getClientConfig":
            return {"clientId": "c", "objectId": "o", "subscriptionId": self.subscription,
                    "tenantId": self.tenant}
        raise UnmockedInvoke(f"the program calls {args.token}, which dev/mockrun.py does not "
                             "mock: add what the provider returns to RealisticMocks.call")


class _RecordingMonitor(engine.MockMonitor):
    def __init__(self, mocks: RealisticMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            engine.ensure_event_loop()
            reg = self.resources.get(response.urn)
            self.recorded.append(Resource(
                urn=response.urn, type=request.type, name=request.name,
                custom=bool(request.custom), parent=request.parent,
                inputs=engine.deserialize_properties(request.object),
                outputs=dict(reg.state) if reg else {},
                raw_inputs=json_format.MessageToDict(request.object),
                dependencies=list(request.dependencies),
                protect=bool(request.protect),
            ))
        return response


def stack_settings(stack: str) -> dict[str, Any]:
    """The ``config:`` mapping of ``Pulumi.<stack>.yaml``, keys as written."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return dict(doc["config"])


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None):
    """The validated ``infra.config.StackConfig`` the program sees for ``stack`` with
    ``overrides`` (same paths as :func:`run_program`), parsed without the Pulumi engine."""
    from infra import config

    settings = stack_settings(stack)
    for path, value in (overrides or {}).items():
        _set(settings, path, value)
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix):]: v for k, v in settings.items() if k.startswith(prefix)}
    providers = {k: str(v) for k, v in settings.items() if not k.startswith(prefix)}
    return config.parse(raw, stack=stack, providers=providers)


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
                secrets: Mapping[str, str] | None = None, preview: bool = False,
                invokes: Mapping[str, InvokeResult] | None = None) -> Graph:
    """Run the program (``__main__.py``) for ``stack`` with its stack file, ``overrides`` applied
    (``{"vo2max-dr:clouds.gcp.enabled": False}``), and ``secrets`` (default: TEST_SECRETS) set as
    secret config. ``vo2max-dr:recoveryPublicKey`` is TEST_RECOVERY_PUBLIC_KEY and
    ``signingPublicKeys`` TEST_SIGNING_PUBLIC_KEYS and ``recordPublicKeys``
    TEST_RECORD_PUBLIC_KEYS, as plain config, unless an override
    replaces or removes (``None``) it. Returns every declared resource.

    ``preview=True`` runs it as a first ``pulumi preview`` does: nothing exists, so every id
    and computed output is Pulumi's unknown, and so is every input built from one.
    ``invokes`` replaces provider function results by token (a string is a failure reason),
    e.g. the live Key Vault key ``azure-native:keyvault:getKey`` of an existing stack."""
    settings = stack_settings(stack)
    settings.setdefault(f"{PROJECT}:recoveryPublicKey", TEST_RECOVERY_PUBLIC_KEY)
    settings.setdefault(f"{PROJECT}:signingPublicKeys", TEST_SIGNING_PUBLIC_KEYS)
    settings.setdefault(f"{PROJECT}:recordPublicKeys", TEST_RECORD_PUBLIC_KEYS)
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
        str(clouds.get("gcp", {}).get("projectNumber", "100000000001")),
        tenant=str(clouds.get("azure", {}).get("tenantId")
                   or "00000000-0000-0000-0000-0000000000bb"),
        preview=preview, invokes=invokes,
    )
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(config, secret_keys)
    engine.forget_root()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview,
                             monitor=monitor)
    engine.clear_pending()
    # A fresh import of the program's modules per run, so no state leaks between stacks.
    for mod in [m for m in sys.modules if m == "infra" or m.startswith("infra.")]:
        del sys.modules[mod]
    try:
        engine.run_program(lambda: runpy.run_path(str(PROGRAM), run_name="__main__"))
    finally:
        pulumi.runtime.set_all_config({}, [])
    outputs, secret_outputs = _stack_outputs()
    return Graph(stack, monitor.recorded, outputs, secret_outputs)


def _stack_outputs() -> tuple[dict[str, Any], set[str]]:
    # Under mocks the root Stack registers its outputs before the program runs, so the
    # exports are read from the root resource and resolved here.
    exported = engine.root_outputs()
    values, secret = {}, set()
    for key, value in exported.items():
        out = pulumi.Output.from_input(value)
        values[key] = engine.sync_await(out.future())
        if engine.sync_await(out.is_secret()):
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
