"""vo2dr.piperead: pg_dump's pipe read in whole pieces, whatever the writer's write sizes."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from vo2dr import piperead

# Writes N bytes (a repeatable pattern) in small writes, pausing now and then like pg_dump
# waiting on its server.
WRITER = r"""
import os, sys, time
n, step = int(sys.argv[1]), int(sys.argv[2])
data = bytes(range(256)) * (n // 256 + 1)
for i, at in enumerate(range(0, n, step)):
    os.write(1, data[at:min(at + step, n)])
    if i % 50 == 49:
        time.sleep(0.003)
"""


def _expected(n: int) -> bytes:
    return (bytes(range(256)) * (n // 256 + 1))[:n]


@pytest.mark.parametrize("n", [0, 1, 64 * 1024, 256 * 1024, 700_001])
def test_pieces_are_whole_and_in_order_from_small_writes(n):
    size = 64 * 1024
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(n), "4096"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pipe = piperead.enlarge(fd)
    lengths, h = [], hashlib.sha256()
    for piece in piperead.read_pieces(fd, size, pipe):
        lengths.append(len(piece))
        h.update(piece)  # used before the next piece overwrites the buffer
    assert proc.wait() == 0
    proc.stdout.close()
    assert h.digest() == hashlib.sha256(_expected(n)).digest()
    # Every piece is exactly ``size`` bytes except a shorter last one; none is empty.
    assert lengths == [size] * (n // size) + ([n % size] if n % size else [])


def test_the_pipe_is_enlarged_and_its_size_reported():
    proc = subprocess.Popen([sys.executable, "-c", "pass"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        assert piperead.enlarge(proc.stdout.fileno()) in (piperead.PIPE_SIZE, 65536)
    finally:
        proc.wait()
        proc.stdout.close()
