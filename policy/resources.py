"""Resources as the rules see them (:class:`Res`, :class:`Finding`), the graph they come from,
and values not known until the deploy (a first ``pulumi preview``), tracked per resource."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import _DictProxy as _PolicyDictProxy
from pulumi_policy.proxy import _ListProxy as _PolicyListProxy

from policy.expectations import Expectations


@dataclass(frozen=True)
class Res:
    """One resource: its type, name, URN, properties (inputs, outputs merged), parent URN and
    the URNs it depends on."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    parent: str | None = None
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    message: str
    urn: str | None = None


# The sentinels the engine sends the analyzer for a value not known at preview, one per kind
# (pulumi_policy.proxy; the same strings as the Node SDK's).
UNKNOWN_SENTINELS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string (also the Pulumi SDK's rpc.UNKNOWN)
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})


class _Unknown:
    """What a check sees in place of an unknown value: not a string, number, bool, list or
    mapping, so no check mistakes it for a real setting."""

    def __repr__(self) -> str:
        return "<unknown until deploy>"

    __str__ = __repr__


UNKNOWN = _Unknown()


def is_unknown(value: Any) -> bool:
    if isinstance(value, _Unknown):
        return True
    if isinstance(value, str):
        return value in UNKNOWN_SENTINELS
    return type(value).__name__ == "Unknown" and type(value).__module__ == "pulumi.output"


class UnknownReads:
    """Which unknown values a check read, per resource URN: ``{urn: {"a.b[0]", ...}}``."""

    def __init__(self) -> None:
        self.paths: dict[str, set[str]] = {}

    def add(self, urn: str, path: str) -> None:
        self.paths.setdefault(urn, set()).add(path)

    def __bool__(self) -> bool:
        return bool(self.paths)


def _tracked(value: Any, urn: str, path: str, reads: UnknownReads) -> Any:
    if is_unknown(value):
        reads.add(urn, path or "(all)")
        return UNKNOWN
    if isinstance(value, Mapping):
        return _TrackedMap(value, urn, path, reads)
    if isinstance(value, list | tuple):
        return [_tracked(v, urn, f"{path}[{i}]", reads) for i, v in enumerate(value)]
    return value


class _TrackedMap(Mapping[str, Any]):
    """A resource's properties as a check reads them: an unknown value reads as UNKNOWN and is
    recorded (with its path) against the resource, so the finding it leads to can be told
    apart from one made on known values."""

    def __init__(self, data: Mapping[str, Any], urn: str, path: str,
                 reads: UnknownReads) -> None:
        self._data, self._urn, self._path, self._reads = data, urn, path, reads

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return _tracked(value, self._urn, f"{self._path}.{key}" if self._path else str(key),
                        self._reads)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def plain(value: Any) -> Any:
    """Engine properties (pulumi_policy's unknown-checking proxies) as plain dicts and lists,
    unknown sentinels kept, without tripping the proxy's "unknown during preview" error."""
    if isinstance(value, _PolicyDictProxy | _PolicyListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {k: plain(value[k]) for k in value}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def resources_from_graph(graph: Any) -> list[Res]:
    """From a ``dev.mockrun.Graph`` (or any list of objects with its attributes). A value not
    known (a ``preview=True`` run) becomes the engine's unknown sentinel."""
    items = getattr(graph, "resources", graph)
    return [Res(r.type, r.name, r.urn, _sentinels({**r.outputs, **r.inputs}), r.parent or None,
                tuple(r.dependencies)) for r in items if getattr(r, "custom", True)]


def _sentinels(value: Any) -> Any:
    if is_unknown(value):
        return "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    if isinstance(value, Mapping):
        return {k: _sentinels(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sentinels(v) for v in value]
    return value


Check = Callable[[str, Mapping[str, Any], "Expectations | None"], list[str]]

StackCheck = Callable[[Sequence[Res], "Expectations | None"], list[Finding]]
S3 = "aws:s3/"


def _of(resources: Sequence[Res], *types: str) -> list[Res]:
    return [r for r in resources if r.type in types]


AZ = "azure-native:storage:"
