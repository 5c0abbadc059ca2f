"""The restore benchmark's verdicts (bench/restore.py) on hand-made measurements: a MISS quotes
what limits it (the emulator's raw download against vo2dr's download_verify, and the parts'
CPU), and the parts' table is written; a PASS carries no explanation."""

from bench.restore import markdown, targets


def _run(wall: float, download_verify: float | None = None) -> dict:
    out = {"seconds": {"prepare": 1.5, "download_verify": download_verify, "pg_restore": 40.0,
                       "row_counts": 2.5}} if download_verify else None
    return {"rc": 0, "wall_s": wall, "cpu_s": 1.0, "peak_rss_mb": 200.0, "output": out}


def _profile() -> dict:
    stage = {"wall_s": 1.0, "cpu_s": 0.5}
    return {"ciphertext_bytes": 100_000_000, "load": 3.0, "stages": {
        "raw_single": {"wall_s": 0.25, "cpu_s": 0.03, "emulator_cpu_s": 0.07},
        "raw_parallel": stage, "ranged": stage | {"part_mib": 16, "concurrency": 3},
        "decrypt": stage, "decompress": stage, "sha256": stage, "spool_write": stage,
        "verify_copy": {"wall_s": 5.0, "cpu_s": 2.0, "emulator_cpu_s": 0.4,
                        "threads_cpu_s": {"MainThread": 0.8}}}}


def _result(s3_wall: float) -> dict:
    runs = {"pg_restore_1": _run(40.0), "pg_restore_2": _run(40.0), "psql_1": _run(38.0)}
    for store in ("s3", "gcs", "azure"):
        for n in (1, 2):
            runs[f"vo2dr_{store}_{n}"] = _run(44.0, 5.0)
    runs["vo2dr_s3_1"] = _run(s3_wall, 5.0)
    return {"scales": [{"scale": 100, "data_mb": 928.0, "jobs": 2, "backup_id": "b",
                        "runs": runs, "profiles": {"s3": _profile()}}]}


def test_a_miss_quotes_the_raw_download_against_download_verify():
    rows = {r["target"]: r for r in targets(_result(s3_wall=50.0))}
    (miss,) = [r for t, r in rows.items() if t.startswith("restore from s3 (one transaction)")]
    assert miss["verdict"] == "MISS"
    assert "plain download in 0.25 s" in miss["why"]
    assert "download+decrypt+verify into the spool 5.0 s" in miss["why"]
    assert "5% of download_verify" in miss["why"]  # 0.25 s of 5.0 s
    assert "besides 1.5 s to find the backup" in miss["why"]
    assert "2.5 s of row counts" in miss["why"]
    passed = [r for t, r in rows.items() if t.startswith("restore from gcs (one transaction)")]
    assert passed[0]["verdict"] == "PASS" and passed[0]["why"] == ""


def test_the_parts_table_is_written():
    text = "\n".join(markdown(_result(s3_wall=44.0)))
    assert "Where `download_verify` goes" in text
    assert "| s3 | emulator → SDK plain download (one GET, no vo2dr code) | 0.25 |" in text
    assert "16 MiB x 3" in text and "MainThread 0.8" in text
