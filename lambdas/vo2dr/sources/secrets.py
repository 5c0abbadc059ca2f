"""The app's environment secrets, read from AWS Secrets Manager (by name or by name prefix)
and from SSM Parameter Store (by name or by path, recursively, decrypted).

Values are returned as bytes for the config archive only: nothing here logs them, and errors
name the secret or parameter, never its content. Only names and version ids leave this module
in clear (the manifest records them).

Least privilege: a Secrets Manager *prefix* needs ``secretsmanager:ListSecrets``, which IAM
cannot scope to a resource, so the deployed program takes secret names only. An SSM *path* is
different: ``GetParametersByPath`` is authorised against the path in the request, so the
program grants exactly ``arn:aws:ssm:<region>:<account>:parameter/<path>`` and nothing wider.
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


@dataclass(frozen=True)
class Parameter:
    """An SSM parameter (String, StringList or SecureString, decrypted)."""

    name: str  # as SSM names it: "/vo2max/production/app/x" (or "x" at the top level)
    version: int
    type: str
    value: bytes = field(repr=False)  # never in a repr, a log line or a manifest

    @property
    def member(self) -> str:
        """Its path in the archive's ``parameters/`` directory: the name without the
        leading slash."""
        return self.name.lstrip("/")


@functools.cache
def _ssm_client() -> Any:
    import boto3

    return boto3.client("ssm")


# GetParameters takes at most 10 names per call (SSM API Reference, GetParameters).
_GET_PARAMETERS_BATCH = 10


def _parameter(p: dict[str, Any]) -> Parameter:
    return Parameter(name=p["Name"], version=int(p["Version"]), type=p["Type"],
                     value=str(p["Value"]).encode())


def read_parameters(names: Iterable[str] = (), paths: Iterable[str] = (),
                    client: Any = None) -> list[Parameter]:
    """The named parameters and every parameter under each path (recursively), decrypted,
    each once, sorted by name. A named parameter that does not exist is an error naming it;
    a path is asked for without its trailing slash (the resource the grant names)."""
    import botocore.exceptions

    names, paths = sorted(set(names)), sorted(set(paths))
    if not names and not paths:
        return []
    client = client or _ssm_client()
    found: dict[str, Parameter] = {}
    where = ""
    try:
        for start in range(0, len(names), _GET_PARAMETERS_BATCH):
            batch = names[start:start + _GET_PARAMETERS_BATCH]
            where = ", ".join(batch)
            out = client.get_parameters(Names=batch, WithDecryption=True)
            if out.get("InvalidParameters"):
                raise ConfigError(
                    f"the SSM parameter(s) {', '.join(sorted(out['InvalidParameters']))} do "
                    "not exist (check vo2max-dr:application.config.parameterNames)")
            found.update((p["Name"], _parameter(p)) for p in out.get("Parameters", ()))
        for path in paths:
            where = path
            pages = client.get_paginator("get_parameters_by_path").paginate(
                Path=path.rstrip("/") or "/", Recursive=True, WithDecryption=True)
            before = len(found)
            for page in pages:
                found.update((p["Name"], _parameter(p)) for p in page.get("Parameters", ()))
            if len(found) == before and not any(n.startswith(path) for n in found):
                # A typo would otherwise back up nothing, silently, every hour.
                raise ConfigError(f"no SSM parameter under {path} (check "
                                  "vo2max-dr:application.config.parameterPaths)")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SourceError(f"cannot read the SSM parameters {where}: {one_line(exc)}") from exc
    params = [found[n] for n in sorted(found)]
    members: dict[str, str] = {}
    for p in params:
        if p.member in members:
            raise SourceError(f"the SSM parameters {members[p.member]} and {p.name} would be "
                              f"the same file parameters/{p.member} in the archive")
        members[p.member] = p.name
    return params


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
