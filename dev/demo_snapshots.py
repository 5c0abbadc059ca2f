"""The demo's snapshot sources (issue 17): the app's uploads bucket and its log drain in moto,
snapshotted incrementally into the three clouds.

Uploads: a few hundred objects under nested prefixes, a few of some MB and one larger than the
S3 store's multipart part size. A first snapshot, then 1 % of the objects changed and a few
deleted, a second snapshot: the demo shows from the signed manifests and from the content pool
itself that only the changed bytes moved. Then the first snapshot is restored (from GCS, with
the offline recovery key only) into a new directory and compared with the bucket as it was,
deleted objects included. Logs: the drain's application and security prefixes, one snapshot,
the security logs alone restored from Azure and compared.

Called by ``dev/demo.py`` with its step record and job runner (``run(record, env, work,
recovery_key, run_job, parse)``)."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

UPLOAD_COUNT = 300
MB = 1024 * 1024


def _s3(env: dict[str, str]) -> Any:
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def origins(env: dict[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    """source -> origin name -> (bucket, prefix), from the strategy the jobs run with."""
    from vo2dr.settings import Settings

    app = Settings.from_env(env).strategy().application
    snapshots = app.snapshots if app is not None else {}
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for kind, spec in snapshots.items():
        for name, url in spec.origins.items():
            parsed = urlparse(url)
            out.setdefault(kind, {})[name] = (parsed.netloc, parsed.path.lstrip("/"))
    return out


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Bucket:
    """An origin prefix in moto, and what the demo put there (entry key -> SHA-256)."""

    def __init__(self, client: Any, bucket: str, prefix: str, name: str) -> None:
        self.client, self.bucket, self.prefix, self.name = client, bucket, prefix, name
        self.state: dict[str, str] = {}
        self.sizes: dict[str, int] = {}

    def put(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + rel, Body=data)
        self.state[f"{self.name}/{rel}"] = _digest(data)
        self.sizes[f"{self.name}/{rel}"] = len(data)

    def delete(self, rel: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + rel)
        self.state.pop(f"{self.name}/{rel}")
        self.sizes.pop(f"{self.name}/{rel}")


def fill_uploads(b: Bucket, rng: random.Random) -> None:
    for i in range(UPLOAD_COUNT):
        user = f"users/u{i % 23:02d}"
        kind = ("activities", "avatars", "exports")[i % 3]
        ext = {"activities": "fit", "avatars": "jpg", "exports": "gpx"}[kind]
        b.put(f"{user}/{kind}/{2024 + i % 3}/{i:04d}.{ext}",
              rng.randbytes(rng.randint(200, 40_000)))
    for i in range(3):  # MB-sized
        b.put(f"videos/intro-{i}.mp4", rng.randbytes((1 + i) * MB + 123))
    b.put("backfill/archive-2023.zip", rng.randbytes(12 * MB + 5))  # over the 8 MiB part size


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): _digest(p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def _content_count(env: dict[str, str], kind: str) -> int:
    """Content objects of ``kind`` in the S3 store (the demo's view of the pool)."""
    from vo2dr.layout import content_prefix

    pages = _s3(env).get_paginator("list_objects_v2").paginate(
        Bucket=env["VO2DR_S3_BUCKET"], Prefix=content_prefix(env["VO2DR_ENVIRONMENT"], kind))
    return sum(len(p.get("Contents", [])) for p in pages)


def run(record: Any, env: dict[str, str], work: Path, recovery_key: Path,
        run_job: Callable[..., tuple[int, str, float]], parse: Callable[[str], Any]) -> None:
    found = origins(env)
    if "assets" not in found or "logs" not in found:
        record.add("snapshots", "skipped", "no assets/logs source in the strategy")
        return
    client = _s3(env)
    rng = random.Random(2026)
    started = time.monotonic()
    (name, (bucket, prefix)), = found["assets"].items()
    for bkt in {bkt for o in found.values() for bkt, _ in o.values()}:
        client.create_bucket(Bucket=bkt)
        client.put_bucket_versioning(Bucket=bkt, VersioningConfiguration={"Status": "Enabled"})
    uploads = Bucket(client, bucket, prefix, name)
    fill_uploads(uploads, rng)
    total = sum(uploads.sizes.values())
    record.add("uploads bucket", "ok", f"s3://{bucket}/{prefix}: {len(uploads.state)} objects, "
               f"{total / MB:.1f} MB (nested prefixes, 3 MB-sized, one of 12 MB: multipart)",
               time.monotonic() - started)

    def job(title: str, args: list[str], detail: Callable[[Any], str] = lambda d: "") -> Any:
        rc, out, secs = run_job(args, env, capture=True)
        doc = parse(out)
        record.reports[title] = doc if doc is not None else out
        text = ""
        if rc == 0 and doc is not None:
            try:
                text = detail(doc)
            except (KeyError, TypeError, IndexError):
                text = ""
        record.add(title, "ok" if rc == 0 else "failed",
                   text + ("" if rc == 0 else f" (exit {rc})"), secs)
        return doc if rc == 0 else None

    def moved(doc: Any) -> str:
        c = doc["contents"]
        return (f"{doc['backup_id']}: {c['objects']} objects, {c['new_objects']} new "
                f"({c['new_bytes'] / MB:.2f} MB of {c['bytes'] / MB:.1f} MB)")

    at_first = dict(uploads.state)
    first = job("snapshot assets", ["backup", "--source", "assets"], moved)
    pool_first = _content_count(env, "assets")

    # 1 % of the objects changed (overwritten by the app), a few deleted, one added.
    keys = sorted(k.removeprefix(f"{name}/") for k in uploads.state
                  if k.endswith((".fit", ".jpg", ".gpx")))
    changed = rng.sample(keys, len(keys) // 100)
    for rel in changed:
        uploads.put(rel, rng.randbytes(rng.randint(500, 30_000)))
    deleted = [k for k in keys if k not in changed][:4]
    for rel in deleted:
        uploads.delete(rel)
    uploads.put("users/u99/avatars/new.jpg", rng.randbytes(4321))
    changed_bytes = sum(uploads.sizes[f"{name}/{k}"] for k in [*changed,
                                                              "users/u99/avatars/new.jpg"])
    second = job("snapshot assets after 1 % changes", ["backup", "--source", "assets"], moved)
    pool_second = _content_count(env, "assets")
    if first and second:
        c = second["contents"]
        new_content = pool_second - pool_first
        ok = c["new_bytes"] == changed_bytes and new_content == len(changed) + 1
        record.add("only the new bytes moved", "ok" if ok else "failed",
                   f"changed {len(changed) + 1} objects / {changed_bytes:,} bytes in the bucket; "
                   f"the second snapshot read and uploaded {c['new_objects']} objects / "
                   f"{c['new_bytes']:,} plaintext bytes ({_fmt(c.get('uploaded_bytes'))} "
                   f"stored per cloud), {new_content} new content objects in S3; "
                   f"{c['objects'] - c['new_objects']} unchanged objects neither downloaded "
                   "nor uploaded")

    job("vo2dr list --kind assets", ["list", "--kind", "assets", "--json"],
        lambda d: ", ".join(f"{s['snapshot_id']} {s['objects']} objects, new "
                            f"{s['new_bytes'] / MB:.2f} MB" + (" (partial)" if s["partial"]
                                                              else "")
                            for s in d["snapshots"]))
    job("verify assets from s3 (random sample)",
        ["verify", "--kind", "assets", "--source", "s3", "--sample", "50"],
        lambda d: f"index + {d['copies'][0]['checked']} sampled objects decrypted and hashed")

    target = work / "restored-uploads-first"
    if first:
        done = job("restore the first snapshot from gcs (recovery key)",
                   ["restore", "--kind", "assets", "--source", "gcs", "--snapshot",
                    first["backup_id"], "--target-dir", str(target), "--recovery-key",
                    str(recovery_key), "--no-progress"],
                   lambda d: f"{d['restored']['objects']} objects into {target.name}/")
        if done:
            got = _tree(target)
            gone = [f"{name}/{k}" for k in deleted]
            same = got == at_first
            record.add("restored copy", "ok" if same else "failed",
                       f"{len(got)} files byte-identical to the bucket at the first snapshot, "
                       f"including the {len(gone)} objects deleted since" if same else
                       f"differs: {len(set(got) ^ set(at_first))} keys, "
                       f"{sum(1 for k in got if at_first.get(k) != got[k])} contents")

    # The log drain: application and security logs, one snapshot, security restored alone.
    logs = {n: Bucket(client, b, p, n) for n, (b, p) in found["logs"].items()}
    for n, b in logs.items():
        for day in range(1, 4):
            for i in range(20):
                b.put(f"2026/11/{day:02d}/{n}-{i:03d}.log.gz",
                      rng.randbytes(rng.randint(2000, 60_000)))
    job("snapshot logs", ["backup", "--source", "logs"], moved)
    if "security" in logs:
        sec = work / "restored-security-logs"
        if job("restore the security logs from azure",
               ["restore", "--kind", "logs", "--source", "azure", "--prefix", "security/",
                "--target-dir", str(sec), "--no-progress"],
               lambda d: f"{d['restored']['objects']} objects"):
            want = {k: v for k, v in logs["security"].state.items()}
            got = _tree(sec)
            record.add("restored security logs", "ok" if got == want else "failed",
                       f"{len(got)} files byte-identical, no application log among them"
                       if got == want else "differ from the drain")
    job("prune assets (dry run)", ["prune", "--kind", "assets", "--dry-run", "--lock-days", "1"],
        lambda d: "; ".join(f"{r['store']}: {r['referenced']} referenced of "
                            f"{r['content_objects']} content objects, would mark {r['marked']}"
                            for r in d["stores"]))


def _fmt(n: Any) -> str:
    if isinstance(n, dict):
        return ", ".join(f"{k} {v:,} B" for k, v in n.items())
    return f"{n:,} B" if isinstance(n, int) else "?"
