"""peek_small: a store learns whether a stream fits in one request without losing, reordering
or copying its chunks, and without reading more than one chunk past the limit."""

from __future__ import annotations

import pytest
from vo2dr.stores._common import peek_small


class Boom(Exception):
    pass


def test_a_stream_within_the_limit_is_one_body():
    body, rest = peek_small(iter([b"ab", b"", b"cd", b"e"]), 5)
    assert body == b"abcde"  # exactly the limit is still small
    assert list(rest) == []


def test_an_empty_stream_is_an_empty_body():
    body, rest = peek_small(iter([]), 5)
    assert body == b"" and list(rest) == []


def test_past_the_limit_every_chunk_comes_back_in_order_and_reading_stops_early():
    read: list[bytes] = []

    def source():
        for chunk in (b"abc", b"def", b"ghi", b"jkl"):
            read.append(chunk)
            yield chunk

    body, rest = peek_small(source(), 5)
    assert body is None
    assert read == [b"abc", b"def"]  # one chunk past the limit, no more
    assert list(rest) == [b"abc", b"def", b"ghi", b"jkl"]


def test_a_view_of_a_reused_buffer_is_copied_before_it_is_kept():
    buf = bytearray(b"xyz")
    body, _ = peek_small(iter([memoryview(buf)]), 5)
    buf[:] = b"___"
    assert body == b"xyz"


def test_the_callers_error_passes_through_unchanged():
    boom = Boom("pg_dump died")

    def source():
        yield b"abc"
        raise boom

    with pytest.raises(Boom) as err:
        peek_small(source(), 5)
    assert err.value is boom

    def late():
        yield b"abcdef"
        raise boom

    body, rest = peek_small(late(), 5)
    assert body is None
    with pytest.raises(Boom) as err:
        list(rest)
    assert err.value is boom
