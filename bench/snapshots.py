"""``make bench`` section: incremental snapshots of the uploads bucket (issue 17).

At each object count (``BENCH_SNAPSHOT_OBJECTS``, default 2,000 and 20,000, about 50 kB each
on average, so about 100 MB and 1 GB) it starts its own moto, GCS emulator and Azurite, sets up
the three clouds from the staging stack (:mod:`dev.localcloud`), fills the stack's uploads
origin (``s3://vo2max-uploads-staging/uploads/``, nested prefixes, sizes from 1 kB to a few
MB, random bytes: photos do not compress) and measures, as child processes (wall, CPU, peak RSS
of the process tree):

- ``initial``  ``vo2dr backup --source assets``: the first snapshot, everything new, to the
  three clouds, encrypted once;
- ``sync``     an ``aws s3 sync``-style copy of the same origin to one bucket in the same moto
  (list, then GET and PUT each object, 10 in flight, the AWS CLI's default concurrency):
  no encryption, no second or third cloud, no index;
- ``listing``  listing the origin alone (the floor of any incremental run);
- ``second``   ``vo2dr backup --source assets`` after 1 % of the objects were rewritten and a
  few deleted: the bytes it uploaded are measured in each store's listing of the content pool
  (not by the job's own counters) against the bytes changed.

Targets: the second snapshot uploads within 10 % of the changed bytes; its time is dominated
by listing (listing is at least half of its time beyond the fixed start-up cost, measured as
a snapshot of an empty origin); peak RSS is flat from the smallest to the largest count.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TITLE = "Snapshots (assets and uploads, issue 17)"
DEFAULT_COUNTS = (2_000, 20_000)
MEAN_SIZE = 50_000
CHANGED_FRACTION = 0.01
DELETED = 5
TARGET_UPLOAD_OVER_CHANGED = 1.10
TARGET_LISTING_SHARE = 0.5
TARGET_RSS_GROWTH = 1.25
SYNC_CONCURRENCY = 10  # the AWS CLI's default max_concurrent_requests
ORIGIN_BUCKET = "vo2max-uploads-staging"
ORIGIN_PREFIX = "uploads/"


def counts() -> list[int]:
    raw = os.environ.get("BENCH_SNAPSHOT_OBJECTS", "")
    return [int(x) for x in raw.split(",") if x.strip()] or list(DEFAULT_COUNTS)


def sizes(n: int, seed: int = 17) -> list[int]:
    """Object sizes with a mean of about MEAN_SIZE: mostly photos of tens of kB, a few
    thumbnails, one in 200 a multi-MB video."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 200 == 199:
            out.append(rng.randint(2_000_000, 4_000_000))
        elif i % 7 == 0:
            out.append(rng.randint(1_000, 8_000))
        else:
            out.append(rng.randint(10_000, 60_000))
    scale = MEAN_SIZE * n / sum(out)
    return [max(1, int(s * scale)) for s in out]


def key_of(i: int) -> str:
    return f"{ORIGIN_PREFIX}users/{i % 257:04d}/{i // 257 % 13:02d}/photo-{i:06d}.jpg"


def fill(s3: Any, bucket: str, keys: list[str], lengths: list[int]) -> int:
    def put(args: tuple[str, int]) -> int:
        key, size = args
        s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))
        return size

    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(put, zip(keys, lengths, strict=True)))


def content_bytes(cloud: Any) -> dict[str, dict[str, int]]:
    """Each store's own listing of the assets content pool: key -> stored size."""
    from dev.localcloud import list_objects

    prefix = "application/staging/assets/content/"
    out: dict[str, dict[str, int]] = {}
    for obj in list_objects(cloud, prefix):
        out.setdefault(obj.store, {})[obj.key] = obj.size
    return out


# -- the aws s3 sync-style baseline, run as its own process so it is measured alike -----------

def sync_main(source: str, target: str) -> None:
    """List ``source`` (bucket/prefix) and copy every object missing from ``target`` (a bucket)
    by GET and PUT, SYNC_CONCURRENCY at once, as ``aws s3 sync`` does through a client."""
    import boto3

    bucket, prefix = source.split("/", 1)
    s3 = boto3.session.Session().client("s3")
    have = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target):
        have.update(o["Key"] for o in page.get("Contents", []))
    todo = [o for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])
        if o["Key"] not in have]

    def copy(obj: dict[str, Any]) -> int:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        s3.put_object(Bucket=target, Key=obj["Key"], Body=body)
        return len(body)

    with ThreadPoolExecutor(SYNC_CONCURRENCY) as pool:
        copied = sum(pool.map(copy, todo))
    print(json.dumps({"objects": len(todo), "bytes": copied}))


