"""Take a snapshot: ``vo2dr backup --source assets|logs``.

The snapshot is a :class:`~vo2dr.sources.Source` like the code and config sources: its
plaintext is the index (:mod:`vo2dr.snapshots.index`), which goes through the one pipeline
(:func:`vo2dr.backup.run_source_backup`: zstd, envelope encryption once, every store at once,
manifest last and signed). While the index is produced, the objects it lists are handled:

1. **Base.** The newest snapshot of the source (complete or not) whose manifest and index are
   in every store being written: every content object it references is then in every one of
   them (a store gets a manifest only when it holds all of its snapshot's content). No base:
   a full snapshot.
2. **Merge-join.** The base's index (streamed, decrypted, from the first store) and the
   origins' listings are both in key order, so they are joined one entry at a time: memory is
   flat whatever the object count. An object whose size, ETag, version and mtime are the base
   entry's is **neither downloaded nor uploaded**: its entry is copied (``new: false``).
   Anything else is read from the origin (exactly the listed version) and its content
   encrypted once and uploaded to every store at once (:class:`ContentWriter`), a bounded
   number of objects (and bytes) in flight, while index lines keep flowing in key order.
3. **Per-store failures.** A store that fails a content upload gets no more content and
   no manifest (:meth:`SnapshotTake.store_failures`); the others complete. So no store ever
   has a manifest whose content it lacks.
4. **Time limit.** Past ``Deadline.uploads_until`` no new content is uploaded (unchanged
   objects are still listed and copied); past ``Deadline.listing_until`` listing stops and
   the rest of the base's entries are carried over. The manifest then says
   ``complete: false``: never ``latest``, never a GFS tier, but a dedup base, so the next run
   continues where this one stopped and uploads only what is still missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vo2dr import layout
from vo2dr.exceptions import (
    ConfigError,
    IntegrityError,
    SourceError,
    StoreError,
    Vo2drError,
    one_line,
)
from vo2dr.pipeline import STALL_TIMEOUT, ZSTD_LEVEL
from vo2dr.snapshots.content import ContentWriter
from vo2dr.snapshots.index import Entry, Header, IndexWriter, read_index
from vo2dr.snapshots.origins import (
    Origin,
    OriginChanged,
    OriginObject,
    OriginObjectGone,
    open_origin,
    origin_order,
)
from vo2dr.stores.base import BackupStore

log = logging.getLogger("vo2dr.snapshots")

WORKERS = 16  # content objects in flight (uploads wait on the network, not the CPU)
MAX_INFLIGHT_BYTES = 64 * 1024 * 1024  # plaintext bytes in flight (one bigger object alone)
WINDOW = 256  # index lines waiting for the upload of an earlier key
# Lambda: stop uploading this long before the time limit, stop listing half as long before.
FINISH_MARGIN_SECONDS = 120.0


@dataclass(frozen=True)
class Deadline:
    """Monotonic instants (``clock``) after which no new content is uploaded, and after which
    the origins are no longer listed."""

    uploads_until: float
    listing_until: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def within(cls, seconds: float, margin: float = FINISH_MARGIN_SECONDS,
               clock: Callable[[], float] = time.monotonic) -> Deadline:
        """Uploads stop ``margin`` seconds (at most a fifth of ``seconds``) before the limit:
        time for the objects in flight, the index's last parts and the manifests."""
        margin = min(margin, seconds / 5)
        now = clock()
        return cls(now + seconds - margin, now + seconds - margin / 2, clock)


@dataclass
class BaseSnapshot:
    """The dedup base: its backup id and its index entries (a lazy iterator)."""

    backup_id: str
    entries: Iterator[Entry]
    complete: bool = True


@dataclass
class Stats:
    objects: int = 0
    bytes: int = 0
    new_objects: int = 0
    new_bytes: int = 0
    uploaded_bytes: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # changed while being read twice, or postponed by the time limit
    carried: int = 0  # base entries carried over after the listing stopped


