"""Backup: one streamed backup to three clouds against ``pg_dump -Fc`` and the original
sequential script; the pipeline's throughput per CPU-second against a one-shot zstd of the
same dump, stage by stage; and the storage/CPU trade of the compression levels.

At each scale:

- ``floor``      ``pg_dump --format=custom --compress=0`` to /dev/null: the dump vo2dr runs,
                 alone (the source every pipeline reads);
- ``pg_dump_fc`` ``pg_dump -Fc`` to /dev/null with its default (gzip) compression;
- ``startup``    ``vo2dr backup --null-destinations 3`` of an empty database: the fixed cost;
- ``null``       ``vo2dr backup --data-class full --null-destinations 3``: the whole pipeline
                 with destinations that hash and discard;
- ``vo2dr``      ``vo2dr backup --data-class full`` to moto, the GCS emulator and Azurite;
- ``sequential`` ``bench/sequential.py``: the original script.

Then, on the same dump written to a file: ``bench.stages`` (the cost of each stage alone and
a one-shot zstd at the stack's level) and one-shot zstd at levels 1 and 3 (size and CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import (
    Context,
    ScaleEnv,
    best_of,
    log,
    logged,
    measure,
    ratio,
    verdict,
)

TITLE = "Backup to three clouds, pipeline throughput, compression level"
METHODS = ("floor", "pg_dump_fc", "startup", "null", "vo2dr", "sequential")
LABELS = {
    "floor": "pg_dump -Fc -Z0 → /dev/null (the dump alone)",
    "pg_dump_fc": "pg_dump -Fc (gzip) → /dev/null",
    "startup": "vo2dr, 3 null destinations, empty database (fixed cost)",
    "null": "vo2dr, 3 null destinations",
    "vo2dr": "vo2dr → S3 + GCS + Azure",
    "sequential": "original script (sequential)",
}
TARGET_FC_OVER_VO2DR = 2.0
TARGET_SEQUENTIAL_OVER_VO2DR = 3.0
TARGET_PER_CORE = 0.8
TARGET_PEAK_RSS_MB = 300.0
LEVELS = (1, 3)


def stack_level() -> int:
    from vo2dr.strategy import load_strategy

    from bench.common import ROOT

    strategy = load_strategy({"VO2DR_STACK_FILE": str(ROOT / "Pulumi.production.yaml")})
    assert strategy.compression is not None
    return strategy.compression.level


def at_scale(env: ScaleEnv, ctx: Context) -> dict[str, Any]:
    pg_dump = str(env.pg_bin / "pg_dump")
    floor_cmd = [pg_dump, "--format=custom", "--compress=0", f"--dbname={env.url}"]
    null_cmd = [env.exe, "backup", "--data-class", "full", "--null-destinations", "3",
                "--no-progress"]
    commands: dict[str, tuple[list[str], dict[str, Any]]] = {
        "floor": (floor_cmd, {"stdout_to_null": True}),
        "pg_dump_fc": ([pg_dump, "-Fc", f"--dbname={env.url}"], {"stdout_to_null": True}),
        "startup": (null_cmd, {"env": {**env.env, "DATABASE_URL": env.empty_url}}),
        "null": (null_cmd, {}),
        "vo2dr": ([env.exe, "backup", "--data-class", "full", "--no-progress"], {}),
        "sequential": ([sys.executable, "-m", "bench.sequential"], {}),
    }
    measure(floor_cmd, env.env, stdout_to_null=True)  # warm the page cache, not recorded
    runs: dict[str, Any] = {}
    # BENCH_BACKUP_METHODS (a comma list) and BENCH_STAGES=0 shorten a run (a large scale on a
    # busy machine); the targets that need a method left out are then n/a.
    wanted = [m for m in os.environ.get("BENCH_BACKUP_METHODS", "").split(",") if m] or METHODS
    for method in (m for m in METHODS if m in wanted):
        cmd, kw = commands[method]
        log(f"scale {env.scale:g}: {LABELS[method]}")
        kw = dict(kw)
        runs[method] = logged(method, best_of(ctx.repeat, cmd, kw.pop("env", env.env), **kw))

    level = stack_level()
    if os.environ.get("BENCH_STAGES", "1") == "0":
        return {"scale": env.scale, "data_mb": env.data_mb, "database_mb": env.database_mb,
                "rows": env.rows, "seed_s": env.seed_s, "level": level, "runs": runs,
                "stages": {}, "levels": {}, "derived": derived(runs, {})}
    # The same dump as a file: each stage alone, and one-shot zstd at each level.
    dump = env.scratch / "backup.dump"
    with open(dump, "wb") as fh:
        subprocess.run(floor_cmd, stdout=fh, check=True)
    log(f"scale {env.scale:g}: pipeline stages at zstd level {level} on "
        f"{dump.stat().st_size / 1e6:.0f} MB of dump")
    stages = _json([sys.executable, "-m", "bench.stages", str(dump), str(level)])
    levels = {str(lv): _json([sys.executable, "-m", "bench.stages", str(dump), str(lv),
                              "oneshot"]) for lv in LEVELS}
    dump.unlink()
    return {"scale": env.scale, "data_mb": env.data_mb, "database_mb": env.database_mb,
            "rows": env.rows, "seed_s": env.seed_s, "level": level, "runs": runs,
            "stages": stages, "levels": levels, "derived": derived(runs, stages)}


def _json(cmd: list[str]) -> dict[str, Any]:
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def derived(runs: dict[str, Any], stages: dict[str, Any]) -> dict[str, Any]:
    def ok(m: str) -> dict[str, Any] | None:
        r = runs.get(m)
        return r if r and r["rc"] == 0 else None

    null, floor, startup = ok("null"), ok("floor"), ok("startup")
    out: dict[str, Any] = {
        "fc_over_vo2dr": ratio(_wall(runs, "pg_dump_fc"), _wall(runs, "vo2dr")),
        "sequential_over_vo2dr": ratio(_wall(runs, "sequential"), _wall(runs, "vo2dr")),
        "null_over_floor": ratio(_wall(runs, "null"), _wall(runs, "floor")),
    }
    plain_mb = None
    if null and isinstance(null.get("output"), dict) and null["output"].get("plaintext"):
        plain_mb = null["output"]["plaintext"]["bytes"] / 1e6
    out["dump_mb"] = round(plain_mb, 1) if plain_mb else None
    if null and floor and startup and plain_mb:
        # The job's own CPU for the data: the run's, less pg_dump's (the floor's) and the fixed
        # start-up (the empty database's run, which includes its tiny pg_dump).
        pipeline_cpu = null["cpu_s"] - floor["cpu_s"] - startup["cpu_s"]
        out["pipeline_cpu_s"] = round(pipeline_cpu, 3)
        out["pipeline_mb_per_cpu_s"] = round(plain_mb / pipeline_cpu, 1) if pipeline_cpu > 0 \
            else None
        out["whole_job_mb_per_cpu_s"] = round(plain_mb / (null["cpu_s"] - floor["cpu_s"]), 1)
    oneshot = stages.get("zstd_oneshot", {}).get("mb_per_cpu_s")
    out["zstd_oneshot_mb_per_cpu_s"] = oneshot
    in_process = stages.get("mb_per_cpu_s", {}).get("pipeline")
    out["in_process_pipeline_mb_per_cpu_s"] = in_process
    out["per_core_over_zstd"] = ratio(out.get("pipeline_mb_per_cpu_s"), oneshot)
    out["in_process_over_zstd"] = ratio(in_process, oneshot)
    return out


def _wall(runs: dict[str, Any], m: str) -> float | None:
    r = runs.get(m)
    return r["wall_s"] if r and r["rc"] == 0 else None


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    scales = result.get("scales") or []
    for s in scales:
        d, runs = s["derived"], s["runs"]
        tag = f"{s['data_mb'] / 1000:.1f} GB"
        fc, seq = d["fc_over_vo2dr"], d["sequential_over_vo2dr"]
        rows.append(verdict(
            f"backup to 3 clouds ≥ {TARGET_FC_OVER_VO2DR:g}x faster than pg_dump -Fc ({tag})",
            f"{_wall(runs, 'pg_dump_fc')} s vs {_wall(runs, 'vo2dr')} s", fc,
            f"≥ {TARGET_FC_OVER_VO2DR:g}", None if fc is None else fc >= TARGET_FC_OVER_VO2DR))
        rows.append(verdict(
            f"backup to 3 clouds ≥ {TARGET_SEQUENTIAL_OVER_VO2DR:g}x faster than the original "
            f"script ({tag})", f"{_wall(runs, 'sequential')} s vs {_wall(runs, 'vo2dr')} s", seq,
            f"≥ {TARGET_SEQUENTIAL_OVER_VO2DR:g}",
            None if seq is None else seq >= TARGET_SEQUENTIAL_OVER_VO2DR))
        pc = d.get("per_core_over_zstd")
        st = s["stages"]
        if not st:
            pc = None
        why = ""
        if pc is not None and pc < TARGET_PER_CORE:
            cpu = st["cpu_s"]
            extra = {k: v for k, v in cpu.items() if k not in ("compress", "pipeline", "read")}
            must = sum(v for k, v in cpu.items() if k not in ("compress", "pipeline"))
            one = st["zstd_oneshot"]["cpu_s"]
            left = one / TARGET_PER_CORE - cpu["compress"]  # CPU s the target leaves
            why = ("per stage alone (CPU s): compress " + f"{cpu['compress']:.2f}, " + ", ".join(
                f"{k} {v:.2f}" for k, v in extra.items())
                + f", read {cpu.get('read', 0.0):.2f}; one-shot zstd {one:.2f}; in one process "
                f"the pipeline took {cpu['pipeline']:.2f} against a stage sum of "
                f"{st.get('sum_of_stages_cpu_s', 0.0):.2f}. What the pipeline must do besides "
                f"compressing ({must:.2f} s: the "
                "pipe read, the plaintext SHA-256 for the manifest, the Encryption SDK's AES-GCM "
                "(committing suite, no per-message signature: the signed manifest pins the "
                "ciphertext), and the ciphertext's SHA-256, computed once for every destination) "
                + (f"costs more than the {left:.2f} s the target leaves beside compress "
                   f"(one-shot zstd / {TARGET_PER_CORE} - compress)" if must > left else
                   f"fits in the {left:.2f} s the target leaves beside compress (one-shot zstd / "
                   f"{TARGET_PER_CORE} - compress); the rest is the job's own overhead (threads, "
                   "queues, pg_dump's pipe)"))
        if not st:
            continue
        rows.append(verdict(
            f"null-destination pipeline per core ≥ {TARGET_PER_CORE}x one-shot zstd-{s['level']} "
            f"({tag})",
            f"{d.get('pipeline_mb_per_cpu_s')} vs {d.get('zstd_oneshot_mb_per_cpu_s')} MB of "
            "dump per CPU-s", pc, f"≥ {TARGET_PER_CORE}",
            None if pc is None else pc >= TARGET_PER_CORE, why))
        for m in (m for m in ("vo2dr", "null") if m in runs):
            rss = runs[m]["peak_rss_mb"]
            rows.append(verdict(f"peak RSS of backup ({m}, {tag}) < {TARGET_PEAK_RSS_MB:.0f} MB",
                                f"{rss:.0f} MB", None, f"< {TARGET_PEAK_RSS_MB:.0f} MB",
                                rss < TARGET_PEAK_RSS_MB))
    if len(scales) >= 2:
        small, big = scales[0]["runs"]["vo2dr"], scales[-1]["runs"]["vo2dr"]
        growth = big["peak_rss_mb"] / max(small["peak_rss_mb"], 1)
        data_growth = scales[-1]["data_mb"] / max(scales[0]["data_mb"], 1)
        rows.append(verdict("peak RSS of backup flat as the data grows",
                            f"{small['peak_rss_mb']:.0f} → {big['peak_rss_mb']:.0f} MB while the "
                            f"data grows {data_growth:.1f}x", growth, "≈ 1 (≤ 1.3)",
                            growth <= 1.3))
    return rows


def markdown(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for s in result.get("scales") or []:
        d = s["derived"]
        out += [f"### {s['data_mb']:.0f} MB of data ({s['rows']:,} rows, seeded in "
                f"{s['seed_s']} s)", "",
                "| run | wall (s) | CPU (s) | peak RSS (MB) | Σ per-process peak (MB) | notes |",
                "|---|---:|---:|---:|---:|---|"]
        for method in (m for m in METHODS if m in s["runs"]):
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
        st = s["stages"]
        if not st:
            out += ["", "(pipeline stages and compression levels measured at the smaller "
                    "scale only in this run)", ""]
            continue
        out += ["", f"Pipeline stages alone on this dump ({st['plaintext_bytes'] / 1e6:.0f} MB, "
                f"zstd level {s['level']}; `bench/stages.py`, CPU of one process):", "",
                "| stage | CPU (s) | MB of dump per CPU-s |", "|---|---:|---:|"]
        for k, v in st["cpu_s"].items():
            out.append(f"| {k} | {v:.3f} | {st['mb_per_cpu_s'][k]} |")
        z = st["zstd_oneshot"]
        out.append(f"| one-shot zstd-{z['level']} (the limit) | {z['cpu_s']:.3f} | "
                   f"{z['mb_per_cpu_s']} |")
        out += ["", f"- job's pipeline CPU for the data (null run - pg_dump alone - fixed "
                f"start-up): {d.get('pipeline_cpu_s')} s for {d.get('dump_mb')} MB of dump = "
                f"**{d.get('pipeline_mb_per_cpu_s')} MB/CPU-s**, against one-shot zstd "
                f"{d.get('zstd_oneshot_mb_per_cpu_s')} MB/CPU-s: "
                f"**{d.get('per_core_over_zstd')}x** (in one process, without pg_dump or "
                f"start-up: {d.get('in_process_pipeline_mb_per_cpu_s')} MB/CPU-s, "
                f"{d.get('in_process_over_zstd')}x)."]
        l1, l3 = s["levels"].get("1"), s["levels"].get("3")
        if l1 and l3:
            out += [f"- compression level, one-shot on this dump: level 1 "
                    f"{l1['compressed_bytes'] / 1e6:.1f} MB (ratio {l1['ratio']}) in "
                    f"{l1['cpu_s']:.2f} CPU-s; level 3 {l3['compressed_bytes'] / 1e6:.1f} MB "
                    f"(ratio {l3['ratio']}) in {l3['cpu_s']:.2f} CPU-s. Level 1 stores "
                    f"{100 * (l1['compressed_bytes'] / l3['compressed_bytes'] - 1):+.1f}% "
                    f"bytes for {100 * (l1['cpu_s'] / l3['cpu_s'] - 1):+.0f}% CPU."]
        out.append("")
    return out