def listing_main(source: str) -> None:
    import boto3

    bucket, prefix = source.split("/", 1)
    s3 = boto3.session.Session().client("s3")
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        n += len(page.get("Contents", []))
    print(json.dumps({"objects": n}))


# -- one object count ---------------------------------------------------------------------------

def at_count(n: int, log: Any) -> dict[str, Any]:
    import boto3

    from bench.common import logged, measure
    from dev import localcloud, servers
    from dev.demo import vo2dr_exe

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vo2dr-bench-snap-")))
        services = [stack.enter_context(servers.moto_server(tmp)),
                    stack.enter_context(servers.gcs_emulator(tmp)),
                    stack.enter_context(servers.azurite(tmp))]
        cloud = localcloud.create(services, tmp)
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith(("AWS_", "GOOGLE_", "AZURE_", "VO2DR_"))},
               **cloud.env, "PYTHONWARNINGS": "ignore"}
        for k, v in cloud.env.items():  # this process's boto3 (fill, list) too
            if k.startswith(("AWS_", "STORAGE_EMULATOR", "AZURE_")):
                os.environ[k] = v
        s3 = boto3.session.Session().client("s3")
        vo2dr = [vo2dr_exe() or "vo2dr"]
        snapshot = [*vo2dr, "backup", "--source", "assets"]
        here = [sys.executable, "-m", "bench.snapshots"]

        s3.create_bucket(Bucket=ORIGIN_BUCKET)
        startup = logged("snapshot of an empty origin (start-up)", measure(snapshot, env))
        keys, lengths = [key_of(i) for i in range(n)], sizes(n)
        t = time.monotonic()
        total = fill(s3, ORIGIN_BUCKET, keys, lengths)
        log(f"  origin: {n:,} objects, {total / 1e6:,.0f} MB in {time.monotonic() - t:.0f} s")

        s3.create_bucket(Bucket="vo2max-sync-target")
        sync = logged("aws s3 sync-style copy to one bucket",
                      measure([*here, "sync", f"{ORIGIN_BUCKET}/{ORIGIN_PREFIX}",
                               "vo2max-sync-target"], env))
        before_first = content_bytes(cloud)
        initial = logged("initial snapshot to three clouds", measure(snapshot, env))
        after_first = content_bytes(cloud)

        rng = random.Random(n)
        changed = rng.sample(range(n), max(1, int(n * CHANGED_FRACTION)))
        changed_bytes = 0
        for i in changed:
            size = lengths[i]
            s3.put_object(Bucket=ORIGIN_BUCKET, Key=keys[i], Body=os.urandom(size))
            changed_bytes += size
        gone = [i for i in rng.sample(range(n), DELETED + len(changed)) if i not in changed]
        for i in gone[:DELETED]:
            s3.delete_object(Bucket=ORIGIN_BUCKET, Key=keys[i])
        listing = logged("listing the origin alone",
                         measure([*here, "list", f"{ORIGIN_BUCKET}/{ORIGIN_PREFIX}"], env))
        second = logged("second snapshot after 1 % changes", measure(snapshot, env))
        after_second = content_bytes(cloud)

    uploaded = {store: sum(v for k, v in objs.items() if k not in after_first.get(store, {}))
                for store, objs in after_second.items()}
    first_uploaded = {store: sum(v for k, v in objs.items()
                                 if k not in before_first.get(store, {}))
                      for store, objs in after_first.items()}
    out = second.get("output") or {}
    beyond_startup = second["wall_s"] - startup["wall_s"]
    return {
        "objects": n, "bytes": total, "changed_objects": len(changed),
        "changed_bytes": changed_bytes, "deleted": DELETED,
        "startup": _slim(startup), "sync": _slim(sync), "initial": _slim(initial),
        "listing": _slim(listing), "second": _slim(second),
        "initial_uploaded": first_uploaded, "second_uploaded": uploaded,
        "second_contents": out.get("contents", {}),
        "upload_over_changed": max(uploaded.values(), default=0) / changed_bytes,
        # None: the second snapshot took no longer than the empty one (start-up noise swamps the
        # run at this scale), so no share can be read from it.
        "listing_share": listing["wall_s"] / beyond_startup if beyond_startup > 0 else None,
        "initial_mb_per_s": total / 1e6 / initial["wall_s"] if initial["wall_s"] else None,
        "sync_mb_per_s": total / 1e6 / sync["wall_s"] if sync["wall_s"] else None,
    }


def _slim(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "hwm_sum_mb", "rc")
            if k in r} | ({"stderr_tail": r["stderr_tail"]} if r.get("rc") else {})


# -- the section --------------------------------------------------------------------------------