class SnapshotTake:
    """The snapshot of one source as a pipeline :class:`~vo2dr.sources.Source`."""

    def __init__(self, kind: str, *, origins: Mapping[str, Origin], stores: Mapping[str,
                 BackupStore], writer: ContentWriter, base: BaseSnapshot | None,
                 taken_at: datetime, origin_urls: Mapping[str, str] | None = None,
                 deadline: Deadline | None = None, workers: int = WORKERS,
                 max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
                 tier_chooser: Callable[[datetime], str] | None = None) -> None:
        self.kind = kind
        self.origins = dict(origins)
        self.origin_urls = dict(origin_urls or {n: o.url for n, o in origins.items()})
        self.stores = dict(stores)
        self.writer, self.base, self.deadline = writer, base, deadline
        self.workers, self.max_inflight_bytes = workers, max_inflight_bytes
        self.taken_at = taken_at
        self.stats = Stats(uploaded_bytes={n: 0 for n in stores})
        self.complete = True
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._tier_chooser = tier_chooser
        self._listing_cut = False
        self.warnings: list[str] = []

    # -- Source ------------------------------------------------------------------------------

    def __enter__(self) -> SnapshotTake:
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.base.entries if self.base else None, "close", None)
        if close is not None:
            close()

    def choose_tier(self, started: datetime) -> str | None:
        """The tier, counting complete snapshots only (run_source_backup asks)."""
        return self._tier_chooser(started) if self._tier_chooser else None

    def chunks(self) -> Iterator[bytes]:
        writer = IndexWriter(Header(source=self.kind, origins=self.origin_urls,
                                    taken_at=self.taken_at.isoformat(),
                                    base=self.base.backup_id if self.base else None))
        yield writer.header_line()
        for entry in self._entries():
            self.stats.objects += 1
            self.stats.bytes += entry.size
            yield writer.line(entry)

    def manifest_fields(self) -> dict[str, Any]:
        s = self.stats
        return {"contents": {
            "objects": s.objects, "bytes": s.bytes, "new_objects": s.new_objects,
            "new_bytes": s.new_bytes, "uploaded_bytes": dict(s.uploaded_bytes),
            "complete": self.complete, "skipped": s.skipped, "carried": s.carried,
            "origins": dict(self.origin_urls),
            "base": self.base.backup_id if self.base else None}}

    def unrestorable(self) -> str:
        return ""

    def store_failures(self) -> dict[str, str]:
        """Stores that lack some of this snapshot's new content: they get no manifest."""
        with self._lock:
            return dict(self._failed)

    # -- the merge-join ----------------------------------------------------------------------

    def _now(self) -> float:
        return self.deadline.clock() if self.deadline else 0.0

    def _listing(self) -> Iterator[tuple[Origin, OriginObject, str]]:
        last = ""
        for name in origin_order(list(self.origins)):
            origin = self.origins[name]
            for obj in origin.list():
                if self.deadline and self._now() >= self.deadline.listing_until:
                    self.complete = False
                    self._listing_cut = True
                    return
                key = f"{name}/{obj.key}"
                if key <= last:
                    raise SourceError(f"origin {name} listed {obj.key!r} out of key order")
                last = key
                yield origin, obj, key

    def _merged(self) -> Iterator[tuple[Entry | None, tuple[Origin, OriginObject] | None]]:
        """``(base entry, listed object)`` pairs in key order; either side may be None."""
        base = self.base.entries if self.base else iter(())
        listing = self._listing()
        b = next(base, None)
        for origin, obj, key in listing:
            while b is not None and b.key < key:
                b = next(base, None)  # deleted from the origin since the base
            if b is not None and b.key == key:
                yield b, (origin, obj)
                b = next(base, None)
            else:
                yield None, (origin, obj)
        if self._listing_cut:  # the listing stopped early: carry the rest of the base over
            while b is not None:
                yield b, None
                b = next(base, None)

    def _entries(self) -> Iterator[Entry]:
        pending: deque[Entry | Future[Entry | None]] = deque()
        inflight = [0]
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"vo2dr-{self.kind}")
        try:
            for old, listed in self._merged():
                if listed is None:
                    assert old is not None
                    self.stats.carried += 1
                    pending.append(old.reused())
                else:
                    origin, obj = listed
                    if old is not None and old.same_source(obj.size, obj.etag, obj.version,
                                                           obj.mtime):
                        pending.append(old.reused())
                    elif self.deadline and self._now() >= self.deadline.uploads_until:
                        self.complete = False  # postponed to the next run
                        self.stats.skipped += 1
                    else:
                        pending.append(self._submit(pool, origin, obj, old, inflight))
                yield from self._ready(pending, inflight, block=False)
                while pending and (len(pending) >= WINDOW or
                                   inflight[0] > self.max_inflight_bytes):
                    yield from self._ready(pending, inflight, block=True, one=True)
            yield from self._ready(pending, inflight, block=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor, origin: Origin, obj: OriginObject,
                old: Entry | None, inflight: list[int]) -> Future[Entry | None]:
        with self._lock:
            inflight[0] += obj.size
        fut = pool.submit(self._upload, origin, obj, old)
        fut.add_done_callback(lambda _f: self._release(inflight, obj.size))
        return fut

    def _release(self, inflight: list[int], size: int) -> None:
        with self._lock:
            inflight[0] -= size

    def _ready(self, pending: deque[Entry | Future[Entry | None]], inflight: list[int], *,
               block: bool, one: bool = False) -> Iterator[Entry]:
        while pending:
            head = pending[0]
            if isinstance(head, Future):
                if not block and not head.done():
                    return
                entry = head.result()  # re-raises the upload's error: the snapshot fails
            else:
                entry = head
            pending.popleft()
            if entry is not None:
                yield entry
            if one:
                return

    # -- one upload --------------------------------------------------------------------------

    def _active_stores(self) -> dict[str, BackupStore]:
        with self._lock:
            active = {n: s for n, s in self.stores.items() if n not in self._failed}
            failed = dict(self._failed)
        if not active:
            raise StoreError("every store failed a content upload: "
                             + "; ".join(f"{n}: {e}" for n, e in failed.items()))
        return active

    def _upload(self, origin: Origin, obj: OriginObject, old: Entry | None) -> Entry | None:
        key = f"{origin.name}/{obj.key}"
        for _attempt in range(2):
            try:
                opened = origin.open(obj)
                stored = self.writer.put(_exactly(opened.chunks, obj, origin), obj.size,
                                         self._active_stores())
            except OriginObjectGone:
                log.info("%s: deleted while the snapshot ran; not in this snapshot", key)
                return None
            except OriginChanged:
                current = origin.stat(obj.key)
                if current is None:
                    return None
                obj = current
                continue
            with self._lock:
                for name, error in stored.failed.items():
                    if name not in self._failed:
                        log.error("%s failed a content upload; it gets no manifest: %s",
                                  name, error)
                        self._failed[name] = f"content upload failed: {error}"
                for name in stored.uploaded_to:
                    self.stats.uploaded_bytes[name] += stored.stored_size
                self.stats.new_objects += 1
                self.stats.new_bytes += stored.size
            return Entry(key=key, size=stored.size, etag=obj.etag,
                         version=opened.version or obj.version or None, mtime=obj.mtime,
                         sha256=stored.sha256, content=stored.content_id,
                         stored_size=stored.stored_size, stored_sha256=stored.stored_sha256,
                         new=True)
        # Rewritten while it was read, twice: keep the base's (older, complete) version.
        with self._lock:
            self.stats.skipped += 1
        self.warnings.append(f"{key} changed while it was read; "
                             + ("the previous version is kept" if old else "not included"))
        return old.reused() if old is not None else None


