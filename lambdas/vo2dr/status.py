"""Backup status: is every data class fresh enough in every store (RPO), and do the stores hold
the same bytes for the same backup (replica agreement)?

**Freshness.** For each data class and each enabled store, the age of the newest *complete*
backup (body and manifest) is ``now`` minus the backup's timestamp, which is the moment its
snapshot was taken, so the age is exactly the data that would be lost. It breaches when it
exceeds the RPO plus a grace (a backup scheduled every RPO minutes is, just before the next
one lands, RPO plus one run's duration old). The grace defaults to 10 % of the RPO, at least
60 s; ``--grace-seconds`` sets it.

**Authenticity and agreement across stores.** For the newest backup(s) of each class, and every
backup newer than the newest one held by two stores, every store's copy is checked: its manifest
must be signed by a trusted key (offline, :mod:`vo2dr.signing`; an unsigned or wrongly signed
manifest is a breach at once), the signed manifests must be the same in every store, and every
enabled store that can be listed must hold a complete copy once the backup has been finished
for :data:`REPLICA_GRACE_SECONDS` (a backup missing from a store, or held by one store only, is a
breach). The store's own checksum
and size of the body must still be what the store reported when the backup job verified the
upload (recorded per destination in the manifest). That costs two small requests per copy and
no download. ``deep=True`` (``--deep``) also streams every copy and compares its actual
SHA-256.

**Alerts.** A Slack-compatible webhook is called only when the set of breaches changes for the
worse (a new breach) or clears (a recovery), never for an unchanged state. The previous state
is kept in a state file locally, and in the cloud in small write-once objects
``status/<environment>/<YYYYMMDD>/<timestamp>.json`` in the first store that accepts them
(object lock allows no overwrite; the newest object of today or yesterday is the previous state;
a lifecycle rule on the ``status/`` prefix expires them). A state is only saved once its alert
was delivered, so a failed webhook is retried on the next run.

Time is always injected (``now``); nothing here sleeps.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from vo2dr.catalog import Catalog, CatalogEntry, build_catalog
from vo2dr.exceptions import AccessDenied, IntegrityError, ObjectExists, StoreError, Vo2drError
from vo2dr.layout import format_timestamp
from vo2dr.manifest import Manifest
from vo2dr.signing import SignatureError
from vo2dr.stores.base import BackupStore
from vo2dr.strategy import DataClass, Strategy
from vo2dr.trust import Trust
from vo2dr.verify import load_manifest

# The metric contract with the alarms in infra/aws/alerts.py: namespace and the single
# dimension DataClass (an alarm matches one exact dimension set).
METRIC_NAMESPACE = "vo2dr"
STATE_PREFIX = "status/"
WEBHOOK_TIMEOUT = 10
# How long after a backup finished its copies may still be missing from a store: the job writes
# the manifests one store after the other within seconds, so this is not a strategy number but
# a margin for one slow manifest write.
REPLICA_GRACE_SECONDS = 300


def default_grace_seconds(rpo_seconds: int) -> int:
    return max(60, rpo_seconds // 10)


@dataclass
class StoreFreshness:
    store: str
    ok: bool
    newest_backup_id: str | None = None
    newest_time: str | None = None
    age_seconds: int | None = None
    reason: str = ""


@dataclass
class ClassStatus:
    data_class: str
    rpo_seconds: int
    grace_seconds: int
    ok: bool
    worst_age_seconds: int | None
    stores: dict[str, StoreFreshness] = field(default_factory=dict)


@dataclass
class ReplicaCheck:
    backup_id: str
    data_class: str
    agree: bool
    copies: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    source_server_version: str = ""  # the backed-up server's, from the manifest
    unsigned: list[str] = field(default_factory=list)  # "<store>: <why the signature fails>"
    authentic_in: list[str] = field(default_factory=list)


@dataclass
class StatusReport:
    environment: str
    checked_at: str
    ok: bool
    classes: dict[str, ClassStatus]
    replicas: list[ReplicaCheck]
    replica_mismatches: int
    store_errors: dict[str, str]
    breaches: list[str]  # stable keys, for the alert state
    messages: list[str]  # one line per breach
    alert: dict[str, Any] = field(default_factory=dict)
    # The drill's scratch server (VO2DR_DRILL_DATABASE_URL), when that setting is given.
    drill_server_version: str = ""
    drill_server_error: str = ""
    # The application sources (code, config): freshness against their class's RPO.
    sources: dict[str, ClassStatus] = field(default_factory=dict)
    # Observations that are no breach, one line each (e.g. the newest config backup was taken
    # without the app's secrets: vo2dr.sources.secrets_status), and that check per store.
    notes: list[str] = field(default_factory=list)
    config_secrets: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the checks ---------------------------------------------------------------------------------

def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def freshness(catalog: Catalog, dc: DataClass, now: datetime,
              grace_seconds: int | None = None) -> ClassStatus:
    grace = default_grace_seconds(dc.rpo_seconds) if grace_seconds is None else grace_seconds
    limit = dc.rpo_seconds + grace
    status = ClassStatus(data_class=dc.name, rpo_seconds=dc.rpo_seconds, grace_seconds=grace,
                         ok=True, worst_age_seconds=None)
    entries = catalog.for_class(dc.name)
    worst: int | None = None
    for store in catalog.stores:
        if store in catalog.errors:
            status.stores[store] = StoreFreshness(store, ok=False,
                                                  reason=f"cannot list: {catalog.errors[store]}")
            status.ok = False
            continue
        complete = [e for e in entries if e.complete_in(store)]
        if not complete:
            status.stores[store] = StoreFreshness(store, ok=False,
                                                  reason="no complete backup")
            status.ok = False
            continue
        newest = max(complete, key=lambda e: (e.timestamp, e.backup_id))
        age = int((now - newest.timestamp).total_seconds())
        ok = age <= limit
        status.stores[store] = StoreFreshness(
            store, ok=ok, newest_backup_id=newest.backup_id, newest_time=_iso(newest.timestamp),
            age_seconds=age,
            reason="" if ok else (f"newest complete backup is {_human(age)} old, over the RPO "
                                  f"of {_human(dc.rpo_seconds)} (+{_human(grace)} grace)"))
        status.ok = status.ok and ok
        worst = age if worst is None else max(worst, age)
    status.worst_age_seconds = worst
    return status


def _read_manifest(store: BackupStore, entry: CatalogEntry, trust: Trust) -> Manifest:
    return load_manifest(store, entry, trust)


def _stream_sha256(store: BackupStore, key: str) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for chunk in store.get_stream(key):
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


def check_replicas(entry: CatalogEntry, stores: Mapping[str, BackupStore],
                   order: tuple[str, ...], deep: bool = False, *,
                   trust: Trust) -> ReplicaCheck:
    """Are the complete copies of ``entry`` authentic, and do they agree? (See the module
    docstring.)"""
    check = ReplicaCheck(backup_id=entry.backup_id, data_class=entry.data_class, agree=True)
    claimed: dict[str, str] = {}
    payloads: dict[str, bytes] = {}
    for name in order:
        if name not in stores:
            continue
        if not entry.complete_in(name):
            check.missing.append(name)
            continue
        store = stores[name]
        copy: dict[str, Any] = {}
        check.copies[name] = copy
        try:
            manifest = _read_manifest(store, entry, trust)
        except SignatureError as exc:
            check.unsigned.append(f"{name}: {exc}")
            continue
        except (StoreError, IntegrityError) as exc:
            check.problems.append(f"{name}: cannot read the manifest: {exc}")
            continue
        listed = entry.copies[name].body
        size = listed.size if listed is not None else -1
        checksum = ""
        try:
            # HEAD of the body: its size and the store's own checksum. A monitor identity
            # allowed to read manifests only gets AccessDenied: the listing's size and the
            # manifests' agreement are then what is checked.
            info = store.stat(entry.ref.body_key)
            size, checksum = info.size, info.checksum
        except AccessDenied:
            checksum = "(not permitted)"
        except StoreError as exc:
            check.problems.append(f"{name}: cannot read {entry.ref.body_key}: {exc}")
            continue
        dest = manifest.destinations.get(name)
        check.source_server_version = check.source_server_version or manifest.server_version
        copy.update(manifest_sha256=manifest.ciphertext.sha256, bytes=size,
                    store_checksum=checksum,
                    recorded_checksum=dest.store_checksum if dest else "")
        claimed[name] = manifest.ciphertext.sha256
        payloads[name] = manifest.signed_payload()
        if size != manifest.ciphertext.bytes:
            check.problems.append(f"{name}: {entry.ref.body_key} is {size} bytes, the "
                                  f"manifest says {manifest.ciphertext.bytes}")
        if dest is not None and dest.store_checksum and checksum.startswith(
                ("sha256:", "crc32c:", "md5:")) and dest.store_checksum != checksum:
            check.problems.append(
                f"{name}: {entry.ref.body_key} changed since it was verified: the store reports "
                f"{checksum}, at upload it reported {dest.store_checksum}")
        if deep:
            try:
                _, sha = _stream_sha256(store, entry.ref.body_key)
            except (StoreError, IntegrityError) as exc:
                check.problems.append(f"{name}: reading {entry.ref.body_key} failed: {exc}")
                continue
            copy["sha256"] = sha
            if sha != manifest.ciphertext.sha256:
                check.problems.append(f"{name}: {entry.ref.body_key} has SHA-256 {sha}, the "
                                      f"manifest says {manifest.ciphertext.sha256}")
    if len(set(claimed.values())) > 1:
        shas = ", ".join(f"{k}={v[:16]}…" for k, v in claimed.items())
        check.problems.append(f"the stores' manifests disagree on the SHA-256: {shas}")
    elif len(set(payloads.values())) > 1:
        check.problems.append("the stores' signed manifests differ: "
                              + ", ".join(f"{k}" for k in payloads))
    check.authentic_in = list(payloads)
    check.agree = not check.problems and not check.unsigned
    return check


def _to_check(entries: list[CatalogEntry], order: tuple[str, ...],
              check_last: int) -> list[CatalogEntry]:
    """The backups whose copies status reads: the newest ``check_last`` complete anywhere, and
    every backup newer than the newest complete in two stores (an attacker's copy planted in
    one store to become "latest" is among these; older lone copies can never be chosen)."""
    complete = sorted((e for e in entries if e.complete_stores(order)),
                      key=lambda e: (e.timestamp, e.backup_id))
    chosen = complete[-check_last:] if check_last > 0 else []
    agreed = [e for e in complete if len(e.complete_stores(order)) >= 2]
    if agreed:
        newest = (agreed[-1].timestamp, agreed[-1].backup_id)
        chosen += [e for e in complete if (e.timestamp, e.backup_id) > newest]
    elif len(order) >= 2:
        chosen += complete
    return sorted({e.backup_id: e for e in chosen}.values(),
                  key=lambda e: (e.timestamp, e.backup_id))


def _finished(entry: CatalogEntry, stores: Mapping[str, BackupStore], trust: Trust,
              names: list[str]) -> datetime:
    """When the backup finished, from an authentic manifest (else its start time)."""
    for name in names:
        try:
            manifest = load_manifest(stores[name], entry, trust)
            return datetime.fromisoformat(manifest.finished_at).astimezone(UTC)
        except (Vo2drError, ValueError):
            continue
    return entry.timestamp


class _ReadOnce:
    """A store as one status run reads it: each object's bytes are fetched once. The same
    manifest is read by the replica check, again to date a copy that is late, and the newest
    config manifest also by the config secrets' walk (vo2dr.sources.secrets_status); manifests
    are write-once, so a second read within the run could only repeat the first. A failed read
    is not remembered. Everything else goes to the store itself."""

    def __init__(self, store: BackupStore) -> None:
        self._store = store
        self._read: dict[str, bytes] = {}

    def get_bytes(self, key: str) -> bytes:
        if key not in self._read:
            self._read[key] = self._store.get_bytes(key)
        return self._read[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def read_once(stores: Mapping[str, BackupStore]) -> Mapping[str, BackupStore]:
    """``stores`` with each object read at most once (:class:`_ReadOnce`)."""
    return {name: cast(BackupStore, store if isinstance(store, _ReadOnce) else _ReadOnce(store))
            for name, store in stores.items()}


def compute_status(strategy: Strategy, stores: Mapping[str, BackupStore], environment: str,
                   now: datetime, *, trust: Trust, check_last: int = 1, deep: bool = False,
                   grace_seconds: int | None = None,
                   replica_grace_seconds: int = REPLICA_GRACE_SECONDS,
                   catalog: Catalog | None = None) -> StatusReport:
    """The whole status at ``now`` (a timezone-aware datetime). ``trust`` holds the signing
    public keys a manifest must be signed by."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    catalog = catalog or build_catalog(stores, environment)
    stores = read_once(stores)
    order = tuple(catalog.stores)
    classes: dict[str, ClassStatus] = {}
    replicas: list[ReplicaCheck] = []
    breaches: list[str] = []
    messages: list[str] = []
    for name, dc in strategy.database_classes.items():
        cs = freshness(catalog, dc, now, grace_seconds)
        classes[name] = cs
        for store, f in cs.stores.items():
            if not f.ok:
                breaches.append(f"rpo:{name}:{store}")
                messages.append(f"{name} in {store}: {f.reason}")
        listable = {k: v for k, v in stores.items() if k not in catalog.errors}
        for entry in _to_check(catalog.for_class(name), order, check_last):
            rc = check_replicas(entry, listable, order, deep, trust=trust)
            replicas.append(rc)
            if rc.problems:
                breaches.append(f"replica:{name}:{entry.backup_id}")
                messages.extend(f"{name} backup {entry.backup_id}: {p}" for p in rc.problems)
            if rc.unsigned:
                breaches.append(f"unsigned:{name}:{entry.backup_id}")
                messages.extend(f"{name} backup {entry.backup_id}: {p}" for p in rc.unsigned)
            missing = [n for n in order if n in listable and not entry.complete_in(n)]
            if not missing:
                continue
            finished = _finished(entry, listable, trust, rc.authentic_in)
            late = (now - finished).total_seconds() > replica_grace_seconds
            if late:
                rc.agree = False
                held = entry.complete_stores(order)
                states = ", ".join(
                    f"{n} ({entry.copies[n].state if n in entry.copies else 'missing'})"
                    for n in missing)
                only = f"; it exists in {held[0]} only" if len(held) == 1 else ""
                breaches.append(f"copies:{name}:{entry.backup_id}")
                messages.append(f"{name} backup {entry.backup_id} is missing from {states} "
                                f"{_human(int((now - finished).total_seconds()))} after it "
                                f"finished{only}")
    mismatches = sum(1 for r in replicas if not r.agree)
    report = StatusReport(environment=environment, checked_at=_iso(now), ok=not breaches,
                          classes=classes, replicas=replicas, replica_mismatches=mismatches,
                          store_errors=dict(catalog.errors), breaches=sorted(set(breaches)),
                          messages=messages)
    from vo2dr.sources.status import add_source_status

    add_source_status(report, strategy, stores, environment, now, deep=deep,
                      grace_seconds=grace_seconds, trust=trust)
    return report


