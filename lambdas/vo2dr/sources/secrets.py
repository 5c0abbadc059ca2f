"""The app's environment secrets, read from AWS Secrets Manager by name or by name prefix.

Values are returned as bytes for the config archive only: nothing here logs them, and errors
name the secret, never its content. Only names and version ids leave this module in clear
(the manifest records them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vo2dr.exceptions import ConfigError, SourceError, one_line


@dataclass(frozen=True)
class Secret:
    name: str
    version_id: str
    value: bytes = field(repr=False)  # never in a repr, a log line or a manifest
    binary: bool = False  # SecretBinary rather than SecretString


@functools.cache
def _client() -> Any:
    import boto3

    return boto3.client("secretsmanager")


def read_secret(name: str, client: Any = None) -> Secret:
    """The current version of the secret ``name``."""
    import botocore.exceptions

    client = client or _client()
    try:
        out = client.get_secret_value(SecretId=name)
    except client.exceptions.ResourceNotFoundException as exc:
        raise ConfigError(f"the secret {name} does not exist (check "
                          "vo2max-dr:application.config.secretNames)") from exc
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SourceError(f"cannot read the secret {name}: {one_line(exc)}") from exc
    if out.get("SecretString") is not None:
        return Secret(name=out["Name"], version_id=out["VersionId"],
                      value=out["SecretString"].encode())
    return Secret(name=out["Name"], version_id=out["VersionId"], value=out["SecretBinary"],
                  binary=True)


def names_with_prefix(prefix: str, client: Any = None) -> list[str]:
    """Every secret whose name starts with ``prefix`` (Secrets Manager's name filter matches
    prefixes; the result is checked again here)."""
    import botocore.exceptions

    client = client or _client()
    names: list[str] = []
    try:
        pages = client.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "name", "Values": [prefix]}])
        for page in pages:
            names.extend(s["Name"] for s in page.get("SecretList", ())
                         if s["Name"].startswith(prefix))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SourceError(f"cannot list the secrets under {prefix}: {one_line(exc)}") from exc
    return sorted(set(names))


def read_secrets(names: Iterable[str], prefix: str = "", client: Any = None) -> list[Secret]:
    """The named secrets and every secret under ``prefix``, by name, each read once."""
    client = client or _client()
    wanted = set(names)
    if prefix:
        wanted.update(names_with_prefix(prefix, client))
    return [read_secret(n, client) for n in sorted(wanted)]
