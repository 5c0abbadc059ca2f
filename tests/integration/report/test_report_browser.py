"""The DR report in a real headless browser (Debian's chromium, driven by Playwright): every
chart rendered, no console error, no network request, and the success rate shown is the one
computed (on the synthetic 90-day history: 10884 of 10889 windows, 99.954 %).

``make install`` installs chromium when it is missing; under CI (``CI`` set) a missing browser
fails this test instead of skipping it."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from vo2dr.report import build, cost
from vo2dr.report.config import report_config
from vo2dr.report.history import load_history
from vo2dr.report.html import render_html
from vo2dr.signing import TrustedKeys

from tests import report_history as H
from tests import signing_keys

CHARTS = {"success-rate", "rpo", "drills", "growth", "storage", "cost"}


def chromium() -> str:
    """Debian's chromium (``make install``), or ``$VO2DR_CHROMIUM``, or a Chrome the machine
    already has (GitHub's Ubuntu runners)."""
    path = os.environ.get("VO2DR_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
        None)
    if path is None:
        message = "chromium is not installed: `make install` installs it (apt-get, as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    stores = H.shared_stores()
    cfg = report_config(H.stack(), "staging")
    h = load_history(stores, H.ENV, TrustedKeys.from_pem(signing_keys.TRUSTED), H.SINCE,
                     H.UNTIL)
    objects = [cost.StoredObject(n, k, len(v), H.UNTIL)
               for n, s in stores.items() for k, v in s.objects.items()]
    doc = build.build_report(cfg, h, objects, cost.load_price_table(cfg.settings),
                             build.load_controls(H.ROOT, "staging"))
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(doc), encoding="utf-8")
    return path, doc


def test_report_renders_in_headless_chromium(report):
    from playwright.sync_api import sync_playwright

    path, doc = report
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        # root in a container has no user namespace for chromium's sandbox
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            charts = page.evaluate("""() => [...document.querySelectorAll('figure.chart')].map(
                f => { const s = f.querySelector('svg'); const b = s && s.getBoundingClientRect();
                       const g = s && s.getBBox();
                       return {name: f.dataset.chart, width: b ? b.width : 0,
                               height: b ? b.height : 0, drawn: g ? g.width * g.height : 0,
                               shapes: s ? s.querySelectorAll('path,use,rect,text').length
                                         : 0}; })""")
            shown = page.locator("#overall-success-rate")
            shown_text, shown_value = shown.inner_text(), shown.get_attribute("data-value")
            per_class = {e.get_attribute("data-success-class"): e.inner_text()
                         for e in page.locator("[data-success-class]").all()}
            auditor = page.locator("section#controls").inner_text()
        finally:
            browser.close()
    assert errors == []
    assert all(u.startswith("file://") for u in requests), requests
    assert {c["name"] for c in charts} == CHARTS and len(charts) == len(CHARTS)
    for c in charts:
        assert c["width"] > 200 and c["height"] > 100 and c["drawn"] > 0, c
        assert c["shapes"] > 10, c
    computed = doc["success_rate"]["percent"]
    assert computed == round(100 * 10884 / 10889, 3)
    assert float(shown_value) == computed
    assert re.fullmatch(r"99\.954 %", shown_text)
    assert per_class["critical"] == f"{doc['success_rate']['classes']['critical']['percent']:.3f} %"
    assert "Last drill per class" in auditor and "2026-08-03T09:00:00Z" in auditor
