"""`templates fix`, `asg fix` and `defaults set` against moto (defaults
through the proxy, which answers what moto lacks): each fixes what it
should, is journaled, rolls back exactly, and resumes without sending an
in-flight call again."""

from __future__ import annotations

import base64
import signal
import sqlite3
import subprocess
import time

import conftest
import fleet
import launchpaths
from awsproxy import AwsProxy
from launchpaths import REGION


def fix(run, proxy, *args):
    return run(*args, "--regions", REGION, "--yes", "--format", "json", endpoint=proxy.url)


def versions(ec2, template_id):
    return {v["VersionNumber"]: v for v in ec2.describe_launch_template_versions(LaunchTemplateId=template_id)[
        "LaunchTemplateVersions"]}


def default_version(ec2, template_id):
    return ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0][
        "DefaultVersionNumber"]


def test_templates_fix_then_rollback(run, account):
    seeded = launchpaths.seed(account)
    t = seeded.templates
    ec2 = account.client("ec2", REGION)
    extras = launchpaths.Ec2Extras()
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = fix(run, proxy, "templates", "fix", "--dry-run")
        assert r.code == 0, r.stderr
        assert proxy.count("CreateLaunchTemplateVersion") == 0, "a dry run sends nothing"
        planned = {c["resource"]: c for c in r.json()["changes"]}
        assert set(planned) == {t["unset"], t["optional"], t["mixed"]}

        r = fix(run, proxy, "templates", "fix")
        assert r.code == 0, r.stderr
        doc = r.json()
        assert doc["run"] == 1 and {c["status"] for c in doc["changes"]} == {"applied"}
        assert proxy.count("CreateLaunchTemplateVersion") == 3
        assert proxy.count("ModifyLaunchTemplate") == 2, "mixed's default requires v2 already"

    # The new versions copy their source's data and require IMDSv2.
    for name in ("unset", "optional"):
        v = versions(ec2, t[name])
        assert default_version(ec2, t[name]) == 2
        data = v[2]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["ImageId"] == fleet.AMI and data["InstanceType"] == "t3.micro"
        assert "imdsguard run 1 change" in v[2]["VersionDescription"]
    # mixed: the latest (v2, optional) was the source; the default stays v1.
    assert default_version(ec2, t["mixed"]) == 1
    assert versions(ec2, t["mixed"])[3]["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"

    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = run("scan", "--regions", REGION, "--no-usage", "--format", "json", endpoint=proxy.url)
        rules = {f["rule"] for f in r.json()["findings"]}
        assert "launch-template-allows-v1" not in rules

        r = run("rollback", "1", "--yes", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert proxy.count("CreateLaunchTemplateVersion") == 0
    assert default_version(ec2, t["unset"]) == 1 and default_version(ec2, t["optional"]) == 1
    assert default_version(ec2, t["mixed"]) == 1
    shown = run("runs", "1", "--format", "json").json()
    assert shown["run"] == 1 and {c["status"] for c in shown["changes"]} == {"applied"}
    assert {c["version"] for c in shown["changes"]} == {2, 3}
    runs = run("runs", "--format", "json").json()
    statuses = {x["id"]: x["status"] for x in runs["runs"]}
    assert statuses == {1: "rolled-back", 2: "done"}
    r = run("rollback", "1", "--yes")
    assert r.code != 0 and "rolled back" in r.stderr


def test_asg_fix_pins_and_converts_then_rollback(run, account):
    seeded = launchpaths.seed(account)
    t = seeded.templates
    asg = account.client("autoscaling", REGION)
    ec2 = account.client("ec2", REGION)
    extras = launchpaths.Ec2Extras()

    def launches(name):
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        if "LaunchTemplate" in g:
            return g["LaunchTemplate"]["LaunchTemplateId"], g["LaunchTemplate"]["Version"]
        return "lc", g["LaunchConfigurationName"]

    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = fix(run, proxy, "asg", "fix")
        assert r.code == 0, r.stderr
        doc = r.json()
        assert proxy.count("UpdateAutoScalingGroup") == 2
    changed = {c["resource"]: c for c in doc["changes"]}
    assert set(changed) == {"g-old", "g-lc"}
    left = {x["resource"]: x["why"] for x in doc["left_alone"]}
    assert "templates fix --template" in left.get("g-default", "") or not left  # named only when asked

    # g-old was pinned to multi v1 (optional): now a fixed copy of v1.
    tid, version = launches("g-old")
    assert tid == t["multi"] and version == "3"
    assert versions(ec2, t["multi"])[3]["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    assert default_version(ec2, t["multi"]) == 2, "a pin fix does not move the template's default"
    # g-lc: a new template copied from lc-plain, IMDSv2 required.
    tid, version = launches("g-lc")
    made = ec2.describe_launch_templates(LaunchTemplateIds=[tid])["LaunchTemplates"][0]
    assert made["LaunchTemplateName"].startswith("imdsguard-g-lc-")
    data = versions(ec2, tid)[1]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required" and data["ImageId"] == fleet.AMI
    # boto3 base64-encodes the configuration's user data; both APIs speak base64.
    assert data["UserData"] == base64.b64encode(b"ZWNobyBzZWNyZXQ=").decode(), "user data is carried over"

    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = run("asg", "show", "--regions", REGION, "--format", "json", endpoint=proxy.url)
        rows = {x["name"]: x for x in r.json()["rows"]}
        assert rows["g-old"]["allows_v1"] is False and rows["g-lc"]["allows_v1"] is False
        assert rows["g-default"]["allows_v1"] is True

        r = run("rollback", "1", "--yes", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        updates = {q.params["AutoScalingGroupName"]: q.params for q in proxy.log
                   if q.action == "UpdateAutoScalingGroup"}
    assert launches("g-old") == (t["multi"], "1")
    # Back to its launch configuration. moto keeps showing the template after
    # such a switch (real Auto Scaling replaces it), so the request is checked.
    assert updates["g-lc"]["LaunchConfigurationName"] == "lc-plain"
    assert not any(k.startswith("LaunchTemplate") for k in updates["g-lc"])

    # Named groups that need no fix, or another command, say why.
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = fix(run, proxy, "asg", "fix", "--group", "g-default", "--group", "g-pinned", "--dry-run")
    assert r.code == 0, r.stderr
    left = {x["resource"]: x["why"] for x in r.json()["left_alone"]}
    assert left["g-default"].startswith(f"follows $Default of {t['unset']}")
    assert "already requires IMDSv2" in left["g-pinned"]


def test_asg_fix_prints_the_refresh_it_does_not_start(run, account):
    launchpaths.seed(account)
    asg = account.client("autoscaling", REGION)
    asg.update_auto_scaling_group(AutoScalingGroupName="g-lc", DesiredCapacity=1, MinSize=1)
    extras = launchpaths.Ec2Extras()
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = run("asg", "fix", "--group", "g-lc", "--regions", REGION, "--yes", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert proxy.count("StartInstanceRefresh") == 0
    assert "1 instance(s) that allow IMDSv1" in r.stderr
    assert ("aws autoscaling start-instance-refresh --auto-scaling-group-name g-lc --region " + REGION) in r.stderr


def test_defaults_set_enforce_then_rollback(run, account):
    seeded = launchpaths.seed(account)
    extras = launchpaths.Ec2Extras(defaults={REGION: {"httpPutResponseHopLimit": "3"}})
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        assert run("scan", "--regions", REGION, "--no-usage", endpoint=proxy.url).code == 0
        r = run("defaults", "set", "--http-tokens", "required", "--enforce", "--regions", REGION, "--yes",
                "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
    doc = r.json()
    [impact] = doc["enforce_impact"]
    refused = set(impact["launch_paths_refused"])
    assert {f"launch template {seeded.templates['optional']}", "Auto Scaling group g-latest"} <= refused
    assert "launches would be refused" in r.stderr
    [sent] = extras.modified
    assert (sent["HttpTokens"], sent["HttpTokensEnforced"], sent["HttpPutResponseHopLimit"]) == (
        "required", "enabled", "3")
    assert extras.defaults[REGION] == {"httpTokens": "required", "httpTokensEnforced": "enabled",
                                       "httpPutResponseHopLimit": "3"}

    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = run("rollback", "1", "--yes", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
    # Exactly what was there: no tokens preference, enforcement off, hop limit 3.
    assert extras.modified[-1]["HttpTokens"] == "no-preference"
    assert extras.modified[-1]["HttpTokensEnforced"] == "disabled"
    assert extras.defaults[REGION] == {"httpPutResponseHopLimit": "3", "httpTokensEnforced": "disabled"}


def test_defaults_set_refuses_a_region_a_declarative_policy_manages(run, account):
    extras = launchpaths.Ec2Extras(defaults={REGION: {"managedBy": "declarative-policy"}})
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = run("defaults", "set", "--http-tokens", "required", "--regions", REGION, "--yes", "--format", "json",
                endpoint=proxy.url)
        assert proxy.count("ModifyInstanceMetadataDefaults") == 0
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["changes"] == [] and doc["run"] is None
    assert "declarative policy" in doc["left_alone"][0]["why"]
    r = run("defaults", "set", "--http-tokens", "optional")
    assert r.code == 2


def test_bad_input_changes_nothing(run, account):
    for args in (["templates", "fix", "--template", "lt-xyz"], ["templates", "fix", "--template", "i-0123"],
                 ["asg", "fix", "--group", "a\x1b[31mb"], ["templates", "fix", "--hop-limit", "65"],
                 ["defaults", "set", "--http-tokens", "required", "--hop-limit", "0"]):
        r = run(*args, "--yes")
        assert r.code == 2, (args, r.stderr)
        assert "help" in r.stderr.lower()
        assert "\x1b[31m" not in r.stderr
    assert not (run.db.exists() and sqlite3.connect(run.db).execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0] and sqlite3.connect(
        run.db).execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def test_a_killed_create_is_found_on_resume_not_sent_again(run, account):
    seeded = launchpaths.seed(account)
    t = seeded.templates
    ec2 = account.client("ec2", REGION)
    extras = launchpaths.Ec2Extras()

    def hang_after_create(req, reply):
        # The version is made in moto; the answer never comes back.
        if req.action == "CreateLaunchTemplateVersion":
            time.sleep(60)
        return extras.after(req, reply)

    with AwsProxy(conftest.ENDPOINT, extras.fault, after=hang_after_create) as proxy:
        env = dict(run.base_env, **run.account.env(), AWS_ENDPOINT_URL=proxy.url)
        proc = subprocess.Popen([conftest.BIN, "templates", "fix", "--template", t["unset"], "--regions", REGION,
                                 "--yes"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not any(q.action == "CreateLaunchTemplateVersion" for q in proxy.forwarded):
            assert time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert sorted(versions(ec2, t["unset"])) == [1, 2], "the killed call landed"
    db = sqlite3.connect(run.db)
    assert db.execute("SELECT status, steps_done FROM source_changes WHERE run_id = 1").fetchall() == [("issued", 0)]
    db.close()

    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = run("apply", "--resume", "1", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert proxy.count("CreateLaunchTemplateVersion") == 0, "the landed call is not sent again"
        assert proxy.count("ModifyLaunchTemplate") == 1
    assert sorted(versions(ec2, t["unset"])) == [1, 2]
    assert default_version(ec2, t["unset"]) == 2
    assert "found, not sent again" in r.stderr
    [change] = r.json()["changes"]
    assert (change["status"], change["version"]) == ("applied", 2)


def test_hostile_group_names_stay_inert(run, account):
    asg = account.client("autoscaling", REGION)
    asg.create_launch_configuration(LaunchConfigurationName="lc-x", ImageId=fleet.AMI, InstanceType="t3.micro")
    # XML cannot carry ESC (moto sends it raw and the SDK rightly refuses
    # the answer), so: shell metacharacters and a bidi override.
    evil = "web'; rm -rf / #\u202e"
    asg.create_auto_scaling_group(AutoScalingGroupName=evil, MinSize=1, MaxSize=1, DesiredCapacity=1,
                                  AvailabilityZones=[f"{REGION}a"], LaunchConfigurationName="lc-x")
    extras = launchpaths.Ec2Extras()
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        r = run("asg", "fix", "--regions", REGION, "--yes", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        r2 = run("asg", "show", "--regions", REGION, endpoint=proxy.url)
    for text in (r.stdout, r.stderr, r2.stdout):
        assert "\u202e" not in text
    # The refresh command quotes the name as one shell word (the bidi
    # control shown escaped).
    assert "--auto-scaling-group-name 'web'\\''; rm -rf / #\\u{202e}'" in r.stderr
    made = [c for c in r.stdout.splitlines() if "imdsguard-web" in c]
    assert made, r.stdout