def run(ctx: Any) -> dict[str, Any]:
    from bench.common import log

    results = []
    for n in counts():
        (getattr(ctx, "log", None) or log)(f"snapshots: {n:,} objects")
        results.append(at_count(n, getattr(ctx, "log", None) or log))
    return {"counts": results}


def markdown(result: dict[str, Any]) -> list[str]:
    rows = (result.get("run") or result).get("counts", [])
    if not rows:
        return ["Not measured."]
    lines = [
        "Uploads origin in moto, snapshots to moto S3 + GCS emulator + Azurite (zstd, envelope "
        "encryption once, three stores at once); the baseline copies the same objects to one "
        "bucket, unencrypted. The second snapshot follows 1 % of the objects rewritten and "
        f"{DELETED} deleted; its uploaded bytes are summed from each store's listing of the "
        "content pool.", "",
        "| objects | data | initial snapshot (3 clouds) | sync-style copy (1 bucket) | "
        "listing alone | second snapshot | changed | uploaded (max of stores) | peak RSS "
        "initial / second |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        up = max(r["second_uploaded"].values(), default=0)
        lines.append(
            f"| {r['objects']:,} | {r['bytes'] / 1e6:,.0f} MB | {r['initial']['wall_s']:.1f} s "
            f"({r['initial_mb_per_s'] or 0:.1f} MB/s) | {r['sync']['wall_s']:.1f} s "
            f"({r['sync_mb_per_s'] or 0:.1f} MB/s) | {r['listing']['wall_s']:.1f} s | "
            f"{r['second']['wall_s']:.1f} s | {r['changed_bytes'] / 1e6:,.2f} MB | "
            f"{up / 1e6:,.2f} MB (x{r['upload_over_changed']:.3f}) | "
            f"{r['initial']['peak_rss_mb']:.0f} / {r['second']['peak_rss_mb']:.0f} MB |")
    lines += ["", "Start-up (a snapshot of an empty origin: imports, KMS, signing, listing "
              "the stores): " + ", ".join(f"{r['startup']['wall_s']:.1f} s" for r in rows)
              + ". Listing share of the second snapshot beyond start-up: "
              + ", ".join("n/a" if r["listing_share"] is None else f"{r['listing_share']:.0%}"
                          for r in rows) + "."]
    return lines


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    from bench.common import verdict

    rows = (result.get("run") or result).get("counts", [])
    if not rows:
        return []
    out = []
    big = max(rows, key=lambda r: r["objects"])
    ok = all(r["second"]["rc"] == 0 and r["initial"]["rc"] == 0 for r in rows)
    for r in rows:
        up = max(r["second_uploaded"].values(), default=0)
        out.append(verdict(
            f"snapshots, {r['objects']:,} objects: second snapshot uploads ≈ changed bytes",
            f"{up / 1e6:.2f} MB for {r['changed_bytes'] / 1e6:.2f} MB changed",
            r["upload_over_changed"], f"≤ {TARGET_UPLOAD_OVER_CHANGED}",
            ok and r["changed_bytes"] <= up <= TARGET_UPLOAD_OVER_CHANGED * r["changed_bytes"]))
    share = big["listing_share"]
    out.append(verdict(
        f"snapshots, {big['objects']:,} objects: second snapshot time dominated by listing",
        f"listing {big['listing']['wall_s']:.1f} s of {big['second']['wall_s']:.1f} s "
        f"(start-up {big['startup']['wall_s']:.1f} s)", share,
        f"≥ {TARGET_LISTING_SHARE}",
        None if share is None else ok and share >= TARGET_LISTING_SHARE,
        "not measurable: the second snapshot took no longer than the empty one's start-up"
        if share is None else "" if share >= TARGET_LISTING_SHARE else
        "uploads of the changed objects and reading the base index take the rest"))
    small = min(rows, key=lambda r: r["objects"])
    if small is not big:
        peak = max(big["initial"]["peak_rss_mb"], big["second"]["peak_rss_mb"])
        base = max(small["initial"]["peak_rss_mb"], small["second"]["peak_rss_mb"])
        growth = peak / base if base else None
        out.append(verdict(
            f"snapshots: peak RSS flat from {small['objects']:,} to {big['objects']:,} objects",
            f"{base:.0f} MB → {peak:.0f} MB", growth, f"≤ {TARGET_RSS_GROWTH}",
            ok and growth is not None and growth <= TARGET_RSS_GROWTH))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["sync"]:
        sync_main(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["list"]:
        listing_main(sys.argv[2])
    else:
        from bench.common import log

        class _Ctx:
            log = staticmethod(log)

        doc = run(_Ctx())
        print("\n".join(markdown(doc)))
        print(json.dumps(targets(doc), indent=2))
