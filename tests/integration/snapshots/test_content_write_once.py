"""A snapshot content object is written once (issue 17): a second write to an existing
``<root>content/<id>`` key is refused, so a stolen backup writer credential cannot replace
content that years of snapshots reference.

- The job's own writes: :class:`ContentWriter` puts to all three stores on loopback; a second
  put to the same content id is refused by every store and the first bytes stay. S3 (moto)
  and Azure (Azurite) refuse it in the conditional write itself (``If-None-Match: *``), with
  the early existence check switched off, as S3 has it under the writer role (no HeadObject).
  The GCS emulator ignores ``ifGenerationMatch``, so there the early check refuses; real GCS
  also refuses an overwrite to any identity without ``storage.objects.delete``, which the
  writer lacks (tests/unit/test_snapshot_program.py).
- The writer role's own policy: moto enforces no IAM, so every S3 request of the store and
  of an "attacker" client holding the writer's credentials is judged by the mocked program's
  real writer policy (tests/iam_check.allows) before it reaches moto. The job's multipart
  upload passes; a plain PutObject, a CopyObject or a multipart completion without
  ``If-None-Match`` onto a content key is refused by the policy, whatever the object's
  existence.
- The bucket policy's deny, for any other principal of the account that may put objects:
  the same creating calls onto a content key are refused, parts and other keys are not."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.awsrequest
import pytest
from botocore.exceptions import ClientError
from vo2dr import crypto, layout
from vo2dr.snapshots.content import ContentWriter
from vo2dr.stores.s3 import make_client as s3_client

from tests.iam_check import allows, denies
from tests.integration.stores.cases import (
    MiB,
    StoreCase,
    make_azure_case,
    make_gcs_case,
    make_s3_case,
    moto_only_s3_case,
)
from tests.integration.stores.test_s3_writer_role import complete_like_s3
from tests.program_graphs import program_graph

pytestmark = pytest.mark.integration
CONTENT_ID = "5" * 32
KEY = layout.content_key("staging", "assets", CONTENT_ID)


@pytest.fixture(scope="module")
def recovery_public() -> bytes:
    return crypto.generate_recovery_key(3072)[1]


def _writer(case: StoreCase, public: bytes) -> ContentWriter:
    return ContentWriter(environment="staging", source="assets", kms_key_id=case.kms_key_id,
                         recovery_public_key_pem=public, cache=None)


def _stored_sha256(case: StoreCase) -> str:
    return hashlib.sha256(b"".join(case.store.get_stream(KEY))).hexdigest()


def test_a_second_write_to_a_content_key_is_refused_by_every_store(cloud_env, monkeypatch,
                                                                    recovery_public):
    cases = {c.name: c for c in (make_s3_case(cloud_env), make_gcs_case(cloud_env),
                                 make_azure_case(cloud_env))}
    for name in ("s3", "azure"):  # the service's conditional write, not the early check
        monkeypatch.setattr(cases[name].store, "_refuse_existing", lambda key: None)
    complete_like_s3(cases["s3"])
    monkeypatch.setattr(layout, "new_content_id", lambda: CONTENT_ID)
    writer = _writer(cases["s3"], recovery_public)
    stores = {n: c.store for n, c in cases.items()}
    genuine, forged = os.urandom(6 * MiB), os.urandom(6 * MiB)  # multipart everywhere

    first = writer.put(iter([genuine]), len(genuine), stores)
    assert first.content_id == CONTENT_ID and first.failed == {}
    assert sorted(first.uploaded_to) == ["azure", "gcs", "s3"]

    second = writer.put(iter([forged]), len(forged), stores)
    assert second.uploaded_to == ()
    assert set(second.failed) == {"s3", "gcs", "azure"}
    for name, why in second.failed.items():
        assert "already exists" in why, (name, why)
    for case in cases.values():
        assert _stored_sha256(case) == first.stored_sha256, case.name


# ---- S3 under the writer role's own policy --------------------------------------------------

# The S3 calls of an upload, as IAM authorises them: (action, s3:ObjectCreationOperation).
S3_CALLS = {
    "PutObject": ("s3:PutObject", True), "CopyObject": ("s3:PutObject", True),
    "CompleteMultipartUpload": ("s3:PutObject", True),
    "CreateMultipartUpload": ("s3:PutObject", False), "UploadPart": ("s3:PutObject", False),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", None),
    "HeadObject": ("s3:GetObject", None), "GetObject": ("s3:GetObject", None),
}


@pytest.fixture(scope="module")
def writer_policy() -> tuple[str, dict[str, Any]]:
    """The staging program's bucket and its backup writer role's S3 policy document."""
    g = program_graph("staging")
    store = {r.urn for r in g.of_type("vo2dr:aws:JobPermissions")}
    (doc,) = [json.loads(r.inputs["policy"]) for r in g.of_type("aws:iam/rolePolicy:RolePolicy")
              if r.parent in store and r.inputs["role"] == "vo2dr-staging-backup-writer"]
    return g.outputs["awsBucketName"], doc


@pytest.fixture(scope="module")
def content_deny() -> dict[str, Any]:
    """The staging backup bucket policy's deny of content overwrites, for every principal."""
    g = program_graph("staging")
    bucket = g.outputs["awsBucketName"]
    (doc,) = [json.loads(r.inputs["policy"]) for r in g.of_type("aws:s3/bucketPolicy:BucketPolicy")
              if r.inputs["bucket"] == bucket]
    (st,) = [s for s in doc["Statement"] if s["Sid"] == "DenyBackupOverwrites"]
    return st


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Any:
        yield self._body


