"""Restores from the real backups in the three emulators into the embedded PostgreSQL 18."""

from __future__ import annotations

import json

import psycopg
import pytest
from vo2dr.cli import main
from vo2dr.progress import RichReporter

from .conftest import (
    ALL_TABLES,
    cli_argv,
    database_exists,
    new_database,
    schema_signature,
    table_checksums,
    user_tables,
)
from .conftest import (
    restore_as_superuser as restore,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(world, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    return world


def run_cli(capsys, *argv: str) -> tuple[int, dict | list | None, str]:
    code = main(cli_argv(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.mark.parametrize("source", ["s3", "gcs", "azure"])
def test_restore_from_each_store_reproduces_the_source_exactly(world, source):
    target = f"restored_{source}_{world.source_db}"
    result = restore(world.settings, source=source, target_url=world.pg.url(target))
    assert result.ok and result.created_database and result.source == source
    assert result.backup_id == world.backups["full"]
    assert result.key_used == "kms"
    assert result.rows == result.expected_rows
    assert user_tables(world.pg.url(target)) == ALL_TABLES
    assert table_checksums(world.pg.url(target)) == table_checksums(world.source_url)
    assert schema_signature(world.pg.url(target)) == schema_signature(world.source_url)


def test_list_merges_the_three_stores(cli_env, capsys):
    code, doc, _ = run_cli(capsys, "list", "--json")
    assert code == 0
    assert doc["stores"] == ["s3", "gcs", "azure"] and doc["errors"] == {}
    by_id = {b["backup_id"]: b for b in doc["backups"]}
    for dc, backup_id in cli_env.backups.items():
        assert by_id[backup_id]["data_class"] == dc
        assert by_id[backup_id]["complete_in"] == ["s3", "gcs", "azure"]


def test_verify_latest_in_every_store(cli_env, capsys):
    code, doc, err = run_cli(capsys, "verify", "--backup", "latest", "--source", "all")
    assert code == 0, err
    assert doc["backup_id"] == cli_env.backups["full"]
    assert [c["store"] for c in doc["copies"]] == ["s3", "gcs", "azure"]
    for copy in doc["copies"]:
        assert copy["ok"] and copy["key_used"] == "kms"
        assert copy["tables"] == ALL_TABLES


def test_selective_table_restore(world, capsys, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    target = world.pg.url(f"sel_{world.source_db}")
    code, doc, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url", target,
                             "--table", "users", "--table", "public.vo2max_calculations",
                             "--table", "app.audit_logs")
    assert code == 0, err
    wanted = ["app.audit_logs", "public.users", "public.vo2max_calculations"]
    assert doc["tables"] == wanted
    assert user_tables(target) == wanted  # nothing else: no other table, no view
    assert table_checksums(target) == table_checksums(world.source_url, wanted)
    sig, src = schema_signature(target), schema_signature(world.source_url)
    # indexes, keys and the foreign key between two selected tables came along ...
    assert [i for i in src["indexes"] if i[1] in {"vo2max_by_user", "users_pkey",
                                                  "users_email_key"}] == \
        [i for i in sig["indexes"] if i[1] in {"vo2max_by_user", "users_pkey", "users_email_key"}]
    cons = {c[1] for c in sig["constraints"]}
    assert {"vo2max_calculations_user_id_fkey", "vo2max_calculations_vo2max_check",
            "users_pkey", "audit_logs_pkey"} <= cons
    # ... and so did the sequences, at their values, so new rows get fresh ids
    seqs = {s[1]: s[2] for s in sig["sequences"]}
    assert seqs == {k: v for k, v in ((s[1], s[2]) for s in src["sequences"]) if k in seqs}
    assert set(seqs) == {"users_id_seq", "vo2max_calculations_id_seq", "audit_logs_id_seq"}
    assert sig["views"] == []
    with psycopg.connect(target, autocommit=True) as conn:
        new_id = conn.execute("INSERT INTO users (email) VALUES ('new@x') RETURNING id").fetchone()
        assert new_id[0] == 121


def test_selective_restore_of_an_unknown_table_is_refused_before_anything(world):
    target = f"nosuch_{world.source_db}"
    with pytest.raises(Exception, match="--table sessions is not in this backup"):
        restore(world.settings, source="s3", target_url=world.pg.url(target),
                tables=["sessions"])
    assert not database_exists(world.pg, target)


def test_parallel_restore(world, capsys, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    target = world.pg.url(f"par_{world.source_db}")
    code, doc, err = run_cli(capsys, "restore", "--source", "azure", "--target-url", target,
                             "--jobs", "2", "--backup", world.backups["full"])
    assert code == 0, err
    assert doc["jobs"] == 2
    assert table_checksums(target) == table_checksums(world.source_url)
    assert schema_signature(target) == schema_signature(world.source_url)


def test_restore_of_a_data_class_and_before(world):
    """``--data-class critical`` latest, and ``--before`` a time before any backup."""
    target = world.pg.url(f"crit_{world.source_db}")
    reporter = RichReporter()  # the terminal progress (rendered into the captured stderr)
    result = restore(world.settings, source="s3", target_url=target, data_class="critical",
                     reporter=reporter)
    assert result.backup_id == world.backups["critical"]
    assert sorted(result.tables) == ["public.session_metrics", "public.training_protocols",
                                     "public.users", "public.vo2max_calculations"]
    # exactly the class's tables: the others' definitions are in the archive but not created
    assert sorted(user_tables(target)) == sorted(result.tables)
    assert table_checksums(target) == table_checksums(world.source_url, result.tables)
    with pytest.raises(Exception, match="no complete full backup taken at or before"):
        restore(world.settings, source="s3", target_url=world.pg.url(f"x_{world.source_db}"),
                before=world.backup_times["full"].replace(year=2020))


def test_non_empty_target_is_refused_and_unchanged(world, capsys, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    name = new_database(world.pg, "live")
    url = world.pg.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users VALUES (1, 'keep@me'), (2, 'me@too')")
    before = (table_checksums(url), schema_signature(url))
    code, _, err = run_cli(capsys, "restore", "--source", "s3", "--target-url", url)
    assert code == 2
    assert f"refusing to restore into database '{name}': it is not empty" in err
    assert "table public.users" in err
    assert (table_checksums(url), schema_signature(url)) == before
    # an empty existing database is fine
    empty = new_database(world.pg, "empty")
    code, doc, err = run_cli(capsys, "restore", "--source", "s3", "--target-url",
                             world.pg.url(empty))
    assert code == 0, err
    assert doc["created_database"] is False


def test_promote_swaps_in_the_restored_copy_and_keeps_the_old_database(world, capsys,
                                                                       monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    name = new_database(world.pg, "app")
    url = world.pg.url(name)
    with psycopg.connect(url, autocommit=True) as conn:  # the "corrupted" live database
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users VALUES (1, 'corrupted')")
    old = table_checksums(url)
    # without --yes and without a terminal: refused, nothing changed, nothing created
    code, _, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url", url,
                           "--promote")
    assert code == 2 and "promote not confirmed" in err
    assert table_checksums(url) == old
    session = psycopg.connect(url, autocommit=True)  # an application still connected
    try:
        code, doc, err = run_cli(capsys, "restore", "--source", "gcs", "--target-url", url,
                                 "--promote", "--yes")
        assert code == 0, err
        assert "terminated 1 session(s)" in err
        kept = doc["promoted"]["preserved_as"]
        assert kept.startswith(f"{name}_pre_restore_")
        assert doc["database"] == name
        assert table_checksums(url) == table_checksums(world.source_url)
        assert table_checksums(world.pg.url(kept)) == old  # the old one, untouched
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    finally:
        session.close()
    # the promoted and the kept databases both accept connections again
    with psycopg.connect(world.pg.url(kept)) as conn:
        assert conn.execute("SELECT email FROM users").fetchall() == [("corrupted",)]
