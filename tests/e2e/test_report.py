"""`report`: a stored scan as HTML (escaped, self-contained) or SARIF."""

import copy
import json
import re
from pathlib import Path

import jsonschema

import fleet

# The OASIS SARIF 2.1.0 schema, shipped as test data (see data/README.md).
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


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
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == [
        "account-default-allows-v1", "ami-without-imdsv2-support", "imdsv1-allowed", "imdsv1-allowed"]

    r = run("scan", "--regions", "us-east-1", "--format", "html")
    # Each command takes only its own formats: an impossible one is clap's error.
    assert r.code == 2 and "invalid value 'html' for '--format <FORMAT>'" in r.stderr
    r = run("report", "--scan", "42", "--format", "html")
    assert r.code == 1 and "no scan with id 42" in r.stderr


def sarif_errors(doc: dict) -> list[str]:
    """Every way `doc` breaks the SARIF 2.1.0 schema, with the validator of
    the JSON Schema draft the schema declares (draft-04)."""
    cls = jsonschema.validators.validator_for(SARIF_SCHEMA)
    cls.check_schema(SARIF_SCHEMA)
    errors = cls(SARIF_SCHEMA).iter_errors(doc)
    return sorted(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_sarif_is_schema_valid_and_github_ready(run, account):
    """What `report` and `scan` write as SARIF is valid SARIF 2.1.0 and has
    what GitHub code scanning needs of a result about a cloud resource: a
    physical location (the pseudo-path aws/ACCOUNT/REGION/ID, line 1) and a
    primaryLocationLineHash that is the same in every run."""
    seeded = fleet.seed(account)
    regions = ",".join(fleet.REGIONS)
    assert run("scan", "--regions", regions, "--no-usage").code == 0
    out = run.tmp / "report.sarif"
    r = run("report", "--format", "sarif", "--out", str(out))
    assert r.code == 0, r.stderr
    report = json.loads(out.read_text())
    r = run("scan", "--regions", regions, "--no-usage", "--format", "sarif")  # another run
    assert r.code == 0, r.stderr
    scan = r.json()

    allowing = {i for i, (_, g) in seeded.instances.items() if g.endpoint == "enabled" and g.tokens == "optional"}
    uri = re.compile(rf"aws/{account.account_id}/([a-z0-9-]+)/((?:i|ami|lt)-[0-9a-f]+|instance-metadata-defaults)")
    fingerprints = []
    for doc in (report, scan):
        assert sarif_errors(doc) == []
        sarif_run = doc["runs"][0]
        for rule in sarif_run["tool"]["driver"]["rules"]:
            for key in ("shortDescription", "fullDescription", "help"):
                assert rule[key]["text"], (rule["id"], key)
            assert 0.0 < float(rule["properties"]["security-severity"]) <= 10.0
        results = sarif_run["results"]
        assert results
        seen = {}
        for res in results:
            assert res["ruleId"] and res["message"]["text"]
            location = res["locations"][0]
            physical = location["physicalLocation"]
            m = uri.fullmatch(physical["artifactLocation"]["uri"])
            assert m, physical
            region, iid = m.groups()
            assert physical["region"]["startLine"] == 1
            if iid.startswith("i-"):
                assert seeded.instances[iid][0] == region
                arn = f"arn:aws:ec2:{region}:{account.account_id}:instance/{iid}"
            elif iid == "instance-metadata-defaults":  # the region's account default
                assert res["ruleId"] == "account-default-allows-v1"
                arn = f"arn:aws:ec2:{region}:{account.account_id}:instance-metadata-defaults"
            else:  # a source of new instances: the AMI behind them
                assert res["ruleId"] == "ami-without-imdsv2-support"
                arn = f"arn:aws:ec2:{region}::image/{iid}"
            assert location["logicalLocations"][0]["fullyQualifiedName"] == arn
            line_hash = res["partialFingerprints"]["primaryLocationLineHash"]
            assert re.fullmatch(r"[0-9a-f]{16}:1", line_hash), line_hash
            seen[(res["ruleId"], region, iid)] = line_hash
        assert len(set(seen.values())) == len(seen) == len(results)  # one alert per rule and resource
        assert {iid for rule, _, iid in seen if rule == "imdsv1-allowed"} == allowing
        fingerprints.append(seen)
    assert fingerprints[0] == fingerprints[1]  # alerts stay the same alerts across runs

    # The schema does bite: a region without a line or offset is refused.
    broken = copy.deepcopy(report)
    del broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert sarif_errors(broken)
