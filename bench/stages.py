"""The backup pipeline's cost per stage, on one dump file, in one process (``python -m
bench.stages FILE LEVEL``; prints JSON). Each stage runs alone over the whole dump, with the
production code (``vo2dr.pipeline.compress``, ``vo2dr.crypto.Encryptor``, the pipeline's
fan-out), and is timed by the CPU time of this process (every thread), so the numbers add up:

- ``read``: the dump through a pipe from another process, read as ``vo2dr.dump`` reads it
  (``vo2dr.piperead``, pieces of ``vo2dr.dump.READ_SIZE``);
- ``sha256_plaintext``, ``compress``, ``encrypt`` (``vo2dr.pipeline.CHUNK_SIZE`` frames, as
  the backup encrypts), ``sha256_ciphertext``;
- ``fanout_3``: three uploader threads taking every ciphertext chunk from their queues and
  counting it, which is all a null destination does (the stores leave the SHA-256 of a streamed
  body to the pipeline: ``vo2dr.stores.base.PutResult``);
- ``pipeline``: ``run_pipeline`` end to end with three null destinations, from the pipe;
- ``zstd_oneshot``: the limit: one call of the zstd library over the file (C, no Python
  between chunks) at the same level, no hashing, no encryption.

MB are of the dump (the plaintext), per CPU-second.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

READ = 1024 * 1024  # the one-shot zstd's read and write size
READ_SIZE = 4 * 1024 * 1024  # as vo2dr.dump.READ_SIZE (not imported: it loads psycopg)


def _cpu() -> float:
    return time.process_time()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = _cpu()
    out = fn()
    return _cpu() - t, out


def piped(path: Path) -> Iterator[memoryview]:
    """The file through a pipe from ``cat``, read as vo2dr.dump reads pg_dump's stdout."""
    from vo2dr import piperead

    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    yield from piperead.read_pieces(fd, READ_SIZE, piperead.enlarge(fd))
    proc.wait()


def oneshot(path: Path, level: int) -> dict[str, Any]:
    import zstandard

    size = path.stat().st_size
    with open(path, "rb") as src, open(os.devnull, "wb") as dst:
        cpu, (_, written) = timed(lambda: zstandard.ZstdCompressor(level=level).copy_stream(
            src, dst, read_size=READ, write_size=READ))
    return {"level": level, "plaintext_bytes": size, "compressed_bytes": written,
            "cpu_s": round(cpu, 3), "mb_per_cpu_s": round(size / 1e6 / cpu, 1),
            "ratio": round(size / written, 3)}


def stages(path: Path, level: int) -> dict[str, Any]:
    from vo2dr.crypto import Encryptor, generate_recovery_key
    from vo2dr.pipeline import CHUNK_SIZE, compress, run_pipeline
    from vo2dr.stores.null import NullStore

    _, public = generate_recovery_key(3072)
    enc = Encryptor(kms_key_id="", recovery_public_key_pem=public, context={"bench": "1"},
                    frame_length=CHUNK_SIZE)
    list(enc.stream(iter([b"warm up: the SDK's imports are start-up, not a stage"])))

    size = path.stat().st_size
    out: dict[str, Any] = {"plaintext_bytes": size, "level": level}
    cpu: dict[str, float] = {}
    cpu["read"], _ = timed(lambda: sum(len(c) for c in piped(path)))
    plain = []  # held in memory for the stages below (not part of any stage's time)
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_SIZE):
            plain.append(chunk)

    def sha(chunks: list[bytes]) -> str:
        h = hashlib.sha256()
        for c in chunks:
            h.update(c)
        return h.hexdigest()

    cpu["sha256_plaintext"], _ = timed(lambda: sha(plain))
    cpu["compress"], compressed = timed(lambda: list(compress(iter(plain), level=level)))
    cpu["encrypt"], cipher = timed(lambda: list(enc.stream(iter(compressed))))
    cpu["sha256_ciphertext"], _ = timed(lambda: sha(cipher))

    def fanout() -> None:
        queues: list[queue.Queue] = [queue.Queue(maxsize=8) for _ in range(3)]

        def take(q: queue.Queue) -> None:
            size = 0
            while (item := q.get()) is not None:
                size += len(item)
        threads = [threading.Thread(target=take, args=(q,)) for q in queues]
        for t in threads:
            t.start()
        for c in cipher:
            for q in queues:
                q.put(c)
        for q in queues:
            q.put(None)
        for t in threads:
            t.join()

    cpu["fanout_3"], _ = timed(fanout)
    plain.clear()  # free the memory before the end-to-end run
    compressed.clear()

    def pipeline() -> Any:
        stores = {f"null{i}": NullStore(f"null{i}") for i in range(3)}
        return run_pipeline(piped(path), encrypt=enc.stream, stores=stores, key="k",
                            zstd_level=level)
    cpu["pipeline"], result = timed(pipeline)
    out["ciphertext_bytes"] = result.ciphertext_bytes
    out["compressed_bytes"] = result.compressed_bytes
    out["cpu_s"] = {k: round(v, 3) for k, v in cpu.items()}
    out["mb_per_cpu_s"] = {k: round(size / 1e6 / v, 1) if v > 0 else None for k, v in cpu.items()}
    parts = sum(v for k, v in cpu.items() if k != "pipeline")
    out["sum_of_stages_cpu_s"] = round(parts, 3)
    out["zstd_oneshot"] = oneshot(path, level)
    return out


def main(argv: list[str]) -> int:
    path, level = Path(argv[0]), int(argv[1])
    mode = argv[2] if len(argv) > 2 else "stages"
    print(json.dumps(stages(path, level) if mode == "stages" else oneshot(path, level)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
