"""The vo2max-dr CrossGuard policy pack, by where things live (the layout of
pulumi/compliance-policies: checks per cloud and service, one table of rules):

- ``policy/rules/``: the rule table, every rule with its metadata and its check, per cloud;
- ``policy/aws/``, ``policy/gcp/``, ``policy/azure/``: the checks per cloud, one module per
  service (``aws/s3.py``, ``gcp/iam.py``, ``azure/storage.py``, ...);
- ``policy/multicloud/``: checks that read every cloud at once (lifecycle, intraday tier,
  schedules, stores);
- ``policy/expectations.py``: what the stack promises, and the organisation's floors;
- ``policy/parsing.py``: durations, cron and rate expressions, IAM policy documents;
- ``policy/resources.py``: resources as the rules see them, and values unknown at preview;
- ``policy/engine.py``: the ``pulumi_policy`` adapter, enforcement and :func:`evaluate`.

This module only re-exports the names the tests and ``make plan`` use, so they import from one
place; new code imports from the module that defines a name, and new rules go in the table and
their cloud's module, not here.
"""

from policy.aws.iam import check_aws_iam_no_wildcards
from policy.aws.s3 import check_aws_backup_grants
from policy.azure.authorization import check_azure_backup_grants, check_azure_role_assignment
from policy.azure.storage import AZURE_IMMUTABILITY_LOCK_TYPE, check_azure_storage_public
from policy.engine import (
    PACK_NAME,
    POLICIES,
    Judgement,
    Violation,
    _engine_expectations,
    evaluate,
    initial_config,
    judge,
    policy_config_file,
    run_rule,
)
from policy.expectations import (
    RETENTION_FLOOR_DAYS,
    ROOT,
    TIER_CLASSES,
    Expectations,
    expectations_for_stack,
    expectations_from_settings,
)
from policy.gcp.iam import (
    check_gcp_custom_role,
    check_gcp_iam_no_primitive_roles,
    check_gcs_grants_no_destructive_roles,
)
from policy.multicloud.lifecycle import check_retention_floor, lifecycle_rules
from policy.parsing import get, is_monthly, schedule_gap_minutes
from policy.resources import AZ, Finding, Res, resources_from_graph
from policy.rules import RULES, RULES_BY_NAME
from policy.rules.base import LIFECYCLE_TYPES, Rule, enforcement_for

__all__ = [
    "AZ", "AZURE_IMMUTABILITY_LOCK_TYPE", "LIFECYCLE_TYPES", "PACK_NAME", "POLICIES",
    "RETENTION_FLOOR_DAYS", "ROOT", "RULES", "RULES_BY_NAME", "TIER_CLASSES", "Expectations",
    "Finding", "Judgement", "Res", "Rule", "Violation", "_engine_expectations",
    "check_aws_backup_grants", "check_aws_iam_no_wildcards", "check_azure_backup_grants",
    "check_azure_role_assignment", "check_azure_storage_public", "check_gcp_custom_role",
    "check_gcp_iam_no_primitive_roles", "check_gcs_grants_no_destructive_roles",
    "check_retention_floor", "enforcement_for", "evaluate", "expectations_for_stack",
    "expectations_from_settings", "get", "initial_config", "is_monthly", "judge",
    "lifecycle_rules", "policy_config_file", "resources_from_graph", "run_rule",
    "schedule_gap_minutes",
]
