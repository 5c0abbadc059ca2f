"""Retention with dedup (issue 17): the snapshot sources' content pools (``<root>content/``) are
shared by snapshots of every GFS tier, so

- no lifecycle rule of any cloud may expire a content object by age (nor move it to a class
  that needs a rehydration before it can be read);
- the only identity that deletes in a backup store is the pruner, and only under
  ``<root>content/``; whoever holds that delete writes nothing outside ``<root>prune/``;
- the backup writer has no delete anywhere;
- the snapshot origins (the app's uploads bucket, the log drain) are read-only to the job.

A delete grant is recognised by its scope, in each cloud's own terms: an IAM statement whose
resources are all content prefixes (AWS), a bucket binding of a delete-only role whose IAM
Condition admits only content prefixes (GCS), a role assignment of a delete-only role whose ABAC
condition admits the delete only on content paths (Azure). The helpers here are also what the
older "no delete" rules use to let exactly that grant through."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.documents import policy_documents
from policy.expectations import Expectations
from policy.parsing import _as_list, _statements, get
from policy.resources import Finding, Res, _of

S3_DELETE_ACTIONS = frozenset({"s3:deleteobject"})
S3_WRITE_ACTIONS = frozenset({"s3:putobject", "s3:*", "*", "s3:put*"})
# Actions on an origin bucket that only read.
ORIGIN_READ_ACTIONS = frozenset({"s3:getobject", "s3:getobjectversion", "s3:listbucket",
                                 "s3:listbucketversions"})
GCS_DELETE = "storage.objects.delete"
GCS_CREATE = "storage.objects.create"
AZ_BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
AZ_DELETE = f"{AZ_BLOBS}/delete"
AZ_WRITES = (f"{AZ_BLOBS}/write", f"{AZ_BLOBS}/add/action")
# Classes a content object cannot be read from without first being restored (hours).
REHYDRATE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE", "Archive"})
WRITER_ROLE_SUFFIX = "-backup-writer"  # infra/aws: cfg.name("backup-writer")
_S3_OBJECT_ARN = re.compile(r"^arn:aws:s3:::(?P<bucket>[^/*?]+)/(?P<key>.*)$")


def _generic_content(prefix: str) -> bool:
    """Without the stack's expectations: a literal ``…/content/`` prefix."""
    return prefix.endswith("/content/") and "*" not in prefix and "?" not in prefix


def is_content_prefix(prefix: str, c: Expectations | None) -> bool:
    return prefix in c.content_prefixes if c is not None else _generic_content(prefix)


def is_prune_prefix(prefix: str, c: Expectations | None) -> bool:
    if c is not None:
        return prefix in c.prune_prefixes
    return prefix.endswith("/prune/") and "*" not in prefix and "?" not in prefix


def _object_prefix(resource: str) -> str | None:
    """``arn:aws:s3:::bucket/<prefix>*`` -> ``<prefix>`` (a literal prefix), else None."""
    m = _S3_OBJECT_ARN.match(resource)
    if not m or not m["key"].endswith("*"):
        return None
    key = m["key"][:-1]
    return None if "*" in key or "?" in key else key


def s3_content_only(resources: Sequence[Any], c: Expectations | None) -> bool:
    """Every resource is ``arn:aws:s3:::<bucket>/<root>content/*`` of a snapshot source."""
    prefixes = [_object_prefix(str(r)) for r in resources]
    return bool(prefixes) and all(p is not None and is_content_prefix(p, c) for p in prefixes)


def s3_prune_only(resources: Sequence[Any], c: Expectations | None) -> bool:
    prefixes = [_object_prefix(str(r)) for r in resources]
    return bool(prefixes) and all(p is not None and is_prune_prefix(p, c) for p in prefixes)


def _actions(st: Mapping[str, Any]) -> list[str]:
    return [str(a).lower() for a in _as_list(st.get("Action"))]