def police(client: Any, bucket: str, program_bucket: str, document: dict[str, Any],
           decisions: list[tuple[str, str, bool]],
           bucket_denies: tuple[dict[str, Any], ...] = ()) -> None:
    """Judge every object call of ``client`` on ``bucket`` by the identity policy
    ``document`` and the bucket policy's ``bucket_denies`` statements, as if the bucket were
    the program's, and answer a refused one 403 AccessDenied as S3 does."""
    bucket_policy = {"Version": "2012-10-17", "Statement": list(bucket_denies)}

    def judge(request: Any, event_name: str, **_: Any) -> Any:
        op = event_name.rsplit(".", 1)[-1]
        if op not in S3_CALLS:
            return None
        path = unquote(urlsplit(request.url).path)
        key = path.split(f"/{bucket}/", 1)[1] if f"/{bucket}/" in path else path.lstrip("/")
        action, creating = S3_CALLS[op]
        context = {} if creating is None else {
            "s3:ObjectCreationOperation": str(creating).lower()}
        if request.headers.get("If-None-Match") is not None:
            context["s3:if-none-match"] = request.headers["If-None-Match"]
        arn = f"arn:aws:s3:::{program_bucket}/{key}"
        ok = allows(document, action, arn, context) and not denies(bucket_policy, action, arn,
                                                                   context)
        decisions.append((op, key, ok))
        if ok:
            return None
        body = b"" if request.method == "HEAD" else (
            b"<Error><Code>AccessDenied</Code><Message>denied by the backup writer's "
            b"policy</Message></Error>")
        return botocore.awsrequest.AWSResponse(request.url, 403, {}, _Raw(body))

    client.meta.events.register("before-send.s3", judge)


@pytest.fixture
def s3_case(monkeypatch, moto) -> StoreCase:
    return moto_only_s3_case(monkeypatch, moto)


def _refused(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"]


def test_the_writer_policy_takes_the_jobs_upload_and_refuses_an_overwrite(
        s3_case, writer_policy, monkeypatch, recovery_public):
    program_bucket, document = writer_policy
    decisions: list[tuple[str, str, bool]] = []
    police(s3_case.store._client, s3_case.bucket, program_bucket, document, decisions)
    complete_like_s3(s3_case)
    monkeypatch.setattr(layout, "new_content_id", lambda: CONTENT_ID)
    genuine = os.urandom(6 * MiB)

    # The job: HEAD refused (no s3:GetObject), then a multipart upload the policy takes.
    stored = _writer(s3_case, recovery_public).put(iter([genuine]), len(genuine),
                                                   {"s3": s3_case.store})
    assert stored.failed == {} and stored.uploaded_to == ("s3",)
    ops = [(op, ok) for op, _, ok in decisions]
    assert ops[0] == ("HeadObject", False)
    assert {op for op, ok in ops[1:]} == {"CreateMultipartUpload", "UploadPart",
                                          "CompleteMultipartUpload"}
    assert all(ok for _, ok in ops[1:]), ops

    # An attacker with the writer's credentials, straight at the content key.
    attacker = s3_client()
    police(attacker, s3_case.bucket, program_bucket, document, decisions)
    evil = b"not what the snapshots reference"
    put = dict(Bucket=s3_case.bucket, Key=KEY, Body=evil)
    assert _refused(lambda: attacker.put_object(**put)) == "AccessDenied"
    assert _refused(lambda: attacker.copy_object(
        Bucket=s3_case.bucket, Key=KEY,
        CopySource={"Bucket": s3_case.bucket, "Key": KEY})) == "AccessDenied"
    upload = attacker.create_multipart_upload(Bucket=s3_case.bucket, Key=KEY)["UploadId"]
    part = attacker.upload_part(Bucket=s3_case.bucket, Key=KEY, UploadId=upload,
                                PartNumber=1, Body=evil)
    assert _refused(lambda: attacker.complete_multipart_upload(
        Bucket=s3_case.bucket, Key=KEY, UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})) == "AccessDenied"
    attacker.abort_multipart_upload(Bucket=s3_case.bucket, Key=KEY, UploadId=upload)
    # With the header the policy lets it through, and S3 itself refuses the existing key.
    assert _refused(lambda: attacker.put_object(**put, IfNoneMatch="*")) in (
        "PreconditionFailed", "412")

    # A backup's manifest in a tier: the job's own write (conditional) is taken, a plain
    # put of the same name by the attacker is refused before S3 sees it.
    manifest = "database/staging/daily/main/20260101T000000Z-0123456789ab.manifest.json"
    s3_case.store.put_bytes(manifest, b'{"genuine": true}')
    assert ("PutObject", manifest, True) in decisions
    assert _refused(lambda: attacker.put_object(Bucket=s3_case.bucket, Key=manifest,
                                                Body=b"{}")) == "AccessDenied"
    assert s3_case.sdk.get_object(Bucket=s3_case.bucket, Key=manifest)["Body"].read() == \
        b'{"genuine": true}'

    body = s3_case.sdk.get_object(Bucket=s3_case.bucket, Key=KEY)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.stored_sha256
    versions = s3_case.sdk.list_object_versions(Bucket=s3_case.bucket, Prefix=KEY)
    assert len(versions.get("Versions", [])) == 1


