"""Reading a child process's stdout pipe (pg_dump's) in large pieces, cheaply.

pg_dump writes its archive in small ``write`` calls (a few KiB each), and it is slower than the
pipeline that consumes it (the database server does the work). A reader that simply asks for
1 MiB therefore wakes up for every few KiB that arrive: hundreds of thousands of ``read``
system calls and wake-ups per GB, all counted as the backup's CPU. Here, when a read returns
less than a quarter of the pipe's capacity, the reader sleeps a couple of milliseconds so the
pipe fills up meanwhile: each read then collects hundreds of KiB. The pipe is enlarged to
:data:`PIPE_SIZE` first; without that (the kernel refused), there is no pause, since a small
pipe would fill up and stall the writer while we sleep. At 1 MiB, the writer would have to
produce more than 500 MB/s to fill it during one pause.

Pieces are read into one reused buffer (no allocation, no copy, no ``bytes`` join per piece).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
# Pause after a read that found the pipe less than a quarter full.
PAUSE = 0.002


def enlarge(fd: int, size: int = PIPE_SIZE) -> int:
    """Ask for a ``size`` pipe buffer; the size the kernel gives (0 if unknown)."""
    with contextlib.suppress(OSError):  # fewer, larger reads; not essential
        fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    try:
        return int(fcntl.fcntl(fd, F_GETPIPE_SZ))
    except OSError:
        return 0


def read_pieces(fd: int, size: int, pipe_size: int) -> Iterator[memoryview]:
    """Yield the pipe's bytes as pieces of exactly ``size`` bytes (the last one shorter, never
    empty), until end of file.

    Each piece is a view of the same buffer: it is valid only until the next piece is asked
    for, so a consumer must use it (hash, compress) before it moves on, and copy anything it
    keeps. ``OSError`` from ``read`` propagates."""
    buf = bytearray(size)
    view = memoryview(buf)
    pause = pipe_size >= PIPE_SIZE
    low = pipe_size // 4
    while True:
        got = 0
        while got < size:
            n = os.readv(fd, [view[got:]])
            if n == 0:
                break
            got += n
            if pause and n < low and got < size:
                time.sleep(PAUSE)
        if got:
            yield view[:got]
        if got < size:
            return
