"""One ``vo2dr`` invocation in a fresh interpreter, with where its start-up ends: the runner the
start-up benchmark (``bench/startup.py``) and the Lambda artifact test
(``tests/integration/artifact``) both use.

:data:`RUNNER` is Python source run with ``python [-I -S -B] -c RUNNER SPEC``, so it needs
nothing but the standard library and the ``vo2dr`` package it runs (the artifact's, the
venv's, or a baseline commit's on ``PYTHONPATH``). ``SPEC`` is JSON (:func:`spec`):

- ``task``: a directory put first on ``sys.path`` (an unpacked artifact, like /var/task), or "";
- ``handler``: a function of ``vo2dr.handlers`` called with ``event`` (a Lambda invocation), or
  ``"cli"``: ``vo2dr.cli.main(event)`` with ``event`` the command line (the process exits with
  the command's exit code);
- ``import_handlers``: import ``vo2dr.handlers`` first, as Lambda does for its handler module;
- ``out``: the file the result is written to (JSON, below); ``details``: also the files of
  every imported module, the standard library's paths, the bundled ``pg_dump`` and its version.

The result: ``ok``, ``rc``/``summary``; ``cpu_s``, the process's CPU time at the end;
``startup_cpu_s``, its CPU time when the invocation first connected to anything (the first
``socket.connect`` audit event: a store, KMS, Secrets Manager, PostgreSQL), i.e. the
interpreter, the imports, the settings and the strategy, the credentials and the stores'
clients, everything before its first request (its whole CPU time when it made none);
``first_contact`` (the address connected to) and the modules loaded by then; ``compiled``, the
modules compiled from source in this process (``SourceLoader.source_to_code``: none of the
artifact's when its bytecode is used).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUNNER = r"""
import json, sys, time
import importlib._bootstrap_external as external
spec = json.loads(sys.argv[1])
compiled = []
_to_code = external.SourceLoader.source_to_code
def source_to_code(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return _to_code(self, data, path, _optimize=_optimize)
external.SourceLoader.source_to_code = source_to_code
first = {}
def _hook(event, args):
    if not first and event == "socket.connect":
        first.update(cpu_s=time.process_time(), modules=len(sys.modules), event=event,
                     target=str(args[1])[:200])
sys.addaudithook(_hook)
if spec.get("task"):
    sys.path[:0] = [spec["task"]]
if spec.get("import_handlers") or spec["handler"] != "cli":
    from vo2dr import handlers
if spec["handler"] == "cli":
    from vo2dr import cli
    try:
        rc = cli.main(spec["event"])
    except SystemExit as exc:  # --help, a usage error: argparse exits
        rc = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    out = {"rc": int(rc)}
else:
    rc = 0
    summary = getattr(handlers, spec["handler"])(spec["event"], None)
    out = {"ok": summary.get("ok"), "summary": summary}
end = time.process_time()
task = spec.get("task") or None
ours = [p for p in compiled if task and p.startswith(task)]
out.update(cpu_s=end, startup_cpu_s=first.get("cpu_s", end), first_contact=first,
           modules=len(sys.modules), compiled=len(ours), compiled_paths=ours,
           compiled_stdlib=len(compiled) - len(ours))
if spec.get("details"):
    import sysconfig
    from vo2dr import pgtools
    out.update(
        files=sorted({m.__file__ for m in list(sys.modules.values())
                      if getattr(m, "__file__", None)}),
        stdlib=sorted({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}),
        pg_dump=pgtools.pg_dump(), pg_dump_version=pgtools.version(),
        python=list(sys.version_info[:2]), dont_write=sys.flags.dont_write_bytecode)
with open(spec["out"], "w") as fh:
    json.dump(out, fh, default=str)
sys.stdout.flush()
sys.exit(rc)
"""


def spec(handler: str, event: Any, out: Path, *, task: Path | None = None,
         import_handlers: bool = False, details: bool = False) -> str:
    """The runner's argument (see the module docstring)."""
    return json.dumps({"task": str(task) if task else "", "handler": handler, "event": event,
                       "out": str(out), "import_handlers": import_handlers,
                       "details": details})


def command(python: str | Path, spec_json: str, *, isolated: bool = False) -> list[str]:
    """The command line: ``isolated`` as in Lambda (``-I -S -B``: nothing but the task
    directory and the standard library, no bytecode written)."""
    return [str(python), *(("-I", "-S", "-B") if isolated else ()), "-c", RUNNER, spec_json]


def result(out: Path) -> dict[str, Any]:
    """The runner's result, or {} when it did not get to write one."""
    try:
        return json.loads(out.read_text())
    except (OSError, ValueError):
        return {}
