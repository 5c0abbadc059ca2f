"""The version matrix: for every PostgreSQL major 13-18, a real server of that major is backed up
through the real backup job into the emulators and restored with the job's pinned pg_restore 18:
into the same major in one transaction and with parallel jobs, and into 18 as an upgrade. Each
restore must equal the source table by table (row counts and content), and its views, functions,
trigger, sequences and constraints must answer as the source's do."""

from __future__ import annotations

import pytest
from vo2dr.restore import restore

from .conftest import (
    MAJORS,
    TABLES,
    behaviour,
    fresh_name,
    server_version,
    table_contents,
    trigger_works,
    user_tables,
    world_on,
)

pytestmark = pytest.mark.integration


def assert_same_as_source(world, url: str) -> None:
    assert user_tables(url) == TABLES
    assert table_contents(url) == table_contents(world.source_url)
    assert behaviour(url) == behaviour(world.source_url)
    assert trigger_works(url)


@pytest.mark.parametrize("major", MAJORS)
def test_backup_and_restore_across_majors(major, pg_major, module_env, recovery_keys):
    source = pg_major(major)
    world = world_on(source, recovery_keys)
    assert server_version(world.source_url).startswith(f"{major}.")

    # The manifest records the source's version and the tools'.
    from vo2dr.verify import load_manifest
    store = world.store("s3")
    from vo2dr.catalog import build_catalog
    entry = build_catalog({"s3": store}, "staging").find(world.backups["full"])
    from vo2dr.trust import Trust
    manifest = load_manifest(store, entry, Trust.from_settings(world.settings))
    assert manifest.server_version.startswith(f"{major}.")
    assert manifest.pg_dump_version.startswith("18.")

    targets = [(source, 1, "s3"), (source, 2, "gcs")]
    if major != 18:
        targets.append((pg_major(18), 1, "azure"))  # an upgrade
    for server, jobs, store_name in targets:
        url = server.url(fresh_name(f"m{major}_j{jobs}"))
        result = restore(world.settings, source=store_name, target_url=url, jobs=jobs,
                         allow_superuser=True)  # the test servers' only role
        assert result.ok and result.created_database, result.problems
        assert result.rows == result.expected_rows
        assert result.source_server_version == manifest.server_version
        assert result.target_server_version == server_version(url)
        assert_same_as_source(world, url)
