"""Restore: ``vo2dr restore`` from each store (one transaction, and ``--jobs``) against
``pg_restore`` of a local file and ``psql`` of a plain dump of the same data; and the drill's
RTO end to end.

At the scale nearest 1 GB of data (``BENCH_RESTORE_MB``, default 1000):

- ``pg_restore``   the same archive vo2dr restores (``pg_dump -Fc -Z0``), from a local file,
                   into a new database: ``--single-transaction``, and ``--jobs N``;
- ``psql``         a plain-SQL ``pg_dump`` of the same database, ``psql --single-transaction``;
- ``vo2dr``        ``vo2dr restore --source s3|gcs|azure`` of the latest full backup into a new
                   database (download, decryption and every check before a byte reaches
                   PostgreSQL, then pg_restore, then the row counts), one transaction and
                   ``--jobs N``;
- ``drill``        ``vo2dr drill --data-class full``: catalog, restore from the primary store
                   into a scratch database, sanity queries, row counts, drop: the RTO the
                   drill reports, and its wall time.

N is the CPU count of the machine (the target server runs here).
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from bench.common import Context, ScaleEnv, log, logged, measure, ratio, verdict

TITLE = "Restore against pg_restore and psql, and the drill's RTO"
TARGET_RESTORE_OVER_PG_RESTORE = 1.2
TARGET_PEAK_RSS_MB = 300.0
STORES = ("s3", "gcs", "azure")


def at_scale(env: ScaleEnv, ctx: Context) -> dict[str, Any] | None:
    want = float(os.environ.get("BENCH_RESTORE_MB", "1000"))
    nearest = min(ctx.scales, key=lambda s: abs(s * 10.0 - want))  # dev/seed.py: 10 MB a unit
    if env.scale != nearest:
        return None
    jobs = os.cpu_count() or 2
    bin_ = env.pg_bin
    runs: dict[str, Any] = {}

    log(f"scale {env.scale:g}: a backup to restore")
    backup = measure([env.exe, "backup", "--data-class", "full", "--no-progress"], env.env)
    if backup["rc"] != 0:
        return {"scale": env.scale, "error": backup.get("stderr_tail", "backup failed")}
    out = backup.get("output") or {}
    backup_id = out.get("backup_id", "")

    archive = env.scratch / "local.dump"
    plain = env.scratch / "local.sql"
    with open(archive, "wb") as fh:
        subprocess.run([str(bin_ / "pg_dump"), "--format=custom", "--compress=0",
                        f"--dbname={env.url}"], stdout=fh, check=True)
    with open(plain, "wb") as fh:
        subprocess.run([str(bin_ / "pg_dump"), f"--dbname={env.url}"], stdout=fh, check=True)

    def into_new(name: str, cmd: list[str], e: dict[str, str] | None = None,
                 create: bool = True) -> dict[str, Any]:
        if create:
            env.create_database(name)
        r = logged(name, measure(cmd, e or env.env))
        env.drop_database(name)
        return r

    def db(name: str) -> str:
        return env.database_url(name)

    common = ["--no-owner", "--no-privileges", "--exit-on-error"]
    log(f"scale {env.scale:g}: local baselines ({archive.stat().st_size / 1e6:.0f} MB archive, "
        f"{plain.stat().st_size / 1e6:.0f} MB plain SQL)")
    runs["pg_restore_1"] = into_new("b_pg_restore_1", [
        str(bin_ / "pg_restore"), *common, "--single-transaction",
        f"--dbname={db('b_pg_restore_1')}", str(archive)])
    runs[f"pg_restore_{jobs}"] = into_new(f"b_pg_restore_{jobs}", [
        str(bin_ / "pg_restore"), *common, f"--jobs={jobs}",
        f"--dbname={db(f'b_pg_restore_{jobs}')}", str(archive)])
    runs["psql_1"] = into_new("b_psql_1", [
        str(bin_ / "psql"), "--quiet", "--no-psqlrc", "--single-transaction",
        "-v", "ON_ERROR_STOP=1", f"--dbname={db('b_psql_1')}", "--file", str(plain),
        "--output", os.devnull])
    archive.unlink()
    plain.unlink()

    for store in STORES:
        for n in (1, jobs):
            name = f"r_{store}_{n}"
            log(f"scale {env.scale:g}: vo2dr restore from {store}, "
                + ("one transaction" if n == 1 else f"--jobs {n}"))
            runs[f"vo2dr_{store}_{n}"] = into_new(name, [
                env.exe, "restore", "--source", store, "--target-url", db(name),
                "--jobs", str(n), "--allow-superuser", "--no-progress"], create=False)

    log(f"scale {env.scale:g}: drill (full class)")
    runs["drill"] = logged("drill", measure([env.exe, "drill", "--data-class", "full",
                                             "--allow-superuser"], env.env))
    return {"scale": env.scale, "data_mb": env.data_mb, "jobs": jobs, "backup_id": backup_id,
            "runs": runs}


def _wall(runs: dict[str, Any], name: str) -> float | None:
    r = runs.get(name)
    return r["wall_s"] if r and r["rc"] == 0 else None


def _seconds(r: dict[str, Any]) -> dict[str, float]:
    o = r.get("output")
    sec = o.get("seconds") if isinstance(o, dict) else None
    return sec if isinstance(sec, dict) else {}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in result.get("scales") or []:
        if "runs" not in s:
            rows.append(verdict("restore measured", s.get("error", "no result"), None, "-",
                                False))
            continue
        runs, jobs = s["runs"], s["jobs"]
        tag = f"{s['data_mb'] / 1000:.1f} GB"
        for store in STORES:
            for n in (1, jobs):
                base = f"pg_restore_{n}"
                mine = f"vo2dr_{store}_{n}"
                rr = ratio(_wall(runs, mine), _wall(runs, base))
                why = ""
                if rr is not None and rr > TARGET_RESTORE_OVER_PG_RESTORE:
                    sec = _seconds(runs[mine])
                    why = (f"vo2dr's own steps: download+decrypt+verify into the spool "
                           f"{sec.get('download_verify', '?')} s, then pg_restore "
                           f"{sec.get('pg_restore', '?')} s (local pg_restore alone "
                           f"{_wall(runs, base)} s); verification completes before any byte "
                           "reaches PostgreSQL, so the download/verify time adds to "
                           "pg_restore's instead of overlapping it")
                mode = "one transaction" if n == 1 else f"--jobs {n}"
                rows.append(verdict(
                    f"restore from {store} ({mode}) ≤ {TARGET_RESTORE_OVER_PG_RESTORE}x "
                    f"pg_restore of a local file ({tag})",
                    f"{_wall(runs, mine)} s vs {_wall(runs, base)} s", rr,
                    f"≤ {TARGET_RESTORE_OVER_PG_RESTORE}",
                    None if rr is None else rr <= TARGET_RESTORE_OVER_PG_RESTORE, why))
        drill = runs.get("drill") or {}
        for c in (drill.get("output") or {}).get("classes") or []:
            rows.append(verdict(
                f"drill ({c.get('data_class')}): restore within the class RTO, end to end "
                f"({tag})", f"restore {c.get('restore_seconds')} s, drill {drill['wall_s']} s "
                f"wall, RTO {c.get('rto_seconds')} s",
                ratio(c.get("restore_seconds"), c.get("rto_seconds")), "≤ 1",
                c.get("within_rto")))
        peak = max(r["peak_rss_mb"] for k, r in runs.items() if k.startswith("vo2dr_"))
        rows.append(verdict(f"peak RSS of restore < {TARGET_PEAK_RSS_MB:.0f} MB ({tag})",
                            f"{peak:.0f} MB (highest of the {len(STORES) * 2} restores, "
                            "pg_restore included)", None, f"< {TARGET_PEAK_RSS_MB:.0f} MB",
                            peak < TARGET_PEAK_RSS_MB))
    return rows


def markdown(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for s in result.get("scales") or []:
        if "runs" not in s:
            out += [f"Restore not measured: {s.get('error')}", ""]
            continue
        runs, jobs = s["runs"], s["jobs"]
        out += [f"### {s['data_mb']:.0f} MB of data, backup {s['backup_id']}", "",
                "| run | wall (s) | CPU (s) | peak RSS (MB) | vo2dr's steps (s) |",
                "|---|---:|---:|---:|---|"]
        for name, r in runs.items():
            sec = _seconds(r)
            steps = ", ".join(f"{k} {v}" for k, v in sec.items()) if sec else ""
            if name == "drill" and isinstance(r.get("output"), dict):
                classes = r["output"].get("classes") or []
                steps = "; ".join(f"{c.get('data_class')}: restore {c.get('restore_seconds')} s "
                                  f"of RTO {c.get('rto_seconds')} s, "
                                  f"{'within' if c.get('within_rto') else 'NOT within'}"
                                  for c in classes)
            flag = "" if r["rc"] == 0 else f" (failed rc {r['rc']})"
            out.append(f"| {_label(name, jobs)}{flag} | {r['wall_s']:.2f} | {r['cpu_s']:.1f} | "
                       f"{r['peak_rss_mb']:.0f} | {steps} |")
        for n in (1, jobs):
            base, psql = _wall(runs, f"pg_restore_{n}"), _wall(runs, "psql_1")
            cells = ", ".join(f"{st} {ratio(_wall(runs, f'vo2dr_{st}_{n}'), base)}x"
                              for st in STORES)
            out.append("")
            out.append(f"- {'one transaction' if n == 1 else f'--jobs {n}'}: vo2dr / "
                       f"pg_restore = {cells}" + (
                           f"; psql of the plain dump takes {ratio(psql, base)}x pg_restore"
                           if n == 1 else ""))
        out.append("")
    return out


def _label(name: str, jobs: int) -> str:
    if name == "drill":
        return "vo2dr drill --data-class full (end to end)"
    if name == "psql_1":
        return "psql --single-transaction of a plain dump (local file)"
    if name.startswith("pg_restore_"):
        n = int(name.rsplit("_", 1)[1])
        return f"pg_restore of a local file, {'one transaction' if n == 1 else f'--jobs {n}'}"
    _, store, n = name.split("_")
    return f"vo2dr restore from {store}, {'one transaction' if n == '1' else f'--jobs {n}'}"
