"""``ChunkReader``: the file-like view the Encryption SDK and zstd read the pipeline through.
It must return exactly ``n`` bytes until the end (the SDK takes a short read for the end)."""

from __future__ import annotations

import random

import pytest
from vo2dr.crypto import ChunkReader


@pytest.mark.parametrize("seed", range(8))
def test_reads_of_any_size_give_the_stream_back_exactly(seed: int) -> None:
    rng = random.Random(seed)
    chunks = [rng.randbytes(rng.choice([0, 1, 7, 4096, 65_536, 100_003])) for _ in range(40)]
    data = b"".join(chunks)
    reader = ChunkReader(iter(chunks))
    got, pos = [], 0
    while True:
        n = rng.choice([1, 13, 4096, 65_536, 1 << 20])
        out = reader.read(n)
        assert isinstance(out, bytes)
        assert len(out) == min(n, len(data) - pos)  # short only at the end
        if not out:
            break
        got.append(out)
        pos += len(out)
    assert b"".join(got) == data
    assert reader.read(10) == b""


def test_a_chunk_of_exactly_the_size_asked_is_passed_on_without_a_copy() -> None:
    a, b = bytes(range(256)) * 4, bytes(1024)
    reader = ChunkReader(iter([a, b]))
    assert reader.read(1024) is a
    assert reader.read(1024) is b
    assert reader.read(1) == b""


def test_read_all_and_mixed() -> None:
    reader = ChunkReader(iter([b"abc", b"", b"defgh", b"ij"]))
    assert reader.read(2) == b"ab"
    assert reader.read(4) == b"cdef"
    assert reader.read(-1) == b"ghij"
    assert reader.read() == b""
