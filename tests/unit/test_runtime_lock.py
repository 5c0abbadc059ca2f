"""requirements-runtime.lock (what the Lambda artifact and the Cloud Run image install) is the
exact runtime closure of ``[project].dependencies``, pinned as in requirements.lock, and the
job's entry points never import the CLI-only ``rich``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import packaging

ROOT = packaging.ROOT


def _pins(lock_text: str) -> dict[str, str]:
    """name -> the requirement block (version and hashes) of a uv-compiled lock."""
    return {canonicalize_name(b.split("==", 1)[0]): b for b in packaging._blocks(lock_text)}


def _closure(roots: list[str]) -> set[str]:
    """Every distribution the roots need, read from the installed packages' own metadata (an
    independent check of what uv resolved): markers evaluated for this interpreter (the lock's
    3.11 on Linux) and each requirement's extras."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name, extras = canonicalize_name(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in metadata.requires(name) or []:
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e})
                                         for e in (*extras, "")):
                todo.append(dep)
    return {name for name, _ in seen}


def test_runtime_lock_is_the_exact_closure_of_the_runtime_dependencies():
    roots = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = _pins(packaging.RUNTIME_LOCK.read_text())
    assert set(runtime) == _closure(roots), "run `make lock`"


def test_runtime_lock_pins_what_the_tests_run_with():
    runtime = _pins(packaging.RUNTIME_LOCK.read_text())
    full = _pins((ROOT / "requirements.lock").read_text())
    for name, block in runtime.items():
        assert block == full.get(name), f"{name}: the two locks differ; run `make lock`"


def test_cli_only_and_unused_packages_stay_out_of_the_runtime():
    runtime = _pins(packaging.RUNTIME_LOCK.read_text())
    for name in ("rich", "pygments", "markdown-it-py", "tenacity"):
        assert name not in runtime, name


def test_the_job_entry_points_never_import_rich():
    code = ("import sys, vo2dr.handlers, vo2dr.cloudrun, vo2dr.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rich', 'pygments', 'markdown_it', 'tenacity')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "[]"
