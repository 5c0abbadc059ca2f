"""GCP Cloud Run: the standby job carries no credential in clear."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.credentials import _env_findings
from policy.expectations import Expectations
from policy.parsing import _as_list, get


def check_cloudrun_no_credentials(_t: str, p: Mapping[str, Any],
                                  _c: Expectations | None) -> list[str]:
    out = []
    template = get(p, "template.template") or {}
    for container in _as_list(template.get("containers")):
        envs = {e.get("name"): e.get("value") for e in _as_list(get(container, "envs"))
                if isinstance(e, Mapping) and "value" in e}
        out += _env_findings(envs, "job container environment")
    if not template.get("serviceAccount"):
        out.append("job runs as the default compute service account (template.template."
                   "serviceAccount unset)")
    return out
