"""docs/controls.md and policy/config/<stack>.json are generated from the rules; they must be
current, and every test they cite must exist."""

from __future__ import annotations

import json
import re

from policy import controls
from policy import policies as P
from tests.policy.cases import CASES


def test_generated_files_are_current():
    stale = [str(path.relative_to(controls.ROOT)) for path, text in controls.generated().items()
             if not path.is_file() or path.read_text() != text]
    assert stale == [], f"stale {stale}: run `python -m policy.controls` and commit"


def test_controls_matrix_cites_only_tests_that_exist():
    text = controls.render_controls()
    cited = set(re.findall(r"test_rule_\w+\[([a-z0-9-]+)\]", text))
    assert cited == set(CASES) == set(P.RULES_BY_NAME)
    for control in ("CP-9", "CP-10", "SC-12", "SC-13", "SC-28", "AC-3", "AC-6", "AU-11",
                    "SI-12"):
        assert f"**{control}**" in text


def test_policy_config_sets_enforcement_per_stack():
    staging = json.loads((controls.CONFIG_DIR / "staging.json").read_text())
    production = json.loads((controls.CONFIG_DIR / "production.json").read_text())
    assert staging["all"] == "advisory" and production["all"] == "mandatory"
    exp = P.Expectations.from_dict(production["aws-s3-bucket-lifecycle-gfs"]["expectations"])
    assert exp.production and exp.retention_days["yearly"] == 2555
    # No per-rule exception any more: the Azure lock is declared, so it is mandatory too.
    assert production["azure-storage-container-immutability-locked"].get(
        "enforcementLevel", "mandatory") == "mandatory"
