"""A fresh bucket in each local store (moto S3, the GCS emulator, Azurite), for integration tests.
The SDKs find the servers through the standard variables that ``cloud_env`` sets."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import boto3


@dataclass(frozen=True)
class Buckets:
    s3: str
    gcs: str
    azure_url: str  # the container's URL, as VO2DR_AZURE_CONTAINER_URL takes it


def make_buckets(prefix: str = "vo2dr") -> Buckets:
    from azure.storage.blob import BlobServiceClient
    from vo2dr.layout import intraday_container
    from vo2dr.stores.gcs import make_client

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    # Object Lock on, as in every stack: the job locks intraday objects itself (no default
    # retention here, so the tests can still remove what they must).
    boto3.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    make_client().create_bucket(name)
    conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    service = BlobServiceClient.from_connection_string(conn)
    service.create_container(name)
    # The intraday tier's container beside it (vo2dr.stores.azure_blob says why).
    service.create_container(intraday_container(name))
    endpoint = conn.split("BlobEndpoint=")[1].split(";")[0].rstrip("/")
    return Buckets(name, name, f"{endpoint}/{name}")
