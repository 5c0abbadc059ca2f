"""The strategy of the snapshot suites (``tests/integration/snapshots`` writes,
``tests/integration/snapshot_reads`` reads): the four data classes, ``assets`` from an uploads
bucket and ``logs`` from a log drain's application and security prefixes."""

from __future__ import annotations

import json

UPLOADS_PREFIX = "uploads/"


def strategy_json(uploads: str, drain: str) -> str:
    return json.dumps({
        "dataClasses": {
            "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
            "important": {"tables": ["app_config"], "rpoMinutes": 60, "rtoMinutes": 240},
            "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240,
                     "dailyAtUtc": "02:00"},
            "non-critical": {"tables": [], "rpoMinutes": 1440, "rtoMinutes": 1440,
                             "dailyAtUtc": "03:00"},
        },
        "application": {
            "assets": {"dataClass": "important",
                       "origins": {"uploads": f"s3://{uploads}/{UPLOADS_PREFIX}"}},
            "logs": {"dataClass": "non-critical",
                     "origins": {"application": f"s3://{drain}/application/",
                                 "security": f"s3://{drain}/security/"}},
        },
    })
