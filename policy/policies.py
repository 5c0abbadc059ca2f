"""The vo2max-dr CrossGuard rules, importable without the Pulumi engine.

Each rule is a :class:`Rule`: a name ``<cloud>-<service>-<resource>-<check>``, its metadata for
auditors (severity, NIST SP 800-53 and CIS mappings, remediation, a documentation link) and a
plain-Python check:

- a *resource* check ``check(resource_type, props, ctx) -> list[str]`` that sees one resource's
  inputs (the engine's camelCase wire names, e.g. ``enableKeyRotation``), and
- a *stack* check ``check(resources, ctx) -> list[Finding]`` that sees every resource.

``ctx`` is the stack's :class:`Expectations` (GFS retention, tier days, RPOs, ...), built from
the same ``Pulumi.<stack>.yaml`` the program reads (:func:`expectations_from_settings`), or from
policy-pack config (``expectations``) when the pack runs without the project around it.

``POLICIES`` wraps every rule as a ``pulumi_policy`` policy, so ``policy/__main__.py`` only
builds the pack; :func:`evaluate` runs the same checks on a recorded graph (``dev.mockrun``), so
the tests and the credential-free plan judge exactly what the engine would.

Enforcement: mandatory in production, advisory in staging (:func:`enforcement_for`), through the
pack's ``initial_config`` and the ``policy/config/<stack>.json`` files.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
from pulumi_policy.proxy import _DictProxy as _PolicyDictProxy
from pulumi_policy.proxy import _ListProxy as _PolicyListProxy

PACK_NAME = "vo2max-dr-policies"
PROJECT = "vo2max-dr"
ROOT = Path(__file__).resolve().parent.parent
GFS_TIERS = ("daily", "weekly", "monthly", "yearly")
CLOUDS = ("aws", "gcp", "azure")
NIST = "NIST SP 800-53"
NIST_VERSION = "Rev. 5"
DAY_SECONDS = 86_400
MINUTES_PER_DAY = 1_440

# ---- provider facts (independent of the program, so the policy is a second opinion) --------

# Classes of the three tiering steps per cloud, and each class's minimum storage duration in
# days: deleting or moving an object earlier is billed as if it had stayed.
TIER_CLASSES: dict[str, tuple[tuple[str, int], ...]] = {
    "aws": (("STANDARD_IA", 30), ("GLACIER", 90), ("DEEP_ARCHIVE", 180)),
    "gcp": (("NEARLINE", 30), ("COLDLINE", 90), ("ARCHIVE", 365)),
    "azure": (("Cool", 30), ("Cold", 90), ("Archive", 180)),
}
MINIMUM_STORAGE_DAYS = {cls: days for classes in TIER_CLASSES.values() for cls, days in classes}
# The organisation's retention floor for health data backups (the GFS baseline of the DR
# strategy: 30 days, 12 weeks, 12 months, 7 years). A stack may keep longer, never shorter.
# Overridable per stack with the policy config property ``minimumRetentionDays``.
RETENTION_FLOOR_DAYS = {"daily": 30, "weekly": 84, "monthly": 365, "yearly": 2555}
GCP_MAX_ROTATION_SECONDS = 90 * DAY_SECONDS
AWS_MAX_ROTATION_DAYS = 365
AZURE_MAX_ROTATION_DAYS = 365

AWS_ADMIN_POLICY_NAMES = (
    "AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "AmazonS3FullAccess",
    "AWSKeyManagementServicePowerUser", "SecretsManagerReadWrite", "AWSLambda_FullAccess",
)
# Actions that AWS does not scope to a resource: ``"Resource": "*"`` is the only form they take.
AWS_RESOURCELESS_ACTIONS = frozenset({
    "cloudwatch:putmetricdata", "xray:puttracesegments", "xray:puttelemetryrecords",
    "logs:createloggroup", "kms:listaliases", "s3:listallmybuckets", "sts:getcalleridentity",
})
# sts:GetWebIdentityToken (outbound federation to Entra ID) has no resource-level scope: IAM
# accepts only "*". It passes only alone in its statement and with the token audience pinned.
AWS_AUDIENCE_SCOPED_ACTION = "sts:getwebidentitytoken"
AWS_AUDIENCE_KEY = "sts:IdentityTokenAudience"
GCP_PRIMITIVE_ROLES = ("roles/owner", "roles/editor", "roles/viewer")
GCP_PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# Built-in Azure roles that are owner/contributor-class, or that hand out account keys.
AZURE_PRIVILEGED_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}
# Built-in Azure data roles that delete or overwrite blobs (named in findings).
AZURE_DATA_WRITE_ROLES = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
}
# Environment variable names that would carry a credential or a connection secret in clear.
CREDENTIAL_ENV_NAMES = re.compile(
    r"^(DATABASE_URL|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|AWS_SESSION_TOKEN|"
    r"AZURE_STORAGE_CONNECTION_STRING|AZURE_STORAGE_KEY|AZURE_STORAGE_ACCOUNT_KEY|"
    r"AZURE_CLIENT_SECRET|AZURE_CLIENT_CERTIFICATE_PASSWORD|GOOGLE_APPLICATION_CREDENTIALS|"
    r"GOOGLE_CREDENTIALS|.*PASSWORD.*|.*_TOKEN|.*_API_KEY)$")
CREDENTIAL_VALUES = re.compile(
    r"(://[^/\s:@]+:[^/\s@]+@|AccountKey=|SharedAccessSignature=|sig=[A-Za-z0-9%]{20,}|"
    r"-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----|\"private_key\"\s*:|AKIA[0-9A-Z]{16})")

# ---- the stack's expectations --------------------------------------------------------------


@dataclass(frozen=True)
class DataClassExpectation:
    rpo_minutes: int
    daily_at_utc: str | None = None


@dataclass(frozen=True)
class Expectations:
    """What the stack file promises, in the units the rules compare against."""

    stack: str
    environment: str
    retention_days: Mapping[str, int]  # GFS tier -> days kept
    tier_days: tuple[int, int, int]  # days to the infrequent, archive and deep classes
    lock_days: int
    soft_delete_days: int
    log_retention_days: int
    status_every_minutes: int
    drill_schedule: str
    data_classes: Mapping[str, DataClassExpectation]
    enabled_clouds: tuple[str, ...]
    # retention.intradayHours in days: how long intraday backups are kept and locked (0: the
    # stack has no intraday tier).
    intraday_days: int = 0

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def min_clouds(self) -> int:
        return 2 if self.production else 1

    def prefix(self, tier: str) -> str:
        return f"database/{self.environment}/{tier}/"

    def expected_transitions(self, cloud: str, tier: str) -> list[tuple[int, str]]:
        """Transitions a tier's objects should take: only into a class they then stay in for
        at least its minimum storage duration before they expire."""
        expire = self.retention_days[tier]
        return [(day, cls) for day, (cls, minimum) in zip(self.tier_days, TIER_CLASSES[cloud],
                                                          strict=True)
                if expire - day >= minimum]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "environment": self.environment,
            "retentionDays": dict(self.retention_days), "tierDays": list(self.tier_days),
            "lockDays": self.lock_days, "softDeleteDays": self.soft_delete_days,
            "logRetentionDays": self.log_retention_days,
            "statusEveryMinutes": self.status_every_minutes,
            "drillSchedule": self.drill_schedule,
            "dataClasses": {n: {"rpoMinutes": c.rpo_minutes,
                                **({"dailyAtUtc": c.daily_at_utc} if c.daily_at_utc else {})}
                            for n, c in sorted(self.data_classes.items())},
            "enabledClouds": list(self.enabled_clouds),
            "intradayDays": self.intraday_days,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Expectations:
        return cls(
            stack=str(d["stack"]), environment=str(d["environment"]),
            retention_days={t: int(d["retentionDays"][t]) for t in GFS_TIERS},
            tier_days=tuple(int(x) for x in d["tierDays"]),  # type: ignore[arg-type]
            lock_days=int(d["lockDays"]), soft_delete_days=int(d["softDeleteDays"]),
            log_retention_days=int(d["logRetentionDays"]),
            status_every_minutes=int(d["statusEveryMinutes"]),
            drill_schedule=str(d["drillSchedule"]),
            data_classes={n: DataClassExpectation(int(c["rpoMinutes"]), c.get("dailyAtUtc"))
                          for n, c in d["dataClasses"].items()},
            enabled_clouds=tuple(d["enabledClouds"]),
            intraday_days=int(d.get("intradayDays", 0)),
        )

    @classmethod
    def from_stack_config(cls, cfg: Any) -> Expectations:
        """From a parsed ``infra.config.StackConfig`` (duck-typed: no import of infra here)."""
        return cls(
            stack=cfg.stack, environment=cfg.environment,
            retention_days={t: cfg.retention.days(t) for t in GFS_TIERS},
            tier_days=tuple(cfg.tiering.steps),
            lock_days=cfg.immutability.lock_days,
            soft_delete_days=cfg.immutability.soft_delete_days,
            log_retention_days=cfg.monitoring.log_retention_days,
            status_every_minutes=cfg.monitoring.status_every_minutes,
            drill_schedule=cfg.monitoring.drill_schedule,
            data_classes={n: DataClassExpectation(c.rpo_minutes, c.daily_at_utc)
                          for n, c in cfg.data_classes.items()},
            enabled_clouds=tuple(cfg.enabled_clouds),
            intraday_days=cfg.retention.intraday_days,
        )


def expectations_from_settings(settings: Mapping[str, Any], stack: str) -> Expectations:
    """From a stack file's ``config:`` mapping (``vo2max-dr:retention`` ... keys, values parsed),
    validated by the program's own ``infra.config.parse`` (imported here, lazily, so the pack
    also loads where only ``policy/`` is present)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from infra.config import parse

    ns = f"{PROJECT}:"
    raw = {k[len(ns):]: v for k, v in settings.items() if k.startswith(ns)}
    providers = {k: str(v) for k, v in settings.items() if not k.startswith(ns)}
    return Expectations.from_stack_config(parse(raw, stack=stack, providers=providers))


@functools.cache
def expectations_for_stack(stack: str) -> Expectations | None:
    """The engine's fallback: the stack's config from the CLI (``PULUMI_CONFIG``) or else its
    ``Pulumi.<stack>.yaml`` beside ``policy/``. None when neither is available."""
    settings: dict[str, Any] = {}
    env_config = os.environ.get("PULUMI_CONFIG")
    if env_config:
        for key, value in json.loads(env_config).items():
            try:
                settings[key] = json.loads(value) if value[:1] in "{[" else value
            except json.JSONDecodeError:
                settings[key] = value
    if not any(k.startswith(f"{PROJECT}:") for k in settings):
        path = ROOT / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            return None
        import yaml

        settings = dict(yaml.safe_load(path.read_text())["config"])
    return expectations_from_settings(settings, stack)


# ---- small helpers -------------------------------------------------------------------------


def get(props: Any, path: str, default: Any = None) -> Any:
    """``get(props, "rule.defaultRetention.mode")``; missing keys give ``default``."""
    node = props
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _days(value: Any) -> str:
    n = _num(value)
    return str(int(n)) if n is not None and n == int(n) else str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_policy_document(doc: Any) -> Mapping[str, Any] | None:
    if isinstance(doc, Mapping):
        return doc
    if isinstance(doc, str):
        try:
            parsed = json.loads(doc)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def _statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(doc.get("Statement")) if isinstance(s, Mapping)]


def _is_public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


_ISO_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


def iso_duration_days(value: Any) -> int | None:
    """``P90D`` -> 90, ``P1Y`` -> 365, ``P3M`` -> 90 (30-day months); None if unparseable."""
    m = _ISO_DURATION.match(str(value or ""))
    if not m or not any(m.groups()):
        return None
    y, mo, w, d = (int(g) if g else 0 for g in m.groups())
    return y * 365 + mo * 30 + w * 7 + d


def _seconds(value: Any) -> float | None:
    """GCP durations: ``"7776000s"`` or a number of seconds."""
    if isinstance(value, str) and value.endswith("s"):
        value = value[:-1]
    return _num(value)


# ---- schedules -----------------------------------------------------------------------------

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_RATE_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": MINUTES_PER_DAY}


def _cron_fields(expr: str) -> list[str] | None:
    m = _CRON.match(expr.strip())
    fields = (m.group(1) if m else expr).split()
    return fields if len(fields) in (5, 6) else None


def _expand(field_: str, low: int, high: int) -> list[int] | None:
    values: set[int] = set()
    for part in field_.split(","):
        step, stepped = 1, "/" in part
        if stepped:
            part, step_s = part.split("/", 1)
            if not step_s.isdigit() or int(step_s) == 0:
                return None
            step = int(step_s)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                return None
            start, end = int(a), int(b)
        elif part.isdigit():
            start = int(part)
            end = high if stepped else start
        else:
            return None
        values.update(range(start, end + 1, step))
    return sorted(v for v in values if low <= v <= high) or None


def schedule_gap_minutes(expr: str) -> float | None:
    """The longest gap, in minutes, between two runs of an EventBridge ``rate()``/``cron()`` or
    a Unix cron expression that runs at least daily; None for anything rarer or unparseable."""
    m = _RATE.match(expr.strip())
    if m:
        return int(m.group(1)) * _RATE_UNIT_MINUTES[m.group(2).rstrip("s")]
    fields = _cron_fields(expr)
    if fields is None:
        return None
    minute, hour, dom, month, dow = fields[:5]
    if any(f not in ("*", "?") for f in (dom, month, dow)):
        return None
    minutes, hours = _expand(minute, 0, 59), _expand(hour, 0, 23)
    if not minutes or not hours:
        return None
    times = sorted(h * 60 + mi for h in hours for mi in minutes)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    gaps.append(times[0] + MINUTES_PER_DAY - times[-1])
    return float(max(gaps))


def daily_time(expr: str) -> str | None:
    """``cron(0 2 * * ? *)`` -> ``"02:00"`` when the expression runs exactly once a day."""
    fields = _cron_fields(expr)
    if fields is None or not (fields[0].isdigit() and fields[1].isdigit()):
        return None
    if any(f not in ("*", "?") for f in fields[2:5]):
        return None
    return f"{int(fields[1]):02d}:{int(fields[0]):02d}"


