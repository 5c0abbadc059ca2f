"""The drill's scratch database drop: retried, and a drop that keeps failing is reported."""

from __future__ import annotations

import logging

import psycopg
import pytest
from vo2dr.dbadmin import Target
from vo2dr.drill import drop_scratch

SCRATCH = Target.parse("postgresql://drill@127.0.0.1:5432/vo2dr_drill_critical_20261130_120000")


class FlakyDrop:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, target: Target) -> None:
        self.calls += 1
        assert target is SCRATCH
        if self.calls <= self.failures:
            raise psycopg.OperationalError("must be a member of the role whose process is "
                                           "being terminated\nDETAIL: autovacuum")


def test_a_drop_that_fails_for_a_moment_is_retried() -> None:
    drop, pauses = FlakyDrop(failures=2), []
    assert drop_scratch(SCRATCH, drop=drop, sleep=pauses.append, pause=0.5) == ""
    assert drop.calls == 3 and pauses == [0.5, 0.5]


def test_a_drop_that_keeps_failing_is_reported_in_one_line(
        caplog: pytest.LogCaptureFixture) -> None:
    drop, pauses = FlakyDrop(failures=10), []
    with caplog.at_level(logging.WARNING, logger="vo2dr.drill"):
        error = drop_scratch(SCRATCH, drop=drop, sleep=pauses.append, attempts=3)
    assert "must be a member of the role" in error and "\n" not in error
    assert drop.calls == 3 and len(pauses) == 2
    assert "vo2dr_drill_critical_20261130_120000 not dropped" in caplog.text
