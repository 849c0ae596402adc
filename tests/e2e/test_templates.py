"""`templates show`: launch templates whose default version allows IMDSv1."""

from __future__ import annotations

import fleet
from awsproxy import AwsProxy
import conftest


def test_templates_show(run, account):
    ec2 = account.client("ec2", "eu-west-1")

    def create(name, metadata=None):
        data = {"ImageId": fleet.AMI}
        if metadata:
            data["MetadataOptions"] = metadata
        return ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)["LaunchTemplate"][
            "LaunchTemplateId"
        ]

    good = create("good", {"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
    unset = create("unset")
    optional = create("optional", {"HttpTokens": "optional"})
    mixed = create("mixed", {"HttpTokens": "required"})
    ec2.create_launch_template_version(
        LaunchTemplateId=mixed, LaunchTemplateData={"ImageId": fleet.AMI, "MetadataOptions": {"HttpTokens": "optional"}}
    )

    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("templates", "show", "--regions", "eu-west-1", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        # One listing per region, not one call per template.
        assert proxy.count("DescribeLaunchTemplateVersions") == 1
    rows = {x["template_id"]: x for x in r.json()["rows"]}
    assert set(rows) == {good, unset, optional, mixed}
    assert rows[good]["allows_v1"] is False and rows[good]["hop_limit"] == 2
    assert rows[unset]["allows_v1"] is True and rows[unset]["http_tokens"] is None
    assert rows[optional]["allows_v1"] is True
    assert (rows[mixed]["default_version"], rows[mixed]["latest_version"]) == (1, 2)
    assert rows[mixed]["allows_v1"] is False and rows[mixed]["latest_allows_v1"] is True
    assert {x["name"] for x in rows.values()} == {"good", "unset", "optional", "mixed"}
