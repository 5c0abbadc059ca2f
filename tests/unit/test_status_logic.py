"""Status: freshness against the RPO with an injected clock, replica agreement, EMF metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.layout import BackupRef
from vo2dr.manifest import Manifest
from vo2dr.status import compute_status, default_grace_seconds, emf_documents
from vo2dr.strategy import parse_strategy

from tests.unit.recovery_memstore import SIGNER, TRUST, MemoryStore, add_backup

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
STRATEGY = parse_strategy({
    "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00"},
})


@pytest.fixture
def stores():
    stores = [MemoryStore("s3"), MemoryStore("gcs"), MemoryStore("azure")]
    add_backup(stores, BackupRef("staging", "yearly", "full", T0, "aaaaaaaaaaa1"))
    add_backup(stores, BackupRef("staging", "daily", "critical", T0, "bbbbbbbbbbb1"))
    return {s.name: s for s in stores}


def test_fresh_backups_are_ok(stores):
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=10), trust=TRUST)
    assert report.ok, report.messages
    assert report.classes["critical"].stores["gcs"].age_seconds == 600
    assert report.replica_mismatches == 0


def test_breach_when_newest_is_older_than_rpo_plus_grace(stores):
    grace = default_grace_seconds(15 * 60)
    assert grace == 90
    at_limit = T0 + timedelta(seconds=15 * 60 + grace)
    assert compute_status(STRATEGY, stores, "staging", at_limit, trust=TRUST).ok
    late = at_limit + timedelta(seconds=1)
    report = compute_status(STRATEGY, stores, "staging", late, trust=TRUST)
    assert not report.ok
    assert report.breaches == ["rpo:critical:azure", "rpo:critical:gcs", "rpo:critical:s3"]
    assert "over the RPO of 15m" in report.messages[0]
    assert report.classes["full"].ok  # the daily full is still within its day


def test_grace_can_be_set(stores):
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=16),
                            grace_seconds=0, trust=TRUST)
    assert not report.ok
    # Which breach: the critical class (RPO 15 min) in every store, 60 s late; not the full.
    assert report.breaches == ["rpo:critical:azure", "rpo:critical:gcs", "rpo:critical:s3"]
    assert report.classes["critical"].stores["s3"].reason == \
        "newest complete backup is 16m old, over the RPO of 15m (+0s grace)"
    assert report.classes["full"].ok
    # The default grace (90 s for a 15 min RPO) still covers the same minute.
    assert compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=16),
                          trust=TRUST).ok


def test_a_store_missing_the_newest_backup_breaches_after_the_replica_grace(stores):
    later = T0 + timedelta(minutes=15)
    add_backup(list(stores.values()), BackupRef("staging", "daily", "critical", later,
                                                "bbbbbbbbbbb2"), manifest_in=["s3", "gcs"])
    # Within the replica grace after the backup finished: the last manifest may be on its way.
    soon = compute_status(STRATEGY, stores, "staging", later + timedelta(minutes=2), trust=TRUST)
    assert soon.breaches == ["rpo:critical:azure"], soon.messages
    report = compute_status(STRATEGY, stores, "staging", later + timedelta(minutes=14),
                            trust=TRUST)
    assert report.breaches == ["copies:critical:bbbbbbbbbbb2", "rpo:critical:azure"]
    assert report.classes["critical"].stores["azure"].newest_backup_id == "bbbbbbbbbbb1"
    newest = next(r for r in report.replicas if r.backup_id == "bbbbbbbbbbb2")
    assert newest.missing == ["azure"] and not newest.agree
    assert any("bbbbbbbbbbb2 is missing from azure (no-manifest) 14m" in m
               for m in report.messages), report.messages


def test_no_backup_at_all_is_a_breach():
    stores = {n: MemoryStore(n) for n in ("s3", "gcs")}
    report = compute_status(STRATEGY, stores, "staging", T0, trust=TRUST)
    assert "rpo:full:s3" in report.breaches
    assert report.classes["full"].stores["s3"].reason == "no complete backup"


def test_unreachable_store_is_a_breach(stores):
    stores["gcs"].down = True
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=1), trust=TRUST)
    assert "rpo:critical:gcs" in report.breaches
    assert "cannot list" in report.classes["critical"].stores["gcs"].reason
    assert report.replica_mismatches == 0  # the reachable copies still agree


def _replace(store: MemoryStore, key: str, data: bytes) -> None:
    store.delete(key)
    store.put_bytes(key, data)


def test_mismatch_when_one_stores_copy_differs(stores):
    key = BackupRef("staging", "daily", "critical", T0, "bbbbbbbbbbb1").body_key
    body = bytearray(stores["gcs"].objects[key])
    body[5] ^= 0x01
    _replace(stores["gcs"], key, bytes(body))  # same size, other bytes
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=1), trust=TRUST)
    assert not report.ok
    assert report.replica_mismatches == 1
    assert report.breaches == ["replica:critical:bbbbbbbbbbb1"]
    assert any("gcs:" in m and "changed since it was verified" in m for m in report.messages)
    deep = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=1), deep=True,
                          trust=TRUST)
    assert any("gcs:" in m and "has SHA-256" in m for m in deep.messages)


def test_an_edited_manifest_is_a_breach_at_once(stores):
    ref = BackupRef("staging", "yearly", "full", T0, "aaaaaaaaaaa1")
    doc = json.loads(stores["azure"].objects[ref.manifest_key])
    doc["tables"][0]["rows"] += 1  # the signature stays, the payload changed
    _replace(stores["azure"], ref.manifest_key, json.dumps(doc).encode())
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=1), trust=TRUST)
    assert report.breaches == ["unsigned:full:aaaaaaaaaaa1"]
    assert any("azure" in m and "does not verify" in m for m in report.messages)


def test_mismatch_when_signed_manifests_disagree(stores):
    ref = BackupRef("staging", "yearly", "full", T0, "aaaaaaaaaaa1")
    manifest = Manifest.from_json(stores["azure"].objects[ref.manifest_key])
    manifest.ciphertext.sha256 = "f" * 64
    manifest.sign(SIGNER)  # both signed by us, yet different: a bug or a replay
    _replace(stores["azure"], ref.manifest_key, manifest.to_json())
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=1), trust=TRUST)
    assert report.breaches == ["replica:full:aaaaaaaaaaa1"]
    assert any("manifests disagree" in m for m in report.messages)


def test_an_unsigned_backup_in_one_store_is_a_breach(stores):
    """A forgery planted in one store, newer than everything: unsigned at once, and a copy
    held by one store only after the replica grace."""
    later = T0 + timedelta(minutes=15)
    add_backup([stores["gcs"]], BackupRef("staging", "daily", "critical", later,
                                          "ccccccccccc1"), signer=None)
    report = compute_status(STRATEGY, stores, "staging", later + timedelta(minutes=1),
                            trust=TRUST)
    assert "unsigned:critical:ccccccccccc1" in report.breaches
    assert any("is unsigned" in m for m in report.messages)
    report = compute_status(STRATEGY, stores, "staging", later + timedelta(minutes=6),
                            trust=TRUST)
    assert "copies:critical:ccccccccccc1" in report.breaches
    assert any("exists in gcs only" in m for m in report.messages), report.messages


def test_emf_documents(stores):
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=20), trust=TRUST)
    docs = emf_documents(report)
    crit = next(d for d in docs if d.get("DataClass") == "critical" and "Store" not in d)
    assert crit["BackupAgeSeconds"] == 1200
    assert crit["ReplicaMismatch"] == 0
    assert crit["Environment"] == "staging"
    meta = crit["_aws"]["CloudWatchMetrics"][0]
    # the contract with the alarms of infra/aws/alerts.py
    from infra.aws.alerts import (
        BACKUP_AGE_METRIC,
        DATA_CLASS_DIMENSION,
        METRIC_NAMESPACE,
        REPLICA_MISMATCH_METRIC,
    )
    assert meta["Namespace"] == METRIC_NAMESPACE
    assert meta["Dimensions"] == [[DATA_CLASS_DIMENSION]]
    assert {m["Name"] for m in meta["Metrics"]} == {BACKUP_AGE_METRIC, REPLICA_MISMATCH_METRIC}
    assert {"Name": "BackupAgeSeconds", "Unit": "Seconds"} in meta["Metrics"]
    assert crit["_aws"]["Timestamp"] == int((T0 + timedelta(minutes=20)).timestamp() * 1000)
    total = next(d for d in docs if "DataClass" not in d)
    assert total["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert total["StatusBreaches"] == 3  # critical in three stores
    per_store = [d for d in docs if d.get("Store") == "gcs" and d["DataClass"] == "full"]
    assert per_store[0]["BackupAgeSeconds"] == 1200
    json.dumps(docs)  # serialisable as printed


def test_emf_omits_the_age_when_a_store_has_no_backup(stores):
    stores["azure"].objects.clear()
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=1), trust=TRUST)
    crit = next(d for d in emf_documents(report)
                if d.get("DataClass") == "critical" and "Store" not in d)
    assert "BackupAgeSeconds" not in crit


def test_stat_denied_falls_back_to_listing_and_manifests(stores):
    from vo2dr.exceptions import AccessDenied

    def denied(key):
        raise AccessDenied("HeadObject forbidden", store="s3", key=key)

    stores["s3"].stat = denied
    report = compute_status(STRATEGY, stores, "staging", T0 + timedelta(minutes=1), trust=TRUST)
    assert report.ok, report.messages
    assert report.replicas[0].copies["s3"]["store_checksum"] == "(not permitted)"


def test_naive_now_is_refused(stores):
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_status(STRATEGY, stores, "staging", datetime(2025, 1, 1), trust=TRUST)


def test_one_status_run_reads_each_manifest_once_per_store(stores):
    # The replica check reads each store's manifest of the newest backup, and dating the copy
    # missing from azure reads an authentic one again: within one run, one GET per object.
    later = T0 + timedelta(minutes=15)
    add_backup(list(stores.values()), BackupRef("staging", "daily", "critical", later,
                                                "bbbbbbbbbbb2"), manifest_in=["s3", "gcs"])
    reads: list[tuple[str, str]] = []
    for store in stores.values():
        def counted(key, store=store, real=store.get_bytes):
            reads.append((store.name, key))
            return real(key)
        store.get_bytes = counted
    report = compute_status(STRATEGY, stores, "staging", later + timedelta(minutes=14),
                            trust=TRUST)
    assert "copies:critical:bbbbbbbbbbb2" in report.breaches  # the late copy was dated
    assert reads and len(reads) == len(set(reads)), sorted(reads)
    assert ("s3", BackupRef("staging", "daily", "critical", later,
                            "bbbbbbbbbbb2").manifest_key) in reads
