"""The Lambda runtime's interpreter for the artifact tests: the handler must run on the Python
version the Lambda runtime runs (``packaging.LAMBDA_PYTHON``), not on the dev venv's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra import bytecode, packaging


def lambda_interpreter(version: str = packaging.LAMBDA_PYTHON) -> Path | None:
    """An interpreter of exactly ``version`` (the Lambda runtime's): the one the build compiles
    the artifact's bytecode with (:func:`infra.bytecode.lambda_python`)."""
    found = bytecode.lambda_python(version)
    return found.path if found else None


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


