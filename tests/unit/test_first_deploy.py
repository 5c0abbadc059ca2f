"""First-deploy races (issue 11 item 11): a customer-managed key grant is not usable the moment
the API accepts it, and the store created with that key fails until it is.

- GCS: the bucket's default key needs the GCS service agent's cryptoKeyEncrypterDecrypter
  grant; "Policy changes typically take effect within 2 minutes" (Google Cloud IAM, "Access
  change propagation"); before that GCS answers "Permission denied on Cloud KMS key".
- Azure: the storage account is created encrypted with the Key Vault key through its
  user-assigned identity, which needs its Key Vault Crypto Service Encryption User assignment;
  "it can take up to 10 minutes for changes to take effect" (Azure RBAC, "Troubleshoot Azure
  RBAC").

So each store depends on a ``time.Sleep`` (pulumiverse-time) that depends on the grant and is
created once, on the first deploy, for at least the documented propagation time."""

from __future__ import annotations

import re

import pytest

from dev.mockrun import Graph, Resource
from tests.program_graphs import program_graph

SLEEP = "time:index/sleep:Sleep"
STACKS = ("staging", "production")


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {stack: program_graph(stack) for stack in STACKS}


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def waits_for(g: Graph, store: Resource, grant: Resource, at_least: int) -> Resource:
    sleeps = [g.by_urn(u) for u in store.dependencies if g.by_urn(u).type == SLEEP]
    assert len(sleeps) == 1, f"{store.name} does not wait for its key grant"
    sleep = sleeps[0]
    assert grant.urn in sleep.dependencies
    assert seconds(sleep.inputs["createDuration"]) >= at_least
    return sleep


@pytest.mark.parametrize("stack", STACKS)
def test_gcs_bucket_waits_for_the_service_agent_key_grant(graphs, stack):
    g = graphs[stack]
    grant = g.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "gcs-key")
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    waits_for(g, g.one("gcp:storage/bucket:Bucket"), grant, 120)


@pytest.mark.parametrize("stack", STACKS)
def test_azure_account_waits_for_the_cmk_identity_key_grant(graphs, stack):
    g = graphs[stack]
    grant = next(r for r in g.of_type("azure-native:authorization:RoleAssignment")
                 if "cmk-grant" in r.name)
    waits_for(g, g.one("azure-native:storage:StorageAccount"), grant, 600)
