//! `imdsv1-in-use`: the instance made IMDSv1 calls in the usage window, so
//! enforcing IMDSv2 now would break the software making them.

use super::{Check, Finding, Rule, Severity};
use crate::readiness::Readiness;
use crate::report::InstanceRecord;

static RULE: Rule = Rule {
    id: "imdsv1-in-use",
    title: "Instance uses IMDSv1",
    description: "CloudWatch MetadataNoToken shows IMDSv1 calls from this instance in the window: \
                  enforcing IMDSv2 before that software is updated will break it.",
    remediation: "Find the caller (old AWS SDKs and CLIs, custom scripts, agents) and upgrade it to an \
                  IMDSv2-capable version; then enforce IMDSv2.",
    docs: "docs/findings.md#imdsv1-in-use",
    references: &["CIS AWS Foundations 5.6"],
    default_severity: Severity::Medium,
};

pub struct V1InUse;

impl Check for V1InUse {
    fn rule(&self) -> &'static Rule {
        &RULE
    }

    fn instance(&self, r: &InstanceRecord) -> Option<Finding> {
        super::on_verdict(&RULE, r, Readiness::InUse)
    }
}
