"""Fixtures every test folder can use. Servers are real processes on 127.0.0.1, started by the
fixtures and stopped (with their data removed) when the session or test ends."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dev import servers

# Test files that must run on one worker under pytest-xdist (`make test` runs two), because
# their session state is shared through the machine or is costly to repeat per worker:
# the artifact tests build the same Lambda artifact into the one build cache (build/artifact,
# written through one temporary name), and the version matrix starts a PostgreSQL server of
# each major (five more servers per worker).
ONE_WORKER_DIRS = ("tests/integration/artifact/", "tests/integration/matrix/")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, refined: whole test files (each module's fixtures are built once,
    on one worker), in collection order (the long integration files first, the many short unit
    and policy files last, so both workers finish together), ONE_WORKER_DIRS kept together."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((d for d in ONE_WORKER_DIRS if path.startswith(d)), path)

    config.option.loadscopereorder = False
    return FileScheduling(config, log)


@pytest.fixture(scope="session")
def pg() -> Iterator[servers.Postgres]:
    """One embedded PostgreSQL 18 for the session; tests create their own databases in it."""
    with servers.postgres() as server:
        yield server


@pytest.fixture(scope="session")
def session_recovery_keys() -> tuple[bytes, bytes]:
    """(private PEM, public PEM): one 3072-bit recovery key pair for the session (each takes a
    second or more to generate); the suites' own key fixtures return it. Tests that need a
    different key (a wrong one) generate their own."""
    from vo2dr import crypto

    return crypto.generate_recovery_key(3072)


@pytest.fixture(scope="session")
def moto() -> Iterator[servers.Service]:
    with servers.moto_server() as svc:
        yield svc


@pytest.fixture(scope="session")
def gcs() -> Iterator[servers.Service]:
    with servers.gcs_emulator() as svc:
        yield svc


@pytest.fixture(scope="session")
def azurite() -> Iterator[servers.Service]:
    with servers.azurite() as svc:
        yield svc


@pytest.fixture
def cloud_env(monkeypatch, moto, gcs, azurite) -> dict[str, str]:
    """Point every SDK at the local servers through their standard variables, and make sure
    no real credential or endpoint of the developer's machine is used."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "GOOGLE_", "AZURE_", "VO2DR_")) or var in (
            "STORAGE_EMULATOR_HOST", "DATABASE_URL"):
            monkeypatch.delenv(var, raising=False)
    env = {**moto.env, **gcs.env, **azurite.env}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
