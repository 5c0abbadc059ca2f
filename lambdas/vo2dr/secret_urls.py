"""URLs kept in AWS Secrets Manager: the database URL (``VO2DR_DATABASE_URL_SECRET``), the drill
server's (``VO2DR_DRILL_DATABASE_URL_SECRET``) and the alert webhook's
(``VO2DR_ALERT_WEBHOOK_SECRET``). A setting given directly wins over its secret.

A secret holds a plain URL, or JSON with ``url`` / ``database_url`` / ``DATABASE_URL``, or the
shape RDS-managed secrets have (``username``, ``password``, ``host``, ``port``, ``dbname``).
Nothing here logs a secret's value; errors name the secret, never its content.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from typing import Any

from vo2dr.exceptions import ConfigError, one_line
from vo2dr.settings import Settings

# setting -> the setting naming its secret
SECRET_OF = {
    "database_url": "database_url_secret",
    "drill_database_url": "drill_database_url_secret",
    "alert_webhook": "alert_webhook_secret",
}


@functools.cache
def _secrets_client() -> Any:
    import boto3

    return boto3.client("secretsmanager")


def resolve_secrets(settings: Settings, client: Any = None,
                    names: tuple[str, ...] = tuple(SECRET_OF)) -> Settings:
    """``settings`` with each of ``names`` (default: all three) filled from Secrets Manager
    where only its ``*_secret`` setting is set."""
    updates = {name: secret_url(getattr(settings, SECRET_OF[name]), client)
               for name in names
               if not getattr(settings, name) and getattr(settings, SECRET_OF[name])}
    return replace(settings, **updates) if updates else settings


def resolve_database_url(settings: Settings, client: Any = None) -> Settings:
    """``settings`` with ``database_url`` filled from Secrets Manager when only
    ``VO2DR_DATABASE_URL_SECRET`` is set."""
    return resolve_secrets(settings, client, ("database_url",))


def secret_url(name: str, client: Any = None) -> str:
    """The URL kept in the secret ``name`` (plain, or JSON with url / RDS fields)."""
    import botocore.exceptions

    client = client or _secrets_client()
    try:
        value = client.get_secret_value(SecretId=name)["SecretString"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise ConfigError(f"cannot read the secret {name}: {one_line(exc)}") from exc
    return url_from_secret(value, name)


def url_from_secret(value: str, name: str) -> str:
    """The URL in a secret's string: itself, or from its JSON (see the module docstring)."""
    text = value.strip()
    if not text.startswith("{"):
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"secret {name} is neither a URL nor JSON") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"secret {name} is JSON but not an object")
    for key in ("url", "database_url", "DATABASE_URL"):
        if data.get(key):
            return str(data[key])
    if {"username", "host"} <= data.keys():
        from psycopg.conninfo import make_conninfo

        return make_conninfo(user=data["username"], password=data.get("password"),
                             host=data["host"], port=data.get("port", 5432),
                             dbname=data.get("dbname", "postgres"))
    raise ConfigError(f"secret {name} has no url, database_url or RDS fields")


# The names handlers.py had (kept for one landing).
_secret_url = secret_url
_url_from_secret = url_from_secret
