"""Fixtures for the snapshot sources: an uploads bucket and a log drain bucket in moto (the
origins, read-only to the job), the three backup stores, and settings whose strategy snapshots
``assets`` (origin ``uploads``) and ``logs`` (origins ``application`` and ``security``).

Snapshots are taken with the real write path (``vo2dr backup --source assets|logs``), so every
read-side test reads what the job really writes."""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from vo2dr.cli import main
from vo2dr.settings import Settings

from tests import signing_keys
from tests.buckets import Buckets, make_buckets
from tests.cli_env import job_env
from tests.snapshot_strategy import UPLOADS_PREFIX, strategy_json


@dataclass
class Origin:
    """A bucket of the app (not a backup store): objects by key, as the app writes them."""

    bucket: str
    client: object = field(default=None, repr=False)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)  # type: ignore[attr-defined]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)  # type: ignore[attr-defined]

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        out = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(  # type: ignore[attr-defined]
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for o in page.get("Contents", []):
                out[o["Key"]] = self.client.get_object(  # type: ignore[attr-defined]
                    Bucket=self.bucket, Key=o["Key"])["Body"].read()
        return out


def fill_uploads(origin: Origin, rng: random.Random, n: int = 40) -> None:
    """``n`` objects under nested prefixes, a few empty and one of 3 MB."""
    for i in range(n):
        size = rng.choice((0, 10, 1000, 20_000, 150_000)) if i % 7 else 512
        key = f"{UPLOADS_PREFIX}users/u{i % 5}/{'avatars' if i % 2 else 'activities'}/f{i:03d}.bin"
        origin.put(key, rng.randbytes(size))
    origin.put(f"{UPLOADS_PREFIX}exports/big.fit", rng.randbytes(3 * 1024 * 1024 + 17))
    origin.put(f"{UPLOADS_PREFIX}README.txt", "naïve café ✓\n".encode())


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, by its relative POSIX path."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def entries(origin_objects: dict[str, bytes], bucket_prefix: str, name: str) -> dict[str, bytes]:
    """Origin keys -> snapshot entry keys (``<origin name>/<key under the origin prefix>``)."""
    return {f"{name}/{k[len(bucket_prefix):]}": v for k, v in origin_objects.items()
            if k.startswith(bucket_prefix)}


@dataclass
class Snap:
    settings: Settings
    buckets: Buckets
    uploads: Origin
    drain: Origin
    recovery_private: bytes
    rng: random.Random

    def env(self) -> dict[str, str]:
        return job_env(self.settings)

    def assets_now(self) -> dict[str, bytes]:
        return entries(self.uploads.objects(UPLOADS_PREFIX), UPLOADS_PREFIX, "uploads")


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def take(capsys, kind: str = "assets") -> dict:
    """One snapshot through the real write path; its summary."""
    code, doc, err = run_cli(capsys, "backup", "--source", kind)
    assert code == 0, err
    assert doc is not None
    return doc


@pytest.fixture(scope="session")
def snapshot_recovery_keys(session_recovery_keys) -> tuple[bytes, bytes]:
    return session_recovery_keys


@pytest.fixture
def snap(cloud_env, snapshot_recovery_keys, monkeypatch) -> Snap:
    s3 = boto3.client("s3")
    run = uuid.uuid4().hex[:8]
    uploads = Origin(f"vo2max-uploads-{run}", s3)
    drain = Origin(f"vo2max-log-drain-{run}", s3)
    for o in (uploads, drain):
        s3.create_bucket(Bucket=o.bucket)
        s3.put_bucket_versioning(Bucket=o.bucket, VersioningConfiguration={"Status": "Enabled"})
    rng = random.Random(17)
    fill_uploads(uploads, rng)
    for i in range(6):
        drain.put(f"application/2026/11/30/app-{i:02d}.log", f"GET /api/{i} 200\n".encode() * 50)
        drain.put(f"security/2026/11/30/auth-{i:02d}.log", f"login ok user{i}\n".encode() * 20)
    drain.put("other/not-a-log-origin.txt", b"outside every origin")
    kms = boto3.client("kms").create_key(Description="vo2dr snapshots")["KeyMetadata"]["Arn"]
    b = make_buckets("vo2dr-snap")
    settings = Settings(
        environment="staging", s3_bucket=b.s3, gcs_bucket=b.gcs, azure_container_url=b.azure_url,
        kms_key_id=kms, recovery_public_key=snapshot_recovery_keys[1].decode(),
        **signing_keys.SETTINGS, strategy_json=strategy_json(uploads.bucket, drain.bucket))
    out = Snap(settings=settings, buckets=b, uploads=uploads, drain=drain,
               recovery_private=snapshot_recovery_keys[0], rng=rng)
    for k, v in out.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("VO2DR_SPOOL_DIR", os.environ.get("TMPDIR", "/tmp"))
    return out


def change_one_percent(snap: Snap) -> tuple[list[str], list[str], list[str]]:
    """Overwrite two objects, delete three, add one: (changed, deleted, added) entry keys."""
    keys = sorted(snap.uploads.objects(UPLOADS_PREFIX))
    small = [k for k in keys if k.endswith(".bin")]
    changed, deleted = small[:2], small[5:8]
    for k in changed:
        snap.uploads.put(k, snap.rng.randbytes(4096))
    for k in deleted:
        snap.uploads.delete(k)
    added = f"{UPLOADS_PREFIX}users/u9/new/added.bin"
    snap.uploads.put(added, snap.rng.randbytes(777))
    strip = len(UPLOADS_PREFIX)
    return ([f"uploads/{k[strip:]}" for k in changed], [f"uploads/{k[strip:]}" for k in deleted],
            [f"uploads/{added[strip:]}"])