def test_the_bucket_policy_refuses_an_overwrite_by_any_principal(s3_case, writer_policy,
                                                                 content_deny):
    """Another credential of the account that may put anywhere in the bucket (an operator's,
    a leaked deploy key's): the bucket policy alone still refuses every creating call onto a
    content key without If-None-Match, and lets a conditional one reach S3, which refuses the
    existing key. The parts of a multipart upload are not its business."""
    program_bucket, _ = writer_policy
    anything = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
        "Resource": f"arn:aws:s3:::{program_bucket}/*"}]}
    s3_case.sdk.put_object(Bucket=s3_case.bucket, Key=KEY, Body=b"genuine", IfNoneMatch="*")
    decisions: list[tuple[str, str, bool]] = []
    other = s3_client()
    police(other, s3_case.bucket, program_bucket, anything, decisions, (content_deny,))
    put = dict(Bucket=s3_case.bucket, Key=KEY, Body=b"replaced")
    assert _refused(lambda: other.put_object(**put)) == "AccessDenied"
    assert _refused(lambda: other.copy_object(
        Bucket=s3_case.bucket, Key=KEY,
        CopySource={"Bucket": s3_case.bucket, "Key": KEY})) == "AccessDenied"
    upload = other.create_multipart_upload(Bucket=s3_case.bucket, Key=KEY)["UploadId"]
    part = other.upload_part(Bucket=s3_case.bucket, Key=KEY, UploadId=upload, PartNumber=1,
                             Body=b"replaced")
    assert _refused(lambda: other.complete_multipart_upload(
        Bucket=s3_case.bucket, Key=KEY, UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})) == "AccessDenied"
    other.abort_multipart_upload(Bucket=s3_case.bucket, Key=KEY, UploadId=upload)
    assert _refused(lambda: other.put_object(**put, IfNoneMatch="*")) in (
        "PreconditionFailed", "412")
    # The tiers are written once too (a snapshot's index, a dump, a manifest: new names by
    # construction): a plain put is refused, a conditional one goes through.
    for tier in ("application/staging/assets/daily/important/"
                 "20260101T000000Z-0123456789ab.index.enc",
                 "database/staging/intraday/main/20260101T000000Z-0123456789ab.manifest.json"):
        assert _refused(lambda key=tier: other.put_object(
            Bucket=s3_case.bucket, Key=key, Body=b"index")) == "AccessDenied"
        other.put_object(Bucket=s3_case.bucket, Key=tier, Body=b"index", IfNoneMatch="*")
    # Outside them the deny does not reach: the pruner's plans take a plain put.
    plan = "application/staging/assets/prune/20260101T000000Z.json"
    other.put_object(Bucket=s3_case.bucket, Key=plan, Body=b"plan")
    assert s3_case.sdk.get_object(Bucket=s3_case.bucket, Key=KEY)["Body"].read() == b"genuine"
    assert ("PutObject", plan, True) in decisions
