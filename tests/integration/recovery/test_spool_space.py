"""Spool space (issue 13, smaller defects): running out is one line with its own exit code, and
the space is reserved per run, so two concurrent restores cannot both pass a one-time check and
then collide half-way through their downloads. The volume is a real, small tmpfs."""

from __future__ import annotations

import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from vo2dr.catalog import build_catalog
from vo2dr.exceptions import SpaceError
from vo2dr.restore import reserve_spool
from vo2dr.verify import load_manifest

from .conftest import cli_argv, database_exists, restore_as_superuser, table_checksums

pytestmark = pytest.mark.integration
PAGE = 4096


@pytest.fixture
def small_volume(tmp_path):
    """Mount a tmpfs of ``size`` bytes (needs CAP_SYS_ADMIN, which root here has)."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        where = tmp_path / f"vol{len(mounted)}"
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def plaintext_bytes(world) -> int:
    store = world.store("s3")
    entry = build_catalog({"s3": store}, "staging").resolve(None, data_class="full", store="s3")
    from vo2dr.trust import Trust

    return load_manifest(store, entry, Trust.from_settings(world.settings)).plaintext.bytes


def test_reservations_are_per_run(small_volume):
    vol = small_volume(64 * PAGE)
    (vol / "a").mkdir()
    (vol / "b").mkdir()
    reserve_spool(vol / "a" / "backup.dump", 40 * PAGE)
    assert (vol / "a" / "backup.dump").stat().st_blocks * 512 >= 40 * PAGE  # really allocated
    with pytest.raises(SpaceError, match="not enough space for the spool file"):
        reserve_spool(vol / "b" / "backup.dump", 40 * PAGE)


def test_two_concurrent_restores_do_not_both_pass(world, small_volume):
    size = plaintext_bytes(world)
    vol = small_volume((size * 3 // 2 // PAGE + 1) * PAGE)  # room for one spool file, not two
    names = [f"sp{i}_{uuid.uuid4().hex[:8]}" for i in range(2)]

    def run(name: str):
        try:
            return restore_as_superuser(world.settings, source="gcs",
                                        target_url=world.pg.url(name), spool_dir=str(vol))
        except SpaceError as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, names))
    failed = [r for r in results if isinstance(r, SpaceError)]
    done = [r for r in results if not isinstance(r, SpaceError)]
    assert len(failed) == 1 and len(done) == 1, results
    assert done[0].ok
    assert table_checksums(world.pg.url(done[0].database)) == table_checksums(world.source_url)
    assert "not enough space for the spool file" in str(failed[0])
    loser = names[results.index(failed[0])]
    assert not database_exists(world.pg, loser)
    assert list(vol.iterdir()) == []  # both runs removed their spool directories


def test_no_space_is_one_line_with_its_own_exit_code(world, small_volume, capsys, monkeypatch):
    from vo2dr.cli import main

    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    vol = small_volume(4 * PAGE)
    name = f"nospace_{world.source_db}"
    code = main(cli_argv(("restore", "--source", "s3", "--target-url", world.pg.url(name),
                          "--spool-dir", str(vol), "--no-progress")))
    err = capsys.readouterr().err
    assert code == 4, err
    error_lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(error_lines) == 1 and "not enough space for the spool file" in error_lines[0]
    assert "Traceback" not in err
    assert not database_exists(world.pg, name)