def _exactly(chunks: Iterable[bytes], obj: OriginObject, origin: Origin) -> Iterator[bytes]:
    """The object's bytes, refused (OriginChanged) if they are not exactly the listed size."""
    n = 0
    for chunk in chunks:
        n += len(chunk)
        if n > obj.size:
            raise OriginChanged(f"{origin.url}{obj.key} grew while it was read")
        yield chunk
    if n != obj.size:
        raise OriginChanged(f"{origin.url}{obj.key} shrank while it was read")


# -- base and tier -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    """One snapshot as the tier prefixes list it, per store."""

    ref: layout.BackupRef
    stores: frozenset[str]  # stores holding both its index and its manifest


def list_snapshots(stores: Mapping[str, BackupStore], environment: str,
                   kind: str, errors: dict[str, str] | None = None) -> list[Listed]:
    """Every snapshot of ``kind`` in the tier prefixes of each store (never ``content/``:
    it holds one object per version ever uploaded), oldest first. A store that cannot be
    listed raises, unless ``errors`` is given: its reason is then recorded there and the
    store left out."""
    root = layout.environment_prefix(environment, kind)
    seen: dict[str, dict[str, set[str]]] = {}
    refs: dict[str, layout.BackupRef] = {}
    for name, store in stores.items():
        try:
            listed = [info for tier in layout.TIERS for info in store.list(f"{root}{tier}/")]
        except StoreError as exc:
            if errors is None:
                raise
            errors[name] = one_line(exc)
            continue
        for info in listed:
            parsed = layout.parse_key(info.key)
            if parsed is None or parsed[0].source != kind:
                continue
            ref, part = parsed
            refs.setdefault(ref.backup_id, ref)
            seen.setdefault(ref.backup_id, {}).setdefault(name, set()).add(part)
    out = [Listed(refs[bid], frozenset(n for n, parts in per.items()
                                       if parts == {"body", "manifest"}))
           for bid, per in seen.items()]
    return sorted(out, key=lambda s: (s.ref.timestamp, s.ref.backup_id))


