"""The application sources of the strategy (``vo2max-dr:application``): the code repository,
the app's configuration and secrets, and the snapshot sources (assets, logs) with their
read-only origins. Their settings and validation, pure like the rest of the strategy:
``vo2dr.strategy.parse_strategy`` parses them with the data classes they refer to.

The stack file's namespace is defined here, in the part of the strategy every other imports."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vo2dr.exceptions import ConfigError

if TYPE_CHECKING:
    from vo2dr.strategy import DataClass

STACK_NAMESPACE = "vo2max-dr"


@dataclass(frozen=True)
class CodeSourceSpec:
    """The code repository: every ref, as one git bundle (``vo2dr.sources.code``)."""

    data_class: str


@dataclass(frozen=True)
class ConfigSourceSpec:
    """The app's configuration: files matching ``paths`` at the default branch's head, and
    the environment's secrets in AWS Secrets Manager and SSM Parameter Store
    (``vo2dr.sources.config``)."""

    data_class: str
    paths: tuple[str, ...]
    secret_names: tuple[str, ...] = ()
    secret_prefix: str = ""
    # SSM Parameter Store: parameters by name, and every parameter under each path
    # (recursively; a path starts and ends with "/").
    parameter_names: tuple[str, ...] = ()
    parameter_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnapshotSource:
    """A source backed up as incremental snapshots (``vo2dr.snapshots``): one or more named,
    read-only origins (``s3://bucket/prefix/``, ``gs://bucket/prefix/``, ``file:///dir/``);
    object ``k`` under origin ``o`` is the snapshot entry ``o/k``."""

    name: str
    data_class: str
    origins: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"dataClass": self.data_class, "origins": dict(self.origins)}


SNAPSHOT_SOURCES = ("assets", "logs")
ORIGIN_SCHEMES = ("s3", "gs", "file")
_ORIGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$")


@dataclass(frozen=True)
class Application:
    """``vo2max-dr:application``: the application sources backed up beside the database. The
    repository's read-only token is a secret (``vo2max-dr:repositoryToken``), never here."""

    repository_url: str = ""
    code: CodeSourceSpec | None = None
    config: ConfigSourceSpec | None = None
    # assets and/or logs (SNAPSHOT_SOURCES), by name
    snapshots: Mapping[str, SnapshotSource] = field(default_factory=dict)

    def sources(self) -> dict[str, CodeSourceSpec | ConfigSourceSpec]:
        """The single-body sources (code, config); the snapshot ones are :attr:`snapshots`."""
        return {k: v for k, v in (("code", self.code), ("config", self.config)) if v}

    def all_sources(self) -> dict[str, CodeSourceSpec | ConfigSourceSpec | SnapshotSource]:
        """Every configured application source, snapshot sources included."""
        return {**self.sources(), **self.snapshots}

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = ({"repositoryUrl": self.repository_url}
                               if self.repository_url else {})
        doc.update({name: snap.to_json() for name, snap in self.snapshots.items()})
        if self.code:
            doc["code"] = {"dataClass": self.code.data_class}
        if self.config:
            doc["config"] = {"dataClass": self.config.data_class,
                             "paths": list(self.config.paths),
                             "secretNames": list(self.config.secret_names),
                             "secretPrefix": self.config.secret_prefix}
            if self.config.parameter_names:
                doc["config"]["parameterNames"] = list(self.config.parameter_names)
            if self.config.parameter_paths:
                doc["config"]["parameterPaths"] = list(self.config.parameter_paths)
        return doc


_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]/-]+$")
# SSM parameter names: letters, digits and _.- in "/"-separated levels, at most 15 levels and
# 1011 characters; "aws" and "ssm" are reserved first levels (SSM User Guide, "Parameter name
# requirements and constraints").
_PARAMETER_LEVEL = re.compile(r"^[A-Za-z0-9_.-]+$")
_PARAMETER_MAX_LEVELS = 15
_PARAMETER_MAX_CHARS = 1011


def _parameter_levels(name: str) -> list[str] | None:
    """The levels of an SSM parameter name or path, or None when it is not a valid one."""
    if not isinstance(name, str) or not name or len(name) > _PARAMETER_MAX_CHARS:
        return None
    levels = name.strip("/").split("/")
    if ("/" in name.strip("/") and not name.startswith("/")) or "//" in name \
            or len(levels) > _PARAMETER_MAX_LEVELS \
            or not all(_PARAMETER_LEVEL.match(x) for x in levels) \
            or levels[0].lower().startswith(("aws", "ssm")):
        return None
    return levels


