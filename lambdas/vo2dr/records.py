"""Durable history: small, signed, write-once records of every backup attempt and every drill,
kept in every store next to the backups, so ``vo2dr report`` can answer "how did we do this
quarter?" long after lifecycle expired the backups themselves.

Layout (the contract with the storage lifecycle in ``infra/``, kept at least as long as the
yearly tier; see ``/work/notes/h18-contract.md`` in the project history)::

    reports/<environment>/attempts/<UTC timestamp>-<class>-<id>.json   every backup attempt
    reports/<environment>/drills/<UTC timestamp>-<id>.json              every drill

Every attempt is recorded, not only failures: intraday backups are expired after hours and
daily ones after weeks, so without a record of the successes a 90-day success rate could not
be computed. A failed attempt (no manifest anywhere) leaves only its record.

**Authentic, not merely present.** A record is signed with the manifests' signer
(:mod:`vo2dr.signing`) over a domain-separated payload (``vo2dr-record/1`` + canonical JSON),
so a record's signature can never pass for a manifest's and the other way round. Readers check
it against the trusted keys; an unsigned or invalid record is reported as such and never
counted. An attacker owning one cloud can delete or plant records there: records are merged
across stores by key and a valid copy anywhere wins, so a planted forgery only shows up as
"invalid", and a deletion is covered by the other stores.

Records never hold secrets: they carry class names, ids, sizes, times and one-line reasons,
and every reason is passed through :func:`scrub` (credentials in URLs masked) first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vo2dr.exceptions import StoreError, Vo2drError, one_line
from vo2dr.layout import format_timestamp, parse_timestamp
from vo2dr.signing import Signature, SignatureError, Signer, TrustedKeys, sign_payload
from vo2dr.stores.base import BackupStore

log = logging.getLogger("vo2dr.records")

FORMAT = "vo2dr-record/1"
ATTEMPT, DRILL = "attempt", "drill"
KINDS = {ATTEMPT: "attempts", DRILL: "drills"}
_DOMAIN = b"vo2dr-record/1\n"
_KEY = re.compile(
    r"^reports/(?P<environment>[a-z0-9-]+)/(?P<dir>attempts|drills)/"
    r"(?P<timestamp>\d{8}T\d{6}Z)-(?:(?P<data_class>[a-z0-9_-]+)-)?(?P<id>[0-9a-f]{12})\.json$")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_PASSWORD = re.compile(r"(password|passwd|pwd|secret|token)=\S+", re.IGNORECASE)


def scrub(text: str) -> str:
    """One line, with credentials in URLs and ``password=...`` pairs masked: reasons come from
    exceptions, and a driver may quote a connection string."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", one_line(text, 400))
    return _PASSWORD.sub(r"\1=***", text)


def prefix(environment: str, kind: str | None = None) -> str:
    return f"reports/{environment}/" + (f"{KINDS[kind]}/" if kind else "")


def record_key(environment: str, kind: str, when: datetime, data_class: str = "",
               record_id: str | None = None) -> str:
    rid = record_id or secrets.token_hex(6)
    middle = f"{data_class}-" if kind == ATTEMPT else ""
    return f"{prefix(environment, kind)}{format_timestamp(when)}-{middle}{rid}.json"


def parse_record_key(key: str) -> tuple[str, str, datetime] | None:
    """``(environment, kind, time)`` for a record key, ``None`` for anything else."""
    m = _KEY.match(key)
    if m is None:
        return None
    kind = ATTEMPT if m["dir"] == "attempts" else DRILL
    if (kind == ATTEMPT) != bool(m["data_class"]):
        return None
    return m["environment"], kind, parse_timestamp(m["timestamp"])


def _payload(doc: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in doc.items() if k != "signature"}
    return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                ensure_ascii=True).encode()


def make_record(kind: str, environment: str, when: datetime, body: Mapping[str, Any],
                signer: Signer | None) -> dict[str, Any]:
    """The record document; signed when a signer is given (unsigned ones are shown, never
    counted, by the report)."""
    doc: dict[str, Any] = {"format": FORMAT, "kind": kind, "environment": environment,
                           "at": when.astimezone(UTC).replace(microsecond=0).isoformat()
                           .replace("+00:00", "Z"),
                           "body": dict(body)}
    if signer is not None:
        sig = sign_payload(signer, _payload(doc))
        doc["signature"] = {"key_id": sig.key_id, "signer": sig.signer, "value": sig.value,
                            "algorithm": sig.algorithm}
    return doc


