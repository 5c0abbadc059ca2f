"""The Lambda artifact, built for real, runs the backup on its own: unpacked into a clean
directory and imported by a fresh interpreter of the Lambda runtime's Python version
(``packaging.LAMBDA_PYTHON``, not the dev venv's) that sees nothing else (``python -I -S``: no
site-packages, no PYTHON* variables, no user site), against the local emulators and the
embedded PostgreSQL. pg_dump must come from inside the artifact."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import zipfile
from pathlib import Path

import boto3
import pytest

from dev import localcloud, seed, startup_probe
from infra import packaging

pytestmark = pytest.mark.integration


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack(zip_path: Path, dest: Path) -> None:
    """Unzip as Lambda does: with the entries' Unix modes (zipfile alone drops them)."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            os.chmod(target, stat.S_IMODE(info.external_attr >> 16))


@pytest.fixture(scope="module")
def artifact() -> Path:
    """The artifact as the program builds it for the local stack: with its strategy."""
    return packaging.build("x86_64", strategy=localcloud.load_stack().strategy.to_json())


def test_the_full_build_is_reproducible_and_fits_lambda(tmp_path):
    # A second full build from scratch, in another cache, gives the same bytes. (Retried if a
    # source file changed in between, which the input hash in the cache path shows.)
    for attempt in range(3):
        first = packaging.build("x86_64")
        second = packaging.build("x86_64", cache=tmp_path / f"b{attempt}", force=True)
        if first.parent.name == second.parent.name:
            break
    assert first.parent.name == second.parent.name
    assert _sha(first) == _sha(second)
    artifact = first
    assert packaging.unzipped_size(artifact) < packaging.LAMBDA_UNZIPPED_LIMIT_BYTES
    with zipfile.ZipFile(artifact) as zf:
        names = set(zf.namelist())
    bin_dir = f"{packaging.PG_DIR}/bin/"
    assert {n for n in names if n.startswith(bin_dir)} == {
        bin_dir + t for t in packaging.PG_CLIENTS + packaging.PG_IMPORTED}
    assert bin_dir + "postgres" not in names  # the 11 MB server stays out
    assert "vo2dr/handlers.py" in names
    assert not any(n.startswith(("pulumi", "moto/", "pytest", "bin/")) for n in names)
    # Every source has its bytecode for the Lambda runtime's Python next to it, and no other.
    sources = {n for n in names if n.endswith(".py")}
    pycs = {n for n in names if n.endswith(".pyc")}
    tag = packaging.PYC_TAG
    assert len(sources) > 1000
    assert pycs == {f"{n.rsplit('/', 1)[0]}/__pycache__/{n.rsplit('/', 1)[1][:-3]}.{tag}.pyc"
                    if "/" in n else f"__pycache__/{n[:-3]}.{tag}.pyc" for n in sources}


def test_backup_handler_runs_from_the_unpacked_artifact_alone(artifact, python_of_lambda, pg,
                                                               moto, gcs, azurite, tmp_path):
    task = tmp_path / "task"  # like /var/task
    unpack(artifact, task)
    shipped = sorted(p for p in task.rglob("*") if p.is_file())
    (tmp_path / "keys").mkdir()
    cloud = localcloud.create([moto, gcs, azurite], tmp_path / "keys")
    db_url = seed.create_database(pg.url(), "artifact_source")
    seed.seed(db_url, scale=seed.scale_for_mb(1))
    env = {k: v for k, v in cloud.env.items() if k not in ("VO2DR_STACK_FILE", "VO2DR_STRATEGY")}
    # The database URL comes from Secrets Manager, as in Lambda: the artifact keeps only the
    # botocore models the job uses (packaging.BOTOCORE_SERVICES), and this one must be there.
    secret = boto3.client(
        "secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    ).create_secret(Name=f"vo2dr/artifact/{tmp_path.name}", SecretString=db_url)["ARN"]
    env.update({
        "PATH": "/usr/bin:/bin",  # no venv, no pg binaries of the machine's
        "HOME": str(tmp_path),
        "VO2DR_DATABASE_URL_SECRET": secret,
        # As the program sets it, with the task directory where Lambda's /var/task would be:
        # the strategy comes from inside the artifact.
        "VO2DR_STACK_FILE": str(task / packaging.STRATEGY_FILE),
    })
    # -B: /var/task is read-only in Lambda, so nothing compiled at start is ever kept.
    # The runner the start-up benchmark uses too: it counts the modules compiled from source.
    out = tmp_path / "result.json"
    proc = subprocess.run(
        startup_probe.command(python_of_lambda, startup_probe.spec(
            "backup_handler", {"data_class": "critical"}, out, task=task, details=True),
            isolated=True),
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-4000:]
    result = startup_probe.result(out)

    assert result["python"] == [int(x) for x in packaging.LAMBDA_PYTHON.split(".")]
    assert result["summary"]["ok"] is True
    assert result["pg_dump"].startswith(str(task))
    assert result["pg_dump_version"].startswith("18.")
    # Every imported module came from the artifact or the interpreter's standard library.
    stdlib = set(result["stdlib"])
    outside = [f for f in result["files"]
               if not f.startswith(str(task)) and not any(f.startswith(s) for s in stdlib)]
    assert not outside, outside
    assert not any("site-packages" in f for f in result["files"])
    # The shipped bytecode was used: no module of the artifact was compiled at start (the
    # backup imports hundreds), and nothing was written into the task directory.
    assert result["dont_write"] == 1
    ours = [f for f in result["files"] if f.startswith(str(task))]
    assert len(ours) > 200, len(ours)
    assert result["compiled_paths"] == [] and result["compiled"] == 0
    assert sorted(p for p in task.rglob("*") if p.is_file()) == shipped
