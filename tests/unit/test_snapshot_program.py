"""The snapshot sources (issue 17) in the Pulumi program, both stacks, under mocks: one backup
function and schedule per source from its class RPO, read-only grants on exactly its origins
(and its own indexes, its dedup base) pinned to that function, the pruner in each cloud with
its daily schedule, the KMS grants pinned to snapshot indexes, transitions-only content pools,
and no database function for the non-critical class nor a standby job for assets and logs."""

from __future__ import annotations

import json

import pytest

from dev.mockrun import run_program, stack_settings
from tests.app_secrets import SNAPSHOT_SOURCES, snapshot_roots
from tests.cron_eval import max_gap_seconds
from tests.unit.test_runtime_program import (
    FUNCTION,
    KEY,
    NS,
    ROLE_POLICY,
    RUN_JOB,
    SCHEDULE,
    STACKS,
    function,
    function_env,
    graph_of,
    schedule,
)

BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


def app(stack: str) -> dict:
    return stack_settings(stack)[f"{NS}:application"]


def classes(stack: str) -> dict:
    return stack_settings(stack)[f"{NS}:dataClasses"]


def statements(g, name: str) -> dict[str, dict]:
    return {st["Sid"]: st for st in json.loads(g.one(ROLE_POLICY, name).inputs["policy"])[
        "Statement"]}


def test_each_snapshot_source_runs_on_its_class_rpo_with_the_lambda_timeout(stack):
    g = graph_of(stack)
    timeout = stack_settings(stack)[f"{NS}:runtime"]["lambdaTimeoutSeconds"]
    for source in SNAPSHOT_SOURCES:
        rpo = classes(stack)[app(stack)[source]["dataClass"]]["rpoMinutes"] * 60
        s = schedule(g, f"backup-{source}")
        assert max_gap_seconds(s.inputs["scheduleExpression"]) <= rpo
        assert s.inputs["target"]["arn"] == function(g, f"backup-{source}").outputs["arn"]
        assert json.loads(s.inputs["target"]["input"]) == {"job": "backup", "source": source}
        fn = function(g, f"backup-{source}")
        # The function's limit is the snapshot's deadline (the job stops taking objects
        # before it and the next run continues), no secret and no VPC.
        assert fn.inputs["timeout"] == timeout
        assert fn.inputs["handler"] == "vo2dr.handlers.backup_handler"
        assert not fn.inputs.get("vpcConfig")
        assert not [k for k in function_env(g, f"backup-{source}") if k.endswith("_SECRET")]


def test_the_non_critical_class_has_no_database_function():
    for stack in STACKS:
        g = graph_of(stack)
        assert classes(stack)["non-critical"]["tables"] == []
        assert not [f.name for f in g.of_type(FUNCTION) if "non-critical" in f.name]
        assert not [s.name for s in g.of_type(SCHEDULE) if "non-critical" in s.name]
        assert not [j.name for j in g.of_type(RUN_JOB) if "non-critical" in j.name]


