"""The drill of the application sources: restore the latest code and config backups into
scratch directories with the real restore path (find, verify end to end, restore), check them
against the manifest (every ref at its recorded id with its history; every file's size and
SHA-256, every secret name), time it against the source's class RTO, and remove the scratch
copy (the config's holds secret values)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vo2dr.exceptions import Vo2drError
from vo2dr.settings import Settings
from vo2dr.stores.base import BackupStore


@dataclass
class SourceReport:
    source: str
    data_class: str = ""
    ok: bool = False
    backup_id: str = ""
    store: str = ""
    restore_seconds: float | None = None
    rto_seconds: float = 0
    within_rto: bool | None = None
    checked: dict[str, int] = field(default_factory=dict)  # refs / files / secrets checked
    removed: bool = False
    errors: list[str] = field(default_factory=list)


@contextmanager
def drill_scratch(settings: Settings, kind: str,
                  rto_override_seconds: float | None) -> Iterator[tuple[SourceReport, Path]]:
    """The report of a drill of ``kind`` (RTO: its class's, or the override) and a private
    scratch directory for the drill's restore. A :class:`Vo2drError` raised inside is the
    report's error; the scratch copy is removed whatever happened (``report.removed`` says
    whether it was) and ``report.ok`` set at the end."""
    dc = settings.strategy().source_class(kind)
    report = SourceReport(source=kind, data_class=dc.name,
                          rto_seconds=(rto_override_seconds if rto_override_seconds is not None
                                       else dc.rto_seconds))
    scratch = Path(tempfile.mkdtemp(prefix=f"vo2dr-drill-{kind}-",
                                    dir=settings.spool_dir or None))
    try:
        yield report, scratch
    except Vo2drError as exc:
        report.errors.append(str(exc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        report.removed = not scratch.exists()
    report.ok = not report.errors


def drill_source(settings: Settings, kind: str, *, stores: Mapping[str, BackupStore],
                 rto_override_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 recovery_key_pem: bytes | None = None) -> SourceReport:
    """Drill ``kind`` from the first store (primary first) holding a complete backup."""
    from vo2dr.catalog import build_catalog
    from vo2dr.sources.restore import latest_entry, restore_source
    from vo2dr.trust import Trust

    with drill_scratch(settings, kind, rto_override_seconds) as (report, scratch):
        catalog = build_catalog(stores, settings.environment, source=kind)
        entry = latest_entry(catalog)
        store = next(n for n in catalog.stores if entry.complete_in(n))
        report.backup_id, report.store = entry.backup_id, store
        t0 = clock()
        restore_source(settings, kind, store=stores[store],
                                target=str(scratch / "restored"), backup=entry.backup_id,
                                recovery_key_pem=recovery_key_pem)
        report.restore_seconds = round(clock() - t0, 3)
        report.checked = _check(kind, scratch / "restored", stores[store], entry,
                                Trust.from_settings(settings))
        report.within_rto = report.restore_seconds <= report.rto_seconds
        if not report.within_rto:
            report.errors.append(f"restore took {report.restore_seconds:.1f}s, over the RTO "
                                 f"of {report.rto_seconds:.0f}s")
    return report


def _check(kind: str, target: Path, store: BackupStore, entry: Any,
           trust: Any) -> dict[str, int]:
    """Check the restored copy on disk against the manifest once more, independently of the
    restore's own checks."""
    from vo2dr.exceptions import IntegrityError
    from vo2dr.verify import load_manifest

    contents = load_manifest(store, entry, trust).contents
    if kind == "code":
        from dulwich.repo import Repo

        from vo2dr.sources.code import check_restored

        repo = Repo(str(target))
        try:
            problems = check_restored(repo, contents)
        finally:
            repo.close()
        if problems:
            raise IntegrityError("; ".join(problems))
        return {"refs": len(contents.get("refs", {}))}
    bad = [f["path"] for f in contents.get("files", [])
           if hashlib.sha256((target / "files" / f["path"]).read_bytes()).hexdigest()
           != f["sha256"]]
    missing = [s["name"] for s in contents.get("secrets", [])
               if not (target / "secrets" / s["name"]).is_file()]
    missing += [p["name"] for p in contents.get("parameters", [])
                if not (target / "parameters" / p["name"].lstrip("/")).is_file()]
    if bad or missing:
        raise IntegrityError(f"restored config differs from the manifest: files {bad}, "
                             f"secrets {missing}")
    return {"files": len(contents.get("files", [])),
            "secrets": len(contents.get("secrets", []))}


def drill_sources(settings: Settings, *, stores: Mapping[str, BackupStore],
                  rto_override_seconds: float | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  recovery_key_pem: bytes | None = None) -> list[SourceReport]:
    """:func:`drill_source` for every configured application source."""
    app = settings.strategy().application
    if app is None:
        return []
    from vo2dr.snapshots.drill import drill_snapshot  # assets and logs: a sampled restore

    return [*(drill_source(settings, kind, stores=stores,
                           rto_override_seconds=rto_override_seconds, clock=clock,
                           recovery_key_pem=recovery_key_pem)
              for kind in app.sources()),
            *(drill_snapshot(settings, kind, stores=stores,
                             rto_override_seconds=rto_override_seconds, clock=clock,
                             recovery_key_pem=recovery_key_pem)
              for kind in app.snapshots)]