def write_record(stores: Mapping[str, BackupStore], key: str,
                 doc: Mapping[str, Any]) -> dict[str, str]:
    """Write ``doc`` under ``key`` into every store (write-once; the store's default lock
    applies). ``{store: "written" | "failed: <why>"}``; never raises for a store."""
    data = json.dumps(doc, indent=1, sort_keys=True).encode()
    out: dict[str, str] = {}
    for name, store in stores.items():
        try:
            store.put_bytes(key, data, metadata={"kind": f"{doc['kind']}_record"})
            out[name] = "written"
        except Vo2drError as exc:
            out[name] = f"failed: {scrub(str(exc))}"
            log.error("cannot write the %s record %s to %s: %s", doc["kind"], key, name, exc)
    return out


@dataclass
class Record:
    """One record as read back: ``trust`` is ``valid``, ``unsigned`` or ``invalid``."""

    key: str
    kind: str
    at: datetime
    body: dict[str, Any]
    trust: str
    reason: str = ""
    stores: list[str] = field(default_factory=list)  # the stores that list the key
    digest: str = ""  # SHA-256 of the signed payload: one event copied under two keys is one

    @property
    def valid(self) -> bool:
        return self.trust == "valid"


def check_record(key: str, data: bytes, trusted: TrustedKeys) -> Record:
    """Parse and authenticate one record; never raises (a bad record is returned as invalid)."""
    parsed = parse_record_key(key)
    kind, at = (parsed[1], parsed[2]) if parsed else ("unknown", datetime.min.replace(tzinfo=UTC))
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        body = doc.get("body")
        if not isinstance(body, dict):
            raise ValueError("no body")
    except ValueError as exc:
        return Record(key, kind, at, {}, "invalid", f"unreadable: {one_line(exc)}")
    # The key's kind, time and environment must be what the signed document says: a valid
    # record copied to another key cannot move in time, change kind or pass for production's.
    env = parsed[0] if parsed else ""
    if doc.get("kind") != kind or doc.get("at") != at.isoformat().replace("+00:00", "Z") \
            or doc.get("environment") != env:
        return Record(key, kind, at, body, "invalid", "the key does not match the record")
    sig = doc.get("signature")
    if sig is None:
        return Record(key, kind, at, body, "unsigned", "unsigned: not proven to be ours")
    try:
        trusted.check(_payload(doc), Signature(**sig), f"record {key}")
    except (SignatureError, TypeError) as exc:
        return Record(key, kind, at, body, "invalid", one_line(exc))
    return Record(key, kind, at, body, "valid", digest=hashlib.sha256(_payload(doc)).hexdigest())


Progress = Callable[[str], None]


def read_records(stores: Mapping[str, BackupStore], environment: str, trusted: TrustedKeys,
                 *, since: datetime | None = None, progress: Progress | None = None,
                 workers: int = 16) -> tuple[list[Record], dict[str, str]]:
    """Every record of ``environment`` (from ``since``), merged across stores by key: listed
    everywhere, read from the first store holding it, and from the next one when that copy is
    not valid. Returns (records oldest first, {store: why it could not be listed})."""
    where: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for name, store in stores.items():
        try:
            n = 0
            for info in store.list(prefix(environment)):
                parsed = parse_record_key(info.key)
                if parsed is None or (since is not None and parsed[2] < since):
                    continue
                where.setdefault(info.key, []).append(name)
                n += 1
            if progress:
                progress(f"listed {n} records in {name}")
        except StoreError as exc:
            errors[name] = str(exc)
            if progress:
                progress(f"cannot list {name}: {one_line(exc)}")

    def fetch(key: str) -> Record:
        best: Record | None = None
        for name in where[key]:
            try:
                rec = check_record(key, stores[name].get_bytes(key), trusted)
            except StoreError as exc:
                rec = Record(key, "unknown", datetime.min.replace(tzinfo=UTC), {}, "invalid",
                             f"unreadable in {name}: {one_line(exc)}")
            if best is None or (rec.valid and not best.valid):
                best = rec
            if rec.valid:
                break
        assert best is not None
        best.stores = list(where[key])
        return best

    keys = sorted(where)
    out: list[Record] = []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys) or 1))) as pool:
        for i, rec in enumerate(pool.map(fetch, keys), 1):
            out.append(rec)
            if progress and (i % 500 == 0 or i == len(keys)):
                progress(f"read {i}/{len(keys)} records")
    out.sort(key=lambda r: (r.at, r.key))
    return out, errors


