"""vo2dr.sources.secrets_status: a store whose newest config backup was taken by the standby
without the app's secrets is shown (never a breach), with the age of the newest backup that has
them against the config's RPO; the walk back reads no more manifests than it needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vo2dr.sources.secrets_status import ConfigBackupFacts, secrets_status

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
RPO = 3600
WHY = "taken by the GCP standby, which does not read the app's secrets in AWS"


def facts(hours_ago: float, with_secrets: bool, n: int = 0) -> ConfigBackupFacts:
    return ConfigBackupFacts(f"b{n:011d}", NOW - timedelta(hours=hours_ago),
                             "" if with_secrets else WHY)


class Counted:
    """The facts, newest first, counting how many the walk took (each is a manifest read)."""

    def __init__(self, items: list[ConfigBackupFacts]) -> None:
        self.items, self.taken = items, 0

    def __iter__(self):
        for item in self.items:
            self.taken += 1
            yield item


def test_no_backup_and_a_newest_backup_with_secrets_need_no_note():
    assert secrets_status("s3", [], NOW, RPO) is None
    backups = Counted([facts(0.5, True, 1), facts(1.5, False, 2)])
    status = secrets_status("s3", backups, NOW, RPO)
    assert status is not None and not status.without_secrets and status.note == ""
    assert status.newest_backup_id == "b00000000001" and backups.taken == 1


def test_a_standby_backup_names_the_newest_with_secrets_within_the_rpo():
    backups = Counted([facts(0.2, False, 3), facts(0.5, True, 2), facts(3, True, 1)])
    status = secrets_status("gcs", backups, NOW, RPO)
    assert status.without_secrets and status.reason == WHY
    assert status.with_secrets_backup_id == "b00000000002"
    assert status.with_secrets_age_seconds == 1800 and status.with_secrets_within_rpo
    assert backups.taken == 2  # stopped at the first backup with the secrets
    assert status.note == ("config in gcs: the newest backup b00000000003 holds the files "
                           "only, not the app's secrets (taken by the standby); the newest "
                           "with them is b00000000002, 30m old, within the config's RPO of 60m")


def test_secrets_older_than_the_rpo_are_said_to_be():
    backups = [facts(h, False, 10 - h) for h in range(5)] + [facts(26, True, 0)]
    status = secrets_status("azure", backups, NOW, RPO)
    assert status.with_secrets_backup_id == "b00000000000"
    assert status.with_secrets_age_seconds == 26 * 3600
    assert status.with_secrets_within_rpo is False and status.checked == 6
    assert status.note.endswith("the newest with them is b00000000000, 26.0h old, older than "
                                "the config's RPO of 60m")


def test_the_walk_back_stops_at_its_limit():
    backups = Counted([facts(h, False, h) for h in range(10)] + [facts(11, True, 99)])
    status = secrets_status("gcs", backups, NOW, RPO, limit=4)
    assert backups.taken == 4 and status.checked == 4
    assert status.with_secrets_backup_id is None and status.with_secrets_within_rpo is None
    assert "none of the newest 4 backups has them" in status.note
    # Only standby backups at all: the same, once they run out.
    only = secrets_status("gcs", [facts(1, False, 1), facts(2, False, 2)], NOW, RPO)
    assert only.checked == 2 and "none of the newest 2 backups" in only.note