def allows_s3_delete(st: Mapping[str, Any]) -> bool:
    return st.get("Effect") == "Allow" and any(
        a in S3_DELETE_ACTIONS or a in ("s3:*", "*", "s3:delete*") for a in _actions(st))


def content_delete_statement(st: Mapping[str, Any], c: Expectations | None) -> bool:
    """The pruner's one delete: exactly s3:DeleteObject, on content prefixes only."""
    return (st.get("Effect") == "Allow" and _actions(st) == ["s3:deleteobject"]
            and "NotAction" not in st and "NotResource" not in st
            and s3_content_only(_as_list(st.get("Resource")), c))


# ---- GCS: IAM Conditions on bucket bindings ------------------------------------------------

_GCS_STARTS = re.compile(
    r'^resource\.name\.startsWith\("projects/_/buckets/[^/"]+/objects/(?P<prefix>[^"]*)"\)$')


def gcs_condition_prefixes(expression: Any) -> list[str] | None:
    """The object prefixes of a condition made only of ``resource.name.startsWith(...)`` terms
    joined by ``||``; None for anything else (which the rules then refuse)."""
    if not isinstance(expression, str) or not expression.strip():
        return None
    out = []
    for term in expression.split("||"):
        m = _GCS_STARTS.match(term.strip())
        if not m:
            return None
        out.append(m["prefix"])
    return out


def gcp_delete_only_role(permissions: Sequence[Any]) -> bool:
    return [str(p) for p in permissions] == [GCS_DELETE]


# ---- Azure: ABAC conditions on role assignments --------------------------------------------

_AZ_TERM = re.compile(
    r"@Resource\[" + re.escape(AZ_BLOBS) + r":path\] StringStartsWith '(?P<prefix>[^']*)'")
_AZ_ACTION = re.compile(r"!\(ActionMatches\{'(?P<action>[^']+)'\}\)")


def azure_condition(condition: Any) -> tuple[list[str], list[str]] | None:
    """``(actions, prefixes)`` of a condition of the form ``((!(ActionMatches{a}) AND ...) OR
    (<path> StringStartsWith 'p' OR ...))`` (infra/azure/access.py path_condition): the actions
    it limits and the blob path prefixes it admits them on. None for any other form."""
    if not isinstance(condition, str):
        return None
    text = " ".join(condition.split())
    m = re.fullmatch(r"\(\((?P<not>.+?)\) OR \((?P<under>.+)\)\)", text)
    if not m:
        return None
    actions = [a["action"] for a in _AZ_ACTION.finditer(m["not"])]
    rebuilt = " AND ".join(f"!(ActionMatches{{'{a}'}})" for a in actions)
    prefixes = [t["prefix"] for t in _AZ_TERM.finditer(m["under"])]
    terms = " OR ".join(f"@Resource[{AZ_BLOBS}:path] StringStartsWith '{p}'" for p in prefixes)
    if not actions or not prefixes or rebuilt != m["not"] or terms != m["under"]:
        return None
    return actions, prefixes


def azure_delete_only_permissions(permissions: Any) -> bool:
    ops = [str(op) for perm in _as_list(permissions)
           for key in ("actions", "dataActions") for op in _as_list(get(perm, key))]
    return ops == [AZ_DELETE]


def azure_delete_only_role(definition: Res) -> bool:
    return azure_delete_only_permissions(definition.props.get("permissions"))


def azure_content_delete_assignment(assignment: Res, c: Expectations | None) -> bool:
    """A delete-only role's assignment whose condition admits the delete on content only."""
    parsed = azure_condition(assignment.props.get("condition"))
    if parsed is None or str(assignment.props.get("conditionVersion")) != "2.0":
        return False
    actions, prefixes = parsed
    return actions == [AZ_DELETE] and all(is_content_prefix(p, c) for p in prefixes)


# ---- rule: no lifecycle expiry reaches content ---------------------------------------------

def _catches(rule_prefix: str, content: str) -> bool:
    """Does a rule on ``rule_prefix`` reach objects under ``content`` (one contains the other)?"""
    return content.startswith(rule_prefix) or rule_prefix.startswith(content)


