"""The backup job: one consistent dump, compressed and encrypted once, written to every enabled
store at once, verified, and only then made to count by writing its manifest.

Failure semantics (the manifest is what makes a backup count):

* the dump, the database connection or the encryption (e.g. a denied KMS key) fails: every
  upload is aborted and **no manifest is written anywhere**; :func:`run_backup` raises the
  :class:`~vo2dr.exceptions.Vo2drError` whose message is the one-line cause;
* one destination fails (or its copy does not match): the others still complete and get a
  manifest, which records every destination's status, including the failure. The summary's
  ``ok`` is false, so the CLI and the handlers exit or fail non-zero;
* every destination fails: no manifest anywhere, ``ok`` false.

A destination's manifest is written only after its body's size and SHA-256 were checked
against the pipeline's own, both from the store's upload result and from a fresh ``stat``.
It is signed (``VO2DR_SIGNING_KEY``, see :mod:`vo2dr.signing`) before it is written; the
signing key is checked against ``VO2DR_SIGNING_PUBLIC_KEYS`` before the dump starts, so a job
whose signatures no reader would trust fails at once instead of writing backups that never
count.

Without ``VO2DR_KMS_KEY_ID`` (the GCP standby, which has no AWS) the body is encrypted to the
offline recovery key only: the manifest's ``encryption.kms_key_arn`` is empty, and the summary
and the log carry a warning, since only the recovery private key can then decrypt it.

:func:`backup_if_missing` (``--if-missing``, the standby's mode) backs up only when no complete
backup of the class exists in the current schedule window (:func:`schedule_window`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vo2dr import aws, layout, startup
from vo2dr.archive import TocReader, sql_name
from vo2dr.crypto import Encryptor
from vo2dr.exceptions import AccessDenied, ConfigError, IntegrityError, StoreError, Vo2drError
from vo2dr.manifest import DataKey, Destination, Digest, Encryption, Manifest
from vo2dr.pipeline import CHUNK_SIZE, DestinationResult, PipelineResult, run_pipeline
from vo2dr.records import attempt_body, record_attempt
from vo2dr.settings import Settings
from vo2dr.signing import Signer, key_fingerprint, signer_from_setting
from vo2dr.sources import Source
from vo2dr.stores.base import BackupStore, ObjectLock
from vo2dr.strategy import DataClass, Strategy
from vo2dr.summary import BackupSummary, DestinationStatus, DestinationSummary, SkippedBackup
from vo2dr.trust import Trust

log = logging.getLogger("vo2dr.backup")

COMPRESSION = "zstd"
NO_KMS_WARNING = ("no KMS key (VO2DR_KMS_KEY_ID is not set): encrypted to the offline recovery "
                  "key only; decrypting this backup needs the recovery private key "
                  "(--recovery-key)")
# progress(phase, plaintext_bytes, ciphertext_bytes)
Progress = Callable[[str, int, int], None]


def open_backup_stores(settings: Settings) -> Mapping[str, BackupStore]:
    """Every enabled store, primary first, keyed by name, opened for writing."""
    from vo2dr.stores import Access, open_stores

    return open_stores(settings, Access.WRITE)


def existing_backup_times(stores: Mapping[str, BackupStore], environment: str,
                          data_class: str, year: int,
                          source: str = layout.DATABASE) -> list[datetime]:
    """Times of this year's complete backups (those with a manifest) of a data class, in any
    store. A store that cannot be listed is skipped: the tier is then chosen from the others
    (and with none at all the backup is yearly, which errs towards keeping it longer)."""
    times: set[datetime] = set()
    for store in stores.values():
        try:
            for prefix in layout.class_prefixes(environment, data_class, year, source):
                for info in store.list(prefix):
                    parsed = layout.parse_key(info.key)
                    if parsed and parsed[1] == "manifest":
                        times.add(parsed[0].timestamp)
        except StoreError as exc:
            log.warning("cannot list %s to choose the tier: %s", store.name, exc)
    return sorted(times)


def object_lock(strategy: Strategy, tier: str, started: datetime) -> ObjectLock | None:
    """The lock an object of ``tier`` carries itself: intraday objects are locked for the
    intraday window only (in the stack's lock mode), every other tier by the store's default
    lock (S3 bucket default retention, the GCS store's retention, the Azure container policy).
    A strategy without retention (local runs from a bare data-class list) sets none."""
    if tier != layout.INTRADAY or strategy.intraday is None:
        return None
    return ObjectLock(until=strategy.intraday.lock_until(started),
                      compliance=strategy.intraday.compliance)


def _check_settings(settings: Settings) -> None:
    # The KMS key is optional: without it the body is wrapped for the recovery key only.
    settings.require("database_url", "environment", "recovery_public_key", "signing_key")
    # Before any store is listed: a malformed URL fails here, in a second, not after retries.
    settings.validate(strategy=True)
    layout.environment_prefix(settings.environment)


def open_signer(settings: Settings, aws_session: aws.Session | None = None) -> Signer:
    """The job's signer, checked to be one the readers trust (when the trusted keys are
    configured here too, as they are in every deployed job)."""
    signer = signer_from_setting(settings.signing_key, aws_session=aws_session)
    public = signer.public_key()
    if settings.signing_public_keys:
        trusted = Trust.from_settings(settings).signers
        if key_fingerprint(public) not in trusted.keys:
            raise ConfigError(
                f"the signing key {signer.name} (id {key_fingerprint(public)[:16]}…) is not "
                "among VO2DR_SIGNING_PUBLIC_KEYS: readers would refuse its backups")
    return signer


def run_backup(settings: Settings, data_class: str, now: datetime | None = None,
               progress: Progress | None = None, *,
               stores: Mapping[str, BackupStore] | None = None,
               stall_timeout: float | None = None) -> BackupSummary:
    """Back up ``data_class`` to every enabled store; the JSON-ready summary.

    ``stores`` replaces the stores the settings enable (the bench passes null destinations,
    tests pass stores of their own). ``now`` fixes the backup's time (tests of the tier).
    Raises :class:`Vo2drError` (one-line message) when no copy can exist: bad settings, the
    dump or the encryption failed. Otherwise returns the summary; ``summary["ok"]`` is true
    only if every destination holds a verified copy and its manifest.
    """
    from vo2dr.sources.database import DatabaseSource

    _check_settings(settings)
    dc = settings.strategy().database_class(data_class)
    return run_source_backup(settings, DatabaseSource(settings.database_url, dc), data_class,
                             now, progress, stores=stores, stall_timeout=stall_timeout)


def run_source_backup(settings: Settings, source: Source, data_class: str,
                      now: datetime | None = None, progress: Progress | None = None, *,
                      stores: Mapping[str, BackupStore] | None = None,
                      stall_timeout: float | None = None) -> BackupSummary:
    """The one pipeline every source goes through (:mod:`vo2dr.sources`): its plaintext is
    compressed and encrypted once, fanned out to every store, each copy checked, and the
    manifest (the source's facts included) written last. Settings are checked by the caller.

    Every attempt, failed or not, leaves a signed record in every store
    (:mod:`vo2dr.records`): a failure before any manifest exists is otherwise invisible."""
    if stores is None:
        stores = open_backup_stores(settings)
    if not stores:
        raise ConfigError("no destination store to write to")
    started = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    t0 = time.monotonic()
    signer: Signer | None = None
    session = aws.Session()  # the signer's and the encryption's KMS clients (vo2dr.aws)
    try:
        signer = open_signer(settings, session)
        summary = _run_source_backup(settings, source, data_class, started, progress, stores,
                                     stall_timeout, signer, session)
    except Vo2drError as exc:
        record_attempt(stores, settings.environment, signer, attempt_body(
            data_class, source.kind, started, time.monotonic() - t0, error=exc), started)
        raise
    record_attempt(stores, settings.environment, signer, attempt_body(
        data_class, source.kind, started, time.monotonic() - t0, summary=summary), started)
    return summary


def _run_source_backup(settings: Settings, source: Source, data_class: str, started: datetime,
                       progress: Progress | None, stores: Mapping[str, BackupStore],
                       stall_timeout: float | None, signer: Signer,
                       session: aws.Session) -> BackupSummary:
    strategy = settings.strategy()
    recovery_pem = settings.recovery_public_key_pem()
    t0 = time.monotonic()
    kind = source.kind

    # A snapshot source chooses from its complete snapshots only (vo2dr.snapshots.take).
    chooser = getattr(source, "choose_tier", None)
    tier = chooser(started) if chooser is not None else None
    if tier is None:
        existing = existing_backup_times(stores, settings.environment, data_class,
                                         started.year, source=kind)
        tier = layout.choose_tier(started, existing)
    lock = object_lock(strategy, tier, started)
    ref = layout.BackupRef(settings.environment, tier, data_class, started,
                           layout.new_backup_id(), kind)
    context = {"environment": settings.environment, "data_class": data_class,
               "backup_id": ref.backup_id}
    if kind != layout.DATABASE:
        context["source"] = kind  # a body cannot pass for another source's backup
    # With KMS, the signer's AWS session: one botocore session per backup, not two.
    encryptor = Encryptor(kms_key_id=settings.kms_key_id, recovery_public_key_pem=recovery_pem,
                          context=context, frame_length=CHUNK_SIZE,
                          botocore_session=session.botocore_session() if settings.kms_key_id
                          else None)
    warnings = [NO_KMS_WARNING] if encryptor.recovery_only else []
    for warning in warnings:
        log.warning("backup %s: %s", ref.backup_id, warning)
    what = data_class if kind == layout.DATABASE else f"{kind} ({data_class} class)"
    log.info("backup %s of %s (%s tier) to %s", ref.backup_id, what, tier, ", ".join(stores))

    def on_chunk(plain: int, cipher: int) -> None:
        if progress is not None:
            progress("dump", plain, cipher)

    kwargs: dict[str, Any] = {} if stall_timeout is None else {"stall_timeout": stall_timeout}
    if strategy.compression is not None:  # the stack's vo2max-dr:compression
        kwargs.update(zstd_level=strategy.compression.level,
                      zstd_threads=strategy.compression.threads)
    metadata = {"backup_id": ref.backup_id, "data_class": data_class}
    if kind != layout.DATABASE:
        metadata["source"] = kind
    startup.resume()  # streaming starts: no collector paused beyond start-up (vo2dr.startup)
    with source:
        result = run_pipeline(
            source.chunks(), encrypt=encryptor.stream, stores=stores, key=ref.body_key,
            metadata=metadata, lock=lock, progress=on_chunk, **kwargs)
        facts: dict[str, Any] = {"server_version": "", "pg_dump_version": "", "database": "",
                                 "snapshot": "", "tables": [], "source": kind,
                                 **source.manifest_fields()}
        # A copy counts only if this tool can restore it (for the dump: its archive's TOC
        # names exactly the tables the manifest lists, read the way restores read it).
        unrestorable = source.unrestorable()
        # A snapshot's store that missed some of its new content gets no manifest.
        store_failures: dict[str, str] = getattr(source, "store_failures", dict)()
    for name, error in store_failures.items():
        d = result.destinations.get(name)
        if d is not None and d.status == DestinationStatus.VERIFIED:
            d.status, d.error = DestinationStatus.FAILED, f"{name}: {error}"
    if unrestorable:
        log.error("backup %s: %s", ref.backup_id, unrestorable)
        for d in result.destinations.values():
            if d.status == DestinationStatus.VERIFIED:
                d.status, d.error = DestinationStatus.FAILED, unrestorable

    # A destination counts only if a fresh stat agrees with what was sent.
    for name, d in result.destinations.items():
        if d.status == DestinationStatus.VERIFIED:
            _stat_check(stores[name], d, result.ciphertext_bytes)

    finished = datetime.now(UTC)
    manifest = Manifest(
        backup_id=ref.backup_id, environment=settings.environment, data_class=data_class,
        tier=tier, body_key=ref.body_key, started_at=started.isoformat(),
        finished_at=finished.isoformat(timespec="seconds"),
        plaintext=Digest(bytes=result.plaintext_bytes, sha256=result.plaintext_sha256),
        ciphertext=Digest(bytes=result.ciphertext_bytes, sha256=result.ciphertext_sha256),
        compression=COMPRESSION,
        encryption=Encryption(format=encryptor.info.format, algorithm=encryptor.info.algorithm,
                              kms_key_arn=encryptor.info.kms_key_arn,
                              recovery_key_id=encryptor.info.recovery_key_id,
                              encryption_context=dict(encryptor.info.encryption_context),
                              data_keys=[DataKey(*k) for k in encryptor.info.data_keys]),
        destinations={name: Destination(status=d.status, key=d.key, bytes=d.bytes,
                                        sha256=d.sha256, store_checksum=d.store_checksum,
                                        error=d.error)
                      for name, d in result.destinations.items()},
        **facts,
    )
    manifest.sign(signer)  # a failure here writes no manifest: the backup does not count
    if progress is not None:
        progress("manifest", result.plaintext_bytes, result.ciphertext_bytes)
    manifests = _write_manifests(stores, result.destinations, ref.manifest_key,
                                 manifest.to_json(), lock)
    return _summary(ref, manifest, result, manifests, time.monotonic() - t0, warnings, lock)


def _tee(chunks: Iterable[bytes], sink: Callable[[bytes], None]) -> Iterator[bytes]:
    for chunk in chunks:
        sink(chunk)
        yield chunk


def archive_problem(toc: TocReader, tables: Iterable[tuple[str, str]]) -> str:
    """Why the archive could not be restored table by table as the manifest says ("" if it
    can): its TOC is unreadable, or its TABLE DATA entries are not exactly ``tables``."""
    try:
        data = toc.finish().table_data()
    except IntegrityError as exc:
        return f"the archive's TOC cannot be read: {exc}"
    wanted = set(tables)
    if data == wanted:
        return ""
    diff = sorted(sql_name(*p) for p in data ^ wanted)
    return ("the archive's table data does not match the tables counted for the manifest: "
            + ", ".join(diff[:5]) + (" …" if len(diff) > 5 else ""))


def _stat_check(store: BackupStore, d: DestinationResult, size: int) -> None:
    try:
        info = store.stat(d.key)
    except AccessDenied:
        # The cloud writer identity may only put objects (no HeadObject on S3); the store has
        # already matched the service's own checksum from the upload response, which stands.
        return
    except Vo2drError as exc:
        d.status = DestinationStatus.FAILED
        d.error = f"{store.name}: body not readable after upload: {exc}"
        return
    if info.size != size:
        d.status = DestinationStatus.FAILED
        d.error = f"{store.name}: body is {info.size} bytes after upload, expected {size}"


def _write_manifests(stores: Mapping[str, BackupStore], destinations: Mapping[str,
                     DestinationResult], key: str, body: bytes,
                     lock: ObjectLock | None = None) -> dict[str, str]:
    """Write the manifest to each verified destination, last, locked like its body.
    ``{name: "written"|error}``."""
    out = {}
    for name, d in destinations.items():
        if d.status != DestinationStatus.VERIFIED:
            out[name] = "skipped: body not verified"
            continue
        try:
            stores[name].put_bytes(key, body, metadata={"kind": "manifest"}, lock=lock)
            out[name] = "written"
        except Vo2drError as exc:
            out[name] = f"failed: {exc}"
            log.error("manifest write to %s failed: %s", name, exc)
    return out


def _summary(ref: layout.BackupRef, manifest: Manifest, result: PipelineResult,
             manifests: dict[str, str], seconds: float, warnings: list[str],
             lock: ObjectLock | None = None) -> BackupSummary:
    destinations = {}
    for name, d in result.destinations.items():
        body = DestinationStatus(d.status)
        # A verified body counts only with its manifest written.
        written = manifests.get(name) == "written" or body != DestinationStatus.VERIFIED
        destinations[name] = DestinationSummary(
            status=body if written else DestinationStatus.FAILED, body=body,
            manifest=manifests.get(name, ""), bytes=d.bytes, seconds=d.seconds, error=d.error)
    failed = [f"{n}: {v.error or v.manifest}" for n, v in destinations.items()
              if v.status != DestinationStatus.VERIFIED]
    mb = result.plaintext_bytes / 1e6
    return BackupSummary(
        ok=not failed, error="; ".join(failed),
        backup_id=ref.backup_id, environment=ref.environment,
        data_class=ref.data_class, tier=ref.tier,
        timestamp=layout.format_timestamp(ref.timestamp),
        body_key=ref.body_key, manifest_key=ref.manifest_key,
        tables=manifest.table_rows(),
        plaintext=asdict(manifest.plaintext), compressed_bytes=result.compressed_bytes,
        ciphertext=asdict(manifest.ciphertext),
        server_version=manifest.server_version, pg_dump_version=manifest.pg_dump_version,
        kms_key_arn=manifest.encryption.kms_key_arn,
        recovery_key_id=manifest.encryption.recovery_key_id,
        destinations=destinations, warnings=warnings,
        source=manifest.source, contents=manifest.contents,
        seconds=round(seconds, 3),
        plaintext_mb_per_s=round(mb / seconds, 1) if seconds > 0 else None,
        lock_until=lock.until.isoformat() if lock else "")


# -- --if-missing: the standby's mode ---------------------------------------------------------

def schedule_window(dc: DataClass, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of the schedule window of ``dc`` that holds ``now`` (UTC).

    The windows are the primary's clock-aligned schedule (``DataClass.cron_expression()``):
    for a class with ``dailyAtUtc`` the day since that time (02:00 to 02:00 the next day);
    otherwise RPO-long windows counted from midnight UTC (RPO 15 min: :00, :15, :30, :45;
    RPO 2 h: 00:00, 02:00, ...), the last one of a day cut at midnight as cron cuts it.
    """
    now = now.astimezone(UTC)
    if dc.daily_at_utc is not None:
        hour, minute = (int(x) for x in dc.daily_at_utc.split(":"))
        start = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if start > now:
            start -= timedelta(days=1)
        return start, start + timedelta(days=1)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (now - midnight) // timedelta(minutes=1)
    start = midnight + timedelta(minutes=elapsed - elapsed % dc.rpo_minutes)
    return start, min(start + timedelta(minutes=dc.rpo_minutes), midnight + timedelta(days=1))


@dataclass(frozen=True)
class CoveringBackup:
    """A complete backup (its manifest exists) found in a window, and where."""

    backup_id: str
    store: str
    manifest_key: str
    timestamp: datetime


def find_covering_backup(stores: Mapping[str, BackupStore], environment: str,
                         data_class: str, start: datetime,
                         end: datetime, source: str = layout.DATABASE) -> CoveringBackup | None:
    """The newest complete backup of ``data_class`` taken in ``[start, end)``, in any store
    that can be listed. A store that cannot be listed (e.g. S3 while AWS is down) is skipped
    with a warning; a body without its manifest does not count."""
    # Keys start with the UTC timestamp, so listing by day narrows the scan to the window.
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    days = [(first + timedelta(days=i)).strftime("%Y%m%d")
            for i in range((last - first).days + 1)]
    found: list[CoveringBackup] = []
    for name, store in stores.items():
        try:
            for base in layout.class_prefixes(environment, data_class, source=source):
                for day in days:
                    for info in store.list(base + day):
                        parsed = layout.parse_key(info.key)
                        if (parsed and parsed[1] == "manifest"
                                and parsed[0].data_class == data_class
                                and start <= parsed[0].timestamp < end):
                            found.append(CoveringBackup(parsed[0].backup_id, name, info.key,
                                                        parsed[0].timestamp))
        except StoreError as exc:
            log.warning("cannot list %s to look for a backup in the window: %s", name, exc)
    return max(found, key=lambda c: (c.timestamp, c.backup_id), default=None)


def backup_if_missing(settings: Settings, data_class: str, now: datetime | None = None,
                      progress: Progress | None = None, *,
                      stores: Mapping[str, BackupStore] | None = None,
                      stall_timeout: float | None = None) -> BackupSummary | SkippedBackup:
    """:func:`run_backup`, unless a complete backup of ``data_class`` already exists in the
    current schedule window in any reachable store (the primary ran): then nothing is dumped
    and the summary says ``skipped: covered by <backup id>`` with ``ok`` true.

    ``now`` (tests) fixes both the window and the backup's time."""
    _check_settings(settings)
    dc = settings.strategy().database_class(data_class)
    if stores is None:
        stores = open_backup_stores(settings)
    at = (now or datetime.now(UTC)).astimezone(UTC)
    start, end = schedule_window(dc, at)
    covering = find_covering_backup(stores, settings.environment, data_class, start, end)
    window = {"start": start.isoformat(), "end": end.isoformat()}
    if covering is None:
        log.info("no %s backup in the window %s to %s: backing up", data_class,
                 window["start"], window["end"])
        summary = run_backup(settings, data_class, now, progress, stores=stores,
                             stall_timeout=stall_timeout)
        summary.window = window
        return summary
    return skipped_backup(settings.environment, data_class, window, covering, data_class)


def skipped_backup(environment: str, data_class: str, window: dict[str, str],
                   covering: CoveringBackup, label: str) -> SkippedBackup:
    """The run that did nothing because ``covering`` already covers ``window`` (logged as
    ``<label> backup skipped: ...``)."""
    skipped = SkippedBackup(
        environment=environment, data_class=data_class, window=window,
        covered_by={"backup_id": covering.backup_id, "store": covering.store,
                    "manifest_key": covering.manifest_key,
                    "timestamp": layout.format_timestamp(covering.timestamp)})
    log.info("%s backup %s", label, skipped.status)
    return skipped
