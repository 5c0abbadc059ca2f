"""Names with spaces, quotes, dots, semicolons and non-ASCII letters round-trip through backup,
verify, restore, ``restore --table`` and the drill (issue 13, item 4).

``pg_restore --list`` prints names unquoted (``TABLE DATA Weird Schema t x postgres``), so
anything that splits that text on spaces gets them wrong; the tool reads the archive's TOC
itself (:mod:`vo2dr.archive`) and selects entries by dump id."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from vo2dr.archive import read_toc, sql_name
from vo2dr.backup import run_backup
from vo2dr.catalog import build_catalog
from vo2dr.cli import main
from vo2dr.drill import run_drill
from vo2dr.restore import restore
from vo2dr.trust import Trust
from vo2dr.verify import verify_copy

from .conftest import build_world

pytestmark = pytest.mark.integration

WEIRD = """
CREATE SCHEMA "Weird Schema";
CREATE TABLE "Weird Schema"."t x" (id int PRIMARY KEY, v text NOT NULL);
CREATE TABLE "Weird Schema"."child of t x" (id serial PRIMARY KEY,
    parent int NOT NULL REFERENCES "Weird Schema"."t x", note text);
CREATE TABLE "quo""te" (id bigserial PRIMARY KEY, note text);
CREATE TABLE "Übungsdaten ✓ für Läufer" (id int PRIMARY KEY, "Wert ä" numeric);
CREATE SCHEMA "dot.ted";
CREATE TABLE "dot.ted"."a.b" (id int PRIMARY KEY);
CREATE TABLE "x; Type: TABLE; Schema: public; Owner: y" (id int);
CREATE TABLE plain (id int PRIMARY KEY);
"""
SEED = [
    """INSERT INTO "Weird Schema"."t x" SELECT g, 'v' || g FROM generate_series(1, 40) g""",
    """INSERT INTO "Weird Schema"."child of t x" (parent, note)
       SELECT 1 + g % 40, 'n' || g FROM generate_series(1, 90) g""",
    """INSERT INTO "quo""te" (note) SELECT 'q' || g FROM generate_series(1, 17) g""",
    """INSERT INTO "Übungsdaten ✓ für Läufer" SELECT g, g / 7.0 FROM generate_series(1, 23) g""",
    """INSERT INTO "dot.ted"."a.b" SELECT g FROM generate_series(1, 5) g""",
    """INSERT INTO "x; Type: TABLE; Schema: public; Owner: y" VALUES (1), (2)""",
    "INSERT INTO plain SELECT g FROM generate_series(1, 3) g",
]
PAIRS = [("Weird Schema", "t x"), ("Weird Schema", "child of t x"), ("public", 'quo"te'),
         ("public", "Übungsdaten ✓ für Läufer"), ("dot.ted", "a.b"),
         ("public", "x; Type: TABLE; Schema: public; Owner: y"), ("public", "plain")]
STRATEGY = {"dataClasses": {
    "full": {"tables": "all", "rpoMinutes": 1440, "rtoMinutes": 240, "dailyAtUtc": "02:00",
             "sanityQueries": ['SELECT count(*) = 40 FROM "Weird Schema"."t x"']},
}}


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WEIRD)
        for statement in SEED:
            conn.execute(statement)


def contents(url: str, pairs=PAIRS) -> dict[tuple[str, str], tuple[int, str]]:
    """Per (schema, table) that exists: row count and an ordered checksum of its rows."""
    out = {}
    with psycopg.connect(url) as conn:
        for schema, table in pairs:
            exists = conn.execute("SELECT to_regclass(%s)", (sql_name(schema, table),)).fetchone()
            if exists[0] is None:
                continue
            out[(schema, table)] = conn.execute(
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
                f" FROM {sql_name(schema, table)} t").fetchone()
    return out


@pytest.fixture(scope="module")
def weird(pg, module_env, recovery_keys):
    return build_world(pg, recovery_keys, ("full",), seed=seed, prefix="weird",
                       strategy=STRATEGY)


def test_backup_reads_the_names_exactly(weird, tmp_path):
    """The manifest counts every table; the archive's TOC names them exactly."""
    from vo2dr.verify import load_manifest

    store = weird.store("s3")
    entry = build_catalog({"s3": store}, "staging").resolve(None, data_class="full", store="s3")
    trust = Trust.from_settings(weird.settings)
    manifest = load_manifest(store, entry, trust)
    assert manifest.table_rows() == {
        "Weird Schema.t x": 40, "Weird Schema.child of t x": 90, 'public.quo"te': 17,
        "public.Übungsdaten ✓ für Läufer": 23, "dot.ted.a.b": 5,
        "public.x; Type: TABLE; Schema: public; Owner: y": 2, "public.plain": 3}
    spool = tmp_path / "a.dump"
    with open(spool, "wb") as fh:
        result = verify_copy(store, entry, trust=trust, spool=fh)
    assert result.ok, result.problems
    assert read_toc(spool).table_data() == set(PAIRS)


