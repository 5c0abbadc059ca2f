"""JSON logs for Lambda and Cloud Run: one JSON object per line on stderr (stdout stays for the
JSON summary), which CloudWatch Logs Insights and Cloud Logging parse into fields (Cloud
Logging reads ``severity`` and ``message`` from structured lines on either stream).

Never log secrets: log ``settings.redacted()``, not the settings, and never a database URL.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"time", "severity", "logger", "message", ...extra fields, "exception"}``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
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
    # The SDKs are chatty at INFO and may log request details.
    for noisy in ("botocore", "boto3", "urllib3", "google", "azure", "aws_encryption_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
