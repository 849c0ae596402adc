"""`imdsguard scan` end to end: the real binary against moto."""

from __future__ import annotations

import re

import csv
import io
import json
import sqlite3

import pytest

import fleet
from awsproxy import AwsProxy
from conftest import ENDPOINT

REGION_ARGS = ["--regions", ",".join(fleet.REGIONS)]


@pytest.fixture
def seeded(account):
    return fleet.seed(account)


def test_fleet_json_counts_roles_owners(run, seeded):
    r = run("scan", *REGION_ARGS, "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["schema"] == "imdsguard/v1"
    assert doc["kind"] == "scan"
    assert doc["scan"]["complete"] is True
    assert doc["scan"]["identities"][0]["account_id"] == run.account.account_id
    assert len(seeded.instances) >= 60

    regions = {c["region"]: c for c in doc["summary"]["regions"]}
    assert sorted(regions) == sorted(fleet.REGIONS)
    for region in fleet.REGIONS:
        want = seeded.expected_counts(region)
        got = {k: regions[region][k] for k in want}
        assert got == want, region
    total = doc["summary"]["total"]
    assert total["instances"] == len(seeded.instances)
    assert total["required"] + total["optional"] + total["disabled"] == total["instances"]

    by_id = {i["instance_id"]: i for i in doc["instances"]}
    assert set(by_id) == set(seeded.instances)
    for iid, (region, g) in seeded.instances.items():
        rec = by_id[iid]
        assert rec["region"] == region
        assert rec["account_id"] == run.account.account_id
        assert rec["http_tokens"] == g.tokens
        assert rec["http_endpoint"] == g.endpoint
        assert rec["hop_limit"] == g.hop
        assert rec["role_name"] == fleet.role_of(g), iid
        assert rec["owner"] == fleet.owner_of(g), iid
        assert rec["container_host"] is g.container, iid
        assert rec["state"] == ("stopped" if g.stopped else "running")
        assert rec["name"] == g.tags.get("Name")
        assert rec["tags"] == g.tags
        assert rec["allows_v1"] is (g.endpoint == "enabled" and g.tokens == "optional")
        if g.profile == "batch":
            assert rec["instance_profile_arn"].endswith(":instance-profile/apps/batch-profile")
        if "aws:autoscaling:groupName" in g.tags:
            assert rec["asg_name"] == "asg-erin"
        # Usage is not measured by this scan: nothing allowing v1 may be called ready.
        if rec["allows_v1"]:
            assert rec["readiness"] == "unknown"
        for key in ("launch_time", "image_id", "metadata_state", "tags", "usage", "reason", "name"):
            assert key in rec


def test_fleet_csv_matches_json(run, seeded, tmp_path):
    out = tmp_path / "scan.csv"
    r = run("scan", *REGION_ARGS, "--format", "csv", "--out", str(out))
    assert r.code == 0, r.stderr
    assert r.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(seeded.instances)
    for row in rows:
        region, g = seeded.instances[row["instance_id"]]
        assert row["region"] == region
        assert row["http_tokens"] == g.tokens
        assert row["role_name"] == (fleet.role_of(g) or "")
        assert row["owner"] == (fleet.owner_of(g) or "")
        assert json.loads(row["tags"]) == g.tags
    per_region = {}
    for row in rows:
        per_region.setdefault(row["region"], []).append(row)
    for region in fleet.REGIONS:
        want = seeded.expected_counts(region)
        got = per_region[region]
        assert len(got) == want["instances"]
        assert sum(1 for x in got if x["allows_v1"] == "true") == want["optional"]


def test_table_lists_summary_and_v1_instances(run, seeded):
    r = run("scan", *REGION_ARGS)
    assert r.code == 0, r.stderr
    assert "\x1b[" not in r.stdout  # not a terminal: no colour
    lines = r.stdout.splitlines()
    for region in fleet.REGIONS:
        want = seeded.expected_counts(region)
        row = next(line for line in lines if f"  {region}  " in line and "i-" not in line)
        cols = row.split()
        assert cols[2:6] == [str(want[k]) for k in ("instances", "required", "optional", "disabled")], row
    v1 = [i for i, (_, g) in seeded.instances.items() if g.endpoint == "enabled" and g.tokens == "optional"]
    assert f"Instances allowing IMDSv1 ({len(v1)}):" in r.stdout
    for iid in v1:
        assert iid in r.stdout
    required = [i for i, (_, g) in seeded.instances.items() if g.tokens == "required"]
    for iid in required:
        assert iid not in r.stdout


def ids_where(seeded, pred):
    return {i for i, (r, g) in seeded.instances.items() if pred(r, g)}


def scanned_ids(r):
    assert r.code == 0, r.stderr
    return {i["instance_id"] for i in r.json()["instances"]}


def test_filters_select_exactly(run, seeded, tmp_path):
    j = ["--format", "json", *REGION_ARGS]
    got = scanned_ids(run("scan", *j, "--tag", "env=prod"))
    assert got == ids_where(seeded, lambda r, g: g.tags.get("env") == "prod")

    got = scanned_ids(run("scan", *j, "--tag", "env=prod", "--tag", "team=web"))
    assert got == ids_where(seeded, lambda r, g: g.tags.get("team") == "web")

    got = scanned_ids(run("scan", *j, "--tag", "env=*", "--exclude-tag", "env=dev"))
    assert got == ids_where(seeded, lambda r, g: g.tags.get("env") == "prod")

    got = scanned_ids(run("scan", *j, "--state", "stopped"))
    assert got == ids_where(seeded, lambda r, g: g.stopped)

    got = scanned_ids(run("scan", *j, "--state", "running"))
    assert got == ids_where(seeded, lambda r, g: not g.stopped)

    some = sorted(seeded.in_region("eu-west-1"))[:3] + sorted(seeded.in_region("us-east-1"))[:2]
    got = scanned_ids(run("scan", *j, "--instance-ids", ",".join(some)))
    assert got == set(some)

    got = scanned_ids(run("scan", *j, "--instance-ids", ",".join(some), "--exclude-ids", some[0]))
    assert got == set(some[1:])

    # A CSV pinned to regions: only those regions are listed at all.
    csv_path = tmp_path / "ids.csv"
    picked = sorted(seeded.in_region("ap-southeast-2"))[:4]
    csv_path.write_text("instance_id,region\n" + "".join(f"{i},ap-southeast-2\n" for i in picked))
    with AwsProxy(ENDPOINT) as proxy:
        r = run("scan", *j, "--input-file", str(csv_path), endpoint=proxy.url)
        assert scanned_ids(r) == set(picked)
        assert proxy.count("DescribeInstances", region="ap-southeast-2") == 1
        assert proxy.count("DescribeInstances") == 1
    doc = r.json()
    assert [c["region"] for c in doc["summary"]["regions"]] == ["ap-southeast-2"]


def test_missing_instance_is_a_warning(run, seeded):
    real = sorted(seeded.in_region("us-east-1"))[0]
    r = run("scan", "--format", "json", *REGION_ARGS, "--instance-ids", f"{real},i-0000000000000dead")
    assert r.code == 0, r.stderr
    assert scanned_ids(r) == {real}
    assert "i-0000000000000dead" in r.stderr
    assert "not found" in r.stderr


def test_scan_is_stored_in_sqlite(run, seeded):
    r = run("scan", *REGION_ARGS, "--format", "json")
    assert r.code == 0, r.stderr
    scan_id = r.json()["scan"]["id"]
    db = sqlite3.connect(run.db)
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
    n = db.execute("SELECT COUNT(*) FROM instances WHERE scan_id = ?", (scan_id,)).fetchone()[0]
    assert n == len(seeded.instances)
    rows = db.execute(
        "SELECT region, instances, required, optional, disabled FROM scan_regions WHERE scan_id = ? ORDER BY region",
        (scan_id,),
    ).fetchall()
    for region, instances, required, optional, disabled in rows:
        want = seeded.expected_counts(region)
        assert (instances, required, optional, disabled) == (
            want["instances"],
            want["required"],
            want["optional"],
            want["disabled"],
        )
    # A second scan is a second row, not an overwrite.
    r2 = run("scan", *REGION_ARGS, "--format", "json")
    assert r2.json()["scan"]["id"] == scan_id + 1
    assert db.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 2


def test_default_regions_are_the_enabled_ones(run, account):
    ec2 = account.client("ec2", "sa-east-1")
    fleet.launch(ec2, 2)
    enabled = {
        r["RegionName"]
        for r in account.client("ec2").describe_regions(AllRegions=True)["Regions"]
        if r["OptInStatus"] != "not-opted-in" and not r["RegionName"].startswith(("cn-", "us-gov-", "us-iso"))
    }
    r = run("scan", "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert {c["region"] for c in doc["summary"]["regions"]} == enabled
    assert doc["summary"]["total"]["instances"] == 2
    assert next(c for c in doc["summary"]["regions"] if c["region"] == "sa-east-1")["instances"] == 2


def test_no_per_instance_calls_for_2500_instances(run, account):
    ec2 = account.client("ec2", "us-west-2")
    for _ in range(5):
        fleet.launch(ec2, 500)
    with AwsProxy(ENDPOINT) as proxy:
        r = run("scan", "--regions", "us-west-2", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert r.json()["summary"]["total"]["instances"] == 2500
        assert proxy.count("DescribeInstances") <= 3
        assert proxy.count("ListInstanceProfiles") == 1
        # Usage: 2 queries per instance, 500 per call.
        assert proxy.count("GetMetricData") == 2 * 2500 // 500
        actions = {a for (_, _, a) in proxy.calls}
        assert actions == {
            "GetCallerIdentity",
            "DescribeRegions",
            "DescribeInstances",
            "ListInstanceProfiles",
            "GetMetricData",
            # The sources of new instances: one listing each, and the AMIs
            # of 2,500 instances in one DescribeImages.
            "DescribeLaunchTemplateVersions",
            "DescribeAutoScalingGroups",
            "GetInstanceMetadataDefaults",
            "DescribeImages",
        }
        for source in ("DescribeLaunchTemplateVersions", "DescribeAutoScalingGroups", "DescribeImages"):
            assert proxy.count(source) == 1, source
        assert proxy.count("GetInstanceMetadataDefaults") == 1
        assert proxy.total() <= 6 + 10 + 4


def test_color_flags(run, account):
    fleet.launch(account.client("ec2", "us-east-1"), 1)
    r = run("scan", "--regions", "us-east-1", "--no-usage", "--color", "always")
    assert r.code == 0, r.stderr
    assert "\x1b[31moptional\x1b[0m" in r.stdout
    r = run("scan", "--regions", "us-east-1", "--no-usage", "--color", "never")
    assert "\x1b[" not in r.stdout
    # --out files never get colour, whatever --color says.
    out = run.tmp / "t.txt"
    r = run("scan", "--regions", "us-east-1", "--no-usage", "--color", "always", "--out", str(out))
    assert "\x1b[" not in out.read_text()


def test_show_owners_and_roles(run, seeded):
    assert run("scan", *REGION_ARGS, "--no-usage").code == 0
    allowing = [g for _, g in seeded.instances.values() if g.endpoint == "enabled" and g.tokens == "optional"]

    r = run("show", "owners", "--format", "json")
    assert r.code == 0, r.stderr
    rows = {x["owner"]: x for x in r.json()["rows"]}
    want = {}
    for g in allowing:
        want[fleet.owner_of(g)] = want.get(fleet.owner_of(g), 0) + 1
    assert {k: v["allowing_v1"] for k, v in rows.items()} == want
    assert rows["bob"]["roles"] == "batch-role"
    # Without usage every one of them is unproven.
    assert all(v["unknown"] == v["allowing_v1"] for v in rows.values())

    r = run("show", "roles", "--format", "json")
    roles = {x["role_name"]: x for x in r.json()["rows"]}
    want_roles = {}
    for g in allowing:
        if fleet.role_of(g):
            want_roles[fleet.role_of(g)] = want_roles.get(fleet.role_of(g), 0) + 1
    assert {k: v["allowing_v1"] for k, v in roles.items()} == want_roles
    assert set(roles["web-role"]["owners"].split(", ")) == {"platform"}

    table = run("show", "owners")
    assert table.code == 0 and "alice" not in table.stdout  # alice's instances all require v2
    assert "bob" in table.stdout


def test_findings_in_json_and_sarif(run, seeded):
    r = run("scan", *REGION_ARGS, "--no-usage", "--format", "json")
    assert r.code == 0, r.stderr
    findings = r.json()["findings"]
    by_rule = {}
    for f in findings:
        by_rule.setdefault(f["rule"], {})[re.split("[/:]", f["resource"])[-1]] = f
    allowing = {i: g for i, (_, g) in seeded.instances.items() if g.endpoint == "enabled" and g.tokens == "optional"}
    assert set(by_rule["imdsv1-allowed"]) == set(allowing)
    for iid, g in allowing.items():
        f = by_rule["imdsv1-allowed"][iid]
        assert f["severity"] == ("high" if fleet.role_of(g) else "medium"), iid
        assert f["docs"] == "docs/findings.md#imdsv1-allowed"
    hop1 = {i for i, (_, g) in seeded.instances.items() if g.container and g.tokens == "required" and g.hop < 2}
    assert hop1 and set(by_rule["container-hop-limit"]) == hop1
    assert "imdsv1-in-use" not in by_rule  # no usage measured, no claim of use

    out = run.tmp / "scan.sarif"
    r = run("scan", *REGION_ARGS, "--no-usage", "--format", "sarif", "--out", str(out))
    assert r.code == 0, r.stderr
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    sarif_run = sarif["runs"][0]
    rules = [x["id"] for x in sarif_run["tool"]["driver"]["rules"]]
    assert {"imdsv1-allowed", "imdsv1-in-use", "imdsv1-refused", "container-hop-limit"} <= set(rules)
    assert len(sarif_run["results"]) == len(findings)
    for res in sarif_run["results"]:
        assert rules[res["ruleIndex"]] == res["ruleId"]
        assert res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].startswith("arn:aws:ec2:")

    r = run("scan", *REGION_ARGS, "--no-usage")
    assert f"Findings: {len(findings)} (" in r.stdout
    r = run("runs", "--format", "sarif")
    assert r.code == 2 and "invalid value 'sarif' for '--format <FORMAT>'" in r.stderr
