"""The S3 store under the AWS backup writer role's permissions (infra/aws/access.py): PutObject,
AbortMultipartUpload and ListBucket on its prefix, but no s3:GetObject, so every HeadObject is
403. Uploads must still be write-once and verified, from the write responses alone. And the
SSE-KMS header must carry the key's full ARN, which the bucket policy requires.

moto has no IAM enforcement for S3, so the role's refusals are injected with botocore event
hooks on the store's own client (the test's admin client ``case.sdk`` is left alone)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import botocore.awsrequest
import pytest
from botocore.stub import Stubber
from vo2dr.exceptions import ConfigError, IntegrityError, ObjectExists
from vo2dr.stores.s3 import S3Store
from vo2dr.stores.s3 import make_client as s3_client

from tests.integration.stores.cases import StoreCase, moto_only_s3_case

pytestmark = pytest.mark.integration


@pytest.fixture
def case(monkeypatch, moto) -> StoreCase:
    """An S3 store on the session's moto server only (no GCS or Azure emulator needed)."""
    return moto_only_s3_case(monkeypatch, moto)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


def deny_head(store: S3Store) -> list[str]:
    """Answer every HeadObject of ``store`` with 403 Forbidden, as S3 does for a role without
    s3:GetObject (a HEAD's error has no body). Returns the list of refused requests."""
    refused: list[str] = []

    def refuse(request: Any, **_: Any) -> botocore.awsrequest.AWSResponse:
        refused.append(request.url)
        return botocore.awsrequest.AWSResponse(request.url, 403, {}, _Raw(b""))

    store._client.meta.events.register("before-send.s3.HeadObject", refuse)
    return refused


def complete_like_s3(case: StoreCase) -> None:
    """moto's CompleteMultipartUpload response omits the ChecksumSHA256 that S3 returns
    ("<b64>-<parts>"). Add the value moto itself stored for the assembled object, read with
    the admin client, so the store sees what S3 would answer."""

    def add_checksum(parsed: dict, model: Any, **_: Any) -> None:
        if parsed.get("ChecksumSHA256") or "Error" in parsed:
            return
        head = case.sdk.head_object(Bucket=case.bucket, Key=parsed["Key"],
                                    ChecksumMode="ENABLED")
        parts = head["ETag"].strip('"').rsplit("-", 1)[1]
        parsed["ChecksumSHA256"] = f"{head['ChecksumSHA256'].split('-')[0]}-{parts}"

    case.store._client.meta.events.register("after-call.s3.CompleteMultipartUpload",
                                            add_checksum)


def key_arn(case: StoreCase) -> str:
    return case.kms.describe_key(KeyId=case.kms_key_id)["KeyMetadata"]["Arn"]


def test_uploads_and_verifies_without_any_head(case):
    refused = deny_head(case.store)
    complete_like_s3(case)
    data = os.urandom(case.part_size * 2 + 12345)  # three parts

    big = case.store.put_stream("database/staging/daily/full/a.dump.enc",
                                iter([data[:100_000], data[100_000:]]))
    small = case.store.put_bytes("database/staging/daily/full/a.manifest.json", b"{}")

    # One refused HEAD per upload (the early write-once check); none for verification.
    assert len(refused) == 2
    assert big.size == len(data) and big.checksum.endswith("-3")
    assert small.size == 2 and small.checksum.startswith("sha256:")
    stored = case.sdk.get_object(Bucket=case.bucket, Key=big.key)["Body"].read()
    assert stored == data
    # SSE-KMS names the key by its ARN (the store was given the bare key id).
    for key in (big.key, small.key):
        head = case.sdk.head_object(Bucket=case.bucket, Key=key)
        assert head["SSEKMSKeyId"] == key_arn(case)


def test_write_once_holds_without_head(case):
    refused = deny_head(case.store)
    complete_like_s3(case)
    key = "database/staging/daily/full/b.dump.enc"
    case.store.put_bytes(key, b"first")

    with pytest.raises(ObjectExists):
        case.store.put_bytes(key, b"second")
    with pytest.raises(ObjectExists):  # refused at CompleteMultipartUpload, then aborted
        case.store.put_stream(key, iter([os.urandom(case.part_size * 2 + 1)]))

    assert len(refused) == 3  # the pre-check could not see the key; IfNoneMatch refused it
    assert case.sdk.get_object(Bucket=case.bucket, Key=key)["Body"].read() == b"first"
    assert case.sdk.list_multipart_uploads(Bucket=case.bucket).get("Uploads", []) == []


