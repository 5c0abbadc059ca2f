"""Credential-free plan: what a stack declares, which rules it breaks, and what a change adds,
changes or removes -- without a cloud account or the Pulumi CLI.

    python -m dev.plan [STACK ...] [--base REF] [--set KEY=VALUE ...] [--check] [--no-write]
    make plan STACK=production

It also regenerates ``policy/config/<stack>.json`` and ``docs/controls.md`` (``policy.controls``).
For each stack (both when none is named) it runs the real program under mocks
(``dev.mockrun.run_program``), writes ``plan/<stack>.json`` (resources sorted by URN with their
inputs: deterministic, secrets masked, no machine paths) and ``plan/<stack>.md`` (policy
results, the diff against the base branch's committed plan, counts by type, resource tree),
and evaluates the policy pack (``policy.policies``) on the same graph.

Exit status: 0 when no mandatory rule is violated; 1 on a mandatory violation (each printed
with the rule and its fix), on a configuration error, or with ``--check`` when a committed
plan is stale. The base is ``--base``, else ``$PLAN_BASE``, else ``origin/main`` when it
exists, else ``HEAD``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from vo2dr.exceptions import ConfigError

from dev import mockrun
from policy import controls, policies

ROOT = mockrun.ROOT
PLAN_DIR = ROOT / "plan"
STACKS = ("staging", "production")
SECRET = "[secret]"
UNKNOWN = "[unknown]"
# Wire-format signatures (pulumi/sdk/python/lib/pulumi/runtime/rpc.py).
SIG = "4dabf18193072939515e22adb298388d"
SIG_SECRET = "1b47061264138c4ac30d75fd1eb44270"
SIG_ARCHIVE = "0def7320c3a5731c473e5ecbe6d01bc7"
SIG_ASSET = "c44067f5952c0a294b673a41bacd8c17"
SIG_RESOURCE = "5cf8f73096256a8f31e491e813e4eb8e"
SIG_OUTPUT = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


# ---- the plan document ---------------------------------------------------------------------


def _number(value: float) -> int | float:
    return int(value) if value == int(value) else value


# The recovery public key is plain config, but a fresh one per run: show that it is there, not
# its bytes, so the committed plan stays stable.
_PEM_PUBLIC_KEY = re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----\n?", re.S)


def _json_text(value: str) -> Any:
    """Policy documents and other JSON strings, parsed so that a diff shows the field."""
    if value[:1] in "{[":
        try:
            return {"$json": clean(json.loads(value))}
        except json.JSONDecodeError:
            return value
    return value


def clean(value: Any) -> Any:
    """Wire-form inputs -> plain, deterministic JSON: secrets masked, assets by file name only
    (no machine path or build hash), unknowns marked, whole numbers as integers."""
    if isinstance(value, Mapping):
        sig = value.get(SIG)
        if sig == SIG_SECRET:
            return SECRET
        if sig in (SIG_ARCHIVE, SIG_ASSET):
            kind = "archive" if sig == SIG_ARCHIVE else "asset"
            source = value.get("path") or value.get("uri") or ""
            if source:
                return f"<{kind} {Path(str(source)).name}>"
            return f"<{kind} {sorted(value.get('assets', {}))}>"
        if sig == SIG_RESOURCE:
            return f"<resource {value.get('urn')}>"
        if sig == SIG_OUTPUT:
            if value.get("secret"):
                return SECRET
            return clean(value.get("value", UNKNOWN))
        return {k: clean(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        if value == UNKNOWN_VALUE:
            return UNKNOWN
        return _json_text(_PEM_PUBLIC_KEY.sub("<PEM public key>", value))
    return value


def _parent(resource: mockrun.Resource) -> str | None:
    parent = resource.parent or ""
    return None if not parent or "::pulumi:pulumi:Stack::" in parent else parent


def plan_document(graph: mockrun.Graph,
                  violations: Sequence[policies.Violation]) -> dict[str, Any]:
    resources = sorted(graph.resources, key=lambda r: r.urn)
    counts = Counter(r.type for r in resources)
    return {
        "stack": graph.stack,
        "generatedBy": "python -m dev.plan (dev.mockrun under pulumi mocks)",
        "summary": {"resources": len(resources), "byType": dict(sorted(counts.items()))},
        "resources": [
            {"urn": r.urn, "type": r.type, "name": r.name, "custom": r.custom,
             "parent": _parent(r), "protect": bool(getattr(r, "protect", False)),
             "inputs": clean(r.raw_inputs)}
            for r in resources
        ],
        "outputs": {k: SECRET if k in graph.secret_outputs else clean(v)
                    for k, v in sorted(graph.outputs.items())},
        "policy": {
            "violations": [
                {"rule": v.rule, "enforcement": v.enforcement, "severity": v.severity,
                 "urn": v.urn, "message": v.message}
                for v in sorted(violations, key=lambda v: (v.rule, v.urn or "", v.message))
            ],
        },
    }


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


# ---- diff against the base -----------------------------------------------------------------


@dataclass
class Diff:
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], list[tuple[str, Any, Any]]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def diff_plans(base: Mapping[str, Any] | None, head: Mapping[str, Any]) -> Diff:
    old = {r["urn"]: r for r in (base or {}).get("resources", [])}
    new = {r["urn"]: r for r in head.get("resources", [])}
    out = Diff()
    for urn in sorted(new.keys() - old.keys()):
        out.added.append(new[urn])
    for urn in sorted(old.keys() - new.keys()):
        out.removed.append(old[urn])
    for urn in sorted(new.keys() & old.keys()):
        a = {k: old[urn].get(k) for k in ("inputs", "parent", "protect")}
        b = {k: new[urn].get(k) for k in ("inputs", "parent", "protect")}
        if a == b:
            continue
        la, lb = dict(_leaves(a)), dict(_leaves(b))
        changes = [(p, la.get(p), lb.get(p)) for p in sorted(la.keys() | lb.keys())
                   if la.get(p) != lb.get(p)]
        out.changed.append((new[urn], changes))
    return out


def default_base() -> str:
    if os.environ.get("PLAN_BASE"):
        return os.environ["PLAN_BASE"]
    probe = subprocess.run(["git", "rev-parse", "--verify", "-q", "origin/main"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    return "origin/main" if probe.returncode == 0 else "HEAD"


def load_base(stack: str, base: str) -> dict[str, Any] | None:
    """The plan committed at ``base``; None when it has none (a new stack, or no history)."""
    shown = subprocess.run(["git", "show", f"{base}:plan/{stack}.json"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        return None
    try:
        return json.loads(shown.stdout)
    except json.JSONDecodeError:
        return None


# ---- Markdown ------------------------------------------------------------------------------


def _short(value: Any, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(resource: Mapping[str, Any]) -> str:
    return f"`{resource['type']}` **{resource['name']}**"


DUMP_GIB = 1  # the dump size the "backups kept" table prices (the ratio does not depend on it)


def backups_kept(stack: str, ctx: policies.Expectations) -> list[str]:
    """Markdown: the backups a stack keeps in steady state per data class and tier, and the
    stored bytes before and after the intraday tier, for the stack file's strategy (the one the
    job runs with: the program ships that same file in the Lambda artifact, so it is not in any
    function's environment to read back from the graph)."""
    from vo2dr.strategy import parse_strategy, read_stack_file

    from infra.config_storage import Retention, backups_per_day, steady_state_backups

    raw = read_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    strategy = parse_strategy(raw["dataClasses"], raw.get("retention"), raw.get("immutability"))
    d = ctx.retention_days
    retention = Retention(d["daily"], d["weekly"], d["monthly"], d["yearly"], ctx.intraday_days)
    after = steady_state_backups(strategy, retention)
    before = steady_state_backups(strategy, retention, intraday=False)
    tiers = ("intraday", "daily", "weekly", "monthly", "yearly")
    lines = ["### Backups kept (steady state, per cloud)", "",
             f"Each class backed up every RPO; intraday kept {ctx.intraday_days} days, daily "
             f"{d['daily']}, weekly {d['weekly']}, monthly {d['monthly']}, yearly {d['yearly']}"
             " (at most one per period). Before the intraday tier every later backup of a day "
             f"was daily. Stored bytes for a {DUMP_GIB} GiB dump of each class.", "",
             "| class | per day | " + " | ".join(tiers)
             + " | total | before | GiB after → before |",
             "| --- | ---: |" + " ---: |" * len(tiers) + " ---: | ---: | --- |"]
    totals = [0, 0]
    for name, dc in strategy.data_classes.items():
        now, was = sum(after[name].values()), sum(before[name].values())
        totals[0] += now
        totals[1] += was
        lines.append(f"| {name} | {backups_per_day(dc)} | "
                     + " | ".join(str(after[name].get(t, 0)) for t in tiers)
                     + f" | {now} | {was} | {now * DUMP_GIB} → {was * DUMP_GIB} "
                     f"(÷{was / now:.1f}) |")
    lines += [f"| **all** | | {' | '.join('' for _ in tiers)} | **{totals[0]}** | "
              f"**{totals[1]}** | {totals[0] * DUMP_GIB} → {totals[1] * DUMP_GIB} "
              f"(÷{totals[1] / totals[0]:.1f}) |", ""]
    return lines


