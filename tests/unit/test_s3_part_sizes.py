"""S3 multipart part sizes past 1,000 parts: a dump over 8 GiB must still fit S3's 10,000
parts (each 5 MiB to 5 GiB), without uploading one. Computed directly, and through the same
re-chunking the store uses, with a small base so the numbers stay small."""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

from vo2dr.stores._common import iter_parts
from vo2dr.stores.s3 import PART_SIZE, part_size_for

MiB = 1024 * 1024
GiB = 1024 * MiB
S3_MAX_PARTS = 10_000
S3_MIN_PART, S3_MAX_PART = 5 * MiB, 5 * GiB


def capacity(parts: int, base: int = PART_SIZE) -> int:
    return sum(part_size_for(n, base) for n in range(1, parts + 1))


def test_parts_grow_every_thousand_and_stay_within_s3_limits():
    assert 8 * MiB == PART_SIZE
    assert [part_size_for(n) // MiB for n in (1, 1000, 1001, 2000, 2001, 9999, 10_000)] == [
        8, 8, 16, 16, 24, 80, 80]
    sizes = [part_size_for(n) for n in range(1, S3_MAX_PARTS + 1)]
    assert min(sizes) >= S3_MIN_PART and max(sizes) <= S3_MAX_PART
    assert sizes == sorted(sizes)


def test_a_dump_past_8_gib_needs_more_than_1000_parts_and_fits_in_10000():
    assert capacity(1000) == 8000 * MiB < 8 * GiB  # 1,000 fixed 8 MiB parts stop short
    totals = list(accumulate(part_size_for(n) for n in range(1, S3_MAX_PARTS + 1)))
    for dump in (8 * GiB + 1, 100 * GiB, 400 * GiB):
        parts = bisect_left(totals, dump) + 1  # the fewest parts that hold the dump
        assert 1000 < parts <= S3_MAX_PARTS, dump
    assert capacity(S3_MAX_PARTS) == 55_000 * PART_SIZE  # 440 GiB: the documented ceiling
    assert capacity(S3_MAX_PARTS) > 400 * GiB


def test_the_store_rechunks_with_the_growing_size():
    # base 1 byte instead of 8 MiB: 1,000 parts of 1 byte, then 2 bytes, then 3...
    data = bytes(range(256)) * 20  # 5,120 bytes
    parts = list(iter_parts([data[i:i + 77] for i in range(0, len(data), 77)],
                            lambda n: part_size_for(n, 1)))
    assert b"".join(parts) == data
    assert [len(p) for p in parts[:1000]] == [1] * 1000
    assert [len(p) for p in parts[1000:2000]] == [2] * 1000
    assert [len(p) for p in parts[2000:2001]] == [3]
    assert len(parts) == 1000 + 1000 + (5120 - 3000 + 2) // 3  # the last one may be short
