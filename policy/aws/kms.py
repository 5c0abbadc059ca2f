"""AWS KMS: the customer-managed key rotates, the services that hold backup metadata or alerts
(SQS, SNS, Secrets Manager) encrypt under it, and each signing key has one signer."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policy.documents import policy_documents
from policy.expectations import Expectations
from policy.parsing import _as_list, _days, _num, _statements, get
from policy.resources import Check, Finding, Res, _of, is_unknown

AWS_MAX_ROTATION_DAYS = 365


def check_aws_kms_key_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    if p.get("keyUsage") == "SIGN_VERIFY":
        return []  # signing keys cannot rotate: aws-kms-signing-key-one-signer checks them
    out = []
    if p.get("enableKeyRotation") is not True:
        out.append("KMS key has automatic rotation off (enableKeyRotation is not true)")
    spec = p.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    if spec != "SYMMETRIC_DEFAULT":
        out.append(f"KMS key spec is {spec}: only SYMMETRIC_DEFAULT keys rotate automatically")
    period = _num(p.get("rotationPeriodInDays"))
    if period is not None and period > AWS_MAX_ROTATION_DAYS:
        out.append(f"KMS key rotates every {_days(period)} days, more than "
                   f"{AWS_MAX_ROTATION_DAYS}")
    return out


# Signing keys (docs/backup-authenticity.md): an action that hands out kms:Sign.
_SIGN_ACTIONS = ("kms:Sign", "kms:*", "*")
KEY_TYPE = "aws:kms/key:Key"
FUNCTION_TYPE = "aws:lambda/function:Function"
# The function environment variables that name the key a function signs with.
MANIFEST_KEY_ENV, RECORD_KEY_ENV = "VO2DR_SIGNING_KEY", "VO2DR_RECORD_SIGNING_KEY"
_IDENTITY_POLICY_TYPES = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy",
                          "aws:iam/role:Role")


@dataclass
class _SignKey:
    """A SIGN_VERIFY key's signer as its key policy names it: a role that signs itself
    (``direct``: the manifest key's backup writer) or a role whose IAM policy decides
    (``delegated``: the record key, pinned there to one function)."""

    direct: set[str] = field(default_factory=set)
    delegated: set[str] = field(default_factory=set)


def _signs(st: Mapping[str, Any]) -> bool:
    return st.get("Effect") == "Allow" and any(
        str(a) in _SIGN_ACTIONS for a in _as_list(st.get("Action")))


def _one_arn(condition: Any, operator: str, key: str) -> str | None:
    """The single, wildcard-free ARN ``condition[operator][key]`` pins to, else None."""
    values = _as_list(get(condition, f"{operator}.{key}")) if isinstance(condition, Mapping) \
        else []
    if len(values) == 1 and isinstance(values[0], str) and "*" not in values[0] \
            and "?" not in values[0] and values[0].startswith("arn:"):
        return values[0]
    return None


def _key_policy(p: Mapping[str, Any], out: list[str]) -> _SignKey:
    key = _SignKey()
    spec = p.get("customerMasterKeySpec")
    if spec != "ECC_NIST_P256":
        out.append(f"signing key spec is {spec}: readers verify ECC_NIST_P256 (ECDSA_SHA_256)")
    docs = policy_documents(KEY_TYPE, p)
    if not docs:
        out.append("signing key has no key policy naming its one signer")
        return key
    for st in _statements(docs[0]):
        if st.get("Effect") != "Allow":
            continue
        if "kms:CreateGrant" in [str(a) for a in _as_list(st.get("Action"))]:
            out.append(f"statement {st.get('Sid', '?')} allows kms:CreateGrant on the signing "
                       "key: a grant could hand kms:Sign to anyone")
        if not _signs(st):
            continue
        principal = st.get("Principal")
        arns = (_as_list(principal.get("AWS")) if isinstance(principal, Mapping)
                else [principal])
        for arn in arns:
            delegate = (_one_arn(st.get("Condition"), "ArnEquals", "aws:PrincipalArn")
                        if isinstance(arn, str) and arn.endswith(":root") else None)
            if delegate is not None and ":role/" in delegate:
                key.delegated.add(delegate)
            elif isinstance(arn, str) and arn != "*" and ":role/" in arn:
                key.direct.add(arn)
            else:
                out.append(f"statement {st.get('Sid', '?')} lets {arn!r} sign: only one role "
                           "may (the backup writer), or the account's IAM for exactly one role "
                           "(aws:PrincipalArn), whose policy pins it to one function")
    signers = key.direct | key.delegated
    if len(signers) > 1:
        out.append(f"{len(signers)} roles may sign with the key: one signer per key")
    if not signers and not out:
        out.append("no role may sign with the key: one role (or one function) must")
    return key


def check_aws_kms_signing_key(_t: str, p: Mapping[str, Any],
                              _c: Expectations | None) -> list[str]:
    """A SIGN_VERIFY key is ECC_NIST_P256, and its key policy lets one role sign, nobody else
    (no account root but delegated to one role, no wildcard, no grants)."""
    if p.get("keyUsage") != "SIGN_VERIFY":
        return []
    out: list[str] = []
    _key_policy(p, out)
    return out


def _reaches(resource: Any, key_arn: str) -> bool:
    return isinstance(resource, str) and fnmatch.fnmatchcase(key_arn, resource)


def _env(fn: Res) -> Mapping[str, Any]:
    env = get(fn.props, "environment.variables")
    return env if isinstance(env, Mapping) else {}


def check_aws_signing_keys_one_signer(resources: Sequence[Res],
                                      c: Expectations | None) -> list[Finding]:
    """Every signing key has one signer. The manifest key: the one role its key policy names.
    A key whose policy delegates kms:Sign to one role's IAM (the drill record key): every IAM
    statement allowing kms:Sign on it is pinned with lambda:SourceFunctionArn to one and the
    same function, which runs as that role and holds the key as VO2DR_RECORD_SIGNING_KEY.
    Neither key signs the other's documents: no function holds the record key as its manifest
    key (VO2DR_SIGNING_KEY), nor the manifest key as its record key."""
    out: list[Finding] = []
    keys: dict[str, tuple[Res, _SignKey]] = {}
    for r in _of(resources, KEY_TYPE):
        if r.props.get("keyUsage") != "SIGN_VERIFY":
            continue
        problems: list[str] = []
        key = _key_policy(r.props, problems)
        out += [Finding(f"{r.name}: {m}", r.urn) for m in problems]
        arn = r.props.get("arn")
        if isinstance(arn, str) and not is_unknown(arn):
            keys[arn] = (r, key)
    functions = _of(resources, FUNCTION_TYPE)
    for arn, (r, key) in sorted(keys.items()):
        if not key.delegated:
            continue
        pinned: set[str] = set()
        for holder in _of(resources, *_IDENTITY_POLICY_TYPES):
            for doc in policy_documents(holder.type, holder.props):
                for st in _statements(doc):
                    if not _signs(st) or not any(_reaches(x, arn)
                                                 for x in _as_list(st.get("Resource"))):
                        continue
                    fn = _one_arn(st.get("Condition"), "ArnEquals", "lambda:SourceFunctionArn")
                    if fn is None:
                        out.append(Finding(
                            f"{holder.name} statement {st.get('Sid', '?')} allows kms:Sign with "
                            f"the record signing key {r.name} without pinning it to one function "
                            "(ArnEquals lambda:SourceFunctionArn): whoever assumes the role "
                            "could sign", holder.urn))
                    else:
                        pinned.add(fn)
        if len(pinned) > 1:
            out.append(Finding(f"{r.name}: {len(pinned)} functions may sign with the record "
                               f"signing key ({', '.join(sorted(pinned))}): only the drill may",
                               r.urn))
        if not pinned:
            out.append(Finding(f"{r.name}: no function may sign with the key its policy "
                               "delegates to IAM", r.urn))
        for fn_arn in pinned:
            holders = [f for f in functions
                       if f.props.get("arn") == fn_arn
                       or fn_arn.endswith(f":function:{f.props.get('name')}")]
            if not any(_env(f).get(RECORD_KEY_ENV) == arn
                       and f.props.get("role") in key.delegated for f in holders):
                out.append(Finding(
                    f"{r.name}: the function allowed to sign ({fn_arn}) is not a function of "
                    f"the stack that runs as {sorted(key.delegated)[0]} and holds the key as "
                    f"{RECORD_KEY_ENV}", r.urn))
    record_keys = {a for a, (_, k) in keys.items() if k.delegated}
    manifest_keys = {a for a, (_, k) in keys.items() if k.direct}
    for f in functions:
        env = _env(f)
        held = env.get(RECORD_KEY_ENV)
        if held in keys and keys[held][1].direct:
            out.append(Finding(
                f"{f.name} signs records with {keys[held][0].name}, whose key policy lets the "
                f"role {sorted(keys[held][1].direct)[0]} itself sign: a record key's policy "
                "delegates to the role's IAM policy, pinned to the function "
                "(lambda:SourceFunctionArn), or anyone who assumes the role could sign", f.urn))
        if env.get(MANIFEST_KEY_ENV) in record_keys:
            out.append(Finding(f"{f.name} signs manifests ({MANIFEST_KEY_ENV}) with the record "
                               "signing key: a record key must never sign a manifest", f.urn))
        if env.get(RECORD_KEY_ENV) in manifest_keys:
            out.append(Finding(f"{f.name} signs records ({RECORD_KEY_ENV}) with the manifest "
                               "signing key: the drill must never hold the manifests' key",
                               f.urn))
    return out


def _cmk_check(field_: str, aws_managed: str, what: str) -> Check:
    def check(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
        key = p.get(field_)
        if not key:
            return [f"{what} is not encrypted with a customer-managed KMS key ({field_} unset)"]
        if str(key) == aws_managed:
            return [f"{what} uses the AWS-managed key {aws_managed}, not a customer-managed key"]
        return []
    return check
