"""The demo's DR report step: ``vo2dr report`` over the demo's own history (from the demo's
start), written to ``report.html`` (``VO2DR_DEMO_HTML`` elsewhere) with its JSON beside it, and
where it is printed. The history is minutes long, so no schedule window has ended yet and the
success rate shows as n/a; the drill, the records (the attacker's forged one included, shown
as invalid), storage, cost and controls are all there."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any


def report_step(record: Any, env: dict[str, str], started: datetime, run_job: Any,
                console: Any) -> None:
    """``run_job`` and ``console`` are the demo's (dev.demo runs as __main__)."""
    html = Path(os.environ.get("VO2DR_DEMO_HTML", "report.html")).resolve()
    js = html.with_suffix(".json")
    since = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    rc, _, secs = run_job(["report", "--since", since, "--output", str(html),
                                "--json-output", str(js), "--quiet"], env, capture=True)
    if rc != 0 or not js.exists():
        record.add("report", "failed", f"exit {rc}", secs)
        return
    doc = json.loads(js.read_text())
    record.reports["report"] = {"html": str(html), **{
        k: doc[k] for k in ("period", "history", "success_rate", "drills")}}
    drills = doc["drills"]["classes"]
    last = ", ".join(f"{n} {'pass' if (c['last'] or {}).get('ok') else 'FAIL'}"
                     for n, c in drills.items())
    cost = doc["storage"]
    record.add("report", "ok",
               f"{html} ({doc['history']['backups']} backups, {doc['drills']['count']} drill: "
               f"{last}; {len(doc['history']['untrusted_records'])} untrusted record(s) shown "
               f"and not counted; now ${cost['now']['usd_per_month']:.4f}/month, steady state "
               f"${cost['steady_state']['usd_per_month']:.4f} vs original layout "
               f"${cost['original_layout']['usd_per_month']:.4f})", secs)
    console.print(f"[bold]DR report:[/] {html}  (JSON: {js})")
