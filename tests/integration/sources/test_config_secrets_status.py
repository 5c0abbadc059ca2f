"""Status shows (never fails on) a store whose newest config backup was taken without the app's
secrets, as the Cloud Run standby takes it during an AWS outage, and how old the newest backup
with them is against the config's RPO: real backups in moto, the GCS emulator and Azurite,
their signed manifests read back by ``compute_status`` and by ``vo2dr status``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vo2dr.sources.backup import backup_source
from vo2dr.status import compute_status
from vo2dr.stores import Access, open_stores
from vo2dr.trust import Trust

from .test_code import run_cli, use_env

pytestmark = pytest.mark.integration


def test_status_notes_a_newest_config_backup_without_secrets(app, capsys, monkeypatch):
    use_env(app, monkeypatch)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    genuine = backup_source(app.settings, "config", now=t0)
    standby = backup_source(app.settings, "config", now=t0 + timedelta(hours=2),
                            with_secrets=False)
    assert genuine.ok and standby.ok
    stores = dict(open_stores(app.settings, Access.READ))
    trust = Trust.from_settings(app.settings)
    strategy = app.settings.strategy()

    # 30 minutes after the standby's backup: the config is fresh (no config breach), but the
    # secrets are 2.5 h old against the important class's 60 min RPO.
    now = t0 + timedelta(hours=2, minutes=30)
    report = compute_status(strategy, stores, "staging", now, trust=trust)
    assert not any(b.startswith(("rpo:config:", "replica:config:")) for b in report.breaches)
    assert set(report.config_secrets) == set(stores)
    for name, cs in report.config_secrets.items():
        assert cs.without_secrets and cs.newest_backup_id == standby.backup_id, name
        assert "GCP standby" in cs.reason
        assert cs.with_secrets_backup_id == genuine.backup_id
        assert cs.with_secrets_age_seconds == 150 * 60 and cs.with_secrets_within_rpo is False
    assert sorted(report.notes) == sorted(
        f"config in {name}: the newest backup {standby.backup_id} holds the files only, not "
        f"the app's secrets (taken by the standby); the newest with them is "
        f"{genuine.backup_id}, 2.5h old, older than the config's RPO of 60m" for name in stores)

    # The command says it too, in its JSON and on stderr, and never as a breach.
    rc, doc, err = run_cli(capsys, "status", "--json", "--now",
                           now.isoformat().replace("+00:00", "Z"))
    assert doc is not None and sorted(doc["notes"]) == sorted(report.notes)
    # Its exit code follows the breaches (the database and code, never backed up here) alone.
    assert rc == (0 if doc["ok"] else 1)
    assert not any(b.startswith(("rpo:config:", "replica:config:")) for b in doc["breaches"])
    assert doc["config_secrets"]["gcs"]["with_secrets_backup_id"] == genuine.backup_id
    assert all("secrets" not in line for line in doc["messages"])
    assert err.count("vo2dr status: note: config in ") == len(stores)

    # A later backup with the secrets (the primary is back): nothing to note.
    assert backup_source(app.settings, "config", now=t0 + timedelta(hours=2, minutes=45)).ok
    later = compute_status(strategy, stores, "staging", t0 + timedelta(hours=3), trust=trust)
    assert later.notes == []
    assert not any(cs.without_secrets for cs in later.config_secrets.values())
