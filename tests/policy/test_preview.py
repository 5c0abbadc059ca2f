"""The pack at a first ``pulumi preview`` (issue 11 item 14): values not known until the deploy
reach the analyzer as the engine's unknown sentinels. The policy SDK turns a rule that *reads*
one into an advisory "can't run policy during preview" note, so a stack rule that copied every
resource's properties (``dict(r.props)``) stopped counting as soon as any resource had one
unknown output. Each rule now judges what is known (mandatory findings stay mandatory) and names
the resources and values it could not judge yet.

Tested the way pulumi-policy tests its own analyzer (sdk/python/lib/test, unknown sentinels from
``pulumi_policy.proxy`` in the properties): here through the pack's real gRPC server, with the
resources of the real program run as a first preview (``dev.mockrun.run_program(preview=True)``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import proxy

from dev import mockrun, plan
from policy import policies as P
from tests.policy.pack_server import pack_server
from tests.program_graphs import program_graph

ROOT = mockrun.ROOT
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"


@pytest.fixture(scope="module")
def previews() -> dict[str, mockrun.Graph]:
    return {stack: program_graph(stack, preview=True) for stack in plan.STACKS}


@pytest.fixture(scope="module")
def production_pack() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    yield from pack_server("production")


def _struct(props: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(props)
    return out


def _stack_request(graph: mockrun.Graph, drop: str = "") -> analyzer_pb2.AnalyzeStackRequest:
    return analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(
            type=r.type, name=r.name, urn=r.urn, properties=_struct(r.raw_inputs),
            parent=r.parent or "", dependencies=list(r.dependencies))
        for r in graph.resources if r.custom and r.type != drop])


def test_a_first_preview_really_has_unknowns(previews):
    for graph in previews.values():
        unknown = [r.name for r in graph.resources
                   if proxy.UNKNOWN_STRING_VALUE in str(r.raw_inputs)]
        assert len(unknown) > 20, unknown


@pytest.mark.parametrize("stack", plan.STACKS)
def test_the_program_passes_at_preview_and_unknowns_are_named_per_resource(previews, stack):
    violations = P.evaluate(previews[stack], plan.expectations(stack))
    assert [v for v in violations if v.mandatory] == []
    for v in (v for v in violations if v.unknown):
        assert not v.mandatory and v.urn and v.message.startswith(
            "cannot be judged during preview: "), v


def test_a_mandatory_stack_rule_still_counts_at_preview(previews):
    """Without the bucket's public access block, the production preview is refused, though
    other resources of the same rule hold unknown values."""
    graph = previews["production"]
    res = [r for r in P.resources_from_graph(graph) if r.type != PAB]
    found = [v for v in P.evaluate(res, plan.expectations("production"))
             if v.rule == "aws-s3-bucket-controls-complete"]
    assert any(v.mandatory and "has no public access block" in v.message for v in found), found


def test_engine_analyze_stack_keeps_mandatory_findings_with_unknowns(previews, production_pack):
    response = production_pack.AnalyzeStack(_stack_request(previews["production"], drop=PAB),
                                            timeout=120)
    mine = [d for d in response.diagnostics if d.policyName == "aws-s3-bucket-controls-complete"]
    mandatory = [d for d in mine if d.enforcementLevel == analyzer_pb2.MANDATORY]
    assert any("has no public access block" in d.message for d in mandatory), mine
    # The old pack reported only this, advisory, for the whole rule.
    assert not any("can't run policy" in d.message and not d.urn and
                   d.enforcementLevel == analyzer_pb2.ADVISORY and "has no" not in d.message
                   and len(mine) == 1 for d in mine)


def test_engine_analyze_stack_of_the_program_has_no_mandatory_finding(previews,
                                                                      production_pack):
    response = production_pack.AnalyzeStack(_stack_request(previews["production"]),
                                            timeout=120)
    mandatory = [(d.policyName, d.message) for d in response.diagnostics
                 if d.enforcementLevel == analyzer_pb2.MANDATORY]
    assert mandatory == []
    for d in response.diagnostics:  # each note names the resources it could not judge
        assert "during preview" in d.message and "urn:pulumi:production::" in d.message, d


def test_engine_analyze_resource_with_an_unknown_and_a_known_violation(production_pack):
    """A resource rule reads an unknown field: its known violations on other resources are
    unaffected, and the unknown one is named with its path."""
    props = {"enableKeyRotation": proxy.UNKNOWN_BOOLEAN_VALUE,
             "customerMasterKeySpec": "SYMMETRIC_DEFAULT"}
    response = production_pack.Analyze(analyzer_pb2.AnalyzeRequest(
        type="aws:kms/key:Key", properties=_struct(props), name="k",
        urn="urn:pulumi:production::vo2max-dr::aws:kms/key:Key::k"), timeout=30)
    found = [d for d in response.diagnostics if d.policyName == "aws-kms-key-rotation-enabled"]
    assert len(found) == 1 and found[0].enforcementLevel == analyzer_pb2.ADVISORY
    assert "aws:kms/key:Key::k: enableKeyRotation unknown" in found[0].message
