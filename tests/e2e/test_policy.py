"""`policy scp`: offline, valid JSON, the four guardrails."""

import json


def test_policy_scp(run, tmp_path):
    out = tmp_path / "scp.json"
    r = run("policy", "scp", "--admin-role-arn", "arn:aws:iam::*:role/imds-admins", "--deny-v1-credentials",
            "--out", str(out), creds=False)
    assert r.code == 0, r.stderr
    doc = json.loads(out.read_text())
    assert list(doc) == ["Version", "Statement"]
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["RequireImdsV2OnLaunch"]["Condition"] == {"StringNotEquals": {"ec2:MetadataHttpTokens": "required"}}
    assert by_sid["MaxImdsHopLimit"]["Condition"]["NumericGreaterThan"]["ec2:MetadataHttpPutResponseHopLimit"] == "2"
    assert by_sid["OnlyAdminsChangeImds"]["Condition"]["StringNotLike"]["aws:PrincipalARN"] == [
        "arn:aws:iam::*:role/imds-admins"
    ]
    assert by_sid["DenyCredentialsFromImdsV1"]["Condition"] == {"NumericLessThan": {"ec2:RoleDelivery": "2.0"}}
    assert len(json.dumps(doc, separators=(",", ":"))) <= 5120
    assert "breaks when it is attached" in r.stderr

    # The statement that breaks instances still on v1 is opt-in.
    r = run("policy", "scp", creds=False)
    assert r.code == 0 and "DenyCredentialsFromImdsV1" not in json.loads(r.stdout).__repr__()
    assert "nobody (imdsguard included)" in r.stderr and "breaks when" not in r.stderr
    r = run("policy", "scp", "--allow-v1-credentials", creds=False)
    assert r.code == 0 and "DenyCredentialsFromImdsV1" not in r.stdout
    r = run("policy", "scp", "--admin-role-arn", "imds-admins", creds=False)
    assert r.code == 2 and "not an IAM role ARN" in r.stderr


def test_policy_declarative(run, tmp_path):
    out = tmp_path / "declarative.json"
    r = run("policy", "declarative", "--hop-limit", "3", "--exception-message", "IMDSv2 only: see https://wiki.example/imds",
            "--out", str(out), creds=False)
    assert r.code == 0, r.stderr
    doc = json.loads(out.read_text())
    defaults = doc["ec2_attributes"]["instance_metadata_defaults"]
    assert defaults["http_tokens"] == {"@@assign": "required"}
    assert defaults["http_put_response_hop_limit"] == {"@@assign": "3"}
    assert doc["ec2_attributes"]["exception_message"] == {"@@assign": "IMDSv2 only: see https://wiki.example/imds"}
    assert "sets defaults for new launches" in r.stderr
    r = run("policy", "declarative", "--exception-message", "two\nlines", creds=False)
    assert r.code == 2 and "control characters" in r.stderr
    r = run("policy", "declarative", "--hop-limit", "65", creds=False)
    assert r.code == 2


def test_policy_impact_on_the_latest_scan(run, account):
    """Each policy says, from the latest stored scan, what attaching it would
    break: the exact launch paths, the instances and the region defaults."""
    import conftest
    import fleet
    import launchpaths
    from awsproxy import AwsProxy
    from launchpaths import REGION

    r = run("policy", "scp", creds=False)
    assert "no stored scan" in r.stderr

    seeded = launchpaths.seed(account)
    t = seeded.templates
    iam = account.client("iam")
    iam.create_role(RoleName="app-role", AssumeRolePolicyDocument="{}")
    profile = iam.create_instance_profile(InstanceProfileName="app-profile")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="app-profile", RoleName="app-role")
    [in_use] = fleet.launch(account.client("ec2", REGION), 1, profile=profile)
    fleet.put_metrics(account, [in_use], value=5.0, region=REGION)
    extras = launchpaths.Ec2Extras(defaults={REGION: {"httpTokens": "optional"}})
    with AwsProxy(conftest.ENDPOINT, extras.fault, after=extras.after) as proxy:
        assert run("scan", "--regions", REGION, endpoint=proxy.url).code == 0

    r = run("policy", "scp", "--deny-v1-credentials", "--format", "json", creds=False)
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "policy" and doc["policy"]["Version"] == "2012-10-17"
    denied = {h["resource"] for h in doc["impact"]["launch_paths"]}
    assert denied == {
        f"launch template {t['unset']} ($Default v1)",
        f"launch template {t['unset-v2ami']} ($Default v1)",  # required only through the AMI
        f"launch template {t['optional']} ($Default v1)",
        f"launch template {t['mixed']} ($Latest v2)",
        "Auto Scaling group g-default", "Auto Scaling group g-latest", "Auto Scaling group g-old",
        "Auto Scaling group g-lc",
    }
    assert [h["resource"] for h in doc["impact"]["instances"]] == [in_use]
    assert "app-role" in doc["impact"]["instances"][0]["why"]
    assert "would affect 8 launch path(s), 1 instance(s) and 0 region default(s)" in r.stderr, r.stderr
    # The default output is still the document to attach.
    r = run("policy", "scp", creds=False)
    assert "Statement" in json.loads(r.stdout) and "would affect" in r.stderr

    r = run("policy", "declarative", "--format", "json", creds=False)
    assert r.code == 0, r.stderr
    impact = json.loads(r.stdout)["impact"]
    # Only paths whose tokens come from the (overridden) account default change.
    assert {h["resource"] for h in impact["launch_paths"]} == {
        f"launch template {t['unset']} ($Default v1)",
        f"launch template {t['unset-v2ami']} ($Default v1)",
        "Auto Scaling group g-default", "Auto Scaling group g-lc",
    }
    assert [(h["region"], h["resource"]) for h in impact["regions"]] == [(REGION, "account default")]
