"""The engine adapter: the rules of ``policy.rules`` as ``pulumi_policy`` policies
(``POLICIES``, which ``policy/__main__.py`` builds into the pack), the pack's enforcement and
per-stack config, and :func:`evaluate`, which runs the same checks on a recorded graph
(``dev.mockrun``) so the tests and the credential-free plan judge exactly what the engine
would. Values unknown at a first preview are tracked per resource (:func:`judge`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policy.expectations import Expectations, expectations_for_stack
from policy.resources import Finding, Res, UnknownReads, _TrackedMap, plain, resources_from_graph
from policy.rules import RULES
from policy.rules.base import Rule, enforcement_for

PACK_NAME = "vo2max-dr-policies"

NIST = "NIST SP 800-53"
NIST_VERSION = "Rev. 5"


def initial_config(environment: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {"all": enforcement_for(environment)}
    for rule in RULES:
        if rule.enforcement is not None:
            config[rule.name] = rule.enforcement_for(environment)
    return config


def policy_config_file(exp: Expectations) -> dict[str, Any]:
    """``policy/config/<stack>.json`` for ``--policy-pack-config``: the enforcement level and,
    for every rule that compares with the stack, the stack's expectations (so a published pack
    needs no project files)."""
    doc: dict[str, Any] = {"all": enforcement_for(exp.environment).value}
    for rule in RULES:
        entry: dict[str, Any] = {}
        if rule.needs_expectations:
            entry["expectations"] = exp.to_dict()
        if entry or rule.enforcement is not None:
            doc[rule.name] = {"enforcementLevel": rule.enforcement_for(exp.environment).value,
                              **entry}
    return doc


@dataclass(frozen=True)
class Violation:
    rule: str
    severity: str
    enforcement: str  # mandatory or advisory
    message: str
    urn: str | None = None
    resource: str | None = None  # "type::name"
    unknown: bool = False  # not a finding: the rule needs values known only after deploy

    @property
    def mandatory(self) -> bool:
        return self.enforcement == EnforcementLevel.MANDATORY.value


def run_rule(rule: Rule, resources: Sequence[Res], ctx: Expectations | None,
             options: Mapping[str, Any] | None = None) -> list[Finding]:
    if rule.scope == "stack":
        return list(rule.check(resources, ctx))
    out = []
    for r in resources:
        if r.type in rule.types:
            # A rule with config properties reads them: its check takes ``options``.
            kwargs = {"options": options or {}} if rule.config else {}
            out += [Finding(m, r.urn) for m in rule.check(r.type, r.props, ctx, **kwargs)]
    return out


@dataclass(frozen=True)
class Judgement:
    """A rule's verdict on what is known, and which resources it could not judge yet."""

    findings: list[Finding]  # made on known values: they count at their enforcement level
    unknown: dict[str, list[str]]  # urn -> paths of unknown values the rule needed


def judge(rule: Rule, resources: Sequence[Res], ctx: Expectations | None,
          options: Mapping[str, Any] | None = None) -> Judgement:
    """Run ``rule`` with every unknown value (a first preview) read as UNKNOWN. A finding on a
    resource whose unknown values the rule read (or a stack-level finding when the rule read
    any) cannot be told from the unknowns' doing: it is withheld and that resource reported as
    not yet judgeable, with the paths. Every other finding stands, so a mandatory rule keeps
    counting at preview for all that is known."""
    reads = UnknownReads()
    tracked = [Res(r.type, r.name, r.urn, _TrackedMap(r.props, r.urn, "", reads), r.parent,
                   r.dependencies) for r in resources]
    findings = run_rule(rule, tracked, ctx, options)
    kept = [f for f in findings
            if not (f.urn in reads.paths or (f.urn is None and reads))]
    unknown = {urn: sorted(paths) for urn, paths in reads.paths.items()
               if any(f.urn in (urn, None) for f in findings)}
    return Judgement(kept, unknown)


class PreviewUnknowns(UnknownValueError):
    """Raised after a rule has reported what it could judge: the policy SDK turns it into its
    advisory "can't run policy during preview" note, which here names each resource and the
    unknown values the rule needs."""

    def __init__(self, unknown: Mapping[str, Sequence[str]]) -> None:
        super().__init__(UNKNOWN_STRING_VALUE, [])
        self.message = "; ".join(f"{urn}: {', '.join(paths)} unknown"
                                 for urn, paths in sorted(unknown.items())) + \
            " (judged again when the values are known, at update)"


