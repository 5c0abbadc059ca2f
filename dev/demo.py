"""``make demo``: the whole strategy on the embedded default, on 127.0.0.1 only.

1. start an embedded PostgreSQL 18, moto (S3, KMS), the GCS emulator and Azurite;
2. seed a realistic VO₂Max database (``VO2DR_DEMO_SCALE``, default 1 ≈ 10 MB);
3. create the three buckets and keys from ``Pulumi.staging.yaml`` (``dev/localcloud.py``);
4. back up with ``vo2dr backup --data-class full``, then ``critical`` and ``important``;
5. list what landed in each cloud, then verify, drill and status with the RPO/RTO report;
6. stop every server it started, also on Ctrl-C or an error.

The job is always run as the real console script in a child process with only environment
variables, exactly as Lambda or Cloud Run would run it. ``VO2DR_DEMO_REPORT=path`` also writes
a JSON record of the steps and of every object listed (the integration test reads it).
Exit status: 0 when every step passed, 1 when one failed, 130 when interrupted.
"""

from __future__ import annotations

import warnings

# Before the SDK imports: noise that says nothing about the demo.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from dev import demo_snapshots, demo_sources, localcloud, seed, servers  # noqa: E402

DATA_CLASSES = ("full", "critical", "important")
# Variables of the developer's own machine that must never reach the demo's job.
FOREIGN_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "VO2DR_", "CLOUDSDK_")
FOREIGN_NAMES = ("STORAGE_EMULATOR_HOST", "DATABASE_URL", "PGHOST", "PGPORT", "PGUSER",
                 "PGPASSWORD", "PGDATABASE", "PGSERVICE")

# A wider page when the output is a log rather than a terminal, so keys are not cut.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 132)


@dataclass
class Step:
    name: str
    status: str  # ok, failed, skipped
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Record:
    steps: list[Step] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    reports: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, status: str, detail: str = "", seconds: float = 0.0) -> Step:
        step = Step(name, status, detail, round(seconds, 2))
        self.steps.append(step)
        style = {"ok": "green", "failed": "bold red", "skipped": "yellow"}[status]
        mark = {"ok": "✔", "failed": "✘", "skipped": "·"}[status]
        console.print(f"[{style}]{mark} {name}[/]" + (f": {detail}" if detail else "")
                      + (f" [dim]({seconds:.1f} s)[/]" if seconds else ""))
        return step

    @property
    def failed(self) -> bool:
        return any(s.status == "failed" for s in self.steps)


