"""``vo2dr prune --kind assets|logs``: delete the content objects no snapshot references any
more, two-phase, per store, with the pruner's identity (the writers can never delete).

Why it is safe with deduplication. Content objects (``<root>content/<random id>``) have no
age-based expiry at all: a snapshot taken today may reference one uploaded a year ago, and the
GFS lifecycle expires only the snapshots' indexes and manifests (their tier prefixes). What no
retained snapshot references any more is removed here, and only so:

1. **Mark.** The references are every content id of every snapshot whose manifest is present
   in this store (any tier, complete or partial), read from their verified indexes. A content
   object is a *candidate* when no such snapshot references it and its lock has ended
   (``last_modified + lockDays``: the store would refuse the delete anyway, and a content object
   younger than the lock may belong to a snapshot still running, whose manifest is not
   written yet). The candidates are written as a plan, ``<root>prune/<UTC ts>.json``.
2. **Sweep**, in a later run at least ``grace`` after the mark (longer than any snapshot run):
   each candidate of such a plan is deleted only if it is *still* unreferenced now. A snapshot
   that started before the mark and reused a candidate (it was unchanged in the origin) has
   written its manifest by then, so its reference is seen and the content kept.

Any snapshot of the store whose index cannot be read and verified (a manifest without its
index, a bad signature, an altered index) stops the prune of that store: its references are
unknown, so nothing is deleted there (someone who owns that store's account can delay pruning
that way, never cause a delete of referenced content). Deleted content is content that no
snapshot present in the store references: restores of every retained snapshot stay whole.

Storage cost: each changed object version is stored once, kept while any retained snapshot
references it, plus at most ``lockDays + grace`` (and a prune interval) after that.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vo2dr import layout
from vo2dr.catalog import build_catalog
from vo2dr.exceptions import ConfigError, IntegrityError, ObjectExists, StoreError, one_line
from vo2dr.stores.base import BackupStore, ObjectInfo
from vo2dr.trust import Trust

PLAN_FORMAT = "vo2dr-prune-plan/1"
# A daily pruner sweeps the previous day's plan; any snapshot run is far shorter.
DEFAULT_GRACE_HOURS = 12


@dataclass
class PruneReport:
    store: str
    source: str
    dry_run: bool = False
    snapshots: int = 0
    referenced: int = 0
    content_objects: int = 0
    content_bytes: int = 0
    unreferenced_locked: int = 0  # unreferenced, but still under the lock: not yet candidates
    marked: int = 0
    plan_key: str = ""
    plans_swept: list[str] = field(default_factory=list)
    deleted: int = 0
    deleted_bytes: int = 0
    kept_now_referenced: int = 0  # candidates a snapshot started to reference since the mark
    blocked: str = ""  # why nothing was done in this store
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blocked and not self.errors

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "ok": self.ok}


def grace_from_settings(value: str) -> timedelta:
    if not value:
        return timedelta(hours=DEFAULT_GRACE_HOURS)
    try:
        hours = float(value)
    except ValueError:
        hours = -1
    if hours <= 0:
        raise ConfigError(f"VO2DR_PRUNE_GRACE_HOURS {value!r} must be a positive number of "
                          "hours (longer than the longest snapshot run)")
    return timedelta(hours=hours)


def lock_days_from_settings(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        days = -1
    if days < 0:
        raise ConfigError(f"VO2DR_LOCK_DAYS {value!r} must be the stack's immutability.lockDays "
                          "(a whole number of days): content is deleted only after its lock")
    return days


def references(store: BackupStore, environment: str, kind: str,
               trust: Trust) -> tuple[set[str], int]:
    """Every content id referenced by a snapshot whose manifest is present in ``store``, and
    how many snapshots that is. Raises :class:`IntegrityError` when one cannot be read."""
    from vo2dr.snapshots.reader import open_index
    from vo2dr.verify import VerificationFailed

    catalog = build_catalog({store.name: store}, environment, source=kind)
    if store.name in catalog.errors:
        raise StoreError(f"cannot list {store.name}: {catalog.errors[store.name]}",
                         store=store.name)
    refs: set[str] = set()
    count = 0
    for entry in catalog.entries:
        copy = entry.copies.get(store.name)
        if copy is None or copy.manifest is None:
            continue  # no manifest: a run in progress or one that failed; it references nothing
        if copy.body is None:
            raise IntegrityError(f"snapshot {entry.backup_id} has a manifest but no index in "
                                 f"{store.name}: its references are unknown")
        try:
            with open_index(store, entry, trust) as index:
                refs.update(line["content"] for line in index)
        except VerificationFailed as exc:
            raise IntegrityError(f"snapshot {entry.backup_id}: {exc}") from exc
        count += 1
    return refs, count


def _plans(store: BackupStore, environment: str, kind: str,
           report: PruneReport) -> list[tuple[str, datetime, list[str]]]:
    out = []
    for info in store.list(layout.prune_prefix(environment, kind)):
        try:
            doc = json.loads(store.get_bytes(info.key))
            if doc.get("format") != PLAN_FORMAT or doc.get("source") != kind:
                raise ValueError("not a prune plan of this source")
            marked = datetime.fromisoformat(str(doc["marked_at"]).replace("Z", "+00:00"))
            ids = [str(i) for i in doc["candidates"]]
        except (ValueError, KeyError, TypeError) as exc:
            report.errors.append(f"prune plan {info.key} ignored: {one_line(exc)}")
            continue
        out.append((info.key, marked, ids))
    return out


def prune_store(store: BackupStore, environment: str, kind: str, trust: Trust, *,
                lock_days: int, grace: timedelta, now: datetime | None = None,
                dry_run: bool = False) -> PruneReport:
    """One prune run (sweep of old enough plans, then a new mark) in one store."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    report = PruneReport(store=store.name, source=kind, dry_run=dry_run)
    try:
        refs, report.snapshots = references(store, environment, kind, trust)
    except (IntegrityError, StoreError) as exc:
        report.blocked = f"nothing pruned: {one_line(exc, 300)}"
        return report
    report.referenced = len(refs)
    lock = timedelta(days=lock_days)
    content: dict[str, ObjectInfo] = {}
    for info in store.list(layout.content_prefix(environment, kind)):
        cid = layout.content_id_of(environment, kind, info.key)
        if cid is None:
            continue
        content[cid] = info
        report.content_objects += 1
        report.content_bytes += info.size

    def unlocked(info: ObjectInfo) -> bool:
        return info.last_modified.astimezone(UTC) + lock <= now

    # Sweep: candidates of plans marked at least `grace` ago, if still unreferenced now.
    deleted: set[str] = set()
    for key, marked, ids in _plans(store, environment, kind, report):
        if now - marked.astimezone(UTC) < grace:
            continue
        report.plans_swept.append(key)
        for cid in ids:
            found = content.get(cid)
            if found is None or cid in deleted:
                continue  # gone already (an earlier sweep)
            info = found
            if cid in refs:
                report.kept_now_referenced += 1
                continue
            if not unlocked(info):
                continue
            if not dry_run:
                try:
                    store.delete(info.key)
                except StoreError as exc:
                    report.errors.append(f"cannot delete {info.key}: {one_line(exc, 200)}")
                    continue
            deleted.add(cid)
            report.deleted += 1
            report.deleted_bytes += info.size

    # Mark: unreferenced and unlocked content, for a sweep after the grace.
    candidates = []
    for cid, info in content.items():
        if cid in refs or cid in deleted:
            continue
        if unlocked(info):
            candidates.append(cid)
        else:
            report.unreferenced_locked += 1
    report.marked = len(candidates)
    if candidates and not dry_run:
        key = f"{layout.prune_prefix(environment, kind)}{layout.format_timestamp(now)}.json"
        plan = {"format": PLAN_FORMAT, "source": kind, "environment": environment,
                "store": store.name, "marked_at": now.isoformat().replace("+00:00", "Z"),
                "lock_days": lock_days, "grace_hours": grace.total_seconds() / 3600,
                "candidates": sorted(candidates)}
        try:
            store.put_bytes(key, json.dumps(plan, indent=1).encode())
            report.plan_key = key
        except ObjectExists:
            report.errors.append(f"prune plan {key} exists already (another prune in the same "
                                 "second?): this mark is skipped, the next run marks again")
        except StoreError as exc:
            report.errors.append(f"cannot write the prune plan {key}: {one_line(exc, 200)}")
    return report


def prune(stores: Mapping[str, BackupStore], environment: str, kind: str, trust: Trust, *,
          lock_days: int, grace: timedelta, now: datetime | None = None,
          dry_run: bool = False) -> list[PruneReport]:
    """:func:`prune_store` in every store given, one after the other (each store's own
    references decide what goes from that store)."""
    from vo2dr.snapshots.catalog import check_source

    check_source(kind)
    return [prune_store(store, environment, kind, trust, lock_days=lock_days, grace=grace,
                        now=now, dry_run=dry_run) for store in stores.values()]