def is_monthly(expr: str) -> bool:
    """Runs once a month: a fixed day of month with any weekday, or the n-th weekday (``MON#1``)
    with any day of month. Unix cron's ``0 9 1-7 * 1`` is *not* monthly: when both day fields
    are set it fires on days 1-7 *and* on every Monday."""
    fields = _cron_fields(expr)
    if fields is None:
        return False
    minute, hour, dom, month, dow = fields[:5]
    if not (minute.isdigit() and hour.isdigit() and month in ("*", "?")):
        return False
    if re.fullmatch(r"\d{1,2}|L", dom) and dow in ("*", "?"):
        return True
    nth_weekday = re.fullmatch(r"[A-Z0-9]{1,3}#[1-5]|[A-Z0-9]{1,3}L", dow)
    return dom in ("*", "?") and nth_weekday is not None


# ---- resources as the rules see them -------------------------------------------------------


@dataclass(frozen=True)
class Res:
    """One resource: its type, name, URN, properties (inputs, outputs merged), parent URN and
    the URNs it depends on."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    parent: str | None = None
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    message: str
    urn: str | None = None


# ---- values not known until the deploy (a first `pulumi preview`) --------------------------

# The sentinels the engine sends the analyzer for a value not known at preview, one per kind
# (pulumi_policy.proxy; the same strings as the Node SDK's).
UNKNOWN_SENTINELS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string (also the Pulumi SDK's rpc.UNKNOWN)
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})


class _Unknown:
    """What a check sees in place of an unknown value: not a string, number, bool, list or
    mapping, so no check mistakes it for a real setting."""

    def __repr__(self) -> str:
        return "<unknown until deploy>"

    __str__ = __repr__


UNKNOWN = _Unknown()


def is_unknown(value: Any) -> bool:
    if isinstance(value, _Unknown):
        return True
    if isinstance(value, str):
        return value in UNKNOWN_SENTINELS
    return type(value).__name__ == "Unknown" and type(value).__module__ == "pulumi.output"


class UnknownReads:
    """Which unknown values a check read, per resource URN: ``{urn: {"a.b[0]", ...}}``."""

    def __init__(self) -> None:
        self.paths: dict[str, set[str]] = {}

    def add(self, urn: str, path: str) -> None:
        self.paths.setdefault(urn, set()).add(path)

    def __bool__(self) -> bool:
        return bool(self.paths)


def _tracked(value: Any, urn: str, path: str, reads: UnknownReads) -> Any:
    if is_unknown(value):
        reads.add(urn, path or "(all)")
        return UNKNOWN
    if isinstance(value, Mapping):
        return _TrackedMap(value, urn, path, reads)
    if isinstance(value, list | tuple):
        return [_tracked(v, urn, f"{path}[{i}]", reads) for i, v in enumerate(value)]
    return value


class _TrackedMap(Mapping[str, Any]):
    """A resource's properties as a check reads them: an unknown value reads as UNKNOWN and is
    recorded (with its path) against the resource, so the finding it leads to can be told
    apart from one made on known values."""

    def __init__(self, data: Mapping[str, Any], urn: str, path: str,
                 reads: UnknownReads) -> None:
        self._data, self._urn, self._path, self._reads = data, urn, path, reads

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return _tracked(value, self._urn, f"{self._path}.{key}" if self._path else str(key),
                        self._reads)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def plain(value: Any) -> Any:
    """Engine properties (pulumi_policy's unknown-checking proxies) as plain dicts and lists,
    unknown sentinels kept, without tripping the proxy's "unknown during preview" error."""
    if isinstance(value, _PolicyDictProxy | _PolicyListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {k: plain(value[k]) for k in value}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def resources_from_graph(graph: Any) -> list[Res]:
    """From a ``dev.mockrun.Graph`` (or any list of objects with its attributes). A value not
    known (a ``preview=True`` run) becomes the engine's unknown sentinel."""
    items = getattr(graph, "resources", graph)
    return [Res(r.type, r.name, r.urn, _sentinels({**r.outputs, **r.inputs}), r.parent or None,
                tuple(r.dependencies)) for r in items if getattr(r, "custom", True)]


def _sentinels(value: Any) -> Any:
    if is_unknown(value):
        return "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    if isinstance(value, Mapping):
        return {k: _sentinels(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sentinels(v) for v in value]
    return value


def _linked(companion: Res, target: Res) -> bool:
    """Does ``companion`` (an ``aws.s3.Bucket*`` setting) configure bucket ``target``?"""
    if target.urn in companion.dependencies:
        return True
    name = companion.props.get("bucket")
    return bool(name) and name in (target.props.get("bucket"), target.props.get("id"))


# ---- resource checks -----------------------------------------------------------------------

Check = Callable[[str, Mapping[str, Any], "Expectations | None"], list[str]]


def check_aws_kms_key_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
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


def check_aws_s3_tls_only(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    doc = parse_policy_document(p.get("policy"))
    if doc is None:
        return ["bucket policy is not a JSON policy document"]
    for st in _statements(doc):
        cond = st.get("Condition") or {}
        secure = get(cond, "Bool") or {}
        actions = [a.lower() for a in _as_list(st.get("Action"))]
        if (st.get("Effect") == "Deny" and _is_public_principal(st.get("Principal"))
                and str(secure.get("aws:SecureTransport", "")).lower() == "false"
                and ("s3:*" in actions or "*" in actions)):
            return []
    return ["bucket policy has no statement denying s3:* to everyone when "
            "aws:SecureTransport is false"]


def check_aws_s3_policy_not_public(_t: str, p: Mapping[str, Any],
                                   _c: Expectations | None) -> list[str]:
    doc = parse_policy_document(p.get("policy"))
    if doc is None:
        return []
    return [f"statement {st.get('Sid', '?')} allows {st.get('Action')} to everyone "
            "(Principal *) without a condition"
            for st in _statements(doc)
            if st.get("Effect") == "Allow" and _is_public_principal(st.get("Principal"))
            and not st.get("Condition")]


def check_aws_s3_public_access_block(_t: str, p: Mapping[str, Any],
                                     _c: Expectations | None) -> list[str]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [f for f in flags if p.get(f) is not True]
    return [f"public access block leaves {', '.join(off)} off"] if off else []


def check_aws_s3_acls_disabled(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    owner = get(p, "rule.objectOwnership")
    if owner != "BucketOwnerEnforced":
        return [f"object ownership is {owner!r}, not BucketOwnerEnforced: ACLs still apply"]
    return []


def check_aws_s3_versioning(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    status = get(p, "versioningConfiguration.status")
    return [] if status == "Enabled" else [f"bucket versioning is {status!r}, not Enabled"]


def check_aws_s3_object_lock(_t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    out = []
    if p.get("objectLockEnabled", "Enabled") != "Enabled":
        out.append("object lock configuration is not Enabled")
    mode = get(p, "rule.defaultRetention.mode")
    days = _num(get(p, "rule.defaultRetention.days"))
    years = _num(get(p, "rule.defaultRetention.years"))
    if mode is None:
        out.append("object lock has no default retention: new backups are not locked")
        return out
    if c is not None and c.production and mode != "COMPLIANCE":
        out.append(f"object lock default retention is {mode} in production: it must be "
                   "COMPLIANCE so no one, not even an admin, can shorten it")
    if mode not in ("GOVERNANCE", "COMPLIANCE"):
        out.append(f"object lock mode {mode!r} is not GOVERNANCE or COMPLIANCE")
    total = (days or 0) + (years or 0) * 365
    if c is not None and total != c.lock_days:
        out.append(f"object lock keeps new versions {_days(total)} days, but the stack's "
                   f"immutability.lockDays is {c.lock_days}")
    return out


def check_log_group_retention(_t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    days = _num(p.get("retentionInDays"))
    if not days:
        return ["log group keeps logs forever (retentionInDays unset or 0)"]
    if c is not None and days != c.log_retention_days:
        return [f"log group keeps logs {_days(days)} days, but monitoring.logRetentionDays is "
                f"{c.log_retention_days}"]
    return []


def check_log_group_cmk(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    return [] if p.get("kmsKeyId") else ["log group is not encrypted with a customer key "
                                         "(kmsKeyId unset)"]


def _cmk_check(field_: str, aws_managed: str, what: str) -> Check:
    def check(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
        key = p.get(field_)
        if not key:
            return [f"{what} is not encrypted with a customer-managed KMS key ({field_} unset)"]
        if str(key) == aws_managed:
            return [f"{what} uses the AWS-managed key {aws_managed}, not a customer-managed key"]
        return []
    return check


def _env_findings(variables: Mapping[str, Any], where: str) -> list[str]:
    out = []
    for name, value in sorted(variables.items()):
        if CREDENTIAL_ENV_NAMES.match(str(name)):
            out.append(f"{where} sets {name}, a credential, in clear: pass a secret reference "
                       "(Secrets Manager / Secret Manager ARN) and fetch it at run time")
        elif isinstance(value, str) and CREDENTIAL_VALUES.search(value):
            out.append(f"{where} variable {name} holds a credential in clear")
    return out


def check_lambda_no_credentials(_t: str, p: Mapping[str, Any],
                                _c: Expectations | None) -> list[str]:
    return _env_findings(get(p, "environment.variables") or {}, "function environment")


def check_scheduler_retry_dlq(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if not get(p, "target.deadLetterConfig.arn"):
        out.append("schedule target has no dead-letter queue (target.deadLetterConfig.arn)")
    if get(p, "target.retryPolicy") is None:
        out.append("schedule target has no retry policy (target.retryPolicy)")
    return out


def _iam_statement_findings(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for st in _statements(doc):
        sid = st.get("Sid", "?")
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            out.append(f"statement {sid} uses NotAction/NotResource, which grants everything else")
        actions = [str(a) for a in _as_list(st.get("Action"))]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                out.append(f"statement {sid} allows the wildcard action {action!r}")
        resources = [str(r) for r in _as_list(st.get("Resource"))]
        if "*" in resources and not all(a.lower() in AWS_RESOURCELESS_ACTIONS for a in actions) \
                and not _audience_scoped_token_grant(actions, st.get("Condition") or {}):
            out.append(f"statement {sid} allows {actions} on Resource '*'")
    return out


def _audience_scoped_token_grant(actions: list[str], condition: Mapping[str, Any]) -> bool:
    if [a.lower() for a in actions] != [AWS_AUDIENCE_SCOPED_ACTION]:
        return False
    audiences = _as_list((condition.get("ForAllValues:StringEquals") or {}).get(AWS_AUDIENCE_KEY))
    required = str((condition.get("Null") or {}).get(AWS_AUDIENCE_KEY, "")).lower() == "false"
    return required and bool(audiences) and all(a and "*" not in str(a) for a in audiences)


def check_aws_iam_no_wildcards(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if t == "aws:iam/role:Role":
        trust = parse_policy_document(p.get("assumeRolePolicy"))
        for st in _statements(trust or {}):
            if st.get("Effect") == "Allow" and _is_public_principal(st.get("Principal")) \
                    and not st.get("Condition"):
                out.append(f"trust statement {st.get('Sid', '?')} lets anyone (Principal *) "
                           "assume the role")
        for inline in _as_list(p.get("inlinePolicies")):
            doc = parse_policy_document(get(inline, "policy"))
            if doc is not None:
                out += _iam_statement_findings(doc)
        return out
    doc = parse_policy_document(p.get("policy"))
    if doc is None:
        return ["policy is not a JSON policy document"]
    return _iam_statement_findings(doc)


def check_aws_iam_no_admin_policies(t: str, p: Mapping[str, Any],
                                    _c: Expectations | None) -> list[str]:
    arns = _as_list(p.get("managedPolicyArns")) + _as_list(p.get("policyArn"))
    return [f"attaches the AWS-managed {arn.rsplit('/', 1)[-1]} policy" for arn in map(str, arns)
            if arn.rsplit("/", 1)[-1] in AWS_ADMIN_POLICY_NAMES]


def check_gcp_kms_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    period = _seconds(p.get("rotationPeriod"))
    if period is None:
        return ["crypto key has no rotationPeriod: it never rotates"]
    if period > GCP_MAX_ROTATION_SECONDS:
        return [f"crypto key rotates every {_days(period / DAY_SECONDS)} days, more than 90"]
    return []


def check_gcs_cmek(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    return [] if get(p, "encryption.defaultKmsKeyName") else [
        "bucket has no customer-managed default key (encryption.defaultKmsKeyName)"]


def check_gcs_public_access(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if p.get("publicAccessPrevention") != "enforced":
        out.append(f"publicAccessPrevention is {p.get('publicAccessPrevention')!r}, not enforced")
    if p.get("uniformBucketLevelAccess") is not True:
        out.append("uniformBucketLevelAccess is off: object ACLs can still grant access")
    return out


def check_gcs_versioning_soft_delete(_t: str, p: Mapping[str, Any],
                                     c: Expectations | None) -> list[str]:
    out = []
    if get(p, "versioning.enabled") is not True:
        out.append("bucket versioning is off (versioning.enabled): a deleted or expired object "
                   "cannot be brought back as a noncurrent version")
    soft = _seconds(get(p, "softDeletePolicy.retentionDurationSeconds"))
    if not soft:
        out.append("soft delete is off (softDeletePolicy.retentionDurationSeconds)")
    elif c is not None and soft < c.soft_delete_days * DAY_SECONDS:
        out.append(f"soft delete keeps deleted objects {_days(soft / DAY_SECONDS)} days, less "
                   f"than immutability.softDeleteDays ({c.soft_delete_days})")
    return out


GCS_RETENTION_DAYS_ENV = "VO2DR_GCS_RETENTION_DAYS"
GCS_RETENTION_MODE_ENV = "VO2DR_GCS_RETENTION_MODE"


def _gcs_writers(resources: Sequence[Res]) -> list[tuple[Res, dict[str, Any]]]:
    """(resource, environment) of every Lambda function and Cloud Run job configured with a
    GCS bucket (VO2DR_GCS_BUCKET): the job code that may upload to it."""
    out = []
    for r in _of(resources, "aws:lambda/function:Function"):
        env = dict(get(r.props, "environment.variables") or {})
        if "VO2DR_GCS_BUCKET" in env:
            out.append((r, env))
    for r in _of(resources, "gcp:cloudrunv2/job:Job"):
        for container in _as_list(get(r.props, "template.template.containers")):
            env = {e.get("name"): e.get("value") for e in _as_list(get(container, "envs"))
                   if isinstance(e, Mapping)}
            if "VO2DR_GCS_BUCKET" in env:
                out.append((r, env))
    return out


def _bucket_policy_findings(bucket: Res, c: Expectations) -> list[Finding]:
    """A bucket-wide retention policy (Bucket Lock) instead of Object Retention Lock."""
    out = []
    period = _seconds(get(bucket.props, "retentionPolicy.retentionPeriod")) or 0
    if period < c.lock_days * DAY_SECONDS:
        out.append(Finding(f"bucket {bucket.name} retention policy keeps objects "
                           f"{_days(period / DAY_SECONDS)} days, less than "
                           f"immutability.lockDays ({c.lock_days})", bucket.urn))
    if c.production and get(bucket.props, "retentionPolicy.isLocked") is not True:
        out.append(Finding(f"bucket {bucket.name} retention policy is not locked in production "
                           "(retentionPolicy.isLocked)", bucket.urn))
    return out


def check_gcs_retention_locked(resources: Sequence[Res],
                               c: Expectations | None) -> list[Finding]:
    """Every GCS backup object is retained for lockDays, Locked in production. GCS offers two
    ways: a bucket retention policy (Bucket Lock; refuses Object Versioning), or Object Retention
    Lock (works with versioning), where the bucket enables it and the writer sets each object's
    retain-until time and mode at upload: then every job configured with the bucket must carry
    VO2DR_GCS_RETENTION_DAYS >= lockDays and VO2DR_GCS_RETENTION_MODE (Locked in production)."""
    buckets = _of(resources, "gcp:storage/bucket:Bucket")
    if not buckets:
        return []
    if c is None:
        return [Finding("stack expectations are unavailable: cannot check the GCS retention "
                        "against immutability.lockDays")]
    out: list[Finding] = []
    per_object = False
    for bucket in buckets:
        if get(bucket.props, "retentionPolicy.retentionPeriod"):
            out += _bucket_policy_findings(bucket, c)
        elif bucket.props.get("enableObjectRetention") is True:
            per_object = True
        else:
            out.append(Finding(f"bucket {bucket.name} retains nothing: neither a retention "
                               "policy (retentionPolicy) nor Object Retention Lock "
                               "(enableObjectRetention)", bucket.urn))
    if not per_object:
        return out
    writers = _gcs_writers(resources)
    if not writers:
        out.append(Finding("the GCS bucket relies on Object Retention Lock, but no job is "
                           "configured to write to it with a retention (VO2DR_GCS_BUCKET)"))
    want_modes = ("Locked",) if c.production else ("Locked", "Unlocked")
    for r, env in writers:
        days, mode = env.get(GCS_RETENTION_DAYS_ENV), env.get(GCS_RETENTION_MODE_ENV)
        if days is None or mode is None:
            out.append(Finding(f"{r.name} writes to GCS without {GCS_RETENTION_DAYS_ENV} and "
                               f"{GCS_RETENTION_MODE_ENV}: its uploads carry no retention",
                               r.urn))
            continue
        if (_num(days) or 0) < c.lock_days:
            out.append(Finding(f"{r.name} retains GCS uploads {days} days, less than "
                               f"immutability.lockDays ({c.lock_days})", r.urn))
        if mode not in want_modes:
            out.append(Finding(f"{r.name} retains GCS uploads in mode {mode!r}"
                               f"{' in production' if c.production else ''}: use "
                               f"{' or '.join(want_modes)}", r.urn))
    return out


# Custom-role permissions that would let a backup identity destroy or expose backups: deleting
# or overwriting objects, shortening an Unlocked retention, changing the bucket or its IAM.
GCP_DESTRUCTIVE_PERMISSIONS = re.compile(
    r"^(storage\.objects\.(delete|overrideUnlockedRetention)"
    r"|storage\.buckets\.(delete|update|enableObjectRetention)"
    r"|storage\.managedFolders\.delete|.*\.setIamPolicy|.*\*.*)$")


def check_gcp_custom_role(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    return [f"custom role grants {perm}, which can destroy or expose backups"
            for perm in map(str, _as_list(p.get("permissions")))
            if GCP_DESTRUCTIVE_PERMISSIONS.match(perm)]


def _gcp_members(p: Mapping[str, Any]) -> list[str]:
    return [str(m) for m in _as_list(p.get("member")) + _as_list(p.get("members"))]


def check_gcp_iam_no_primitive_roles(_t: str, p: Mapping[str, Any],
                                     _c: Expectations | None) -> list[str]:
    role = str(p.get("role", ""))
    if role in GCP_PRIMITIVE_ROLES:
        return [f"grants the basic role {role}"]
    if _t.startswith("gcp:projects/") and (role.endswith("admin") or role.endswith("Admin")):
        return [f"grants the project-wide admin role {role}"]
    return []


# Predefined GCS roles a grant on the backup bucket may carry: read, list, create. Overwriting
# an object in GCS needs storage.objects.delete, which none of these has. Anything else on the
# bucket (storage.admin, objectAdmin, objectUser, legacyBucketOwner/Writer, legacyObjectOwner,
# folderAdmin, basic roles, a future predefined role) is refused: fail safe, not a deny list.
# Custom roles (projects/<p>/roles/<id>) pass here; gcp-iam-customrole-no-destructive-permissions
# judges their permissions.
GCS_BUCKET_SAFE_ROLES = frozenset({
    "roles/storage.objectViewer", "roles/storage.objectCreator",
    "roles/storage.legacyBucketReader", "roles/storage.legacyObjectReader",
    "roles/storage.bucketViewer",
})
# Project-wide grants reach the backup bucket too; these predefined roles can delete or
# overwrite its objects, or change the bucket, its retention or its IAM policy.
GCS_DESTRUCTIVE_ROLES = frozenset({
    "roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin",
    "roles/storage.objectUser", "roles/storage.legacyBucketOwner",
    "roles/storage.legacyBucketWriter", "roles/storage.legacyObjectOwner",
    "roles/storage.folderAdmin",
})
# Grants on the bucket, and on managed folders inside it (a folder grant of objectAdmin deletes
# the backups below it just as well).
GCS_BUCKET_IAM_TYPES = (
    "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:storage/bucketIAMPolicy:BucketIAMPolicy",
    "gcp:storage/managedFolderIamMember:ManagedFolderIamMember",
    "gcp:storage/managedFolderIamBinding:ManagedFolderIamBinding",
    "gcp:storage/managedFolderIamPolicy:ManagedFolderIamPolicy",
)
GCP_PROJECT_IAM_TYPES = ("gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding")


def _gcp_roles(p: Mapping[str, Any]) -> list[str]:
    """The roles a member, binding or whole IAM policy (policyData JSON) grants."""
    if "policyData" in p:
        doc = parse_policy_document(p.get("policyData")) or {}
        return [str(b.get("role", "")) for b in _as_list(doc.get("bindings"))
                if isinstance(b, Mapping)]
    return [str(p.get("role", ""))]


def check_gcs_grants_no_destructive_roles(t: str, p: Mapping[str, Any],
                                          _c: Expectations | None) -> list[str]:
    out = []
    for role in _gcp_roles(p):
        if t in GCP_PROJECT_IAM_TYPES:
            if role in GCS_DESTRUCTIVE_ROLES:
                out.append(f"grants {role} project-wide: it can delete or overwrite the "
                           "backups in every bucket of the project")
        elif role.startswith("roles/") and role not in GCS_BUCKET_SAFE_ROLES:
            what = ("can delete or overwrite backups" if role in GCS_DESTRUCTIVE_ROLES
                    else "is not known to leave backups intact")
            out.append(f"grants {role} on the backup bucket, which {what}: only "
                       f"{', '.join(sorted(GCS_BUCKET_SAFE_ROLES))} or a vetted custom role")
    return out


def check_gcp_iam_no_public_members(_t: str, p: Mapping[str, Any],
                                    _c: Expectations | None) -> list[str]:
    return [f"grants {p.get('role')} to {m}" for m in _gcp_members(p)
            if m in GCP_PUBLIC_MEMBERS]


def check_gcp_no_sa_keys(t: str, _p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    what = "an HMAC key" if t.endswith("hmacKey:HmacKey") else "a service-account key"
    return [f"declares {what}: a long-lived credential. Use workload identity federation"]


def check_gcp_wif_condition(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    if not str(p.get("attributeCondition") or "").strip():
        return ["provider has no attributeCondition: every identity of the trusted account "
                "can exchange tokens"]
    return []


def check_cloudrun_no_credentials(_t: str, p: Mapping[str, Any],
                                  _c: Expectations | None) -> list[str]:
    out = []
    template = get(p, "template.template") or {}
    for container in _as_list(template.get("containers")):
        envs = {e.get("name"): e.get("value") for e in _as_list(get(container, "envs"))
                if isinstance(e, Mapping) and "value" in e}
        out += _env_findings(envs, "job container environment")
    if not template.get("serviceAccount"):
        out.append("job runs as the default compute service account (template.template."
                   "serviceAccount unset)")
    return out


def check_azure_key_rotation(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    actions = _as_list(get(p, "properties.rotationPolicy.lifetimeActions"))
    rotate = [a for a in actions if str(get(a, "action.type", "")).lower() == "rotate"]
    if not rotate:
        return ["key has no rotation policy with a rotate action "
                "(properties.rotationPolicy.lifetimeActions)"]
    days = [iso_duration_days(get(a, "trigger.timeAfterCreate")) for a in rotate]
    if not any(d is not None and d <= AZURE_MAX_ROTATION_DAYS for d in days):
        return [f"key rotates after {[get(a, 'trigger') for a in rotate]}, not within "
                f"{AZURE_MAX_ROTATION_DAYS} days of creation"]
    return []


def check_azure_vault_recoverable(_t: str, p: Mapping[str, Any],
                                  _c: Expectations | None) -> list[str]:
    out = []
    if get(p, "properties.enablePurgeProtection") is not True:
        out.append("key vault has purge protection off: a deleted key (and every backup "
                   "encrypted with it) could be purged at once")
    if get(p, "properties.enableSoftDelete") is False:
        out.append("key vault has soft delete off")
    return out


def check_azure_storage_cmk(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if get(p, "encryption.keySource") != "Microsoft.Keyvault":
        out.append(f"encryption.keySource is {get(p, 'encryption.keySource')!r}, not "
                   "Microsoft.Keyvault: data is encrypted with a Microsoft-managed key")
    elif not (get(p, "encryption.keyVaultProperties.keyName")
              and get(p, "encryption.keyVaultProperties.keyVaultUri")):
        out.append("encryption.keyVaultProperties does not name the key and vault")
    if get(p, "encryption.requireInfrastructureEncryption") is not True:
        out.append("infrastructure (double) encryption is off "
                   "(encryption.requireInfrastructureEncryption)")
    return out


def check_azure_storage_tls(_t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    out = []
    if p.get("enableHttpsTrafficOnly") is not True:
        out.append("storage account accepts plain HTTP (enableHttpsTrafficOnly is not true)")
    if p.get("minimumTlsVersion") not in ("TLS1_2", "TLS1_3"):
        out.append(f"minimumTlsVersion is {p.get('minimumTlsVersion')!r}, not TLS1_2 or later")
    return out


def check_azure_storage_public(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    if t == "azure-native:storage:BlobContainer":
        level = p.get("publicAccess", "None")
        return [] if level == "None" else [f"container publicAccess is {level!r}, not None"]
    return [] if p.get("allowBlobPublicAccess") is False else [
        "storage account allows public blob access (allowBlobPublicAccess is not false)"]


def check_azure_storage_shared_key(_t: str, p: Mapping[str, Any],
                                   _c: Expectations | None) -> list[str]:
    return [] if p.get("allowSharedKeyAccess") is False else [
        "storage account allows shared-key access (allowSharedKeyAccess is not false): "
        "anyone holding an account key bypasses Entra ID and RBAC"]


def check_azure_blob_soft_delete(_t: str, p: Mapping[str, Any],
                                 c: Expectations | None) -> list[str]:
    out = []
    if p.get("isVersioningEnabled") is not True:
        out.append("blob versioning is off (isVersioningEnabled)")
    for key in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        if get(p, f"{key}.enabled") is not True:
            out.append(f"{key} is off: a deleted {'blob' if key[0] == 'd' else 'container'} "
                       "is gone at once")
        elif c is not None and (_num(get(p, f"{key}.days")) or 0) < c.soft_delete_days:
            out.append(f"{key} keeps {_days(get(p, f'{key}.days'))} days, less than "
                       f"immutability.softDeleteDays ({c.soft_delete_days})")
    return out


def check_azure_immutability(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    out = []
    if t == "azure-native:storage:BlobContainerImmutabilityPolicy":
        days = _num(p.get("immutabilityPeriodSinceCreationInDays"))
        if not days:
            return ["immutability policy has no immutabilityPeriodSinceCreationInDays"]
        # The intraday container is locked for the intraday window instead
        # (multicloud-storage-intraday-lock-window checks it).
        intraday = _is_intraday_container(p.get("containerName"))
        if c is not None and days < c.lock_days and not intraday:
            out.append(f"immutability period is {_days(days)} days, less than "
                       f"immutability.lockDays ({c.lock_days})")
        if p.get("allowProtectedAppendWrites") or p.get("allowProtectedAppendWritesAll"):
            out.append("immutability policy allows appends to protected blobs")
        return out
    policy = get(p, "immutableStorageWithVersioning.immutabilityPolicy")
    if isinstance(policy, Mapping) and c is not None:
        days = _num(policy.get("immutabilityPeriodSinceCreationInDays")) or 0
        if days < c.lock_days:
            out.append(f"account immutability period is {_days(days)} days, less than "
                       f"immutability.lockDays ({c.lock_days})")
    return out


def _account_of(r: Res, accounts: Sequence[Res]) -> Res | None:
    for account in accounts:
        if account.urn in r.dependencies or (
                r.props.get("accountName") not in (None, "")
                and r.props.get("accountName") == account.props.get("accountName")):
            return account
    return None


def check_azure_delete_lock(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    """Production: Azure creates every immutability policy unlocked, so until the one-time lock
    the account must at least be protected from deletion by a CanNotDelete management lock."""
    if c is None or not c.production:
        return []
    locks = [r for r in _of(resources, "azure-native:authorization:ManagementLockByScope")
             if r.props.get("level") == "CanNotDelete"]
    out = []
    for account in _of(resources, f"{AZ}StorageAccount"):
        ids = {account.urn, str(account.props.get("id", ""))}
        if not any(account.urn in lock.dependencies or str(lock.props.get("scope")) in ids
                   for lock in locks):
            out.append(Finding(f"production storage account {account.name} has no "
                               "CanNotDelete management lock", account.urn))
    return out


def check_azure_immutability_locked(resources: Sequence[Res],
                                    c: Expectations | None) -> list[Finding]:
    """Production: each container immutability policy is Locked, or locked by ``pulumi up``:
    Azure creates every policy unlocked and locks it only by a separate call (POST
    .../immutabilityPolicies/default/lock with the ETag), which the program's
    ImmutabilityPolicyLock dynamic resource makes. So a policy passes when its deployed state is
    Locked, or when a lock resource depends on it (or names its id)."""
    if c is None or not c.production:
        return []
    locks = _of(resources, AZURE_IMMUTABILITY_LOCK_TYPE)
    out = []
    for policy in _of(resources, f"{AZ}BlobContainerImmutabilityPolicy"):
        state = policy.props.get("state")
        if state == "Locked":
            continue
        ids = {policy.urn, str(policy.props.get("id") or policy.urn)}
        mine = [lock for lock in locks
                if policy.urn in lock.dependencies or lock.props.get("policy_id") in ids]
        if not mine:
            out.append(Finding(f"immutability policy {policy.name} is {state or 'not yet created'}"
                               " in production and nothing locks it: declare "
                               "ImmutabilityPolicyLock (infra/azure/immutability_lock.py) "
                               "depending on it", policy.urn))
        for lock in mine:
            if lock.props.get("state") not in (None, "Locked"):
                out.append(Finding(f"immutability lock {lock.name} reports state "
                                   f"{lock.props.get('state')!r}, not 'Locked'", lock.urn))
    for account in _of(resources, f"{AZ}StorageAccount"):
        policy = get(account.props, "immutableStorageWithVersioning.immutabilityPolicy")
        if isinstance(policy, Mapping) and policy.get("state") != "Locked":
            out.append(Finding(f"account immutability policy of {account.name} is "
                               f"{policy.get('state')!r} in production", account.urn))
    return out


def check_azure_role_assignment(_t: str, p: Mapping[str, Any],
                                _c: Expectations | None) -> list[str]:
    role_id = str(p.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    if role_id in AZURE_PRIVILEGED_ROLES:
        return [f"assigns the privileged built-in role {AZURE_PRIVILEGED_ROLES[role_id]}"]
    scope = str(p.get("scope", ""))
    if re.fullmatch(r"/subscriptions/[^/]+/?", scope) or scope in ("", "/"):
        return [f"assigns a role at subscription scope {scope!r}: scope it to the container"]
    return []


def check_azure_role_definition(_t: str, p: Mapping[str, Any],
                                _c: Expectations | None) -> list[str]:
    out = []
    for perm in _as_list(p.get("permissions")):
        for key in ("actions", "dataActions"):
            out += [f"role definition {key} include the wildcard {a!r}"
                    for a in _as_list(get(perm, key)) if "*" in str(a)]
    return out


# ---- lifecycle, normalised per cloud -------------------------------------------------------


@dataclass
class TierRule:
    prefix: str
    expire_days: float | None = None
    transitions: list[tuple[float, str]] = field(default_factory=list)


def lifecycle_rules(t: str, p: Mapping[str, Any]) -> tuple[str, list[TierRule]]:
    """``(cloud, [TierRule])`` for an S3 lifecycle configuration, a GCS bucket or an Azure
    management policy; only enabled rules."""
    if t == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
        rules = []
        for r in _as_list(p.get("rules")):
            if r.get("status") != "Enabled":
                continue
            prefix = get(r, "filter.prefix") or get(r, "filter.and.prefix") or r.get("prefix") or ""
            rules.append(TierRule(
                prefix, _num(get(r, "expiration.days")),
                sorted((_num(x.get("days")) or 0, x.get("storageClass"))
                       for x in _as_list(r.get("transitions")))))
        return "aws", rules
    if t == "gcp:storage/bucket:Bucket":
        by_prefix: dict[str, TierRule] = {}
        for r in _as_list(p.get("lifecycleRules")):
            age = _num(get(r, "condition.age"))
            for prefix in _as_list(get(r, "condition.matchesPrefixes")) or [""]:
                rule = by_prefix.setdefault(prefix, TierRule(prefix))
                kind = get(r, "action.type")
                if kind == "Delete" and age is not None:
                    rule.expire_days = age if rule.expire_days is None else min(rule.expire_days,
                                                                                age)
                elif kind == "SetStorageClass" and age is not None:
                    rule.transitions.append((age, get(r, "action.storageClass")))
        for rule in by_prefix.values():
            rule.transitions.sort()
        return "gcp", list(by_prefix.values())
    rules = []
    for r in _as_list(get(p, "policy.rules")):
        if r.get("enabled") is False:
            continue
        base = get(r, "definition.actions.baseBlob") or {}
        days = {k: _num(get(base, f"{k}.daysAfterCreationGreaterThan"))
                for k in ("tierToCool", "tierToCold", "tierToArchive", "delete")}
        transitions = sorted((d, cls) for cls, d in (("Cool", days["tierToCool"]),
                                                     ("Cold", days["tierToCold"]),
                                                     ("Archive", days["tierToArchive"]))
                             if d is not None)
        for prefix in _as_list(get(r, "definition.filters.prefixMatch")) or [""]:
            rules.append(TierRule(str(prefix), days["delete"], list(transitions)))
    return "azure", rules


def _tier_of(prefix: str, ctx: Expectations | None) -> str | None:
    """The GFS tier of a lifecycle prefix; Azure prefixes start with the container name."""
    i = prefix.find("database/")
    if i < 0:
        return None
    parts = prefix[i:].strip("/").split("/")
    if len(parts) == 3 and parts[2] in GFS_TIERS and (ctx is None or
                                                      parts[1] == ctx.environment):
        return parts[2]
    return None


def check_lifecycle_gfs(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    cloud, rules = lifecycle_rules(t, p)
    tiers = {}
    for rule in rules:
        tier = _tier_of(rule.prefix, c)
        if tier:
            tiers[tier] = rule
    if not tiers and not any("database/" in r.prefix for r in rules):
        return []  # not a backup store's lifecycle (e.g. the access-log bucket)
    if c is None:
        return ["stack expectations are unavailable: cannot compare the lifecycle with the "
                "stack's GFS retention"]
    out = []
    for tier in GFS_TIERS:
        prefix, keep = c.prefix(tier), c.retention_days[tier]
        rule = tiers.get(tier)
        if rule is None:
            out.append(f"no lifecycle rule for {prefix}: {tier} backups would never expire")
            continue
        if rule.expire_days != keep:
            out.append(f"{prefix} expires after {_days(rule.expire_days)} days, but the stack "
                       f"keeps {tier} backups {keep} days (retention)")
        expected = c.expected_transitions(cloud, tier)
        got = [(int(d), cls) for d, cls in rule.transitions]
        if got != expected:
            out.append(f"{prefix} moves objects {got or 'nowhere'}, but the stack's tiering "
                       f"gives {expected or 'none'}")
    return out


def check_lifecycle_min_duration(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    _, rules = lifecycle_rules(t, p)
    out = []
    for rule in rules:
        where = rule.prefix or "(whole bucket)"
        events = [*rule.transitions]
        for i, (day, cls) in enumerate(events):
            minimum = MINIMUM_STORAGE_DAYS.get(str(cls))
            if minimum is None:
                continue
            nxt = events[i + 1][0] if i + 1 < len(events) else rule.expire_days
            if nxt is not None and nxt - day < minimum:
                out.append(f"{where} keeps objects in {cls} for {_days(nxt - day)} days (from "
                           f"day {_days(day)}), less than its {minimum}-day minimum")
        if (c is not None and rule.expire_days is not None and _tier_of(rule.prefix, c)
                and rule.expire_days < c.lock_days):
            out.append(f"{where} expires after {_days(rule.expire_days)} days, before the "
                       f"{c.lock_days}-day lock ends")
    return out


def check_retention_floor(t: str, p: Mapping[str, Any], c: Expectations | None,
                          floor: Mapping[str, int] | None = None) -> list[str]:
    floor = floor or RETENTION_FLOOR_DAYS
    _, rules = lifecycle_rules(t, p)
    out = []
    for rule in rules:
        tier = _tier_of(rule.prefix, None)
        if tier and rule.expire_days is not None and rule.expire_days < floor[tier]:
            out.append(f"{rule.prefix} deletes {tier} backups after {_days(rule.expire_days)} "
                       f"days, below the {floor[tier]}-day retention floor")
    return out


# ---- the intraday tier: its expiry, its lock, and no writer that can shorten a lock --------

INTRADAY = "intraday"
INTRADAY_CONTAINER_SUFFIX = "-intraday"  # vo2dr.layout.intraday_container
STRATEGY_ENV = "VO2DR_STRATEGY"
# Grants that would shorten or lift an S3 lock or delete a locked version (an explicit one;
# wildcards are aws-iam-policy-no-wildcards' business).
AWS_LOCK_BREAKING_ACTIONS = frozenset({
    "s3:bypassgovernanceretention", "s3:putbucketobjectlockconfiguration",
    "s3:deleteobject", "s3:deleteobjectversion", "s3:*", "*"})
# Azure data actions that shorten or remove a blob's lock (the one immutability action also
# extends any and deletes unlocked ones) or delete blobs and versions.
AZURE_LOCK_BREAKING = re.compile(
    r"(immutableStorage/runAsSuperUser/action|/blobs/delete$|/deleteBlobVersion/action"
    r"|/permanentDelete/action|\*)", re.IGNORECASE)
GCP_LOCK_BREAKING = re.compile(
    r"^(storage\.objects\.(delete|overrideUnlockedRetention)|storage\.buckets\.update"
    r"|.*\*.*)$")


def _is_intraday_container(name: Any) -> bool:
    return str(name or "").endswith(INTRADAY_CONTAINER_SUFFIX)


def check_intraday_expiry(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    """Each cloud's lifecycle expires the intraday prefix when its window ends and never moves
    it to a colder class; on Azure, in the intraday container (the one locked that long)."""
    cloud, rules = lifecycle_rules(t, p)
    if not any("database/" in r.prefix for r in rules):
        return []  # not a backup store's lifecycle
    if c is None:
        return ["stack expectations are unavailable: cannot check the intraday expiry"]
    if not c.intraday_days:
        return []
    want = c.prefix(INTRADAY)
    mine = [r for r in rules if r.prefix.endswith(want)]
    if not mine:
        return [f"no lifecycle rule for {want}: intraday backups would never expire, and the "
                "tier would keep every backup of the day"]
    out = []
    for rule in mine:
        if rule.expire_days != c.intraday_days:
            out.append(f"{rule.prefix} expires after {_days(rule.expire_days)} days, but the "
                       f"stack keeps intraday backups {c.intraday_days} "
                       "(retention.intradayHours)")
        if rule.transitions:
            out.append(f"{rule.prefix} moves intraday objects to {rule.transitions}: they live "
                       f"{c.intraday_days} days, less than any colder class's minimum")
        if cloud == "azure" and not _is_intraday_container(rule.prefix.split("/", 1)[0]):
            out.append(f"{rule.prefix} is not in the '<container>{INTRADAY_CONTAINER_SUFFIX}' "
                       "container: only that one is locked for the intraday window")
    return out


def _job_envs(resources: Sequence[Res]) -> list[tuple[Res, dict[str, Any]]]:
    """(resource, environment) of every Lambda function and Cloud Run job."""
    out = [(r, dict(get(r.props, "environment.variables") or {}))
           for r in _of(resources, "aws:lambda/function:Function")]
    for r in _of(resources, "gcp:cloudrunv2/job:Job"):
        for container in _as_list(get(r.props, "template.template.containers")):
            out.append((r, {e.get("name"): e.get("value") for e in _as_list(get(container, "envs"))
                            if isinstance(e, Mapping)}))
    return out


def _grants(doc: Mapping[str, Any], action: str) -> bool:
    return any(st.get("Effect") == "Allow" and action in
               [str(a).lower() for a in _as_list(st.get("Action"))] for st in _statements(doc))


def check_intraday_lock(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    """Intraday objects are locked exactly until their window ends, in every cloud: on S3 and
    GCS by their own retain-until time, which the job computes from VO2DR_STRATEGY (so every
    job's strategy carries the stack's window and, in production, compliance) and which the S3
    writer must be allowed to send (s3:PutObjectRetention: S3 refuses it otherwise); on Azure
    by the intraday container's immutability policy."""
    if c is None:
        return [Finding("stack expectations are unavailable: cannot check the intraday lock")]
    if not c.intraday_days:
        return []
    out: list[Finding] = []
    if _of(resources, f"{AZ}StorageAccount"):
        policies = [r for r in _of(resources, f"{AZ}BlobContainerImmutabilityPolicy")
                    if _is_intraday_container(r.props.get("containerName"))]
        if not policies:
            out.append(Finding("no immutability policy on a '<container>-intraday' container: "
                               "Azure intraday blobs would be unlocked"))
        for r in policies:
            days = _num(r.props.get("immutabilityPeriodSinceCreationInDays"))
            if days != c.intraday_days:
                out.append(Finding(f"{r.name} locks intraday blobs {_days(days)} days, but they "
                                   f"expire after {c.intraday_days}", r.urn))
    for r, env in _job_envs(resources):
        if STRATEGY_ENV not in env:
            continue
        try:
            doc = json.loads(env[STRATEGY_ENV])
        except (TypeError, json.JSONDecodeError):
            out.append(Finding(f"{r.name}: {STRATEGY_ENV} is not JSON", r.urn))
            continue
        hours, mode = get(doc, "retention.intradayHours"), get(doc, "immutability.mode")
        if _num(hours) != c.intraday_days * 24:
            out.append(Finding(f"{r.name} locks intraday objects {hours} h, but they expire "
                               f"after {c.intraday_days} days", r.urn))
        if c.production and mode != "compliance":
            out.append(Finding(f"{r.name} locks intraday objects in mode {mode!r} in "
                               "production: use compliance", r.urn))
    for r in _of(resources, "aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        doc = parse_policy_document(r.props.get("policy")) or {}
        if _grants(doc, "s3:putobject") and any(
                "database/" in str(res) for st in _statements(doc)
                for res in _as_list(st.get("Resource"))) and not _grants(
                doc, "s3:putobjectretention"):
            out.append(Finding(f"{r.name} writes backups without s3:PutObjectRetention: S3 "
                               "refuses an upload that carries its own (intraday) lock", r.urn))
    return out


def check_no_lock_shortening(t: str, p: Mapping[str, Any], _c: Expectations | None) -> list[str]:
    """No identity may shorten or lift a lock, or delete a locked backup: S3 governance bypass
    or object-lock configuration changes, Azure's blob immutability or delete actions, GCS's
    retention override or object delete. Setting a lock at creation stays allowed."""
    if t == "azure-native:authorization:RoleDefinition":
        return [f"role definition grants {a}, which can shorten a lock or delete a backup"
                for perm in _as_list(p.get("permissions"))
                for a in map(str, _as_list(get(perm, "dataActions")))
                if AZURE_LOCK_BREAKING.search(a)]
    if t.endswith("iAMCustomRole:IAMCustomRole"):
        return [f"custom role grants {perm}, which can shorten a retention or delete a backup"
                for perm in map(str, _as_list(p.get("permissions")))
                if GCP_LOCK_BREAKING.match(perm)]
    docs = [parse_policy_document(p.get("policy"))]
    if t == "aws:iam/role:Role":
        docs = [parse_policy_document(get(i, "policy")) for i in _as_list(p.get("inlinePolicies"))]
    out = []
    for doc in docs:
        for st in _statements(doc or {}):
            if st.get("Effect") != "Allow":
                continue
            out += [f"statement {st.get('Sid', '?')} allows {a}, which can shorten or lift a "
                    "lock or delete a locked backup"
                    for a in map(str, _as_list(st.get("Action")))
                    if a.lower() in AWS_LOCK_BREAKING_ACTIONS]
    return out


# ---- stack checks --------------------------------------------------------------------------

StackCheck = Callable[[Sequence[Res], "Expectations | None"], list[Finding]]
S3 = "aws:s3/"


def _of(resources: Sequence[Res], *types: str) -> list[Res]:
    return [r for r in resources if r.type in types]


def _log_targets(resources: Sequence[Res]) -> set[str]:
    return {str(r.props.get("targetBucket"))
            for r in _of(resources, "aws:s3/bucketLogging:BucketLogging")}


def check_aws_s3_sse(resources: Sequence[Res], _c: Expectations | None) -> list[Finding]:
    """Backup buckets: SSE-KMS with a customer key and bucket keys. A bucket that only receives
    S3 server access logs may use SSE-S3: AWS log delivery cannot write SSE-KMS objects."""
    targets = _log_targets(resources)
    out = []
    for sse in _of(resources, f"{S3}bucketServerSideEncryptionConfiguration:"
                              "BucketServerSideEncryptionConfiguration"):
        rules = _as_list(sse.props.get("rules"))
        is_log_target = str(sse.props.get("bucket")) in targets
        if not rules:
            out.append(Finding("default encryption has no rules", sse.urn))
        for rule in rules:
            algo = get(rule, "applyServerSideEncryptionByDefault.sseAlgorithm")
            key = get(rule, "applyServerSideEncryptionByDefault.kmsMasterKeyId")
            if is_log_target and algo in ("AES256", "aws:kms", "aws:kms:dsse"):
                continue
            if algo not in ("aws:kms", "aws:kms:dsse"):
                out.append(Finding(f"default encryption is {algo!r}, not aws:kms with a "
                                   "customer-managed key", sse.urn))
            elif not key or str(key) == "alias/aws/s3":
                out.append(Finding("SSE-KMS uses the AWS-managed key (kmsMasterKeyId unset or "
                                   "alias/aws/s3), not a customer-managed key", sse.urn))
            if rule.get("bucketKeyEnabled") is not True and algo != "AES256":
                out.append(Finding("bucketKeyEnabled is off: every object costs a KMS call",
                                   sse.urn))
    return out


_S3_SETTINGS = {
    "versioning": f"{S3}bucketVersioning:BucketVersioning",
    "default encryption": f"{S3}bucketServerSideEncryptionConfiguration:"
                          "BucketServerSideEncryptionConfiguration",
    "public access block": f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock",
    "ownership controls": f"{S3}bucketOwnershipControls:BucketOwnershipControls",
    "TLS-only bucket policy": f"{S3}bucketPolicy:BucketPolicy",
    "lifecycle": f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration",
}
_S3_BACKUP_SETTINGS = {
    "object lock configuration": f"{S3}bucketObjectLockConfiguration:"
                                 "BucketObjectLockConfiguration",
    "access logging": f"{S3}bucketLogging:BucketLogging",
}


def check_aws_s3_controls_complete(resources: Sequence[Res],
                                   _c: Expectations | None) -> list[Finding]:
    targets = _log_targets(resources)
    out = []
    for bucket in _of(resources, f"{S3}bucket:Bucket"):
        is_backup = str(bucket.props.get("bucket")) not in targets
        needed = {**_S3_SETTINGS, **(_S3_BACKUP_SETTINGS if is_backup else {})}
        for what, type_ in needed.items():
            if not any(_linked(s, bucket) for s in _of(resources, type_)):
                out.append(Finding(f"bucket {bucket.name} has no {what} ({type_})", bucket.urn))
        if is_backup and bucket.props.get("objectLockEnabled") is not True:
            out.append(Finding(f"backup bucket {bucket.name} is created without object lock "
                               "(objectLockEnabled): it cannot be turned on later", bucket.urn))
    return out


AZ = "azure-native:storage:"
# The program's dynamic resource that locks a container immutability policy during `pulumi up`
# (infra/azure/immutability_lock.py; a test keeps the two names equal).
AZURE_IMMUTABILITY_LOCK_TYPE = "pulumi-python:dynamic/vo2dr:AzureImmutabilityPolicyLock"


def check_azure_storage_controls_complete(resources: Sequence[Res],
                                          c: Expectations | None) -> list[Finding]:
    out = []
    for account in _of(resources, f"{AZ}StorageAccount"):
        def mine(r: Res, account: Res = account) -> bool:
            return account.urn in r.dependencies or (
                r.props.get("accountName") not in (None, "")
                and r.props.get("accountName") == account.props.get("accountName"))
        for what, type_ in (("blob service properties (versioning, soft delete)",
                             f"{AZ}BlobServiceProperties"),
                            ("lifecycle management policy", f"{AZ}ManagementPolicy"),
                            ("blob container", f"{AZ}BlobContainer")):
            if not any(mine(r) for r in _of(resources, type_)):
                out.append(Finding(f"storage account {account.name} has no {what}", account.urn))
        account_policy = get(account.props, "immutableStorageWithVersioning.immutabilityPolicy")
        container_policies = [r for r in _of(resources, f"{AZ}BlobContainerImmutabilityPolicy")
                              if mine(r)]
        if account_policy is None and not container_policies:
            out.append(Finding(f"storage account {account.name} has no time-based "
                               "immutability policy on its backups", account.urn))
    return out


def _schedule_text(r: Res) -> str:
    parts = [r.name, str(r.props.get("name", "")), str(get(r.props, "target.input") or "")]
    body = get(r.props, "httpTarget.body")
    if isinstance(body, str):
        try:
            parts.append(base64.b64decode(body, validate=True).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            parts.append(body)
    return " ".join(parts).lower()


def _schedule_kind(r: Res) -> str:
    for kind in ("drill", "status", "backup"):
        if kind in r.name.lower():
            return kind
    text = _schedule_text(r)
    return next((k for k in ("drill", "status") if k in text), "backup")


def _schedules(resources: Sequence[Res]) -> list[tuple[Res, str, str]]:
    """(resource, kind, expression) of every EventBridge and Cloud Scheduler schedule."""
    out = []
    for r in _of(resources, "aws:scheduler/schedule:Schedule", "gcp:cloudscheduler/job:Job"):
        expr = r.props.get("scheduleExpression") or r.props.get("schedule") or ""
        out.append((r, _schedule_kind(r), str(expr)))
    return out


def check_schedule_rpo(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    if c is None:
        return [Finding("stack expectations are unavailable: cannot check schedules against "
                        "the RPOs")]
    backups = [(r, e) for r, kind, e in _schedules(resources)
               if kind == "backup" and r.type.startswith("aws:")]
    out = []
    for name, dc in sorted(c.data_classes.items()):
        mine = [(r, e) for r, e in backups if re.search(rf"\b{name}\b", _schedule_text(r))]
        if not mine:
            out.append(Finding(f"data class {name} (RPO {dc.rpo_minutes} min) has no backup "
                               "schedule"))
            continue
        ok = False
        for _r, expr in mine:
            if dc.daily_at_utc is not None:
                ok = ok or daily_time(expr) == dc.daily_at_utc
            else:
                gap = schedule_gap_minutes(expr)
                ok = ok or (gap is not None and gap <= dc.rpo_minutes)
        if not ok:
            want = (f"daily at {dc.daily_at_utc} UTC" if dc.daily_at_utc
                    else f"at least every {dc.rpo_minutes} min")
            out.append(Finding(f"data class {name} must be backed up {want}; its schedule "
                               f"{[e for _, e in mine]} does not meet the RPO", mine[0][0].urn))
    return out


def check_schedule_status(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    status = [(r, e) for r, kind, e in _schedules(resources) if kind == "status"]
    if not status:
        return [Finding("no scheduled status check: a missed backup would go unnoticed")]
    if c is None:
        return []
    gaps = [schedule_gap_minutes(e) for _, e in status]
    if not any(g is not None and g <= c.status_every_minutes for g in gaps):
        return [Finding(f"the status check runs {[e for _, e in status]}, less often than "
                        f"monitoring.statusEveryMinutes ({c.status_every_minutes})",
                        status[0][0].urn)]
    return []


def check_schedule_drill(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    drills = [(r, e) for r, kind, e in _schedules(resources) if kind == "drill"]
    if not drills:
        return [Finding("no scheduled restore drill: restores would go untested")]
    monthly = [(r, e) for r, e in drills if is_monthly(e)]
    if not monthly:
        return [Finding(f"the restore drill runs {[e for _, e in drills]}, which is not once a "
                        "month", drills[0][0].urn)]
    if c is not None and not any(e == c.drill_schedule for _, e in monthly):
        return [Finding(f"the drill schedule {[e for _, e in monthly]} differs from "
                        f"monitoring.drillSchedule ({c.drill_schedule})", monthly[0][0].urn)]
    return []


STORE_TYPES = {"aws": f"{S3}bucket:Bucket", "gcp": "gcp:storage/bucket:Bucket",
               "azure": f"{AZ}BlobContainer"}


def check_two_clouds(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    targets = _log_targets(resources)
    holding = sorted(cloud for cloud, type_ in STORE_TYPES.items()
                     if any(str(r.props.get("bucket")) not in targets
                            for r in _of(resources, type_)))
    out = []
    need = c.min_clouds if c is not None else 2
    if len(holding) < need:
        out.append(Finding(f"backups are stored in {holding or 'no cloud'} only: "
                           f"{'production' if c is None or c.production else 'this stack'} "
                           f"needs copies in at least {need} clouds"))
    for cloud in (c.enabled_clouds if c is not None else ()):
        if cloud not in holding:
            out.append(Finding(f"{cloud} is enabled in the stack but declares no backup store "
                               f"({STORE_TYPES[cloud]})"))
    return out


# ---- grants on the backup stores that could delete or overwrite backups --------------------

# S3 actions that delete or overwrite backups, or switch off what keeps them (versioning,
# Object Lock, lifecycle, the bucket policy). PutObject is not here: on a versioned,
# Object Lock bucket a second PutObject adds a version and the locked one stays.
AWS_DESTRUCTIVE_S3_ACTIONS = (
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket", "s3:DeleteBucketPolicy",
    "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration", "s3:BypassGovernanceRetention", "s3:ReplicateDelete",
)
AWS_POLICY_HOLDERS = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy",
                      "aws:iam/role:Role", f"{S3}bucketPolicy:BucketPolicy")


def _backup_bucket_arns(resources: Sequence[Res]) -> list[str]:
    targets = _log_targets(resources)
    return [f"arn:aws:s3:::{r.props.get('bucket')}" for r in _of(resources, f"{S3}bucket:Bucket")
            if r.props.get("bucket") and str(r.props.get("bucket")) not in targets]


def _policy_documents(r: Res) -> list[Mapping[str, Any]]:
    if r.type == "aws:iam/role:Role":
        docs = [parse_policy_document(get(i, "policy")) for i in
                _as_list(r.props.get("inlinePolicies"))]
    else:
        docs = [parse_policy_document(r.props.get("policy"))]
    return [d for d in docs if d is not None]


def check_aws_backup_grants(resources: Sequence[Res], _c: Expectations | None) -> list[Finding]:
    """No IAM, role or bucket policy allows deleting or overwriting backups in a backup bucket
    (the buckets that are not only access-log targets)."""
    buckets = _backup_bucket_arns(resources)
    out = []
    for r in _of(resources, *AWS_POLICY_HOLDERS):
        for doc in _policy_documents(r):
            for st in _statements(doc):
                if st.get("Effect") != "Allow":
                    continue
                patterns = [str(x) for x in _as_list(st.get("Resource"))]
                # A pattern reaches the bucket when its bucket part (before the first "/")
                # matches: "*", "arn:aws:s3:::*", "arn:aws:s3:::<bucket>/database/*".
                hit = [b for b in buckets for pat in patterns
                       if fnmatch.fnmatchcase(b, pat.split("/", 1)[0])]
                if not hit:
                    continue
                actions = [str(a).lower() for a in _as_list(st.get("Action"))]
                bad = [d for d in AWS_DESTRUCTIVE_S3_ACTIONS
                       if any(fnmatch.fnmatchcase(d.lower(), a) for a in actions)]
                if bad or "NotAction" in st:
                    what = bad or ["everything but " + str(st.get("NotAction"))]
                    out.append(Finding(f"{r.name} statement {st.get('Sid', '?')} allows "
                                       f"{', '.join(what)} on backup bucket {hit[0]}", r.urn))
    return out


AZURE_ROLE_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"
# Built-in roles that may be assigned on a backup storage account or container: Storage Blob
# Data Reader (read and list only). Any other built-in role there is refused (fail safe).
AZURE_STORE_SAFE_BUILTIN_ROLES = {
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader"}
# Custom-role operations that delete backups or weaken what keeps them (immutability, soft
# delete, versioning, lifecycle), or hand out keys. "blobs/write" (which can overwrite) is
# allowed only on a container whose time-based immutability policy refuses overwriting.
AZURE_DESTRUCTIVE_OPERATION = re.compile(
    r"(\*|/delete$|/deleteBlobVersion/action$|/permanentDelete/action$"
    r"|immutabilityPolicies/(write|delete)$"
    r"|/blobServices/write$|/managementPolicies/write$|/storageAccounts/write$"
    r"|/listKeys/action$|/regeneratekey/action$|/containers/write$|/setImmutabilityPolicy/action"
    r"|/setLegalHold/action|/clearLegalHold/action)", re.I)
AZURE_OVERWRITE_OPERATION = re.compile(r"/containers/blobs/write$", re.I)


def _azure_store_ids(resources: Sequence[Res]) -> list[tuple[Res, str]]:
    return [(r, str(r.props.get("id") or "")) for r in
            _of(resources, f"{AZ}StorageAccount", f"{AZ}BlobContainer")]


def _covers(scope: str, assignment: Res, store: Res, store_id: str) -> bool:
    """Does a role assignment at ``scope`` reach ``store`` (the store itself, or a parent
    scope: its resource group, subscription or management group)?"""
    if store.urn in assignment.dependencies:
        return True
    scope = scope.rstrip("/").lower()
    sid = store_id.lower()
    return bool(scope) and bool(sid) and (sid == scope or sid.startswith(scope + "/"))


def check_azure_backup_grants(resources: Sequence[Res],
                              _c: Expectations | None) -> list[Finding]:
    """Every role assignment that reaches a backup storage account or container grants only
    reading, or a custom role that can neither delete nor (outside WORM) overwrite."""
    stores = _azure_store_ids(resources)
    definitions = _of(resources, "azure-native:authorization:RoleDefinition")
    worm = _of(resources, f"{AZ}BlobContainerImmutabilityPolicy")
    out = []
    for a in _of(resources, "azure-native:authorization:RoleAssignment"):
        scope = str(a.props.get("scope") or "")
        reached = [s for s, sid in stores if _covers(scope, a, s, sid)]
        if not reached:
            continue
        role_id = str(a.props.get("roleDefinitionId") or "")
        guid = role_id.rsplit("/", 1)[-1].lower()
        custom = [d for d in definitions
                  if d.urn in a.dependencies or (role_id and role_id == str(d.props.get("id")))]
        if not custom:
            if guid not in AZURE_STORE_SAFE_BUILTIN_ROLES:
                name = AZURE_PRIVILEGED_ROLES.get(guid) or AZURE_DATA_WRITE_ROLES.get(guid) \
                    or guid
                out.append(Finding(f"{a.name} assigns role {name} on backup store "
                                   f"{reached[0].name}: only Storage Blob Data Reader or a "
                                   "vetted custom role may be assigned there", a.urn))
            continue
        ops = [str(op) for d in custom for perm in _as_list(d.props.get("permissions"))
               for key in ("actions", "dataActions") for op in _as_list(get(perm, key))]
        bad = [op for op in ops if AZURE_DESTRUCTIVE_OPERATION.search(op)]
        if bad:
            out.append(Finding(f"{a.name} assigns a role that allows {', '.join(bad)} on backup "
                               f"store {reached[0].name}", a.urn))
        overwrite = [op for op in ops if AZURE_OVERWRITE_OPERATION.search(op)]
        protected = all(any(_account_of(w, [s]) or s.urn in w.dependencies for w in worm)
                        for s in reached)
        if overwrite and not protected:
            out.append(Finding(f"{a.name} allows overwriting blobs ({overwrite[0]}) on "
                               f"{reached[0].name}, which has no time-based immutability "
                               "policy to refuse it", a.urn))
    return out


# ---- the rules -----------------------------------------------------------------------------

LIFECYCLE_TYPES = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                   "gcp:storage/bucket:Bucket", f"{AZ}ManagementPolicy")
GCP_IAM_TYPES = tuple(
    f"gcp:{t}" for t in (
        "projects/iAMMember:IAMMember", "projects/iAMBinding:IAMBinding",
        "storage/bucketIAMMember:BucketIAMMember", "storage/bucketIAMBinding:BucketIAMBinding",
        "kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
        "kms/keyRingIAMMember:KeyRingIAMMember", "kms/keyRingIAMBinding:KeyRingIAMBinding",
        "serviceaccount/iAMMember:IAMMember", "serviceaccount/iAMBinding:IAMBinding",
        "secretmanager/secretIamMember:SecretIamMember",
        "secretmanager/secretIamBinding:SecretIamBinding",
        "cloudrunv2/jobIamMember:JobIamMember", "cloudrunv2/jobIamBinding:JobIamBinding",
        "artifactregistry/repositoryIamMember:RepositoryIamMember",
        "artifactregistry/repositoryIamBinding:RepositoryIamBinding",
    ))


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

RULES: tuple[Rule, ...] = (
    # --- AWS: keys and encryption
    _r("aws-kms-key-rotation-enabled",
       "KMS customer-managed keys are symmetric and rotate automatically at least yearly.",
       "high", ["SC-12", "SC-28"],
       ["CIS AWS Foundations 3.0.0 3.6", "CIS Controls v8 3.11"],
       "Set enable_key_rotation=True (and key_spec SYMMETRIC_DEFAULT) on the aws.kms.Key; "
       "rotation keeps old key material so existing backups stay readable.",
       f"{AWS_DOCS}/kms/latest/developerguide/rotate-keys.html",
       ["aws:kms/key:Key"], check_aws_kms_key_rotation),
    _r("aws-s3-bucket-sse-kms-cmk",
       "Backup buckets encrypt by default with SSE-KMS under the customer-managed key, with "
       "S3 Bucket Keys; only a server-access-log target may use SSE-S3.",
       "high", ["SC-28", "SC-12", "SC-13"], ["CIS Controls v8 3.11"],
       "Give the bucket an aws.s3.BucketServerSideEncryptionConfiguration rule with "
       "sse_algorithm='aws:kms', kms_master_key_id=<the backup key ARN> and "
       "bucket_key_enabled=True.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/UsingKMSEncryption.html",
       [f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{S3}bucketLogging:BucketLogging"], check_aws_s3_sse, scope="stack"),
    _r("aws-sqs-queue-encrypted-cmk",
       "SQS dead-letter queues are encrypted with the customer-managed KMS key.",
       "medium", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set kms_master_key_id=<backup key ARN> on the aws.sqs.Queue (not alias/aws/sqs).",
       f"{AWS_DOCS}/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html",
       ["aws:sqs/queue:Queue"], _cmk_check("kmsMasterKeyId", "alias/aws/sqs", "queue")),
    _r("aws-sns-topic-encrypted-cmk",
       "The alert SNS topic is encrypted with the customer-managed KMS key.",
       "medium", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set kms_master_key_id=<backup key ARN> on the aws.sns.Topic (not alias/aws/sns).",
       f"{AWS_DOCS}/sns/latest/dg/sns-server-side-encryption.html",
       ["aws:sns/topic:Topic"], _cmk_check("kmsMasterKeyId", "alias/aws/sns", "topic")),
    _r("aws-secretsmanager-secret-encrypted-cmk",
       "Secrets (the database URL) are encrypted with the customer-managed KMS key.",
       "medium", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set kms_key_id=<backup key ARN> on the aws.secretsmanager.Secret.",
       f"{AWS_DOCS}/secretsmanager/latest/userguide/security-encryption.html",
       ["aws:secretsmanager/secret:Secret"],
       _cmk_check("kmsKeyId", "alias/aws/secretsmanager", "secret")),
    _r("aws-cloudwatch-loggroup-encrypted-cmk",
       "The job's CloudWatch log groups are encrypted with the customer-managed KMS key.",
       "low", ["SC-28", "AU-9"], ["CIS Controls v8 3.11"],
       "Set kms_key_id=<backup key ARN> on the aws.cloudwatch.LogGroup; the key policy must "
       "allow logs.<region>.amazonaws.com.",
       f"{AWS_DOCS}/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
       ["aws:cloudwatch/logGroup:LogGroup"], check_log_group_cmk),
    # --- AWS: public access and transport
    _r("aws-s3-bucket-public-access-blocked",
       "Every bucket blocks public ACLs and policies with all four public-access-block "
       "settings.",
       "critical", ["AC-3", "AC-6", "SC-7"],
       ["CIS AWS Foundations 3.0.0 2.1.4", "CIS Controls v8 3.3"],
       "Declare aws.s3.BucketPublicAccessBlock with block_public_acls, block_public_policy, "
       "ignore_public_acls and restrict_public_buckets all True.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/access-control-block-public-access.html",
       [f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock"],
       check_aws_s3_public_access_block),
    _r("aws-s3-bucket-acls-disabled",
       "Buckets enforce bucket-owner ownership, so ACLs are disabled and policy alone "
       "decides access.",
       "medium", ["AC-3", "AC-6"], ["CIS Controls v8 3.3"],
       "Declare aws.s3.BucketOwnershipControls with object_ownership='BucketOwnerEnforced'.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/about-object-ownership.html",
       [f"{S3}bucketOwnershipControls:BucketOwnershipControls"], check_aws_s3_acls_disabled),
    _r("aws-s3-bucket-tls-only",
       "Bucket policies deny every request that is not made over TLS.",
       "high", ["SC-8", "SC-13"],
       ["CIS AWS Foundations 3.0.0 2.1.1", "CIS Controls v8 3.10"],
       "Add a Deny statement for Principal '*', Action 's3:*' on the bucket and its objects "
       "with Condition Bool aws:SecureTransport = 'false'.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/security-best-practices.html",
       [f"{S3}bucketPolicy:BucketPolicy"], check_aws_s3_tls_only),
    _r("aws-s3-bucket-policy-not-public",
       "No bucket policy allows anonymous (Principal '*') access without a condition.",
       "critical", ["AC-3", "AC-6"], ["CIS AWS Foundations 3.0.0 2.1.4", "CIS Controls v8 3.3"],
       "Name the exact principals (role ARNs, service principals with aws:SourceAccount) in "
       "Allow statements.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/access-control-block-public-access.html",
       [f"{S3}bucketPolicy:BucketPolicy"], check_aws_s3_policy_not_public),
    # --- AWS: recoverability and retention
    _r("aws-s3-bucket-versioning-enabled",
       "Buckets keep every version, so an overwrite or delete can be undone.",
       "high", ["CP-9", "CP-10"], ["CIS Controls v8 11.3"],
       "Declare aws.s3.BucketVersioning with versioning_configuration.status='Enabled'.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/Versioning.html",
       [f"{S3}bucketVersioning:BucketVersioning"], check_aws_s3_versioning),
    _r("aws-s3-bucket-object-lock-compliance",
       "New backups are locked for immutability.lockDays; COMPLIANCE mode (no one can "
       "shorten it) in production, GOVERNANCE allowed in staging.",
       "critical", ["CP-9", "SI-12", "SC-28"], ["CIS Controls v8 11.3"],
       "Declare aws.s3.BucketObjectLockConfiguration with default_retention mode COMPLIANCE "
       "in production and days = vo2max-dr:immutability.lockDays.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock.html",
       [f"{S3}bucketObjectLockConfiguration:BucketObjectLockConfiguration"],
       check_aws_s3_object_lock, needs=True),
    _r("aws-s3-bucket-lifecycle-gfs",
       "The backup bucket's lifecycle has one rule per GFS tier prefix whose expiry and "
       "transitions equal the stack's retention and tiering.",
       "high", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4"],
       "Build the lifecycle from cfg.lifecycle (infra/config.py lifecycle_plan); never edit "
       "days in code. Change vo2max-dr:retention / vo2max-dr:tiering instead.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lifecycle-mgmt.html",
       [LIFECYCLE_TYPES[0]], check_lifecycle_gfs, needs=True),
    _r("aws-s3-bucket-lifecycle-min-duration",
       "No lifecycle rule moves or deletes an object before its storage class's minimum "
       "duration, or before its lock ends.",
       "medium", ["SI-12", "CP-9"], ["CIS Controls v8 3.4"],
       "Drop a transition whose class the object would leave (or expire from) before the "
       "class minimum (STANDARD_IA 30, GLACIER 90, DEEP_ARCHIVE 180 days).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html",
       [LIFECYCLE_TYPES[0]], check_lifecycle_min_duration),
    _r("aws-s3-bucket-controls-complete",
       "Every bucket has versioning, default encryption, a public access block, ownership "
       "controls, a TLS-only policy and a lifecycle; the backup bucket also has object lock "
       "(enabled at creation) and access logging.",
       "high", ["CP-9", "SC-28", "AC-3", "AU-11"], ["CIS AWS Foundations 3.0.0 2.1.4",
                                                     "CIS Controls v8 11.3"],
       "Declare the missing aws.s3.Bucket* resource for the bucket (see infra/aws/storage.py).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/security-best-practices.html",
       [f"{S3}bucket:Bucket", *_S3_SETTINGS.values(), *_S3_BACKUP_SETTINGS.values()],
       check_aws_s3_controls_complete, scope="stack"),
    _r("aws-cloudwatch-loggroup-retention-set",
       "Log groups keep the job's logs exactly monitoring.logRetentionDays, never forever.",
       "medium", ["AU-11", "SI-12"], ["CIS Controls v8 8.10"],
       "Set retention_in_days=cfg.monitoring.log_retention_days on the aws.cloudwatch.LogGroup.",
       f"{AWS_DOCS}/AmazonCloudWatch/latest/logs/Working-with-log-groups-and-streams.html",
       ["aws:cloudwatch/logGroup:LogGroup"], check_log_group_retention, needs=True),
    # --- AWS: identity
    _r("aws-iam-policy-no-wildcards",
       "IAM policies grant no wildcard action ('*' or 'service:*'), no Resource '*' (except "
       "for actions AWS cannot scope), no NotAction/NotResource, and no role trusts anyone.",
       "high", ["AC-6", "AC-3"], ["CIS AWS Foundations 3.0.0 1.16", "CIS Controls v8 6.8"],
       "List the exact actions and the bucket prefix / key ARN; KMS key policies (where "
       "'*' means this key) are not IAM policies and are not checked here.",
       f"{AWS_DOCS}/IAM/latest/UserGuide/best-practices.html#grant-least-privilege",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role"],
       check_aws_iam_no_wildcards),
    _r("aws-iam-role-no-admin-policies",
       "No role gets an administrator-class AWS-managed policy.",
       "high", ["AC-6"], ["CIS AWS Foundations 3.0.0 1.16", "CIS Controls v8 5.4"],
       "Replace the managed policy with an inline aws.iam.RolePolicy listing what the job "
       "needs.",
       f"{AWS_DOCS}/IAM/latest/UserGuide/access_policies_job-functions.html",
       ["aws:iam/role:Role", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"],
       check_aws_iam_no_admin_policies),
    _r("aws-lambda-function-no-plaintext-credentials",
       "Function environments hold no credential, password, account key or connection "
       "secret in clear: only references to Secrets Manager.",
       "high", ["IA-5", "SC-28", "AC-6"], ["CIS Controls v8 3.11", "CIS Controls v8 16.1"],
       "Store the value in aws.secretsmanager.Secret and pass its ARN "
       "(VO2DR_DATABASE_URL_SECRET); the job reads it at run time.",
       f"{AWS_DOCS}/lambda/latest/dg/configuration-envvars.html",
       ["aws:lambda/function:Function"], check_lambda_no_credentials),
    _r("aws-scheduler-schedule-retry-dlq",
       "Every schedule retries a failed invocation and sends what it cannot deliver to a "
       "dead-letter queue.",
       "medium", ["CP-9", "CP-10", "SI-4"], ["CIS Controls v8 11.2"],
       "Set target.retry_policy and target.dead_letter_config.arn on the "
       "aws.scheduler.Schedule.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/configuring-schedule-dlq.html",
       ["aws:scheduler/schedule:Schedule"], check_scheduler_retry_dlq),
    # --- GCP
    _r("gcp-kms-cryptokey-rotation-90d",
       "Cloud KMS keys rotate every 90 days or less.",
       "high", ["SC-12", "SC-28"], ["CIS GCP Foundations 3.0.0 1.10", "CIS Controls v8 3.11"],
       "Set rotation_period='7776000s' (90 days) or shorter on the gcp.kms.CryptoKey.",
       f"{GCP_DOCS}/kms/docs/key-rotation",
       ["gcp:kms/cryptoKey:CryptoKey"], check_gcp_kms_rotation),
    _r("gcp-storage-bucket-cmek",
       "GCS backup buckets encrypt by default with the Cloud KMS key (CMEK).",
       "high", ["SC-28", "SC-12"], ["CIS Controls v8 3.11"],
       "Set encryption.default_kms_key_name to the crypto key and grant the GCS service agent "
       "roles/cloudkms.cryptoKeyEncrypterDecrypter on that key only.",
       f"{GCP_DOCS}/storage/docs/encryption/customer-managed-keys",
       ["gcp:storage/bucket:Bucket"], check_gcs_cmek),
    _r("gcp-storage-bucket-public-access-prevented",
       "GCS buckets enforce public access prevention and uniform bucket-level access.",
       "critical", ["AC-3", "AC-6"], ["CIS GCP Foundations 3.0.0 5.1",
                                      "CIS GCP Foundations 3.0.0 5.2"],
       "Set public_access_prevention='enforced' and uniform_bucket_level_access=True.",
       f"{GCP_DOCS}/storage/docs/public-access-prevention",
       ["gcp:storage/bucket:Bucket"], check_gcs_public_access),
    _r("gcp-storage-bucket-versioning-soft-delete",
       "GCS buckets keep versions and soft-delete for at least immutability.softDeleteDays.",
       "high", ["CP-9", "CP-10"], ["CIS Controls v8 11.3"],
       "Set versioning.enabled=True and soft_delete_policy.retention_duration_seconds = "
       "softDeleteDays * 86400.",
       f"{GCP_DOCS}/storage/docs/soft-delete",
       ["gcp:storage/bucket:Bucket"], check_gcs_versioning_soft_delete, needs=True),
    _r("gcp-storage-bucket-retention-locked",
       "Every GCS backup object is retained for at least immutability.lockDays, Locked in "
       "production: with Object Retention Lock (which, unlike a bucket retention policy, "
       "allows versioning) the bucket enables it and every job configured with the bucket "
       "sets VO2DR_GCS_RETENTION_DAYS and VO2DR_GCS_RETENTION_MODE; with a bucket retention "
       "policy, the policy covers lockDays and is locked in production.",
       "critical", ["CP-9", "SI-12"], ["CIS GCP Foundations 3.0.0 2.3", "CIS Controls v8 11.3"],
       "Set enable_object_retention=True on the bucket and add "
       "cfg.immutability.gcs_retention_env() to every job's settings (infra/runtime.py), or "
       "declare retention_policy with retention_period = lockDays * 86400 and, in production, "
       "is_locked=True.",
       f"{GCP_DOCS}/storage/docs/object-lock",
       ["gcp:storage/bucket:Bucket", "aws:lambda/function:Function", "gcp:cloudrunv2/job:Job"],
       check_gcs_retention_locked, scope="stack", needs=True),
    _r("gcp-storage-bucket-lifecycle-gfs",
       "The GCS bucket's lifecycle deletes and re-classes each GFS tier prefix on the "
       "stack's retention and tiering days.",
       "high", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4"],
       "Build lifecycle_rules from cfg.lifecycle; change vo2max-dr:retention / tiering, not "
       "code.",
       f"{GCP_DOCS}/storage/docs/lifecycle",
       [LIFECYCLE_TYPES[1]], check_lifecycle_gfs, needs=True),
    _r("gcp-storage-bucket-lifecycle-min-duration",
       "No GCS lifecycle rule moves or deletes an object before its class minimum (NEARLINE "
       "30, COLDLINE 90, ARCHIVE 365 days) or its lock.",
       "medium", ["SI-12", "CP-9"], ["CIS Controls v8 3.4"],
       "Drop the SetStorageClass action whose class the object would leave too early.",
       f"{GCP_DOCS}/storage/docs/storage-classes",
       [LIFECYCLE_TYPES[1]], check_lifecycle_min_duration),
    _r("gcp-iam-binding-no-primitive-roles",
       "No GCP grant uses the basic owner, editor or viewer roles, or a project-wide admin "
       "role.",
       "high", ["AC-6", "AC-3"], ["CIS GCP Foundations 3.0.0 1.5", "CIS Controls v8 5.4"],
       "Grant a predefined or custom role on the bucket, key or secret itself (e.g. "
       "roles/storage.objectCreator on the bucket).",
       f"{GCP_DOCS}/iam/docs/understanding-roles#basic",
       GCP_IAM_TYPES, check_gcp_iam_no_primitive_roles),
    _r("gcp-iam-customrole-no-destructive-permissions",
       "No GCP custom role can delete or overwrite objects, shorten a retention, or change a "
       "bucket or its IAM policy.",
       "high", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Keep custom roles to what the job does: storage.objects.create and "
       "storage.objects.setRetention (infra/gcp/access.py CREATOR_PERMISSIONS).",
       f"{GCP_DOCS}/iam/docs/creating-custom-roles",
       ["gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:organizations/iAMCustomRole:IAMCustomRole"], check_gcp_custom_role),
    _r("gcp-storage-bucketiammember-no-destructive-roles",
       "No grant on the GCS backup bucket (or project-wide) can delete or overwrite backups: "
       "no storage.admin, objectAdmin, objectUser, legacyBucketOwner/Writer, "
       "legacyObjectOwner or basic role; on the bucket only viewer/creator roles.",
       "critical", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Grant roles/storage.objectViewer to readers and the creator custom role "
       "(storage.objects.create + setRetention, infra/gcp/access.py) to writers.",
       f"{GCP_DOCS}/storage/docs/access-control/iam-roles",
       (*GCS_BUCKET_IAM_TYPES, *GCP_PROJECT_IAM_TYPES), check_gcs_grants_no_destructive_roles),
    _r("gcp-iam-binding-no-public-members",
       "No GCP grant names allUsers or allAuthenticatedUsers.",
       "critical", ["AC-3"], ["CIS GCP Foundations 3.0.0 5.1", "CIS Controls v8 3.3"],
       "Name the service account (serviceAccount:...) that needs the role.",
       f"{GCP_DOCS}/storage/docs/access-control/making-data-public",
       GCP_IAM_TYPES, check_gcp_iam_no_public_members),
    _r("gcp-serviceaccount-key-forbidden",
       "No service-account key or HMAC key is declared: the job authenticates with workload "
       "identity federation only.",
       "critical", ["IA-5", "AC-6"], ["CIS GCP Foundations 3.0.0 1.4", "CIS Controls v8 5.2"],
       "Remove the gcp.serviceaccount.Key / gcp.storage.HmacKey; let the AWS role impersonate "
       "the service account through the workload identity pool.",
       f"{GCP_DOCS}/iam/docs/workload-identity-federation",
       ["gcp:serviceaccount/key:Key", "gcp:storage/hmacKey:HmacKey"], check_gcp_no_sa_keys),
    _r("gcp-iam-workloadidentitypoolprovider-condition-set",
       "The workload identity provider admits only the named AWS roles (attributeCondition).",
       "high", ["AC-3", "AC-6", "IA-5"], ["CIS Controls v8 6.8"],
       "Set attribute_condition to match the job roles' session ARNs "
       "(attribute.aws_role in ['arn:aws:sts::<account>:assumed-role/<role>', ...]).",
       f"{GCP_DOCS}/iam/docs/workload-identity-federation-with-other-clouds",
       ["gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"],
       check_gcp_wif_condition),
    _r("gcp-cloudrunv2-job-no-plaintext-credentials",
       "The Cloud Run standby job runs as its own service account and reads secrets from "
       "Secret Manager, never from plain environment values.",
       "high", ["IA-5", "SC-28", "AC-6"], ["CIS Controls v8 3.11", "CIS Controls v8 16.1"],
       "Use envs[].value_source.secret_key_ref and set template.template.service_account.",
       f"{GCP_DOCS}/run/docs/configuring/jobs/secrets",
       ["gcp:cloudrunv2/job:Job"], check_cloudrun_no_credentials),
    # --- Azure
    _r("azure-keyvault-key-rotation-enabled",
       "Key Vault keys have a rotation policy that rotates them within a year.",
       "high", ["SC-12", "SC-28"], ["CIS Azure Foundations 2.1.0 8.8", "CIS Controls v8 3.11"],
       "Set properties.rotation_policy.lifetime_actions with action type 'rotate' and "
       "trigger.time_after_create (e.g. 'P90D').",
       f"{AZ_DOCS}/key-vault/keys/how-to-configure-key-rotation",
       ["azure-native:keyvault:Key"], check_azure_key_rotation),
    _r("azure-keyvault-vault-purge-protection",
       "The Key Vault holding the storage key has purge protection and soft delete.",
       "high", ["CP-9", "SC-12"], ["CIS Azure Foundations 2.1.0 8.5"],
       "Set properties.enable_purge_protection=True and enable_soft_delete=True.",
       f"{AZ_DOCS}/key-vault/general/soft-delete-overview",
       ["azure-native:keyvault:Vault"], check_azure_vault_recoverable),
    _r("azure-storage-account-cmk",
       "Storage accounts encrypt with the Key Vault key (customer-managed) plus "
       "infrastructure encryption.",
       "high", ["SC-28", "SC-12"], ["CIS Azure Foundations 2.1.0 3.12",
                                    "CIS Azure Foundations 2.1.0 3.2"],
       "Set encryption.key_source='Microsoft.Keyvault' with key_vault_properties and "
       "encryption_identity, and require_infrastructure_encryption=True.",
       f"{AZ_DOCS}/storage/common/customer-managed-keys-overview",
       [f"{AZ}StorageAccount"], check_azure_storage_cmk),
    _r("azure-storage-account-tls-only",
       "Storage accounts accept HTTPS only, with TLS 1.2 or later.",
       "high", ["SC-8", "SC-13"], ["CIS Azure Foundations 2.1.0 3.1",
                                   "CIS Azure Foundations 2.1.0 3.15"],
       "Set enable_https_traffic_only=True and minimum_tls_version='TLS1_2'.",
       f"{AZ_DOCS}/storage/common/transport-layer-security-configure-minimum-version",
       [f"{AZ}StorageAccount"], check_azure_storage_tls),
    _r("azure-storage-account-public-access-disabled",
       "Storage accounts forbid anonymous blob access and containers are private.",
       "critical", ["AC-3", "AC-6"], ["CIS Azure Foundations 2.1.0 3.7", "CIS Controls v8 3.3"],
       "Set allow_blob_public_access=False on the account and public_access='None' on each "
       "container.",
       f"{AZ_DOCS}/storage/blobs/anonymous-read-access-prevent",
       [f"{AZ}StorageAccount", f"{AZ}BlobContainer"], check_azure_storage_public),
    _r("azure-storage-account-shared-key-disabled",
       "Storage accounts refuse shared-key (account key and SAS) access: the job uses Entra "
       "ID.",
       "high", ["IA-5", "AC-6"], ["CIS Azure Foundations 2.1.0 3.3", "CIS Controls v8 5.2"],
       "Set allow_shared_key_access=False and authenticate with a managed or federated "
       "identity.",
       f"{AZ_DOCS}/storage/common/shared-key-authorization-prevent",
       [f"{AZ}StorageAccount"], check_azure_storage_shared_key),
    _r("azure-storage-blobservice-versioning-soft-delete",
       "Blob services keep versions and soft-delete blobs and containers for at least "
       "immutability.softDeleteDays.",
       "high", ["CP-9", "CP-10"], ["CIS Azure Foundations 2.1.0 3.11", "CIS Controls v8 11.3"],
       "Set is_versioning_enabled=True, delete_retention_policy and "
       "container_delete_retention_policy enabled with days = softDeleteDays.",
       f"{AZ_DOCS}/storage/blobs/soft-delete-blob-overview",
       [f"{AZ}BlobServiceProperties"], check_azure_blob_soft_delete, needs=True),
    _r("azure-storage-container-immutability-set",
       "Backups are under a time-based immutability policy of at least "
       "immutability.lockDays that allows no appends to protected blobs.",
       "critical", ["CP-9", "SI-12", "SC-28"], ["CIS Controls v8 11.3"],
       "Declare azure-native storage.BlobContainerImmutabilityPolicy with "
       "immutability_period_since_creation_in_days = lockDays and protected appends off.",
       f"{AZ_DOCS}/storage/blobs/immutable-time-based-retention-policy-overview",
       [f"{AZ}BlobContainerImmutabilityPolicy", f"{AZ}StorageAccount"],
       check_azure_immutability, needs=True),
    _r("azure-storage-account-delete-lock-production",
       "In production each storage account carries a CanNotDelete management lock, which "
       "guards the backups from the first deploy until the immutability policy is locked.",
       "high", ["CP-9", "AC-3"], ["CIS Controls v8 11.3"],
       "Declare azure-native authorization.ManagementLockByScope(level='CanNotDelete', "
       "scope=<account id>) when the stack is production.",
       f"{AZ_DOCS}/azure-resource-manager/management/lock-resources",
       [f"{AZ}StorageAccount", "azure-native:authorization:ManagementLockByScope"],
       check_azure_delete_lock, scope="stack", needs=True),
    _r("azure-storage-container-immutability-locked",
       "In production each container immutability policy is Locked (irreversible): Azure "
       "creates every policy unlocked, so the program declares an ImmutabilityPolicyLock that "
       "locks it during `pulumi up`; a policy passes when its state is Locked or such a lock "
       "depends on it.",
       "critical", ["CP-9", "SI-12"], ["CIS Controls v8 11.3"],
       "Declare infra.azure.immutability_lock.ImmutabilityPolicyLock(policy_id=<policy id>, "
       "lock_days=lockDays) with depends_on=[the policy] when the stack is production.",
       f"{AZ_DOCS}/storage/blobs/immutable-policy-configure-container-scope",
       [f"{AZ}BlobContainerImmutabilityPolicy", f"{AZ}StorageAccount",
        AZURE_IMMUTABILITY_LOCK_TYPE],
       check_azure_immutability_locked, scope="stack", needs=True),
    _r("azure-storage-managementpolicy-lifecycle-gfs",
       "The Azure management policy tiers and deletes each GFS tier prefix on the stack's "
       "retention and tiering days.",
       "high", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4"],
       "Build the management policy rules from cfg.lifecycle.",
       f"{AZ_DOCS}/storage/blobs/lifecycle-management-overview",
       [LIFECYCLE_TYPES[2]], check_lifecycle_gfs, needs=True),
    _r("azure-storage-managementpolicy-min-duration",
       "No Azure management rule moves or deletes a blob before its tier minimum (Cool 30, "
       "Cold 90, Archive 180 days) or its lock.",
       "medium", ["SI-12", "CP-9"], ["CIS Controls v8 3.4"],
       "Drop the tierTo* action whose tier the blob would leave too early.",
       f"{AZ_DOCS}/storage/blobs/access-tiers-overview",
       [LIFECYCLE_TYPES[2]], check_lifecycle_min_duration),
    _r("azure-storage-account-controls-complete",
       "Each storage account has blob service properties, a management policy, a container "
       "and a time-based immutability policy.",
       "high", ["CP-9", "SI-12"], ["CIS Controls v8 11.3"],
       "Declare the missing azure-native storage resource for the account (see infra/azure/).",
       f"{AZ_DOCS}/storage/blobs/data-protection-overview",
       [f"{AZ}StorageAccount", f"{AZ}BlobServiceProperties", f"{AZ}ManagementPolicy",
        f"{AZ}BlobContainer", f"{AZ}BlobContainerImmutabilityPolicy"],
       check_azure_storage_controls_complete, scope="stack"),
    _r("azure-authorization-roleassignment-no-privileged-roles",
       "No role assignment grants Owner, Contributor, User Access Administrator, account-key "
       "roles or Blob Data Owner, or any role at subscription scope.",
       "high", ["AC-6", "AC-3"], ["CIS Azure Foundations 2.1.0 1.23", "CIS Controls v8 5.4"],
       "Assign a narrow (custom) role scoped to the container.",
       f"{AZ_DOCS}/role-based-access-control/best-practices",
       ["azure-native:authorization:RoleAssignment"], check_azure_role_assignment),
    _r("azure-authorization-roledefinition-no-wildcards",
       "Custom role definitions list exact actions and data actions, no wildcards.",
       "high", ["AC-6"], ["CIS Azure Foundations 2.1.0 1.23", "CIS Controls v8 6.8"],
       "Replace 'Microsoft.Storage/*' style entries with the exact operations "
       "(e.g. .../containers/blobs/write).",
       f"{AZ_DOCS}/role-based-access-control/custom-roles",
       ["azure-native:authorization:RoleDefinition"], check_azure_role_definition),
    _r("aws-s3-bucket-grants-no-delete",
       "No IAM, role or bucket policy allows deleting or overwriting backups in a backup "
       "bucket, or switching off its versioning, Object Lock, lifecycle or policy.",
       "critical", ["AC-6", "CP-9"], ["CIS Controls v8 5.4", "CIS Controls v8 11.3"],
       "Grant writers s3:PutObject on their prefix only; remove s3:Delete*, "
       "s3:BypassGovernanceRetention and bucket-configuration actions from every Allow.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock.html",
       [*AWS_POLICY_HOLDERS, f"{S3}bucket:Bucket"], check_aws_backup_grants, scope="stack"),
    _r("azure-authorization-roleassignment-no-delete-on-stores",
       "Every role assignment reaching a backup storage account or container only reads, or "
       "is a custom role that can neither delete nor, outside WORM, overwrite blobs.",
       "critical", ["AC-6", "CP-9"], ["CIS Azure Foundations 2.1.0 1.23", "CIS Controls v8 11.3"],
       "Assign Storage Blob Data Reader, or the writer custom role (blobs/write, add/action, "
       "read; no delete) on a container with a time-based immutability policy.",
       f"{AZ_DOCS}/storage/blobs/immutable-storage-overview",
       ["azure-native:authorization:RoleAssignment", "azure-native:authorization:RoleDefinition",
        f"{AZ}StorageAccount", f"{AZ}BlobContainer", f"{AZ}BlobContainerImmutabilityPolicy"],
       check_azure_backup_grants, scope="stack"),
    # --- stack-wide
    _r("multicloud-storage-lifecycle-retention-floor",
       "No cloud deletes a GFS tier before the organisation's retention floor (default 30 "
       "days, 12 weeks, 12 months, 7 years), whatever the stack file says.",
       "critical", ["CP-9", "AU-11", "SI-12"], ["CIS Controls v8 3.4", "CIS Controls v8 11.2"],
       "Raise vo2max-dr:retention back to at least the floor (or change the floor through "
       "policy config minimumRetentionDays with the compliance owner's approval).",
       f"{AWS_DOCS}/prescriptive-guidance/latest/backup-recovery/backup-recovery.html",
       LIFECYCLE_TYPES, check_retention_floor,
       config={"minimumRetentionDays": {"type": "object",
                                        "description": "days per GFS tier"}}),
    _r("aws-scheduler-schedule-rpo-met",
       "Every data class has a backup schedule whose interval meets its RPO (a daily class "
       "runs at its dailyAtUtc).",
       "critical", ["CP-9", "CP-10"], ["CIS Controls v8 11.2"],
       "Derive the schedule from the data class (infra.runtime.eventbridge_cron); change "
       "vo2max-dr:dataClasses.<class>.rpoMinutes, not code.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/schedule-types.html",
       ["aws:scheduler/schedule:Schedule"], check_schedule_rpo, scope="stack", needs=True),
    _r("aws-scheduler-schedule-status-check-present",
       "A status check runs at least every monitoring.statusEveryMinutes.",
       "high", ["CP-9", "SI-4"], ["CIS Controls v8 11.2"],
       "Declare the status schedule from cfg.monitoring.status_every_minutes.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/schedule-types.html",
       ["aws:scheduler/schedule:Schedule", "gcp:cloudscheduler/job:Job"],
       check_schedule_status, scope="stack", needs=True),
    _r("aws-scheduler-schedule-drill-monthly",
       "A restore drill runs once a month, on monitoring.drillSchedule.",
       "high", ["CP-4", "CP-10"], ["CIS Controls v8 11.5"],
       "Declare the drill schedule as cron(0 9 ? * MON#1 *) (first Monday), from "
       "cfg.monitoring.drill_schedule.",
       f"{AWS_DOCS}/scheduler/latest/UserGuide/schedule-types.html#cron-based",
       ["aws:scheduler/schedule:Schedule", "gcp:cloudscheduler/job:Job"],
       check_schedule_drill, scope="stack", needs=True),
    _r("multicloud-storage-backups-min-two-clouds",
       "Production keeps backup copies in at least two clouds, and every cloud the stack "
       "enables declares its store.",
       "critical", ["CP-9", "CP-6", "CP-10"], ["CIS Controls v8 11.4"],
       "Enable gcp and/or azure in vo2max-dr:clouds and wire their store in infra/program.py.",
       f"{AWS_DOCS}/whitepapers/latest/disaster-recovery-workloads-on-aws/"
       "disaster-recovery-options-in-the-cloud.html",
       list(STORE_TYPES.values()), check_two_clouds, scope="stack", needs=True),
)

RULES += (
    # --- the intraday tier (kept together)
    _r("multicloud-storage-intraday-lifecycle-expiry",
       "Each cloud expires the intraday prefix when retention.intradayHours ends and never "
       "moves intraday objects to a colder class (on Azure, in the intraday container).",
       "high", ["CP-9", "SI-12"], ["CIS Controls v8 3.4"],
       "Build the lifecycle rules from cfg.lifecycle, whose intraday entry expires at the "
       "window and has no transitions (infra/config.py lifecycle_plan).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html",
       LIFECYCLE_TYPES, check_intraday_expiry, needs=True),
    _r("multicloud-storage-intraday-lock-window",
       "Intraday objects are locked until their window ends in every cloud: S3 and GCS by "
       "their own retain-until time (every job's VO2DR_STRATEGY carries the window, compliance "
       "in production, and the S3 writer may send it), Azure by the intraday container's "
       "immutability policy.",
       "critical", ["CP-9", "SI-12", "SC-28"], ["CIS Controls v8 11.3"],
       "Keep retention.intradayHours in whole days; pass cfg.strategy.to_json() to every job; "
       "grant the S3 writer s3:PutObjectRetention; declare the '<container>-intraday' policy "
       "with immutability_period_since_creation_in_days = the window (infra/azure/storage.py).",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock-overview.html",
       [f"{AZ}BlobContainerImmutabilityPolicy", "aws:lambda/function:Function",
        "gcp:cloudrunv2/job:Job", "aws:iam/rolePolicy:RolePolicy"],
       check_intraday_lock, scope="stack", needs=True),
    _r("multicloud-iam-no-lock-shortening",
       "No identity can shorten or lift a lock or delete a locked backup: no S3 governance "
       "bypass, object-lock configuration change or object delete; no Azure blob "
       "immutability, delete or version-delete action; no GCS retention override or object "
       "delete. Setting a lock when an object is created stays allowed.",
       "critical", ["AC-6", "CP-9", "SI-12"], ["CIS Controls v8 11.3", "CIS Controls v8 6.8"],
       "Remove the action from the policy or role; the S3 writer needs only s3:PutObject, "
       "s3:PutObjectRetention and s3:AbortMultipartUpload; the Azure writer only blob write, "
       "add and read.",
       f"{AWS_DOCS}/AmazonS3/latest/userguide/object-lock-managing.html",
       ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role",
        "aws:s3/bucketPolicy:BucketPolicy", "azure-native:authorization:RoleDefinition",
        "gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:organizations/iAMCustomRole:IAMCustomRole"],
       check_no_lock_shortening),
)

RULES_BY_NAME = {r.name: r for r in RULES}
assert len(RULES_BY_NAME) == len(RULES), "rule names must be unique"


# ---- enforcement ---------------------------------------------------------------------------


def enforcement_for(environment: str | None) -> EnforcementLevel:
    """Mandatory in production (and when the stack is unknown: fail safe), advisory in staging."""
    return EnforcementLevel.ADVISORY if environment == "staging" else EnforcementLevel.MANDATORY


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


# ---- evaluation without the engine ---------------------------------------------------------


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
            kwargs = {"floor": (options or {}).get("minimumRetentionDays")} \
                if rule.check is check_retention_floor else {}
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


# ---- the pulumi_policy objects -------------------------------------------------------------

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

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=EnforcementLevel(rule.enforcement) if rule.enforcement else None,
        config_schema=_schema(rule), severity=Severity(rule.severity),
        framework=_framework(rule), tags=[rule.cloud, *rule.nist],
        remediation_steps=rule.remediation, url=rule.url)


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

    return StackValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=EnforcementLevel(rule.enforcement) if rule.enforcement else None,
        config_schema=_schema(rule), severity=Severity(rule.severity),
        framework=_framework(rule), tags=[rule.cloud, *rule.nist],
        remediation_steps=rule.remediation, url=rule.url)


POLICIES = [(_stack_policy if r.scope == "stack" else _resource_policy)(r) for r in RULES]
