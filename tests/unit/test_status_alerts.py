"""Status alerts: a webhook message only on a new breach or a recovery; the state is saved
only once the message was delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.exceptions import Vo2drError
from vo2dr.layout import BackupRef
from vo2dr.status import FileState, StoreState, alert_kind, compute_status, notify
from vo2dr.strategy import parse_strategy

from tests.unit.recovery_memstore import TRUST, MemoryStore, add_backup

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
STRATEGY = parse_strategy({
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
})


@pytest.mark.parametrize(("previous", "current", "kind"), [
    (None, set(), None),
    (None, {"a"}, "breach"),
    (set(), {"a"}, "breach"),
    ({"a"}, {"a"}, None),
    ({"a"}, {"a", "b"}, "breach"),
    ({"a", "b"}, {"a"}, None),
    ({"a"}, set(), "recovery"),
])
def test_alert_kind(previous, current, kind):
    assert alert_kind(previous, current) == kind


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict] = []
        self.fail = fail

    def __call__(self, url: str, payload: dict) -> None:
        if self.fail:
            raise Vo2drError("alert webhook failed: connection refused")
        self.sent.append(payload)


@pytest.fixture
def store():
    s = MemoryStore("s3")
    add_backup([s], BackupRef("staging", "yearly", "full", T0, "aaaaaaaaaaa1"))
    return s


def _report(store, hours: float):
    return compute_status(STRATEGY, {"s3": store}, "staging", T0 + timedelta(hours=hours),
                          trust=TRUST)


def test_breach_then_quiet_then_recovery(store, tmp_path):
    state, send = FileState(tmp_path / "state.json"), Recorder()
    notify(_report(store, 1), state, "https://hooks.example/x", send=send)
    assert send.sent == []  # healthy first run: nothing to say
    breach = _report(store, 30)
    notify(breach, state, "https://hooks.example/x", send=send)
    assert breach.alert["kind"] == "breach" and breach.alert["sent"]
    assert "backup breach" in send.sent[0]["text"] and "rpo:full:s3" in send.sent[0]["text"]
    notify(_report(store, 31), state, "https://hooks.example/x", send=send)
    assert len(send.sent) == 1  # still breached: no repeat
    add_backup([store], BackupRef("staging", "daily", "full", T0 + timedelta(hours=30),
                                  "aaaaaaaaaaa2"))
    recovered = _report(store, 31)
    notify(recovered, state, "https://hooks.example/x", send=send)
    assert recovered.alert["kind"] == "recovery"
    assert "recovered" in send.sent[1]["text"]


def test_failed_webhook_is_retried_next_run(store, tmp_path):
    state = FileState(tmp_path / "state.json")
    failing = Recorder(fail=True)
    report = _report(store, 30)
    notify(report, state, "https://hooks.example/x", send=failing)
    assert report.alert["error"].endswith("connection refused")
    assert state.load() is None  # not saved: the breach is still news
    ok = Recorder()
    notify(_report(store, 30.5), state, "https://hooks.example/x", send=ok)
    assert len(ok.sent) == 1


def test_state_in_the_store_is_write_once_objects(store):
    s = MemoryStore("s3")
    send = Recorder()
    first = _report(store, 30)
    notify(first, StoreState(s, "staging", T0 + timedelta(hours=30)), "https://h/x", send=send)
    keys = sorted(s.objects)
    assert keys == ["status/staging/20250311/20250311T080000Z.json"]
    # the next run (next day, just after midnight) finds yesterday's state: no repeat
    nxt = _report(store, 46)
    notify(nxt, StoreState(s, "staging", T0 + timedelta(hours=46)), "https://h/x", send=send)
    assert nxt.alert["previous_breaches"] == ["rpo:full:s3"]
    assert len(send.sent) == 1
    assert len(s.objects) == 2
