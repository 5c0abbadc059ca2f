"""GCP labels from the stack's tags. GCP label keys and values allow only lowercase letters,
digits, ``_`` and ``-``, so ``costCenter`` becomes ``cost_center``."""

from __future__ import annotations

import re
from collections.abc import Mapping

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_INVALID = re.compile(r"[^a-z0-9_-]")


def _clean(text: str) -> str:
    return _INVALID.sub("_", _CAMEL.sub(r"_\1", text).lower())[:63]


def gcp_labels(tags: Mapping[str, str]) -> dict[str, str]:
    return {_clean(k): _clean(v) for k, v in tags.items()}
