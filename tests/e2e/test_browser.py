"""The HTML report in a real browser (headless Chromium over the DevTools
Protocol, see browser.py): no console error, nothing fetched, and the
charts a person sees carry the numbers of the seeded scans."""

import json
import os
import shutil

import fleet
from browser import Browser

SVG_FACTS = """JSON.stringify({
  charts: [...document.querySelectorAll('svg')].map(s => ({
    id: s.id,
    title: s.querySelector(':scope > title')?.textContent || '',
    labelled: document.getElementById(s.getAttribute('aria-labelledby') || '') !== null,
    width: s.getBoundingClientRect().width,
  })),
  points: [...document.querySelectorAll('svg circle.point')].map(c => ({
    chart: c.closest('svg').id, series: c.dataset.series, scan: +c.dataset.scan,
    value: c.dataset.value, title: c.querySelector('title').textContent,
  })),
  bars: [...document.querySelectorAll('#by-region rect title')].map(t => t.textContent),
})"""


def test_the_report_renders_in_a_real_browser(run, account):
    ec2 = account.client("ec2", "us-east-1")
    ids = fleet.launch(ec2, 3, tags={"owner": "team-a"})
    fleet.launch(ec2, 1, tokens="required")
    fleet.put_metrics(account, ids[:1], value=3.0)
    assert run("scan", "--regions", "us-east-1").code == 0
    ec2.modify_instance_metadata_options(InstanceId=ids[2], HttpTokens="required")
    assert run("scan", "--regions", "us-east-1").code == 0

    report = run.tmp / "report.html"
    assert run("report", "--format", "html", "--out", str(report)).code == 0
    shot = run.tmp / "report.png"
    with Browser() as browser:
        page = browser.load(report, screenshot=shot)
        facts = json.loads(browser.evaluate(SVG_FACTS))
    (run.tmp / "report.dom.html").write_text(page.dom)

    assert page.console_errors == []
    assert page.requests == [report.resolve().as_uri()], "the report must fetch nothing"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    charts = {c["id"]: c for c in facts["charts"]}
    assert {"by-region", "readiness", "daily-calls", "trend-percent", "trend-allowing", "trend-calls"} <= set(charts)
    for c in charts.values():
        assert c["title"] and c["labelled"] and c["width"] > 100, c
    # A screen reader hears a chart's title only: it carries the numbers.
    assert "% enforced: scan 1 25, scan 2 50" in charts["trend-percent"]["title"]
    assert "us-east-1: required 2, disabled 0, optional 2" in charts["by-region"]["title"]
    assert "42 answered and 0 refused over 14 days" in charts["daily-calls"]["title"]
    points = {(p["chart"], p["series"], p["scan"]): p["value"] for p in facts["points"]}
    assert points == {
        ("trend-percent", "% enforced", 1): "25",
        ("trend-percent", "% enforced", 2): "50",
        ("trend-percent", "% protected", 1): "25",
        ("trend-percent", "% protected", 2): "50",
        ("trend-allowing", "instances allowing IMDSv1", 1): "3",
        ("trend-allowing", "instances allowing IMDSv1", 2): "2",
        ("trend-calls", "IMDSv1 calls", 1): "42",
        ("trend-calls", "IMDSv1 calls", 2): "42",
    }
    assert all("scan" in p["title"] for p in facts["points"])
    assert sorted(facts["bars"]) == ["optional: 2", "required: 2"]
    if os.environ.get("IMDSGUARD_SCREENSHOT"):  # how docs/report.png is refreshed
        shutil.copy(shot, os.environ["IMDSGUARD_SCREENSHOT"])


def test_the_browser_check_sees_console_errors_and_fetches(tmp_path):
    # The harness itself must fail a broken page, or the test above proves nothing.
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<!doctype html><title>x</title><script>console.error('boom')</script>"
        "<img src='missing.png'><script>undefined_function()</script>"
    )
    with Browser() as browser:
        page = browser.load(page_file)
    assert any("boom" in e for e in page.console_errors), page.console_errors
    assert any("undefined_function" in e or "Uncaught" in e for e in page.console_errors), page.console_errors
    assert any(u.endswith("missing.png") for u in page.requests)
