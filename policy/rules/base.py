"""What a rule of the pack is (:class:`Rule`), how the tables declare one (:func:`_r`), the
enforcement that follows the stack, and what the per-cloud tables share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import EnforcementLevel

from policy.resources import AZ

LIFECYCLE_TYPES = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                   "gcp:storage/bucket:Bucket", f"{AZ}ManagementPolicy")


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    severity: str  # low, medium, high, critical
    nist: tuple[str, ...]
    cis: tuple[str, ...]
    remediation: str
    url: str
    types: tuple[str, ...]  # resource types it checks (stack rules: the types it reads)
    check: Callable[..., Any]
    scope: str = "resource"  # or "stack"
    needs_expectations: bool = False
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # A fixed enforcement level, for a rule that cannot be mandatory before a deploy; None
    # follows the stack (mandatory in production, advisory in staging).
    enforcement: str | None = None

    def enforcement_for(self, environment: str | None) -> EnforcementLevel:
        if self.enforcement is not None:
            return EnforcementLevel(self.enforcement)
        return enforcement_for(environment)

    @property
    def cloud(self) -> str:
        return self.name.split("-", 1)[0]


def _r(name: str, description: str, severity: str, nist: Sequence[str], cis: Sequence[str],
       remediation: str, url: str, types: Sequence[str], check: Callable[..., Any], *,
       scope: str = "resource", needs: bool = False,
       config: Mapping[str, Mapping[str, Any]] | None = None,
       enforcement: str | None = None) -> Rule:
    return Rule(name, description, severity, tuple(nist), tuple(cis), remediation, url,
                tuple(types), check, scope, needs, config or {}, enforcement)


AWS_DOCS = "https://docs.aws.amazon.com"
GCP_DOCS = "https://cloud.google.com"
AZ_DOCS = "https://learn.microsoft.com/en-us/azure"


def enforcement_for(environment: str | None) -> EnforcementLevel:
    """Mandatory in production (and when the stack is unknown: fail safe), advisory in staging."""
    return EnforcementLevel.ADVISORY if environment == "staging" else EnforcementLevel.MANDATORY
