"""The seed generator: deterministic, and shaped like the strategy's data classes."""

from __future__ import annotations

import hashlib
import re
import uuid

import psycopg
import pytest
from vo2dr.strategy import parse_strategy, read_stack_file

from dev import seed
from dev.localcloud import STACK_FILE


def _digest(gen: seed.Generator) -> str:
    h = hashlib.sha256()
    for rows in (gen.protocols(), gen.users_rows(), gen.assignments_rows(),
                 gen.biomarker_rows(), gen.audit_rows(), gen.analytics_rows(),
                 gen.app_config_rows(), gen.system_log_rows()):
        for row in rows:
            h.update(repr(row).encode())
    first_id = 1
    for batch_no, sessions in enumerate(gen.sessions()):
        block = gen.samples(batch_no, sessions, first_id)
        first_id += len(block)
        h.update(block.tobytes())
        h.update(repr(gen.vo2max_rows(sessions, first_id)).encode())
    return h.hexdigest()


def test_same_seed_same_rows_other_seed_other_rows():
    assert _digest(seed.Generator(7, 0.5)) == _digest(seed.Generator(7, 0.5))
    assert _digest(seed.Generator(7, 0.5)) != _digest(seed.Generator(8, 0.5))


def test_scale_sets_the_number_of_users():
    assert seed.Generator(1, 10).n_users == 10 * seed.USERS_PER_SCALE
    assert seed.Generator(1, 0.01).n_users == 5  # a floor, so tiny scales stay realistic
    assert seed.scale_for_mb(1000) == pytest.approx(1000 / seed.MB_PER_SCALE)


def test_binary_copy_rows_have_the_declared_layout():
    gen = seed.Generator(3, 0.3)
    list(gen.users_rows())
    sessions = next(gen.sessions())
    block = gen.samples(0, sessions, 1)
    assert len(block) == sum(s[5] for s in sessions)
    assert (block["nf"] == len(seed.Generator.SAMPLE_COLUMNS)).all()
    assert (block["heart_rate_bpm"] > 30).all() and (block["heart_rate_bpm"] < 230).all()
    assert list(block["id"][:3]) == [1, 2, 3]


def test_tables_cover_the_stack_files_data_classes():
    strategy = parse_strategy(read_stack_file(STACK_FILE)["dataClasses"])
    for name in ("critical", "important"):
        tables = set(strategy.data_classes[name].tables)
        assert tables <= set(seed.TABLES), f"{name}: {tables - set(seed.TABLES)} not seeded"
        assert {t for t, c in seed.TABLE_CLASSES.items() if c == name} == tables
    # Everything else is only in the full dump (non-critical data).
    named = {t for n in ("critical", "important") for t in strategy.data_classes[n].tables}
    assert {t for t, c in seed.TABLE_CLASSES.items() if c == "full"} == set(seed.TABLES) - named


def test_no_foreign_key_crosses_a_data_class():
    """A data class restored alone must not need another class's tables."""
    fks = re.findall(r"ALTER TABLE (\w+) ADD CONSTRAINT \w+\s+FOREIGN KEY \(\w+\) "
                     r"REFERENCES (\w+)", seed.CONSTRAINTS)
    assert fks
    for table, target in fks:
        assert seed.TABLE_CLASSES[table] == seed.TABLE_CLASSES[target], (table, target)


@pytest.mark.integration
def test_seeded_database_is_deterministic_and_passes_the_sanity_queries(pg):
    suffix = uuid.uuid4().hex[:8]
    a = seed.create_database(pg.url(), f"seed_a_{suffix}")
    b = seed.create_database(pg.url(), f"seed_b_{suffix}")
    c = seed.create_database(pg.url(), f"seed_c_{suffix}")
    report = seed.seed(a, 0.3, seed=11)
    seed.seed(b, 0.3, seed=11)
    seed.seed(c, 0.3, seed=12)
    sums_a, sums_b, sums_c = seed.checksum(a), seed.checksum(b), seed.checksum(c)
    assert sums_a == sums_b
    assert seed.combined_checksum(sums_a) != seed.combined_checksum(sums_c)
    assert all(report.tables[t].rows > 0 for t in seed.TABLES)
    assert report.data_bytes > 0

    strategy = parse_strategy(read_stack_file(STACK_FILE)["dataClasses"])
    with psycopg.connect(a) as conn:
        present = set(seed.existing_tables(conn))
        for dc in strategy.data_classes.values():
            assert set(dc.tables) <= present
            for query in dc.sanity_queries:
                assert conn.execute(query).fetchone()[0] is True, query

    with pytest.raises(seed.SeedError, match="--replace"):
        seed.seed(a, 0.3, seed=11)
    seed.seed(a, 0.3, seed=11, replace=True)
    assert seed.checksum(a) == sums_a
