"""`scan` reads the sources of new instances: launch templates, Auto Scaling
groups (templates, pins, launch configurations), the account default and
AMIs; resolves what the next launch gets; and reports the exact findings,
at one listing per region and type."""

from __future__ import annotations

import json
import re

import conftest
import launchpaths
from awsproxy import AwsProxy
from launchpaths import REGION


def scan(run, proxy, *extra):
    return run("scan", "--regions", REGION, "--no-usage", "--format", "json", *extra, endpoint=proxy.url)


def test_scan_finds_every_source_and_what_decided(run, account):
    seeded = launchpaths.seed(account)
    t = seeded.templates
    extras = launchpaths.Ec2Extras()
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = scan(run, proxy)
        assert r.code == 0, r.stderr
        # One listing per region and type; one more for the template a group
        # pins to an older version; AMIs in one batch.
        assert proxy.count("DescribeLaunchTemplateVersions") == 2
        assert proxy.count("DescribeAutoScalingGroups") == 1
        assert proxy.count("DescribeLaunchConfigurations") == 1
        assert proxy.count("GetInstanceMetadataDefaults") == 1
        assert proxy.count("DescribeImages") == 1
    doc = r.json()
    findings = {(f["rule"], re.split("[/:]", f["resource"])[-1]) for f in doc["findings"]
                if f["rule"] != "imdsv1-allowed"}
    assert findings == {
        ("launch-template-allows-v1", t["unset"]),
        ("launch-template-allows-v1", t["optional"]),
        ("launch-template-allows-v1", t["mixed"]),
        ("asg-launches-v1", "g-default"),
        ("asg-launches-v1", "g-latest"),
        ("asg-launches-v1", "g-old"),
        ("asg-launches-v1", "g-lc"),
        ("account-default-allows-v1", "instance-metadata-defaults"),
        ("ami-without-imdsv2-support", "ami-12c6146b"),
    }
    src = doc["sources"]
    templates = {x["template_id"]: x for x in src["launch_templates"]}
    # The AMI decides when the template and the account leave tokens unset.
    v2ami = templates[t["unset-v2ami"]]["default_next"]
    assert (v2ami["http_tokens"], v2ami["decided_by"], v2ami["hop_limit"]) == ("required", "ami", 2)
    unset = templates[t["unset"]]["default_next"]
    assert unset["decided_by"] == "ec2-default"
    assert unset["explanation"] == (
        f"optional: EC2's default; launch template {t['unset']} v1 leaves tokens unset; "
        "account default unset; AMI has no ImdsSupport"
    )
    mixed = templates[t["mixed"]]
    assert (mixed["default_version"], mixed["latest_version"]) == (1, 2)
    assert mixed["default_next"]["http_tokens"] == "required" and mixed["latest_next"]["http_tokens"] == "optional"
    groups = {g["name"]: g for g in src["auto_scaling_groups"]}
    assert groups["g-old"]["launch"] == {"kind": "template", "template_id": t["multi"],
                                         "pin": {"pin": "fixed", "version": 1}, "version": 1,
                                         "mixed_overrides": None}
    assert groups["g-latest"]["launch"]["template_id"] == t["mixed"], "named by name, resolved to its id"
    assert groups["g-lc"]["launch"] == {"kind": "configuration", "name": "lc-plain"}
    assert groups["g-lc2"]["allows_v1"] is False
    assert groups["g-lc2"]["next"]["decided_by"] == "launch"
    assert [d["region"] for d in src["account_defaults"]] == [REGION]
    assert [(i["image_id"], i["instances_allowing_v1"]) for i in src["images"]] == [("ami-12c6146b", 1)]


