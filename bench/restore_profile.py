"""Where a restore's ``download_verify`` seconds go, per store: run in the job's environment
(``python -m bench.restore_profile --store s3 [--emulator-pid PID] [--stages ...]``) against
the latest full backup; prints one JSON object.

Stages (each a separate pass over the same backup body; wall and this process's CPU):

- ``raw_single``    the cloud SDK's own plain download of the body to /dev/null, one stream,
                    no vo2dr code (S3 ``get_object``, GCS ``download_to_file``, Azure
                    ``download_blob().readinto``): what the emulator serves to one reader;
- ``raw_parallel``  the SDK's own parallel download, as many ranges in flight as vo2dr uses
                    (S3 transfer manager, GCS ``download_chunks_concurrently`` on threads,
                    Azure ``max_concurrency``): the emulator's limit with concurrency;
- ``ranged``        vo2dr's ranged download (``read_ranges`` over ``get_range``), to nothing;
- ``decrypt``       decryption alone, from the ciphertext held in memory;
- ``decompress``    zstd alone, from the decrypted (compressed) bytes held in memory;
- ``sha256``        SHA-256 of the plaintext alone;
- ``spool_write``   writing the plaintext's size to a spool file (1 MiB writes) and fsync-free
                    close, as the restore's spool writer does;
- ``verify_copy``   the whole of vo2dr's ``download_verify`` (every check) into a spool file.

``PROFILE_PART_MIB`` and ``PROFILE_CONCURRENCY`` override the ranged download's plan (to
compare plans). ``emulator_cpu_s`` is the CPU the emulator's process group used during the
stage (from /proc), when its pid is given. ``threads_cpu_s`` splits ``verify_copy``'s CPU
among the restore's threads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
STAGES = ("raw_single", "raw_parallel", "ranged", "decrypt", "decompress", "sha256",
          "spool_write", "verify_copy")


def group_cpu(pgid: int | None) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    if not pgid:
        return 0.0
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # field 5, pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


class ThreadCpu(threading.Thread):
    """Samples the CPU of this process's threads (by Python thread name, numbered suffixes
    merged) every 50 ms, so a stage's CPU can be split among the restore's threads."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[int, tuple[str, float]] = {}
        self._done = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self.sample()
        self.base = dict(self.seen)

    def sample(self) -> None:
        for t in threading.enumerate():
            if t.native_id is None or t is self:
                continue
            try:
                stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
            except OSError:
                continue
            f = stat.rsplit(")", 1)[1].split()
            self.seen[t.native_id] = (t.name, (int(f[11]) + int(f[12])) / self._tick)

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.sample()

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        out: dict[str, float] = {}
        for tid, (name, cpu) in self.seen.items():
            cpu -= self.base.get(tid, (name, 0.0))[1]
            group = name.rstrip("0123456789_").removesuffix("-").removesuffix("_")
            out[group] = round(out.get(group, 0.0) + cpu, 3)
        return out


def timed(fn: Callable[[], Any], pgid: int | None) -> dict[str, Any]:
    cpu0, emu0, t0 = time.process_time(), group_cpu(pgid), time.monotonic()
    extra = fn()
    out = {"wall_s": round(time.monotonic() - t0, 3),
           "cpu_s": round(time.process_time() - cpu0, 3)}
    if pgid:
        out["emulator_cpu_s"] = round(group_cpu(pgid) - emu0, 3)
    if isinstance(extra, dict):
        out.update(extra)
    return out


