"""Every private Pulumi SDK internal the mock harness (``dev.mockrun``) uses, in one place.

Pulumi's public testing API (``pulumi.runtime.set_mocks``, ``Mocks``) runs a program, but it
does not hand back what a reviewer needs: each resource's wire-form inputs (secrets still
wrapped), its dependencies, the stack's outputs, or a clean slate between two runs in one
process. For those the harness reaches into SDK internals. They are named here and nowhere
else, and :func:`canary` checks each one, so a Pulumi upgrade that moves or changes one fails
``tests/unit/test_mockrun_adapter.py`` with the name of what changed, instead of failing
somewhere inside a program run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from importlib import metadata
from typing import Any

import pulumi
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import rpc as _rpc
from pulumi.runtime import settings as _settings
from pulumi.runtime import stack as _stack
from pulumi.runtime import sync_await as _sync

# Wire-format signatures (pulumi/sdk/python/lib/pulumi/runtime/rpc.py; the same values are in
# the Go SDK's resource/properties.go).
SECRET_SIG_KEY: str = _rpc._special_sig_key
SECRET_SIG: str = _rpc._special_secret_sig
UNKNOWN: str = _rpc.UNKNOWN

MockMonitor = _mocks.MockMonitor
MockResourceArgs = _mocks.MockResourceArgs
MockCallArgs = _mocks.MockCallArgs
deserialize_properties = _rpc.deserialize_properties


def ensure_event_loop() -> None:
    """Resource references deserialize only with an event loop on the monitor's thread."""
    _mocks._ensure_event_loop()


def sync_await(awaitable: Any) -> Any:
    return _sync._sync_await(awaitable)


def run_program(program: Callable[[], Any]) -> None:
    """Run ``program`` as the engine runs a stack's program, waiting for every output."""
    coroutine: Coroutine[Any, Any, Any] = _stack.run_pulumi_func(program)
    sync_await(coroutine)


def forget_root() -> None:
    """Forget the previous run's root stack (before ``set_mocks``, which then makes a new
    one), so two programs run in one process cannot see each other's resources."""
    _settings.set_root_resource(None)


def clear_pending() -> None:
    """Drop pending RPCs and outputs left by the previous run (after ``set_mocks``)."""
    _settings.SETTINGS.rpc_manager.clear()
    _settings.SETTINGS.outputs.clear()


def root_outputs() -> dict[str, Any]:
    """The outputs the program exported (``pulumi.export``): under mocks the root Stack
    registers them before the program finishes, so they are read from the root resource."""
    root = _settings.get_root_resource()
    return dict(getattr(root, "outputs", {}) or {})


def is_unknown(value: Any) -> bool:
    """An input that is not known at preview, as the SDK deserializes it."""
    return isinstance(value, pulumi.output.Unknown)


class InternalsChanged(AssertionError):
    pass


def canary() -> list[str]:
    """What this adapter needs from the installed Pulumi SDK and no longer finds (empty when
    all is well). Each entry names the internal and the file to update."""
    problems: list[str] = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"pulumi {metadata.version('pulumi')}: {what} changed; update "
                            "dev/pulumi_adapter.py")

    need(isinstance(getattr(_rpc, "_special_sig_key", None), str)
         and _rpc._special_sig_key == "4dabf18193072939515e22adb298388d",
         "rpc._special_sig_key")
    need(getattr(_rpc, "_special_secret_sig", None) == "1b47061264138c4ac30d75fd1eb44270",
         "rpc._special_secret_sig")
    need(getattr(_rpc, "UNKNOWN", None) == "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "rpc.UNKNOWN")
    need(callable(getattr(_mocks, "_ensure_event_loop", None)), "mocks._ensure_event_loop")
    need(callable(getattr(_sync, "_sync_await", None)), "sync_await._sync_await")
    need(callable(getattr(_stack, "run_pulumi_func", None)), "stack.run_pulumi_func")
    settings_obj = getattr(_settings, "SETTINGS", None)
    need(settings_obj is not None and hasattr(settings_obj, "rpc_manager")
         and hasattr(settings_obj, "outputs"), "settings.SETTINGS.rpc_manager/outputs")
    need(callable(getattr(_settings, "set_root_resource", None)), "settings.set_root_resource")
    need(callable(getattr(_settings, "get_root_resource", None)), "settings.get_root_resource")
    monitor = getattr(_mocks, "MockMonitor", None)
    need(monitor is not None and callable(getattr(monitor, "RegisterResource", None))
         and "resources" in getattr(monitor, "__annotations__", {}),
         "mocks.MockMonitor.RegisterResource/resources")
    params = inspect.signature(pulumi.runtime.set_mocks).parameters
    need({"mocks", "project", "stack", "preview", "monitor"} <= set(params),
         "runtime.set_mocks(mocks, project, stack, preview, monitor)")
    need(hasattr(pulumi.output, "Unknown"), "output.Unknown")
    return problems
