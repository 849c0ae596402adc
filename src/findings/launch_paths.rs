//! The source checks: what brings IMDSv1 back after today's instances are
//! fixed. A launch template whose default or latest version launches
//! instances that allow v1 (Security Hub EC2.170), an Auto Scaling group
//! whose next launch allows v1 (Security Hub AutoScaling.3, launch
//! configurations included), a region whose account default does not
//! require IMDSv2, and (informational) AMIs without `ImdsSupport=v2.0`
//! behind instances that allow v1. Each message names the level that
//! decided (see `launch::resolve`).

use super::{Check, Finding, Rule, Severity};
use crate::sources::{GroupLaunch, Sources};

static TEMPLATE: Rule = Rule {
    id: "launch-template-allows-v1",
    title: "Launch template launches instances that allow IMDSv1",
    description: "The launch template's default or latest version resolves to HttpTokens=optional \
                  (set in the version, or left unset with no account default or AMI to require \
                  IMDSv2): every instance launched from it allows IMDSv1 again.",
    remediation: "Create a version that requires IMDSv2 and make it the default: \
                  `imdsguard templates fix --template lt-...`.",
    docs: "docs/findings.md#launch-template-allows-v1",
    references: &["AWS Security Hub EC2.170"],
    default_severity: Severity::Medium,
};

static GROUP: Rule = Rule {
    id: "asg-launches-v1",
    title: "Auto Scaling group launches instances that allow IMDSv1",
    description: "The next instance the group launches (from its launch template version, mixed \
                  instances overrides or launch configuration) allows IMDSv1: instances fixed in \
                  place are replaced by ones that allow it again.",
    remediation: "Point the group at a launch template version that requires IMDSv2 \
                  (`imdsguard asg fix --group NAME`, or `imdsguard templates fix` for groups \
                  that follow $Default or $Latest).",
    docs: "docs/findings.md#asg-launches-v1",
    references: &["AWS Security Hub AutoScaling.3"],
    default_severity: Severity::Medium,
};

static DEFAULTS: Rule = Rule {
    id: "account-default-allows-v1",
    title: "Region's account default does not require IMDSv2",
    description: "The account-level instance metadata default of the region does not set \
                  HttpTokens=required: any launch that leaves it unset (and whose AMI lacks \
                  ImdsSupport=v2.0) allows IMDSv1.",
    remediation: "Set the account default: `imdsguard defaults set --http-tokens required` \
                  (or attach an EC2 declarative policy: `imdsguard policy declarative`).",
    docs: "docs/findings.md#account-default-allows-v1",
    references: &["AWS EC2 ModifyInstanceMetadataDefaults"],
    default_severity: Severity::Low,
};

static IMAGE: Rule = Rule {
    id: "ami-without-imdsv2-support",
    title: "AMI without ImdsSupport=v2.0 behind instances that allow IMDSv1",
    description: "Instances that allow IMDSv1 run an AMI not registered with ImdsSupport=v2.0. \
                  Informational: an AMI flag only decides when nothing above it does, but \
                  registering the next image with it makes IMDSv2 the default for its launches.",
    remediation: "Register new images with `--imds-support v2.0` (`aws ec2 register-image`) \
                  once their software uses IMDSv2.",
    docs: "docs/findings.md#ami-without-imdsv2-support",
    references: &[],
    default_severity: Severity::Low,
};

pub struct TemplateAllowsV1;
pub struct GroupLaunchesV1;
pub struct DefaultsAllowV1;
pub struct ImageWithoutV2;

impl Check for TemplateAllowsV1 {
    fn rule(&self) -> &'static Rule {
        &TEMPLATE
    }

    fn sources(&self, s: &Sources) -> Vec<Finding> {
        s.templates
            .iter()
            .filter(|t| t.allows_v1())
            .map(|t| {
                let which = match (t.default_next.allows_v1(), t.latest_next.allows_v1()) {
                    (true, true) if t.default_version == t.latest_version => {
                        format!("default version {}", t.default_version)
                    }
                    (true, true) => format!(
                        "default version {} and latest version {}",
                        t.default_version, t.latest_version
                    ),
                    (true, false) => format!("default version {}", t.default_version),
                    _ => format!("latest version {}", t.latest_version),
                };
                let explanation = if t.default_next.allows_v1() {
                    &t.default_next.explanation
                } else {
                    &t.latest_next.explanation
                };
                Finding::for_resource(
                    &TEMPLATE,
                    &t.account_id,
                    &t.region,
                    t.arn(),
                    TEMPLATE.default_severity,
                    format!("{} {which} allows IMDSv1 ({explanation})", t.template_id),
                )
            })
            .collect()
    }
}

impl Check for GroupLaunchesV1 {
    fn rule(&self) -> &'static Rule {
        &GROUP
    }

    fn sources(&self, s: &Sources) -> Vec<Finding> {
        s.groups
            .iter()
            .filter(|g| g.allows_v1())
            .map(|g| {
                let next = g
                    .next
                    .as_ref()
                    .expect("allows_v1 implies a resolved launch");
                let via = match &g.launch {
                    GroupLaunch::Template {
                        template_id, pin, ..
                    } => format!("{template_id} {}", pin.as_api()),
                    GroupLaunch::Configuration { name } => format!("launch configuration {name}"),
                    GroupLaunch::Unknown { detail } => detail.clone(),
                };
                // Running instances that allow v1 make it worse: they are
                // what a refresh from the same launch path would bring back.
                let severity = if g.instances_allowing_v1 > 0 {
                    Severity::High
                } else {
                    GROUP.default_severity
                };
                Finding::for_resource(
                    &GROUP,
                    &g.account_id,
                    &g.region,
                    g.arn(),
                    severity,
                    format!(
                        "group {} launches from {via}: {} ({} of {} instances allow IMDSv1 now)",
                        g.name, next.explanation, g.instances_allowing_v1, g.instances
                    ),
                )
            })
            .collect()
    }
}

impl Check for DefaultsAllowV1 {
    fn rule(&self) -> &'static Rule {
        &DEFAULTS
    }

    fn sources(&self, s: &Sources) -> Vec<Finding> {
        s.defaults
            .iter()
            .filter(|d| !d.requires_v2())
            .map(|d| {
                let by = match d.defaults.managed_by {
                    Some(crate::aws::ManagedBy::DeclarativePolicy) => {
                        " (managed by a declarative policy: change the policy)"
                    }
                    _ => "",
                };
                let tokens = d
                    .defaults
                    .http_tokens
                    .map_or("no preference", |t| t.as_str());
                Finding::for_resource(
                    &DEFAULTS,
                    &d.account_id,
                    &d.region,
                    d.arn(),
                    DEFAULTS.default_severity,
                    format!("account default in {} is HttpTokens={tokens}{by}", d.region),
                )
            })
            .collect()
    }
}

impl Check for ImageWithoutV2 {
    fn rule(&self) -> &'static Rule {
        &IMAGE
    }

    fn sources(&self, s: &Sources) -> Vec<Finding> {
        s.images
            .iter()
            .map(|i| {
                Finding::for_resource(
                    &IMAGE,
                    &i.account_id,
                    &i.region,
                    i.arn(),
                    IMAGE.default_severity,
                    format!(
                        "{} has no ImdsSupport=v2.0 and runs {} instance(s) that allow IMDSv1",
                        i.image_id, i.instances_allowing_v1
                    ),
                )
            })
            .collect()
    }
}
