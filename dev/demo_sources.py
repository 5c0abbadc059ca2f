"""The demo's application sources (issue 16): a small local git repository (history, three
branches, two tags, a note) with the app's config files, the app's secrets in moto's Secrets
Manager, and the strategy pointed at them. Backed up, verified, restored into new places and
compared with the originals by the demo (dev/demo.py)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import boto3
from rich.table import Table
from vo2dr.strategy import parse_strategy, read_stack_file

CONFIG_FILES = {
    ".env.production": "DATABASE_URL=postgresql://app:{pw}@db.internal:5432/vo2max\n",
    ".env.staging": "NEXTAUTH_SECRET={pw}\n",
    "docker-compose.yml": "services:\n  web:\n    image: vo2max/web:2.4.0\n",
    "vercel.json": '{"framework": "nextjs", "regions": ["iad1"]}\n',
    "render.yaml": "services:\n  - type: web\n    name: vo2max\n",
    "prisma/schema.prisma": "model User {\n  id    Int    @id\n  email String @unique\n}\n",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@vo2max.invalid",
           "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@vo2max.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def make_repository(path: Path, commits: int = 24) -> Path:
    """The app's repository: ``commits`` on main, branches dev and release, tags v1.0 and an
    annotated v2.0, a note, and the config files (with a made-up password in the .env files)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    password = secrets.token_hex(8)
    for name, text in CONFIG_FILES.items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text.replace("{pw}", password))
    (path / "app").mkdir()
    for i in range(commits):
        (path / "app" / f"page{i % 5}.tsx").write_text(f"export const v = {i};\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"feature {i}")
        if i == commits // 3:
            git(path, "tag", "v1.0")
        if i == 2 * commits // 3:
            git(path, "tag", "-a", "v2.0", "-m", "release 2.0")
    for branch in ("dev", "release"):
        git(path, "checkout", "-q", "-b", branch, "main~3")
        (path / "app" / f"{branch}.tsx").write_text(f"// {branch}\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"{branch} work")
    git(path, "checkout", "-q", "main")
    git(path, "notes", "add", "-m", "deployed to production", "HEAD")
    return path


def create_secrets(env: dict[str, str], names: list[str]) -> dict[str, str]:
    """One made-up value per secret name, in moto's Secrets Manager; name -> value."""
    client = boto3.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"],
                          region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    values = {}
    for name in names:
        values[name] = f"demo-{secrets.token_hex(12)}"
        client.create_secret(Name=name, SecretString=values[name])
    return values


# The application settings when the stack file has none yet (vo2max-dr:application).
DEFAULT_APPLICATION = {
    "code": {"dataClass": "important"},
    "config": {"dataClass": "important",
               "paths": [".env.*", "docker-compose*.yml", "vercel.json", "railway.toml",
                         "render.yaml", "prisma/schema.prisma"],
               "secretNames": ["vo2max/staging/app/database-url",
                               "vo2max/staging/app/nextauth-secret",
                               "vo2max/staging/app/stripe-secret-key"]},
}


def strategy_env(stack_file: Path, repository: Path) -> tuple[str, list[str]]:
    """``(VO2DR_STRATEGY, secret names)``: the stack's strategy with the repository URL pointed
    at the local repository (the stack names the real one on GitHub)."""
    stack = read_stack_file(stack_file)
    app = {**DEFAULT_APPLICATION, **(stack.get("application") or {}),
           "repositoryUrl": str(repository)}
    strategy = parse_strategy(stack["dataClasses"], stack.get("retention"),
                              stack.get("immutability"), app)
    assert strategy.application is not None and strategy.application.config is not None
    return strategy.to_json(), list(strategy.application.config.secret_names)


def compare_restores(repo: Path, code_dir: Path, config_dir: Path,
                     values: dict[str, str]) -> list[str]:
    """Problems between the originals and the restored copies (empty when identical)."""
    problems = []
    if git(repo, "for-each-ref") != git(code_dir, "for-each-ref"):
        problems.append("git for-each-ref differs")
    fsck = subprocess.run(["git", "-C", str(code_dir), "fsck", "--strict"], capture_output=True,
                          text=True, check=False)
    if fsck.returncode != 0:
        problems.append(f"git fsck: {fsck.stderr.strip()[:200]}")
    for name in CONFIG_FILES:
        if (config_dir / "files" / name).read_bytes() != (repo / name).read_bytes():
            problems.append(f"{name} differs")
    for name, value in values.items():
        if (config_dir / "secrets" / name).read_text() != value:
            problems.append(f"secret {name} differs")  # its name only, never its value
    return problems


def sources_table(drill: Any, status: Any) -> Table | None:
    """The application sources in the RPO/RTO report: freshness (status) and restore (drill)."""
    drilled = {r.get("source"): r for r in (drill or {}).get("sources") or []
               if isinstance(r, dict)}
    fresh = (status or {}).get("sources") or {} if isinstance(status, dict) else {}
    if not drilled and not fresh:
        return None
    table = Table(title="Application sources, measured", title_justify="left")
    for col in ("source", "class", "RPO", "newest age", "fresh in", "RTO", "restore drill",
                "checked", "verdict"):
        table.add_column(col)
    for kind in sorted(set(drilled) | set(fresh)):
        st, dr = fresh.get(kind) or {}, drilled.get(kind) or {}
        stores = st.get("stores") or {}
        ok = st.get("ok", True) and dr.get("ok", True)
        table.add_row(
            kind, dr.get("data_class", st.get("data_class", "")),
            f"{st.get('rpo_seconds', 0) / 60:g} min" if st else "",
            f"{st.get('worst_age_seconds') or 0:,} s" if st else "",
            f"{sum(1 for v in stores.values() if v.get('ok'))}/{len(stores)} stores",
            f"{dr.get('rto_seconds', 0) / 60:g} min" if dr else "",
            f"{dr.get('restore_seconds') or 0:.1f} s from {dr.get('store', '?')}" if dr else "",
            json.dumps(dr.get("checked", {})) if dr else "",
            "[green]met[/]" if ok else "[bold red]BREACH[/]")
    return table
