"""The IAM policy documents a resource declares, read in one place: an IAM role's inline
policies, or the ``policy`` of an IAM policy, a role policy, a bucket policy or a KMS key.

A document is a JSON string or, already parsed, a mapping. A value not known until the deploy
(a first ``pulumi preview``) is reported as such, not read as "no policy": the engine withholds
the finding a check makes on it and names the resource as not yet judgeable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy.parsing import _as_list, parse_policy_document
from policy.resources import is_unknown

ROLE_TYPE = "aws:iam/role:Role"
MISSING, UNKNOWN, NOT_JSON = "missing", "unknown until deploy", "not a JSON policy document"


@dataclass(frozen=True)
class DeclaredPolicy:
    """One policy document a resource declares: where (``policy``,
    ``inlinePolicies[0].policy``), the parsed document, or why there is none
    (:data:`MISSING`, :data:`UNKNOWN`, :data:`NOT_JSON`)."""

    where: str
    document: Mapping[str, Any] | None
    problem: str | None = None


def _read(where: str, value: Any) -> DeclaredPolicy:
    if is_unknown(value):
        return DeclaredPolicy(where, None, UNKNOWN)
    if value is None:
        return DeclaredPolicy(where, None, MISSING)
    doc = parse_policy_document(value)
    return DeclaredPolicy(where, doc, None if doc is not None else NOT_JSON)


def declared_policies(resource_type: str, props: Mapping[str, Any]) -> list[DeclaredPolicy]:
    """Every policy document ``props`` declares, readable or not. A role's inline policy entry
    without a ``policy`` declares none (``inline_policies=[{}]`` is how a role says "no inline
    policies"); every other type declares exactly one, its ``policy``."""
    if resource_type != ROLE_TYPE:
        return [_read("policy", props.get("policy"))]
    inline = props.get("inlinePolicies")
    if is_unknown(inline):
        return [DeclaredPolicy("inlinePolicies", None, UNKNOWN)]
    out = []
    for i, entry in enumerate(_as_list(inline)):
        where = f"inlinePolicies[{i}]"
        if is_unknown(entry):
            out.append(DeclaredPolicy(where, None, UNKNOWN))
        elif isinstance(entry, Mapping) and entry.get("policy") is not None:
            out.append(_read(f"{where}.policy", entry.get("policy")))
    return out


def policy_documents(resource_type: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The readable policy documents of a resource (see :func:`declared_policies` for the
    ones that are missing, unknown or not JSON)."""
    return [d.document for d in declared_policies(resource_type, props)
            if d.document is not None]
