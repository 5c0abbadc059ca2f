"""Every Lambda log line names its invocation: the request id and whether the container was
cold, from the context the runtime passes to the handler."""

from __future__ import annotations

import io
import json
import logging
from types import SimpleNamespace

import pytest
from vo2dr import handlers, logs
from vo2dr.exceptions import ConfigError
from vo2dr.settings import VARIABLES


def context(request_id: str) -> SimpleNamespace:
    return SimpleNamespace(aws_request_id=request_id, function_name="vo2dr-staging-backup")


@pytest.fixture
def lines(monkeypatch):
    for var, _ in VARIABLES.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(logs, "_cold_start", True)  # a fresh container
    stream = io.StringIO()
    real = logs.configure_json_logging
    monkeypatch.setattr(handlers, "configure_json_logging", lambda: real(stream=stream))
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logs._INVOCATION.set({})


def test_every_handler_log_line_carries_the_request_id_and_cold_start(lines):
    for request_id in ("req-1", "req-2"):
        with pytest.raises(ConfigError, match="missing setting"):
            handlers.backup_handler({"data_class": "full"}, context(request_id))
    records = lines()
    assert [r["message"] for r in records][:2] == ["backup starting", "backup failed: "
                                                  "missing setting: DATABASE_URL (or "
                                                  "--database-url), VO2DR_ENVIRONMENT (or "
                                                  "--environment), VO2DR_RECOVERY_PUBLIC_KEY (or "
                                                  "--recovery-public-key)"]
    assert len(records) == 4
    assert [(r["request_id"], r["cold_start"]) for r in records] == [
        ("req-1", True), ("req-1", True), ("req-2", False), ("req-2", False)]
    assert {r["function_name"] for r in records} == {"vo2dr-staging-backup"}


def test_library_warnings_become_json_lines(lines):
    import warnings

    logs.bind_lambda_context(context("req-9"))
    stream = io.StringIO()
    with warnings.catch_warnings():
        logs.configure_json_logging(stream=stream)  # captures warnings into logging
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    logging.captureWarnings(False)
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["logger"] == "py.warnings" and "deprecated thing" in record["message"]
    assert record["request_id"] == "req-9" and record["cold_start"] is True


def test_emf_lines_carry_the_invocation_as_properties(lines, capsys):
    logs.bind_lambda_context(context("req-7"))
    handlers._emit_with_invocation(json.dumps({
        "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
            "Namespace": "vo2dr", "Dimensions": [["DataClass"]],
            "Metrics": [{"Name": "StatusBreaches", "Unit": "Count"}]}]},
        "DataClass": "full", "StatusBreaches": 0}))
    line = capsys.readouterr().out.strip()
    assert line.startswith('{"_aws"')  # still an EMF document first
    doc = json.loads(line)
    assert (doc["request_id"], doc["cold_start"], doc["StatusBreaches"]) == ("req-7", True, 0)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "StatusBreaches", "Unit": "Count"}]  # a property, not a metric
