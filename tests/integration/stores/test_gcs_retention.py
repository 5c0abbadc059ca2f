"""Object Retention Lock on GCS uploads, against the emulator: the retention travels in the
very request that creates the object (multipart for small objects, the resumable session's
start for streams), so no object can exist without it.

gcp-storage-emulator drops the ``retention`` field (it stores only the fields it knows), so
what is asserted is the request the client sent to the server, taken from the HTTP session's
response hook, plus that the object arrived whole."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.stores.base import ObjectLock
from vo2dr.stores.gcs import GcsStore, Retention
from vo2dr.stores.gcs import make_client as gcs_client

from tests.integration.stores.cases import KiB, unique

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RETENTION_FIELD = re.compile(rb'"retention":\s*(\{[^{}]*\})')


def recording_store(retention: Retention | None) -> tuple[GcsStore, list]:
    client = gcs_client()
    bucket = unique("vo2dr-gcs")
    client.create_bucket(bucket)
    sent: list = []
    client._http.hooks["response"].append(lambda response, *_, **__: sent.append(
        response.request))
    store = GcsStore(bucket, client, chunk_size=256 * KiB, retention=retention,
                     clock=lambda: NOW)
    return store, sent


def retentions(sent: list) -> list[tuple[str, str, dict]]:
    """(method, url, retention) of every request that carried one."""
    out = []
    for request in sent:
        body = request.body if isinstance(request.body, bytes) else (
            request.body or "").encode()
        for match in RETENTION_FIELD.finditer(body):
            out.append((request.method, request.url, json.loads(match.group(1))))
    return out


def retained_until(retention: dict) -> datetime:
    return datetime.fromisoformat(retention["retainUntilTime"].replace("Z", "+00:00"))


def test_small_object_is_created_with_its_retention(cloud_env):
    store, sent = recording_store(Retention(30, "Locked"))
    store.put_bytes("database/production/daily/full/m.json", b"{}", metadata={"kind": "m"})
    (method, url, retention), = retentions(sent)
    assert method == "POST" and "uploadType=multipart" in url
    assert retention["mode"] == "Locked"
    assert retained_until(retention) == NOW + timedelta(days=30)
    assert store.get_bytes("database/production/daily/full/m.json") == b"{}"


def test_streamed_object_starts_its_session_with_the_retention(cloud_env):
    store, sent = recording_store(Retention(7, "Unlocked"))
    data = bytes(range(256)) * 4 * KiB  # 1 MiB: four resumable chunks
    store.put_stream("database/staging/daily/full/x.dump.enc",
                     (data[i:i + 100 * KiB] for i in range(0, len(data), 100 * KiB)))
    carried = retentions(sent)
    # Once, in the session start; the chunk uploads that follow are the object's bytes only.
    assert [(m, "uploadType=resumable" in u) for m, u, _ in carried] == [("POST", True)]
    assert carried[0][2]["mode"] == "Unlocked"
    assert retained_until(carried[0][2]) == NOW + timedelta(days=7)
    assert sum(1 for r in sent if r.method == "PUT") >= 4  # (plus a finalize when exact)
    assert store.get_bytes("database/staging/daily/full/x.dump.enc") == data


def test_without_retention_settings_no_retention_is_sent(cloud_env):
    store, sent = recording_store(None)
    store.put_bytes("k", b"v")
    store.put_stream("s", iter([b"a" * 300 * KiB]))
    assert sent and retentions(sent) == []


@pytest.mark.parametrize("streamed", [False, True], ids=["put_bytes", "put_stream"])
def test_an_intraday_object_carries_its_own_shorter_lock(cloud_env, streamed):
    """The intraday tier's lock replaces the configured one in the creating request: the
    object is locked for its 2-day window, in the mode the stack sets, not for lockDays."""
    store, sent = recording_store(Retention(30, "Locked"))
    lock = ObjectLock(until=NOW + timedelta(hours=48), compliance=True)
    key = "database/production/intraday/critical/20261125T121500Z-0123456789ab.dump.enc"
    data = bytes(range(256)) * 2 * KiB
    if streamed:
        store.put_stream(key, iter([data]), lock=lock)
    else:
        store.put_bytes(key, data, lock=lock)
    (_, url, retention), = retentions(sent)
    assert ("uploadType=resumable" if streamed else "uploadType=multipart") in url
    assert retention["mode"] == "Locked"
    assert retained_until(retention) == NOW + timedelta(hours=48)
    assert store.get_bytes(key) == data
    # Governance stacks lock intraday objects Unlocked, like everything else there.
    store, sent = recording_store(Retention(30, "Unlocked"))
    store.put_bytes("k2", b"v", lock=ObjectLock(NOW + timedelta(days=2), compliance=False))
    assert [r["mode"] for _, _, r in retentions(sent)] == ["Unlocked"]
