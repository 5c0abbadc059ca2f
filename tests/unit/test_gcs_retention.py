"""The GCS Object Retention Lock settings: read once, refused when half set or malformed, and
handed to the store by ``open_store``. What the store sends is tested against the emulator
(tests/integration/stores/test_gcs_retention.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from vo2dr.exceptions import ConfigError
from vo2dr.settings import Settings
from vo2dr.stores import Access, open_store
from vo2dr.stores.gcs import Retention

from dev.mockrun import stack_config


def test_both_settings_give_a_retention_and_neither_gives_none():
    assert Retention.from_settings("30", "Locked") == Retention(30, "Locked")
    assert Retention.from_settings("", "") is None


@pytest.mark.parametrize(("days", "mode", "message"), [
    ("30", "", "VO2DR_GCS_RETENTION_MODE is not set"),
    ("", "Locked", "VO2DR_GCS_RETENTION_DAYS is not set"),
    ("thirty", "Locked", "VO2DR_GCS_RETENTION_DAYS is 'thirty'"),
    ("0", "Locked", "VO2DR_GCS_RETENTION_DAYS is 0"),
    ("30", "locked", "VO2DR_GCS_RETENTION_MODE is 'locked': use Locked or Unlocked"),
    ("30", "COMPLIANCE", "use Locked or Unlocked"),
])
def test_half_set_or_malformed_retention_is_refused(days, mode, message):
    with pytest.raises(ConfigError, match=message):
        Retention.from_settings(days, mode)


def test_retain_until_is_days_after_the_upload():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert Retention(30, "Locked").until(now) == datetime(2026, 12, 25, 12, 0, tzinfo=UTC)


def test_open_store_reads_the_retention_settings(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # never contacted
    env = {"VO2DR_GCS_BUCKET": "b", "VO2DR_GCS_RETENTION_DAYS": "30",
           "VO2DR_GCS_RETENTION_MODE": "Unlocked"}
    assert open_store("gcs", Settings.from_env(env), Access.WRITE).retention == \
        Retention(30, "Unlocked")
    assert open_store("gcs", Settings.from_env({"VO2DR_GCS_BUCKET": "b"}),
                      Access.WRITE).retention is None
    with pytest.raises(ConfigError, match="VO2DR_GCS_RETENTION_MODE is not set"):
        open_store("gcs", Settings.from_env({**env, "VO2DR_GCS_RETENTION_MODE": ""}),
                   Access.WRITE)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_program_settings_are_ones_the_job_accepts(stack):
    imm = stack_config(stack).immutability
    env = imm.gcs_retention_env()
    retention = Retention.from_settings(env["VO2DR_GCS_RETENTION_DAYS"],
                                        env["VO2DR_GCS_RETENTION_MODE"])
    assert retention == Retention(imm.lock_days, "Locked" if stack == "production"
                                  else "Unlocked")
