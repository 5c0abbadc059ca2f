"""What happened: every backup attempt and every drill in the period, from the stores alone.

Backups come from two kinds of evidence, merged by backup id:

* the signed attempt records (:mod:`vo2dr.records`), which outlive the backups (lifecycle
  expires intraday backups after hours and daily ones after weeks) and also hold the failed
  attempts that never got a manifest;
* the layout's listing (:func:`vo2dr.catalog.build_catalog`): a backup complete in a store
  whose record is missing (taken before records existed, or its record write failed) still
  counts, marked ``evidence="listing"``.

Records that are unsigned or do not verify are kept aside (``History.untrusted``) and shown,
never counted. Drills come from drill records only (a drill leaves nothing else behind).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vo2dr.catalog import build_catalog
from vo2dr.layout import SOURCE_KINDS
from vo2dr.records import ATTEMPT, DRILL, Record, read_records
from vo2dr.signing import TrustedKeys
from vo2dr.stores.base import BackupStore


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class BackupEvent:
    """One backup attempt of a data class (or an application source)."""

    data_class: str
    time: datetime  # when it started: the snapshot's time
    outcome: str  # complete | partial | failed
    stores: dict[str, bool] = field(default_factory=dict)  # store -> holds a complete copy
    backup_id: str = ""
    source: str = "database"
    tier: str = ""
    plaintext_bytes: int = 0
    ciphertext_bytes: int = 0
    seconds: float = 0.0
    reason: str = ""
    evidence: str = "record"  # record | listing
    store_errors: dict[str, str] = field(default_factory=dict)  # store -> why no copy there
    # listing evidence only: the catalog entry, to check its manifests' signatures
    entry: Any = field(default=None, repr=False, compare=False)

    @property
    def complete_anywhere(self) -> bool:
        return any(self.stores.values())


@dataclass
class DrillClass:
    data_class: str
    ok: bool
    restore_seconds: float | None
    rto_seconds: float
    backup_id: str = ""
    store: str = ""
    rows_checked: int = 0
    tables_checked: int = 0
    sanity_checked: int = 0
    sanity_passed: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class DrillEvent:
    time: datetime
    ok: bool
    classes: list[DrillClass]


@dataclass
class History:
    since: datetime
    until: datetime
    backups: list[BackupEvent]  # oldest first
    drills: list[DrillEvent]  # oldest first
    untrusted: list[dict[str, str]] = field(default_factory=list)  # records not counted
    store_errors: dict[str, str] = field(default_factory=dict)  # store -> why not read
    stores_read: list[str] = field(default_factory=list)

    def for_class(self, data_class: str, source: str = "database") -> list[BackupEvent]:
        return [b for b in self.backups if b.data_class == data_class and b.source == source]


def backup_from_record(rec: Record) -> BackupEvent:
    b = rec.body
    return BackupEvent(
        data_class=str(b.get("data_class", "")), time=parse_time(str(b["started_at"])),
        outcome=str(b.get("outcome", "failed")),
        stores={str(k): v == "complete" for k, v in (b.get("stores") or {}).items()},
        backup_id=str(b.get("backup_id", "")), source=str(b.get("source", "database")),
        tier=str(b.get("tier", "")), plaintext_bytes=int(b.get("plaintext_bytes") or 0),
        ciphertext_bytes=int(b.get("ciphertext_bytes") or 0),
        seconds=float(b.get("seconds") or 0), reason=str(b.get("reason", "")),
        store_errors={str(k): str(v) for k, v in (b.get("stores") or {}).items()
                      if v != "complete"})


def drill_from_record(rec: Record) -> DrillEvent:
    classes = []
    for c in rec.body.get("classes", []):
        sanity = c.get("sanity") or []
        classes.append(DrillClass(
            data_class=str(c.get("data_class", "")), ok=bool(c.get("ok")),
            restore_seconds=c.get("restore_seconds"), rto_seconds=float(c.get("rto_seconds", 0)),
            backup_id=str(c.get("backup_id", "")), store=str(c.get("store", "")),
            rows_checked=int(c.get("rows_checked") or 0),
            tables_checked=len(c.get("tables") or {}),
            sanity_checked=len(sanity), sanity_passed=sum(1 for s in sanity if s.get("ok")),
            reasons=[str(r) for r in c.get("reasons") or []]))
    return DrillEvent(time=rec.at, ok=bool(rec.body.get("ok")), classes=classes)


def merge(records: list[Record], listed: list[BackupEvent], since: datetime,
          until: datetime) -> History:
    """The history from read records and the listing's complete backups (pure: tested on a
    synthetic 90-day history)."""
    backups: dict[str, BackupEvent] = {}
    failed: list[BackupEvent] = []
    drills: list[DrillEvent] = []
    untrusted: list[dict[str, str]] = []
    seen: set[str] = set()
    for rec in records:
        if not rec.valid:
            untrusted.append({"key": rec.key, "trust": rec.trust, "reason": rec.reason})
            continue
        if rec.digest in seen:  # a valid record replayed under another id counts once
            continue
        seen.add(rec.digest)
        if not since <= rec.at <= until:
            continue
        try:
            if rec.kind == ATTEMPT:
                ev = backup_from_record(rec)
                if ev.backup_id:
                    backups[f"{ev.source}:{ev.backup_id}"] = ev
                else:
                    failed.append(ev)
            elif rec.kind == DRILL:
                drills.append(drill_from_record(rec))
        except (KeyError, TypeError, ValueError) as exc:
            # signed by us but not in the shape this version reads: shown, not counted
            untrusted.append({"key": rec.key, "trust": "unreadable", "reason": str(exc)})
    for ev in listed:
        if not since <= ev.time <= until:
            continue
        key = f"{ev.source}:{ev.backup_id}"
        if key in backups:
            known = backups[key]
            # A copy listed complete whose record says otherwise (its manifest was written
            # after the record, e.g. by a retry): the listing adds it.
            for store, ok in ev.stores.items():
                known.stores[store] = known.stores.get(store, False) or ok
        else:
            backups[key] = ev
    events = sorted([*backups.values(), *failed], key=lambda e: (e.time, e.backup_id))
    return History(since=since, until=until, backups=events,
                   drills=sorted(drills, key=lambda d: d.time), untrusted=untrusted)


def listed_backups(stores: Mapping[str, BackupStore], environment: str,
                   sources: tuple[str, ...] = SOURCE_KINDS) -> tuple[list[BackupEvent],
                                                                    dict[str, str]]:
    """Complete backups found by listing (no object read), with their sizes."""
    out: list[BackupEvent] = []
    errors: dict[str, str] = {}
    for source in sources:
        catalog = build_catalog(stores, environment, source=source)
        errors.update(catalog.errors)
        for e in catalog.entries:
            complete = {n: e.complete_in(n) for n in stores if n not in catalog.errors}
            if not any(complete.values()):
                continue
            size = max((c.body.size for c in e.copies.values() if c.body is not None),
                       default=0)
            out.append(BackupEvent(data_class=e.data_class, time=e.timestamp,
                                   outcome="complete", stores=complete,
                                   backup_id=e.backup_id, source=source, tier=e.ref.tier,
                                   ciphertext_bytes=size, evidence="listing", entry=e))
    return out, errors


def load_history(stores: Mapping[str, BackupStore], environment: str, trusted: TrustedKeys,
                 since: datetime, until: datetime, *,
                 record_keys: TrustedKeys | None = None,
                 progress: Callable[[str], None] | None = None) -> History:
    """Read the records and list the backups of every store that can be reached. Records may
    be signed by ``trusted`` (the manifests' keys) or ``record_keys`` (trusted for records
    only); a manifest only ever by ``trusted``."""
    for_records = TrustedKeys({**trusted.keys, **(record_keys.keys if record_keys else {})})
    records, rec_errors = read_records(stores, environment, for_records, since=since,
                                       progress=progress)
    if progress:
        progress("listing the backups")
    listed, list_errors = listed_backups(stores, environment)
    history = merge(records, listed, since, until)
    check_listed(history, stores, trusted)
    history.store_errors = {**rec_errors, **list_errors}
    history.stores_read = [n for n in stores if n not in history.store_errors]
    return history


def check_listed(h: History, stores: Mapping[str, BackupStore], trusted: TrustedKeys) -> None:
    """A backup known from the listing only (no record) counts in a store only if that store's
    manifest is signed by a trusted key and describes it: a key planted by whoever owns one
    cloud does not raise the success rate. Reads one small manifest per such copy."""
    from vo2dr.exceptions import Vo2drError
    from vo2dr.trust import Trust
    from vo2dr.verify import load_manifest

    trust = Trust(signers=trusted)
    kept = []
    for ev in h.backups:
        if ev.evidence != "listing" or ev.entry is None:
            kept.append(ev)
            continue
        for name, complete in list(ev.stores.items()):
            if not complete or name not in stores:
                continue
            try:
                manifest = load_manifest(stores[name], ev.entry, trust)
                ev.plaintext_bytes = manifest.plaintext.bytes
            except Vo2drError as exc:
                ev.stores[name] = False
                h.untrusted.append({"key": ev.entry.ref.manifest_key, "trust": "invalid",
                                    "reason": str(exc)})
        if ev.complete_anywhere:
            kept.append(ev)
    h.backups = kept


def as_json(h: History) -> dict[str, Any]:
    return {"since": h.since.isoformat(), "until": h.until.isoformat(),
            "backups": len(h.backups), "drills": len(h.drills),
            "untrusted_records": h.untrusted, "store_errors": h.store_errors,
            "stores_read": h.stores_read}
