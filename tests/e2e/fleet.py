"""Seeds a realistic mixed fleet into one moto account and says what a scan
of it must report. Expectations are derived from the same spec that seeds
the fleet, group by group, never typed in by hand."""

from __future__ import annotations

from dataclasses import dataclass, field

AMI = "ami-12c6146b"  # one of moto's built-in images
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


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
            kwargs = dict(
                ImageId=AMI,
                MinCount=g.count,
                MaxCount=g.count,
                MetadataOptions={
                    "HttpTokens": g.tokens,
                    "HttpEndpoint": g.endpoint,
                    "HttpPutResponseHopLimit": g.hop,
                },
            )
            if g.tags:
                kwargs["TagSpecifications"] = [
                    {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in g.tags.items()]}
                ]
            if g.profile:
                kwargs["IamInstanceProfile"] = {"Arn": arns[g.profile]}
            ids = []
            if g.profile:
                # moto attaches the profile only to the first instance of a
                # multi-instance launch: launch these one by one.
                kwargs.update(MinCount=1, MaxCount=1)
                for _ in range(g.count):
                    ids += [i["InstanceId"] for i in ec2.run_instances(**kwargs)["Instances"]]
            else:
                ids = [i["InstanceId"] for i in ec2.run_instances(**kwargs)["Instances"]]
            if g.stopped:
                ec2.stop_instances(InstanceIds=ids)
            for i in ids:
                created[i] = (region, g)
    return Seeded(created)
