//! `imdsv1-allowed`: the instance answers IMDSv1 (CIS AWS 5.6, Security Hub EC2.8).
//! High when an instance role is attached: an SSRF then yields its credentials.

use super::{Check, Finding, Rule, Severity};
use crate::report::InstanceRecord;

static RULE: Rule = Rule {
    id: "imdsv1-allowed",
    title: "Instance allows IMDSv1",
    description: "The instance metadata service answers plain IMDSv1 requests (HttpTokens=optional): \
                  one SSRF bug in software on the instance can read its metadata and role credentials.",
    remediation: "Enforce IMDSv2 (HttpTokens=required) once the instance makes no IMDSv1 calls: \
                  `imdsguard plan --action require-v2`.",
    docs: "docs/findings.md#imdsv1-allowed",
    references: &["CIS AWS Foundations 5.6", "AWS Security Hub EC2.8"],
    default_severity: Severity::High,
};

pub struct V1Allowed;

impl Check for V1Allowed {
    fn rule(&self) -> &'static Rule {
        &RULE
    }

    fn instance(&self, r: &InstanceRecord) -> Option<Finding> {
        if !r.instance.metadata.allows_v1() {
            return None;
        }
        let (severity, message) = match &r.role_name {
            Some(role) => (
                Severity::High,
                format!(
                    "{} allows IMDSv1 and exposes the credentials of role {role} ({})",
                    r.instance.instance_id, r.reason
                ),
            ),
            None => (
                Severity::Medium,
                format!("{} allows IMDSv1 ({})", r.instance.instance_id, r.reason),
            ),
        };
        Some(Finding::for_instance(&RULE, r, severity, message))
    }
}
