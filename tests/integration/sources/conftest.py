"""Fixtures for the application sources: a real git repository made with the git binary
(history, three branches, two tags, one annotated, a note), config files in it, app secrets in
moto's Secrets Manager, and settings whose strategy backs up both sources."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from vo2dr.settings import Settings

from tests import signing_keys
from tests.buckets import Buckets, make_buckets
from tests.cli_env import job_env

CONFIG_PATHS = [".env.*", "docker-compose*.yml", "vercel.json", "railway.toml", "render.yaml",
                "prisma/schema.prisma"]
CONFIG_FILES = {
    ".env.production": "DATABASE_URL=postgresql://app:{pw}@db.internal:5432/app\n",
    ".env.staging": "STRIPE_KEY=sk_test_{pw}\n",
    "docker-compose.yml": "services:\n  web:\n    image: vo2max/web:1.2.3\n",
    "vercel.json": '{"framework": "nextjs"}\n',
    "prisma/schema.prisma": "model User {\n  id Int @id\n}\n",
}


def git(repo: Path, *args: str, **kw) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env, **kw).stdout


def make_repo(path: Path, *, commits: int = 50, secret_marker: str = "") -> Path:
    """``commits`` commits on main, branches dev and release (each a few commits of its own),
    tags v1.0 (lightweight) and v2.0 (annotated), a note, and the config files."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in CONFIG_FILES.items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text.replace("{pw}", secret_marker))
    (path / "src").mkdir()
    for i in range(commits):
        (path / "src" / f"m{i % 7}.py").write_text(f"VALUE = {i}\n" * (i + 1))
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"commit {i}")
        if i == 10:
            git(path, "tag", "v1.0")
        if i == 30:
            git(path, "tag", "-a", "v2.0", "-m", "release 2.0")
    for branch in ("dev", "release"):
        git(path, "checkout", "-q", "-b", branch, "main~5")
        for j in range(3):
            (path / "src" / f"{branch}.py").write_text(f"{branch} {j}\n")
            git(path, "add", "-A")
            git(path, "commit", "-q", "-m", f"{branch} {j}")
    git(path, "checkout", "-q", "main")
    git(path, "notes", "add", "-m", "reviewed", "HEAD")
    return path


def for_each_ref(repo: Path) -> str:
    return git(repo, "for-each-ref")


def strategy_json(repo_url: str, secret_names: list[str], prefix: str = "") -> str:
    return json.dumps({
        "dataClasses": {
            "critical": {"tables": ["users"], "rpoMinutes": 15, "rtoMinutes": 60},
            "important": {"tables": ["app_config"], "rpoMinutes": 60, "rtoMinutes": 240},
            "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240,
                     "dailyAtUtc": "02:00"},
        },
        "application": {
            "repositoryUrl": repo_url,
            "code": {"dataClass": "important"},
            "config": {"dataClass": "important", "paths": CONFIG_PATHS,
                       "secretNames": secret_names, "secretPrefix": prefix},
        },
    })


@dataclass
class App:
    repo: Path
    settings: Settings
    buckets: Buckets
    recovery_private: bytes
    secrets: dict[str, str]  # name -> value, as Secrets Manager holds them
    marker: str  # a secret string also written into the repo's .env files

    def env(self) -> dict[str, str]:
        return job_env(self.settings)


@pytest.fixture(scope="session")
def source_recovery_keys(session_recovery_keys) -> tuple[bytes, bytes]:
    return session_recovery_keys


@pytest.fixture
def app(tmp_path, cloud_env, source_recovery_keys) -> App:
    marker = f"s3cr3t-{uuid.uuid4().hex}"
    repo = make_repo(tmp_path / "app-src", secret_marker=marker)
    sm = boto3.client("secretsmanager")
    run = uuid.uuid4().hex[:8]
    secrets = {
        f"vo2max/staging/app-{run}/stripe": f"sk_live_{marker}",
        f"vo2max/staging/app-{run}/jwt": json.dumps({"secret": f"jwt-{marker}"}),
        f"vo2max/shared-{run}/sentry-dsn": f"https://{marker}@sentry.example/1",
    }
    for name, value in secrets.items():
        sm.create_secret(Name=name, SecretString=value)
    # Not under the prefix nor named: must stay out of the archive.
    sm.create_secret(Name=f"vo2max/staging/other-{run}/x", SecretString=f"other-{marker}")
    kms = boto3.client("kms").create_key(Description="vo2dr sources")["KeyMetadata"]["Arn"]
    b = make_buckets("vo2dr-src")
    settings = Settings(
        environment="staging", s3_bucket=b.s3, gcs_bucket=b.gcs, azure_container_url=b.azure_url,
        kms_key_id=kms, recovery_public_key=source_recovery_keys[1].decode(),
        **signing_keys.SETTINGS,
        strategy_json=strategy_json(str(repo), [f"vo2max/shared-{run}/sentry-dsn"],
                                    f"vo2max/staging/app-{run}/"))
    return App(repo=repo, settings=settings, buckets=b, recovery_private=source_recovery_keys[0],
               secrets=secrets, marker=marker)
