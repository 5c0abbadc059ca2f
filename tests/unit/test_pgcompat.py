"""Which servers a backup may go into, and the pg_restore adapted for servers before 17."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from vo2dr import pgcompat, pgtools
from vo2dr.exceptions import ConfigError, RestoreError


@pytest.mark.parametrize(("version", "major"), [
    ("13.23", 13), ("15.18 (Debian 15.18-1.pgdg120+1)", 15), ("18.1", 18), ("17beta2", 17),
    ("devel", None)])
def test_major_of(version, major):
    if major is None:
        with pytest.raises(ConfigError, match="cannot read a PostgreSQL major"):
            pgcompat.major_of(version)
    else:
        assert pgcompat.major_of(version) == major


@pytest.mark.parametrize(("source", "target"), [
    ("13.23", "13.1"), ("13.23", "18.1"), ("15.18", "15.2"), ("16.14", "17.10"), ("18.1", "18.1")])
def test_same_or_newer_major_is_accepted(source, target):
    pgcompat.check_restorable(source, target)


def test_older_target_is_refused_with_both_versions_and_what_to_use():
    with pytest.raises(RestoreError) as exc:
        pgcompat.check_restorable("16.14", "14.23")
    message = str(exc.value)
    assert "\n" not in message
    assert "PostgreSQL 16.14 backup" in message and "PostgreSQL 14.23 server" in message
    assert "restore into a PostgreSQL 16 or newer server" in message


def test_unsupported_old_target_is_refused():
    with pytest.raises(RestoreError, match="older than 13, the oldest supported"):
        pgcompat.check_restorable("12.22", "12.22")


def test_tool_choice_by_server_version():
    assert pgcompat.pg_restore_for(170000) == pgtools.pg_restore()
    assert pgcompat.pg_restore_for(180001) == pgtools.pg_restore()
    assert pgcompat.pg_restore_for(160014) != pgtools.pg_restore()


def test_patch_replaces_exactly_the_one_string():
    sent, instead = b"SET transaction_timeout = 0;\n\0", b"SET lock_timeout = 0;\n\0"
    binary = b"\x7fELF\0SET statement_timeout = 0;\n\0" + sent + b"SET client_encoding\0"
    patched = pgcompat.patch(binary)
    assert len(patched) == len(binary)
    assert patched == binary.replace(sent, instead.ljust(len(sent), b"\0"))
    assert b"transaction_timeout" not in patched


@pytest.mark.parametrize("binary", [
    b"\0nothing to patch\0",
    b"\0SET transaction_timeout = 0;\n\0SET transaction_timeout = 0;\n\0",
    b"\0-- SET transaction_timeout = 0;\n\0",  # the tail of another string
])
def test_patch_refuses_an_unexpected_build(binary):
    with pytest.raises(ConfigError):
        pgcompat.patch(binary)


def test_adapted_pg_restore_runs_and_differs_only_in_that_string():
    path = pgcompat.patched_pg_restore()
    original = Path(pgtools.pg_restore()).read_bytes()
    patched = path.read_bytes()
    assert len(patched) == len(original)
    differing = [i for i, (a, b) in enumerate(zip(original, patched, strict=True)) if a != b]
    assert differing and differing[-1] - differing[0] < len(b"SET transaction_timeout = 0;\n")
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True,
                         env=pgtools.tool_env()).stdout
    assert out.strip() == f"pg_restore (PostgreSQL) {pgtools.version('pg_restore')}"
    assert pgcompat.patched_pg_restore() == path  # written once per process


def test_adapted_pg_restore_is_written_again_when_its_file_is_gone():
    import shutil

    path = pgcompat.patched_pg_restore()
    shutil.rmtree(path.parents[3])  # the private directory, as a /tmp cleaner would
    again = pgcompat.patched_pg_restore()
    assert again != path and again.exists()


def test_the_adapted_pg_restore_goes_under_the_spool_setting(tmp_path):
    # The restore passes Settings.spool_dir: a volume the operator chose (e.g. when /tmp is
    # noexec or small); the module reads no environment variable of its own.
    path = pgcompat.pg_restore_for(150004, str(tmp_path))
    assert path.startswith(str(tmp_path) + "/vo2dr-pgtools-")
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("pg_restore (PostgreSQL) 18")
