"""Status and drill cover the snapshot sources: freshness of the newest *complete* snapshot
against the class RPO in every store (assets: important, 1 h; logs: non-critical, 24 h), and
a sampled restore timed against the class RTO, its scratch copy removed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.sources.drill import drill_sources
from vo2dr.status import compute_status, emf_documents
from vo2dr.stores import Access, open_stores
from vo2dr.trust import Trust

from .conftest import take

pytestmark = pytest.mark.integration


def _status(snap, now):
    stores = dict(open_stores(snap.settings, Access.READ))
    return compute_status(snap.settings.strategy(), stores, "staging", now,
                          trust=Trust.from_settings(snap.settings))


def test_status_freshness_of_assets_and_logs_in_every_store(snap, capsys):
    now = datetime.now(UTC)
    report = _status(snap, now)
    assert {"rpo:assets:s3", "rpo:logs:azure"} <= set(report.breaches)
    assert report.sources["assets"].stores["gcs"].reason == "no complete backup"
    # No complete backup in a store: no age by Source (the alarm treats missing as breaching).
    assert not [d for d in emf_documents(report) if d.get("Source") in ("assets", "logs")]

    assets = take(capsys)
    take(capsys, "logs")
    report = _status(snap, datetime.now(UTC))
    for kind in ("assets", "logs"):
        cs = report.sources[kind]
        assert cs.ok and set(cs.stores) == {"s3", "gcs", "azure"}, cs
        assert not [b for b in report.breaches if f":{kind}:" in b]
    assert report.sources["assets"].stores["s3"].newest_backup_id == assets["backup_id"]
    assert report.sources["logs"].rpo_seconds == 24 * 3600
    assert any(r.data_class == "assets" and r.agree for r in report.replicas)

    # Three hours later the assets (RPO 1 h) are stale everywhere, the logs (24 h) are not.
    later = _status(snap, datetime.now(UTC) + timedelta(hours=3))
    assert {f"rpo:assets:{s}" for s in ("s3", "gcs", "azure")} <= set(later.breaches)
    assert later.sources["logs"].ok
    # What the sources' backup-age alarms watch (infra/aws/alerts.py): the stalest store's
    # age by Source, above the assets' RPO three hours later.
    from infra.aws.alerts import BACKUP_AGE_METRIC, SOURCE_DIMENSION
    ages = {d[SOURCE_DIMENSION]: d[BACKUP_AGE_METRIC] for d in emf_documents(later)
            if SOURCE_DIMENSION in d}
    assert ages["assets"] == later.sources["assets"].worst_age_seconds > 3 * 3600
    assert ages["assets"] > later.sources["assets"].rpo_seconds
    assert ages["logs"] < later.sources["logs"].rpo_seconds


def test_drill_restores_a_sample_within_the_rto(snap, capsys):
    take(capsys)
    take(capsys, "logs")
    stores = dict(open_stores(snap.settings, Access.READ))
    reports = {r.source: r for r in drill_sources(snap.settings, stores=stores)}
    assets, logs = reports["assets"], reports["logs"]
    assert assets.ok and logs.ok, reports
    assert assets.store == "s3" and assets.removed and logs.removed
    assert assets.within_rto and assets.rto_seconds == 240 * 60
    assert logs.rto_seconds == 1440 * 60 and logs.data_class == "non-critical"
    assert assets.checked["objects"] == assets.checked["snapshot_objects"] == 42
    assert logs.checked["objects"] == 12

    # A sample of 4 is restored and the full restore is projected from it; an RTO the
    # projection misses fails the drill.
    from vo2dr.snapshots.drill import drill_snapshot

    ticks = iter(range(0, 1000, 10))
    tight = drill_snapshot(snap.settings, "assets", stores=stores, sample=4,
                           rto_override_seconds=50, clock=lambda: next(ticks),
                           rng=random.Random(1))
    assert tight.checked["objects"] == 4 and not tight.ok and not tight.within_rto
    assert tight.checked["projected_full_restore_seconds"] >= 10 * 42 / 4
    assert "over the RTO" in tight.errors[0] and tight.removed
