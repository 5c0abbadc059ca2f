"""Snapshots of the uploads bucket restored end to end: from each of S3, GCS and Azure, and
from GCS with the offline recovery key while AWS (and so KMS) is unreachable, byte-identical to
the origin at snapshot time, objects deleted from the origin since included; restores limited
to a key prefix; into an empty S3 prefix; non-empty targets refused and left unchanged."""

from __future__ import annotations

import boto3
import pytest

from dev import servers

from .conftest import UPLOADS_PREFIX, change_one_percent, entries, run_cli, take, tree

pytestmark = pytest.mark.integration


def test_round_trip_from_each_store_with_deleted_objects(snap, capsys, tmp_path):
    at_first = snap.assets_now()
    first = take(capsys)
    changed, deleted, added = change_one_percent(snap)
    at_second = snap.assets_now()
    second = take(capsys)
    assert set(deleted) <= set(at_first) and not set(deleted) & set(at_second)

    code, doc, err = run_cli(capsys, "list", "--kind", "assets", "--json")
    assert code == 0, err
    rows = {r["snapshot_id"]: r for r in doc["snapshots"]}
    one, two = rows[first["backup_id"]], rows[second["backup_id"]]
    assert (one["objects"], one["bytes"]) == (len(at_first), sum(map(len, at_first.values())))
    assert (two["objects"], two["bytes"]) == (len(at_second), sum(map(len, at_second.values())))
    assert one["new_objects"] == len(at_first) and one["partial"] is False
    # Only what changed or was added is new in the second snapshot.
    assert two["new_objects"] == len(changed) + len(added)
    assert two["new_bytes"] == sum(len(at_second[k]) for k in [*changed, *added])
    assert two["partial"] is False and set(two["stores"].values()) == {"complete"}

    for store in ("s3", "gcs", "azure"):
        target = tmp_path / f"first-from-{store}"
        code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", store,
                                 "--snapshot", first["backup_id"], "--target-dir", str(target),
                                 "--no-progress")
        assert code == 0, err
        assert doc["snapshot_id"] == first["backup_id"] and doc["store"] == store
        assert doc["restored"]["objects"] == len(at_first)
        assert tree(target) == at_first  # the deleted objects included, byte for byte
    # latest is the second snapshot; the --source assets --store spelling works too.
    target = tmp_path / "latest"
    code, doc, err = run_cli(capsys, "restore", "--source", "assets", "--store", "azure",
                             "--snapshot", "latest", "--target-dir", str(target),
                             "--no-progress")
    assert code == 0, err
    assert doc["snapshot_id"] == second["backup_id"]
    assert tree(target) == at_second


def test_restore_with_the_recovery_key_while_aws_is_unreachable(snap, capsys, tmp_path,
                                                                 monkeypatch):
    at_snapshot = snap.assets_now()
    taken = take(capsys)
    gone = sorted(at_snapshot)[:4]
    for k in gone:
        snap.uploads.delete(UPLOADS_PREFIX + k.removeprefix("uploads/"))
    key = tmp_path / "recovery.pem"
    key.write_bytes(snap.recovery_private)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{servers.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for store in ("gcs", "azure"):
        target = tmp_path / f"offline-{store}"
        code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", store,
                                 "--target-dir", str(target), "--recovery-key", str(key),
                                 "--no-progress")
        assert code == 0, err
        assert doc["snapshot_id"] == taken["backup_id"] and doc["key_used"] == "recovery-key"
        assert tree(target) == at_snapshot
    # Without the recovery key, the restore says KMS is the problem and writes nothing.
    target = tmp_path / "no-key"
    code, _, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "gcs",
                           "--target-dir", str(target), "--no-progress")
    assert code != 0 and "--recovery-key" in err
    assert not target.exists() or tree(target) == {}


def test_prefix_s3_target_and_non_empty_targets_refused(snap, capsys, tmp_path):
    at_snapshot = snap.assets_now()
    take(capsys)
    target = tmp_path / "one-user"
    code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "s3",
                             "--prefix", "uploads/users/u1/", "--target-dir", str(target),
                             "--jobs", "3", "--no-progress")
    assert code == 0, err
    wanted = {k: v for k, v in at_snapshot.items() if k.startswith("uploads/users/u1/")}
    assert wanted and tree(target) == wanted and doc["prefix"] == "uploads/users/u1/"

    # A non-empty directory is refused before anything is downloaded, and left as it was.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "s3",
                           "--target-dir", str(busy), "--no-progress")
    assert code == 2 and "not empty" in err
    assert tree(busy) == {"keep.txt": b"mine"}

    # Into an empty S3 prefix (a new uploads bucket), then refused there a second time.
    s3 = boto3.client("s3")
    bucket = f"restored-uploads-{snap.buckets.s3[-8:]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"other prefix, not in the way")
    url = f"s3://{bucket}/restored/"
    code, doc, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "gcs",
                             "--target-url", url, "--no-progress")
    assert code == 0, err
    got = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="restored/"):
        for o in page["Contents"]:
            got[o["Key"].removeprefix("restored/")] = s3.get_object(
                Bucket=bucket, Key=o["Key"])["Body"].read()
    assert got == at_snapshot
    code, _, err = run_cli(capsys, "restore", "--kind", "assets", "--source", "gcs",
                           "--target-url", url, "--no-progress")
    assert code == 2 and "not empty" in err


def test_logs_restore_by_origin(snap, capsys, tmp_path):
    drain = snap.drain.objects()
    taken = take(capsys, "logs")
    target = tmp_path / "security"
    code, doc, err = run_cli(capsys, "restore", "--kind", "logs", "--source", "azure",
                             "--prefix", "security/", "--target-dir", str(target),
                             "--no-progress")
    assert code == 0, err
    assert doc["snapshot_id"] == taken["backup_id"]
    assert tree(target) == entries(drain, "security/", "security")
    everything = tmp_path / "all-logs"
    code, doc, err = run_cli(capsys, "restore", "--kind", "logs", "--source", "s3",
                             "--target-dir", str(everything), "--no-progress")
    assert code == 0, err
    assert tree(everything) == {**entries(drain, "security/", "security"),
                                **entries(drain, "application/", "application")}