@pytest.mark.parametrize("source", ["s3", "gcs", "azure"])
def test_verify_passes_in_every_store(weird, source):
    stores = weird.stores()
    entry = build_catalog(stores, "staging").resolve(None, data_class="full", store=source)
    result = verify_copy(stores[source], entry, trust=Trust.from_settings(weird.settings))
    assert result.ok, result.problems
    assert len(result.tables) == len(PAIRS)


def test_whole_restore_equals_the_source(weird):
    target = weird.restorer_url(f"wr_{uuid.uuid4().hex[:8]}")
    result = restore(weird.settings, source="gcs", target_url=target)
    assert result.ok, result.problems
    assert contents(target) == contents(weird.source_url)
    assert len(contents(target)) == len(PAIRS)


def test_parallel_restore_equals_the_source(weird):
    target = weird.restorer_url(f"wp_{uuid.uuid4().hex[:8]}")
    result = restore(weird.settings, source="azure", target_url=target, jobs=2)
    assert result.ok, result.problems
    assert contents(target) == contents(weird.source_url)


@pytest.mark.parametrize("spelling, pair", [
    ('"Weird Schema"."t x"', ("Weird Schema", "t x")),
    ("Weird Schema.t x", ("Weird Schema", "t x")),
    ('quo"te', ("public", 'quo"te')),
    ('"quo""te"', ("public", 'quo"te')),
    ("Übungsdaten ✓ für Läufer", ("public", "Übungsdaten ✓ für Läufer")),
    ('"dot.ted"."a.b"', ("dot.ted", "a.b")),
    ("x; Type: TABLE; Schema: public; Owner: y",
     ("public", "x; Type: TABLE; Schema: public; Owner: y")),
])
def test_table_restore_equals_the_source(weird, spelling, pair):
    target = weird.restorer_url(f"wt_{uuid.uuid4().hex[:8]}")
    result = restore(weird.settings, source="s3", target_url=target, tables=[spelling])
    assert result.ok, result.problems
    got = contents(target)
    assert got == {pair: contents(weird.source_url)[pair]}
    assert got[pair][0] > 0


def test_table_restore_of_a_table_with_a_foreign_key_brings_both_when_asked(weird, capsys,
                                                                            monkeypatch):
    for k, v in weird.env().items():
        monkeypatch.setenv(k, v)
    target = weird.restorer_url(f"wf_{uuid.uuid4().hex[:8]}")
    code = main(["restore", "--source", "s3", "--target-url", target, "--no-progress",
                 "--table", '"Weird Schema"."t x"', "--table", "Weird Schema.child of t x"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(json.loads(out)["tables"]) == ["Weird Schema.child of t x", "Weird Schema.t x"]
    pairs = [("Weird Schema", "t x"), ("Weird Schema", "child of t x")]
    assert contents(target) == contents(weird.source_url, pairs)
    with psycopg.connect(target) as conn:  # the foreign key between them came along
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone()[
            0] == 1


def test_drill_passes(weird):
    report = run_drill(weird.settings, stores=weird.stores(), source="s3")
    assert report.ok, report.to_json()
    assert len(report.classes[0].tables) == len(PAIRS)


def test_a_second_backup_is_verified_in_every_store(weird):
    summary = run_backup(weird.settings, "full")
    assert summary["ok"], summary


def test_an_archive_that_does_not_name_the_counted_tables_is_never_verified(weird):
    """The backup job reads its own archive's TOC as restores do (archive_problem): a copy
    counts only if the TOC's table data is exactly the tables the manifest lists."""
    import subprocess

    from vo2dr import pgtools
    from vo2dr.archive import TocReader
    from vo2dr.backup import archive_problem

    dump = subprocess.run([pgtools.pg_dump(), "--format=custom", "--compress=0",
                           f"--dbname={weird.source_url}"], capture_output=True, check=True,
                          env=pgtools.tool_env()).stdout

    def problem(data: bytes, tables) -> str:
        reader = TocReader()
        reader.feed(data)
        return archive_problem(reader, tables)

    assert problem(dump, PAIRS) == ""
    wrong = problem(dump, [*PAIRS[:-1], ("public", "plain x")])
    assert "does not match the tables counted" in wrong
    assert '"public"."plain x"' in wrong and '"public"."plain"' in wrong
    assert "cannot be read" in problem(dump[:200], PAIRS)
    assert "cannot be read" in problem(b"PGDMP" + bytes(300), PAIRS)
