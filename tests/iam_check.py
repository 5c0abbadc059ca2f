"""A small least-privilege checker for AWS policy documents, reusable by every cloud's tests.

    findings = check_policy(doc, kind="identity",
                            allowed_resources=[bucket_arn, f"{bucket_arn}/database/staging/*",
                                               key_arn],
                            list_prefixes=["database/staging/"])
    assert not findings, findings

``kind`` is one of:
- ``identity``: a role's inline or managed policy. Every Allow must name resources inside
  ``allowed_resources``.
- ``resource``: a bucket (or queue, topic...) policy. Allows are held to the same rule; a Deny
  may be as broad as it likes (broad denies only take rights away).
- ``trust``: a role's trust policy: only sts:AssumeRole* / TagSession / SetSourceIdentity, to a
  named principal, and no Resource.
- ``key``: a KMS key policy, where ``"Resource": "*"`` means "this key" and is the only
  allowed value.

Rules for every Allow statement: no ``*`` anywhere in an action (neither ``*`` nor
``s3:*`` nor ``s3:Get*``), no NotAction / NotResource / NotPrincipal, no ``*`` principal, and
a bucket listing (``s3:ListBucket*``) only with an ``s3:prefix`` condition inside
``list_prefixes`` when those are given.

An ``allowed_resources`` entry ending in ``*`` allows any resource that starts with the part
before the ``*`` (``…/database/staging/*`` allows ``…/database/staging/*.manifest.json``);
other entries must match exactly.

One documented exception to "no ``*`` resource" in an identity policy: ``sts:GetWebIdentityToken``
(AWS IAM outbound identity federation) has no resource type, so IAM accepts only
``"Resource": "*"`` for it. It passes only alone in its statement and only when the token
audience is pinned: ``ForAllValues:StringEquals`` on ``sts:IdentityTokenAudience`` with literal
values, plus ``"Null": {"sts:IdentityTokenAudience": "false"}`` (``ForAllValues`` alone also
matches a request naming no audience). No other action gets this exception. It applies to any
identity policy (the backup writer, restore reader and monitor roles all carry the same
Entra-only statement when the Azure copy is on); ``tests/unit/test_iam.py`` pins its exact form.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

KINDS = ("identity", "resource", "trust", "key")
TRUST_ACTIONS = {
    "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML",
    "sts:TagSession", "sts:SetSourceIdentity",
}
LIST_ACTIONS = {"s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"}
# The only action allowed on "Resource": "*" in an identity policy, and the condition key that
# must scope it instead (see the module docstring).
RESOURCELESS_ACTION = "sts:GetWebIdentityToken"
RESOURCELESS_SCOPE_KEY = "sts:IdentityTokenAudience"


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _principals(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [p for v in principal.values() for p in _as_list(v)]
    return _as_list(principal)


def _is_wildcard_resource(resource: str) -> bool:
    """``*``, or an ARN whose resource part starts with ``*`` (``arn:aws:s3:::*``). A ``*``
    below a named resource (``…:log-group:x:*``, ``bucket/prefix/*``) is a scope, judged by
    ``allowed_resources``."""
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return "*" in resource
    return parts[5] == "" or parts[5].startswith("*")


def _within(resource: str, allowed: Iterable[str]) -> bool:
    for a in allowed:
        if a.endswith("*"):
            if resource.startswith(a[:-1]):
                return True
        elif resource == a:
            return True
    return False


def _prefix_values(condition: Mapping[str, Any]) -> list[str] | None:
    values: list[str] | None = None
    for operator, keys in condition.items():
        if operator.removesuffix("IfExists") not in ("StringLike", "StringEquals"):
            continue
        for key, v in keys.items():
            if key == "s3:prefix":
                values = (values or []) + [str(x) for x in _as_list(v)]
    return values


def _audience_pinned(condition: Mapping[str, Any]) -> bool:
    """``ForAllValues:StringEquals`` on the token audience with literal values, and the key
    required to be present."""
    values = _as_list((condition.get("ForAllValues:StringEquals") or {}).get(
        RESOURCELESS_SCOPE_KEY))
    present = str((condition.get("Null") or {}).get(RESOURCELESS_SCOPE_KEY, "")).lower()
    return bool(values) and all(v and "*" not in str(v) for v in values) and present == "false"


def _resourceless_exception(st: Mapping[str, Any], actions: list[str],
                            resources: list[str], sid: str) -> tuple[bool, str]:
    """Whether ``st`` is the one allowed ``"Resource": "*"`` grant, and if it tries to be but
    is not scoped, why (``(False, "")`` for every other statement)."""
    if RESOURCELESS_ACTION not in actions or resources != ["*"]:
        return False, ""
    if actions != [RESOURCELESS_ACTION]:
        return False, (f"{sid}: {RESOURCELESS_ACTION} needs a statement of its own to use "
                       "\"Resource\": \"*\"")
    if not _audience_pinned(st.get("Condition") or {}):
        return False, (f"{sid}: {RESOURCELESS_ACTION} on \"*\" must pin the audience "
                       f"(ForAllValues:StringEquals and Null false on {RESOURCELESS_SCOPE_KEY})")
    return True, ""


def load(document: str | Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else dict(document)


def check_policy(document: str | Mapping[str, Any], *, kind: str,
                 allowed_resources: Sequence[str] = (),
                 list_prefixes: Sequence[str] = ()) -> list[str]:
    """Every least-privilege problem of ``document`` as a readable line; empty when clean."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    doc = load(document)
    problems: list[str] = []
    if doc.get("Version") != "2012-10-17":
        problems.append(f"Version is {doc.get('Version')!r}: use 2012-10-17 (policy variables "
                        "and conditions depend on it)")
    statements = _as_list(doc.get("Statement"))
    if not statements:
        problems.append("no Statement")
    for i, st in enumerate(statements):
        sid = st.get("Sid") or f"#{i}"
        effect = st.get("Effect")
        if effect not in ("Allow", "Deny"):
            problems.append(f"{sid}: Effect is {effect!r}")
            continue
        if effect == "Deny":
            continue
        for neg in ("NotAction", "NotResource", "NotPrincipal"):
            if neg in st:
                problems.append(f"{sid}: Allow with {neg} grants everything not listed")
        actions = [str(a) for a in _as_list(st.get("Action"))]
        if not actions:
            problems.append(f"{sid}: no Action")
        for action in actions:
            if "*" in action:
                problems.append(f"{sid}: wildcard action {action!r}")
        principals = _principals(st.get("Principal"))
        if kind in ("resource", "trust", "key") and not principals:
            problems.append(f"{sid}: no Principal")
        if kind == "identity" and "Principal" in st:
            problems.append(f"{sid}: an identity policy has no Principal")
        for p in principals:
            if p == "*" or p.endswith(":*"):
                problems.append(f"{sid}: Allow to any principal {p!r}")
        resources = [str(r) for r in _as_list(st.get("Resource"))]
        if kind == "trust":
            if resources:
                problems.append(f"{sid}: a trust policy statement has no Resource")
            for action in actions:
                if action not in TRUST_ACTIONS:
                    problems.append(f"{sid}: trust policy grants {action!r}")
            continue
        if kind == "key":
            if resources != ["*"]:
                problems.append(f"{sid}: a key policy's Resource must be \"*\" (this key), "
                                f"got {resources}")
            continue
        if not resources:
            problems.append(f"{sid}: no Resource")
        if kind == "identity":
            allowed, why = _resourceless_exception(st, actions, resources, sid)
            if why:
                problems.append(why)
            if allowed:
                continue
        for r in resources:
            if _is_wildcard_resource(r):
                problems.append(f"{sid}: wildcard resource {r!r}")
            elif not _within(r, allowed_resources):
                problems.append(f"{sid}: grants {r!r}, outside {list(allowed_resources)}")
        if list_prefixes and LIST_ACTIONS & set(actions):
            values = _prefix_values(st.get("Condition") or {})
            if values is None:
                problems.append(f"{sid}: lists the whole bucket: add an s3:prefix condition")
            else:
                for v in values:
                    if not any(v.startswith(p) for p in list_prefixes):
                        problems.append(f"{sid}: lists prefix {v!r}, outside "
                                        f"{list(list_prefixes)}")
    return problems


def assert_least_privilege(document: str | Mapping[str, Any], *, name: str = "",
                           **kwargs: Any) -> None:
    problems = check_policy(document, **kwargs)
    assert not problems, f"{name}: " + "; ".join(problems)


# ---- evaluating a request against an identity policy ----------------------------------------
# Enough of IAM's evaluation logic to ask "would this role's own policy let this request
# through?" in a test that drives a real SDK against a local server which enforces no IAM (moto):
# an explicit Deny wins, then any Allow, else the implicit deny. Actions and resources match
# as IAM's wildcards do (``*`` across ``/``, ``?`` one character; actions case-insensitive).
# Conditions: the operators the project's documents use on the requests judged here; any
# other operator raises rather than guess.

def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    # fnmatch's [...] classes are no IAM syntax: escape them.
    translated = fnmatch.translate(pattern.replace("[", "\0")).replace("\0", r"\[")
    return re.match(translated, value, re.DOTALL) is not None


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    ctx = {k.lower(): v for k, v in context.items()}
    for op, keys in condition.items():
        for key, expected in keys.items():
            values = [str(v) for v in _as_list(expected)]
            present = key.lower() in ctx
            actual = ctx.get(key.lower())
            if op == "Null":
                if [v.lower() for v in values] != [str(not present).lower()]:
                    return False
            elif op == "Bool":
                if not present or str(actual).lower() not in [v.lower() for v in values]:
                    return False
            elif op == "StringEquals":
                if not present or actual not in values:
                    return False
            elif op == "StringLike":
                if not present or not any(_glob(v, str(actual)) for v in values):
                    return False
            else:
                raise NotImplementedError(f"condition operator {op!r} is not evaluated here")
    return True


def allows(document: str | Mapping[str, Any], action: str, resource: str,
           context: Mapping[str, str] | None = None) -> bool:
    """Whether identity policy ``document`` allows ``action`` on ``resource`` for a request
    whose condition keys are ``context`` (a key absent from it is absent from the request)."""
    context = context or {}
    allowed = False
    for st in _as_list(load(document).get("Statement")):
        if not any(_glob(a, action, case=False) for a in _as_list(st.get("Action"))):
            continue
        if not any(_glob(r, resource) for r in _as_list(st.get("Resource"))):
            continue
        if not _condition_holds(st.get("Condition") or {}, context):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


def denies(document: str | Mapping[str, Any], action: str, resource: str,
           context: Mapping[str, str] | None = None) -> bool:
    """Whether a Deny statement of ``document`` (an identity or a resource policy; its
    principals are not judged) matches the request: an explicit deny, which no Allow
    anywhere overrides."""
    context = context or {}
    for st in _as_list(load(document).get("Statement")):
        if st.get("Effect") != "Deny":
            continue
        if not any(_glob(a, action, case=False) for a in _as_list(st.get("Action"))):
            continue
        if not any(_glob(r, resource) for r in _as_list(st.get("Resource"))):
            continue
        if _condition_holds(st.get("Condition") or {}, context):
            return True
    return False