def check_drill_server(report: StatusReport, drill_server_version: str) -> None:
    """Record the drill's scratch server version next to each newest backup's source version,
    and a breach for every class whose backup that server would refuse (older than the source:
    see :mod:`vo2dr.pgcompat`), before a drill or a restore there fails on it."""
    from vo2dr.exceptions import RestoreError
    from vo2dr.pgcompat import check_restorable

    report.drill_server_version = drill_server_version
    for rc in report.replicas:
        if not rc.source_server_version:
            continue
        try:
            check_restorable(rc.source_server_version, drill_server_version)
        except RestoreError as exc:
            report.breaches = sorted({*report.breaches, f"drill-server:{rc.data_class}"})
            report.messages.append(f"{rc.data_class} backup {rc.backup_id}: the drill server "
                                   f"cannot take it: {exc}")
            report.ok = False


def drill_server_version(settings) -> tuple[str, str]:
    """``(server_version, "")`` of the drill server, or ``("", error)``: status reports an
    unreachable drill server, it does not fail on it."""
    from vo2dr.pgcompat import server_version
    from vo2dr.pgtools import split_password

    try:
        conninfo, password = split_password(settings.drill_database_url)
        return server_version(conninfo, password)[0], ""
    except Vo2drError as exc:
        return "", str(exc)


