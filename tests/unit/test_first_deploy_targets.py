"""The README's first-deploy step (issue 11 item 10) against the program: its ``--target`` URNs
are exactly the Artifact Registry repository and everything it needs that does not exist yet on
an empty stack, in the URN form the engine gives them.

Why each one: on a targeted ``pulumi up``, a new resource that is not targeted is a "skipped
create", and a targeted resource that depends on a skipped create (through ``dependsOn``, a
property or its **parent**) fails the update ("resource will be created but was not specified
in --target list"; pulumi/pulumi ``pkg/resource/deploy/step_generator.go``). Providers and the
root stack are targeted implicitly. And ``pulumi stack --show-urns`` lists nothing before the
first deploy, so the URNs are written out literally.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dev.mockrun import Graph
from tests.program_graphs import program_graph

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "vo2max-dr"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
ROOT_STACK = "pulumi:pulumi:Stack"


def engine_urn(urn: str) -> str:
    """The engine leaves the root stack's type out of its children's type chain."""
    head, _, rest = urn.partition(f"::{PROJECT}::")
    return f"{head}::{PROJECT}::{rest.removeprefix(ROOT_STACK + '$')}"


def needed_for(graph: Graph, urn: str) -> set[str]:
    """``urn`` and, transitively, its parents and dependencies, without the root stack."""
    by_urn = {r.urn: r for r in graph.resources}
    todo, seen = [urn], set()
    while todo:
        current = todo.pop()
        if current in seen or current not in by_urn:
            continue
        seen.add(current)
        r = by_urn[current]
        todo += [*r.dependencies, *([r.parent] if r.parent else [])]
    return {engine_urn(u) for u in seen if not u.split("::")[2].endswith(ROOT_STACK)}


def readme_targets(stack: str) -> set[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("First deploy only"):]
    block = block[:block.index("```\n", block.index("```sh") + 5)]
    prefix = re.search(r'^\s*P="([^"]+)"', block, re.M)
    assert prefix, "the first-deploy block defines P"
    targets = set()
    for raw in re.findall(r'--target "([^"]+)"', block):
        value = raw.replace("$P", prefix.group(1)).replace("\\$", "$").replace("$STACK", stack)
        targets.add(value)
    return targets


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_first_deploy_targets_the_repository_and_exactly_what_it_needs(stack):
    graph = program_graph(stack)
    (repository,) = graph.of_type(REPOSITORY)
    want = needed_for(graph, repository.urn)
    assert len(want) > 1  # the repository has a parent and dependencies: all must be targeted
    assert readme_targets(stack) == want
