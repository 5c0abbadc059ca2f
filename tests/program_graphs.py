"""The mocked program's resource graph of each stack with its stack file as written, run once
per test session (``program_graph(stack)``, and ``preview=True`` as a first preview runs it):
running the program under mocks takes seconds, and about thirty fixtures and tests across the
unit and policy suites only read that graph.

Each caller gets its own deep copy (a fifth of a second against a program run), so a test that
changes a graph cannot change what another test reads. Runs with overrides, secrets or
invokes are not cached: call ``dev.mockrun.run_program`` for those, and where the run itself is
under test (deprecation warnings, a failing invoke)."""

from __future__ import annotations

import copy

from dev.mockrun import Graph, run_program

STACKS = ("staging", "production")

_SESSION: dict[tuple[str, bool], Graph] = {}


def program_graph(stack: str, *, preview: bool = False) -> Graph:
    """``run_program(stack, preview=preview)``, run once per session; a private copy for each
    call."""
    if (stack, preview) not in _SESSION:
        _SESSION[stack, preview] = run_program(stack, preview=preview)
    return copy.deepcopy(_SESSION[stack, preview])


class GraphCache:
    """One copy per stack for a test module (``graph_of = GraphCache()``): its tests read it."""

    def __init__(self) -> None:
        self._graphs: dict[str, Graph] = {}

    def __call__(self, stack: str) -> Graph:
        if stack not in self._graphs:
            self._graphs[stack] = program_graph(stack)
        return self._graphs[stack]
