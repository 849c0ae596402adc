//! `imdsv1-refused`: IMDSv2 is enforced but something on the instance still
//! tries IMDSv1 and is refused (`MetadataNoTokenRejected` > 0): it is broken.

use super::{Check, Finding, Rule, Severity};
use crate::readiness::Readiness;
use crate::report::InstanceRecord;

static RULE: Rule = Rule {
    id: "imdsv1-refused",
    title: "Enforced instance refuses IMDSv1 calls",
    description: "IMDSv2 is required on this instance and CloudWatch MetadataNoTokenRejected shows refused \
                  IMDSv1 calls: some software on it fails to get metadata or credentials.",
    remediation: "Upgrade the software making IMDSv1 calls; if it cannot be fixed quickly, roll back with \
                  `imdsguard rollback RUN` and fix it first.",
    docs: "docs/findings.md#imdsv1-refused",
    references: &[],
    default_severity: Severity::Medium,
};

pub struct V1Refused;

impl Check for V1Refused {
    fn rule(&self) -> &'static Rule {
        &RULE
    }

    fn instance(&self, r: &InstanceRecord) -> Option<Finding> {
        super::on_verdict(&RULE, r, Readiness::RejectingV1)
    }
}
