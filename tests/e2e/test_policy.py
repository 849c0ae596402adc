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
