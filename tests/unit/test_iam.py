"""Every AWS policy document the program declares, parsed and held to least privilege by
tests/iam_check.py: no "*" action or resource (a key policy's "Resource": "*" means the key
itself and is the one exception), and the job roles reach only their environment's prefix of
the backup bucket and the backup key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dev.mockrun import Graph, Resource, run_program, walk
from tests import iam_check
from tests.app_secrets import app_secret_arns, application_prefixes, origin_arns, snapshot_roots
from tests.iam_check import check_policy
from tests.program_graphs import program_graph

STACKS = ("staging", "production")
# Where each AWS resource type keeps a policy document, and what kind of document it is.
POLICY_FIELDS: dict[tuple[str, str], str] = {
    ("aws:iam/role:Role", "assumeRolePolicy"): "trust",
    ("aws:iam/rolePolicy:RolePolicy", "policy"): "identity",
    ("aws:iam/policy:Policy", "policy"): "identity",
    ("aws:s3/bucketPolicy:BucketPolicy", "policy"): "resource",
    ("aws:sqs/queuePolicy:QueuePolicy", "policy"): "resource",
    ("aws:sqs/queue:Queue", "policy"): "resource",
    ("aws:sns/topicPolicy:TopicPolicy", "policy"): "resource",
    ("aws:sns/topic:Topic", "policy"): "resource",
    ("aws:secretsmanager/secretPolicy:SecretPolicy", "policy"): "resource",
    ("aws:lambda/permission:Permission", "policy"): "resource",
    ("aws:kms/key:Key", "policy"): "key",
}


# The one grant on "*" a job role may hold (infra/aws/access.py), in this exact form.
ENTRA_TOKEN_STATEMENT = {
    "Sid": "WebIdentityTokenForEntraOnly", "Effect": "Allow",
    "Action": ["sts:GetWebIdentityToken"], "Resource": "*",
    "Condition": {
        "ForAllValues:StringEquals": {"sts:IdentityTokenAudience": ["api://AzureADTokenExchange"]},
        "Null": {"sts:IdentityTokenAudience": "false"},
        "StringEquals": {"sts:SigningAlgorithm": "RS256"},
        "NumericLessThanEquals": {"sts:DurationSeconds": 300}}}


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {stack: program_graph(stack) for stack in STACKS}


def documents(g: Graph) -> Iterator[tuple[Resource, str, str, dict[str, Any]]]:
    for r in g.resources:
        for (type_, field), kind in POLICY_FIELDS.items():
            if r.type == type_ and isinstance(r.inputs.get(field), str):
                yield r, field, kind, json.loads(r.inputs[field])


def declared_arns(g: Graph) -> list[str]:
    """ARNs of everything the program declares, and the paths below them: a grant may name
    only these (never another team's resources)."""
    allowed = []
    for r in g.resources:
        arn = r.outputs.get("arn")
        if isinstance(arn, str) and arn.startswith("arn:"):
            allowed += [arn, f"{arn}/*", f"{arn}:*"]
    return allowed


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_policy_document_is_found(graphs, stack) -> None:
    """No policy document hides in a field the checker does not read."""
    g = graphs[stack]
    checked = {(r.urn, f) for r, f, _, _ in documents(g)}
    for r in g.resources:
        if not r.type.startswith("aws:"):
            continue
        for path, value in walk(r.inputs):
            if isinstance(value, str) and '"Statement"' in value:
                assert (r.urn, path) in checked, f"{r.type} {r.name}.{path} is not checked"
    kinds = {k for _, _, k, _ in documents(g)}
    assert {"trust", "identity", "resource", "key"} <= kinds


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_policy_document_is_least_privilege(graphs, stack) -> None:
    g = graphs[stack]
    # Declared resources, the app's secrets the backup function reads (issue 16), and the
    # snapshot origins the assets and logs functions read (issue 17).
    allowed = [*declared_arns(g), *app_secret_arns(stack), *origin_arns(stack)]
    problems = []
    for r, field, kind, document in documents(g):
        found = check_policy(document, kind=kind, allowed_resources=allowed)
        problems += [f"{r.name}.{field}: {p}" for p in found]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_job_roles_reach_only_the_environment_prefix_and_the_key(graphs, stack) -> None:
    g = graphs[stack]
    bucket = "arn:aws:s3:::" + g.outputs["awsBucketName"]
    key = g.outputs["awsKmsKeyArn"]
    prefix = f"database/{stack}/"
    # The application sources' prefixes get the same grants as the database's (issue 16).
    prefixes = [prefix, *application_prefixes(stack)]
    reports = f"reports/{stack}/"  # the report records (issue 18)
    allowed = [bucket, *(f"{bucket}/{p}*" for p in prefixes), f"{bucket}/{reports}*", key]
    # The store's own grants (the runtime adds separate policies for logs, queues, secrets;
    # those are held to the program-wide rule above).
    store = {r.urn for r in g.of_type("vo2dr:aws:JobPermissions")}
    policies = {r.inputs["role"]: json.loads(r.inputs["policy"])
                for r in g.of_type("aws:iam/rolePolicy:RolePolicy") if r.parent in store}
    assert set(policies) == {f"vo2dr-{stack}-{n}"
                             for n in ("backup-writer", "restore-reader", "monitor")}
    for role, document in policies.items():
        problems = check_policy(document, kind="identity", allowed_resources=allowed,
                                list_prefixes=[*prefixes, reports])
        assert not problems, f"{role}: {problems}"

    def actions(role: str) -> set[str]:
        return {a for s in policies[f"vo2dr-{stack}-{role}"]["Statement"] for a in s["Action"]}

    def resources(role: str, action: str) -> set[str]:
        return {r for s in policies[f"vo2dr-{stack}-{role}"]["Statement"]
                if action in s["Action"] for r in ([s["Resource"]]
                                                   if isinstance(s["Resource"], str)
                                                   else s["Resource"])}

    # Writer: puts new objects, never reads, deletes or changes retention.
    # Besides the store: DescribeKey (key state, id -> ARN) and web identity tokens for Entra ID
    # (keyless sign-in to the Azure copy), the one grant on "*" (tests/iam_check.py).
    # PutObjectRetention: the intraday tier's own lock in the creating request (it can set or
    # lengthen a lock, never shorten one: no s3:BypassGovernanceRetention anywhere).
    assert actions("backup-writer") == {"s3:PutObject", "s3:AbortMultipartUpload",
                                        "s3:PutObjectRetention",
                                        "s3:ListBucket", "kms:Encrypt", "kms:GenerateDataKey",
                                        "kms:Decrypt", "kms:DescribeKey",
                                        "sts:GetWebIdentityToken"}
    # A snapshot source's tiers and content pool, never its pruner's plans (issue 17).
    snapshots = snapshot_roots(stack)
    written = [p for p in prefixes if p not in snapshots.values()] + [
        f"{root}{part}/" for root in snapshots.values()
        for part in ("intraday", "daily", "weekly", "monthly", "yearly", "content")]
    assert resources("backup-writer", "s3:PutObject") == {
        *(f"{bucket}/{p}*" for p in written), f"{bucket}/{reports}attempts/*"}
    assert resources("backup-writer", "kms:GenerateDataKey") == {key}
    assert resources("backup-writer", "kms:DescribeKey") == {key}
    # All three roles sign in to the Azure copy (the writer as the writer identity, the reader
    # and the monitor as the reader identity) with the same token grant, in exactly this form.
    for role in ("backup-writer", "restore-reader", "monitor"):
        (token,) = [s for s in policies[f"vo2dr-{stack}-{role}"]["Statement"]
                    if "sts:GetWebIdentityToken" in s["Action"]]
        assert token == ENTRA_TOKEN_STATEMENT, role
    writer_decrypt = [s for s in policies[f"vo2dr-{stack}-backup-writer"]["Statement"]
                      if "kms:Decrypt" in s["Action"]]
    assert writer_decrypt[0]["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3.")
    # Reader: gets, lists and decrypts, never writes a backup (plus Entra-only tokens); the
    # drill writes its result records, and only those.
    assert actions("restore-reader") == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket",
                                         "kms:Decrypt", "kms:DescribeKey", "s3:PutObject",
                                         "kms:GenerateDataKey", "sts:GetWebIdentityToken"}
    assert resources("restore-reader", "s3:PutObject") == {f"{bucket}/{reports}drills/*"}
    # Every object the writer creates is written once (a stolen writer credential must not
    # replace a backup, or a content object that years of snapshots reference): the creating
    # calls only with If-None-Match: *, the parts of a multipart upload (which create nothing)
    # without it, and no other writer grant creates anything in a tier or a pool. Only the
    # tiers (the intraday lock) may carry an object's own lock, never content.
    pools = {f"{bucket}/{root}content/*" for root in snapshots.values()}
    assert pools, stack
    created = {f"{bucket}/{p}*" for p in written}
    backups = {s["Sid"]: s for s in policies[f"vo2dr-{stack}-backup-writer"]["Statement"]
               if created & set([s["Resource"]] if isinstance(s["Resource"], str)
                                else s["Resource"])}
    assert {sid: (s["Action"], set(s["Resource"]), s.get("Condition"))
            for sid, s in backups.items()} == {
        "PutNewBackupsOnce": (["s3:PutObject"], created,
                              {"Null": {"s3:if-none-match": "false"}}),
        "UploadBackupParts": (["s3:PutObject"], created,
                              {"Bool": {"s3:ObjectCreationOperation": "false"}}),
        "AbortBackupUploads": (["s3:AbortMultipartUpload"], created, None),
        "LockNewBackups": (["s3:PutObjectRetention"], created - pools, None)}
    # Proven by evaluation as well: a plain put (no If-None-Match) of a dump, a manifest, a
    # snapshot index or a content object is not allowed; with the header it is.
    writer = policies[f"vo2dr-{stack}-backup-writer"]
    for key in (f"database/{stack}/daily/main/20260101T000000Z-0123456789ab.dump.enc",
                f"database/{stack}/intraday/main/20260101T000000Z-0123456789ab.manifest.json",
                *(f"{root}weekly/x/20260101T000000Z-0123456789ab.index.enc"
                  for root in snapshots.values()),
                *(f"{root}content/{'0' * 32}" for root in snapshots.values())):
        arn = f"{bucket}/{key}"
        assert not iam_check.allows(writer, "s3:PutObject", arn,
                                    {"s3:ObjectCreationOperation": "true"}), key
        assert iam_check.allows(writer, "s3:PutObject", arn,
                                {"s3:ObjectCreationOperation": "true",
                                 "s3:if-none-match": "*"}), key
    # Every report record is written once: S3 takes the put only with If-None-Match: *.
    for role in ("backup-writer", "restore-reader"):
        for st in policies[f"vo2dr-{stack}-{role}"]["Statement"]:
            targets = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
            if "s3:PutObject" in st["Action"] and any(f"/{reports}" in t for t in targets):
                assert st["Condition"] == {"Null": {"s3:if-none-match": "false"}}, (role, st)
    # Monitor: lists, and reads manifests only (plus Entra-only tokens).
    assert actions("monitor") == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt",
                                  "sts:GetWebIdentityToken"}
    assert resources("monitor", "s3:GetObject") == {f"{bucket}/{p}*.manifest.json"
                                                    for p in prefixes}
    for role in ("backup-writer", "restore-reader", "monitor"):
        assert not any(a.startswith(("s3:Delete", "s3:Bypass", "s3:PutBucket",
                                     "s3:PutObjectLegalHold")) for a in actions(role)), role
    # Only the writer sets a lock (the intraday tier's, at creation); nobody else may.
    assert {r for r in ("backup-writer", "restore-reader", "monitor")
            if "s3:PutObjectRetention" in actions(r)} == {"backup-writer"}


