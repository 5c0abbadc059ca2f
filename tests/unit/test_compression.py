"""``vo2max-dr:compression``: validated once (the program and the job share the validator), set
in both stack files, carried to the job in the strategy JSON, and used by the pipeline; a body
compressed at any level and with any thread count decompresses through the restore path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import zstandard
from vo2dr import strategy
from vo2dr.exceptions import ConfigError
from vo2dr.pipeline import compress
from vo2dr.verify import _decompress

from infra import config

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("staging", "production")


def _stack(stack: str) -> dict:
    return strategy.read_stack_file(ROOT / f"Pulumi.{stack}.yaml")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_set_the_level_and_the_job_gets_it(stack: str) -> None:
    raw = _stack(stack)
    comp = strategy.parse_compression(raw["compression"])
    assert strategy.MIN_COMPRESSION_LEVEL <= comp.level <= strategy.MAX_COMPRESSION_LEVEL
    job = strategy.load_strategy({"VO2DR_STACK_FILE": str(ROOT / f"Pulumi.{stack}.yaml")})
    assert job.compression == comp
    # The JSON the program hands the job (and ships as vo2dr-strategy.json) keeps it.
    assert strategy.load_strategy({"VO2DR_STRATEGY": job.to_json()}).compression == comp


def test_the_program_requires_it() -> None:
    raw = {k: v for k, v in _stack("staging").items() if k != "compression"}
    import yaml

    doc = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]
    providers = {k: str(v) for k, v in doc.items() if not k.startswith("vo2max-dr:")}
    with pytest.raises(ConfigError, match=r"vo2max-dr:compression is missing.*level"):
        config.parse(raw, stack="staging", providers=providers)


@pytest.mark.parametrize(("raw", "message"), [
    ({"level": 0}, "compression.level is 0: use a whole number from 1 to 19"),
    ({"level": 22}, "compression.level is 22"),
    ({"level": "3"}, "compression.level is '3'"),
    ({"level": True}, "compression.level is True"),
    ({}, "compression.level is None"),
    ({"level": 3, "threads": -1}, "compression.threads is -1: use 0"),
    ({"level": 3, "threads": 64}, "compression.threads is 64"),
    ({"level": 3, "workers": 2}, "unknown setting.*workers"),
    (3, "compression must be a mapping"),
])
def test_bad_compression_is_refused_with_the_fix(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        strategy.parse_compression(raw)


@pytest.mark.parametrize(("level", "threads"), [(1, 0), (3, 0), (9, 0), (19, 0), (1, 2), (3, 2)])
def test_any_level_decompresses_through_the_restore_path(level: int, threads: int) -> None:
    # Incompressible and compressible parts, across several input chunks and output pieces.
    plain = [os.urandom(300_000), b"row\t42\t2026-01-01\n" * 40_000, os.urandom(10)]
    counter = [0]
    body = list(compress(iter(plain), level=level, chunk_size=64 * 1024, counter=counter,
                         threads=threads))
    assert counter[0] == sum(map(len, body))
    # The frame records the level's window, and the zstd CLI/library read it as one frame.
    params = zstandard.get_frame_parameters(body[0])
    assert params.window_size > 0
    out = b"".join(_decompress(iter(body), "zstd"))
    assert hashlib.sha256(out).digest() == hashlib.sha256(b"".join(plain)).digest()


def test_level_one_is_not_worse_on_dump_like_rows() -> None:
    """The default's premise (see the stack files): on rows like pg_dump's COPY text, level 1
    does not compress worse than level 3 by more than a few percent."""
    rows = b"".join(b"%d\t%d\t2026-0%d-1%d 0%d:1%d:00+00\t%d.%d\t{\"hr\": %d}\n"
                    % (i, i % 977, i % 9 + 1, i % 10, i % 10, i % 6, i % 71, i % 10, 60 + i % 120)
                    for i in range(200_000))
    one = len(b"".join(compress(iter([rows]), level=1)))
    three = len(b"".join(compress(iter([rows]), level=3)))
    assert one <= three * 1.10