def test_origins_are_read_only_to_exactly_their_function(stack):
    g = graph_of(stack)
    for source in SNAPSHOT_SOURCES:
        sts = statements(g, f"-backup-{source}-runtime")
        fn_arn = function(g, f"backup-{source}").outputs["arn"]
        origins = [u.removeprefix("s3://").partition("/")
                   for u in app(stack)[source]["origins"].values()]
        read = sts["ReadOriginObjects"]
        assert read["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
        assert sorted(read["Resource"]) == sorted(f"arn:aws:s3:::{b}/{p}*" for b, _, p in origins)
        assert read["Condition"] == {"ArnEquals": {"lambda:SourceFunctionArn": fn_arn}}
        lists = [st for sid, st in sts.items() if sid.startswith("ListOrigin")]
        assert sorted(st["Resource"] for st in lists) == sorted({f"arn:aws:s3:::{b}"
                                                                for b, _, _ in origins})
        for st in lists:
            bucket = st["Resource"].removeprefix("arn:aws:s3:::")
            assert st["Action"] == ["s3:ListBucket"]
            assert st["Condition"]["StringLike"]["s3:prefix"] == sorted(
                f"{p}*" for b, _, p in origins if b == bucket)
            assert st["Condition"]["ArnEquals"] == {"lambda:SourceFunctionArn": fn_arn}
        # Its own manifests and indexes (the dedup base), nothing else of the backup bucket.
        own = sts["ReadOwnSnapshotIndexes"]
        root = snapshot_roots(stack)[source]
        assert [r.split("/", 1)[1] for r in own["Resource"]] == [
            f"{root}*.manifest.json", f"{root}*.index.enc"]
    # No other policy of the stack names an origin bucket.
    buckets = {u.removeprefix("s3://").split("/")[0] for s in SNAPSHOT_SOURCES
               for u in app(stack)[s]["origins"].values()}
    naming = {p.name for p in g.of_type(ROLE_POLICY) for b in buckets
              if f":::{b}" in p.inputs["policy"]}
    assert naming == {g.one(ROLE_POLICY, f"-backup-{s}-runtime").name for s in SNAPSHOT_SOURCES}


def test_a_non_s3_or_unbounded_origin_is_refused_naming_the_key():
    for url in ("gs://uploads/x/", "file:///srv/uploads/", "s3://vo2max-uploads-staging/up"):
        assets = {**app("staging")["assets"], "origins": {"uploads": url}}
        with pytest.raises(Exception) as err:
            run_program("staging", {f"{NS}:application.assets": assets})
        assert "vo2max-dr:application.assets.origins.uploads" in str(err.value), url


def test_the_pruner_runs_daily_as_its_own_identity_in_every_cloud(stack):
    g = graph_of(stack)
    prune = stack_settings(stack)[f"{NS}:monitoring"]["pruneSchedule"]
    fn = function(g, "prune")
    assert fn.inputs["handler"] == "vo2dr.handlers.prune_handler"
    assert fn.inputs["role"] == g.outputs["awsPrunerRoleArn"]
    for source in SNAPSHOT_SOURCES:
        s = schedule(g, f"prune-{source}")
        assert s.inputs["scheduleExpression"] == prune
        assert s.inputs["target"]["arn"] == fn.outputs["arn"]
        assert json.loads(s.inputs["target"]["input"]) == {"job": "prune", "source": source}
    env = function_env(g, "prune")
    # Content is marked only once its lock has ended.
    assert env["VO2DR_LOCK_DAYS"] == str(stack_settings(stack)[f"{NS}:immutability"]["lockDays"])
    settings = stack_settings(stack)[f"{NS}:clouds"]
    if settings["gcp"]["enabled"]:
        sa = g.one("gcp:serviceaccount/account:Account", "gcs-pruner-account").outputs["email"]
        creds = json.loads(env["VO2DR_GCS_CREDENTIAL_CONFIG"])
        assert creds["service_account_impersonation_url"].endswith(f"/{sa}:generateAccessToken")
    if settings["azure"]["enabled"]:
        identity = g.one("azure-native:managedidentity:UserAssignedIdentity", "pruner-identity")
        assert env["VO2DR_AZURE_CLIENT_ID"] == identity.outputs["clientId"]


def test_kms_decrypt_of_writer_and_pruner_is_pinned_to_snapshot_indexes(stack):
    g = graph_of(stack)
    policy = json.loads(g.one(KEY, "backup-key").inputs["policy"])["Statement"]
    by_sid = {st["Sid"]: st for st in policy}
    want = {"StringEquals": {"kms:EncryptionContext:environment": stack,
                             "kms:EncryptionContext:source": sorted(SNAPSHOT_SOURCES)}}
    for sid, role in (("BackupWriterDecryptsSnapshotIndexes", "awsBackupWriterRoleArn"),
                      ("PrunerDecryptsSnapshotIndexes", "awsPrunerRoleArn")):
        st = by_sid[sid]
        assert st["Principal"] == {"AWS": g.outputs[role]}
        assert st["Action"] == ["kms:Decrypt"] and st["Condition"] == want
    # Those are the only direct Decrypt grants the two roles hold in the key policy.
    for role in ("awsBackupWriterRoleArn", "awsPrunerRoleArn"):
        direct = [st["Sid"] for st in policy if st["Principal"] == {"AWS": g.outputs[role]}
                  and "kms:Decrypt" in st["Action"] and "kms:ViaService" not in json.dumps(st)]
        assert len(direct) == 1, direct


def test_the_pruner_deletes_only_content_and_writes_only_plans(stack):
    g = graph_of(stack)
    sts = statements(g, "pruner-permissions-pruner")
    roots = snapshot_roots(stack).values()
    bucket = "arn:aws:s3:::" + g.outputs["awsBucketName"]
    assert sts["DeleteUnreferencedContentOnly"]["Action"] == ["s3:DeleteObject"]
    assert sts["DeleteUnreferencedContentOnly"]["Resource"] == [
        f"{bucket}/{r}content/*" for r in roots]
    assert sts["WritePrunePlansOnly"]["Resource"] == [f"{bucket}/{r}prune/*" for r in roots]
    assert not [sid for sid, st in sts.items() if sid not in (
        "DeleteUnreferencedContentOnly", "WritePrunePlansOnly")
        and any(a.startswith(("s3:Put", "s3:Delete")) for a in st["Action"])]
    if stack_settings(stack)[f"{NS}:clouds"]["azure"]["enabled"]:
        a = g.one("azure-native:authorization:RoleAssignment", "pruner-delete-content")
        assert a.inputs["conditionVersion"] == "2.0"
        for r in roots:
            assert f"blobs:path] StringStartsWith '{r}content/'" in a.inputs["condition"]
        assert f"!(ActionMatches{{'{BLOBS}/delete'}})" in a.inputs["condition"]


def test_content_pools_change_class_in_every_cloud_and_never_expire(stack):
    g = graph_of(stack)
    lc = g.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
               "-backups-lifecycle")
    rules = {r["id"]: r for r in lc.inputs["rules"]}
    imm = stack_settings(stack)[f"{NS}:immutability"]
    for source, root in snapshot_roots(stack).items():
        rule = rules[f"content-{source}"]
        assert rule["filter"] == {"prefix": f"{root}content/"}
        assert "expiration" not in rule
        assert [t["storageClass"] for t in rule["transitions"]] == ["STANDARD_IA", "GLACIER_IR"]
        assert rule["noncurrentVersionExpiration"] == {
            "noncurrentDays": imm["noncurrentVersionDays"]}
        # The pruner's plans go like daily backups.
        days = stack_settings(stack)[f"{NS}:retention"]["dailyDays"]
        assert rules[f"prune-{source}"]["expiration"] == {"days": days}
    clouds = stack_settings(stack)[f"{NS}:clouds"]
    if clouds["azure"]["enabled"]:
        policy = g.one("azure-native:storage:ManagementPolicy").inputs["policy"]["rules"]
        for source, root in snapshot_roots(stack).items():
            rule = next(r for r in policy if r["name"] == f"content-{source}")
            base = rule["definition"]["actions"]["baseBlob"]
            assert set(base) == {"tierToCool", "tierToCold"}
            assert rule["definition"]["filters"]["prefixMatch"][0].endswith(f"/{root}content/")


