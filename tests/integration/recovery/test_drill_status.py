"""The drill and the status check against real backups, the CLI and the Lambda handlers."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
from vo2dr.cli import main
from vo2dr.drill import run_drill
from vo2dr.handlers import drill_handler, status_handler

from dev import servers

from .conftest import STRATEGY, database_exists, with_settings

pytestmark = pytest.mark.integration


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.fixture
def cli_env(world, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    return world


def test_drill_passes_for_every_class(cli_env, capsys):
    world = cli_env
    code, report, err = run_cli(capsys, "drill")
    assert code == 0, err
    assert report["ok"]
    assert [c["data_class"] for c in report["classes"]] == ["critical", "important", "full"]
    for c in report["classes"]:
        assert c["ok"] and c["within_rto"] and c["dropped"], c
        assert c["backup_id"] == world.backups[c["data_class"]]
        assert c["source"] == "s3"  # the primary, first store holding a complete copy
        assert c["rto_seconds"] == STRATEGY["dataClasses"][c["data_class"]]["rtoMinutes"] * 60
        assert all(t["manifest"] == t["restored"] for t in c["tables"].values())
        assert [s["ok"] for s in c["sanity"]] == [True] * len(c["sanity"])
        assert not database_exists(world.pg, c["scratch_database"])
    assert report["classes"][0]["tables"]["public.users"] == {"manifest": 120, "restored": 120}
    assert "critical: pass" in err


def test_drill_fails_when_the_restore_takes_longer_than_the_rto(world):
    # rtoMinutes must be a positive whole number in the strategy, so a test restore of a few
    # seconds can never miss it: the plain function takes an override in seconds instead.
    report = run_drill(world.settings, data_classes=["important"], source="azure",
                       rto_override_seconds=0.001)
    assert not report.ok
    (c,) = report.classes
    assert c.within_rto is False and c.restore_seconds > 0.001
    assert c.errors == [f"restore took {c.restore_seconds:.1f}s, over the RTO of 0s"]
    assert c.dropped and not database_exists(world.pg, c.scratch_database)


def test_drill_fails_on_a_failing_sanity_query(world):
    strategy = json.loads(json.dumps(STRATEGY))
    strategy["dataClasses"]["important"]["sanityQueries"] = [
        "SELECT count(*) > 1000 FROM app_config", "SELECT no_such_column FROM app_config"]
    w = with_settings(world, strategy_json=json.dumps(strategy))
    report = run_drill(w.settings, data_classes=["important"], source="gcs")
    (c,) = report.classes
    assert not c.ok and c.within_rto
    assert c.errors[0] == "sanity query failed: SELECT count(*) > 1000 FROM app_config"
    assert "no_such_column" in c.errors[1]


def test_drill_handler_reads_the_drill_server_from_its_secret(world, monkeypatch, capsys):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("VO2DR_DRILL_DATABASE_URL")
    arn = boto3.client("secretsmanager").create_secret(
        Name=f"drill-{world.source_db}",
        SecretString=json.dumps({"url": world.restorer_url()}))["ARN"]
    monkeypatch.setenv("VO2DR_DRILL_DATABASE_URL_SECRET", arn)
    out = drill_handler({"data_classes": ["important"]})
    assert out["ok"] and out["classes"][0]["source"] == "s3"
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines()
           if line.startswith('{"_aws"')]
    assert emf[0]["DataClass"] == "important" and emf[0]["DrillFailed"] == 0
    assert emf[0]["DrillRestoreSeconds"] > 0


def test_status_ok_then_breach_with_injected_time(cli_env, capsys):
    world = cli_env
    newest = world.backup_times["full"]
    code, doc, err = run_cli(capsys, "status", "--json", "--now",
                             (newest + timedelta(minutes=10)).isoformat())
    assert code == 0, err
    assert doc["ok"] and doc["replica_mismatches"] == 0
    assert {r["backup_id"] for r in doc["replicas"]} == set(world.backups.values())
    for cs in doc["classes"].values():
        assert set(cs["stores"]) == {"s3", "gcs", "azure"}
    critical_time = world.backup_times["critical"]
    code, doc, err = run_cli(capsys, "status", "--json", "--now",
                             (critical_time + timedelta(minutes=17)).isoformat())
    assert code == 1
    assert doc["breaches"] == ["rpo:critical:azure", "rpo:critical:gcs", "rpo:critical:s3"]
    assert "breach: critical in s3: newest complete backup is 17m old, over the RPO of 15m" \
        in err


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # the http.server API
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def test_webhook_only_on_breach_and_recovery(cli_env, capsys, tmp_path, webhook):
    url, received = webhook
    t = cli_env.backup_times["critical"]
    state = str(tmp_path / "state.json")

    def status(minutes: int) -> int:
        code, _, _ = run_cli(capsys, "status", "--json", "--alert-webhook", url,
                             "--state-file", state, "--now",
                             (t + timedelta(minutes=minutes)).isoformat())
        return code

    assert status(5) == 0 and received == []
    assert status(20) == 1 and len(received) == 1
    assert received[0]["text"].startswith(":rotating_light: vo2dr staging: backup breach")
    assert status(35) == 1 and len(received) == 1  # unchanged: no repeat
    assert status(6) == 0 and len(received) == 2  # what-if back in time: recovered
    assert "recovered" in received[1]["text"]


def test_status_handler_emits_metrics_and_keeps_state_in_the_store(cli_env, capsys):
    world = cli_env
    now = world.backup_times["full"] + timedelta(minutes=30)
    out = status_handler({"now": now.isoformat()})
    assert out["breaches"] == ["rpo:critical:azure", "rpo:critical:gcs", "rpo:critical:s3"]
    assert out["alert"]["kind"] == "breach"  # no webhook configured: recorded, not sent
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith('{"_aws"')]
    age = {d["DataClass"]: d["BackupAgeSeconds"] for d in docs
           if "DataClass" in d and "Store" not in d}
    assert age["full"] == 30 * 60
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "vo2dr" for d in docs)
    keys = [o.key for o in world.store("s3").list("status/staging/")]
    assert len(keys) == 1 and keys[0].endswith(f"{now:%Y%m%dT%H%M%S}Z.json")
    again = status_handler({"now": (now + timedelta(seconds=1)).isoformat()})
    assert again["alert"]["kind"] is None  # the state was found: no repeat


def test_drill_with_the_recovery_key_while_kms_is_down(cli_env, capsys, monkeypatch, tmp_path):
    # The lost-AWS-account runbook drills the surviving copies without KMS.
    world = cli_env
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{servers.free_port()}")
    code, report, err = run_cli(capsys, "drill", "--data-class", "critical", "--source", "gcs")
    assert code == 1 and not report["ok"], err
    key = tmp_path / "recovery.pem"
    key.write_bytes(world.recovery_private_pem)
    code, report, err = run_cli(capsys, "drill", "--data-class", "critical", "--source", "gcs",
                                "--recovery-key", str(key))
    assert code == 0, err
    (c,) = report["classes"]
    assert c["ok"] and c["source"] == "gcs" and c["dropped"]
    assert all(t["manifest"] == t["restored"] for t in c["tables"].values())


def test_status_handler_reads_the_webhook_from_its_secret(cli_env, monkeypatch, webhook):
    url, received = webhook
    arn = boto3.client("secretsmanager").create_secret(
        Name=f"hook-{cli_env.source_db}", SecretString=url)["ARN"]
    monkeypatch.delenv("VO2DR_ALERT_WEBHOOK", raising=False)
    monkeypatch.setenv("VO2DR_ALERT_WEBHOOK_SECRET", arn)
    # Days after the backups, past any state another test kept (the state is read from the
    # day of "now" and the day before): a new breach, whose message can only have gone to the
    # URL kept in the secret.
    later = cli_env.backup_times["critical"] + timedelta(days=3)
    sent = len(received)
    out = status_handler({"now": later.isoformat()})
    assert "rpo:critical:s3" in out["breaches"] and out["alert"]["kind"] == "breach"
    assert out["alert"]["sent"] is True and len(received) == sent + 1
    assert received[-1]["text"].startswith(":rotating_light: vo2dr staging: backup breach")
