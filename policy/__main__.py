"""Builds the vo2max-dr policy pack. The rules are in ``rules/`` (their checks per cloud in
``aws/``, ``gcp/``, ``azure/``, ``multicloud/``); nothing else happens here.

Enforcement defaults to mandatory in production and advisory in staging (``PULUMI_STACK``, set
by the CLI for the pack); ``policy/config/<stack>.json`` sets the same explicitly."""

import os
import sys
from pathlib import Path

from pulumi_policy import PolicyPack

# The CLI runs this file from policy/; the rules import as the package ``policy``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy.engine import PACK_NAME, POLICIES, initial_config
from policy.rules.base import enforcement_for

ENVIRONMENT = os.environ.get("PULUMI_STACK")

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=enforcement_for(ENVIRONMENT),
    initial_config=initial_config(ENVIRONMENT),
)
