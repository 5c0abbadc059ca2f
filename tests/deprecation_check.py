"""Find deprecated Pulumi resource types and arguments a program run uses.

The provider SDKs report deprecation in two ways, and this catches both:
- a deprecated *argument* raises ``DeprecationWarning`` from the provider module when given
  through the ``<Type>Args`` class, and nothing at all when given as a keyword, so the recorded
  inputs are also compared with the arguments the SDK marks deprecated;
- a deprecated *resource type* only logs "X is deprecated" through ``pulumi.log.warn`` when it is
  constructed (e.g. ``aws.s3.BucketV2``), which under mocks goes to the root logger. The class's
  own source is checked too, in case the log line changes.

    problems = deprecated_uses(lambda: run_program("staging"))
    assert not problems
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any

PROVIDER_PACKAGES = ("pulumi_aws", "pulumi_gcp", "pulumi_azure_native")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _from_pulumi(filename: str) -> bool:
    return bool(re.search(r"[/\\]pulumi(_[a-z_]+)?[/\\]", filename))


def resource_class(type_token: str) -> type | None:
    """The SDK class of a type token (``aws:s3/bucketV2:BucketV2``), or None if unknown."""
    pkg, module_path, name = type_token.split(":")
    package = {"aws": "pulumi_aws", "gcp": "pulumi_gcp",
               "azure-native": "pulumi_azure_native"}.get(pkg)
    if package is None:
        return None
    module = module_path.split("/")[0]
    candidates = [f"{package}.{module}", f"{package}.{module}_"]
    for candidate in candidates:
        try:
            mod = importlib.import_module(candidate)
        except ImportError:
            continue
        cls = getattr(mod, name, None)
        if cls is not None:
            return cls
    return None


def deprecated_types(type_tokens: Iterable[str]) -> list[str]:
    """Type tokens whose SDK class announces itself deprecated."""
    found = []
    for token in sorted(set(type_tokens)):
        cls = resource_class(token)
        if cls is None:
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        if f"{cls.__name__} is deprecated" in source:
            found.append(token)
    return found


_DEPRECATED_ARG = re.compile(r"if (\w+) is not None:\n\s+warnings\.warn\(")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def deprecated_arguments(type_token: str, inputs: dict[str, Any]) -> list[str]:
    """Inputs of a resource that its SDK ``<Type>Args`` marks deprecated. Passing them as
    keyword arguments raises no warning at all, so they are found from the recorded inputs."""
    cls = resource_class(type_token)
    if cls is None:
        return []
    # The resource's own args class lives in its module; it is <Type>InitArgs where a nested
    # input type already took the name <Type>Args (e.g. BucketObjectLockConfiguration).
    namespace = inspect.getmodule(cls).__dict__
    args_cls = next((c for c in (namespace.get(f"{cls.__name__}InitArgs"),
                                 namespace.get(f"{cls.__name__}Args"))
                     if c is not None and c.__module__ == cls.__module__), None)
    if args_cls is None:
        return []
    try:
        source = inspect.getsource(args_cls.__init__)
    except (OSError, TypeError):
        return []
    return sorted(_camel(n) for n in set(_DEPRECATED_ARG.findall(source))
                  if _camel(n) in inputs)


def deprecated_uses(run: Callable[[], Any]) -> list[str]:
    """Run ``run`` (a program run returning a dev.mockrun Graph) and list every deprecated
    pulumi type or argument it used."""
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = run()
    finally:
        root.removeHandler(handler)
    problems = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
                if issubclass(w.category, DeprecationWarning) and _from_pulumi(w.filename)]
    problems += [m for m in handler.messages if "deprecated" in m.lower()]
    if graph is not None:
        problems += [f"deprecated resource type {t}" for t in
                     deprecated_types(r.type for r in graph.resources)]
        problems += [f"{r.name} ({r.type}): deprecated argument {a}" for r in graph.resources
                     for a in deprecated_arguments(r.type, r.inputs)]
    return problems
