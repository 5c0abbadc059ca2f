"""The snapshot benchmark's verdicts (bench/snapshots.py) on hand-made measurements: a second
snapshot shorter than the start-up run gives no listing share, never a huge ratio marked PASS."""

from bench.snapshots import targets


def _row(objects: int, *, second_s: float, startup_s: float, listing_s: float) -> dict:
    run = {"wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mb": 300.0, "rc": 0}
    beyond = second_s - startup_s
    return {
        "objects": objects, "changed_bytes": 1000, "second_uploaded": {"s3": 1050},
        "upload_over_changed": 1.05,
        "listing_share": listing_s / beyond if beyond > 0 else None,
        "initial": run, "startup": run | {"wall_s": startup_s},
        "second": run | {"wall_s": second_s}, "listing": run | {"wall_s": listing_s},
    }


def _listing_row(rows: list[dict]) -> dict:
    (row,) = [t for t in targets({"counts": rows}) if "dominated by listing" in t["target"]]
    return row


def test_listing_share_beyond_start_up_is_judged():
    row = _listing_row([_row(2000, second_s=30.0, startup_s=10.0, listing_s=12.0)])
    assert (row["ratio"], row["verdict"]) == (0.6, "PASS")
    row = _listing_row([_row(2000, second_s=30.0, startup_s=10.0, listing_s=5.0)])
    assert (row["ratio"], row["verdict"]) == (0.25, "MISS")


def test_a_second_snapshot_shorter_than_start_up_is_not_measurable():
    row = _listing_row([_row(300, second_s=12.7, startup_s=16.4, listing_s=2.0)])
    assert row["ratio"] is None
    assert row["verdict"] == "n/a"
    assert "not measurable" in row["why"]