def render_markdown(doc: Mapping[str, Any], violations: Sequence[policies.Violation],
                    diff: Diff | None, base: str | None,
                    kept: Sequence[str] = ()) -> str:
    stack = doc["stack"]
    mandatory = [v for v in violations if v.mandatory]
    advisory = [v for v in violations if not v.mandatory]
    failed = {v.rule for v in violations}
    verdict = ("❌ mandatory policy violations" if mandatory
               else "⚠️ advisory findings only" if advisory else "✅ all policies pass")
    lines = [
        f"## Plan: `{stack}`",
        "",
        f"{doc['summary']['resources']} resources, {len(doc['summary']['byType'])} types. "
        f"Policy pack `{policies.PACK_NAME}`: {len(policies.RULES) - len(failed)}/"
        f"{len(policies.RULES)} rules pass; {len(mandatory)} mandatory, {len(advisory)} "
        f"advisory finding(s). **{verdict}**",
        "",
        "Generated without cloud credentials by `make plan STACK=" + stack + "` (the real "
        "program under Pulumi mocks).",
        "",
    ]
    lines += ["### Policy findings", ""]
    if not violations:
        lines += ["None.", ""]
    else:
        lines += ["| enforcement | rule | severity | resource | finding | fix |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for v in sorted(violations, key=lambda v: (not v.mandatory, v.rule, v.urn or "")):
            rule = policies.RULES_BY_NAME[v.rule]
            where = v.resource.split("::")[-1] if v.resource else "(stack)"
            lines.append(f"| {v.enforcement} | `{v.rule}` | {v.severity} | {where} | "
                         f"{_short(v.message, 200)} | {_short(rule.remediation, 200)} |")
        lines.append("")
    lines += list(kept)
    lines += ["### Changes", ""]
    if diff is None:
        lines += [f"No committed plan at `{base}` to compare with.", ""]
    elif diff.empty:
        lines += [f"No resource changes against `{base}`.", ""]
    else:
        lines += [f"Against `{base}`: **+{len(diff.added)} added, ~{len(diff.changed)} changed, "
                  f"-{len(diff.removed)} removed**.", ""]
        lines += [f"- added {_label(r)}" for r in diff.added]
        lines += [f"- removed {_label(r)}" for r in diff.removed]
        for r, changes in diff.changed:
            lines.append(f"- changed {_label(r)}")
            lines += [f"  - `{p}`: {_short(a)} → {_short(b)}" for p, a, b in changes[:20]]
            if len(changes) > 20:
                lines.append(f"  - … and {len(changes) - 20} more")
        lines.append("")
    lines += ["### Deploy checks", "", *deploy_checks(doc), ""]
    lines += ["<details><summary>Policy results per rule</summary>", "",
              "| rule | severity | enforcement | result |", "| --- | --- | --- | --- |"]
    for rule in policies.RULES:
        n = sum(1 for v in violations if v.rule == rule.name)
        lines.append(f"| `{rule.name}` | {rule.severity} | "
                     f"{rule.enforcement_for(stack).value} | "
                     f"{'pass' if not n else f'{n} finding(s)'} |")
    lines += ["", "</details>", "",
              "<details><summary>Resources by type</summary>", "",
              "| type | count |", "| --- | ---: |"]
    lines += [f"| `{t}` | {n} |" for t, n in doc["summary"]["byType"].items()]
    lines += ["", "</details>", "", "<details><summary>Resource tree</summary>", "", "```"]
    lines += _tree(doc["resources"])
    lines += ["```", "", "</details>", ""]
    return "\n".join(lines)


def _as_json(value: Any) -> Any:
    """A JSON document input, as the plan stores it (``{"$json": ...}``) or as text."""
    if isinstance(value, dict) and set(value) == {"$json"}:
        return value["$json"]
    return json.loads(value) if isinstance(value, str) else value


def deploy_checks(doc: Mapping[str, Any]) -> list[str]:
    """What only a real deploy would hit, as the plan shows it (issue 11): the Lambda runtime,
    whom the EventBridge Scheduler role trusts, and each function's environment against
    Lambda's 4 KB limit (the program itself refuses a stack above it)."""
    functions = [r for r in doc["resources"] if r["type"] == "aws:lambda/function:Function"]
    runtimes = sorted({str(f["inputs"].get("runtime")) for f in functions})
    lines = [f"- Lambda runtime: {', '.join(runtimes)} ({len(functions)} functions, "
             f"{', '.join(sorted(str(f['inputs'].get('name')) for f in functions))})"]
    for role in (r for r in doc["resources"] if r["type"] == "aws:iam/role:Role"):
        trust = _as_json(role["inputs"].get("assumeRolePolicy"))
        for st in (trust or {}).get("Statement", []) if isinstance(trust, dict) else []:
            if st.get("Principal") == {"Service": "scheduler.amazonaws.com"}:
                arns = [v["aws:SourceArn"] for v in st.get("Condition", {}).values()
                        if isinstance(v, dict) and "aws:SourceArn" in v]
                lines.append(f"- Scheduler role `{role['inputs'].get('name')}` trusts "
                             f"aws:SourceArn = {', '.join(map(str, arns)) or 'ANY'}")
    sizes = dict((doc.get("outputs") or {}).get("lambdaEnvironmentBytes") or {})
    limit = sizes.pop("limit", None)
    for name, size in sorted(sizes.items()):
        lines.append(f"- Lambda environment `{name}`: {size} of {limit} bytes")
    return lines


def artifact_check(stack: str) -> str:
    """The stack's Lambda artifact against the 50 MB direct-upload limit, when it is built
    (machine-dependent, so printed by `make plan`, never written to plan/)."""
    from vo2dr.strategy import load_strategy

    from infra import packaging

    strategy = load_strategy({"VO2DR_STACK_FILE": str(ROOT / f"Pulumi.{stack}.yaml")}).to_json()
    arch = (mockrun.stack_settings(stack).get("vo2max-dr:runtime") or {}).get(
        "lambdaArchitecture", "x86_64")
    path = packaging.artifact_for(arch, strategy)
    limit = packaging.LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES
    if not path.is_file():
        return (f"Lambda artifact: not built yet (`python -m infra.packaging --stack {stack}`); "
                f"limit {limit / 1e6:.0f} MB zipped for a direct upload")
    size = packaging.check_direct_upload(path) or 0
    near = (" (above 80%: trim it before it reaches the limit)"
            if size > 0.8 * limit else "")
    return (f"Lambda artifact: {size / 1e6:.1f} of {limit / 1e6:.0f} MB zipped (direct upload)"
            f"{near}, {packaging.unzipped_size(path) / 2**20:.0f} of "
            f"{packaging.LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB unzipped")


def _tree(resources: Sequence[Mapping[str, Any]]) -> list[str]:
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for r in resources:
        children.setdefault(r["parent"], []).append(r)
    out: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r["type"], r["name"])):
            out.append(f"{'  ' * depth}{r['name']}  ({r['type']})"
                       f"{'  [protected]' if r.get('protect') else ''}")
            walk(r["urn"], depth + 1)

    walk(None, 0)
    return out


