"""``vo2dr report [--since 90d] [--output report.html] [--json]``: how the backups did over a
period, from the stores alone: the success rate per data class and store against the target,
the RPO achieved at each status check, the drills' restore times against the RTO and the
months without one, size growth with its trend against the Lambda time limit, storage and cost
per cloud, tier and storage class (prices: ``lambdas/vo2dr/report/prices.yaml`` and the stack
file's ``vo2max-dr:report.prices``), and the controls an auditor files.

Reads every enabled store it can reach: one store is enough, and a store that cannot be opened
or listed (AWS down) is named in the report. Records that are unsigned or do not verify
against ``VO2DR_SIGNING_PUBLIC_KEYS`` are listed and never counted.

Writes one self-contained HTML file (charts inline, no network needed to open it); ``--json``
prints the report's JSON on stdout (``--json-output FILE`` writes it to a file).
Exit codes: 0 written; 2 it could not be built; 3 a setting is missing or invalid.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("report", help="success rate, RPO, drills, growth, cost and "
                              "controls over a period, as HTML and JSON", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--since", default="90d", metavar="PERIOD",
                   help="the period back from now: 90d (default), 12w, 36h; or a UTC time")
    p.add_argument("--now", metavar="TIMESTAMP", help="end the period at this UTC time")
    p.add_argument("--output", "-o", default="report.html", metavar="FILE",
                   help="the HTML file to write (default report.html)")
    p.add_argument("--json", action="store_true", help="also print the JSON report on stdout")
    p.add_argument("--json-output", metavar="FILE", help="also write the JSON report here")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return p


def run(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    from vo2dr.catalog import parse_point_in_time
    from vo2dr.cli import load_settings
    from vo2dr.report.run import generate, period_start
    from vo2dr.stores import Access, open_stores

    now = parse_point_in_time(args.now) if args.now else datetime.now(UTC)
    since = period_start(args.since, now)
    settings = load_settings(args, required=("environment", "signing_public_keys"))

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"vo2dr report: {line}", file=sys.stderr, flush=True)

    stores = open_stores(settings, Access.READ, tolerant=True)
    for name, why in stores.errors.items():
        progress(f"cannot open {name}: {why}")
    doc = generate(settings, stores, since=since, now=now, open_errors=stores.errors,
                   progress=progress)
    from vo2dr.report.html import render_html

    progress("drawing the charts")
    out = Path(args.output)
    out.write_text(render_html(doc), encoding="utf-8")
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.json_output:
        Path(args.json_output).write_text(text, encoding="utf-8")
    if args.json:
        print(text)
    s = doc["success_rate"]
    pct = "-" if s["percent"] is None else f"{s['percent']:.3f} %"
    print(f"vo2dr report: {out.resolve()} (success rate {pct}, target {s['target_percent']} %;"
          f" {doc['drills']['count']} drills; stores read: "
          f"{', '.join(doc['history']['stores_read']) or 'none'})", file=sys.stderr)
    return 0