class _Null:
    """A writable that drops everything (counts bytes)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._lock = threading.Lock()

    def write(self, b: bytes) -> int:
        with self._lock:
            self.bytes += len(b)
        return len(b)

    # S3's transfer manager and GCS's chunked download seek and write at offsets.
    def seek(self, *_: Any) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def seekable(self) -> bool:
        return True

    def flush(self) -> None:
        pass


def raw_single(store: Any, key: str, size: int) -> dict[str, Any]:
    sink = _Null()
    if store.name == "s3":
        body = store._client.get_object(Bucket=store.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(MiB):
            sink.write(chunk)
    elif store.name == "gcs":
        store._bucket.blob(key).download_to_file(sink)  # SDK defaults (md5 check included)
    else:
        store._for(key).download_blob(key).readinto(sink)  # SDK defaults (one connection)
    assert sink.bytes == size, (sink.bytes, size)
    return {"mb_per_s": round(size / MiB, 1)}


def raw_parallel(store: Any, key: str, size: int, concurrency: int,
                 part: int) -> dict[str, Any]:
    sink = _Null()
    if store.name == "s3":
        from boto3.s3.transfer import TransferConfig

        store._client.download_fileobj(store.bucket, key, sink, Config=TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=concurrency))
    elif store.name == "gcs":
        from google.cloud.storage import transfer_manager

        blob = store._bucket.get_blob(key)
        with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR")) as fh:
            transfer_manager.download_chunks_concurrently(
                blob, fh.name, chunk_size=part, max_workers=concurrency,
                worker_type=transfer_manager.THREAD, crc32c_checksum=False)
            sink.bytes = os.path.getsize(fh.name)
    else:
        store._for(key).download_blob(key, max_concurrency=concurrency).readinto(sink)
    assert sink.bytes == size, (sink.bytes, size)
    return {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True, choices=("s3", "gcs", "azure"))
    ap.add_argument("--emulator-pgid", type=int, default=0)
    ap.add_argument("--stages", default=",".join(STAGES))
    args = ap.parse_args()
    stages = args.stages.split(",")

    from vo2dr.catalog import build_catalog
    from vo2dr.settings import Settings
    from vo2dr.stores import Access, open_store
    from vo2dr.stores.ranged import CONCURRENCY, PART_SIZE, read_ranges
    from vo2dr.trust import Trust
    from vo2dr.verify import (
        decryption_keys,
        expected_context,
        load_manifest,
        spool_file,
        verify_copy,
    )

    settings = Settings.from_env()
    store = open_store(args.store, settings, Access.READ)
    trust = Trust.from_settings(settings)
    catalog = build_catalog({store.name: store}, settings.environment)
    entry = catalog.resolve(None, data_class="full", store=store.name, before=None)
    manifest = load_manifest(store, entry, trust)
    key, size = manifest.body_key, manifest.ciphertext.bytes
    pgid = args.emulator_pgid or None
    out: dict[str, Any] = {"store": store.name, "ciphertext_bytes": size,
                           "plaintext_bytes": manifest.plaintext.bytes,
                           "part_size": PART_SIZE, "concurrency": CONCURRENCY, "stages": {}}
    res = out["stages"]

    def rate(name: str, nbytes: int) -> None:
        r = res[name]
        r["mb_per_s"] = round(nbytes / 1e6 / r["wall_s"], 1) if r["wall_s"] else None

    if "raw_single" in stages:
        res["raw_single"] = timed(lambda: raw_single(store, key, size), pgid)
        rate("raw_single", size)
    if "raw_parallel" in stages:
        res["raw_parallel"] = timed(lambda: raw_parallel(store, key, size, CONCURRENCY,
                                                         PART_SIZE), pgid)
        rate("raw_parallel", size)
    cipher: list[bytes] = []
    if "ranged" in stages or {"decrypt", "decompress", "sha256"} & set(stages):
        part = int(os.environ.get("PROFILE_PART_MIB", PART_SIZE // MiB)) * MiB
        conc = int(os.environ.get("PROFILE_CONCURRENCY", CONCURRENCY))
        res["ranged"] = timed(lambda: cipher.extend(read_ranges(
            store, key, size, part_size=part, concurrency=conc)), pgid)
        res["ranged"].update(part_mib=part // MiB, concurrency=conc)
        rate("ranged", size)
    keys, _ = decryption_keys(manifest, None, trust)
    compressed: list[bytes] = []
    if {"decrypt", "decompress", "sha256"} & set(stages):
        from vo2dr.crypto import decrypt_stream

        def decrypt() -> None:
            compressed.extend(decrypt_stream(iter(cipher), expected_context=expected_context(
                manifest), **keys))

        res["decrypt"] = timed(decrypt, None)
        rate("decrypt", size)
    cipher.clear()

    def plain() -> Iterator[bytes]:
        from vo2dr.verify import _decompress

        yield from _decompress(iter(compressed), manifest.compression)

    if "decompress" in stages:
        res["decompress"] = timed(lambda: sum(len(c) for c in plain()), None)
        rate("decompress", manifest.plaintext.bytes)
    if "sha256" in stages:
        piece = os.urandom(MiB)

        def sha() -> None:
            h = hashlib.sha256()
            for _ in range(manifest.plaintext.bytes // MiB):
                h.update(piece)

        res["sha256"] = timed(sha, None)
        rate("sha256", manifest.plaintext.bytes)
    compressed.clear()
    if "spool_write" in stages:
        piece = os.urandom(MiB)
        path = spool_file(settings.spool_dir or None)

        def write() -> None:
            with open(path, "wb") as fh:
                for _ in range(manifest.plaintext.bytes // MiB):
                    fh.write(piece)

        try:
            res["spool_write"] = timed(write, None)
        finally:
            path.unlink(missing_ok=True)
            path.parent.rmdir()
        rate("spool_write", manifest.plaintext.bytes)
    if "verify_copy" in stages:
        path = spool_file(settings.spool_dir or None)

        def verify() -> dict[str, Any]:
            threads = ThreadCpu()
            threads.start()
            with open(path, "wb") as fh:
                r = verify_copy(store, entry, trust=trust, spool=fh)
            assert r.ok, r.problems
            return {"threads_cpu_s": threads.stop()}

        try:
            res["verify_copy"] = timed(verify, pgid)
        finally:
            path.unlink(missing_ok=True)
            path.parent.rmdir()
        rate("verify_copy", size)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
