"""The credential-free plan: current with the program, secret-free, deterministic; exits
non-zero on a mandatory violation naming the rule and the fix; diffs against the base."""

from __future__ import annotations

import copy
import json

from dev import mockrun, plan

PLAN_DIR = plan.PLAN_DIR


def _build(graphs, stack_expectations, stack: str) -> plan.Plan:
    return plan.build(stack, graphs[stack], stack_expectations[stack])


def test_committed_plans_are_current(graphs, stack_expectations):
    for stack in plan.STACKS:
        committed = (PLAN_DIR / f"{stack}.json").read_text()
        assert plan.dumps(_build(graphs, stack_expectations, stack).doc) == committed, (
            f"plan/{stack}.json is stale: run `make plan` and commit plan/")


def test_plan_states_the_backups_kept_per_class_and_tier(graphs, stack_expectations):
    """The steady-state table comes from the stack file, so it cannot silently vanish when the
    strategy leaves the functions' environment (it ships in the artifact since issue 11)."""
    for stack in plan.STACKS:
        md = _build(graphs, stack_expectations, stack).markdown
        assert "### Backups kept (steady state, per cloud)" in md, stack
        assert "| critical | 96 |" in md, stack
        assert "### Backups kept" in (PLAN_DIR / f"{stack}.md").read_text(), (
            f"plan/{stack}.md lacks the table: run `make plan` and commit plan/")


def test_plan_has_no_secret_value_and_no_machine_path(graphs, stack_expectations):
    for stack in plan.STACKS:
        text = plan.dumps(_build(graphs, stack_expectations, stack).doc)
        for secret in mockrun.TEST_SECRETS.values():
            assert secret.strip() not in text
        assert str(plan.ROOT) not in text
        assert plan.SECRET in text


def test_resources_are_sorted_and_parents_known(graphs, stack_expectations):
    doc = _build(graphs, stack_expectations, "production").doc
    urns = [r["urn"] for r in doc["resources"]]
    assert urns == sorted(urns)
    assert {r["parent"] for r in doc["resources"]} - {None} <= set(urns)
    assert doc["summary"]["resources"] == len(urns)


def _mutated_graph(graph: mockrun.Graph, type_: str, field: str, value) -> mockrun.Graph:
    bad = copy.deepcopy(graph)
    for r in bad.resources:
        if r.type == type_:
            r.inputs[field] = value
            r.raw_inputs[field] = value
    return bad


def test_injected_violation_fails_the_plan_naming_rule_and_fix(graphs, stack_expectations,
                                                               capsys):
    """Key rotation is not a stack setting, so the violation is injected into the graph."""
    bad = _mutated_graph(graphs["production"], "aws:kms/key:Key", "enableKeyRotation", False)
    result = plan.build("production", bad, stack_expectations["production"])
    assert [v.rule for v in result.mandatory] == ["aws-kms-key-rotation-enabled"]
    plan.report(result)
    err = capsys.readouterr().err
    assert "MANDATORY aws-kms-key-rotation-enabled" in err
    assert "fix: Set enable_key_rotation=True" in err
    assert "❌ mandatory policy violations" in result.markdown


def test_same_violation_is_advisory_in_staging(graphs, stack_expectations):
    bad = _mutated_graph(graphs["staging"], "aws:kms/key:Key", "enableKeyRotation", False)
    result = plan.build("staging", bad, stack_expectations["staging"])
    assert result.mandatory == []
    assert [v.enforcement for v in result.violations] == ["advisory"]


def test_shortened_retention_in_the_stack_file_fails_make_plan(capsys):
    """The whole CLI, as `make plan` runs it, with a stack setting below the retention floor."""
    status = plan.main(["production", "--no-write", "--base", "HEAD",
                        "--set", "vo2max-dr:retention.weeklyWeeks=8"])
    err = capsys.readouterr().err
    assert status == 1
    assert "MANDATORY multicloud-storage-lifecycle-retention-floor" in err
    assert "below the 84-day retention floor" in err and "fix: Raise vo2max-dr:retention" in err


def test_bad_config_fails_with_the_key_and_fix(capsys):
    status = plan.main(["staging", "--no-write", "--base", "HEAD",
                        "--set", "vo2max-dr:tiering.archiveAfterDays=40"])
    assert status == 1
    assert "vo2max-dr:tiering.archiveAfterDays" in capsys.readouterr().err


def _res(urn: str, **inputs) -> dict:
    return {"urn": urn, "type": urn.split("::")[-2], "name": urn.split("::")[-1],
            "parent": None, "protect": False, "inputs": inputs}


def test_diff_shows_added_changed_and_removed():
    base = {"stack": "production", "resources": [
        _res("urn:pulumi:production::p::aws:s3/bucket:Bucket::kept", bucket="a"),
        _res("urn:pulumi:production::p::aws:sqs/queue:Queue::gone", name="q"),
        _res("urn:pulumi:production::p::aws:kms/key:Key::key", enableKeyRotation=True),
    ]}
    head = {"stack": "production", "resources": [
        _res("urn:pulumi:production::p::aws:s3/bucket:Bucket::kept", bucket="a"),
        _res("urn:pulumi:production::p::aws:kms/key:Key::key", enableKeyRotation=False),
        _res("urn:pulumi:production::p::aws:sns/topic:Topic::new", name="t"),
    ], "summary": {"resources": 3, "byType": {}}}
    diff = plan.diff_plans(base, head)
    assert [r["name"] for r in diff.added] == ["new"]
    assert [r["name"] for r in diff.removed] == ["gone"]
    assert [(r["name"], c) for r, c in diff.changed] == [
        ("key", [("inputs.enableKeyRotation", True, False)])]
    md = plan.render_markdown(head, [], diff, "origin/main")
    assert "+1 added, ~1 changed, -1 removed" in md
    assert "- added `aws:sns/topic:Topic` **new**" in md
    assert "- removed `aws:sqs/queue:Queue` **gone**" in md
    assert "`inputs.enableKeyRotation`: true → false" in md


def test_no_base_plan_is_said_plainly():
    head = {"stack": "staging", "resources": [], "summary": {"resources": 0, "byType": {}}}
    assert "No committed plan at `origin/main`" in plan.render_markdown(head, [], None,
                                                                         "origin/main")
    assert plan.diff_plans(None, head).empty


def test_base_plan_is_read_from_git(tmp_path, monkeypatch):
    assert plan.load_base("production", "no-such-ref-xyz") is None
    monkeypatch.setenv("PLAN_BASE", "some/ref")
    assert plan.default_base() == "some/ref"


def test_clean_masks_secrets_and_normalises_assets():
    wire = {"a": {plan.SIG: plan.SIG_SECRET, "value": "pw"},
            "code": {plan.SIG: plan.SIG_ARCHIVE, "path": "/x/build/abc123/f.zip"},
            "n": 30.0, "doc": json.dumps({"Statement": [{"Effect": "Allow"}]}),
            "u": plan.UNKNOWN_VALUE}
    assert plan.clean(wire) == {"a": "[secret]", "code": "<archive f.zip>",
                                "doc": {"$json": {"Statement": [{"Effect": "Allow"}]}},
                                "n": 30, "u": "[unknown]"}
