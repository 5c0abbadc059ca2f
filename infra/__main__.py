"""The vo2max-dr program: read the stack's strategy once, declare each enabled cloud's store,
the runtime that runs the job on schedule, and export what an operator needs."""

import sys
from pathlib import Path

import pulumi

# Pulumi runs this file with infra/ on sys.path; the package imports need the project root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import load  # noqa: E402

cfg = load()
pulumi.export("environment", cfg.environment)

# Wiring, added by each component as it lands:
#   aws = infra.aws.build(cfg)                       -> primary store (issue 2)
#   gcp = infra.gcp.build(cfg, aws) if cfg.gcp.enabled     (issue 4)
#   azure = infra.azure.build(cfg, aws) if cfg.azure.enabled (issue 4)
#   infra.runtime.build(cfg, aws, gcp, azure)        -> Lambda, schedules, Cloud Run (issue 6)
