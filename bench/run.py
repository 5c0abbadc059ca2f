"""``make bench``: every section of the benchmark, with each target of the issues it answers as
PASS or MISS, written to ``bench/results/results.json``, ``results.md`` and ``bench.png``.

Sections (:data:`SECTIONS`, each a module of this package; see :mod:`bench.common` for the
interface): ``backup`` (three clouds vs pg_dump -Fc and the original script, pipeline
throughput per core vs one-shot zstd, compression levels), ``restore`` (vo2dr restore from each
store vs pg_restore and psql, the drill's RTO), ``startup`` (fixed start-up, now vs before).
Add a section by appending its module name to :data:`SECTIONS`.

Environment: ``BENCH_SCALES`` (default ``100,400``: about 1 GB and 4 GB of data; dev/seed.py
makes about 10 MB per unit), ``BENCH_REPEAT`` (best of N, default 1), ``BENCH_SECTIONS``
(a comma list, default all), ``BENCH_RESTORE_MB`` (the restore's scale: nearest to it, default
1000), ``BENCH_BASELINE_REF`` (the start-up baseline commit), ``BENCH_NOTE`` (a line for the
report, e.g. that the machine was shared).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import sysconfig
import warnings
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import psutil

from bench.common import RESULTS, ROOT, Context, log, scale_env

warnings.filterwarnings("ignore", category=FutureWarning)

SECTIONS = ("backup", "restore", "startup", "snapshots")
DEFAULT_SCALES = (100.0, 400.0)


def sections() -> list[tuple[str, ModuleType]]:
    wanted = [s.strip() for s in os.environ.get("BENCH_SECTIONS", "").split(",") if s.strip()]
    names = wanted or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown bench section(s) {unknown}: use {', '.join(SECTIONS)}")
    return [(n, importlib.import_module(f"bench.{n}")) for n in names]


def run(ctx: Context, checkpoint: Any = None) -> dict[str, Any]:
    """Every section; ``checkpoint(results_so_far)`` after each scale, so a run that has to be
    stopped still leaves the scales it finished in bench/results."""
    mods = sections()
    out: dict[str, Any] = {name: {"scales": [], "run": None} for name, _ in mods}
    scaled = [(n, m) for n, m in mods if hasattr(m, "at_scale")]
    if scaled:
        for scale in ctx.scales:
            with scale_env(scale) as env:
                for name, mod in scaled:
                    try:
                        res = mod.at_scale(env, ctx)
                    except Exception as exc:  # noqa: BLE001 - one section's failure is reported
                        log(f"section {name} failed at scale {scale:g}: {exc!r}")
                        res = {"scale": scale, "error": repr(exc)}
                        out[name].setdefault("errors", []).append(res)
                        continue
                    if res is not None:
                        out[name]["scales"].append(res)
                    ctx.results[name] = out[name]
            if checkpoint is not None:
                checkpoint(out)
    for name, mod in mods:
        if hasattr(mod, "run"):
            try:
                out[name]["run"] = mod.run(ctx)
            except Exception as exc:  # noqa: BLE001
                log(f"section {name} failed: {exc!r}")
                out[name].setdefault("errors", []).append({"error": repr(exc)})
        ctx.results[name] = out[name]
    return out


def all_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, mod in sections():
        res = results["sections"].get(name) or {}
        if hasattr(mod, "targets"):
            for row in mod.targets(res):
                rows.append({"section": name, **row})
        for err in res.get("errors", []):
            rows.append({"section": name, "target": "section ran", "measured": err["error"],
                         "ratio": None, "limit": "-", "verdict": "MISS",
                         "why": "the section failed"})
    return rows


def write_markdown(results: dict[str, Any]) -> None:
    m = results["machine"]
    out = ["# Benchmark", "",
           f"Run {results['started_at']} to {results['finished_at']} on {m['cpus']} CPUs, "
           f"{m['memory_gb']} GB RAM, {m['platform']}, Python {m['python']}, pg_dump "
           f"{m['pg_dump']}, at commit `{results['commit']}`. PostgreSQL and the emulators "
           "(moto, gcp-storage-emulator, Azurite) run on the same machine, so every wall time "
           "includes their CPU use; wall times are the best of "
           f"{results['repeat']} run(s). CPU is user + system time of the measured process "
           "tree (not of the PostgreSQL server or the emulators). Peak RSS is the whole process "
           "tree, sampled every 20 ms; Σ per-process peak adds up each process's own peak "
           "(VmHWM), an upper bound no spike between samples escapes.", ""]
    if results.get("note"):
        out += [f"**Note:** {results['note']}", ""]
    if results.get("second_run"):
        r2 = results["second_run"]
        out += [f"**Two runs:** scale(s) {r2['scales']} were measured by a second run "
                f"({r2['started_at']} to {r2['finished_at']}, commit `{r2['commit']}`, same "
                "machine, same code under `lambdas/`), merged here.", ""]
    if results.get("partial"):
        out += [f"**Partial:** written after a finished scale; the run went on past "
                f"{results['finished_at']} (scales asked for: {results['scales']}).", ""]
    out += ["## Targets", "", "| section | target | measured | ratio | limit | verdict |",
            "|---|---|---|---:|---|---|"]
    for t in results["targets"]:
        out.append(f"| {t['section']} | {t['target']} | {t['measured']} | "
                   f"{'' if t['ratio'] is None else t['ratio']} | {t['limit']} | "
                   f"**{t['verdict']}** |")
    misses = [t for t in results["targets"] if t["verdict"] == "MISS"]
    if misses:
        out += ["", "Why each MISS:", ""]
        out += [f"- {t['target']}: {t['why'] or t['measured']}" for t in misses]
    for name, mod in sections():
        res = results["sections"].get(name) or {}
        out += ["", f"## {getattr(mod, 'TITLE', name)}", ""]
        if hasattr(mod, "markdown"):
            out += mod.markdown(res)
    out += ["", "![wall time and peak RSS](bench.png)", ""]
    (RESULTS / "results.md").write_text("\n".join(out))


def plot(results: dict[str, Any]) -> None:
    """Backup wall time and peak RSS per scale, and restore wall time by method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.backup import LABELS, METHODS

    backup = (results["sections"].get("backup") or {}).get("scales") or []
    restore = [s for s in (results["sections"].get("restore") or {}).get("scales") or []
               if "runs" in s]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    ax_t, ax_m, ax_r = axes
    if backup:
        width = 0.8 / len(METHODS)
        xs = range(len(backup))
        for i, method in enumerate(METHODS):
            offs = [x + (i - (len(METHODS) - 1) / 2) * width for x in xs]
            ax_t.bar(offs, [s["runs"].get(method, {}).get("wall_s", 0) for s in backup], width,
                     label=LABELS[method])
            ax_m.bar(offs, [s["runs"].get(method, {}).get("peak_rss_mb", 0) for s in backup],
                     width, label=LABELS[method])
        ticks = [f"{s['data_mb'] / 1000:.1f} GB of data" for s in backup]
        for ax in (ax_t, ax_m):
            ax.set_xticks(list(xs))
            ax.set_xticklabels(ticks)
        ax_m.axhline(300, color="red", linestyle="--", linewidth=1, label="300 MB target")
        ax_m.legend(fontsize=7, loc="upper left")
    ax_t.set_ylabel("wall time (s)")
    ax_t.set_title("Backup wall time (lower is better)")
    ax_m.set_ylabel("peak RSS of the process tree (MB)")
    ax_m.set_title("Backup peak memory")
    if restore:
        runs = restore[0]["runs"]
        names = [n for n in runs if n != "drill"]
        ax_r.barh(names, [runs[n]["wall_s"] for n in names],
                  color=["grey" if not n.startswith("vo2dr") else "tab:blue" for n in names])
        ax_r.set_xlabel("wall time (s)")
        ax_r.set_title(f"Restore, {restore[0]['data_mb'] / 1000:.1f} GB of data")
    fig.tight_layout()
    fig.savefig(RESULTS / "bench.png", dpi=100)
    plt.close(fig)


