"""Fixtures every test folder can use. Servers are real processes on 127.0.0.1, started by the
fixtures and stopped (with their data removed) when the session or test ends."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dev import servers


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