def add_drill_server(report: StatusReport, settings) -> None:
    """:func:`check_drill_server` when ``VO2DR_DRILL_DATABASE_URL`` is set."""
    if not getattr(settings, "drill_database_url", ""):
        return
    version, error = drill_server_version(settings)
    if version:
        check_drill_server(report, version)
    else:
        report.drill_server_error = error


# -- alert state --------------------------------------------------------------------------------

def alert_kind(previous: set[str] | None, current: set[str]) -> str | None:
    """``"breach"`` when a breach is new, ``"recovery"`` when all cleared, else ``None``."""
    before = previous or set()
    if current - before:
        return "breach"
    if before and not current:
        return "recovery"
    return None


def slack_message(report: StatusReport, kind: str, previous: set[str] | None) -> dict[str, Any]:
    env = report.environment
    if kind == "recovery":
        cleared = ", ".join(sorted(previous or ())) or "all"
        text = (f":white_check_mark: vo2dr {env}: backups recovered at {report.checked_at}; "
                f"every data class is within its RPO and all stores agree (cleared: {cleared})")
    else:
        new = sorted(set(report.breaches) - (previous or set()))
        lines = "\n".join(f"• {m}" for m in report.messages[:20])
        text = (f":rotating_light: vo2dr {env}: backup breach at {report.checked_at} "
                f"(new: {', '.join(new)})\n{lines}\n"
                f"Runbook: docs/runbooks/ — run `vo2dr status` and `vo2dr list` to investigate.")
    return {"text": text}


