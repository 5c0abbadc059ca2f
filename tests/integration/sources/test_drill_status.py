"""Drill and status cover the application sources: the latest code and config backups are
restored into scratch space and checked against their manifests, timed against the class RTO;
status measures their freshness against the class RPO in every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.sources.backup import backup_source
from vo2dr.sources.drill import drill_sources
from vo2dr.status import compute_status
from vo2dr.stores import Access, open_stores
from vo2dr.trust import Trust

pytestmark = pytest.mark.integration


def test_drill_restores_both_sources_and_catches_a_bad_copy(app, monkeypatch):
    for k, v in app.env().items():
        monkeypatch.setenv(k, v)
    assert backup_source(app.settings, "code").ok
    config = backup_source(app.settings, "config")
    assert config.ok
    stores = dict(open_stores(app.settings, Access.READ))

    reports = {r.source: r for r in drill_sources(app.settings, stores=stores)}
    assert reports["code"].ok and reports["config"].ok, reports
    assert reports["code"].checked == {"refs": 6}
    assert reports["config"].checked == {"files": 5, "secrets": 3}
    assert reports["code"].rto_seconds == 240 * 60 and reports["code"].within_rto
    assert reports["code"].store == "s3" and reports["config"].removed

    # A tight RTO is missed and reported.
    slow = drill_sources(app.settings, stores=stores, rto_override_seconds=0.0,
                         clock=iter(range(0, 100, 5)).__next__)
    assert not any(r.ok for r in slow)
    assert all("over the RTO" in r.errors[0] for r in slow)

    # The primary's config copy damaged: the drill fails on it, naming the check.
    body = bytearray(stores["s3"].get_bytes(config.body_key))
    body[-50] ^= 0xFF
    stores["s3"].delete(config.body_key)
    stores["s3"].put_bytes(config.body_key, bytes(body))
    reports = {r.source: r for r in drill_sources(app.settings, stores=stores)}
    assert reports["code"].ok
    assert not reports["config"].ok and "failed verification" in reports["config"].errors[0]
    assert reports["config"].removed


def test_status_checks_source_freshness_against_the_class_rpo(app):
    taken = datetime.now(UTC)
    assert backup_source(app.settings, "code", now=taken).ok
    stores = dict(open_stores(app.settings, Access.READ))
    strategy = app.settings.strategy()

    trust = Trust.from_settings(app.settings)
    fresh = compute_status(strategy, stores, "staging", taken + timedelta(minutes=30),
                           trust=trust)
    assert all(f.ok for f in fresh.sources["code"].stores.values())
    # config was never backed up: a breach in every store.
    assert {f"rpo:config:{s}" for s in stores} <= set(fresh.breaches)
    assert not any(b.startswith("rpo:code:") for b in fresh.breaches)
    assert any(r.data_class == "code" and r.agree for r in fresh.replicas)

    # The important class's RPO is 60 min (+10 % grace): 2 h later every store breaches.
    stale = compute_status(strategy, stores, "staging", taken + timedelta(hours=2), trust=trust)
    assert {f"rpo:code:{s}" for s in stores} <= set(stale.breaches)
    assert not stale.ok
