"""Agreement across stores: which backup ``latest`` means, and which copies count.

A copy *counts* in a store when the store holds the body and the manifest, the manifest is
signed by a trusted key (:mod:`vo2dr.signing`, checked offline), describes this backup, and
its size matches the listed body. Copies *agree* when their signed manifests are the same
bytes of payload (the same body digests, data keys and table counts).

``latest`` is the newest backup whose agreeing authentic copies reach the **quorum**: two
stores where two or more are enabled. An attacker who owns one cloud account can write
anything into that one store, but cannot make a backup appear in a second store, nor sign it:
with a quorum of two, a store of their own never decides what is restored. With a single
enabled store the quorum is one, and the selection says so. ``allow_single_copy`` (the
``--allow-single-copy`` flag) accepts the newest backup authentic in one store only, with a
warning saying why that is risky.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from vo2dr.catalog import BackupNotFound, Catalog, CatalogEntry
from vo2dr.exceptions import IntegrityError, StoreError
from vo2dr.layout import format_timestamp
from vo2dr.manifest import Manifest
from vo2dr.stores.base import BackupStore
from vo2dr.trust import Trust

SINGLE_COPY_RISK = (
    "a backup held by one store only is not confirmed by any other cloud: it may be a copy "
    "whose other uploads failed, or one planted by whoever controls that store's account")


@dataclass
class CopyCheck:
    """One store's copy of a backup: its manifest if it counts, else why not."""

    store: str
    manifest: Manifest | None = None
    problem: str = ""

    @property
    def authentic(self) -> bool:
        return self.manifest is not None


@dataclass
class Agreement:
    entry: CatalogEntry
    copies: dict[str, CopyCheck] = field(default_factory=dict)
    agreeing: list[str] = field(default_factory=list)  # stores holding the majority payload

    @property
    def manifest(self) -> Manifest | None:
        return self.copies[self.agreeing[0]].manifest if self.agreeing else None

    def problems(self) -> list[str]:
        out = [f"{c.store}: {c.problem}" for c in self.copies.values() if c.problem]
        disagree = [n for n, c in self.copies.items() if c.authentic and n not in self.agreeing]
        if disagree:
            out.append(f"signed manifests differ between {', '.join(self.agreeing)} and "
                       f"{', '.join(disagree)}")
        return out


def check_copy(store: BackupStore, entry: CatalogEntry, trust: Trust) -> CopyCheck:
    """Read and check one store's manifest of ``entry`` (one small GET, no body download)."""
    check = CopyCheck(store=store.name)
    copy = entry.copies.get(store.name)
    if copy is None or not copy.complete:
        check.problem = f"no complete copy ({copy.state if copy else 'missing'})"
        return check
    from vo2dr.verify import load_manifest

    try:
        manifest = load_manifest(store, entry, trust)
    except (IntegrityError, StoreError) as exc:
        check.problem = str(exc).removeprefix(f"{store.name}: ")
        return check
    if copy.body is not None and copy.body.size != manifest.ciphertext.bytes:
        check.problem = (f"{entry.ref.body_key} is {copy.body.size} bytes, the signed manifest "
                         f"says {manifest.ciphertext.bytes}")
        return check
    check.manifest = manifest
    return check


def agreement(entry: CatalogEntry, stores: Mapping[str, BackupStore], trust: Trust,
              order: tuple[str, ...] | None = None) -> Agreement:
    """Check every store's copy of ``entry`` and find the stores that agree."""
    names = [n for n in (order or tuple(stores)) if n in stores]
    result = Agreement(entry=entry)
    for name in names:
        result.copies[name] = check_copy(stores[name], entry, trust)
    payloads = {n: c.manifest.signed_payload() for n, c in result.copies.items()
                if c.manifest is not None}
    if payloads:
        top, _ = Counter(payloads.values()).most_common(1)[0]
        result.agreeing = [n for n in names if payloads.get(n) == top]
    return result


def quorum_size(enabled: int) -> int:
    return 2 if enabled >= 2 else 1


@dataclass
class Selection:
    entry: CatalogEntry
    agreement: Agreement
    warnings: list[str] = field(default_factory=list)


def select_latest(catalog: Catalog, stores: Mapping[str, BackupStore], trust: Trust,
                  data_class: str, *, before: datetime | None = None,
                  need_in: str | None = None, allow_single_copy: bool = False) -> Selection:
    """The newest backup of ``data_class`` (at or before ``before``) complete and authentic in
    a quorum of the enabled stores (``catalog.stores``), and in ``need_in`` when given (the
    store a restore reads from). Raises :class:`BackupNotFound` saying why none qualifies."""
    enabled = catalog.stores
    quorum = quorum_size(len(enabled))
    warnings: list[str] = []
    if quorum < 2:
        warnings.append(f"only one store is enabled ({', '.join(enabled) or 'none'}): no second "
                        "copy can confirm the backup (quorum of one)")
    if allow_single_copy and quorum > 1:
        quorum = 1
    candidates = [e for e in catalog.for_class(data_class)
                  if e.complete_stores(enabled) and (before is None or e.timestamp <= before)
                  and (need_in is None or e.complete_in(need_in))]
    candidates.sort(key=lambda e: (e.timestamp, e.backup_id), reverse=True)
    refused: list[str] = []
    for entry in candidates:
        found = agreement(entry, stores, trust, enabled)
        if need_in is not None and need_in not in found.agreeing:
            refused.append(f"{entry.backup_id}: " + "; ".join(
                found.problems() or [f"{need_in}: copy not authentic"]))
            continue
        if len(found.agreeing) >= quorum:
            if len(found.agreeing) < 2 <= len(enabled):
                warnings.append(f"--allow-single-copy: backup {entry.backup_id} is authentic in "
                                f"{', '.join(found.agreeing)} only; {SINGLE_COPY_RISK}")
            return Selection(entry=entry, agreement=found, warnings=warnings)
        refused.append(f"{entry.backup_id} in {', '.join(found.agreeing) or 'no store'} only"
                       + (": " + "; ".join(found.problems()) if found.problems() else ""))
    cond = f" taken at or before {format_timestamp(before)}" if before else ""
    where = f" (and in {need_in})" if need_in else ""
    detail = f"; refused: {' | '.join(refused[:3])}" if refused else ""
    errors = ("; could not list: " + "; ".join(f"{k}: {v}" for k, v in catalog.errors.items())
              if catalog.errors else "")
    hint = (" (--allow-single-copy takes a lone copy, at its risk)"
            if quorum > 1 and not allow_single_copy else "")
    raise BackupNotFound(
        f"no complete {data_class} backup{cond} is authentic (signed) in {quorum} of the stores "
        f"{', '.join(enabled)}{where}{detail}{errors}{hint}")
