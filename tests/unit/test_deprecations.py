"""The program uses no deprecated pulumi resource type or argument (pulumi-aws 7: aws.s3.Bucket
and the separate aws.s3.Bucket* settings resources, never BucketV2 or inline bucket arguments).

pyproject's `error::DeprecationWarning:pulumi_*` filters already fail any test on a deprecated
argument; this test also catches deprecated resource *types*, which the SDKs report only as a
log line, and proves with a bad program that the detection works."""

from __future__ import annotations

import pytest

from dev import mockrun
from tests.deprecation_check import deprecated_types, deprecated_uses


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_program_uses_no_deprecated_pulumi_types_or_arguments(stack: str) -> None:
    problems = deprecated_uses(lambda: mockrun.run_program(stack))
    assert not problems, "\n".join(problems)


def test_detector_catches_deprecated_types_and_arguments(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "__main__.py"
    bad.write_text(
        "import pulumi_aws as aws\n"
        "aws.s3.BucketV2('old-type')\n"
        "aws.s3.Bucket('inline-versioning', versioning={'enabled': True})\n"
        "aws.s3.Bucket('inline-acl', aws.s3.BucketArgs(acl='private'))\n"
    )
    monkeypatch.setattr(mockrun, "PROGRAM", bad)
    problems = deprecated_uses(lambda: mockrun.run_program("staging"))
    assert any("BucketV2" in p for p in problems), problems
    assert any("deprecated argument versioning" in p for p in problems), problems
    assert any("acl is deprecated" in p for p in problems), problems


def test_type_check_knows_v2_from_current() -> None:
    assert deprecated_types(["aws:s3/bucketV2:BucketV2",
                             "aws:s3/bucketVersioningV2:BucketVersioningV2"]) == [
        "aws:s3/bucketV2:BucketV2", "aws:s3/bucketVersioningV2:BucketVersioningV2"]
    assert deprecated_types(["aws:s3/bucket:Bucket", "aws:s3/bucketVersioning:BucketVersioning",
                             "aws:kms/key:Key", "aws:iam/role:Role"]) == []
