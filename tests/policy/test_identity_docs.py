"""``docs/cross-cloud-identity.md`` says what the program declares: the GCS backups are retained
by Object Retention Lock set per object by the writers, not by a (locked) bucket retention
policy, as the program declares it."""

from __future__ import annotations

import re

import pytest

from dev import mockrun

DOC = mockrun.ROOT / "docs" / "cross-cloud-identity.md"
BUCKET = "gcp:storage/bucket:Bucket"


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]


def test_doc_claims_no_bucket_retention_policy_lock():
    text = " ".join(DOC.read_text().split())
    # The old claim: the provider locks the production bucket's retention policy at `pulumi up`.
    assert not re.search(r"locks? the production bucket's retention policy", text)
    assert not re.search(r"retention ?policy[^.]*\bis ?locked\b", text, re.I)
    assert "Object Retention Lock" in text


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_doc_names_the_per_object_retention_the_program_sets(graphs, stack):
    g = graphs[stack]
    bucket = g.one(BUCKET)
    # What the doc describes is what the program declares ...
    assert bucket.inputs.get("enableObjectRetention") is True
    assert "retentionPolicy" not in bucket.inputs
    # ... and the doc names the settings the writers get, with the modes they can take.
    cfg = mockrun.stack_config(stack)
    env = cfg.immutability.gcs_retention_env()
    text = " ".join(DOC.read_text().split())
    for name in env:
        assert f"`{name}`" in text, name
    assert env["VO2DR_GCS_RETENTION_MODE"] in ("Locked", "Unlocked")
    assert "`Locked`" in text and "`Unlocked`" in text
