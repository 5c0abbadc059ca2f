"""Backups are kept in enough clouds (two in production) and in every cloud the stack enables."""

from __future__ import annotations

from collections.abc import Sequence

from policy.aws.s3 import _log_targets
from policy.expectations import Expectations
from policy.resources import AZ, S3, Finding, Res, _of

STORE_TYPES = {"aws": f"{S3}bucket:Bucket", "gcp": "gcp:storage/bucket:Bucket",
               "azure": f"{AZ}BlobContainer"}


def check_two_clouds(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    targets = _log_targets(resources)
    holding = sorted(cloud for cloud, type_ in STORE_TYPES.items()
                     if any(str(r.props.get("bucket")) not in targets
                            for r in _of(resources, type_)))
    out = []
    need = c.min_clouds if c is not None else 2
    if len(holding) < need:
        out.append(Finding(f"backups are stored in {holding or 'no cloud'} only: "
                           f"{'production' if c is None or c.production else 'this stack'} "
                           f"needs copies in at least {need} clouds"))
    for cloud in (c.enabled_clouds if c is not None else ()):
        if cloud not in holding:
            out.append(Finding(f"{cloud} is enabled in the stack but declares no backup store "
                               f"({STORE_TYPES[cloud]})"))
    return out