def _lifecycle_actions(t: str, p: Mapping[str, Any]) -> list[tuple[str, bool, list[str]]]:
    """``(prefix, expires current objects by age or date, classes moved to)`` per enabled
    rule; Azure prefixes without their container."""
    out = []
    if t.startswith("aws:s3/"):
        for r in _as_list(p.get("rules")):
            if r.get("status") != "Enabled":
                continue
            prefix = get(r, "filter.prefix") or get(r, "filter.and.prefix") or r.get("prefix") \
                or ""
            expiry = get(r, "expiration.days") is not None or \
                get(r, "expiration.date") is not None
            classes = [str(x.get("storageClass")) for x in _as_list(r.get("transitions"))]
            out.append((str(prefix), expiry, classes))
    elif t == "gcp:storage/bucket:Bucket":
        for r in _as_list(p.get("lifecycleRules")):
            cond = r.get("condition") or {}
            live_delete = get(r, "action.type") == "Delete" and (
                cond.get("age") is not None or cond.get("createdBefore") is not None
                or cond.get("customTimeBefore") is not None
                or cond.get("daysSinceCustomTime") is not None) \
                and cond.get("withState") != "ARCHIVED"
            classes = [str(get(r, "action.storageClass"))] \
                if get(r, "action.type") == "SetStorageClass" else []
            for prefix in _as_list(cond.get("matchesPrefixes")) or [""]:
                out.append((str(prefix), live_delete, classes))
    else:
        for r in _as_list(get(p, "policy.rules")):
            if r.get("enabled") is False:
                continue
            base = get(r, "definition.actions.baseBlob") or {}
            delete = bool(base.get("delete"))
            classes = [cls for key, cls in (("tierToCool", "Cool"), ("tierToCold", "Cold"),
                                            ("tierToArchive", "Archive")) if base.get(key)]
            for prefix in _as_list(get(r, "definition.filters.prefixMatch")) or [""]:
                # "<container>/<blob prefix>"; intraday containers never hold content.
                container, _, blob = str(prefix).partition("/")
                if container.endswith("-intraday"):
                    continue
                out.append((blob, delete, classes))
    return out


