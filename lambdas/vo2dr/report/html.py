"""The report as one self-contained HTML page: every chart is an inline SVG drawn by
matplotlib (no script, no font or stylesheet fetched: it opens offline and prints). Built from
the JSON document of :func:`vo2dr.report.build.build_report` only, so the page and ``--json``
can never disagree. matplotlib is imported here only (the CLI imports this module lazily)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2330;line-height:1.4}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #dde3ec;padding-bottom:.3rem;margin-top:2.4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #d5dbe5;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f2f5f9} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#137333;font-weight:600} .bad{color:#b3261e;font-weight:600} .muted{color:#667085}
figure.chart{margin:1rem 0} figure.chart svg{max-width:100%;height:auto}
.big{font-size:1.6rem;font-weight:700}
@media print{section.auditor{page-break-before:always} body{margin:0}}
"""


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} %"


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _verdict(ok: bool | None, yes: str = "pass", no: str = "FAIL") -> str:
    if ok is None:
        return '<span class="muted">n/a</span>'
    return f'<span class="ok">{yes}</span>' if ok else f'<span class="bad">{no}</span>'


def _t(text: Any) -> str:
    return escape(str(text), quote=True)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], num: Sequence[int] = ()) -> str:
    """Cells are HTML already escaped by the caller."""
    h = "".join(f"<th>{_t(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>"
        for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


# -- charts ----------------------------------------------------------------------------------------

def _svg(fig: Any, name: str) -> str:
    import matplotlib

    buf = io.StringIO()
    # A salt per chart: the SVG ids matplotlib derives from it stay unique on one page.
    with matplotlib.rc_context({"svg.hashsalt": f"vo2dr-{name}", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return (f'<figure class="chart" data-chart="{_t(name)}">{text[text.index("<svg"):]}'
            "</figure>")


def _figure(width: float = 9, height: float = 3.4) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def chart_success(doc: Mapping[str, Any]) -> str:
    sec = doc["success_rate"]
    fig = _figure()
    ax = fig.add_subplot()
    labels, values, colors = [], [], []
    for name, c in sec["classes"].items():
        for store, s in [("any", c), *c["stores"].items()]:
            if s["percent"] is None:
                continue
            labels.append(f"{name}\n{store}")
            values.append(s["percent"])
            colors.append("#2f6fdf" if store == "any" else "#9bb7ea")
    ax.bar(range(len(values)), values, color=colors)
    ax.axhline(sec["target_percent"], color="#b3261e", linestyle="--",
               label=f"target {sec['target_percent']} %")
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    low = min([*values, sec["target_percent"]], default=0)
    ax.set_ylim(max(0.0, low - 2), 100.5)
    ax.set_ylabel("windows completed (%)")
    ax.legend(loc="lower right", fontsize=8)
    return _svg(fig, "success-rate")


def chart_rpo(doc: Mapping[str, Any]) -> str:
    classes = doc["rpo"]["classes"]
    fig = _figure(9, 2.6 * max(1, len(classes)))
    axes = fig.subplots(max(1, len(classes)), 1, squeeze=False)[:, 0]
    for ax, (name, c) in zip(axes, classes.items(), strict=False):
        ages = [a / 60 for a in c["ages_seconds"]]
        if ages:
            ax.hist(ages, bins=40, color="#2f6fdf")
        ax.axvline(c["rpo_seconds"] / 60, color="#b3261e", linestyle="--", label="RPO")
        ax.set_title(f"{name}: backup age at each status check", fontsize=9)
        ax.set_xlabel("minutes")
        ax.set_ylabel("checks")
        ax.legend(fontsize=8)
    return _svg(fig, "rpo")


def chart_drills(doc: Mapping[str, Any]) -> str:
    sec = doc["drills"]
    fig = _figure()
    ax = fig.add_subplot()
    colors = ["#2f6fdf", "#e07b00", "#137333", "#8a3ffc"]
    for i, (name, c) in enumerate(sec["classes"].items()):
        runs = [r for r in c["drills"] if r["restore_seconds"] is not None]
        color = colors[i % len(colors)]
        if runs:
            ax.plot([_when(r["time"]) for r in runs],
                    [100 * r["restore_seconds"] / r["rto_seconds"] for r in runs],
                    marker="o", color=color, label=name)
            bad = [r for r in runs if not r["ok"]]
            ax.scatter([_when(r["time"]) for r in bad],
                       [100 * r["restore_seconds"] / r["rto_seconds"] for r in bad],
                       marker="x", s=80, color="#b3261e", zorder=3)
    ax.axhline(100, color="#667085", linestyle="-", label="RTO")
    ax.axhline(100 + sec["allowed_variance_percent"], color="#b3261e", linestyle="--",
               label=f"RTO + {sec['allowed_variance_percent']:g} %")
    ax.set_ylabel("restore time (% of RTO)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _svg(fig, "drills")


def _thin(points: Sequence[Any], most: int = 400) -> list[Any]:
    """At most ``most`` evenly spaced points (a chart of 8,640 markers says no more than 400,
    and weighs megabytes); the trend is fitted on all of them (in the JSON)."""
    step = max(1, -(-len(points) // most))
    return list(points[::step])


def chart_growth(doc: Mapping[str, Any]) -> str:
    classes = doc["growth"]["classes"]
    fig = _figure(9, 2.6 * max(1, len(classes)))
    axes = fig.subplots(max(1, len(classes)), 1, squeeze=False)[:, 0]
    for ax, (name, c) in zip(axes, classes.items(), strict=False):
        pts = _thin(c["points"])
        times = [_when(p["time"]) for p in pts]
        ax.plot(times, [p["plaintext_bytes"] / 2**20 for p in pts], ".", color="#2f6fdf",
                label="dump (MiB)")
        ax.plot(times, [p["ciphertext_bytes"] / 2**20 for p in pts], ".", color="#e07b00",
                label="encrypted (MiB)")
        trend = c.get("plaintext_trend")
        if trend and times:
            t0 = _when(trend["start"])
            xs = [min(times), max(times)]
            ys = [(trend["bytes_at_start"] + trend["bytes_per_day"]
                   * (x - t0).total_seconds() / 86400) / 2**20 for x in xs]
            ax.plot(xs, ys, "-", color="#2f6fdf", alpha=.6, label="dump trend")
        ax.set_title(f"{name}: size per backup", fontsize=9)
        ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return _svg(fig, "growth")


def chart_cost(doc: Mapping[str, Any]) -> str:
    st = doc["storage"]
    fig = _figure(9, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    clouds = sorted({h["cloud"] for part in ("now", "steady_state", "original_layout")
                     for h in st[part]["holdings"]})
    for ax, part, title in ((ax1, "now", "stored now"),
                            (ax2, "steady_state", "after lifecycle (steady state)")):
        classes = sorted({h["storage_class"] for h in st[part]["holdings"]})
        bottom = [0.0] * len(clouds)
        for cls in classes:
            vals = [sum(h["bytes"] for h in st[part]["holdings"]
                        if h["cloud"] == c and h["storage_class"] == cls) / 2**20
                    for c in clouds]
            ax.bar(clouds, vals, bottom=bottom, label=cls)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("MiB")
        ax.legend(fontsize=6)
    return _svg(fig, "storage")


def chart_cost_compare(doc: Mapping[str, Any]) -> str:
    st = doc["storage"]
    fig = _figure(9, 2.8)
    ax = fig.add_subplot()
    clouds = sorted(set(st["steady_state"]["by_cloud"]) | set(st["original_layout"]["by_cloud"]))
    ours = [st["steady_state"]["by_cloud"].get(c, {}).get("usd_per_month", 0) for c in clouds]
    orig = [st["original_layout"]["by_cloud"].get(c, {}).get("usd_per_month", 0)
            for c in clouds]
    xs = range(len(clouds))
    ax.bar([x - .2 for x in xs], ours, width=.4, label="vo2max-dr layout", color="#2f6fdf")
    ax.bar([x + .2 for x in xs], orig, width=.4, label="original strategy layout",
           color="#9aa4b2")
    ax.set_xticks(list(xs), clouds)
    ax.set_ylabel("USD per month")
    ax.legend(fontsize=8)
    return _svg(fig, "cost")


# -- sections ----------------------------------------------------------------------------------

def _success_html(doc: Mapping[str, Any]) -> str:
    sec = doc["success_rate"]
    rows, missed = [], []
    for name, c in sec["classes"].items():
        per_store = ", ".join(f"{s} {_pct(v['percent'])}" for s, v in c["stores"].items())
        att = c["attempts"]
        rows.append([_t(name), _t(c["schedule"]), str(c["due"]), str(c["completed"]),
                     f'<span data-success-class="{_t(name)}" data-value="{c["percent"]}">'
                     f'{_pct(c["percent"])}</span>', _verdict(c["meets_target"], "met", "missed"),
                     _t(per_store),
                     _t(f"{att['succeeded']}/{att['attempts']} ({_pct(att['percent'])})")])
        for where, s in [("any store", c), *c["stores"].items()]:
            for m in s["missed"]:
                missed.append([_t(name), _t(where), _t(m["start"]), _t(m["end"]),
                               _t(m["reason"])])
    overall = sec["percent"]
    out = [f'<p>Overall: <span class="big" id="overall-success-rate" data-value="{overall}">'
           f'{_pct(overall)}</span> of {sec["due"]} due windows completed, target '
           f'{sec["target_percent"]} %: {_verdict(sec["meets_target"], "met", "missed")}</p>',
           _table(["class", "schedule (UTC cron)", "due", "completed", "rate", "target",
                   "per store", "attempts ok"], rows, num=(2, 3, 4)),
           chart_success(doc)]
    out.append(f"<h3>Missed windows ({len(missed)})</h3>")
    out.append(_table(["class", "store", "window start", "window end", "why"], missed[:500])
               if missed else '<p class="ok">none</p>')
    if len(missed) > 500:
        out.append(f'<p class="muted">{len(missed) - 500} more in the JSON report</p>')
    return "".join(out)


def _rpo_html(doc: Mapping[str, Any]) -> str:
    rows = []
    for name, c in doc["rpo"]["classes"].items():
        rows.append([_t(name), _dur(c["rpo_seconds"]), str(c["checks"]),
                     _dur(c.get("p50_seconds")), _dur(c.get("p90_seconds")),
                     _dur(c.get("p99_seconds")), _dur(c.get("max_seconds")),
                     _pct(c.get("within_rpo_percent")), str(c["checks_without_backup"])])
    return (f"<p>Status checks every {doc['rpo']['status_every_minutes']} min "
            f"(+{doc['rpo']['status_offset_minutes']} min).</p>"
            + _table(["class", "RPO", "checks", "p50", "p90", "p99", "max", "within RPO",
                      "checks before any backup"], rows, num=(2, 3, 4, 5, 6, 7, 8))
            + chart_rpo(doc))


def _drills_html(doc: Mapping[str, Any]) -> str:
    sec = doc["drills"]
    rows, gaps = [], []
    for name, c in sec["classes"].items():
        for r in c["drills"]:
            rows.append([_t(r["time"]), _t(name), _t(r["backup_id"]), _t(r["store"]),
                         _dur(r["restore_seconds"]), _dur(r["rto_seconds"]),
                         "-" if r["variance_percent"] is None
                         else f"{r['variance_percent']:+.1f} %",
                         _verdict(r["within_variance"], "within", "over"),
                         f"{r['rows_checked']:,} rows / {r['tables_checked']} tables, "
                         f"sanity {_t(r['sanity'])}",
                         _verdict(r["ok"]) + (" " + _t("; ".join(r["reasons"]))
                                              if r["reasons"] else "")])
        if c["months_without_drill"]:
            gaps.append(f"<li>{_t(name)}: {_t(', '.join(c['months_without_drill']))}</li>")
    return (f"<p>{sec['count']} drills; allowed variance over the RTO: "
            f"{sec['allowed_variance_percent']:g} %.</p>"
            + (_table(["drill", "class", "backup", "store", "restore", "RTO", "variance",
                       "≤ RTO + variance", "checked", "result"], rows, num=(4, 5, 6))
               if rows else '<p class="bad">no drill in the period</p>')
            + chart_drills(doc)
            + "<h3>Months with no drill</h3>"
            + (f"<ul>{''.join(gaps)}</ul>" if gaps else '<p class="ok">none</p>'))


def _growth_html(doc: Mapping[str, Any]) -> str:
    g = doc["growth"]
    rows = []
    for name, c in g["classes"].items():
        t, lim = c["plaintext_trend"], c["time_limit"]
        rows.append([_t(name), str(len(c["points"])),
                     "-" if not t else f"{_size(t['bytes_per_day'])}/day",
                     "-" if not lim.get("bytes_per_second")
                     else f"{_size(lim['bytes_per_second'])}/s",
                     _dur(lim.get("seconds_today")),
                     _t(lim.get("fits_until") or lim.get("note") or "not on this trend")])
    full = ""
    if g["full_backup_already_over"]:
        full = ('<p class="bad">The full backup no longer fits the Lambda time limit of '
                f'{_dur(g["lambda_timeout_seconds"])} at today\'s throughput.</p>')
    elif g["full_backup_fits_until"]:
        full = ('<p class="bad">At today\'s measured throughput the full backup stops fitting '
                f'the Lambda time limit of {_dur(g["lambda_timeout_seconds"])} on '
                f'<strong>{_t(g["full_backup_fits_until"][:10])}</strong>.</p>')
    else:
        full = ('<p class="ok">On the fitted trend the full backup keeps fitting the Lambda '
                f'time limit of {_dur(g["lambda_timeout_seconds"])}.</p>')
    return (full + _table(["class", "backups", "dump trend", "throughput", "time today",
                           "fits the time limit until"], rows, num=(1,))
            + chart_growth(doc))


def _storage_html(doc: Mapping[str, Any]) -> str:
    st = doc["storage"]
    p = st["prices"]

    def rows(part: str) -> list[list[str]]:
        return [[_t(h["cloud"]), _t(h["tier"]), _t(h["storage_class"]), _size(h["bytes"]),
                 f"${h['usd_per_month']:.4f}"] for h in st[part]["holdings"]]

    head = ["cloud", "tier", "storage class", "bytes", "USD / month"]
    src = "; ".join(f"{k}: {v}" for k, v in p["sources"].items())
    return (f"<p>Prices: <code>{_t(p['file'])}</code>, dated {_t(p['date'])} ({_t(src)})"
            + (f"; overridden in the stack file: {_t(', '.join(p['overridden']))}"
               if p["overridden"] else "") + ".</p>"
            + f"<h3>Now: {_size(st['now']['bytes'])}, ${st['now']['usd_per_month']:.4f}/month"
            + "</h3>" + _table(head, rows("now"), num=(3, 4))
            + f"<h3>After lifecycle transitions (steady state): "
            f"${st['steady_state']['usd_per_month']:.4f}/month</h3>"
            + _table(head, rows("steady_state"), num=(3, 4))
            + f"<h3>The original strategy's layout: "
            f"${st['original_layout']['usd_per_month']:.4f}/month "
            f"(saving ${st['saving_usd_per_month']:.4f}/month)</h3>"
            + '<p class="muted">Plain SQL dumps (uncompressed size), no intraday tier, no '
            "tiering in GCS or Azure.</p>"
            + _table(head, rows("original_layout"), num=(3, 4))
            + chart_cost(doc) + chart_cost_compare(doc))


def _controls_html(doc: Mapping[str, Any]) -> str:
    c = doc["controls"]
    parts = [f"<p>Environment <strong>{_t(doc['environment'])}</strong>, period "
             f"{_t(doc['period']['since'])} to {_t(doc['period']['until'])}, generated "
             f"{_t(doc['generated_at'])} by {_t(doc['generated_by'])}.</p>"]
    s = doc["success_rate"]
    parts.append(f"<p>Backup success rate {_pct(s['percent'])} (target "
                 f"{s['target_percent']} %): {_verdict(s['meets_target'], 'met', 'missed')}. "
                 f"Untrusted records (unsigned or invalid, not counted): "
                 f"{len(doc['history']['untrusted_records'])}.</p>")
    if c.get("available"):
        bad = [r for r in c["rules"] if r["result"] != "pass"]
        parts.append(f"<p>Policy pack on the stack ({_t(c['source'])}): {c['passed']} rules "
                     f"pass, {c['violated']} violated.</p>")
        if bad:
            parts.append(_table(["rule", "enforcement", "messages"],
                                [[_t(r["rule"]), _t(r["enforcement"]),
                                  _t("; ".join(r["messages"]))] for r in bad]))
    else:
        parts.append(f'<p class="bad">{_t(c.get("note", "no policy results"))}</p>')
    rows = []
    for name, r in c["last_drill"].items():
        if r is None:
            rows.append([_t(name), '<span class="bad">no drill in the period</span>', "", "",
                         "", ""])
            continue
        rows.append([_t(name), _t(r["time"]), _t(f"{r['backup_id']} ({r['store']})"),
                     f"{_dur(r['restore_seconds'])} / {_dur(r['rto_seconds'])}",
                     f"{r['rows_checked']:,} rows, sanity {_t(r['sanity'])}", _verdict(r["ok"])])
    parts.append("<h3>Last drill per class</h3>")
    parts.append(_table(["class", "drill", "backup (store)", "restore / RTO", "checked",
                         "result"], rows))
    if c.get("available"):
        parts.append("<details><summary>Every rule</summary>" + _table(
            ["rule", "enforcement", "result"],
            [[_t(r["rule"]), _t(r["enforcement"]), _verdict(r["result"] == "pass")]
             for r in c["rules"]]) + "</details>")
    return "".join(parts)


def render_html(doc: Mapping[str, Any]) -> str:
    h = doc["history"]
    warn = ""
    if h["store_errors"]:
        warn += ('<p class="bad">Stores that could not be read (the report covers the others): '
                 + _t("; ".join(f"{k}: {v}" for k, v in h["store_errors"].items())) + "</p>")
    if h["untrusted_records"]:
        warn += (f'<p class="bad">{len(h["untrusted_records"])} records are unsigned or do not '
                 "verify and were not counted:</p>" + _table(
                     ["key", "trust", "why"], [[_t(u["key"]), _t(u["trust"]), _t(u["reason"])]
                                               for u in h["untrusted_records"][:100]]))
    sections = [
        ("success", "Backup success rate", _success_html(doc)),
        ("rpo", "RPO achieved", _rpo_html(doc)),
        ("drills", "Drill history: restore time against the RTO", _drills_html(doc)),
        ("growth", "Size growth", _growth_html(doc)),
        ("storage", "Storage and cost", _storage_html(doc)),
    ]
    body = "".join(f'<section id="{sid}"><h2>{_t(title)}</h2>{html}</section>'
                   for sid, title, html in sections)
    body += ('<section id="controls" class="auditor"><h2>Controls: summary for the auditor'
             f"</h2>{_controls_html(doc)}</section>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>vo2max-dr DR report: {_t(doc['environment'])}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>vo2max-dr DR report: {_t(doc['environment'])}</h1>"
            f"<p class=\"muted\">{_t(doc['period']['since'])} to "
            f"{_t(doc['period']['until'])} · stores read: "
            f"{_t(', '.join(h['stores_read']) or 'none')}</p>{warn}{body}</body></html>")
