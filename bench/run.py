"""``make bench``: what one streamed backup to three clouds costs, against the floor and
against the original sequential script.

At each scale (default about 100 MB and about 1 GB of data; ``BENCH_SCALES=1,10`` to override,
``BENCH_REPEAT=N`` to repeat each run and keep the fastest) it seeds a fresh database, sets up
the three local clouds from the staging stack, and measures wall time and the peak RSS of the
whole child process tree (sampled with psutil) of:

- ``floor``      ``pg_dump --format=custom --compress=0`` to /dev/null: the dump vo2dr runs,
                 alone (the floor of any pipeline around it);
- ``pg_dump_fc`` ``pg_dump -Fc`` to /dev/null with its default (gzip) compression, for scale;
- ``null``       ``vo2dr backup --data-class full --null-destinations 3``: the whole pipeline
                 (dump, zstd, envelope encryption, hashing, three-way fan-out) with
                 destinations that hash and discard;
- ``vo2dr``      ``vo2dr backup --data-class full`` to moto, the GCS emulator and Azurite;
- ``sequential`` ``bench/sequential.py``: the original script (plain pg_dump to a file, gzip,
                 then S3, GCS and Azure uploads one after another).

Writes ``bench/results/results.json``, ``results.md`` and ``bench.png``, and prints the ratios
against the targets (null/floor ≤ 1.15, sequential/vo2dr ≥ 2, peak RSS < 300 MB and flat).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from dev import localcloud, seed, servers
from dev.demo import job_env, vo2dr_exe

warnings.filterwarnings("ignore", category=FutureWarning)

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SCALES = (10.0, 100.0)  # about 100 MB and 1 GB of data (dev/seed.py: 10 MB per unit)
TARGET_NULL_OVER_FLOOR = 1.15
TARGET_SEQUENTIAL_OVER_VO2DR = 2.0
TARGET_PEAK_RSS_MB = 300.0
SAMPLE_EVERY_S = 0.02
METHODS = ("floor", "pg_dump_fc", "startup", "null", "vo2dr", "sequential")
LABELS = {
    "floor": "pg_dump -Fc -Z0 → /dev/null (floor)",
    "pg_dump_fc": "pg_dump -Fc (gzip) → /dev/null",
    "startup": "vo2dr, 3 null destinations, empty database (fixed cost)",
    "null": "vo2dr, 3 null destinations",
    "vo2dr": "vo2dr → S3 + GCS + Azure",
    "sequential": "original script (sequential)",
}


def log(msg: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {msg}", flush=True)


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
            ) -> dict[str, Any]:
    load = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL if stdout_to_null
                                else out, stderr=err)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        # wait4: the CPU time of the process and every descendant it waited for (pg_dump, gzip)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
        peak, hwm_sum = sampler.stop()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    result: dict[str, Any] = {"wall_s": round(wall, 3), "peak_rss_mb": round(peak / 1e6, 1),
                              "hwm_sum_mb": round(hwm_sum / 1e6, 1),
                              "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                              "rc": rc, "load_before": round(load, 2)}
    with contextlib.suppress(json.JSONDecodeError, ValueError):
        start = stdout.find("{")
        if start >= 0:
            result["output"] = json.loads(stdout[start:])
    if rc != 0:
        result["stderr_tail"] = stderr.strip()[-600:]
    return result


def best_of(repeat: int, cmd: list[str], env: dict[str, str], **kw: Any) -> dict[str, Any]:
    runs = [measure(cmd, env, **kw) for _ in range(repeat)]
    ok = [r for r in runs if r["rc"] == 0] or runs
    best = min(ok, key=lambda r: r["wall_s"])
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["hwm_sum_mb"] = max(r["hwm_sum_mb"] for r in runs)
    best["all_wall_s"] = [r["wall_s"] for r in runs]
    return best


def bench_scale(scale: float, repeat: int) -> dict[str, Any]:
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
        key_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vo2dr-bench-")))
        cloud = localcloud.create(services, key_dir)
        env = job_env(cloud.env, url, pg.url("postgres"))
        exe = vo2dr_exe() or "vo2dr"
        pg_dump = str(servers.PG_BIN / "pg_dump")
        floor_cmd = [pg_dump, "--format=custom", "--compress=0", f"--dbname={url}"]
        commands = {
            "floor": (floor_cmd, {"stdout_to_null": True}),
            "pg_dump_fc": ([pg_dump, "-Fc", f"--dbname={url}"], {"stdout_to_null": True}),
            "startup": ([exe, "backup", "--data-class", "full", "--null-destinations", "3",
                         "--no-progress"], {"env": {**env, "DATABASE_URL": empty_url}}),
            "null": ([exe, "backup", "--data-class", "full", "--null-destinations", "3",
                      "--no-progress"], {}),
            "vo2dr": ([exe, "backup", "--data-class", "full", "--no-progress"], {}),
            "sequential": ([sys.executable, "-m", "bench.sequential"], {}),
        }
        measure(floor_cmd, env, stdout_to_null=True)  # warm the page cache, not recorded
        runs = {}
        for method in METHODS:
            cmd, kw = commands[method]
            log(f"scale {scale:g}: {LABELS[method]}")
            runs[method] = best_of(repeat, cmd, kw.pop("env", env), **kw)
            r = runs[method]
            log(f"  {r['wall_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB"
                + ("" if r["rc"] == 0 else f", FAILED rc={r['rc']}: "
                   f"{r.get('stderr_tail', '')[-300:]}"))
        return {"scale": scale, "data_mb": round(report.data_mb, 1),
                "database_mb": round(report.database_mb, 1), "seed_s": round(report.seconds, 1),
                "rows": sum(s.rows for s in report.tables.values()), "runs": runs,
                "ratios": ratios(runs)}


def ratios(runs: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    def wall(m: str) -> float | None:
        r = runs.get(m)
        return r["wall_s"] if r and r["rc"] == 0 else None

    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    steady = (wall("null") or 0) - (wall("startup") or 0)
    return {"null_over_floor": div(wall("null"), wall("floor")),
            "null_minus_startup_over_floor": div(steady if steady > 0 else None, wall("floor")),
            "null_over_pg_dump_fc": div(wall("null"), wall("pg_dump_fc")),
            "sequential_over_vo2dr": div(wall("sequential"), wall("vo2dr")),
            "vo2dr_over_floor": div(wall("vo2dr"), wall("floor"))}


def verdicts(results: dict[str, Any]) -> list[str]:
    lines = []
    scales = results["scales"]
    for s in scales:
        r, runs = s["ratios"], s["runs"]
        tag = f"scale {s['scale']:g} ({s['data_mb']:.0f} MB)"

        def mark(ok: bool | None) -> str:
            return "n/a" if ok is None else ("PASS" if ok else "MISS")

        nf, sv = r["null_over_floor"], r["sequential_over_vo2dr"]
        lines.append(f"{tag}: null/floor = {nf}  (target ≤ {TARGET_NULL_OVER_FLOOR}) "
                     f"{mark(None if nf is None else nf <= TARGET_NULL_OVER_FLOOR)}")
        lines.append(f"{tag}: (null - fixed start-up)/floor = "
                     f"{r.get('null_minus_startup_over_floor')}  (the pipeline's streaming cost)")
        lines.append(f"{tag}: sequential/vo2dr = {sv}  (target ≥ "
                     f"{TARGET_SEQUENTIAL_OVER_VO2DR}) "
                     f"{mark(None if sv is None else sv >= TARGET_SEQUENTIAL_OVER_VO2DR)}")
        for m in ("vo2dr", "null"):
            rss = runs[m]["peak_rss_mb"]
            lines.append(f"{tag}: peak RSS {m} = {rss:.0f} MB  (target < "
                         f"{TARGET_PEAK_RSS_MB:.0f}) {mark(rss < TARGET_PEAK_RSS_MB)}")
    if len(scales) >= 2:
        small, big = scales[0]["runs"]["vo2dr"], scales[-1]["runs"]["vo2dr"]
        growth = big["peak_rss_mb"] / max(small["peak_rss_mb"], 1)
        data_growth = scales[-1]["data_mb"] / max(scales[0]["data_mb"], 1)
        lines.append(f"peak RSS of vo2dr grows {growth:.2f}x while the data grows "
                     f"{data_growth:.1f}x (flat means ≈ 1)")
    return lines


def write_markdown(results: dict[str, Any]) -> None:
    m = results["machine"]
    out = ["# Benchmark: one streamed backup to three clouds", "",
           f"Run {results['finished_at']} on {m['cpus']} CPUs, {m['memory_gb']} GB RAM, "
           f"{m['platform']}, pg_dump {m['pg_dump']}. Emulators (moto, gcp-storage-emulator, "
           "Azurite) and PostgreSQL run on the same machine, so every number includes their "
           "CPU use; wall times are the best of "
           f"{results['repeat']} run(s). Peak RSS is the whole child process tree (the job and "
           "its pg_dump; for the sequential script also gzip), sampled every "
           f"{SAMPLE_EVERY_S * 1000:.0f} ms; the last column adds up each process's own peak "
           "(VmHWM), an upper bound that no spike between samples can escape. CPU is user + "
           "system time of the tree (not of the PostgreSQL backend or the emulators).", ""]
    for s in results["scales"]:
        out += [f"## Scale {s['scale']:g}: {s['data_mb']:.0f} MB of data "
                f"({s['rows']:,} rows, seeded in {s['seed_s']} s)", "",
                "| run | wall (s) | CPU (s) | peak RSS (MB) | Σ per-process peak (MB) | notes |",
                "|---|---:|---:|---:|---:|---|"]
        for method in METHODS:
            r = s["runs"][method]
            note = "" if r["rc"] == 0 else f"failed (rc {r['rc']})"
            o = r.get("output") or {}
            if method in ("vo2dr", "null") and isinstance(o, dict) and o.get("plaintext"):
                note = (f"dump {o['plaintext']['bytes'] / 1e6:.0f} MB → "
                        f"{o['ciphertext']['bytes'] / 1e6:.0f} MB encrypted")
            if method == "sequential" and isinstance(o, dict) and o.get("steps"):
                note = ", ".join(f"{k} {v:.1f}s" for k, v in o["steps"].items()) + \
                       f"; {o['plain_bytes'] / 1e6:.0f} MB SQL → {o['gzip_bytes'] / 1e6:.0f} MB gz"
            out.append(f"| {LABELS[method]} | {r['wall_s']:.2f} | {r.get('cpu_s', 0):.1f} | "
                       f"{r['peak_rss_mb']:.0f} | {r['hwm_sum_mb']:.0f} | {note} |")
        out.append("")
    out += ["## Ratios against the targets", "", *[f"- {line}" for line in verdicts(results)],
            "", "## Reading the numbers", "",
            "- `vo2dr` pays a fixed start-up (Python imports of the three SDKs and the AWS "
            "Encryption SDK, the KMS data key, the first listing) measured by the empty-database "
            "run; at about 100 MB it dominates, so ratios there say little about streaming.",
            "- The floor runs `pg_dump` uncompressed, exactly as vo2dr runs it; the pipeline adds "
            "zstd, encryption and two SHA-256 on the same CPUs as PostgreSQL and pg_dump. With "
            "2 CPUs the floor already keeps both busy (the PostgreSQL backend is not in the CPU "
            "column), so anything the pipeline computes shows up in wall time.",
            "- `pg_dump -Fc` with its default gzip is what the issue literally names as the floor; "
            "it is several times slower than the whole vo2dr pipeline.",
            "- The sequential script's uploads are cheap here (local emulators, no network): "
            "its cost is single-threaded gzip of plain SQL and the temporary file. Against real "
            "clouds, three uploads one after another add their network time on top, so the "
            "ratio here is a lower bound.",
            "- The machine is shared (other jobs were running), so repeat runs vary by up to 2x; "
            "`BENCH_REPEAT=3` keeps the fastest of three.",
            "", "![wall time and peak RSS](bench.png)", ""]
    (RESULTS / "results.md").write_text("\n".join(out))


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = results["scales"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.8 / len(METHODS)
    xs = range(len(scales))
    for i, method in enumerate(METHODS):
        offs = [x + (i - (len(METHODS) - 1) / 2) * width for x in xs]
        ax_t.bar(offs, [s["runs"][method]["wall_s"] for s in scales], width,
                 label=LABELS[method])
        ax_m.bar(offs, [s["runs"][method]["peak_rss_mb"] for s in scales], width,
                 label=LABELS[method])
    ticks = [f"scale {s['scale']:g}\n{s['data_mb']:.0f} MB" for s in scales]
    for ax in (ax_t, ax_m):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(ticks)
    ax_t.set_ylabel("wall time (s)")
    ax_t.set_title("Wall time (lower is better)")
    ax_m.axhline(TARGET_PEAK_RSS_MB, color="red", linestyle="--", linewidth=1,
                 label=f"{TARGET_PEAK_RSS_MB:.0f} MB target")
    ax_m.set_ylabel("peak RSS of the process tree (MB)")
    ax_m.set_title("Peak memory (lower is better)")
    ax_m.legend(fontsize=8, loc="upper left")
    fig.suptitle("vo2dr backup vs pg_dump floor vs the original sequential script")
    fig.tight_layout()
    fig.savefig(RESULTS / "bench.png", dpi=110)
    plt.close(fig)


def main() -> int:
    raw = os.environ.get("BENCH_SCALES", "")
    scales = [float(x) for x in raw.split(",") if x.strip()] or list(DEFAULT_SCALES)
    repeat = max(1, int(os.environ.get("BENCH_REPEAT", "1")))
    if vo2dr_exe() is None:
        log("`vo2dr` is not installed: run `make install` first")
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    pg_dump_version = subprocess.run([str(servers.PG_BIN / "pg_dump"), "--version"],
                                     capture_output=True, text=True, check=True).stdout.split()[-1]
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeat": repeat,
        "targets": {"null_over_floor_max": TARGET_NULL_OVER_FLOOR,
                    "sequential_over_vo2dr_min": TARGET_SEQUENTIAL_OVER_VO2DR,
                    "peak_rss_mb_max": TARGET_PEAK_RSS_MB},
        "machine": {"cpus": os.cpu_count(),
                    "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
                    "platform": platform.platform(terse=True), "python": platform.python_version(),
                    "pg_dump": pg_dump_version},
        "scales": [],
    }
    for scale in scales:
        results["scales"].append(bench_scale(scale, repeat))
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["verdicts"] = verdicts(results)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results)
    plot(results)
    print()
    for line in results["verdicts"]:
        print(line)
    print(f"\nwritten: {RESULTS / 'results.json'}, results.md, bench.png")
    failed = [m for s in results["scales"] for m, r in s["runs"].items() if r["rc"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