def check_content_no_expiry(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    """No enabled lifecycle rule whose prefix reaches a snapshot content pool expires current
    objects (by age or date) or moves them to a class that must be rehydrated to be read."""
    if c is None or not c.content_prefixes:
        return []
    actions = _lifecycle_actions(t, p)
    if not any("database/" in prefix or any(_catches(prefix, x) and prefix
                                            for x in c.content_prefixes)
               for prefix, _, _ in actions):
        return []  # not a backup store's lifecycle (e.g. the access-log bucket's)
    out = []
    for prefix, expires, classes in actions:
        for content in c.content_prefixes:
            if not _catches(prefix, content):
                continue
            where = prefix or "(whole store)"
            if expires:
                out.append(f"lifecycle rule on {where} expires objects under {content}: a "
                           "content object is kept while any retained snapshot references it; "
                           "only the pruner deletes it")
            cold = [cls for cls in classes if cls in REHYDRATE_CLASSES]
            if cold:
                out.append(f"lifecycle rule on {where} moves {content} objects to {cold[0]}, "
                           "which needs a rehydration before a restore can read them")
    return out


# ---- rule: delete only by the pruner, only on content --------------------------------------

def _aws_policy_docs(resources: Sequence[Res]) -> list[tuple[Res, str, Mapping[str, Any]]]:
    out = []
    for r in _of(resources, "aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        out += [(r, str(r.props.get("role") or ""), d) for d in policy_documents(r.type, r.props)]
    for r in _of(resources, "aws:iam/role:Role"):
        out += [(r, str(r.props.get("name") or ""), d) for d in policy_documents(r.type, r.props)]
    return out


def _aws_delete_findings(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    out = []
    by_role: dict[str, list[tuple[Res, Mapping[str, Any]]]] = {}
    for r, role, doc in _aws_policy_docs(resources):
        by_role.setdefault(role or r.urn, []).append((r, doc))
    for role, docs in by_role.items():
        deletes = [(r, st) for r, doc in docs for st in _statements(doc) if allows_s3_delete(st)]
        if not deletes:
            continue
        for r, st in deletes:
            if role.endswith(WRITER_ROLE_SUFFIX):
                out.append(Finding(f"{r.name} statement {st.get('Sid', '?')} lets the backup "
                                   "writer delete: the writer never deletes", r.urn))
            elif not content_delete_statement(st, c):
                out.append(Finding(f"{r.name} statement {st.get('Sid', '?')} allows a delete "
                                   f"beyond snapshot content ({st.get('Resource')}): only "
                                   "s3:DeleteObject on <root>content/* is allowed", r.urn))
        # Whoever deletes content writes nothing outside the prune plans.
        for r, doc in docs:
            for st in _statements(doc):
                if st.get("Effect") != "Allow" or not any(a in S3_WRITE_ACTIONS
                                                          for a in _actions(st)):
                    continue
                if not s3_prune_only(_as_list(st.get("Resource")), c):
                    out.append(Finding(f"{r.name} statement {st.get('Sid', '?')}: the role "
                                       "that deletes snapshot content writes outside "
                                       f"<root>prune/ ({st.get('Resource')})", r.urn))
    return out


def _gcp_custom_roles(resources: Sequence[Res]) -> dict[str, Res]:
    out = {}
    for r in _of(resources, "gcp:projects/iAMCustomRole:IAMCustomRole",
                 "gcp:organizations/iAMCustomRole:IAMCustomRole"):
        for key in (r.props.get("name"), r.props.get("id"), r.urn):
            if key:
                out[str(key)] = r
        rid = r.props.get("roleId")
        if rid:
            out[f"projects/{r.props.get('project')}/roles/{rid}"] = r
    return out


def _gcp_role(binding: Res, roles: Mapping[str, Res]) -> Res | None:
    role = roles.get(str(binding.props.get("role") or ""))
    if role is None:
        role = next((roles[d] for d in binding.dependencies if d in roles), None)
    return role


def _gcp_delete_findings(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    roles = _gcp_custom_roles(resources)
    out = []
    bindings = _of(resources, "gcp:storage/bucketIAMMember:BucketIAMMember")
    deleters: set[str] = set()
    for b in bindings:
        role = _gcp_role(b, roles)
        perms = [str(x) for x in _as_list(role.props.get("permissions"))] if role else []
        if GCS_DELETE not in perms:
            continue
        member = str(b.props.get("member") or "")
        deleters.add(member)
        prefixes = gcs_condition_prefixes(get(b.props, "condition.expression"))
        if "-gcs-writer@" in member:
            out.append(Finding(f"{b.name} lets the backup writer {member} delete objects: the "
                               "writer never deletes", b.urn))
        elif not gcp_delete_only_role(perms) or prefixes is None or not all(
                is_content_prefix(p, c) for p in prefixes):
            out.append(Finding(f"{b.name} grants storage.objects.delete beyond snapshot content: "
                               "bind a delete-only role with a condition of "
                               "resource.name.startsWith(\".../objects/<root>content/\") only",
                               b.urn))
    for b in bindings:
        member = str(b.props.get("member") or "")
        role = _gcp_role(b, roles)
        perms = [str(x) for x in _as_list(role.props.get("permissions"))] if role else []
        if member in deleters and GCS_CREATE in perms:
            prefixes = gcs_condition_prefixes(get(b.props, "condition.expression"))
            if prefixes is None or not all(is_prune_prefix(p, c) for p in prefixes):
                out.append(Finding(f"{b.name}: {member} deletes snapshot content and may "
                                   "create objects outside <root>prune/", b.urn))
    return out


def _azure_delete_findings(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    definitions = _of(resources, "azure-native:authorization:RoleDefinition")
    writers = {r.urn for r in _of(resources, "azure-native:managedidentity:UserAssignedIdentity")
               if r.name.endswith("-writer") or str(r.props.get("resourceName", "")).endswith(
                   "-blob-writer")}
    out = []
    deleters: set[tuple[str, ...]] = set()
    assignments = _of(resources, "azure-native:authorization:RoleAssignment")

    def role_of(a: Res) -> Res | None:
        rid = str(a.props.get("roleDefinitionId") or "")
        return next((d for d in definitions if d.urn in a.dependencies
                     or (rid and rid == str(d.props.get("id")))), None)

    def ops(d: Res | None) -> list[str]:
        return [] if d is None else [
            str(op) for perm in _as_list(d.props.get("permissions"))
            for key in ("actions", "dataActions") for op in _as_list(get(perm, key))]

    def who(a: Res) -> tuple[str, ...]:
        pid = a.props.get("principalId")
        return (str(pid),) if isinstance(pid, str) and pid else tuple(
            d for d in a.dependencies if "UserAssignedIdentity" in d)

    for a in assignments:
        d = role_of(a)
        if not any(op.endswith("/blobs/delete") for op in ops(d)):
            continue
        deleters.add(who(a))
        if writers & set(a.dependencies):
            out.append(Finding(f"{a.name} lets the backup writer identity delete blobs: the "
                               "writer never deletes", a.urn))
        elif d is None or not azure_delete_only_role(d) or not azure_content_delete_assignment(
                a, c):
            out.append(Finding(f"{a.name} allows blobs/delete beyond snapshot content: assign a "
                               "delete-only role with the condition "
                               "@Resource[...blobs:path] StringStartsWith '<root>content/'",
                               a.urn))
    for a in assignments:
        if who(a) not in deleters:
            continue
        if not any(op in AZ_WRITES for op in ops(role_of(a))):
            continue
        parsed = azure_condition(a.props.get("condition"))
        ok = parsed is not None and sorted(parsed[0]) == sorted(AZ_WRITES) and all(
            is_prune_prefix(p, c) for p in parsed[1])
        if not ok:
            out.append(Finding(f"{a.name}: the identity that deletes snapshot content may "
                               "write blobs outside <root>prune/", a.urn))
    return out


def check_delete_content_only(resources: Sequence[Res], c: Expectations | None) -> list[Finding]:
    """In every cloud, a delete grant reaches only ``<root>content/`` of a snapshot source, is
    not the backup writer's, and its holder writes only under ``<root>prune/``."""
    return [*_aws_delete_findings(resources, c), *_gcp_delete_findings(resources, c),
            *_azure_delete_findings(resources, c)]


# ---- rule: the snapshot origins are read-only ----------------------------------------------

def origin_buckets(c: Expectations | None) -> list[str]:
    return sorted({u.removeprefix("s3://").split("/", 1)[0] for u in (c.snapshot_origins if c
                                                                        else ())
                   if u.startswith("s3://")})


def check_origins_read_only(t: str, p: Mapping[str, Any], c: Expectations | None) -> list[str]:
    """Every Allow that reaches a snapshot origin bucket only reads or lists it."""
    buckets = origin_buckets(c)
    if not buckets:
        return []
    out = []
    for doc in policy_documents(t, p):
        for st in _statements(doc):
            if st.get("Effect") != "Allow":
                continue
            resources = [str(r) for r in _as_list(st.get("Resource"))]
            hit = [b for b in buckets for r in resources
                   if r in ("*", "arn:aws:s3:::*")
                   or r.split("/", 1)[0] == f"arn:aws:s3:::{b}"]
            if not hit:
                continue
            bad = [a for a in _actions(st) if (a.startswith("s3:") or a == "*")
                   and a not in ORIGIN_READ_ACTIONS]
            if bad or "NotAction" in st:
                out.append(f"statement {st.get('Sid', '?')} allows {', '.join(bad) or 'NotAction'}"
                           f" on the snapshot origin bucket {hit[0]}: origins are read-only")
    return out

