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


def application_prefixes(stack: str, settings: dict[str, Any] | None = None) -> list[str]:
    settings = settings or stack_settings(stack)
    app = settings.get(f"{NS}:application") or {}
    return [f"application/{stack}/{k}/" for k in ("code", "config") if app.get(k)]