def _parameter_settings(c: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(parameterNames, parameterPaths)`` of ``application.config``, validated."""
    names = c.get("parameterNames", [])
    if not isinstance(names, list) or not all(
            _parameter_levels(n) and not n.endswith("/") for n in names):
        raise ConfigError(f"{_app_key('config', 'parameterNames')} must be a list of SSM "
                          "parameter names such as /vo2max/production/app/nextauth-secret "
                          "(levels of letters, digits and _.-, not starting with aws or ssm)")
    paths = c.get("parameterPaths", [])
    if not isinstance(paths, list):
        raise ConfigError(f"{_app_key('config', 'parameterPaths')} must be a list of SSM paths "
                          "such as /vo2max/production/app/")
    for path in paths:
        if not (isinstance(path, str) and path.startswith("/") and path.endswith("/")
                and path != "/" and _parameter_levels(path)):
            raise ConfigError(f"{_app_key('config', 'parameterPaths')} has {path!r}: use an SSM "
                              "path that starts and ends with / and is not / itself (every "
                              "parameter under it is read, recursively)")
    return tuple(names), tuple(paths)


def _app_key(*parts: str) -> str:
    return ".".join((f"{STACK_NAMESPACE}:application", *parts))


def _source_class(raw: Mapping[str, Any], source: str,
                  data_classes: Mapping[str, DataClass]) -> str:
    name = raw.get("dataClass")
    if name not in data_classes:
        raise ConfigError(f"{_app_key(source, 'dataClass')} is {name!r}: use one of "
                          f"{', '.join(data_classes)} (it sets the source's RPO, RTO and "
                          "schedule)")
    return str(name)


def parse_origin(url: Any, key: str) -> tuple[str, str, str]:
    """``(scheme, bucket or "", prefix or absolute directory)`` of an origin URL, or a
    :class:`ConfigError` naming ``key``. Prefixes are "" or end with "/", so an origin never
    reaches objects of a sibling prefix (``uploads`` would also match ``uploads-old/``)."""
    from urllib.parse import urlparse

    hint = ("use s3://bucket/prefix/, gs://bucket/prefix/ or file:///absolute/dir/")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{key} must be an origin URL: {hint}; got {url!r}")
    parsed = urlparse(url)
    if parsed.scheme not in ORIGIN_SCHEMES or parsed.query or parsed.fragment \
            or parsed.password or parsed.username:
        raise ConfigError(f"{key} is {url!r}: {hint} (no credentials, query or fragment)")
    path = parsed.path
    if ".." in path.split("/") or "//" in path:
        raise ConfigError(f"{key} is {url!r}: the path must not contain .. or empty parts")
    if parsed.scheme == "file":
        if parsed.netloc or not path.startswith("/"):
            raise ConfigError(f"{key} is {url!r}: a local origin is file:///absolute/dir/")
        return "file", "", path.rstrip("/") or "/"
    if not _BUCKET.match(parsed.netloc or ""):
        raise ConfigError(f"{key} is {url!r}: {parsed.netloc!r} is not a bucket name")
    prefix = path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        raise ConfigError(f"{key} is {url!r}: end the prefix with / (a bare prefix would also "
                          "match its siblings)")
    return parsed.scheme, parsed.netloc, prefix


def parse_snapshot_source(name: str, raw: Any,
                          data_classes: Mapping[str, DataClass]) -> SnapshotSource:
    """``vo2max-dr:application.<assets|logs>``: its data class and named origins."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_app_key(name)} must be a mapping with dataClass and origins")
    for extra in sorted(set(raw) - {"dataClass", "origins"}):
        raise ConfigError(f"{_app_key(name, extra)} is not a setting: use dataClass and origins")
    data_class = _source_class(raw, name, data_classes)
    origins = raw.get("origins")
    if not isinstance(origins, Mapping) or not origins:
        raise ConfigError(f"{_app_key(name, 'origins')} must map origin names to URLs, e.g. "
                          "uploads: s3://bucket/uploads/")
    for origin, url in origins.items():
        if not isinstance(origin, str) or not _ORIGIN_NAME.match(origin):
            raise ConfigError(f"{_app_key(name, 'origins')} has the name {origin!r}: use "
                              "lower-case letters, digits, - and _ (it is the entries' prefix)")
        parse_origin(url, _app_key(name, "origins", origin))
    return SnapshotSource(name=name, data_class=data_class,
                          origins={str(k): str(v) for k, v in sorted(origins.items())})


