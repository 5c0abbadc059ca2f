"""The Lambda artifact's bytecode: the interpreter of the Lambda runtime's Python version that
compiles it (:func:`lambda_python`) and the compile step (:func:`compile_tree`). Why the artifact
ships bytecode, why ``UNCHECKED_HASH`` and why one process in sorted order: the docstring of
:mod:`infra.packaging`. Standard library only (like packaging.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PYTHON_ENV = "VO2DR_LAMBDA_PYTHON"  # an interpreter of the Lambda runtime's version, by path
BYTECODE_MODE = "UNCHECKED_HASH"  # py_compile.PycInvalidationMode; why: infra.packaging
_PROBE = ("import importlib.util, sys; print(sys.implementation.cache_tag, "
          "'.'.join(map(str, sys.version_info[:3])), importlib.util.MAGIC_NUMBER.hex())")


@dataclass(frozen=True)
class Compiler:
    """An interpreter of the Lambda runtime's Python version, proven by running it."""

    path: Path
    tag: str  # sys.implementation.cache_tag, e.g. cpython-312: the pycs' names
    version: str  # e.g. 3.12.1
    magic: str  # importlib.util.MAGIC_NUMBER, hex

    @property
    def identity(self) -> str:
        """What the pycs' bytes depend on (not the path: it names the machine)."""
        return f"{self.tag} {self.version} magic {self.magic} {BYTECODE_MODE}"


def _candidates(version: str) -> list[Path]:
    """``VO2DR_LAMBDA_PYTHON``, pyenv's (through ``pyenv prefix`` or its versions directory: the
    ``pythonX.Y`` shim fails without PYENV_VERSION), then ``pythonX.Y`` on PATH."""
    name = f"python{version}"
    found: list[Path] = []
    if os.environ.get(PYTHON_ENV):
        return [Path(os.environ[PYTHON_ENV])]  # asked for: that one or none
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            prefix = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True,
                                    timeout=60, check=False).stdout.strip()
            found += [Path(p) / "bin" / name for p in prefix.split(":") if p]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found += sorted(root.glob(f"versions/{version}.*/bin/{name}"), reverse=True)
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    return found


_compilers: dict[str, Compiler | None] = {}


def lambda_python(version: str) -> Compiler | None:
    """The first candidate that runs and is CPython ``version`` (cached per process)."""
    if version in _compilers:
        return _compilers[version]
    tag = "cpython-" + version.replace(".", "")
    result = None
    for candidate in _candidates(version):
        try:
            out = subprocess.run([str(candidate), "-I", "-S", "-c", _PROBE], capture_output=True,
                                 text=True, timeout=60, check=False).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(out) == 3 and out[0] == tag and out[1].startswith(version + "."):
            result = Compiler(candidate, out[0], out[1], out[2])
            break
    _compilers[version] = result
    return result


def no_compiler_message(version: str) -> str:
    return (f"no Python {version} interpreter (the Lambda runtime python{version}'s) to compile "
            f"the artifact's bytecode: install it (`pyenv install {version}` or your OS's "
            f"python{version}) or set {PYTHON_ENV}=/path/to/python{version}")


# Run by the compiler (Python 3.12, -I -S): argv = [tree]. Sorted paths, one process, so the
# starting state of every compilation is the same on every machine (see the module docstring).
_COMPILE = r"""
import importlib.util, os, py_compile, sys
root = sys.argv[1]
rels = sorted(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
              for d, _, fs in os.walk(root) for f in fs if f.endswith(".py"))
failed = []
for rel in rels:
    src = os.path.join(root, rel)
    try:
        py_compile.compile(src, cfile=importlib.util.cache_from_source(src),
                           dfile=sys.argv[2] + "/" + rel, doraise=True, optimize=0,
                           invalidation_mode=py_compile.PycInvalidationMode[sys.argv[3]])
    except py_compile.PyCompileError as exc:
        failed.append(f"{rel}: {exc.exc_type_name}: {exc.exc_value}")
if failed:
    sys.exit("; ".join(failed))
print(len(rels))
"""


def compile_tree(tree: Path, compiler: Compiler, shown_under: str) -> int:
    """Compile every ``.py`` under ``tree`` into its ``__pycache__`` for the Lambda runtime, each
    named ``<shown_under>/<path>`` in tracebacks; returns how many. A file the runtime's Python
    cannot compile fails the build, named."""
    proc = subprocess.run(
        [str(compiler.path), "-I", "-S", "-c", _COMPILE, str(tree), shown_under, BYTECODE_MODE],
        capture_output=True, text=True, check=False, cwd=tree,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"compiling the Lambda artifact's bytecode with {compiler.path} "
                           f"failed: {detail}")
    return int(proc.stdout.strip() or 0)