# -- what the job writes ------------------------------------------------------------------------

def attempt_body(data_class: str, source: str, started: datetime, seconds: float, *,
                 summary: Any = None, error: BaseException | None = None) -> dict[str, Any]:
    """A backup attempt: its outcome (``complete`` everywhere, ``partial`` or ``failed``), the
    stores that hold a complete copy, sizes and time. Taken from the backup's summary when it
    ran, from the error when it failed before any manifest existed."""
    body: dict[str, Any] = {"data_class": data_class, "source": source,
                            "started_at": started.astimezone(UTC).isoformat()
                            .replace("+00:00", "Z"), "seconds": round(seconds, 3)}
    if summary is None:
        return {**body, "outcome": "failed", "backup_id": "", "tier": "",
                "reason": scrub(f"{type(error).__name__}: {error}") if error else "failed",
                "stores": {}, "plaintext_bytes": 0, "ciphertext_bytes": 0}
    stores = {n: "complete" if d.status == "verified" else
              f"failed: {scrub(d.error or d.manifest or 'not verified')}"
              for n, d in summary.destinations.items()}
    complete = [n for n, s in stores.items() if s == "complete"]
    outcome = ("complete" if summary.ok else "partial" if complete else "failed")
    return {**body, "outcome": outcome, "backup_id": summary.backup_id, "tier": summary.tier,
            "reason": scrub(summary.error) if summary.error else "", "stores": stores,
            "plaintext_bytes": int(summary.plaintext.get("bytes", 0)),
            "ciphertext_bytes": int(summary.ciphertext.get("bytes", 0))}


def record_attempt(stores: Mapping[str, BackupStore], environment: str, signer: Signer | None,
                   body: Mapping[str, Any], when: datetime) -> dict[str, str]:
    """Sign and write one attempt record into every store; never raises (a backup's outcome
    does not depend on its record, but a record that cannot be written is logged)."""
    try:
        doc = make_record(ATTEMPT, environment, when, body, signer)
    except Vo2drError as exc:  # the signer failed now: keep the record, unsigned
        log.error("cannot sign the attempt record: %s", exc)
        doc = make_record(ATTEMPT, environment, when, body, None)
    key = record_key(environment, ATTEMPT, when, str(body["data_class"]))
    return write_record(stores, key, doc)


def drill_body(report: Any) -> dict[str, Any]:
    """A drill's result per class: the backup drilled and its store, the restore time against
    the RTO, the rows and sanity queries checked, pass or fail with the reasons. The sanity
    queries are the stack's own SQL (no secret); results are kept as booleans."""
    classes = []
    for c in report.classes:
        classes.append({
            "data_class": c.data_class, "ok": c.ok, "backup_id": c.backup_id,
            "backup_time": c.backup_time, "store": c.source,
            "restore_seconds": c.restore_seconds, "rto_seconds": c.rto_seconds,
            "within_rto": c.within_rto,
            "tables": {t: {"manifest": v.get("manifest"), "restored": v.get("restored")}
                       for t, v in c.tables.items()},
            "rows_checked": sum(int(v.get("restored") or 0) for v in c.tables.values()),
            "sanity": [{"query": s.get("query", ""), "ok": bool(s.get("ok"))}
                       for s in c.sanity],
            "reasons": [scrub(e) for e in c.errors],
            "source_server_version": c.source_server_version,
            "scratch_server_version": c.scratch_server_version})
    sources = [{"source": getattr(s, "source", ""), "ok": bool(getattr(s, "ok", False)),
                "reasons": [scrub(e) for e in getattr(s, "errors", [])]}
               for s in report.sources]
    return {"ok": report.ok, "started_at": report.started_at, "seconds": report.seconds,
            "classes": classes, "sources": sources}


def record_drill(stores: Mapping[str, BackupStore], environment: str, signer: Signer | None,
                 report: Any) -> dict[str, str]:
    """Sign and write the drill's record into every store; never raises."""
    when = datetime.fromisoformat(report.started_at.replace("Z", "+00:00"))
    body = drill_body(report)
    try:
        doc = make_record(DRILL, environment, when, body, signer)
    except Vo2drError as exc:
        log.error("cannot sign the drill record: %s", exc)
        doc = make_record(DRILL, environment, when, body, None)
    return write_record(stores, record_key(environment, DRILL, when), doc)
