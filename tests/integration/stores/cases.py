"""Building a store under test: a fresh bucket or container on whichever local server the
environment points at, and the smallest part size the service allows, so multi-part uploads
stay small and fast."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import BlobServiceClient
from vo2dr.stores.azure_blob import AzureBlobStore
from vo2dr.stores.base import BackupStore
from vo2dr.stores.gcs import GcsStore
from vo2dr.stores.gcs import make_client as gcs_client
from vo2dr.stores.s3 import S3Store
from vo2dr.stores.s3 import make_client as s3_client

KiB = 1024
MiB = 1024 * KiB
STORE_NAMES = ("s3", "gcs", "azure")


@dataclass
class StoreCase:
    """A store under test, with its part size and the raw SDK handles the checks need."""

    name: str
    store: BackupStore
    part_size: int
    bucket: str
    sdk: Any = None  # boto3 S3 client / google Bucket / azure ContainerClient
    kms: Any = None
    kms_key_id: str = ""

    def parts_used(self, key: str) -> int | None:
        """How many parts/blocks the service assembled the object from (None: not visible)."""
        if self.name == "s3":
            etag = self.sdk.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
            return int(etag.rsplit("-", 1)[1]) if "-" in etag else 1
        if self.name == "azure":
            committed, _ = self.sdk.get_blob_client(key).get_block_list("committed")
            return len(committed)
        return None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def moto_only_s3_case(monkeypatch: Any, moto: Any) -> StoreCase:
    """An S3 store on the session's moto server alone: no AWS_ or VO2DR_ variable of the caller's
    environment leaks in (no GCS or Azure emulator needed)."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "VO2DR_")):
            monkeypatch.delenv(var, raising=False)
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    return make_s3_case(dict(moto.env))


def make_s3_case(env: dict[str, str], **store_kwargs: Any) -> StoreCase:
    s3, kms = s3_client(), s3_client("kms")
    bucket = unique("vo2dr-s3")
    s3.create_bucket(Bucket=bucket)
    key_id = kms.create_key(Description="vo2dr test")["KeyMetadata"]["KeyId"]
    store = S3Store(bucket, key_id, part_size=5 * MiB, **store_kwargs)
    return StoreCase("s3", store, 5 * MiB, bucket, sdk=s3, kms=kms, kms_key_id=key_id)


def make_gcs_case(env: dict[str, str], **store_kwargs: Any) -> StoreCase:
    client = gcs_client()
    bucket = unique("vo2dr-gcs")
    client.create_bucket(bucket)
    store = GcsStore(bucket, chunk_size=256 * KiB, **store_kwargs)
    return StoreCase("gcs", store, 256 * KiB, bucket, sdk=client.bucket(bucket))


def make_azure_case(env: dict[str, str], **store_kwargs: Any) -> StoreCase:
    service = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
    name = unique("vo2dr-az")
    container = service.create_container(name)
    url = f"{service.url.rstrip('/')}/{name}"
    store = AzureBlobStore(url, block_size=1 * MiB, **store_kwargs)
    return StoreCase("azure", store, 1 * MiB, name, sdk=container)


MAKERS = {"s3": make_s3_case, "gcs": make_gcs_case, "azure": make_azure_case}
