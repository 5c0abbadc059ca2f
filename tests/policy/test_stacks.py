"""Both stacks' real programs (under mocks) pass every mandatory rule, and the rules really
look at them: each rule finds the resources it is about."""

from __future__ import annotations

import pytest

from dev import plan
from policy import policies as P

# Rules whose resource types the program must never declare.
FORBIDDEN_ONLY = {"gcp-serviceaccount-key-forbidden"}


@pytest.mark.parametrize("stack", plan.STACKS)
def test_real_graph_passes_every_mandatory_rule(graphs, stack_expectations, stack):
    violations = P.evaluate(graphs[stack], stack_expectations[stack])
    mandatory = [f"{v.rule} on {v.resource}: {v.message}" for v in violations if v.mandatory]
    assert mandatory == []


def test_staging_graph_has_no_advisory_findings_either(graphs, stack_expectations):
    assert P.evaluate(graphs["staging"], stack_expectations["staging"]) == []


def test_production_graph_has_no_findings_at_all(graphs, stack_expectations):
    """Even the Azure immutability lock, which Azure only does by a separate call, is in the
    graph (ImmutabilityPolicyLock), so production passes every rule, advisory ones included."""
    assert P.evaluate(graphs["production"], stack_expectations["production"]) == []


@pytest.mark.parametrize("stack", plan.STACKS)
def test_every_rule_sees_the_resources_it_is_about(graphs, stack):
    resources = P.resources_from_graph(graphs[stack])
    types = {r.type for r in resources}
    idle = [r.name for r in P.RULES if r.name not in FORBIDDEN_ONLY and not types & set(r.types)]
    assert idle == []
    for name in FORBIDDEN_ONLY:
        assert not types & set(P.RULES_BY_NAME[name].types)


def test_production_differs_from_staging_where_the_rules_say(stack_expectations):
    prod, stag = stack_expectations["production"], stack_expectations["staging"]
    assert prod.production and not stag.production
    assert prod.min_clouds == 2 and stag.min_clouds == 1


def test_expectations_come_from_the_stack_file(stack_expectations):
    """The policy compares against Pulumi.<stack>.yaml, read through infra.config.parse."""
    exp = stack_expectations["production"]
    assert exp.retention_days == {"daily": 30, "weekly": 84, "monthly": 365, "yearly": 2555}
    assert exp.tier_days == (30, 90, 365)
    assert exp.data_classes["critical"].rpo_minutes == 15


def test_storage_class_minimums_agree_with_the_program():
    from infra.config_storage import STORAGE_CLASSES

    assert {c: tuple(v) for c, v in STORAGE_CLASSES.items()} == P.TIER_CLASSES