def evaluate(resources: Iterable[Res] | Any, ctx: Expectations | None,
             rules: Sequence[Rule] = RULES) -> list[Violation]:
    """Every rule on every resource; the enforcement follows the stack's environment."""
    res = list(resources) if not hasattr(resources, "resources") else resources_from_graph(
        resources)
    environment = ctx.environment if ctx else None
    by_urn = {r.urn: r for r in res}
    out = []
    for rule in rules:
        level = rule.enforcement_for(environment).value
        verdict = judge(rule, res, ctx)
        for f in verdict.findings:
            r = by_urn.get(f.urn or "")
            out.append(Violation(rule.name, rule.severity, level, f.message, f.urn,
                                 f"{r.type}::{r.name}" if r else None))
        for urn, paths in sorted(verdict.unknown.items()):
            r = by_urn.get(urn)
            out.append(Violation(rule.name, rule.severity, EnforcementLevel.ADVISORY.value,
                                 f"cannot be judged during preview: {', '.join(paths)} "
                                 "unknown until deploy", urn,
                                 f"{r.type}::{r.name}" if r else None, unknown=True))
    return out


_STACK_IN_URN = re.compile(r"^urn:pulumi:([^:]+)::")


def _stack_of(urn: str) -> str:
    m = _STACK_IN_URN.match(urn or "")
    return m.group(1) if m else os.environ.get("PULUMI_STACK", "")


def _engine_expectations(config: Mapping[str, Any], urn: str) -> Expectations | None:
    if config.get("expectations"):
        return Expectations.from_dict(config["expectations"])
    return expectations_for_stack(os.environ.get("PULUMI_STACK") or _stack_of(urn))


def _framework(rule: Rule) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name=NIST, version=NIST_VERSION,
                                     reference=", ".join(rule.nist),
                                     specification="; ".join(rule.cis))


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    props: dict[str, dict[str, Any]] = dict(rule.config)
    if rule.needs_expectations:
        props["expectations"] = {
            "type": "object",
            "description": "the stack's strategy (policy/config/<stack>.json); defaults to "
                           "the stack's Pulumi.<stack>.yaml"}
    return PolicyConfigSchema(properties=props) if props else None


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        config = args.get_config() or {}
        ctx = _engine_expectations(config, args.urn) if rule.needs_expectations else None
        if rule.needs_expectations and ctx is None:
            args.not_applicable("no stack expectations: pass --policy-pack-config "
                                "policy/config/<stack>.json")
        resource = Res(args.resource_type, args.name, args.urn, plain(args.props))
        verdict = judge(rule, [resource], ctx, config)
        for f in verdict.findings:
            report(f"{f.message}. Fix: {rule.remediation}", None)
        if verdict.unknown:
            raise PreviewUnknowns(verdict.unknown)

    return ResourceValidationPolicy(**_described(rule), validate=validate)


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        # plain(): copying r.props with dict() reads every value through the SDK's proxy,
        # and one unknown anywhere then turned the whole rule into an advisory note.
        resources = [Res(r.resource_type, r.name, r.urn, plain(r.props),
                         r.parent.urn if r.parent else None,
                         tuple(d.urn for d in r.dependencies)) for r in args.resources]
        urn = resources[0].urn if resources else ""
        ctx = _engine_expectations(args.get_config() or {}, urn)
        if rule.needs_expectations and ctx is None:
            args.not_applicable("no stack expectations: pass --policy-pack-config "
                                "policy/config/<stack>.json")
        verdict = judge(rule, resources, ctx)
        for f in verdict.findings:
            report(f"{f.message}. Fix: {rule.remediation}", f.urn)
        if verdict.unknown:
            raise PreviewUnknowns(verdict.unknown)

    return StackValidationPolicy(**_described(rule), validate=validate)


def _described(rule: Rule) -> dict[str, Any]:
    """What the engine shows of a rule, the same for resource and stack policies."""
    return dict(
        name=rule.name, description=rule.description,
        enforcement_level=EnforcementLevel(rule.enforcement) if rule.enforcement else None,
        config_schema=_schema(rule), severity=Severity(rule.severity),
        framework=_framework(rule), tags=[rule.cloud, *rule.nist],
        remediation_steps=rule.remediation, url=rule.url)


POLICIES = [(_stack_policy if r.scope == "stack" else _resource_policy)(r) for r in RULES]
