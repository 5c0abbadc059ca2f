"""A synthetic 90-day history for the report's tests (tests/unit/test_report_*.py and the
browser test): every number in it is chosen so the report's results can be computed by hand.

Period: 2026-06-01T00:00Z to 2026-08-30T00:00Z (90 days), the staging stack's strategy
(critical every 15 min, important hourly, full daily at 02:00; status every 15 min at +5).

* every scheduled backup starts 30 s (critical), 60 s (important, full) after its window opens
  and is complete in s3, gcs and azure, except:
* critical 2026-07-10 10:00 failed (a failed-attempt record, no manifest); 10:15 and 10:30 were
  never attempted: 3 missed windows;
* important 2026-08-01 05:00 never attempted: 1 missed window;
* full 2026-06-15 failed: 1 missed window;
* gcs was down all of 2026-07-20: every backup that day is complete in s3 and azure only, and
  its record is missing from gcs;
* the full dump grows 5 MB a day from 1 GB on 2026-06-01 at 2 MB/s (so it stops fitting a
  900 s Lambda at 1.8 GB: 160 days after 2026-06-01T02:01Z = 2026-11-08T02:01Z); encrypted
  size is 30 % of it;
* drills: 2026-06-01 09:00 (every class at half its RTO) and 2026-08-03 09:00 (critical 70 min
  of 60 failed, important 200 of 240 min, full 250 of 240 min failed); none in July;
* one forged record (signed by an untrusted key) claims critical 2026-07-10 10:15 succeeded,
  and one unsigned record claims 10:30 did: both must be shown and not counted.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from vo2dr import records
from vo2dr.layout import format_timestamp
from vo2dr.signing import LocalSigner

from tests import signing_keys
from tests.unit.recovery_memstore import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
ENV = "staging"
SINCE = datetime(2026, 6, 1, tzinfo=UTC)
UNTIL = datetime(2026, 8, 30, tzinfo=UTC)
SIGNER = LocalSigner(signing_keys.PRIVATE)
FOREIGN = LocalSigner(signing_keys.FOREIGN_PRIVATE)
STORES = ("s3", "gcs", "azure")
GCS_DOWN = (datetime(2026, 7, 20, tzinfo=UTC), datetime(2026, 7, 21, tzinfo=UTC))
CRITICAL_FAILED = datetime(2026, 7, 10, 10, 0, tzinfo=UTC)
CRITICAL_SKIPPED = (datetime(2026, 7, 10, 10, 15, tzinfo=UTC),
                    datetime(2026, 7, 10, 10, 30, tzinfo=UTC))
IMPORTANT_SKIPPED = datetime(2026, 8, 1, 5, 0, tzinfo=UTC)
FULL_FAILED = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)
FULL_BASE, FULL_PER_DAY, THROUGHPUT = 1_000_000_000, 5_000_000, 2_000_000


def _attempt(stores, when: datetime, data_class: str, *, ok: bool, size: int = 1000,
             seconds: float = 10.0, signer=SIGNER, reason: str = "") -> None:
    down = GCS_DOWN[0] <= when < GCS_DOWN[1]
    holding = {s: ("failed: gcs: connection refused" if s == "gcs" and down else "complete")
               for s in STORES}
    body = {"data_class": data_class, "source": "database",
            "started_at": when.isoformat().replace("+00:00", "Z"), "seconds": seconds,
            "outcome": ("partial" if down else "complete") if ok else "failed",
            "backup_id": hashlib.sha256(f"{data_class}{when}".encode()).hexdigest()[:12]
            if ok else "",
            "tier": "daily" if ok else "", "reason": reason,
            "stores": holding if ok else {}, "plaintext_bytes": size if ok else 0,
            "ciphertext_bytes": int(size * 0.3) if ok else 0}
    doc = records.make_record(records.ATTEMPT, ENV, when, body, signer)
    key = records.record_key(ENV, records.ATTEMPT, when, data_class)
    records.write_record({n: s for n, s in stores.items() if not (n == "gcs" and down)}, key,
                         doc)


def _drill(stores, when: datetime, restore: dict[str, float], rto: dict[str, float]) -> None:
    classes = [SimpleNamespace(
        data_class=n, ok=restore[n] <= rto[n], backup_id="b" * 12, backup_time="",
        source="s3", restore_seconds=restore[n], rto_seconds=rto[n],
        within_rto=restore[n] <= rto[n],
        tables={"public.users": {"manifest": 100, "restored": 100}},
        sanity=[{"query": "SELECT true", "ok": True}],
        errors=[] if restore[n] <= rto[n] else
        [f"restore took {restore[n]:.1f}s, over the RTO of {rto[n]:.0f}s"],
        source_server_version="18.1", scratch_server_version="18.1") for n in restore]
    report = SimpleNamespace(ok=all(c.ok for c in classes),
                             started_at=when.isoformat().replace("+00:00", "Z"),
                             seconds=sum(restore.values()), classes=classes, sources=[])
    records.record_drill(stores, ENV, SIGNER, report)


def windows(step: timedelta, first: datetime, until: datetime):
    t = first
    while t < until:
        yield t
        t += step


def full_size(when: datetime) -> int:
    days = (when - (SINCE + timedelta(hours=2, minutes=1))).total_seconds() / 86400
    return round(FULL_BASE + FULL_PER_DAY * days)


def build_stores() -> dict[str, MemoryStore]:
    stores = {n: MemoryStore(n) for n in STORES}
    for start in windows(timedelta(minutes=15), SINCE, UNTIL):
        if start == CRITICAL_FAILED:
            _attempt(stores, start + timedelta(seconds=30), "critical", ok=False,
                     reason="DumpError: pg_dump failed (exit 1): connection lost")
        elif start not in CRITICAL_SKIPPED:
            _attempt(stores, start + timedelta(seconds=30), "critical", ok=True)
    for start in windows(timedelta(hours=1), SINCE, UNTIL):
        if start != IMPORTANT_SKIPPED:
            _attempt(stores, start + timedelta(seconds=60), "important", ok=True)
    for start in windows(timedelta(days=1), SINCE + timedelta(hours=2), UNTIL):
        when = start + timedelta(seconds=60)
        if start == FULL_FAILED:
            _attempt(stores, when, "full", ok=False, reason="EncryptionError: KMS AccessDenied")
        else:
            size = full_size(when)
            _attempt(stores, when, "full", ok=True, size=size, seconds=size / THROUGHPUT)
    rto = {"critical": 3600.0, "important": 14400.0, "full": 14400.0}
    _drill(stores, datetime(2026, 6, 1, 9, tzinfo=UTC), {k: v / 2 for k, v in rto.items()},
           rto)
    _drill(stores, datetime(2026, 8, 3, 9, tzinfo=UTC),
           {"critical": 4200.0, "important": 12000.0, "full": 15000.0}, rto)
    # The attacker's: a forged success and an unsigned one in missed windows.
    _attempt(stores, CRITICAL_SKIPPED[0] + timedelta(seconds=30), "critical", ok=True,
             signer=FOREIGN)
    _attempt(stores, CRITICAL_SKIPPED[1] + timedelta(seconds=30), "critical", ok=True,
             signer=None)
    return stores


def stack() -> dict:
    from vo2dr.strategy import read_stack_file

    # The synthetic history holds database attempts only: without the stack's application
    # sources (issue 16), whose windows it would otherwise count as missed.
    doc = dict(read_stack_file(ROOT / "Pulumi.staging.yaml"))
    doc.pop("application", None)
    return doc


def ts(when: datetime) -> str:
    return format_timestamp(when)


_BUILT: dict[str, MemoryStore] = {}


def shared_stores() -> dict[str, MemoryStore]:
    """:func:`build_stores` once per test session (signing about 11,000 records takes seconds):
    a private deep copy for each caller, so no caller sees another's writes."""
    if not _BUILT:
        _BUILT.update(build_stores())
    return copy.deepcopy(_BUILT)