def test_the_account_default_outranks_the_ami_and_enforcement_refuses(run, account):
    seeded = launchpaths.seed(account)
    t = seeded.templates
    extras = launchpaths.Ec2Extras(defaults={REGION: {
        "httpTokens": "required", "httpTokensEnforced": "enabled", "managedBy": "declarative-policy"}})
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = scan(run, proxy)
    assert r.code == 0, r.stderr
    doc = r.json()
    templates = {x["template_id"]: x for x in doc["sources"]["launch_templates"]}
    unset = templates[t["unset"]]["default_next"]
    assert (unset["http_tokens"], unset["decided_by"]) == ("required", "declarative-policy")
    optional = templates[t["optional"]]["default_next"]
    assert optional["refused"] is True and optional["explanation"].startswith("launch refused")
    rules = {f["rule"] for f in doc["findings"]}
    assert "account-default-allows-v1" not in rules
    assert "launch-template-allows-v1" not in rules, "refused launches cannot bring v1 back"

    extras.defaults[REGION] = {"httpTokens": "optional"}
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = scan(run, proxy)
    templates = {x["template_id"]: x for x in r.json()["sources"]["launch_templates"]}
    v2ami = templates[t["unset-v2ami"]]["default_next"]
    assert (v2ami["http_tokens"], v2ami["decided_by"]) == ("optional", "account-default")


def test_fail_on_and_no_sources(run, account):
    launchpaths.seed(account)
    extras = launchpaths.Ec2Extras()
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        assert scan(run, proxy, "--fail-on", "high").code == 0
        r = scan(run, proxy, "--fail-on", "medium")
        assert r.code == 3 and "--fail-on" in r.stderr
        assert scan(run, proxy, "--fail-on", "low").code == 3
        actions = ("DescribeLaunchTemplateVersions", "DescribeAutoScalingGroups", "DescribeLaunchConfigurations",
                   "GetInstanceMetadataDefaults", "DescribeImages")
        before = [proxy.count(a) for a in actions]
        r = scan(run, proxy, "--no-sources")
        assert r.code == 0
        assert [proxy.count(a) for a in actions] == before, "--no-sources reads no source"
        assert r.json()["sources"]["launch_templates"] == []
    r = run("scan", "--fail-on", "severe")
    assert r.code == 2


def test_a_denied_source_listing_is_a_warning_not_a_failed_scan(run, account):
    launchpaths.seed(account)
    extras = launchpaths.Ec2Extras()

    def fault(req):
        if req.action == "DescribeAutoScalingGroups":
            from awsproxy import query_error
            return query_error("AccessDenied", "User is not authorized to perform autoscaling:DescribeAutoScalingGroups")
        return extras.fault(req)

    with AwsProxy(conftest.ENDPOINT, fault, after=extras.after) as proxy:
        r = scan(run, proxy)
    assert r.code == 0, r.stderr
    assert "Auto Scaling groups unknown" in r.stderr and "autoscaling:DescribeAutoScalingGroups" in r.stderr
    doc = r.json()
    assert doc["sources"]["auto_scaling_groups"] == []
    assert doc["sources"]["launch_templates"], "the rest is still read"


def test_reports_list_the_sources_of_new_v1_instances(run, account):
    seeded = launchpaths.seed(account)
    t = seeded.templates
    extras = launchpaths.Ec2Extras()
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        assert scan(run, proxy).code == 0
    # 3 templates, 4 groups, the region's default, one AMI.
    html = run("report", "--format", "html").stdout
    assert "<h2>Sources of new IMDSv1 instances (9)</h2>" in html
    assert f"<td>{t['unset']} (unset)</td><td>ec2-default</td>" in html
    assert "<td>g-lc</td><td>ec2-default</td>" in html
    md = run("report", "--format", "markdown").stdout
    assert "## Sources of new IMDSv1 instances (9)" in md
    [line] = [x for x in md.splitlines() if x.startswith("| launch template |") and t["optional"] in x]
    assert f"| {account.account_id} | {REGION} |" in line and "| launch |" in line
    sarif = json.loads(run("report", "--format", "sarif").stdout)
    rules = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert {"launch-template-allows-v1", "asg-launches-v1", "account-default-allows-v1",
            "ami-without-imdsv2-support"} <= rules
    doc = run("report", "--format", "json").json()
    assert len(doc["sources"]["auto_scaling_groups"]) == 6
