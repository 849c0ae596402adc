"""`report --format markdown`, `show owners --format markdown`, and the
trend over stored scans (`history`, the HTML and Markdown reports)."""

import fleet


def test_markdown_report_and_owners(run, account):
    ec2 = account.client("ec2", "us-east-1")
    hostile = "[click](https://evil.example) | <img src=x>"
    fleet.launch(ec2, 2, tags={"owner": hostile})
    fleet.launch(ec2, 1)  # no owner tag
    fleet.launch(ec2, 1, tokens="required")
    assert run("scan", "--regions", "us-east-1").code == 0

    r = run("report", "--format", "markdown")
    assert r.code == 0, r.stderr
    md = r.stdout
    assert md.startswith("# imdsguard report: scan 1\n")
    # The headline table: 4 instances, 25% enforced, 3 allow v1.
    assert "| 4 | 25.0% | 25.0% | 3 |" in md
    assert "## Instances that allow IMDSv1 (3)" in md
    assert "`imdsv1-allowed`" in md
    # A hostile tag stays inert text inside its one cell: no link, no HTML,
    # no extra column.
    # What GFM would link is a code span: shown as typed, never linked.
    owners_row = next(line for line in md.splitlines() if "click" in line and "evil" in line)
    assert owners_row.startswith("| ` [click](https://evil.example) \\| <img src=x> ` | 2 |"), owners_row
    # Every occurrence of the tag is inside such a code span.
    assert md.count("<img") == md.count("\\| <img src=x> `") > 0
    assert "_\\(no owner tag\\)_" in md
    # Every table row has as many cells as its header.
    for block in md.split("\n\n"):
        lines = [l for l in block.splitlines() if l.startswith("| ")]
        if lines:
            cells = {l.replace("\\|", "").count("|") for l in lines}
            assert len(cells) == 1, block

    r = run("show", "owners", "--format", "markdown")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "| owner | allowing_v1 | in_use | ready | unknown | v1_calls | roles |"
    assert lines[1].startswith("| --- | --: |")
    assert any(l.startswith("| _\\(no owner tag\\)_ | 1 |") for l in lines)
    # People see the missing owner named; machines get null / empty.
    table = run("show", "owners").stdout
    assert "(no owner tag)" in table
    assert run("show", "owners", "--format", "json").json()["rows"][1]["owner"] is None


def test_trend_over_stored_scans(run, account):
    ec2 = account.client("ec2", "us-east-1")
    ids = fleet.launch(ec2, 4)
    fleet.put_metrics(account, ids[:1], value=5.0)
    assert run("scan", "--regions", "us-east-1").code == 0
    # Between the scans, two instances are enforced (by someone else).
    for iid in ids[1:3]:
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required")
    assert run("scan", "--regions", "us-east-1").code == 0

    history = run("history", "--format", "json").json()["rows"]
    assert [(h["scan"], h["optional"], h["percent_enforced"], h["v1_calls"]) for h in history] == [
        (1, 4, 0.0, 70),
        (2, 2, 50.0, 70),
    ]

    out = run.tmp / "report.html"
    assert run("report", "--out", str(out), "--format", "html").code == 0
    html = out.read_text()
    assert 'data-series="% enforced" data-scan="1" data-value="0"' in html
    assert 'data-series="% enforced" data-scan="2" data-value="50"' in html
    assert 'data-series="instances allowing IMDSv1" data-scan="2" data-value="2"' in html
    assert 'data-series="IMDSv1 calls" data-scan="1" data-value="70"' in html
    # The report of scan 1 shows no trend (the future is not its history).
    assert run("report", "--scan", "1", "--out", str(out), "--format", "html").code == 0
    assert "trend-percent" not in out.read_text()

    md = run("report", "--format", "markdown").stdout
    assert "## Trend over stored scans" in md
    assert "| 2 |" in md and "| 50.0% |" in md