def main() -> int:
    from dev.demo import vo2dr_exe
    from dev.servers import PG_BIN

    raw = os.environ.get("BENCH_SCALES", "")
    scales = [float(x) for x in raw.split(",") if x.strip()] or list(DEFAULT_SCALES)
    repeat = max(1, int(os.environ.get("BENCH_REPEAT", "1")))
    if vo2dr_exe() is None:
        log("`vo2dr` is not installed: run `make install` first")
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    # uv installs without bytecode and PYTHONDONTWRITEBYTECODE may be set: compile once, so
    # that no measured run pays for compiling the packages it imports.
    log("compiling the packages' bytecode (once)")
    subprocess.run([sys.executable, "-m", "compileall", "-q", sysconfig.get_paths()["purelib"],
                    str(ROOT / "lambdas")], capture_output=True, check=False,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    pg_dump_version = subprocess.run([str(PG_BIN / "pg_dump"), "--version"],
                                     capture_output=True, text=True, check=True).stdout.split()[-1]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    ctx = Context(scales=scales, repeat=repeat,
                  baseline_ref=os.environ.get("BENCH_BASELINE_REF", ""))
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeat": repeat, "scales": scales, "commit": commit,
        "note": os.environ.get("BENCH_NOTE", ""),
        "machine": {"cpus": os.cpu_count(),
                    "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
                    "platform": platform.platform(terse=True), "python": platform.python_version(),
                    "pg_dump": pg_dump_version},
    }
    def write(sections_done: dict[str, Any], partial: bool) -> None:
        results["sections"] = sections_done
        results["partial"] = partial
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["targets"] = all_targets(results)
        (RESULTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        write_markdown(results)
        plot(results)

    write(run(ctx, checkpoint=lambda done: write(done, partial=True)), partial=False)
    print()
    for t in results["targets"]:
        print(f"{t['verdict']:4}  {t['target']}: {t['measured']} (ratio {t['ratio']})")
    print(f"\nwritten: {RESULTS / 'results.json'}, results.md, bench.png")
    return 1 if any(t["verdict"] == "MISS" and t["target"] == "section ran"
                    for t in results["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
