"""The Lambda runtime's interpreter for the artifact tests: the handler must run on the Python
version the Lambda runtime runs (``packaging.LAMBDA_PYTHON``), not on the dev venv's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import packaging


def lambda_interpreter(version: str = packaging.LAMBDA_PYTHON) -> Path | None:
    """An interpreter of exactly ``version`` (the Lambda runtime's): pyenv's, found through
    ``pyenv prefix`` or its versions directory (the ``pythonX.Y`` shim fails without
    PYENV_VERSION), else on PATH. Each candidate is run to prove its version."""
    name = f"python{version}"
    candidates: list[Path] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        prefix = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True,
                                check=False).stdout.strip()
        candidates += [Path(p) / "bin" / name for p in prefix.split(":") if p]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(root.glob(f"versions/{version}.*/bin/{name}"), reverse=True)
    if shutil.which(name):
        candidates.append(Path(shutil.which(name)))  # type: ignore[arg-type]
    for candidate in candidates:
        try:
            out = subprocess.run([str(candidate), "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60, check=False).stdout
        except OSError:
            continue
        if out.strip() == str(tuple(int(x) for x in version.split("."))):
            return candidate
    return None


@pytest.fixture(scope="module")
def python_of_lambda() -> Path:
    found = lambda_interpreter()
    if found is None and os.environ.get("CI"):
        # In CI a skip would let the artifact ship untested on its own runtime.
        pytest.fail(f"no Python {packaging.LAMBDA_PYTHON} interpreter in CI: the workflow "
                    f"must install it (actions/setup-python) for the unpacked-artifact tests")
    if found is None:
        pytest.skip(f"no Python {packaging.LAMBDA_PYTHON} interpreter (the Lambda runtime "
                    f"{packaging.LAMBDA_RUNTIME}'s) on this machine: install it with "
                    f"`pyenv install {packaging.LAMBDA_PYTHON}`")
    return found