def test_the_standby_runs_no_snapshot_job(stack):
    g = graph_of(stack)
    assert not [j.name for j in g.of_type(RUN_JOB)
                if any(s in j.name for s in ("assets", "logs", "prune"))]


def test_snapshot_sources_need_a_prune_schedule():
    with pytest.raises(Exception) as err:
        run_program("staging", {f"{NS}:monitoring.pruneSchedule": None})
    assert "vo2max-dr:monitoring.pruneSchedule" in str(err.value)


def test_azure_keeps_the_snapshots_intraday_tier_in_the_intraday_container(stack):
    if not stack_settings(stack)[f"{NS}:clouds"]["azure"]["enabled"]:
        pytest.skip("no Azure copy in this stack")
    g = graph_of(stack)
    rules = g.one("azure-native:storage:ManagementPolicy").inputs["policy"]["rules"]
    containers = [c.inputs["containerName"]
                  for c in g.of_type("azure-native:storage:BlobContainer")]
    intraday = next(c for c in containers if c.endswith("-intraday"))
    hours = stack_settings(stack)[f"{NS}:retention"]["intradayHours"]
    for source, root in snapshot_roots(stack).items():
        rule = next(r for r in rules if r["definition"]["filters"]["prefixMatch"] == [
            f"{intraday}/{root}intraday/"])
        assert rule["definition"]["actions"]["baseBlob"]["delete"] == {
            "daysAfterCreationGreaterThan": hours // 24}, source
        # Nothing of a snapshot source but its intraday tier is in that container.
        assert not [r["name"] for r in rules if any(
            p.startswith(f"{intraday}/{root}") and p != f"{intraday}/{root}intraday/"
            for p in r["definition"]["filters"]["prefixMatch"])]
