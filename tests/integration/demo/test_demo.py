"""`make demo` end to end at a tiny scale: real servers, the real `vo2dr` console script."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from dev.servers import ROOT

STORES = ("s3", "gcs", "azure")
DATA_CLASSES = ("full", "critical", "important")


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_demo_backs_up_to_all_three_clouds_and_stops_its_servers(tmp_path):
    report_path = tmp_path / "demo.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GOOGLE_", "AZURE_", "VO2DR_"))
           and k not in ("STORAGE_EMULATOR_HOST", "DATABASE_URL")}
    env |= {"VO2DR_DEMO_SCALE": "0.3", "VO2DR_DEMO_REPORT": str(report_path),
            "VO2DR_DEMO_HTML": str(tmp_path / "report.html")}
    proc = subprocess.run([sys.executable, "-m", "dev.demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=840, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    record = json.loads(report_path.read_text())
    steps = {s["name"]: s for s in record["steps"]}
    assert all(s["status"] != "failed" for s in record["steps"]), record["steps"]
    for data_class in DATA_CLASSES:
        assert steps[f"backup {data_class}"]["status"] == "ok"
    # The demo shows the tiers chosen: critical's second backup of the day is intraday, with
    # its own, shorter lock, and lands in every store under the intraday prefix.
    again = steps["backup critical again"]
    assert again["status"] == "ok" and "(intraday, locked until " in again["detail"]
    assert steps["tiers chosen"]["detail"].endswith("critical intraday")
    intraday = {(o["store"]) for o in record["objects"] if "/intraday/critical/" in o["key"]}
    assert intraday == set(STORES)

    # Every store holds a body and its manifest for every data class.
    keys = {(o["store"], o["key"]) for o in record["objects"]}
    for store in STORES:
        for data_class in DATA_CLASSES:
            bodies = {k.removesuffix(".dump.enc") for s, k in keys
                      if s == store and k.endswith(".dump.enc") and f"/{data_class}/" in k}
            manifests = {k.removesuffix(".manifest.json") for s, k in keys
                         if s == store and k.endswith(".manifest.json")
                         and f"/{data_class}/" in k}
            assert bodies & manifests, f"{store} has no complete {data_class} backup"

    # The application (issue 16): a local repository and app secrets backed up, verified,
    # restored into new places (the config with the recovery key only) and equal to the
    # originals; the drill restored both, the status measured both against their RPO.
    for step in ("backup code", "backup config", "verify code from s3",
                 "verify config from gcs (recovery key)", "restore code from azure",
                 "restore config from gcs (recovery key)", "restored copies"):
        assert steps[step]["status"] == "ok", steps.get(step)
    assert "git for-each-ref equal" in steps["restored copies"]["detail"]
    drilled = {s["source"]: s for s in record["reports"]["drill"]["sources"]}
    assert drilled["code"]["ok"] and drilled["config"]["ok"], drilled
    assert set(record["reports"]["status"]["sources"]) == {"code", "config", "assets", "logs"}

    # The snapshot sources (issue 17): an uploads bucket with a few hundred objects, two
    # snapshots around 1 % of changes, only the changed bytes moved, the first snapshot
    # restored offline and byte-identical (deleted objects included); the log drain by origin.
    for step in ("uploads bucket", "snapshot assets", "snapshot assets after 1 % changes",
                 "only the new bytes moved", "vo2dr list --kind assets",
                 "verify assets from s3 (random sample)",
                 "restore the first snapshot from gcs (recovery key)", "restored copy",
                 "snapshot logs", "restore the security logs from azure",
                 "restored security logs", "prune assets (dry run)"):
        assert steps[step]["status"] == "ok", steps.get(step)
    assert "byte-identical" in steps["restored copy"]["detail"]
    assert drilled["assets"]["ok"] and drilled["logs"]["ok"], drilled

    # The DR report (issue 18): written where the demo says, from the demo's own records: the
    # drill of every class; the attacker's backup in GCS (its attempt record and its manifest,
    # signed with their own key) shown as invalid, not counted.
    assert steps["report"]["status"] == "ok" and str(tmp_path / "report.html") in \
        steps["report"]["detail"]
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert str(tmp_path / "report.html") in proc.stdout.replace("\n", "")  # where it is
    dr = record["reports"]["report"]
    assert dr["drills"]["count"] == 1
    assert all(c["last"]["ok"] for c in dr["drills"]["classes"].values())
    untrusted = dr["history"]["untrusted_records"]
    assert [u["trust"] for u in untrusted] == ["invalid", "invalid"], untrusted
    assert sorted(u["key"].split("/")[0] for u in untrusted) == ["database", "reports"]
    assert all("untrusted key" in u["reason"] for u in untrusted), untrusted

    # Every server the demo started is gone.
    assert steps["cleanup"]["status"] == "ok"
    for port in re.findall(r":(\d+)", steps["servers"]["detail"]):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", int(port))) != 0, f"port {port} still open"
