"""Fixtures for the snapshot sources: an uploads bucket in moto (versioned, nested prefixes,
MB-sized objects and one object large enough for multipart uploads to the stores), a log
drain bucket with application and security prefixes, the three stores, a KMS key, and
settings whose strategy snapshots both."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass

import boto3
import pytest
from vo2dr.settings import Settings

from tests import signing_keys
from tests.buckets import Buckets, make_buckets
from tests.cli_env import job_env
from tests.snapshot_strategy import strategy_json

MiB = 1024 * 1024
SMALL = 50  # small objects (the demo snapshots a few hundred)
MEDIUM = 4  # MB-sized objects
LARGE_SIZE = 9 * MiB  # above the stores' 8 MiB part size: multipart / resumable / blocks


@dataclass
class Snap:
    settings: Settings
    buckets: Buckets
    uploads: str  # the origin bucket (uploads/ prefix)
    logs: str  # the log drain bucket
    recovery_private: bytes
    objects: dict[str, bytes]  # key under uploads/ -> bytes, as the origin holds them now

    def env(self) -> dict[str, str]:
        return job_env(self.settings)

    def put(self, key: str, data: bytes) -> None:
        boto3.client("s3").put_object(Bucket=self.uploads, Key=f"uploads/{key}", Body=data)
        self.objects[key] = data

    def delete(self, key: str) -> None:
        boto3.client("s3").delete_object(Bucket=self.uploads, Key=f"uploads/{key}")
        del self.objects[key]


@pytest.fixture(scope="session")
def snapshot_recovery_keys(session_recovery_keys) -> tuple[bytes, bytes]:
    return session_recovery_keys


def fill_uploads(bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    objects: dict[str, bytes] = {}
    for i in range(SMALL):
        # Nested prefixes, mixed compressibility (photos are random, JSON sidecars are not).
        user = f"users/{i % 17:04d}"
        if i % 5 == 0:
            key, data = f"{user}/meta/{i:05d}.json", json.dumps({"i": i, "pad": "x" * i}).encode()
        else:
            key, data = f"{user}/photos/{i:05d}.jpg", os.urandom(1024 + 97 * i)
        objects[key] = data
    for i in range(MEDIUM):
        objects[f"videos/clip-{i}.mp4"] = os.urandom(MiB + 4096 * i)
    objects["exports/archive.tar"] = os.urandom(LARGE_SIZE)
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=f"uploads/{key}", Body=data)
    s3.put_object(Bucket=bucket, Key="uploads-old/not-ours.jpg", Body=b"a sibling prefix")
    return objects


@pytest.fixture
def snap(cloud_env, snapshot_recovery_keys) -> Snap:
    s3 = boto3.client("s3")
    run = uuid.uuid4().hex[:8]
    uploads, logs = f"vo2max-uploads-{run}", f"vo2max-log-drain-{run}"
    s3.create_bucket(Bucket=uploads)
    s3.put_bucket_versioning(Bucket=uploads, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=logs)
    objects = fill_uploads(uploads)
    for day in range(3):
        for part in ("application", "security"):
            s3.put_object(Bucket=logs, Key=f"{part}/2026/03/0{day + 1}/{part}.log",
                          Body=(f"{part} line\n" * 5000).encode())
    kms = boto3.client("kms").create_key(Description="vo2dr snapshots")["KeyMetadata"]["Arn"]
    b = make_buckets("vo2dr-snap")
    settings = Settings(
        environment="staging", s3_bucket=b.s3, gcs_bucket=b.gcs, azure_container_url=b.azure_url,
        kms_key_id=kms, recovery_public_key=snapshot_recovery_keys[1].decode(),
        strategy_json=strategy_json(uploads, logs), **signing_keys.SETTINGS)
    return Snap(settings=settings, buckets=b, uploads=uploads, logs=logs,
                recovery_private=snapshot_recovery_keys[0], objects=objects)