# ---- running -------------------------------------------------------------------------------


@dataclass
class Plan:
    stack: str
    doc: dict[str, Any]
    violations: list[policies.Violation]
    markdown: str

    @property
    def mandatory(self) -> list[policies.Violation]:
        return [v for v in self.violations if v.mandatory]


def expectations(stack: str, overrides: Mapping[str, Any] | None = None) -> policies.Expectations:
    settings = mockrun.stack_settings(stack)
    for path, value in (overrides or {}).items():
        mockrun._set(settings, path, value)  # the harness's own override syntax
    return policies.expectations_from_settings(settings, stack)


def build(stack: str, graph: mockrun.Graph, ctx: policies.Expectations,
          base_doc: Mapping[str, Any] | None = None, base: str | None = None) -> Plan:
    violations = policies.evaluate(graph, ctx)
    doc = plan_document(graph, violations)
    diff = diff_plans(base_doc, doc) if base_doc is not None else None
    return Plan(stack, doc, violations,
                render_markdown(doc, violations, diff, base, backups_kept(stack, ctx)))


def report(plan: Plan, out: Any = None) -> None:
    out = out or sys.stderr
    for v in plan.mandatory:
        rule = policies.RULES_BY_NAME[v.rule]
        where = v.resource or "the stack"
        print(f"MANDATORY {v.rule} ({v.severity}) on {where}: {v.message}\n"
              f"  fix: {rule.remediation}\n  docs: {rule.url}", file=out)


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.plan", description=__doc__.split("\n")[0])
    parser.add_argument("stacks", nargs="*", help="staging and/or production (default: both)")
    parser.add_argument("--base", help="git ref whose plan/<stack>.json to diff against")
    parser.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                        metavar="KEY=VALUE",
                        help="override a stack setting, e.g. vo2max-dr:retention.weeklyWeeks=8")
    parser.add_argument("--check", action="store_true",
                        help="fail when a committed plan/<stack>.json is not current")
    parser.add_argument("--no-write", action="store_true", help="do not write plan/ files")
    args = parser.parse_args(argv)
    stacks = args.stacks or list(STACKS)
    unknown = [s for s in stacks if s not in STACKS]
    if unknown:
        parser.error(f"unknown stack(s) {unknown}: use {', '.join(STACKS)}")
    overrides = dict(args.overrides)
    base = args.base or default_base()
    status = 0
    if not overrides and not args.no_write:
        # The generated policy config and controls matrix follow the stack files and rules.
        status = controls.main(["--check"] if args.check else [])
    for stack in stacks:
        try:
            ctx = expectations(stack, overrides)
            graph = mockrun.run_program(stack, overrides)
        except ConfigError as exc:
            print(f"{stack}: configuration error: {exc}", file=sys.stderr)
            status = 1
            continue
        plan = build(stack, graph, ctx, load_base(stack, base), base)
        text = dumps(plan.doc)
        path = PLAN_DIR / f"{stack}.json"
        if args.check and (not path.is_file() or path.read_text() != text):
            print(f"{stack}: {path.relative_to(ROOT)} is stale: run `make plan` and commit it",
                  file=sys.stderr)
            status = 1
        if not args.no_write and not args.check:
            PLAN_DIR.mkdir(exist_ok=True)
            path.write_text(text)
            (PLAN_DIR / f"{stack}.md").write_text(plan.markdown)
        report(plan)
        for line in deploy_checks(plan.doc):
            print(f"{stack}: {line.removeprefix('- ')}")
        try:
            print(f"{stack}: {artifact_check(stack)}")
        except ConfigError as exc:
            print(f"{stack}: {exc}", file=sys.stderr)
            status = 1
        n_adv = len(plan.violations) - len(plan.mandatory)
        print(f"{stack}: {plan.doc['summary']['resources']} resources, "
              f"{len(plan.mandatory)} mandatory and {n_adv} advisory finding(s)")
        if plan.mandatory:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