def post_webhook(url: str, payload: dict[str, Any], timeout: float = WEBHOOK_TIMEOUT) -> None:
    if not url.startswith(("https://", "http://")):
        raise Vo2drError("the alert webhook must be an http(s) URL")
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",  # noqa: S310
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - checked above
            if resp.status >= 300:
                raise Vo2drError(f"alert webhook answered HTTP {resp.status}")
    except (urllib.error.URLError, OSError) as exc:
        raise Vo2drError(f"alert webhook failed: {exc}") from exc


class FileState:
    """The previous breaches in a local JSON file (the CLI)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> set[str] | None:
        try:
            return set(json.loads(self.path.read_text())["breaches"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Vo2drError(f"cannot read the status state file {self.path}: {exc}") from exc

    def save(self, report: StatusReport) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"checked_at": report.checked_at,
                                   "breaches": report.breaches}))
        tmp.replace(self.path)


class StoreState:
    """The previous breaches as write-once objects ``status/<env>/<YYYYMMDD>/<ts>.json``."""

    def __init__(self, store: BackupStore, environment: str, now: datetime) -> None:
        self.store = store
        self.environment = environment
        self.now = now.astimezone(UTC)

    def _prefix(self, day: datetime) -> str:
        return f"{STATE_PREFIX}{self.environment}/{day:%Y%m%d}/"

    def load(self) -> set[str] | None:
        for day in (self.now, self.now - timedelta(days=1)):
            keys = [i.key for i in self.store.list(self._prefix(day)) if i.key.endswith(".json")]
            if keys:
                raw = json.loads(self.store.get_bytes(max(keys)))
                return set(raw.get("breaches", []))
        return None

    def save(self, report: StatusReport) -> None:
        key = f"{self._prefix(self.now)}{format_timestamp(self.now)}.json"
        body = json.dumps({"checked_at": report.checked_at, "breaches": report.breaches,
                           "ok": report.ok}).encode()
        # Two runs in the same second: the first one's state stands.
        with contextlib.suppress(ObjectExists):
            self.store.put_bytes(key, body, metadata={"vo2dr_kind": "status"})


def notify(report: StatusReport, state, webhook: str | None, *, send=post_webhook) -> None:
    """Alert on a breach or a recovery (not on an unchanged state), then remember the state.
    Fills ``report.alert``. A failed webhook leaves the state unsaved, so it is retried."""
    previous = state.load() if state is not None else None
    kind = alert_kind(previous, set(report.breaches))
    report.alert = {"kind": kind, "previous_breaches": sorted(previous or ()), "sent": False}
    if kind and webhook:
        try:
            send(webhook, slack_message(report, kind, previous))
            report.alert["sent"] = True
        except Vo2drError as exc:
            report.alert["error"] = str(exc)
            return
    if state is not None:
        state.save(report)


# -- CloudWatch embedded metric format -------------------------------------------------------

def emf_documents(report: StatusReport, namespace: str = METRIC_NAMESPACE,
                  timestamp_ms: int | None = None) -> list[dict[str, Any]]:
    """EMF JSON documents (print one per line in Lambda; CloudWatch turns them into metrics):

    * per data class, dimension ``DataClass`` (what the alarms watch): ``BackupAgeSeconds``,
      the age of the *stalest* store's newest complete backup, so the RPO alarm fires when any
      store falls behind; and ``ReplicaMismatch``, the number of checked backups whose copies
      disagree;
    * per data class and store, dimensions ``DataClass, Store``: that store's age (dashboards);
    * per application source (code, config, assets, logs), dimension ``Source``:
      ``BackupAgeSeconds`` as for a class (the source's own alarm; a source's age never mixes
      with its class's, which is the database's);
    * with no dimension: ``ReplicaMismatch`` and ``StatusBreaches`` in total.

    A class without a complete backup in some store emits no ``BackupAgeSeconds``: the alarm
    treats missing data as breaching. ``Environment`` is a property of every document (each
    environment has its own account, so it is not a dimension of the alarms)."""
    ts = timestamp_ms if timestamp_ms is not None else int(
        datetime.fromisoformat(report.checked_at.replace("Z", "+00:00")).timestamp() * 1000)

    def doc(dims: dict[str, str], metrics: dict[str, tuple[float, str]]) -> dict[str, Any]:
        return {
            "_aws": {"Timestamp": ts, "CloudWatchMetrics": [{
                "Namespace": namespace, "Dimensions": [list(dims)],
                "Metrics": [{"Name": k, "Unit": unit} for k, (_, unit) in metrics.items()]}]},
            "Environment": report.environment, **dims,
            **{k: v for k, (v, _) in metrics.items()},
        }

    def age_everywhere(cs: ClassStatus) -> float | None:
        # None unless every store has a complete backup: the alarm treats missing as breaching.
        if all(s.age_seconds is not None for s in cs.stores.values()):
            return cs.worst_age_seconds
        return None

    out = []
    for name, cs in report.classes.items():
        mismatches = sum(1 for r in report.replicas if r.data_class == name and not r.agree)
        metrics: dict[str, tuple[float, str]] = {"ReplicaMismatch": (mismatches, "Count")}
        if (age := age_everywhere(cs)) is not None:
            metrics["BackupAgeSeconds"] = (age, "Seconds")
        out.append(doc({"DataClass": name}, metrics))
        for store, f in cs.stores.items():
            if f.age_seconds is not None:
                out.append(doc({"DataClass": name, "Store": store},
                               {"BackupAgeSeconds": (f.age_seconds, "Seconds")}))
    for kind, cs in report.sources.items():
        if (age := age_everywhere(cs)) is not None:
            out.append(doc({"Source": kind}, {"BackupAgeSeconds": (age, "Seconds")}))
    out.append(doc({}, {"ReplicaMismatch": (report.replica_mismatches, "Count"),
                        "StatusBreaches": (len(report.breaches), "Count")}))
    return out


def _human(seconds: int) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


human_duration = _human


# -- the scheduled job (Lambda) -----------------------------------------------------------------

def open_stores_tolerant(settings) -> tuple[dict[str, BackupStore], dict[str, str]]:
    """Every enabled store that can be opened, for reading; the others with the reason (a
    store whose credentials are missing is a breach to report, not a crash of the check)."""
    from vo2dr.stores import Access, open_stores

    opened = open_stores(settings, Access.READ, tolerant=True)
    return dict(opened), opened.errors


def run_status_job(settings, now: datetime, *, webhook: str | None,
                   emit=print, log=None) -> StatusReport:
    """The status check as the Lambda runs it: compute, alert on change (the state kept as
    write-once objects under ``status/<environment>/`` in the first store that opened), and
    emit the EMF metrics, one JSON document per line through ``emit``."""
    settings.require("environment")
    strategy = settings.strategy()
    stores, open_errors = open_stores_tolerant(settings)
    trust = Trust.from_settings(settings)  # before any network call
    catalog = build_catalog(stores, settings.environment)
    catalog.errors.update(open_errors)
    catalog.stores = tuple(n for n in settings.enabled_stores)
    report = compute_status(strategy, stores, settings.environment, now, catalog=catalog,
                            trust=trust)
    add_drill_server(report, settings)
    state = _TolerantState(StoreState(next(iter(stores.values())), settings.environment, now),
                           log) if stores else None
    notify(report, state, webhook)
    for doc in emf_documents(report):
        emit(json.dumps(doc, separators=(",", ":")))
    return report


class _TolerantState:
    """A state that cannot be read or written (e.g. the identity may not write ``status/``)
    degrades to "no previous state": breaches are then alerted on every run rather than lost."""

    def __init__(self, inner: StoreState, log) -> None:
        self.inner, self.log = inner, log

    def load(self) -> set[str] | None:
        try:
            return self.inner.load()
        except (StoreError, ValueError) as exc:
            if self.log is not None:
                self.log.warning("cannot read the status state: %s", exc)
            return None

    def save(self, report: StatusReport) -> None:
        try:
            self.inner.save(report)
        except StoreError as exc:
            if self.log is not None:
                self.log.warning("cannot save the status state: %s", exc)
