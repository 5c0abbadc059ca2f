"""Each stack's real program runs once per session (it takes seconds); tests copy what they
change, so no test sees another's mutation."""

from __future__ import annotations

import pytest

from dev import mockrun, plan
from tests.program_graphs import program_graph


@pytest.fixture(scope="session")
def graphs() -> dict[str, mockrun.Graph]:
    return {stack: program_graph(stack) for stack in plan.STACKS}


@pytest.fixture(scope="session")
def stack_expectations() -> dict:
    return {stack: plan.expectations(stack) for stack in plan.STACKS}
