"""Every AWS IAM document of both stacks (role trust policies, identity policies, key policies,
bucket and topic policies) linted with parliament (tests/iam_lint.py): invalid actions,
resource types, condition keys or operators fail here. Known false positives are listed, with
their reasons, in tests/iam_lint.py only."""

from __future__ import annotations

import json

import pytest

from dev.mockrun import Graph
from tests.iam_lint import KNOWN_FALSE_POSITIVES, findings, lint
from tests.program_graphs import program_graph
from tests.unit.test_iam import STACKS, documents


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {stack: program_graph(stack) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_every_iam_document_passes_parliament(graphs, stack) -> None:
    problems, kinds = [], set()
    for r, field, kind, document in documents(graphs[stack]):
        kinds.add(kind)
        problems += [f"{r.name}.{field}: {p}" for p in lint(document, kind=kind)]
    assert {"trust", "identity", "resource", "key"} <= kinds
    assert not problems, "\n".join(problems)


def test_the_linter_catches_real_mistakes() -> None:
    bad = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Typo", "Effect": "Allow", "Action": ["s3:PutObjekt"],
         "Resource": "arn:aws:s3:::b/*"},
        {"Sid": "WrongKey", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": "arn:aws:s3:::b/*",
         "Condition": {"StringEquals": {"kms:ViaServic": "s3.us-east-1.amazonaws.com"}}}]}
    issues = {f.issue for f in findings(bad)}
    assert "UNKNOWN_ACTION" in issues
    assert lint(bad, kind="identity")  # not hidden by the known false positives


def test_each_known_false_positive_has_a_reason_and_still_occurs(graphs) -> None:
    """An entry that no document triggers any more is dead weight: remove it."""
    seen = set()
    for stack in STACKS:
        for _, _, kind, document in documents(graphs[stack]):
            text_findings = findings(document)
            for i, fp in enumerate(KNOWN_FALSE_POSITIVES):
                for f in text_findings:
                    detail = json.dumps({"detail": f.detail, "location": f.location},
                                        default=str)
                    if f.issue == fp.issue and kind in fp.kinds and \
                            all(v in detail for v in fp.match.values()):
                        seen.add(i)
    for i, fp in enumerate(KNOWN_FALSE_POSITIVES):
        assert len(fp.reason) > 40, fp
        assert i in seen, f"{fp.issue} {fp.match} no longer occurs: remove it"
