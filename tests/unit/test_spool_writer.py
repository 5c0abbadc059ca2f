"""The restore's spool writer: it hashes and counts on its own thread exactly the plaintext it
was given (the manifest's plaintext SHA-256 is checked against these), and a full disk is
raised to the caller as the file's own error."""

from __future__ import annotations

import errno
import hashlib
import io
import os

import pytest
from vo2dr.verify import _BackgroundWriter


def test_hashes_counts_and_writes_every_chunk_in_order(tmp_path) -> None:
    chunks = [os.urandom(n) for n in (1, 1 << 20, 0, 12_345, 3 << 20)]
    path = tmp_path / "spool"
    with open(path, "wb") as fh:
        writer = _BackgroundWriter(fh, depth=2)
        for chunk in chunks:
            writer.write(chunk)
        writer.finish()
        writer.stop()
    whole = b"".join(chunks)
    assert path.read_bytes() == whole
    assert writer.bytes == len(whole)
    assert writer.hexdigest() == hashlib.sha256(whole).hexdigest()


class _FullDisk(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_raised_and_the_hash_still_covers_what_was_given() -> None:
    writer = _BackgroundWriter(_FullDisk(), depth=1)  # type: ignore[arg-type]
    writer.write(b"abc")
    with pytest.raises(OSError) as info:
        for _ in range(10):
            writer.write(b"def")
        writer.finish()
    writer.stop()
    assert info.value.errno == errno.ENOSPC
    assert writer.bytes >= 3