def test_no_web_identity_tokens_without_the_azure_copy() -> None:
    g = run_program("staging", {"vo2max-dr:clouds.azure.enabled": False})
    store = {r.urn for r in g.of_type("vo2dr:aws:JobPermissions")}
    policies = [json.loads(r.inputs["policy"]) for r in g.of_type("aws:iam/rolePolicy:RolePolicy")
                if r.parent in store]
    assert len(policies) == 3
    for policy in policies:
        assert not any(a.startswith("sts:") for s in policy["Statement"] for a in s["Action"])


# ---- the checker catches what it should -------------------------------------------------------

BUCKET = "arn:aws:s3:::vo2dr-staging-backups-111111111111"
KEY = "arn:aws:kms:us-east-1:111111111111:key/k"
ALLOWED = [BUCKET, f"{BUCKET}/database/staging/*", KEY]


def identity(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


GOOD = {"Sid": "Put", "Effect": "Allow", "Action": ["s3:PutObject"],
        "Resource": f"{BUCKET}/database/staging/*"}


def test_checker_passes_a_good_document() -> None:
    assert check_policy(identity(GOOD), kind="identity", allowed_resources=ALLOWED) == []


@pytest.mark.parametrize(("kind", "statement", "expected"), [
    ("identity", {**GOOD, "Action": "*"}, "wildcard action"),
    ("identity", {**GOOD, "Action": ["s3:*"]}, "wildcard action"),
    ("identity", {**GOOD, "Action": ["s3:Get*"]}, "wildcard action"),
    ("identity", {**GOOD, "Resource": "*"}, "wildcard resource"),
    ("identity", {**GOOD, "Resource": "arn:aws:s3:::*"}, "wildcard resource"),
    ("identity", {**GOOD, "Resource": f"{BUCKET}/*"}, "outside"),
    ("identity", {**GOOD, "Resource": f"{BUCKET}/database/production/*"}, "outside"),
    ("identity", {**GOOD, "Resource": "arn:aws:s3:::someone-elses-bucket/*"}, "outside"),
    ("identity", {**GOOD, "Resource": "arn:aws:kms:us-east-1:111111111111:key/other"},
     "outside"),
    ("identity", {"Sid": "List", "Effect": "Allow", "Action": ["s3:ListBucket"],
                  "Resource": BUCKET}, "lists the whole bucket"),
    ("identity", {"Sid": "List", "Effect": "Allow", "Action": ["s3:ListBucket"],
                  "Resource": BUCKET, "Condition": {"StringLike": {"s3:prefix": ["*"]}}},
     "lists prefix '*'"),
    ("identity", {"Sid": "NotA", "Effect": "Allow", "NotAction": ["s3:DeleteObject"],
                  "Resource": BUCKET}, "NotAction"),
    ("resource", {**GOOD, "Principal": "*"}, "any principal"),
    ("resource", {**GOOD, "Principal": {"AWS": "*"}}, "any principal"),
    ("key", {"Sid": "K", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
             "Action": ["kms:*"], "Resource": "*"}, "wildcard action"),
    ("key", {"Sid": "K", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
             "Action": ["kms:Decrypt"], "Resource": KEY}, "must be \"*\""),
    ("trust", {"Sid": "T", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
               "Action": ["sts:AssumeRole", "iam:PassRole"]}, "trust policy grants"),
    ("trust", {"Sid": "T", "Effect": "Allow", "Principal": "*",
               "Action": ["sts:AssumeRole"]}, "any principal"),
])
def test_checker_catches_a_bad_document(kind: str, statement: dict[str, Any],
                                        expected: str) -> None:
    problems = check_policy(identity(statement), kind=kind, allowed_resources=ALLOWED,
                            list_prefixes=["database/staging/"])
    assert any(expected in p for p in problems), problems


ENTRA_TOKENS = {"Sid": "Tokens", "Effect": "Allow", "Action": ["sts:GetWebIdentityToken"],
                "Resource": "*", "Condition": {
                    "ForAllValues:StringEquals": {
                        "sts:IdentityTokenAudience": ["api://AzureADTokenExchange"]},
                    "Null": {"sts:IdentityTokenAudience": "false"}}}


def test_checker_allows_audience_pinned_web_identity_tokens_on_star_only() -> None:
    """The one documented "Resource": "*" exception: sts:GetWebIdentityToken, alone, with the
    audience pinned. Anything else on "*" is still a finding."""
    assert check_policy(identity(ENTRA_TOKENS), kind="identity", allowed_resources=ALLOWED) == []
    no_null = {**ENTRA_TOKENS, "Condition": {
        "ForAllValues:StringEquals": ENTRA_TOKENS["Condition"]["ForAllValues:StringEquals"]}}
    for bad, expected in [
        ({**ENTRA_TOKENS, "Condition": {}}, "must pin the audience"),
        (no_null, "must pin the audience"),
        ({**ENTRA_TOKENS, "Condition": {
            "ForAllValues:StringLike": {"sts:IdentityTokenAudience": ["*"]},
            "Null": {"sts:IdentityTokenAudience": "false"}}}, "must pin the audience"),
        ({**ENTRA_TOKENS, "Action": ["sts:GetWebIdentityToken", "sts:AssumeRole"]},
         "statement of its own"),
        ({**ENTRA_TOKENS, "Action": ["sts:AssumeRole"]}, "wildcard resource"),
        ({**ENTRA_TOKENS, "Action": ["kms:DescribeKey"]}, "wildcard resource"),
    ]:
        problems = check_policy(identity(bad), kind="identity", allowed_resources=ALLOWED)
        assert any(expected in p for p in problems), (bad, problems)


def test_checker_allows_broad_denies_and_checks_the_version() -> None:
    deny = {"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
            "Resource": ["*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert check_policy(identity(deny), kind="resource") == []
    assert any("Version" in p for p in check_policy(
        {"Version": "2008-10-17", "Statement": [GOOD]}, kind="identity",
        allowed_resources=ALLOWED))