class Interrupted(Exception):
    """SIGTERM, handled like Ctrl-C so that every server is stopped."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Interrupted


def vo2dr_exe() -> str | None:
    local = Path(sys.executable).parent / "vo2dr"
    return str(local) if local.exists() else shutil.which("vo2dr")


def available_commands(exe: str | None, env: dict[str, str]) -> set[str]:
    """The `vo2dr` subcommands that exist in this checkout (others are not built yet)."""
    if exe is None:
        return set()
    found = set()
    for name in ("backup", "list", "verify", "drill", "status", "report"):
        probe = subprocess.run([exe, name, "--help"], env=env, capture_output=True, check=False)
        if probe.returncode == 0:
            found.add(name)
    return found


def job_env(cloud_env: dict[str, str], database_url: str, drill_url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(FOREIGN_PREFIXES) and k not in FOREIGN_NAMES}
    return {**base, **cloud_env, "DATABASE_URL": database_url,
            "VO2DR_DRILL_DATABASE_URL": drill_url,
            "PYTHONWARNINGS": "ignore::FutureWarning,ignore:XDG_RUNTIME_DIR"}


def run_job(args: list[str], env: dict[str, str], *, capture: bool = False,
            ) -> tuple[int, str, float]:
    """Run ``vo2dr ARGS``; the terminal is inherited (progress bars) unless ``capture``, where
    stdout (the JSON report) is captured and stderr still goes to the terminal."""
    started = time.monotonic()
    console.print(f"[dim]$ vo2dr {' '.join(args)}[/]")
    proc = subprocess.run([vo2dr_exe() or "vo2dr", *args], env=env, check=False,
                          stdout=subprocess.PIPE if capture else None, text=True)
    return proc.returncode, proc.stdout or "", time.monotonic() - started


def _json_or_none(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    with contextlib.suppress(json.JSONDecodeError):
        return json.loads(text)
    # A report may follow log lines: take the last JSON document in the output.
    start = text.rfind("\n{")
    with contextlib.suppress(json.JSONDecodeError):
        return json.loads(text[start + 1:] if start >= 0 else text)
    return None


def _fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


def show_objects(objects: list[localcloud.Listed]) -> None:
    table = Table(title="Backups in the three local clouds", title_justify="left")
    table.add_column("key", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("store")
    for obj in sorted(objects, key=lambda o: (o.key, o.store)):
        table.add_row(obj.key, _fmt_size(obj.size), obj.store)
    console.print(table)


def complete_backups(objects: list[localcloud.Listed]) -> dict[str, set[str]]:
    """Per store, the backup stems that have both a body and a manifest."""
    out: dict[str, set[str]] = {}
    bodies = {(o.store, o.key.removesuffix(".dump.enc")) for o in objects
              if o.key.endswith(".dump.enc")}
    for o in objects:
        stem = o.key.removesuffix(".manifest.json")
        if o.key.endswith(".manifest.json") and (o.store, stem) in bodies:
            out.setdefault(o.store, set()).add(stem)
    return out


def _rows(report: Any) -> list[dict[str, Any]]:
    """The per-class (or per-class-and-store) rows of a drill or status JSON report."""
    if isinstance(report, list):
        return [r for r in report if isinstance(r, dict)]
    if not isinstance(report, dict):
        return []
    for key in ("classes", "data_classes", "results", "checks", "rows", "items"):
        value = report.get(key)
        if isinstance(value, list):
            return [r for r in value if isinstance(r, dict)]
        if isinstance(value, dict):
            return [{"data_class": k, **v} if isinstance(v, dict) else {"data_class": k,
                                                                         "value": v}
                    for k, v in value.items()]
    return []


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))[:60]
    return str(value)


def show_report(title: str, report: Any) -> None:
    rows = _rows(report)
    if not rows:
        if isinstance(report, dict | list):
            console.print_json(data=report)
        elif report:
            console.print(str(report))
        return
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and not isinstance(value, dict | list):
                columns.append(key)
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(_cell(row.get(c, "")) for c in columns))
    console.print(table)


def backup_line(summary: Any) -> str:
    """One line of a `vo2dr backup` JSON summary."""
    if not isinstance(summary, dict):
        return ""
    try:
        dests = ", ".join(f"{name} {d.get('status')}"
                          for name, d in summary.get("destinations", {}).items())
        lock = (f", locked until {summary['lock_until'][:16]}Z"
                if summary.get("lock_until") else "")
        return (f"{summary['backup_id']} ({summary['tier']}{lock}): "
                f"{_fmt_size(summary['plaintext']['bytes'])} dump → "
                f"{_fmt_size(summary['ciphertext']['bytes'])} encrypted; {dests}")
    except (KeyError, TypeError):
        return str(summary.get("error", ""))


def verify_line(report: Any) -> str:
    if not isinstance(report, dict):
        return ""
    copies = report.get("copies") or []
    parts = []
    for c in copies:
        if isinstance(c, dict):
            problems = c.get("problems") or []
            parts.append(f"{c.get('store')}: {c.get('backup_id')} decrypted with "
                         f"{c.get('key_used')}, {len(c.get('tables') or [])} tables"
                         + (f", problems: {problems}" if problems else ", SHA-256 match"))
    return "; ".join(parts)


def rpo_rto_report(drill: Any, status: Any) -> bool:
    """Per data class: the newest backup's age against the RPO (status) and the measured
    restore time against the RTO (drill). False when the reports are not in the known shape."""
    drill_rows = {r.get("data_class"): r for r in _rows(drill)} if drill else {}
    status_rows = {r.get("data_class"): r for r in _rows(status)} if status else {}
    if not drill_rows and not status_rows:
        return False
    table = Table(title="Recovery objectives, measured", title_justify="left")
    for col, just in (("data class", "left"), ("RPO", "right"), ("newest backup age", "right"),
                      ("fresh in", "left"), ("RTO", "right"), ("restore drill", "right"),
                      ("rows checked", "right"), ("sanity queries", "right"),
                      ("verdict", "left")):
        table.add_column(col, justify=just)
    for name in [c for c in DATA_CLASSES if c in drill_rows or c in status_rows]:
        st, dr = status_rows.get(name, {}), drill_rows.get(name, {})
        stores = st.get("stores") if isinstance(st.get("stores"), dict) else {}
        fresh = [s for s, v in stores.items() if isinstance(v, dict) and v.get("ok")]
        tables = dr.get("tables") if isinstance(dr.get("tables"), dict) else {}
        rows_ok = sum(1 for t in tables.values()
                      if isinstance(t, dict) and t.get("manifest") == t.get("restored"))
        sanity = dr.get("sanity") if isinstance(dr.get("sanity"), list) else []
        ok = st.get("ok", True) and dr.get("ok", True)
        table.add_row(
            name,
            _minutes(st.get("rpo_seconds")),
            f"{st['worst_age_seconds']:,.0f} s" if "worst_age_seconds" in st else "",
            f"{len(fresh)}/{len(stores)} stores" if stores else "",
            _minutes(dr.get("rto_seconds")),
            f"{dr['restore_seconds']:.1f} s from {dr.get('source', '?')}"
            if "restore_seconds" in dr else "",
            f"{rows_ok}/{len(tables)} tables" if tables else "",
            f"{sum(1 for q in sanity if q.get('ok'))}/{len(sanity)}" if sanity else "",
            "[green]met[/]" if ok else "[bold red]BREACH[/]")
    console.print(table)
    replicas = status.get("replicas") if isinstance(status, dict) else None
    if isinstance(replicas, list) and replicas:
        agree = sum(1 for r in replicas if isinstance(r, dict) and r.get("agree"))
        console.print(f"Replica agreement: {agree}/{len(replicas)} backups have the same "
                      "SHA-256 in every store.")
    return True


def _minutes(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def application_sources(record: Record, env: dict[str, str], work: Path,
                        recovery_key: Path) -> None:
    """The code and the config (issue 16): a local repository and app secrets in moto, backed
    up through the same pipeline, verified, and restored into new places (the config with the
    offline recovery key only), then compared with the originals."""
    started = time.monotonic()
    repo = demo_sources.make_repository(work / "vo2max-app")
    env["VO2DR_STRATEGY"], names = demo_sources.strategy_env(localcloud.STACK_FILE, repo)
    values = demo_sources.create_secrets(env, names)
    record.add("application sources", "ok", f"git repository {repo.name} "
               f"({len(demo_sources.git(repo, 'for-each-ref').splitlines())} refs), "
               f"{len(demo_sources.CONFIG_FILES)} config files, {len(values)} secrets in "
               "Secrets Manager", time.monotonic() - started)
    code_dir, config_dir = work / "restored-code.git", work / "restored-config"
    for title, args in (
        ("backup code", ["backup", "--source", "code"]),
        ("backup config", ["backup", "--source", "config"]),
        ("verify code from s3", ["verify", "--kind", "code", "--source", "s3"]),
        ("verify config from gcs (recovery key)",
         ["verify", "--kind", "config", "--source", "gcs", "--recovery-key", str(recovery_key)]),
        ("restore code from azure", ["restore", "--kind", "code", "--source", "azure",
                                     "--target-dir", str(code_dir)]),
        ("restore config from gcs (recovery key)",
         ["restore", "--kind", "config", "--source", "gcs", "--target-dir", str(config_dir),
          "--recovery-key", str(recovery_key)]),
    ):
        rc, out, secs = run_job(args, env, capture=True)
        parsed = _json_or_none(out)
        record.reports[title] = parsed if parsed is not None else out
        detail = ""
        if isinstance(parsed, dict) and parsed.get("body_key"):
            detail = f"{parsed['body_key']} ({parsed.get('tier')})"
        record.add(title, "ok" if rc == 0 else "failed",
                   detail + ("" if rc == 0 else f" (exit {rc})"), secs)
    if code_dir.exists() and config_dir.exists():
        problems = demo_sources.compare_restores(repo, code_dir, config_dir, values)
        record.add("restored copies", "failed" if problems else "ok",
                   "; ".join(problems) or "git for-each-ref equal, git fsck clean, config "
                   "files byte-identical, secrets equal to Secrets Manager's")


def demo(record: Record, scale: float) -> None:
    not_ready = "not yet available in this checkout"
    demo_started = datetime.now(UTC)
    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        with console.status("starting PostgreSQL 18, moto, the GCS emulator and Azurite…"):
            pg = stack.enter_context(servers.postgres())
            services = [stack.enter_context(servers.moto_server()),
                        stack.enter_context(servers.gcs_emulator()),
                        stack.enter_context(servers.azurite())]
        record.add("servers", "ok", f"postgres :{pg.port}, "
                   + ", ".join(f"{s.name} :{s.port}" for s in services),
                   time.monotonic() - started)

        started = time.monotonic()
        with console.status(f"seeding the VO₂Max database at scale {scale:g}…") as status:
            url = seed.create_database(pg.url(), "vo2max")
            report = seed.seed(url, scale, log=lambda m: status.update(f"seeding: {m}"))
        record.add("seed", "ok", f"{sum(s.rows for s in report.tables.values()):,} rows, "
                   f"{report.data_mb:.0f} MB in {len(report.tables)} tables",
                   time.monotonic() - started)

        key_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vo2dr-keys-")))
        started = time.monotonic()
        cloud = localcloud.create(services, key_dir)
        record.unsupported = cloud.unsupported
        record.add("buckets", "ok", f"S3 {cloud.s3_bucket}, GCS {cloud.gcs_bucket}, "
                   f"Azure {cloud.azure_container}; {len(cloud.applied)} settings applied",
                   time.monotonic() - started)
        for line in cloud.unsupported:
            console.print(f"  [yellow]not emulated[/] {line}")

        # The drill restores as a role with CREATEDB that is not a superuser: it refuses a
        # superuser, since code in a dump runs during the restore with the restoring role's rights.
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE ROLE vo2dr_drill LOGIN CREATEDB NOSUPERUSER")
        env = job_env(cloud.env, url,
                      pg.url("postgres").replace("//postgres@", "//vo2dr_drill@", 1))
        exe = vo2dr_exe()
        commands = available_commands(exe, env)

        if "backup" not in commands:
            record.add("backup", "failed", f"`vo2dr backup` is {not_ready}")
        else:
            # Each class once (the first of the day: a GFS tier), then critical again, as its
            # next 15-minute run would: the second of a UTC day goes to the intraday tier,
            # with its own lock of retention.intradayHours.
            tiers = []
            for data_class in (*DATA_CLASSES, "critical"):
                step = f"backup {data_class}" + (" again" if data_class in [
                    t[0] for t in tiers] else "")
                rc, out, secs = run_job(["backup", "--data-class", data_class], env,
                                        capture=True)
                summary = _json_or_none(out)
                record.reports[step] = summary if summary is not None else out
                record.add(step, "ok" if rc == 0 else "failed",
                           backup_line(summary) + ("" if rc == 0 else f" (exit {rc})"), secs)
                if isinstance(summary, dict) and "tier" in summary:
                    tiers.append((data_class, summary["tier"]))
            record.add("tiers chosen", "ok", ", ".join(f"{c} {t}" for c, t in tiers))

        objects = list(localcloud.list_objects(cloud, prefix="database/"))
        record.objects = [asdict(o) for o in objects]
        show_objects(objects)
        complete = complete_backups(objects)
        missing = [s for s in ("s3", "gcs", "azure") if not complete.get(s)]
        record.add("list", "failed" if missing else "ok",
                   f"no complete backup (body + manifest) in {', '.join(missing)}" if missing
                   else ", ".join(f"{s}: {len(v)} complete" for s, v in sorted(complete.items())))
        if "list" in commands:
            # On a terminal `vo2dr list` draws its own table; in a log, summarise its JSON.
            tty = sys.stdout.isatty()
            rc, out, secs = run_job(["list"], env, capture=not tty)
            listed = _json_or_none(out) if not tty else None
            detail = ""
            if isinstance(listed, dict) and isinstance(listed.get("backups"), list):
                stores = listed.get("stores") or []
                whole = [b for b in listed["backups"] if isinstance(b, dict)
                         and set(b.get("complete_in") or []) >= set(stores)]
                detail = (f"{len(listed['backups'])} backups, {len(whole)} complete in all of "
                          f"{', '.join(stores)}")
            record.add("vo2dr list", "ok" if rc == 0 else "failed",
                       detail + ("" if rc == 0 else f" (exit {rc})"), secs)

        if "verify" in commands:
            for title, args in (
                ("verify latest from s3 (KMS)", ["--source", "s3"]),
                ("verify latest from gcs with the offline recovery key only",
                 ["--source", "gcs", "--recovery-key", str(cloud.recovery_private_key)]),
            ):
                rc, out, secs = run_job(["verify", "--backup", "latest", *args], env,
                                        capture=True)
                parsed = _json_or_none(out)
                record.reports[title] = parsed if parsed is not None else out
                record.add(title, "ok" if rc == 0 else "failed",
                           verify_line(parsed) + ("" if rc == 0 else f" (exit {rc})"), secs)
        else:
            record.add("verify", "skipped", f"`vo2dr verify` is {not_ready}")

        if "backup" in commands:
            application_sources(record, env, key_dir, cloud.recovery_private_key)
            demo_snapshots.run(record, env, key_dir, cloud.recovery_private_key, run_job,
                               _json_or_none)

        for name, args in (("drill", ["drill"]), ("status", ["status", "--json"])):
            if name not in commands:
                record.add(name, "skipped", f"`vo2dr {name}` is {not_ready}")
                continue
            rc, out, secs = run_job(args, env, capture=True)
            parsed = _json_or_none(out)
            record.reports[name] = parsed if parsed is not None else out
            record.add(name, "ok" if rc == 0 else "failed", "" if rc == 0 else f"exit {rc}",
                       secs)
        if "drill" in record.reports or "status" in record.reports:
            console.rule("RPO / RTO report")
            if not rpo_rto_report(record.reports.get("drill"), record.reports.get("status")):
                for name in ("drill", "status"):
                    if name in record.reports:
                        show_report(name, record.reports[name])
            sources = demo_sources.sources_table(record.reports.get("drill"),
                                                 record.reports.get("status"))
            if sources is not None:
                console.print(sources)

        if {"backup", "verify", "status"} <= set(commands):
            forgery_step(record, env, key_dir, cloud)
        if "report" in commands:
            from dev.demo_report import report_step

            report_step(record, env, demo_started, run_job, console)

        with console.status("stopping every server the demo started…"):
            stack.close()
        record.add("cleanup", "ok", "all servers stopped, their data and keys removed")


def forgery_step(record: Record, env: dict[str, str], key_dir: Path, cloud) -> None:
    """An attacker who owns the GCS account runs our own tool against their own database, GCS
    as the only store, no KMS key (the standby's mode), the recovery *public* key (public
    config) and a signing key of their own. verify refuses the copy, latest ignores it, and
    status raises a breach."""
    from vo2dr.signing import generate_signing_key

    console.rule("a forged backup in GCS")
    foreign = key_dir / "attacker-signing.pem"
    foreign.write_bytes(generate_signing_key()[0])
    attacker = {**env, "VO2DR_S3_BUCKET": "", "VO2DR_AZURE_CONTAINER_URL": "",
                "VO2DR_KMS_KEY_ID": "", "VO2DR_SIGNING_KEY": str(foreign),
                "VO2DR_SIGNING_PUBLIC_KEYS": ""}
    rc, out, secs = run_job(["backup", "--data-class", "critical"], attacker, capture=True)
    forged = (_json_or_none(out) or {}).get("backup_id")
    if rc != 0 or not forged:
        record.add("forgery planted in gcs", "failed", f"the attacker's backup failed (exit {rc})",
                   secs)
        return
    record.add("forgery planted in gcs", "ok", f"backup {forged}, recovery key only, signed "
               "with the attacker's key", secs)
    rc, out, secs = run_job(["verify", "--backup", forged, "--source", "gcs", "--recovery-key",
                             str(cloud.recovery_private_key)], env, capture=True)
    problems = [p for c in (_json_or_none(out) or {}).get("copies", []) for p in c["problems"]]
    refused = rc == 1 and any("refused" in p for p in problems)
    record.add("verify refuses the forgery", "ok" if refused else "failed",
               problems[0] if problems else f"exit {rc}", secs)
    rc, out, secs = run_job(["verify", "--source", "gcs", "--data-class", "critical"], env,
                            capture=True)
    latest = (_json_or_none(out) or {}).get("backup_id")
    record.add("latest ignores the forgery", "ok" if rc == 0 and latest != forged else "failed",
               f"latest critical is {latest}, complete and signed in two stores", secs)
    rc, out, secs = run_job(["status", "--json"], env, capture=True)
    breaches = (_json_or_none(out) or {}).get("breaches", [])
    seen = f"unsigned:critical:{forged}" in breaches
    record.add("status breaches on the forgery", "ok" if rc == 1 and seen else "failed",
               ", ".join(b for b in breaches if forged in b) or f"exit {rc}", secs)


def main() -> int:
    scale = float(os.environ.get("VO2DR_DEMO_SCALE", "1"))
    report_path = os.environ.get("VO2DR_DEMO_REPORT")
    signal.signal(signal.SIGTERM, _on_sigterm)
    record = Record()
    console.rule("vo2max-dr demo: one dump, encrypted once, three clouds")
    code = 0
    try:
        demo(record, scale)
    except (KeyboardInterrupt, Interrupted):
        record.add("interrupted", "failed", "stopped every server the demo started")
        code = 130
    except Exception as exc:  # noqa: BLE001 - report the failing step and still exit cleanly
        record.add("error", "failed", f"{type(exc).__name__}: {exc}")
        if os.environ.get("VO2DR_DEMO_DEBUG"):
            console.print_exception(max_frames=5)
        code = 1
    if report_path:
        Path(report_path).write_text(json.dumps(asdict(record), indent=2, default=str))
    if code == 0 and record.failed:
        code = 1
    console.rule("[green]demo passed[/]" if code == 0 else f"[red]demo failed (exit {code})[/]")
    return code


if __name__ == "__main__":
    sys.exit(main())
