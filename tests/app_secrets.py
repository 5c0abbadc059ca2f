"""The app's secrets a stack backs up (vo2max-dr:application.config.secretNames), as the ARN
patterns the backup function is granted: computed from the stack file alone, independently of
the program (Secrets Manager appends "-" and six random characters to a secret's ARN)."""

from __future__ import annotations

from typing import Any

from dev.mockrun import stack_settings

NS = "vo2max-dr"


def app_secret_arns(stack: str, settings: dict[str, Any] | None = None) -> list[str]:
    settings = settings or stack_settings(stack)
    app = settings.get(f"{NS}:application") or {}
    names = (app.get("config") or {}).get("secretNames") or []
    account = settings[f"{NS}:clouds"]["aws"]["accountId"]
    region = settings.get("aws:region", "us-east-1")
    return [f"arn:aws:secretsmanager:{region}:{account}:secret:{n}-??????" for n in names]


# The roots of the application sources before their tiers (vo2dr.layout.SOURCE_LAYOUT), written
# out here so the tests do not read them from the code they check.
SOURCE_ROOTS = {"code": "application/{env}/code/", "config": "application/{env}/config/",
                "assets": "application/{env}/assets/", "logs": "logs/{env}/"}
SNAPSHOT_SOURCES = ("assets", "logs")


def application_prefixes(stack: str, settings: dict[str, Any] | None = None) -> list[str]:
    settings = settings or stack_settings(stack)
    app = settings.get(f"{NS}:application") or {}
    return [SOURCE_ROOTS[k].format(env=stack) for k in SOURCE_ROOTS if app.get(k)]


def snapshot_roots(stack: str, settings: dict[str, Any] | None = None) -> dict[str, str]:
    """Snapshot source -> its root (issue 17)."""
    settings = settings or stack_settings(stack)
    app = settings.get(f"{NS}:application") or {}
    return {k: SOURCE_ROOTS[k].format(env=stack) for k in SNAPSHOT_SOURCES if app.get(k)}


def origin_arns(stack: str, settings: dict[str, Any] | None = None) -> list[str]:
    """The snapshot origins as the ARNs a read grant names: each bucket, and its prefix's
    objects."""
    settings = settings or stack_settings(stack)
    app = settings.get(f"{NS}:application") or {}
    out = []
    for source in SNAPSHOT_SOURCES:
        for url in ((app.get(source) or {}).get("origins") or {}).values():
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            out += [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{prefix}*"]
    return out
