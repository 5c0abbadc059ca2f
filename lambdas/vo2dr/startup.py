"""A process's start-up with the cyclic garbage collector paused.

Starting a command imports the SDKs it uses and builds their clients: about a thousand modules
and a few hundred thousand objects that live as long as the process. The collector, set off by
every 700 new container objects, traverses all of them again and again while they are being
created, for nothing: on this project's ``vo2dr status`` (three stores) that was 0.1-0.2 of
its 0.9 CPU-seconds of start-up (Python 3.11, measured with the collector off).

So the entry points (:func:`vo2dr.cli.main`, the Lambda handlers) call :func:`pause` first, and
:func:`resume` ends the pause at the first of: the stores are opened
(:func:`vo2dr.stores.open_stores`, the end of start-up for every command that reads or writes a
store), a backup starts streaming, the command or invocation ends. The first resume of a
process also freezes what start-up built (``gc.freeze``: modules, classes, clients; the
collector never traverses them again, so later collections cost less too). A process pauses
once: a warm Lambda's later invocations import nothing new and run with the collector on.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
_state = {"paused": False, "done": False}


def pause() -> None:
    """Pause the collector for the process's start-up (once per process; no-op if it is
    already off, e.g. disabled by the embedding program)."""
    if _state["done"] or _state["paused"] or not gc.isenabled():
        return
    gc.disable()
    _state["paused"] = True


def resume() -> None:
    """End the start-up pause (no-op when not paused): freeze what start-up built, collect
    again."""
    if not _state["paused"]:
        return
    _state["paused"] = False
    _state["done"] = True
    gc.freeze()
    gc.enable()


def paused() -> bool:
    return _state["paused"]


def entry_point(func: _F) -> _F:
    """Decorate an entry point (the CLI's main, a Lambda handler): its start-up runs with the
    collector paused, and the pause never outlives it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        pause()
        try:
            return func(*args, **kwargs)
        finally:
            resume()

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def lean_google_import() -> Iterator[None]:
    """Import the Google Cloud Storage client without two things its store never uses.

    - **google-api-core's distribution scan.** In a Python version's deprecation window (3.11
      from 2026; the Lambda's 3.12 not yet) google-api-core warns, on import, that support will
      end, and to name its distribution in that warning ("package google-api-core
      (google.api_core)") it maps every installed distribution to its import packages
      (``importlib.metadata.packages_distributions()``), even when the warning is filtered:
      0.08-0.15 CPU-s in this project's venv. In the block that scan answers ``{}``, so the
      warning names the import package (``google.api_core``); the warning is still given.
    - **gRPC.** ``google.api_core.exceptions`` imports ``grpc`` when it is installed, to map
      gRPC status codes (the CLI's venv has it for Pulumi; the Lambda artifact does not): about
      0.05-0.09 s. The store talks to the JSON API over HTTP, so in the block ``grpc`` reads as
      absent (``google.api_core.exceptions.grpc`` is None, as in Lambda); a ``grpc`` imported
      before the block is left alone, and one imported after it is the real one.

    Only while this is the process's one thread: another thread (a restore's quorum check or
    its Encryption SDK warm-up) could otherwise import something during the block and see
    either substitute, so then the client is imported as it is."""
    import importlib.metadata as metadata
    import sys
    import threading

    if threading.active_count() > 1:
        yield
        return
    original = metadata.packages_distributions
    metadata.packages_distributions = dict
    hide_grpc = "grpc" not in sys.modules
    if hide_grpc:
        sys.modules["grpc"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        metadata.packages_distributions = original
        if hide_grpc and "grpc" in sys.modules and sys.modules["grpc"] is None:
            del sys.modules["grpc"]