def parse_application(raw: Any, data_classes: Mapping[str, DataClass]) -> Application:
    """Validate ``vo2max-dr:application``: the repository URL (https, ssh or a local path;
    never with credentials in it), and per source its data class, the config's path globs
    and secret names or prefix, the snapshot sources' origins."""
    from urllib.parse import urlparse

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_app_key()} must be a mapping with repositoryUrl, code and config")
    snapshots = {name: parse_snapshot_source(name, raw[name], data_classes)
                 for name in SNAPSHOT_SOURCES if raw.get(name) is not None}
    for extra in sorted(set(raw) - {"repositoryUrl", "code", "config", *SNAPSHOT_SOURCES}):
        raise ConfigError(f"{_app_key(extra)} is not a setting: use code, config, assets or "
                          "logs")
    if raw.get("code") is None and raw.get("config") is None and "repositoryUrl" not in raw:
        if not snapshots:
            raise ConfigError(f"{_app_key()} backs up nothing: add code, config, assets "
                              "and/or logs")
        return Application(snapshots=snapshots)
    url = raw.get("repositoryUrl")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{_app_key('repositoryUrl')} must be the repository's clone URL, "
                          f"got {url!r}")
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "ssh", "file", "") or (
            parsed.scheme == "https" and not parsed.hostname):
        raise ConfigError(f"{_app_key('repositoryUrl')} must be an https://, ssh:// or file:// "
                          "URL or a local path")
    if parsed.password or (parsed.scheme == "https" and parsed.username):
        raise ConfigError(f"{_app_key('repositoryUrl')} carries credentials: remove them and "
                          f"set the read-only token with `pulumi config set --secret "
                          f"{STACK_NAMESPACE}:repositoryToken`")
    code = None
    if raw.get("code") is not None:
        if not isinstance(raw["code"], Mapping):
            raise ConfigError(f"{_app_key('code')} must be a mapping with dataClass")
        code = CodeSourceSpec(data_class=_source_class(raw["code"], "code", data_classes))
    config = None
    if raw.get("config") is not None:
        c = raw["config"]
        if not isinstance(c, Mapping):
            raise ConfigError(f"{_app_key('config')} must be a mapping with dataClass and paths")
        paths = c.get("paths")
        if not isinstance(paths, list) or not paths:
            raise ConfigError(f"{_app_key('config', 'paths')} must be a non-empty list of path "
                              "globs in the repository, e.g. ['.env.*', 'vercel.json']")
        for p in paths:
            if (not isinstance(p, str) or not _GLOB.match(p) or p.startswith("/")
                    or ".." in p.split("/")):
                raise ConfigError(f"{_app_key('config', 'paths')} has {p!r}: use a relative "
                                  "glob inside the repository (no leading /, no ..)")
        names = c.get("secretNames", [])
        if not isinstance(names, list) or not all(
                isinstance(n, str) and _SECRET_NAME.match(n) for n in names):
            raise ConfigError(f"{_app_key('config', 'secretNames')} must be a list of Secrets "
                              "Manager names (letters, digits and /_+=.@-)")
        prefix = c.get("secretPrefix", "")
        if not isinstance(prefix, str) or (prefix and not _SECRET_NAME.match(prefix)):
            raise ConfigError(f"{_app_key('config', 'secretPrefix')} must be a Secrets Manager "
                              "name prefix such as vo2max/production/app/")
        if prefix and not prefix.endswith("/"):
            raise ConfigError(f"{_app_key('config', 'secretPrefix')} {prefix!r} must end with /"
                              ": a bare prefix would also match other apps' secrets")
        for extra in sorted(set(c) - {"dataClass", "paths", "secretNames", "secretPrefix",
                                      "parameterNames", "parameterPaths"}):
            raise ConfigError(f"{_app_key('config', extra)} is not a setting: use dataClass, "
                              "paths, secretNames, secretPrefix, parameterNames or "
                              "parameterPaths")
        parameter_names, parameter_paths = _parameter_settings(c)
        config = ConfigSourceSpec(
            data_class=_source_class(c, "config", data_classes), paths=tuple(paths),
            secret_names=tuple(names), secret_prefix=prefix,
            parameter_names=parameter_names, parameter_paths=parameter_paths)
    if code is None and config is None and not snapshots:
        raise ConfigError(f"{_app_key()} backs up nothing: add code, config, assets and/or "
                          "logs")
    return Application(repository_url=url, code=code, config=config, snapshots=snapshots)
