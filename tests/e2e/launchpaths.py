"""A seeded set of launch paths in moto (templates, Auto Scaling groups,
launch configurations) and the proxy hooks for what moto cannot serve:
`GetInstanceMetadataDefaults` (moto answers 500), `ModifyInstanceMetadataDefaults`
(absent) and an AMI's `ImdsSupport` (moto never returns it). The hooks keep
the account defaults in memory per region, as EC2 would, so a `defaults set`
and its rollback can be read back through the real SDK client."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import fleet
from awsproxy import Reply

REGION = "eu-west-1"
# One of moto's built-in images, which the proxy reports with ImdsSupport=v2.0.
AMI_V2 = "ami-03cf127a"


def _xml(action: str, inner: str) -> bytes:
    return (
        f'<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>r-1</requestId>{inner}</{action}Response>"
    ).encode()


@dataclass
class Ec2Extras:
    """Answers the EC2 calls moto lacks. `defaults` maps region -> the
    account-level fields (XML element name -> value); `modified` records
    every ModifyInstanceMetadataDefaults's parameters."""

    defaults: dict[str, dict[str, str]] = field(default_factory=dict)
    modified: list[dict] = field(default_factory=list)
    v2_images: set[str] = field(default_factory=lambda: {AMI_V2})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, req):
        if req.action == "GetInstanceMetadataDefaults":
            with self.lock:
                level = self.defaults.get(req.region, {})
                inner = "".join(f"<{k}>{v}</{k}>" for k, v in level.items())
            return Reply(200, _xml("GetInstanceMetadataDefaults", f"<accountLevel>{inner}</accountLevel>"),
                         {"Content-Type": "text/xml"})
        if req.action == "ModifyInstanceMetadataDefaults":
            p = req.params
            with self.lock:
                self.modified.append(dict(p))
                level = self.defaults.setdefault(req.region, {})
                if level.get("managedBy") == "declarative-policy":
                    return Reply(400, (
                        "<Response><Errors><Error><Code>InvalidOperation</Code><Message>The account-level "
                        "defaults are managed by a declarative policy</Message></Error></Errors>"
                        "<RequestID>r-2</RequestID></Response>").encode(), {"Content-Type": "text/xml"})
                for param, element in (("HttpTokens", "httpTokens"), ("HttpEndpoint", "httpEndpoint"),
                                       ("InstanceMetadataTags", "instanceMetadataTags"),
                                       ("HttpTokensEnforced", "httpTokensEnforced")):
                    if param in p:
                        if p[param] == "no-preference":
                            level.pop(element, None)
                        else:
                            level[element] = p[param]
                if "HttpPutResponseHopLimit" in p:
                    if p["HttpPutResponseHopLimit"] == "-1":
                        level.pop("httpPutResponseHopLimit", None)
                    else:
                        level["httpPutResponseHopLimit"] = p["HttpPutResponseHopLimit"]
            return Reply(200, _xml("ModifyInstanceMetadataDefaults", "<return>true</return>"),
                         {"Content-Type": "text/xml"})
        return None

    def after(self, req, reply):
        """Adds `imdsSupport` to the images EC2 would report it for."""
        if req.action != "DescribeImages" or reply.status != 200:
            return None
        body = reply.body.decode()
        for image in self.v2_images:
            body = re.sub(rf"(<imageId>{image}</imageId>)", r"\1<imdsSupport>v2.0</imdsSupport>", body)
        return Reply(reply.status, body.encode(), reply.headers)


@dataclass
class Seeded:
    templates: dict[str, str]  # name -> id
    groups: list[str]
    instance_v1: str  # an instance on fleet.AMI that allows v1
    instance_v1_on_v2_ami: str


def seed(account) -> Seeded:
    """Templates, groups and two instances in REGION:

    templates  good (required) · unset (nothing set, AMI without support) ·
               unset-v2ami (nothing set, AMI with ImdsSupport=v2.0) ·
               optional · mixed (v1 required = default, v2 optional = latest) ·
               multi (v1 optional, v2 required = default = latest)
    groups     g-default → unset $Default          (allows v1)
               g-pinned  → mixed 1                  (required)
               g-latest  → mixed $Latest           (allows v1)
               g-old     → multi 1, an older pin   (allows v1; one more listing)
               g-lc      → launch configuration without metadata options (allows v1)
               g-lc2     → launch configuration with HttpTokens=required
    """
    ec2 = account.client("ec2", REGION)
    asg = account.client("autoscaling", REGION)

    def template(name, metadata=None, ami=fleet.AMI):
        data = {"ImageId": ami, "InstanceType": "t3.micro"}
        if metadata:
            data["MetadataOptions"] = metadata
        return ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)["LaunchTemplate"][
            "LaunchTemplateId"]

    t = {
        "good": template("good", {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}),
        "unset": template("unset"),
        "unset-v2ami": template("unset-v2ami", ami=AMI_V2),
        "optional": template("optional", {"HttpTokens": "optional"}),
        "mixed": template("mixed", {"HttpTokens": "required"}),
        "multi": template("multi", {"HttpTokens": "optional"}),
    }
    ec2.create_launch_template_version(
        LaunchTemplateId=t["mixed"],
        LaunchTemplateData={"ImageId": fleet.AMI, "MetadataOptions": {"HttpTokens": "optional"}})
    ec2.create_launch_template_version(
        LaunchTemplateId=t["multi"],
        LaunchTemplateData={"ImageId": fleet.AMI, "MetadataOptions": {"HttpTokens": "required"}})
    ec2.modify_launch_template(LaunchTemplateId=t["multi"], DefaultVersion="2")

    asg.create_launch_configuration(LaunchConfigurationName="lc-plain", ImageId=fleet.AMI, InstanceType="t3.micro",
                                    UserData="ZWNobyBzZWNyZXQ=")
    asg.create_launch_configuration(LaunchConfigurationName="lc-required", ImageId=fleet.AMI,
                                    InstanceType="t3.micro", MetadataOptions={"HttpTokens": "required"})

    def group(name, **launch):
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2, DesiredCapacity=0,
                                      AvailabilityZones=[f"{REGION}a"], **launch)

    group("g-default", LaunchTemplate={"LaunchTemplateId": t["unset"], "Version": "$Default"})
    group("g-pinned", LaunchTemplate={"LaunchTemplateId": t["mixed"], "Version": "1"})
    group("g-latest", LaunchTemplate={"LaunchTemplateName": "mixed", "Version": "$Latest"})
    group("g-old", LaunchTemplate={"LaunchTemplateId": t["multi"], "Version": "1"})
    group("g-lc", LaunchConfigurationName="lc-plain")
    group("g-lc2", LaunchConfigurationName="lc-required")

    [v1] = fleet.launch(ec2, 1)
    [v1_v2ami] = ec2.run_instances(ImageId=AMI_V2, MinCount=1, MaxCount=1,
                                   MetadataOptions={"HttpTokens": "optional"})["Instances"][0:1]
    return Seeded(t, ["g-default", "g-pinned", "g-latest", "g-old", "g-lc", "g-lc2"], v1,
                  v1_v2ami["InstanceId"])
