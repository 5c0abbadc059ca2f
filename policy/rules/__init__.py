"""The rule table: every CrossGuard rule of the pack in one readable list, with its metadata
for auditors (severity, NIST SP 800-53 and CIS mappings, remediation, a documentation link),
the resource types it reads and its check. The table is kept per cloud (``aws.py``,
``gcp.py``, ``azure.py``, ``multicloud.py`` here, by the rule name's first word); the checks live
per cloud and service (``policy/aws``, ``policy/gcp``, ``policy/azure``) and across clouds
(``policy/multicloud``).

A rule is named ``<cloud>-<service>-<resource>-<check>``. Its check is either

- a *resource* check ``check(resource_type, props, ctx) -> list[str]`` that sees one resource's
  inputs (the engine's camelCase wire names, e.g. ``enableKeyRotation``); a rule with
  ``config`` properties also gets them, as ``options=``; or
- a *stack* check ``check(resources, ctx) -> list[Finding]`` that sees every resource.

``ctx`` is the stack's :class:`~policy.expectations.Expectations`.
Enforcement: mandatory in production, advisory in staging (:func:`enforcement_for`)."""

from __future__ import annotations

from policy.rules.aws import AWS_RULES
from policy.rules.azure import AZURE_RULES
from policy.rules.base import Rule
from policy.rules.gcp import GCP_RULES
from policy.rules.multicloud import MULTICLOUD_RULES

RULES: tuple[Rule, ...] = (*AWS_RULES, *GCP_RULES, *AZURE_RULES, *MULTICLOUD_RULES)
RULES_BY_NAME = {r.name: r for r in RULES}
assert len(RULES_BY_NAME) == len(RULES), "rule names must be unique"
