"""JSON logs for Lambda and Cloud Run: one JSON object per line on stderr (stdout stays for the
JSON summary), which CloudWatch Logs Insights and Cloud Logging parse into fields (Cloud
Logging reads ``severity`` and ``message`` from structured lines on either stream).

Never log secrets: log ``settings.redacted()``, not the settings, and never a database URL.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# The Lambda invocation a log line belongs to (bind_lambda_context), on every line.
_INVOCATION: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "vo2dr_invocation", default={})  # noqa: B039 - never mutated, only replaced
_cold_start = True


def bind_lambda_context(context: Any) -> dict[str, Any]:
    """Put the invocation's request id, the function and whether this is the container's
    first invocation (a cold start) on every log line from now on. ``context`` is the Lambda
    context object (``None`` outside Lambda: tests, a local call)."""
    global _cold_start
    fields = {"request_id": getattr(context, "aws_request_id", None),
              "function_name": getattr(context, "function_name", None),
              "cold_start": _cold_start}
    _cold_start = False
    _INVOCATION.set({k: v for k, v in fields.items() if v is not None})
    return fields


def with_invocation(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (an EMF metrics line) with the invocation's fields as properties too: EMF
    keeps any key that is not a metric or dimension as a searchable property."""
    return {**document, **_INVOCATION.get()}


class JsonFormatter(logging.Formatter):
    """``{"time", "severity", "logger", "message", ...extra fields, "exception"}``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_INVOCATION.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_json_logging(level: int = logging.INFO, stream=None) -> None:
    """Route the root logger through :class:`JsonFormatter` (idempotent: Lambda reuses the
    process, and its runtime has already installed a handler of its own, which we replace)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # False first: True is a no-op once set, even if warnings.showwarning was put back since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)  # library warnings become JSON lines too
    # The SDKs are chatty at INFO and may log request details.
    for noisy in ("botocore", "boto3", "urllib3", "google", "azure", "aws_encryption_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
