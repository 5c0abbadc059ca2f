"""The schedule evaluator of the program tests (tests/cron_eval.py) against known calendars."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from tests.cron_eval import Cron, max_gap_seconds


def test_the_original_drill_cron_fires_on_every_monday_too_and_mon1_only_on_the_first():
    year = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    original = Cron("0 9 1-7 * 1").runs(*year)
    # Vixie OR semantics: days 1-7 of every month (84 days) plus every other Monday.
    mondays = [d for d in original if d.weekday() == 0]
    assert any(d.day > 7 for d in original), "it fires on Mondays after the 7th"
    assert any(d.weekday() != 0 for d in original), "it fires on days 1-7 that are no Monday"
    assert len(original) == 12 * 7 + len([d for d in mondays if d.day > 7])
    assert len(original) > 12

    declared = Cron("cron(0 9 ? * MON#1 *)").runs(*year)
    firsts = []
    for month in range(1, 13):
        first = next(day for day in range(1, 8)
                     if calendar.weekday(2026, month, day) == calendar.MONDAY)
        firsts.append(datetime(2026, month, first, 9, 0, tzinfo=UTC))
    assert declared == firsts


def test_the_evaluator_reads_rates_and_aligned_crons():
    assert max_gap_seconds("rate(15 minutes)") == 900
    assert max_gap_seconds("rate(1 hour)") == 3600
    assert max_gap_seconds("cron(0/15 * * * ? *)") == 900
    assert max_gap_seconds("cron(0 0/2 * * ? *)") == 7200
    assert max_gap_seconds("cron(0 2 * * ? *)") == 86400
    assert max_gap_seconds("10-59/15 * * * *") == 900
    assert max_gap_seconds("cron(0 0/3 * * ? *)") != 7200
