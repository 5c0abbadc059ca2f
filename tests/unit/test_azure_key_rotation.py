"""Key Vault key rotation-policy changes cannot pass silently (issue 11 item 9).

azure-native ``keyvault.Key`` is ARM's ``Microsoft.KeyVault/vaults/keys`` PUT, which "creates the
first version of a new key if it does not exist. If it already exists, then the existing key is
returned without any write operations being performed. This API does not create subsequent
versions, and does not update existing keys" (Azure REST API reference, Key Vault management,
"Keys - Create If Not Exist"). So the program reads the live key at preview (ARM GET, the
provider's ``azure-native:keyvault:getKey``) and fails with the manual step when its rotation
policy differs from the stack's ``keys.rotationDays`` / ``keys.expiryDays``."""

from __future__ import annotations

import json

import pytest

from dev.mockrun import run_program, stack_config
from infra.azure import keys
from tests.program_graphs import program_graph

GET_KEY = "azure-native:keyvault:getKey"


def live_key(rotate: str, expire: str, extra_notify: bool = True) -> dict:
    actions = [{"action": {"type": "Rotate"}, "trigger": {"timeAfterCreate": rotate}}]
    if extra_notify:  # Key Vault adds a Notify action of its own; it is not the stack's
        actions.append({"action": {"type": "Notify"}, "trigger": {"timeBeforeExpiry": "P30D"}})
    return {"keyUri": "https://v.vault.azure.net/keys/blob-cmk", "name": "blob-cmk",
            "rotationPolicy": {"attributes": {"expiryTime": expire},
                               "lifetimeActions": actions}}


def test_a_first_deploy_creates_the_key_with_its_policy():
    # The default mock answers getKey as ARM does before the first deploy: not found.
    graph = program_graph("staging")
    key = graph.one("azure-native:keyvault:Key")
    cfg = stack_config("staging")
    assert key.inputs["properties"]["rotationPolicy"]["lifetimeActions"][0]["trigger"] == {
        "timeAfterCreate": f"P{cfg.keys.rotation_days}D"}


def test_a_live_key_with_the_stack_policy_passes():
    cfg = stack_config("staging")
    live = live_key(f"P{cfg.keys.rotation_days}D", f"P{cfg.keys.expiry_days}D")
    graph = run_program("staging", invokes={GET_KEY: live})
    assert graph.one("azure-native:keyvault:Key")


def test_a_changed_rotation_fails_the_preview_with_the_manual_step():
    cfg = stack_config("staging")
    live = live_key("P365D", f"P{cfg.keys.expiry_days}D")
    with pytest.raises(Exception, match="never updates an existing key") as err:
        run_program("staging", invokes={GET_KEY: live}, preview=True)
    text = str(err.value)
    assert "rotates after P365D" in text and f"wants P{cfg.keys.rotation_days}D" in text
    command = text.split("rerun the preview: ", 1)[1]
    assert command.startswith("az keyvault key rotation-policy update --vault-name vo2dr-staging-")
    policy = json.loads(command.split("--value ", 1)[1].strip("'"))
    assert policy == keys.rotation_policy_document(cfg.keys.rotation_days, cfg.keys.expiry_days)


def test_a_changed_expiry_fails_too():
    cfg = stack_config("production")
    live = live_key(f"P{cfg.keys.rotation_days}D", "P2Y", extra_notify=False)
    with pytest.raises(Exception, match=r"expires after P2Y.*keys.expiryDays"):
        run_program("production", invokes={GET_KEY: live})


def test_other_lookup_failures_are_not_taken_for_a_missing_key():
    with pytest.raises(Exception, match="AuthorizationFailed"):
        keys.check_live_rotation_policy(
            "rg", "v", "k", 90, 180,
            read=lambda *_: (_ for _ in ()).throw(RuntimeError("Status=403 AuthorizationFailed")))
    # A missing key (or vault, or group) is a first deploy.
    keys.check_live_rotation_policy(
        "rg", "v", "k", 90, 180,
        read=lambda *_: (_ for _ in ()).throw(RuntimeError("Code=\"ResourceGroupNotFound\"")))
