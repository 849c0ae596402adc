"""`report`: a stored scan as HTML (escaped, self-contained) or SARIF."""

import json

import fleet


def test_html_report(run, account):
    ec2 = account.client("ec2", "us-east-1")
    fleet.launch(ec2, 2, tags={"owner": "<script>alert(1)</script>"})
    fleet.launch(ec2, 1, tokens="required")
    assert run("scan", "--regions", "us-east-1").code == 0
    out = run.tmp / "report.html"
    r = run("report", "--format", "html", "--out", str(out))
    assert r.code == 0, r.stderr
    html = out.read_text()
    assert html.startswith("<!doctype html>")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched
    assert "<b>3</b>instances" in html and "<b>33.3%</b>IMDSv2 enforced" in html
    assert "Instances that allow IMDSv1 (2)" in html
    assert "imdsv1-allowed" in html and "<svg" in html

    sarif = run.tmp / "report.sarif"
    r = run("report", "--format", "sarif", "--out", str(sarif))
    assert r.code == 0, r.stderr
    assert len(json.loads(sarif.read_text())["runs"][0]["results"]) == 2

    r = run("scan", "--regions", "us-east-1", "--format", "html")
    # Each command takes only its own formats: an impossible one is clap's error.
    assert r.code == 2 and "invalid value 'html' for '--format <FORMAT>'" in r.stderr
    r = run("report", "--scan", "42", "--format", "html")
    assert r.code == 1 and "no scan with id 42" in r.stderr