def test_no_checksum_and_no_head_is_unverified(case):
    """Without the shim, moto's completion carries no checksum; with HEAD denied the store
    must not claim a verified copy."""
    deny_head(case.store)
    with pytest.raises(IntegrityError, match="cannot be verified"):
        case.store.put_stream("c.dump.enc", iter([os.urandom(case.part_size * 2 + 1)]))


def test_no_checksum_falls_back_to_head(case):
    """Where HEAD is allowed (an operator's role, an S3-compatible server), a response without
    a checksum is verified from the object's own checksum and size."""
    heads: list[str] = []
    case.store._client.meta.events.register(
        "before-call.s3.HeadObject", lambda **kw: heads.append("head"))

    def strip(parsed: dict, **_: Any) -> None:
        parsed.pop("ChecksumSHA256", None)

    case.store._client.meta.events.register("after-call.s3.PutObject", strip)
    result = case.store.put_bytes("d.manifest.json", b"manifest")
    assert result.checksum.startswith("sha256:") and len(heads) == 2  # pre-check + fallback


# ---- the SSE-KMS key reference --------------------------------------------------------------


def _kms_denied() -> tuple[Any, Stubber]:
    """A KMS client whose DescribeKey is denied, as for a role without kms:DescribeKey."""
    kms = s3_client("kms")
    stub = Stubber(kms)
    stub.add_client_error("describe_key", service_error_code="AccessDeniedException",
                          http_status_code=400)
    stub.activate()
    return kms, stub


def test_key_arn_works_without_describe_key(case):
    kms, stub = _kms_denied()
    arn = key_arn(case)
    store = S3Store(case.bucket, arn, kms_client=kms, part_size=case.part_size)
    store.put_bytes("e.manifest.json", b"{}")
    stub.assert_no_pending_responses()
    assert case.sdk.head_object(Bucket=case.bucket, Key="e.manifest.json")["SSEKMSKeyId"] == arn


@pytest.mark.parametrize("reference", ["alias", "alias_arn", "key_id"])
def test_key_reference_is_resolved_to_its_arn(case, reference):
    alias = f"alias/{case.bucket}"  # unique: the moto server lives for the whole session
    case.kms.create_alias(AliasName=alias, TargetKeyId=case.kms_key_id)
    arn = key_arn(case)
    value = {"alias": alias, "key_id": case.kms_key_id,
             "alias_arn": arn.replace(f"key/{case.kms_key_id}", alias)}[reference]
    store = S3Store(case.bucket, value, part_size=case.part_size)
    store.put_bytes("f.manifest.json", b"{}")
    assert store.kms_key_arn == arn
    assert case.sdk.head_object(Bucket=case.bucket, Key="f.manifest.json")["SSEKMSKeyId"] == arn


def test_unresolvable_key_reference_is_a_config_error_before_any_upload(case):
    kms, _ = _kms_denied()
    store = S3Store(case.bucket, "alias/vo2dr-test", kms_client=kms, part_size=case.part_size)
    with pytest.raises(ConfigError, match=r"VO2DR_KMS_KEY_ID.*key's ARN"):
        store.put_stream("g.dump.enc", iter([os.urandom(case.part_size * 2)]))
    assert case.sdk.list_objects_v2(Bucket=case.bucket).get("Contents", []) == []
    assert case.sdk.list_multipart_uploads(Bucket=case.bucket).get("Uploads", []) == []


@pytest.mark.parametrize("value", ["backup-key", "arn:aws:s3:::bucket", "key/1234",
                                   "arn:aws:kms:us-east-1:123456789012:key/not-a-key-id"])
def test_not_a_kms_reference_is_refused_when_built(value):
    with pytest.raises(ConfigError, match="VO2DR_KMS_KEY_ID"):
        S3Store("bucket", value, client=object(), kms_client=object())
