"""The report records (issue 18): drill results and failed backup attempts, written once under
``reports/<env>/`` in every store (``drills/`` by the drill, ``attempts/`` by the backup).

- :func:`check_reports_retention`: every backup store's lifecycle keeps them at least as long
  as the yearly tier (no rule reaching them expires them sooner, and one rule does expire
  them, so they do not pile up forever), in a class ``vo2dr report`` can read without a
  restore (not S3 Glacier or Deep Archive, not Azure Archive);
- :func:`check_aws_report_puts_write_once`: an S3 grant to put under ``reports/``, in a
  snapshot source's content pool (``<root>content/``, issue 17), or in any source's tiers
  (backup bodies, manifests, snapshot indexes: new by construction, never a pointer) holds
  only with ``If-None-Match: *`` (``s3:if-none-match``), so no record, content object or
  backup is ever replaced (a grant limited to the parts of a multipart upload, which create
  nothing, passes);
- :func:`check_report_grants_scoped`: a GCS IAM Condition or Azure ABAC condition that opens
  the report records to an identity opens exactly one kind of this stack's records
  (``reports/<env>/drills/`` or ``attempts/``), and on Azure guards every create action.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.aws.s3 import AWS_POLICY_HOLDERS, _backup_bucket_arns
from policy.documents import policy_documents
from policy.expectations import Expectations
from policy.multicloud.lifecycle import lifecycle_rules
from policy.parsing import _as_list, _days, _statements
from policy.resources import Finding, Res, _of

REPORTS = "reports/"
REPORT_KINDS = ("drills", "attempts")
# Classes an object must be restored or rehydrated from before it can be read.
NEEDS_RESTORE = ("GLACIER", "DEEP_ARCHIVE", "Archive")
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
AZURE_CREATE_ACTIONS = (f"{BLOBS}/write", f"{BLOBS}/add/action")


def reports_prefix(c: Expectations) -> str:
    return f"{REPORTS}{c.environment}/"


def _object_prefix(cloud: str, prefix: str) -> str:
    """A lifecycle prefix as an object-name prefix (Azure's start with the container)."""
    if cloud == "azure":
        return prefix.split("/", 1)[1] if "/" in prefix else ""
    return prefix


def check_reports_retention(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    cloud, rules = lifecycle_rules(t, p)
    if not any("database/" in r.prefix for r in rules):
        return []  # not a backup store's lifecycle (e.g. the access-log bucket)
    if c is None:
        return ["stack expectations are unavailable: cannot compare the report records' "
                "lifecycle with the yearly tier"]
    records, keep = reports_prefix(c), c.retention_days["yearly"]
    out, own = [], []
    for rule in rules:
        prefix = _object_prefix(cloud, rule.prefix)
        if not (records.startswith(prefix) or prefix.startswith(records)):
            continue
        where = rule.prefix or "(whole store)"
        if prefix == records:
            own.append(rule)
        if rule.expire_days is not None and rule.expire_days < keep:
            out.append(f"{where} expires report records after {_days(rule.expire_days)} days, "
                       f"before the yearly tier's {keep}")
        for day, cls in rule.transitions:
            if cls in NEEDS_RESTORE:
                out.append(f"{where} moves report records to {cls} at day {_days(day)}: "
                           "`vo2dr report` reads every record, which that class refuses "
                           "without a restore")
    if not any(r.expire_days is not None for r in own):
        out.append(f"no lifecycle rule expires {records}: report records would pile up "
                   f"forever; expire them after the yearly tier's {keep} days")
    return out


def _write_once(condition: Any) -> bool:
    """``{"Null": {"s3:if-none-match": "false"}}`` or ``{"StringEquals": {...: "*"}}``."""
    if not isinstance(condition, Mapping):
        return False
    for op, keys in condition.items():
        if not isinstance(keys, Mapping):
            continue
        for key, value in keys.items():
            if str(key).lower() != "s3:if-none-match":
                continue
            values = [str(v).lower() for v in _as_list(value)]
            if (op == "Null" and values == ["false"]) or (op == "StringEquals"
                                                           and values == ["*"]):
                return True
    return False


def _parts_only(condition: Any) -> bool:
    """``{"Bool": {"s3:ObjectCreationOperation": "false"}}``: only the calls of a multipart
    upload that create no object (CreateMultipartUpload, UploadPart, UploadPartCopy); the
    completion that creates it is held to :func:`_write_once` by another statement."""
    if not isinstance(condition, Mapping) or set(condition) != {"Bool"}:
        return False
    keys = condition["Bool"]
    return isinstance(keys, Mapping) and {str(k).lower(): [str(v).lower() for v in _as_list(x)]
                                          for k, x in keys.items()} == {
        "s3:objectcreationoperation": ["false"]}


CONTENT_ID = "0123456789abcdef0123456789abcdef"  # vo2dr.layout: 32 hex


_ENVIRONMENT = re.compile(r"^(?:reports|logs|application|database)/(?P<env>[a-z0-9-]+)/")
# Every tier a backup can be written to (vo2dr.layout.TIERS) and a sample name in it: a body,
# manifest or snapshot index is new by construction (a timestamp and a random id).
BACKUP_TIERS = ("intraday", "daily", "weekly", "monthly", "yearly")
BACKUP_NAME = "class/20260101T000000Z-0123456789ab.manifest.json"


def _write_once_keys(c: Expectations | None, pattern: str) -> list[str]:
    """Sample keys of what is written once: a report record of each kind, a content object of
    each snapshot source, and a backup in each tier of each source (database, application
    sources, snapshot indexes). Without the stack's expectations, of any environment: ``*``,
    or the one ``pattern`` names."""
    if c is not None:
        envs, pools = [c.environment], list(c.content_prefixes)
        tiers = [p for t in BACKUP_TIERS for p in c.prefixes(t)]
    else:
        m = _ENVIRONMENT.match(pattern)
        envs = ["*", *([m["env"]] if m else [])]
        pools = [p for e in envs for p in (f"application/{e}/assets/content/",
                                           f"logs/{e}/content/")]
        tiers = [f"{root}{t}/" for e in envs for root in (
            f"database/{e}/", f"logs/{e}/", *(f"application/{e}/{kind}/"
                                              for kind in ("code", "config", "assets")))
            for t in BACKUP_TIERS]
    return [*(f"{REPORTS}{env}/{kind}/x.json" for env in envs for kind in REPORT_KINDS),
            *(f"{p}{CONTENT_ID}" for p in pools), *(f"{p}{BACKUP_NAME}" for p in tiers)]


def _reaches_reports(resource: str, buckets: list[str], c: Expectations | None) -> bool:
    """An S3 resource pattern that matches some report record, snapshot content object or
    backup of the stack in a backup bucket (its bucket part, before the first "/", matches one of
    ``buckets``)."""
    bucket_part, _, obj = resource.partition("/")
    keys = _write_once_keys(c, obj)
    if not any(fnmatch.fnmatchcase(b, bucket_part) for b in buckets):
        return False
    if not obj:
        return resource.endswith("*")  # "*", "arn:aws:s3:::*": every object anywhere
    return any(fnmatch.fnmatchcase(k, obj) for k in keys)


def check_aws_report_puts_write_once(resources: Sequence[Res],
                                     c: Expectations | None) -> list[Finding]:
    """Every IAM or bucket policy statement that allows a put reaching a backup bucket's
    backups, report records or snapshot content (not the access-log bucket's logs) requires
    If-None-Match: *, or is limited to the parts of a multipart upload."""
    buckets = _backup_bucket_arns(resources)
    out = []
    for r in _of(resources, *AWS_POLICY_HOLDERS):
        for doc in policy_documents(r.type, r.props):
            for st in _statements(doc):
                if st.get("Effect") != "Allow":
                    continue
                actions = [str(a).lower() for a in _as_list(st.get("Action"))]
                if not any(fnmatch.fnmatchcase("s3:putobject", a) for a in actions):
                    continue
                reached = [str(x) for x in _as_list(st.get("Resource"))
                           if _reaches_reports(str(x), buckets, c)]
                condition = st.get("Condition")
                if reached and not (_write_once(condition) or _parts_only(condition)):
                    out.append(Finding(
                        f"{r.name} statement {st.get('Sid', '?')} allows s3:PutObject on "
                        f"write-once objects ({reached[0]}: backups, report records, snapshot "
                        "content) "
                        "without requiring If-None-Match: * (s3:if-none-match), so one could "
                        "be replaced", r.urn))
    return out


def _kind_prefix(c: Expectations | None) -> str:
    env = re.escape(c.environment) if c is not None else "[a-z0-9-]+"
    return rf"{REPORTS}{env}/(?:{'|'.join(REPORT_KINDS)})/"


def check_report_grants_scoped(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    condition = p.get("condition")
    if t.startswith("gcp:"):
        expression = str(get_expression(condition))
        if "/objects/reports/" not in expression:
            return []
        pattern = (r'resource\.name\.startsWith\("projects/_/buckets/[a-z0-9._-]+/objects/'
                   + _kind_prefix(c) + r'"\)')
        if not re.fullmatch(pattern, expression.strip()):
            return [f"the condition {expression!r} does not open exactly one kind of this "
                    f"stack's report records ({REPORTS}<env>/drills/ or attempts/)"]
        return []
    if not isinstance(condition, str) or "blobs:path" not in condition or REPORTS not in condition:
        return []
    out = []
    starts = re.findall(r"StringStartsWith\s+'([^']*)'", condition)
    if len(starts) != 1 or not re.fullmatch(_kind_prefix(c), starts[0]):
        out.append(f"the condition limits blob paths to {starts or 'nothing'}, not exactly one "
                   f"kind of this stack's report records ({REPORTS}<env>/drills/ or attempts/)")
    for action in AZURE_CREATE_ACTIONS:
        if f"!(ActionMatches{{'{action}'}})" not in condition.replace(" ", ""):
            out.append(f"the condition does not guard {action}: that create action stays "
                       "open on the whole container")
    if p.get("conditionVersion") != "2.0":
        out.append("a blob path condition needs conditionVersion 2.0")
    return out


def get_expression(condition: Any) -> Any:
    """A GCP IAM member's condition expression, or an empty string."""
    return condition.get("expression", "") if isinstance(condition, Mapping) else ""
