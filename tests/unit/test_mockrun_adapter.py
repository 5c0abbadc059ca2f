"""The mock harness (``dev.mockrun``) itself: the Pulumi internals it leans on are all in
``dev.pulumi_adapter`` and still there (a Pulumi upgrade that moves one fails here, by name);
an invoke nobody mocked fails instead of returning ``{}``; the mocked fields look like the
providers' own; and a ``preview=True`` run sees Pulumi's unknowns, as a first preview does."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pulumi
import pytest

from dev import mockrun, pulumi_adapter
from tests.program_graphs import program_graph

ROOT = Path(__file__).resolve().parents[2]


def test_every_pulumi_internal_the_harness_uses_is_still_there():
    assert pulumi_adapter.canary() == []


def test_the_canary_names_what_changed(monkeypatch):
    monkeypatch.delattr(pulumi_adapter._mocks, "_ensure_event_loop")
    problems = pulumi_adapter.canary()
    assert len(problems) == 1
    assert re.fullmatch(r"pulumi \S+: mocks\._ensure_event_loop changed; update "
                        r"dev/pulumi_adapter\.py", problems[0]), problems


def test_private_internals_are_used_only_through_the_adapter():
    for path in (ROOT / "dev").glob("*.py"):
        if path.name == "pulumi_adapter.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                base = ast.unparse(node.value)
                assert not re.match(r"(pulumi|rpc|pmocks|mocks|settings)\b", base), \
                    f"{path.name}:{node.lineno} uses {base}.{node.attr}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "pulumi.runtime"):
                raise AssertionError(f"{path.name}:{node.lineno} imports {node.module}")


def _mocks() -> mockrun.RealisticMocks:
    return mockrun.RealisticMocks("staging", "111111111111", "eu-west-1", "proj", "123456789012",
                                  tenant="11111111-2222-3333-4444-555555555555")


def test_an_unmocked_invoke_raises_with_its_token():
    args = pulumi_adapter.MockCallArgs(token="aws:ec2/getVpc:getVpc", args={}, provider="")
    with pytest.raises(mockrun.UnmockedInvoke, match="aws:ec2/getVpc:getVpc"):
        _mocks().call(args)


def test_an_unmocked_invoke_in_a_program_fails_the_run(monkeypatch):
    real = mockrun.RealisticMocks.call

    def call(self, args):
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            raise mockrun.UnmockedInvoke(f"the program calls {args.token}")
        return real(self, args)

    monkeypatch.setattr(mockrun.RealisticMocks, "call", call)
    with pytest.raises(Exception, match="getProjectServiceAccount"):
        mockrun.run_program("staging")


def _new(mocks, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
    return mocks.new_resource(pulumi_adapter.MockResourceArgs(
        typ=typ, name=name, inputs=inputs, provider="", resource_id="", custom=True))


def test_lambda_invoke_arn_is_the_api_gateway_integration_uri():
    _, state = _new(_mocks(), "aws:lambda/function:Function", "f", {"name": "vo2dr-backup"})
    arn = "arn:aws:lambda:eu-west-1:111111111111:function:vo2dr-backup"
    assert state["arn"] == arn
    assert state["invokeArn"] == (f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/"
                                  f"functions/{arn}/invocations")


def test_identity_tenant_is_the_stack_tenant():
    mocks = _mocks()
    _, state = _new(mocks, "azure-native:managedidentity:UserAssignedIdentity", "id",
                    {"resourceName": "w", "resourceGroupName": "rg"})
    assert state["tenantId"] == "11111111-2222-3333-4444-555555555555"
    client = mocks.call(pulumi_adapter.MockCallArgs(
        token="azure-native:authorization:getClientConfig", args={}, provider=""))
    assert client["tenantId"] == state["tenantId"]


def test_workload_identity_pool_name_uses_the_project_number():
    rid, state = _new(_mocks(), "gcp:iam/workloadIdentityPool:WorkloadIdentityPool", "pool",
                      {"workloadIdentityPoolId": "vo2dr-staging-aws"})
    assert rid == "projects/proj/locations/global/workloadIdentityPools/vo2dr-staging-aws"
    assert state["name"] == ("projects/123456789012/locations/global/workloadIdentityPools/"
                             "vo2dr-staging-aws")


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_a_first_preview_declares_the_same_resources_with_unknown_outputs(stack):
    """As on a first ``pulumi preview``: the same resources, but ids, ARNs and every input
    built from them unknown (Pulumi's sentinel on the wire)."""
    deployed = program_graph(stack)
    preview = program_graph(stack, preview=True)
    assert sorted(r.urn for r in preview.resources) == sorted(r.urn for r in deployed.resources)
    key = preview.one("aws:kms/key:Key", "backup-key")
    assert "arn" not in key.outputs
    role_policy = preview.of_type("aws:iam/rolePolicy:RolePolicy")[0]
    assert role_policy.raw_inputs["policy"] == pulumi_adapter.UNKNOWN
    assert isinstance(role_policy.inputs["policy"], pulumi.output.Unknown)
    assert preview.outputs["awsKmsKeyArn"] is None  # unknown stack output
    assert deployed.outputs["awsKmsKeyArn"].startswith("arn:aws:kms:")
