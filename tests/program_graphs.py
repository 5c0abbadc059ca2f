"""The mocked program's resource graph of each stack, built once per test module that asks
(``graph_of = GraphCache()``): running the program under mocks takes seconds, and the
tests of a module only read the graph."""

from __future__ import annotations

from dev.mockrun import Graph, run_program

STACKS = ("staging", "production")


class GraphCache:
    def __init__(self) -> None:
        self._graphs: dict[str, Graph] = {}

    def __call__(self, stack: str) -> Graph:
        if stack not in self._graphs:
            self._graphs[stack] = run_program(stack)
        return self._graphs[stack]
