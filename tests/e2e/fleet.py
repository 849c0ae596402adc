"""Seeds a realistic mixed fleet into one moto account and says what a scan
of it must report. Expectations are derived from the same spec that seeds
the fleet, group by group, never typed in by hand.

It also holds the one way the tests launch instances (`launch`) and write
CloudWatch datapoints (`put_metrics`)."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Callable, Union

AMI = "ami-12c6146b"  # one of moto's built-in images
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
DAY = 86400


# Every test module, demo.py and seed() below launch instances and write
# datapoints through these helpers, so a change to how moto is seeded is
# made once.


def launch(
    ec2,
    n: int,
    tokens: str = "optional",
    endpoint: str = "enabled",
    hop: int = 1,
    tags: dict | None = None,
    meta_tags: str = "disabled",
    ipv6: str | None = None,
    profile: str | None = None,
) -> list[str]:
    """Launches `n` instances with these metadata options through the EC2
    client `ec2` and returns their ids. The defaults are moto's (and EC2's
    for our AMI), so `launch(ec2, n)` is a plain RunInstances. `profile` is
    an instance profile ARN to attach; `ipv6` is HttpProtocolIpv6, sent
    only when given."""
    options = {
        "HttpTokens": tokens,
        "HttpEndpoint": endpoint,
        "HttpPutResponseHopLimit": hop,
        "InstanceMetadataTags": meta_tags,
    }
    if ipv6 is not None:
        options["HttpProtocolIpv6"] = ipv6
    kwargs = dict(ImageId=AMI, MinCount=n, MaxCount=n, MetadataOptions=options)
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    if not profile:
        return [i["InstanceId"] for i in ec2.run_instances(**kwargs)["Instances"]]
    # moto attaches the profile only to the first instance of a
    # multi-instance launch: launch these one by one.
    kwargs.update(MinCount=1, MaxCount=1, IamInstanceProfile={"Arn": profile})
    return [ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"] for _ in range(n)]


def stamp(days_ago: int, now: float) -> datetime.datetime:
    """The time of a daily datapoint `days_ago` days before `now`: 01:00 UTC
    that day, but never later than a minute ago (CloudWatch refuses the
    future, and today's 01:00 may not have come yet)."""
    t = min(int(now) // DAY * DAY - days_ago * DAY + 3600, int(now) - 60)
    return datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)


Value = Union[float, dict, Callable[[int], float]]


def put_metrics(
    target,
    instance_ids: list[str],
    days: int = 14,
    value: Value = 0.0,
    metric: str = "MetadataNoToken",
    region: str = "us-east-1",
    now: float | None = None,
) -> None:
    """Writes daily AWS/EC2 datapoints of `metric` for each instance, the
    way EC2 would: one a day for the last `days` days (today included).

    `target` is a conftest.Account (its CloudWatch client in `region` is
    used) or a CloudWatch client. `value` is the same number every day, a
    function of days-ago, or a dict {days_ago: value} that lists exactly the
    days with a datapoint (`days` is then unused). Datapoints are sent 500
    to a call, PutMetricData's limit."""
    cw = target.client("cloudwatch", region) if hasattr(target, "client") else target
    now = time.time() if now is None else now
    if isinstance(value, dict):
        series = list(value.items())
    elif callable(value):
        series = [(d, value(d)) for d in range(days)]
    else:
        series = [(d, value) for d in range(days)]
    data = [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": "InstanceId", "Value": iid}],
            "Timestamp": stamp(d, now),
            "Value": v,
        }
        for iid in instance_ids
        for d, v in series
    ]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=data[i : i + 500])


@dataclass
class Group:
    count: int
    tokens: str = "optional"
    endpoint: str = "enabled"
    hop: int = 1
    tags: dict = field(default_factory=dict)
    profile: str | None = None  # "web" or "batch"
    stopped: bool = False
    container: bool = False


ROLES = {"web": ("web-profile", "/", "web-role"), "batch": ("batch-profile", "/apps/", "batch-role")}

SPEC: dict[str, list[Group]] = {
    "us-east-1": [
        Group(8, "required", hop=2, tags={"Name": "web", "owner": "alice", "env": "prod"}, profile="web"),
        Group(6, "optional", tags={"Name": "batch", "Owner": "bob", "env": "prod"}, profile="batch"),
        Group(3, "optional", tags={"OWNER": "carol"}, stopped=True),
        Group(2, "optional", endpoint="disabled", tags={"env": "dev"}),
        Group(4, "optional", tags={"eks:cluster-name": "prod", "owner": "platform"}, profile="web", container=True),
        Group(2, "required", hop=2, tags={"kubernetes.io/cluster/prod": "owned"}, container=True),
    ],
    "eu-west-1": [
        Group(10, "required", tags={"Name": "api", "env": "prod", "team": "api"}),
        Group(5, "optional", tags={"env": "prod", "team": "web", "owner": "dave"}, profile="batch"),
        Group(3, "optional", tags={"env": "dev"}),
        Group(2, "optional", tags={"env": "dev"}, stopped=True),
    ],
    "ap-southeast-2": [
        Group(6, "required", endpoint="disabled"),
        Group(6, "optional", hop=3, tags={"owner": "erin", "aws:autoscaling:groupName": "asg-erin"}),
        Group(6, "required", tags={"aws:ecs:clusterName": "jobs"}, profile="web", container=True),
    ],
}


@dataclass
class Seeded:
    """What was created: instance id -> (region, group)."""

    instances: dict[str, tuple[str, Group]]

    def in_region(self, region: str) -> list[str]:
        return [i for i, (r, _) in self.instances.items() if r == region]

    def expected_counts(self, region: str) -> dict:
        groups = [g for r, g in self.instances.values() if r == region]
        n = len(groups)
        disabled = sum(1 for g in groups if g.endpoint == "disabled")
        required = sum(1 for g in groups if g.endpoint == "enabled" and g.tokens == "required")
        optional = n - disabled - required
        pct = lambda x: round(x * 1000 / n) / 10 if n else None  # noqa: E731
        return {
            "instances": n,
            "required": required,
            "optional": optional,
            "disabled": disabled,
            "percent_enforced": pct(required),
            "percent_protected": pct(required + disabled),
        }


def owner_of(g: Group) -> str | None:
    for k, v in g.tags.items():
        if k.lower() == "owner":
            return v
    return None


def role_of(g: Group) -> str | None:
    return ROLES[g.profile][2] if g.profile else None


def seed(account, spec: dict[str, list[Group]] | None = None) -> Seeded:
    spec = spec or SPEC
    iam = account.client("iam")
    arns = {}
    for key, (profile, path, role) in ROLES.items():
        iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        arns[key] = iam.create_instance_profile(InstanceProfileName=profile, Path=path)["InstanceProfile"]["Arn"]
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    # A profile nobody uses, and one without a role: the join must not trip on either.
    iam.create_instance_profile(InstanceProfileName="unused-profile")
    created: dict[str, tuple[str, Group]] = {}
    for region, groups in spec.items():
        ec2 = account.client("ec2", region)
        for g in groups:
            profile = arns[g.profile] if g.profile else None
            ids = launch(ec2, g.count, g.tokens, g.endpoint, g.hop, g.tags, profile=profile)
            if g.stopped:
                ec2.stop_instances(InstanceIds=ids)
            for i in ids:
                created[i] = (region, g)
    return Seeded(created)
