"""Who could replace a snapshot content object (``<root>content/<id>``) with a stolen credential,
in each cloud, for both stacks (issue 17; the S3 grants themselves are pinned in
tests/unit/test_iam.py and run against moto in
tests/integration/snapshots/test_content_write_once.py):

- GCS: replacing an object needs ``storage.objects.delete`` on it besides
  ``storage.objects.create`` (an overwrite deletes the live generation). No identity holds
  both where content lives: the writer and the standby create but never delete, and the
  pruner deletes content but creates only under ``<root>prune/``. No project-level grant
  exists that could add a storage role behind the bucket's back.
- Azure: the writer role's ``blobs/write`` does permit an overwrite (Put Blob / Put Block
  List on an existing name), and an ABAC condition cannot refuse it: the "Write to a blob"
  action offers no request attribute (neither ``If-None-Match`` nor the blob's existence)
  to condition on. What holds instead: versioning keeps the genuine blob as a previous
  version, and version-level immutability keeps that version unmodifiable and undeletable
  for ``lockDays``; the job itself always commits with ``If-None-Match: *``."""

from __future__ import annotations

import re

import pytest

from dev.mockrun import Graph
from infra.azure.access import WRITER_DATA_ACTIONS
from tests.app_secrets import snapshot_roots
from tests.program_graphs import STACKS, GraphCache

graph_of = GraphCache()
MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
# Predefined roles bound on the bucket, with what they can do to objects.
PREDEFINED = {"roles/storage.objectViewer": ("storage.objects.get", "storage.objects.list")}
CONTENT_ID = "0" * 32


def _permissions(g: Graph, role: str) -> tuple[str, ...]:
    custom = {r.outputs["name"]: tuple(r.inputs["permissions"]) for r in g.of_type(CUSTOM_ROLE)}
    if role in custom:
        return custom[role]
    assert role in PREDEFINED, f"{role}: say what it may do to objects in PREDEFINED"
    return PREDEFINED[role]


def _reaches(condition: dict | None, object_name: str) -> bool:
    """Whether a binding's IAM Condition (``resource.name.startsWith(...)`` terms, or none)
    admits ``object_name``."""
    if not condition:
        return True
    prefixes = re.findall(r'resource\.name\.startsWith\("([^"]+)"\)', condition["expression"])
    assert prefixes, condition
    return any(object_name.startswith(p) for p in prefixes)


@pytest.mark.parametrize("stack", STACKS)
def test_no_gcs_identity_can_both_create_and_delete_content(stack):
    g = graph_of(stack)
    bucket = g.outputs["gcsBucketName"]
    contents = [f"projects/_/buckets/{bucket}/objects/{root}content/{CONTENT_ID}"
                for root in snapshot_roots(stack).values()]
    assert contents, stack
    creators: set[str] = set()
    deleters: set[str] = set()
    for b in g.of_type(MEMBER):
        assert b.inputs["bucket"] == bucket, b.name
        perms = _permissions(g, b.inputs["role"])
        if not any(_reaches(b.inputs.get("condition"), name) for name in contents):
            continue
        if "storage.objects.create" in perms:
            creators.add(b.inputs["member"])
        if "storage.objects.delete" in perms:
            deleters.add(b.inputs["member"])
    assert any("-gcs-writer@" in m for m in creators), creators
    assert any("-standby@" in m for m in creators), creators
    assert deleters and all("-gcs-pruner@" in m for m in deleters), deleters
    assert not creators & deleters, creators & deleters
    # Nothing grants a storage role on the project, where it would reach every bucket.
    project_grants = [r for r in g.resources
                      if r.type.startswith("gcp:projects/") and "iam" in r.type.lower()
                      and r.type != CUSTOM_ROLE]
    assert project_grants == []


@pytest.mark.parametrize("stack", STACKS)
def test_azure_writer_overwrite_leaves_the_genuine_version_immutable(stack):
    g = graph_of(stack)
    blobs = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
    # The limit, stated: the writer may write an existing blob name.
    assert f"{blobs}/write" in WRITER_DATA_ACTIONS
    assert not any("delete" in a.lower() for a in WRITER_DATA_ACTIONS)
    # What keeps the genuine content: every version is kept and locked for lockDays.
    (service,) = [s for s in g.of_type("azure-native:storage:BlobServiceProperties")
                  if s.inputs.get("isVersioningEnabled")]
    assert service.inputs["isVersioningEnabled"] is True
    containers = g.of_type("azure-native:storage:BlobContainer")
    assert containers and all(
        c.inputs["immutableStorageWithVersioning"]["enabled"] is True for c in containers)
    policies = g.of_type("azure-native:storage:BlobContainerImmutabilityPolicy")
    assert len(policies) == len(containers)
    assert all(p.inputs["immutabilityPeriodSinceCreationInDays"] > 0 for p in policies)
