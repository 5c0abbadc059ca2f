"""The pack loads as the Pulumi CLI loads it: ``python policy/`` starts the analyzer gRPC server
and prints its port; the engine's own calls (GetAnalyzerInfo, Analyze) then work. No Pulumi CLI
or cloud is needed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy import policies as P
from tests.policy.pack_server import pack_server


@pytest.fixture(scope="module")
def production() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    yield from pack_server("production")


def test_pack_describes_every_rule_with_metadata(production):
    info = production.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == P.PACK_NAME
    assert [p.name for p in info.policies] == [r.name for r in P.RULES]
    by_name = {p.name: p for p in info.policies}
    rotation = by_name["aws-kms-key-rotation-enabled"]
    assert rotation.remediation_steps and rotation.url.startswith("https://")
    assert rotation.framework.reference == "SC-12, SC-28"
    assert info.initialConfig["all"].enforcementLevel == analyzer_pb2.MANDATORY
    assert by_name["azure-storage-container-immutability-locked"].enforcementLevel == \
        analyzer_pb2.MANDATORY


def test_engine_analyze_call_reports_a_violation_with_its_fix(production):
    props = struct_pb2.Struct()
    props.update({"enableKeyRotation": False, "customerMasterKeySpec": "SYMMETRIC_DEFAULT"})
    response = production.Analyze(analyzer_pb2.AnalyzeRequest(
        type="aws:kms/key:Key", properties=props, name="k",
        urn="urn:pulumi:production::vo2max-dr::aws:kms/key:Key::k"), timeout=30)
    found = {d.policyName: d for d in response.diagnostics}
    assert "aws-kms-key-rotation-enabled" in found
    diag = found["aws-kms-key-rotation-enabled"]
    assert "automatic rotation off" in diag.message and "Fix: Set enable_key_rotation" in \
        diag.message
    assert diag.enforcementLevel == analyzer_pb2.MANDATORY


def test_staging_pack_is_advisory():
    for stub in pack_server("staging"):
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert info.initialConfig["all"].enforcementLevel == analyzer_pb2.ADVISORY
