"""The intraday tier's own, shorter lock, set by the request that creates the object.

S3: the bucket's default retention (``immutability.lockDays``) locks every object that does not
say otherwise. The AWS S3 User Guide (Object Lock overview, "Retention periods") says: "If your
request to place an object version in a bucket contains an explicit retention mode and period,
those settings override any bucket default settings for that object version", and ("Default
retention settings") "Default settings apply to all new objects that are placed in the bucket,
unless you explicitly specify a different retention mode and period for an object when you
create it". A new version has no lock yet, so a retain-until date *shorter* than the default is
no shortening and is accepted in either mode; only an existing lock cannot be shortened
(compliance) or needs s3:BypassGovernanceRetention (governance). The guide's tip also says S3
"rejects any request to put an object that includes a retention mode and setting" from a
principal denied retention permissions: hence the writer's s3:PutObjectRetention.

moto stores the lock of PutObject (read back with ``head_object``) but drops it from
CreateMultipartUpload, so for multipart uploads the request sent is asserted instead.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from vo2dr.exceptions import StoreError
from vo2dr.stores.base import ObjectLock
from vo2dr.stores.s3 import S3Store
from vo2dr.stores.s3 import make_client as s3_client

from tests.integration.stores.cases import MiB, unique

pytestmark = pytest.mark.integration

DEFAULT_DAYS = 30
KEY = "database/production/intraday/critical/20261125T121500Z-0123456789ab"


@pytest.fixture
def locked_bucket(monkeypatch, moto) -> tuple[Any, str, str]:
    """A bucket like production's: Object Lock on, COMPLIANCE default retention of 30 days."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "VO2DR_")):
            monkeypatch.delenv(var, raising=False)
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    s3 = s3_client()
    bucket = unique("vo2dr-lock")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": DEFAULT_DAYS}}})
    key_id = s3_client("kms").create_key(Description="vo2dr test")["KeyMetadata"]["KeyId"]
    return s3, bucket, key_id


def sent_headers(store: S3Store, operation: str) -> list[dict[str, str]]:
    """The headers of every ``operation`` request the store sends."""
    seen: list[dict[str, str]] = []
    store._client.meta.events.register(
        f"before-send.s3.{operation}",
        lambda request, **_: seen.append({
            k.lower(): v.decode() if isinstance(v, bytes) else v
            for k, v in request.headers.items()}))
    return seen


def test_intraday_object_is_locked_until_its_window_ends_not_the_default(locked_bucket):
    s3, bucket, key_id = locked_bucket
    store = S3Store(bucket, key_id, part_size=5 * MiB)
    taken = datetime.now(UTC).replace(microsecond=0)
    lock = ObjectLock(until=taken + timedelta(hours=72), compliance=True)
    store.put_bytes(KEY + ".manifest.json", b"{}", lock=lock)
    head = s3.head_object(Bucket=bucket, Key=KEY + ".manifest.json")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == lock.until
    # Shorter than the bucket default that every other object gets.
    store.put_bytes("database/production/daily/critical/x.manifest.json", b"{}")
    daily = s3.head_object(Bucket=bucket, Key="database/production/daily/critical/x.manifest.json")
    assert daily["ObjectLockRetainUntilDate"] > lock.until + timedelta(days=DEFAULT_DAYS - 4)


def test_governance_stacks_lock_intraday_objects_in_governance(locked_bucket):
    s3, bucket, key_id = locked_bucket
    store = S3Store(bucket, key_id, part_size=5 * MiB)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    store.put_stream(KEY + ".dump.enc", iter([b"x" * 1000]),
                     lock=ObjectLock(until=until, compliance=False))
    head = s3.head_object(Bucket=bucket, Key=KEY + ".dump.enc")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", until)


def test_multipart_upload_asks_for_the_lock_when_it_starts(locked_bucket):
    s3, bucket, key_id = locked_bucket
    store = S3Store(bucket, key_id, part_size=5 * MiB)
    started = sent_headers(store, "CreateMultipartUpload")
    until = datetime(2026, 11, 28, 12, 15, tzinfo=UTC)
    data = os.urandom(11 * MiB)  # three parts
    store.put_stream(KEY + ".dump.enc", (data[i:i + MiB] for i in range(0, len(data), MiB)),
                     lock=ObjectLock(until=until, compliance=True))
    (headers,) = started
    assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert headers["x-amz-object-lock-retain-until-date"] == "2026-11-28T12:15:00Z"
    assert s3.get_object(Bucket=bucket, Key=KEY + ".dump.enc")["Body"].read() == data
    # Without a lock, nothing is asked: the bucket default applies.
    plain = sent_headers(store, "CreateMultipartUpload")
    store.put_stream(KEY + "-b.dump.enc", (data[i:i + MiB] for i in range(0, len(data), MiB)))
    assert plain and not any(k.startswith("x-amz-object-lock") for k in plain[-1])


# -- Azure: the intraday container --------------------------------------------------------

def test_azure_keeps_intraday_blobs_in_their_own_container(cloud_env):
    """Azurite keeps containers apart, so where each blob went is checked on the server: the
    intraday one under ``<container>-intraday`` (whose policy is the intraday lock), the daily
    one in the main container; listings merge both in key order."""
    from azure.storage.blob import BlobServiceClient
    from vo2dr.stores.azure_blob import AzureBlobStore

    service = BlobServiceClient.from_connection_string(cloud_env["AZURE_STORAGE_CONNECTION_STRING"])
    name = unique("vo2dr-az")
    service.create_container(name)
    url = f"{service.url.rstrip('/')}/{name}"
    store = AzureBlobStore(url, block_size=1 * MiB)
    lock = ObjectLock(until=datetime.now(UTC) + timedelta(days=3), compliance=True)
    intraday = KEY + ".dump.enc"
    daily = "database/production/daily/critical/20261125T000000Z-0123456789ab.dump.enc"
    # Without the intraday container, an intraday write fails loudly; listings still work.
    with pytest.raises(StoreError, match="does not exist"):
        store.put_bytes(intraday, b"intraday", lock=lock)
    assert list(store.list("")) == []
    service.create_container(name + "-intraday")
    store.put_bytes(intraday, b"intraday", lock=lock)
    store.put_bytes(daily, b"daily")
    main = service.get_container_client(name)
    side = service.get_container_client(name + "-intraday")
    assert [b.name for b in main.list_blobs()] == [daily]
    assert [b.name for b in side.list_blobs()] == [intraday]
    assert [i.key for i in store.list("database/production/")] == [daily, intraday]
    assert [i.key for i in store.list("database/production/intraday/")] == [intraday]
    assert [i.key for i in store.list("database/production/daily/")] == [daily]
    assert store.get_bytes(intraday) == b"intraday" and store.stat(intraday).size == 8