class ManifestReader:
    """Reads and checks (signature, identity) a snapshot's manifest from one store, caching
    what it read, for the base and the tier choice."""

    def __init__(self, store: BackupStore, trust: Any) -> None:
        self.store, self.trust = store, trust
        self._cache: dict[str, Any] = {}

    def manifest(self, listed: Listed) -> Any:
        from vo2dr.catalog import CatalogEntry
        from vo2dr.verify import load_manifest

        bid = listed.ref.backup_id
        if bid not in self._cache:
            self._cache[bid] = load_manifest(self.store, CatalogEntry(ref=listed.ref),
                                             self.trust)
        return self._cache[bid]

    def complete(self, listed: Listed) -> bool:
        """Whether the snapshot counts as complete (unreadable or unsigned: it does not)."""
        try:
            return bool(self.manifest(listed).contents.get("complete", False))
        except Vo2drError as exc:
            log.warning("snapshot %s not counted for the tier: %s", listed.ref.backup_id, exc)
            return False


def choose_snapshot_tier(now: datetime, snapshots: Iterable[Listed],
                         is_complete: Callable[[Listed], bool]) -> str:
    """:func:`vo2dr.layout.choose_tier` over the *complete* snapshots only, asking
    ``is_complete`` (a manifest read) lazily, newest first, only where the answer matters."""
    now = now.astimezone(UTC)
    earlier = sorted((s for s in snapshots if s.ref.timestamp < now),
                     key=lambda s: s.ref.timestamp, reverse=True)
    memo: dict[str, bool] = {}

    def any_complete(pred: Callable[[datetime], bool]) -> bool:
        for s in earlier:
            if pred(s.ref.timestamp):
                if s.ref.backup_id not in memo:
                    memo[s.ref.backup_id] = is_complete(s)
                if memo[s.ref.backup_id]:
                    return True
        return False

    if any_complete(lambda t: t.date() == now.date()):
        return layout.INTRADAY
    if not any_complete(lambda t: t.year == now.year):
        return "yearly"
    if not any_complete(lambda t: (t.year, t.month) == (now.year, now.month)):
        return "monthly"
    if not any_complete(lambda t: t.isocalendar()[:2] == now.isocalendar()[:2]):
        return "weekly"
    return "daily"


def open_base(listed: Listed, reader: ManifestReader,
              keys: dict[str, Any]) -> BaseSnapshot:
    """The base's entries, streamed from ``reader``'s store: the signed manifest's body
    digest and wrapped data keys, the index's authenticated decryption bound to its backup
    id, and at the end its ciphertext and plaintext SHA-256 (an error then fails the
    snapshot, which writes no manifest)."""
    from vo2dr.crypto import decrypt_stream
    from vo2dr.verify import _decompress, _Digesting, expected_context

    manifest = reader.manifest(listed)
    cipher = _Digesting(reader.store.get_stream(manifest.body_key))
    plain = _Digesting(_decompress(
        decrypt_stream(iter(cipher), expected_context=expected_context(manifest),
                       expected_data_keys=[(k.provider_id, k.key_info, k.sha256)
                                           for k in manifest.encryption.data_keys],
                       expected_algorithm=manifest.encryption.algorithm, **keys),
        manifest.compression))
    header, entries = read_index(plain)
    if header.source != listed.ref.source:
        raise IntegrityError(f"base snapshot {listed.ref.backup_id} is of {header.source!r}")

    def checked() -> Iterator[Entry]:
        yield from entries
        if (cipher.bytes, cipher.hexdigest()) != (manifest.ciphertext.bytes,
                                                  manifest.ciphertext.sha256) or \
                (plain.bytes, plain.hexdigest()) != (manifest.plaintext.bytes,
                                                     manifest.plaintext.sha256):
            raise IntegrityError(f"base snapshot {listed.ref.backup_id}: the index differs "
                                 "from its signed manifest")

    return BaseSnapshot(listed.ref.backup_id, checked(),
                        bool(manifest.contents.get("complete", False)))


