"""`defaults show`: account-level IMDS defaults per region. moto does not
implement GetInstanceMetadataDefaults, so the proxy answers it as EC2 would
for two regions and refuses it in a third, which must be reported."""

from __future__ import annotations

import conftest
from awsproxy import AwsProxy, Reply, ec2_error


def defaults_xml(level: str) -> bytes:
    return (
        '<GetInstanceMetadataDefaultsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>r-1</requestId><accountLevel>{level}</accountLevel>"
        "</GetInstanceMetadataDefaultsResponse>"
    ).encode()


def fault(req):
    if req.action != "GetInstanceMetadataDefaults":
        return None
    if req.region == "us-east-1":
        return Reply(
            200,
            defaults_xml(
                "<httpTokens>required</httpTokens><httpPutResponseHopLimit>2</httpPutResponseHopLimit>"
                "<httpEndpoint>enabled</httpEndpoint><instanceMetadataTags>disabled</instanceMetadataTags>"
                "<managedBy>declarative-policy</managedBy><httpTokensEnforced>enabled</httpTokensEnforced>"
            ),
            {"Content-Type": "text/xml"},
        )
    if req.region == "eu-west-1":
        return Reply(200, defaults_xml(""), {"Content-Type": "text/xml"})
    return ec2_error("UnauthorizedOperation", "You are not authorized to perform this operation.")


def test_defaults_show(run):
    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("defaults", "show", "--regions", "us-east-1,eu-west-1", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert proxy.count("GetInstanceMetadataDefaults") == 2
        rows = {x["region"]: x for x in r.json()["rows"]}
        assert rows["us-east-1"]["http_tokens"] == "required"
        assert rows["us-east-1"]["hop_limit"] == 2
        assert rows["us-east-1"]["http_tokens_enforced"] == "enabled"
        assert rows["us-east-1"]["managed_by"] == "declarative-policy"
        assert rows["us-east-1"]["allows_v1_by_default"] is False
        assert rows["eu-west-1"]["http_tokens"] is None
        assert rows["eu-west-1"]["allows_v1_by_default"] is True
        assert {x["account_id"] for x in rows.values()} == {run.account.account_id}

        r = run("defaults", "show", "--regions", "us-east-1,ap-south-1", endpoint=proxy.url)
        assert r.code == 1
        assert "ap-south-1" in r.stderr and "ec2:GetInstanceMetadataDefaults" in r.stderr
        assert "us-east-1" in r.stdout and "declarative-policy" in r.stdout


def test_defaults_regions_are_validated_like_scan(run):
    r = run("defaults", "show", "--regions", "us-east-9")
    assert r.code == 2 and "unknown region `us-east-9`" in r.stderr
    r = run("templates", "show", "--regions", "us-east-1,me-south-1")
    assert r.code == 1 and "me-south-1" in r.stderr and "not enabled" in r.stderr
