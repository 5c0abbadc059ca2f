"""vo2dr.startup: the collector is paused during an entry point's start-up only, once per
process, and never outlives the entry point; the Google client is imported without gRPC and
without google-api-core's distribution scan. Each case runs in a fresh interpreter (the
collector's state is process-wide)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok"), proc.stdout


def test_the_pause_lasts_from_the_entry_point_to_resume_once_per_process() -> None:
    run("""
        import gc
        from vo2dr import startup
        seen = []
        @startup.entry_point
        def first():
            seen.append(gc.isenabled())
            startup.resume()  # what opening the stores does
            seen.append(gc.isenabled())
        @startup.entry_point
        def second():
            seen.append(gc.isenabled())
        first(); second()
        assert seen == [False, True, True], seen
        assert gc.isenabled()
        print("ok")
    """)


def test_an_entry_point_that_fails_before_resume_leaves_the_collector_on() -> None:
    run("""
        import gc
        from vo2dr import startup
        @startup.entry_point
        def fails():
            assert not gc.isenabled()
            raise ValueError("bad setting")
        try:
            fails()
        except ValueError:
            pass
        assert gc.isenabled() and not startup.paused()
        print("ok")
    """)


def test_a_collector_disabled_by_the_host_stays_disabled() -> None:
    run("""
        import gc
        from vo2dr import startup
        gc.disable()
        startup.entry_point(lambda: None)()
        assert not gc.isenabled()
        print("ok")
    """)


def test_the_cli_resumes_the_collector_also_when_argparse_exits() -> None:
    run("""
        import contextlib, gc, io
        from vo2dr import cli
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            cli.main(["--help"])
        assert gc.isenabled()
        print("ok")
    """)


def test_google_is_imported_without_grpc_or_a_distribution_scan() -> None:
    # The CLI's venv has grpc (for Pulumi): without the guard, google-api-core imports it.
    run("""
        import importlib.metadata, importlib.util, sys
        assert importlib.util.find_spec("grpc") is not None
        scans = []
        real = importlib.metadata.packages_distributions
        importlib.metadata.packages_distributions = lambda: scans.append(1) or real()
        from vo2dr.startup import lean_google_import
        with lean_google_import():
            import google.cloud.storage
            import google.api_core.exceptions as gexc
        assert scans == [] and gexc.grpc is None, (scans, gexc.grpc)
        assert "grpc" not in sys.modules
        import grpc  # the real one, for whoever needs it later (Pulumi)
        assert grpc.__file__
        assert importlib.metadata.packages_distributions is not None
        print("ok")
    """)


def test_with_another_thread_running_nothing_is_substituted() -> None:
    """Another thread could import during the block: then the import is the plain one."""
    run("""
        import importlib.metadata, sys, threading
        stop = threading.Event()
        other = threading.Thread(target=stop.wait)
        other.start()
        real = importlib.metadata.packages_distributions
        from vo2dr.startup import lean_google_import
        try:
            with lean_google_import():
                assert importlib.metadata.packages_distributions is real
                assert sys.modules.get("grpc", "absent") is not None
        finally:
            stop.set()
            other.join()
        print("ok")
    """)


def test_a_grpc_imported_before_is_left_alone() -> None:
    run("""
        import grpc
        from vo2dr.startup import lean_google_import
        with lean_google_import():
            import google.api_core.exceptions as gexc
        assert gexc.grpc is grpc
        print("ok")
    """)
