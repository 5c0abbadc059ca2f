"""What every ``make bench`` section shares: running a command and measuring it (wall, CPU of
the whole process tree, peak RSS), a target row (PASS/MISS), and the environment of one scale
(a PostgreSQL server with the seeded database, the three local clouds from the staging stack,
the job's environment), opened once per scale by :mod:`bench.run` and handed to each section.

A section is a module of this package with ``TITLE`` and any of:

- ``at_scale(env: ScaleEnv, ctx: Context) -> dict | None``: measure at one scale (None: skip);
- ``run(ctx: Context) -> dict``: measure once, with its own servers if it needs any;
- ``markdown(result: dict) -> list[str]``: its lines of ``results.md`` (under its heading);
- ``targets(result: dict) -> list[dict]``: rows made by :func:`verdict`.

``result`` is ``{"scales": [at_scale results...], "run": run result}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE_EVERY_S = 0.02


def log(msg: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {msg}", flush=True)


# -- measuring one command ----------------------------------------------------------------------

class TreeSampler(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants, sampled; and, as an upper
    bound that no short spike can escape, the sum of each process's own peak (VmHWM)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.hwm: dict[int, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(SAMPLE_EVERY_S)

    def sample(self) -> None:
        total = 0
        with contextlib.suppress(psutil.Error):
            for p in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error, OSError, ValueError):
                    total += p.memory_info().rss
                    self.hwm[p.pid] = max(self.hwm.get(p.pid, 0), _vm_hwm(p.pid))
        self.peak = max(self.peak, total)

    def stop(self) -> tuple[int, int]:
        self._done.set()
        self.join()
        return self.peak, sum(self.hwm.values())


def _vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(cmd: list[str], env: dict[str, str], *, stdout_to_null: bool = False,
            stdin: Any = None) -> dict[str, Any]:
    """Run ``cmd``: wall time, CPU (user + system of the process and every descendant it
    waited for, from ``wait4``), peak RSS of the tree, exit code, and its stdout's JSON."""
    load = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL if stdout_to_null
                                else out, stderr=err, stdin=stdin)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
        peak, hwm_sum = sampler.stop()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    result: dict[str, Any] = {"wall_s": round(wall, 3), "peak_rss_mb": round(peak / 1e6, 1),
                              "hwm_sum_mb": round(hwm_sum / 1e6, 1),
                              "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                              "rc": rc, "load_before": round(load, 2)}
    with contextlib.suppress(json.JSONDecodeError, ValueError):
        start = stdout.find("{")
        if start >= 0:
            result["output"] = json.loads(stdout[start:])
    if rc != 0:
        result["stderr_tail"] = stderr.strip()[-600:]
    return result


def best_of(repeat: int, cmd: list[str], env: dict[str, str], *,
            ok_codes: tuple[int, ...] = (0,), **kw: Any) -> dict[str, Any]:
    """The fastest of ``repeat`` runs; peak RSS is the highest of all of them. An exit code in
    ``ok_codes`` counts as success (``vo2dr status`` exits 1 for a breach it reported)."""
    runs = [measure(cmd, env, **kw) for _ in range(repeat)]
    for r in runs:
        if r["rc"] in ok_codes:
            r["exit_code"], r["rc"] = r["rc"], 0
    ok = [r for r in runs if r["rc"] == 0] or runs
    best = min(ok, key=lambda r: r["wall_s"])
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["hwm_sum_mb"] = max(r["hwm_sum_mb"] for r in runs)
    best["all_wall_s"] = [r["wall_s"] for r in runs]
    return best


def logged(label: str, r: dict[str, Any]) -> dict[str, Any]:
    log(f"  {label}: {r['wall_s']:.2f} s wall, {r.get('cpu_s', 0):.2f} s CPU, peak RSS "
        f"{r['peak_rss_mb']:.0f} MB" + ("" if r["rc"] == 0 else
                                        f", FAILED rc={r['rc']}: "
                                        f"{r.get('stderr_tail', '')[-300:]}"))
    return r


# -- targets --------------------------------------------------------------------------------------

def verdict(target: str, measured: str, ratio: float | None, limit: str, ok: bool | None,
            why: str = "") -> dict[str, Any]:
    """One row of the targets table: what, the number measured, the ratio, the limit, PASS /
    MISS (n/a when it could not be measured), and for a MISS the measurement that limits it."""
    return {"target": target, "measured": measured,
            "ratio": None if ratio is None else round(ratio, 3), "limit": limit,
            "verdict": "n/a" if ok is None else ("PASS" if ok else "MISS"), "why": why}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


# -- one scale's environment ---------------------------------------------------------------------

@dataclass
class ScaleEnv:
    scale: float
    server_url: str  # the PostgreSQL server's maintenance URL (database postgres)
    url: str  # the seeded database
    empty_url: str  # an empty database (fixed-cost runs)
    env: dict[str, str]  # the job's environment (three local clouds, DATABASE_URL)
    exe: str  # the vo2dr console script
    pg_bin: Path
    key_dir: Path  # recovery and signing keys
    data_mb: float
    database_mb: float
    rows: int
    seed_s: float
    scratch: Path  # a private temporary directory, removed with the environment
    facts: dict[str, Any] = field(default_factory=dict)

    def create_database(self, name: str) -> str:
        from dev import seed

        return seed.create_database(self.server_url, name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def database_url(self, name: str) -> str:
        return self.server_url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def scale_env(scale: float) -> Iterator[ScaleEnv]:
    from dev import localcloud, seed, servers
    from dev.demo import job_env, vo2dr_exe

    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(servers.postgres())
        services = [stack.enter_context(servers.moto_server()),
                    stack.enter_context(servers.gcs_emulator()),
                    stack.enter_context(servers.azurite())]
        url = seed.create_database(pg.url(), "vo2max")
        empty_url = seed.create_database(pg.url(), "empty")
        log(f"scale {scale:g}: seeding")
        report = seed.seed(url, scale)
        log(f"scale {scale:g}: {report.data_mb:.0f} MB of data seeded in {report.seconds:.1f} s")
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vo2dr-bench-")))
        key_dir = scratch / "keys"
        key_dir.mkdir()
        cloud = localcloud.create(services, key_dir)
        yield ScaleEnv(scale=scale, server_url=pg.url("postgres"), url=url,
                       empty_url=empty_url, env=job_env(cloud.env, url, pg.url("postgres")),
                       exe=vo2dr_exe() or "vo2dr", pg_bin=servers.PG_BIN, key_dir=key_dir,
                       data_mb=round(report.data_mb, 1), database_mb=round(report.database_mb, 1),
                       rows=sum(s.rows for s in report.tables.values()),
                       seed_s=round(report.seconds, 1), scratch=scratch,
                       # the emulators' process groups, to read their CPU use from /proc
                       facts={"emulator_pgids": {
                           n: svc.proc.pid if svc.proc else 0
                           for n, svc in zip(("s3", "gcs", "azure"), services, strict=True)}})


@dataclass
class Context:
    scales: list[float]
    repeat: int
    # The commit the start-up and pipeline numbers are compared with ("before issue 19").
    baseline_ref: str = ""
    results: dict[str, Any] = field(default_factory=dict)  # sections done so far, by name