# -- the command ---------------------------------------------------------------------------------

def backup_snapshot(settings: Any, kind: str, now: datetime | None = None,
                    progress: Any = None, *, stores: Mapping[str, BackupStore] | None = None,
                    stall_timeout: float | None = None, deadline: Deadline | None = None,
                    origins: Mapping[str, Origin] | None = None,
                    recovery_key_pem: bytes | None = None, workers: int = WORKERS) -> Any:
    """Snapshot ``kind`` (assets or logs) to every enabled store; the backup summary.

    ``origins`` replaces the stack's (tests); ``recovery_key_pem`` decrypts the base where
    KMS cannot (tests, the standby has none: without either it takes a full snapshot)."""
    from vo2dr.backup import open_backup_stores, open_signer, run_source_backup
    from vo2dr.signing import TrustedKeys
    from vo2dr.trust import Trust
    from vo2dr.verify import decryption_keys

    if kind not in layout.SNAPSHOT_KINDS:
        raise ConfigError(f"{kind!r} is not a snapshot source: use assets or logs")
    settings.require("environment", "recovery_public_key", "signing_key")
    settings.validate(strategy=True)
    strategy = settings.strategy()
    spec = strategy.snapshot(kind)
    data_class = spec.data_class
    env = settings.environment
    if stores is None:
        stores = open_backup_stores(settings)
    if origins is None:
        origins = {name: open_origin(name, url) for name, url in spec.origins.items()}
    started = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)

    signer = open_signer(settings)
    trust = (Trust.from_settings(settings) if settings.signing_public_keys else
             Trust(signers=TrustedKeys.of([signer.public_key()]),
                   kms_key_arn=settings.kms_key_id))
    # A store that cannot even be listed gets no content (it would fail every upload, slowly)
    # and so no manifest; the base is the newest snapshot in all the others.
    unreachable: dict[str, str] = {}
    snapshots = list_snapshots(stores, env, kind, unreachable)
    if len(unreachable) == len(stores):
        raise StoreError("no store can be listed: " + "; ".join(
            f"{n}: {e}" for n, e in unreachable.items()))
    reachable = {n: s for n, s in stores.items() if n not in unreachable}
    reader = ManifestReader(next(iter(reachable.values())), trust)
    base = None
    candidates = [s for s in snapshots if s.stores >= set(reachable)]
    if candidates:
        try:
            keys, _ = decryption_keys(reader.manifest(candidates[-1]), recovery_key_pem,
                                      trust)
            base = open_base(candidates[-1], reader, keys)
        except Vo2drError as exc:
            # Without a readable base the snapshot is full: slower, never wrong.
            log.warning("%s: no dedup base (%s): taking a full snapshot", kind, one_line(exc))
    year = [s for s in snapshots if s.ref.timestamp.year == started.year]
    writer = ContentWriter(environment=env, source=kind, kms_key_id=settings.kms_key_id,
                           recovery_public_key_pem=settings.recovery_public_key_pem(),
                           stall_timeout=stall_timeout or STALL_TIMEOUT,
                           zstd_level=(strategy.compression.level if strategy.compression
                                       else ZSTD_LEVEL))
    take = SnapshotTake(kind, origins=origins, stores=stores, writer=writer, base=base,
                        taken_at=started, origin_urls=spec.origins, deadline=deadline,
                        workers=workers,
                        tier_chooser=lambda t: choose_snapshot_tier(t, year, reader.complete))
    for name, error in unreachable.items():
        log.error("%s cannot be listed; it gets no content and no manifest: %s", name, error)
        take._failed[name] = f"cannot be listed: {error}"
    log.info("snapshot of %s (%s class) from %s, base %s", kind, data_class,
             ", ".join(spec.origins), base.backup_id if base else "none (full)")
    summary = run_source_backup(settings, take, data_class, started, progress, stores=stores,
                                stall_timeout=stall_timeout)
    summary.warnings.extend(take.warnings[:20])
    if not take.complete:
        summary.warnings.append("incomplete snapshot (time limit): the next run continues it")
    return summary
