"""``vo2dr report`` against real backups and a real drill in the three emulators: the drill and
every backup leave signed records, and the report is built from all stores, from any single
one, and with AWS unreachable."""

from __future__ import annotations

import json

import pytest
from vo2dr.cli import main
from vo2dr.records import check_record, prefix
from vo2dr.signing import TrustedKeys

from tests import signing_keys

from .conftest import ROOT_STACK

pytestmark = pytest.mark.integration


def report(capsys, tmp_path, name: str, *extra: str) -> tuple[dict, str]:
    html, js = tmp_path / f"{name}.html", tmp_path / f"{name}.json"
    code = main(["report", "--since", "2d", "--output", str(html), "--json-output", str(js),
                 *extra])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert f"vo2dr report: {html.resolve()}" in err
    return json.loads(js.read_text()), err


def test_drill_record_and_report_from_every_store_one_store_and_aws_down(
        world, monkeypatch, capsys, tmp_path):
    for k, v in {**world.env(), "VO2DR_SIGNING_KEY": signing_keys.PRIVATE.decode(),
                 "VO2DR_STACK_FILE": str(ROOT_STACK)}.items():
        monkeypatch.setenv(k, v)
    assert main(["drill"]) == 0
    drill = json.loads(capsys.readouterr().out)
    assert drill["record"] == {"s3": "written", "gcs": "written", "azure": "written"}
    trusted = TrustedKeys.from_pem(signing_keys.TRUSTED)
    for name, store in world.stores().items():
        keys = [o.key for o in store.list(prefix("staging", "drill"))]
        assert len(keys) == 1, name
        rec = check_record(keys[0], store.get_bytes(keys[0]), trusted)
        assert rec.valid and [c["ok"] for c in rec.body["classes"]] == [True] * 3
        assert world.settings.drill_database_url not in store.get_bytes(keys[0]).decode()
        attempts = [o.key for o in store.list(prefix("staging", "attempt"))]
        assert len(attempts) >= 3  # one per backup the world took

    doc, err = report(capsys, tmp_path, "all")
    assert "listed" in err  # progress on stderr
    assert doc["history"]["stores_read"] == ["s3", "gcs", "azure"]
    assert doc["history"]["untrusted_records"] == []
    assert doc["drills"]["count"] == 1
    last = doc["controls"]["last_drill"]
    assert {n: last[n]["ok"] for n in last} == {"critical": True, "important": True,
                                                 "full": True}
    assert last["critical"]["backup_id"] == world.backups["critical"]
    assert doc["controls"]["available"] and doc["controls"]["violated"] == 0
    attempts = doc["success_rate"]["classes"]["critical"]["attempts"]
    assert attempts["attempts"] >= 1 and attempts["failed"] == 0
    assert doc["storage"]["now"]["bytes"] > 0
    assert set(doc["storage"]["now"]["by_cloud"]) == {"aws", "gcp", "azure"}

    # Any single store is enough.
    monkeypatch.delenv("VO2DR_S3_BUCKET")
    monkeypatch.delenv("VO2DR_GCS_BUCKET")
    one, _ = report(capsys, tmp_path, "azure")
    assert one["history"]["stores_read"] == ["azure"]
    assert one["drills"]["count"] == 1
    assert one["controls"]["last_drill"] == doc["controls"]["last_drill"]

    # AWS unreachable: the others answer, S3 is named.
    monkeypatch.setenv("VO2DR_S3_BUCKET", world.settings.s3_bucket)
    monkeypatch.setenv("VO2DR_GCS_BUCKET", world.settings.gcs_bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    down, _ = report(capsys, tmp_path, "aws-down")
    assert "s3" in down["history"]["store_errors"]
    assert down["history"]["stores_read"] == ["gcs", "azure"]
    assert down["drills"]["count"] == 1
    assert down["controls"]["last_drill"] == doc["controls"]["last_drill"]
