"""Store failures become the project's exceptions, with the cause kept and nothing visible:
a server killed mid-upload, a denied KMS key, a bucket that does not exist."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import botocore.awsrequest
import pytest
from vo2dr.exceptions import AccessDenied, IntegrityError, ObjectNotFound, StoreError
from vo2dr.stores.azure_blob import AzureBlobStore
from vo2dr.stores.gcs import GcsStore
from vo2dr.stores.s3 import S3Store
from vo2dr.stores.s3 import make_client as s3_client

from dev import servers
from tests.integration.stores.cases import MAKERS, STORE_NAMES, StoreCase

pytestmark = pytest.mark.integration

LAUNCHERS = {"s3": servers.moto_server, "gcs": servers.gcs_emulator, "azure": servers.azurite}
# Few, quick retries so a dead server is given up on in seconds, not minutes.
SHORT_RETRIES = {"s3": {"max_attempts": 2}, "gcs": {"retry_timeout": 3.0},
                 "azure": {"retry_total": 1}}
SDK_MODULES = ("botocore", "boto3", "google", "azure", "requests", "urllib3")


@pytest.fixture(params=STORE_NAMES)
def own_server(request, monkeypatch) -> Iterator[tuple[StoreCase, servers.Service]]:
    """A server of this test's own (the session ones must survive), and a store on it."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "GOOGLE_", "AZURE_")) or var == "STORAGE_EMULATOR_HOST":
            monkeypatch.delenv(var, raising=False)
    with LAUNCHERS[request.param]() as svc:
        for key, value in svc.env.items():
            monkeypatch.setenv(key, value)
        yield MAKERS[request.param](svc.env, **SHORT_RETRIES[request.param]), svc


def test_server_killed_mid_upload(own_server):
    case, svc = own_server
    piece = os.urandom(case.part_size // 2)
    produced = []

    def slow_dump():
        for i in range(12):  # six parts in all
            if i == 5:  # two and a half parts are out: the upload is under way
                svc.stop()
            time.sleep(0.02)
            produced.append(i)
            yield piece

    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        case.store.put_stream("database/killed.dump.enc", slow_dump())
    elapsed = time.monotonic() - started

    exc = err.value
    assert produced[-1] >= 5, "the server must die during the stream, not before it"
    assert type(exc).__module__ == "vo2dr.exceptions"
    assert exc.store == case.name and exc.key == "database/killed.dump.enc"
    assert exc.__cause__ is not None  # the SDK's error, kept for the logs
    assert type(exc.__cause__).__module__.split(".")[0] in SDK_MODULES
    assert "\n" not in str(exc)  # a one-line cause
    assert elapsed < 30  # retries are bounded


@pytest.mark.parametrize("deny", ["disable", "schedule_deletion"])
def test_kms_key_denied_is_access_denied(s3_case, deny):
    case = s3_case
    if deny == "disable":
        case.kms.disable_key(KeyId=case.kms_key_id)
    else:
        case.kms.schedule_key_deletion(KeyId=case.kms_key_id, PendingWindowInDays=7)

    with pytest.raises(AccessDenied, match=case.kms_key_id) as err:
        case.store.put_stream("k", iter([os.urandom(case.part_size * 3)]))
    assert err.value.store == "s3"
    with pytest.raises(AccessDenied):
        case.store.put_bytes("m", b"manifest")
    assert list(case.store.list("")) == []
    assert case.sdk.list_multipart_uploads(Bucket=case.bucket).get("Uploads", []) == []


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


@pytest.mark.parametrize("operation", ["CreateMultipartUpload", "PutObject"])
def test_s3_refusing_the_kms_key_is_access_denied(s3_case, operation):
    """What AWS S3 itself answers when the key is disabled or its policy denies us (moto's S3
    never consults KMS, so the answer is injected at the HTTP layer)."""
    case = s3_case
    body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>KMS.DisabledException</Code>"
            b"<Message>arn:aws:kms:us-east-1:123456789012:key/x is disabled.</Message></Error>")

    def refuse(request, **_):
        return botocore.awsrequest.AWSResponse(request.url, 400, {}, _Raw(body))

    case.store._client.meta.events.register(f"before-send.s3.{operation}", refuse)
    with pytest.raises(AccessDenied, match=r"KMS\.DisabledException") as err:
        if operation == "PutObject":
            case.store.put_bytes("k", b"small")
        else:
            case.store.put_stream("k", iter([os.urandom(case.part_size * 3)]))
    assert err.value.__cause__ is not None
    assert case.sdk.list_multipart_uploads(Bucket=case.bucket).get("Uploads", []) == []


@pytest.mark.parametrize("name", STORE_NAMES)
def test_unknown_bucket_is_a_store_error_naming_it(cloud_env, name):
    missing = "vo2dr-no-such-bucket"
    store = {
        "s3": lambda: S3Store(missing, _enabled_kms_key(), part_size=5 * 1024 * 1024),
        "gcs": lambda: GcsStore(missing, chunk_size=256 * 1024, retry_timeout=3.0),
        "azure": lambda: AzureBlobStore(f"http://127.0.0.1:1/devstoreaccount1/{missing}",
                                        retry_total=1),  # the connection string has the host
    }[name]()
    for attempt in (lambda: store.put_bytes("k", b"x"),
                    lambda: store.put_stream("big", iter([os.urandom(11 * 1024 * 1024)]))):
        with pytest.raises(StoreError) as err:
            attempt()
        assert not isinstance(err.value, ObjectNotFound)  # a configuration problem, not a key
        assert missing in str(err.value)
        assert name in str(err.value) and err.value.store == name
        assert err.value.__cause__ is not None


def _enabled_kms_key() -> str:
    return s3_client("kms").create_key()["KeyMetadata"]["KeyId"]


def test_s3_checksum_mismatch_is_integrity_error(s3_case):
    """If S3 ever reports a composite checksum other than the one computed over the bytes we
    sent, the upload is not reported as verified."""
    case = s3_case

    def corrupt(parsed, **_):
        parsed["ChecksumSHA256"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=-3"

    case.store._client.meta.events.register(
        "after-call.s3.CompleteMultipartUpload", corrupt)
    with pytest.raises(IntegrityError, match="S3 reports sha256 AAAA"):
        case.store.put_stream("k", iter([os.urandom(case.part_size * 2 + 1)]))


@pytest.mark.parametrize("name", ["gcs", "azure"])
def test_gcs_and_azure_checksum_mismatch_is_integrity_error(name, cloud_env, monkeypatch):
    """The streamed body's SHA-256 is the pipeline's (PutResult): what proves the transport
    is the store's checksum, so one GCS or Azure reports other than ours fails the upload."""
    import dataclasses

    case = MAKERS[name](cloud_env)
    store = case.store
    if name == "gcs":
        real = store._bucket.get_blob

        def altered(*args, **kwargs):
            blob = real(*args, **kwargs)
            if blob is not None:  # None: the write-once check before the upload
                blob.crc32c = "AAAAAA=="
            return blob
        monkeypatch.setattr(store._bucket, "get_blob", altered)
        expected = "GCS reports .* crc32c AAAAAA=="
    else:
        real_stat = store.stat
        monkeypatch.setattr(store, "stat", lambda key: dataclasses.replace(
            real_stat(key), checksum="md5:AAAAAAAAAAAAAAAAAAAAAA=="))
        expected = "Azure reports .* md5:AAAA"
    with pytest.raises(IntegrityError, match=expected):
        store.put_stream("k", iter([os.urandom(case.part_size * 2 + 1)]))
