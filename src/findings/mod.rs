//! Findings: checks in the spirit of zizmor's audits. Each check lives in
//! its own module, implements [`Check`] at the level it needs (only the
//! instance level exists so far), and is listed once in [`REGISTRY`]. A
//! [`Finding`] carries its rule's id, severity, title, docs anchor, the
//! resource and a remediation; renderers (JSON, SARIF) take only findings.

mod container_hop_limit;
mod launch_paths;
mod v1_allowed;
mod v1_in_use;
mod v1_refused;

use serde::Serialize;

use crate::report::{InstanceRecord, ScanReport};

/// How bad it is, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// What a rule is, independent of any resource.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub remediation: &'static str,
    /// Anchor in docs/findings.md.
    pub docs: &'static str,
    /// Benchmarks and controls the rule maps to (CIS, Security Hub).
    pub references: &'static [&'static str],
    pub default_severity: Severity,
}

/// One rule firing on one resource.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub docs: &'static str,
    pub account_id: String,
    pub region: String,
    /// The resource's ARN.
    pub resource: String,
    pub message: String,
    pub remediation: &'static str,
}

impl Finding {
    /// The builder checks that every finding names its rule's resource properly.
    pub fn for_instance(
        rule: &Rule,
        r: &InstanceRecord,
        severity: Severity,
        message: String,
    ) -> Finding {
        Finding::for_resource(
            rule,
            &r.account_id,
            &r.region,
            instance_arn(r),
            severity,
            message,
        )
    }

    /// A finding on a resource that is not an instance (a template, a group,
    /// a region's defaults, an AMI), named by its ARN.
    pub fn for_resource(
        rule: &Rule,
        account_id: &str,
        region: &str,
        resource: String,
        severity: Severity,
        message: String,
    ) -> Finding {
        Finding {
            rule: rule.id,
            severity,
            title: rule.title,
            docs: rule.docs,
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            resource,
            message,
            remediation: rule.remediation,
        }
    }
}

pub fn instance_arn(r: &InstanceRecord) -> String {
    format!(
        "arn:{}:ec2:{}:{}:instance/{}",
        crate::aws::partition(&r.region),
        r.region,
        r.account_id,
        r.instance.instance_id
    )
}

/// The finding of a rule that mirrors one readiness verdict (its reason is the message).
pub fn on_verdict(
    rule: &Rule,
    r: &InstanceRecord,
    verdict: crate::readiness::Readiness,
) -> Option<Finding> {
    (r.readiness == verdict).then(|| {
        Finding::for_instance(
            rule,
            r,
            rule.default_severity,
            format!("{}: {}", r.instance.instance_id, r.reason),
        )
    })
}

/// A check. Hooks default to finding nothing; a check overrides the level it needs.
pub trait Check: Sync {
    fn rule(&self) -> &'static Rule;
    fn instance(&self, _r: &InstanceRecord) -> Option<Finding> {
        None
    }
    /// Findings over the sources of new instances (templates, groups, ...).
    fn sources(&self, _s: &crate::sources::Sources) -> Vec<Finding> {
        Vec::new()
    }
}

/// Every check, in a stable order (SARIF rule indexes follow it).
pub static REGISTRY: &[&dyn Check] = &[
    &v1_allowed::V1Allowed,
    &v1_in_use::V1InUse,
    &v1_refused::V1Refused,
    &container_hop_limit::ContainerHopLimit,
    &launch_paths::TemplateAllowsV1,
    &launch_paths::GroupLaunchesV1,
    &launch_paths::DefaultsAllowV1,
    &launch_paths::ImageWithoutV2,
];

/// Runs every check over a scan; most severe first.
pub fn run(report: &ScanReport) -> Vec<Finding> {
    let mut out: Vec<Finding> = report
        .instances
        .iter()
        .flat_map(|r| REGISTRY.iter().filter_map(move |c| c.instance(r)))
        .collect();
    out.extend(REGISTRY.iter().flat_map(|c| c.sources(&report.sources)));
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.resource.cmp(&b.resource))
            .then(a.rule.cmp(b.rule))
    });
    out
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::model::HttpTokens;
    use crate::readiness::{Readiness, Usage};
    use crate::report::InstanceRecord;

    pub fn record(tokens: HttpTokens, readiness: Readiness) -> InstanceRecord {
        let mut r = crate::report::test_support::record(7, tokens, readiness);
        r.region = "eu-west-1".into();
        r.reason = "why".into();
        r
    }

    pub fn usage(v1: u64, rejected: u64) -> Usage {
        Usage {
            window_days: 14,
            v1_calls: v1,
            last_v1_call: None,
            days_with_data: 14,
            rejected_calls: rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{record, usage};
    use super::*;
    use crate::model::{HttpTokens, Toggle};
    use crate::readiness::Readiness;

    #[test]
    fn rule_ids_are_unique_and_documented() {
        let mut ids: Vec<&str> = REGISTRY.iter().map(|c| c.rule().id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), REGISTRY.len());
        let docs = include_str!("../../docs/findings.md");
        for c in REGISTRY {
            assert!(
                docs.contains(&format!("## {}", c.rule().id)),
                "{} undocumented",
                c.rule().id
            );
            assert_eq!(c.rule().docs, format!("docs/findings.md#{}", c.rule().id));
        }
    }

    /// Every check of the registry over one instance: which rules fire, at
    /// which severity. One row per situation that matters.
    #[test]
    fn which_rules_fire_on_which_instance() {
        type Edit = fn(&mut crate::report::InstanceRecord);
        /// (situation, tokens, verdict, what else is true, rules that fire)
        type Case = (
            &'static str,
            HttpTokens,
            Readiness,
            Edit,
            &'static [(&'static str, Severity)],
        );
        let cases: &[Case] = &[
            (
                "v1, no role",
                HttpTokens::Optional,
                Readiness::Unknown,
                |_| {},
                &[("imdsv1-allowed", Severity::Medium)],
            ),
            (
                "v1 with a role",
                HttpTokens::Optional,
                Readiness::Ready,
                |r| r.role_name = Some("web".into()),
                &[("imdsv1-allowed", Severity::High)],
            ),
            (
                "v1 in use",
                HttpTokens::Optional,
                Readiness::InUse,
                |_| {},
                &[
                    ("imdsv1-allowed", Severity::Medium),
                    ("imdsv1-in-use", Severity::Medium),
                ],
            ),
            (
                "endpoint disabled",
                HttpTokens::Optional,
                Readiness::Disabled,
                |r| r.instance.metadata.http_endpoint = Some(Toggle::Disabled),
                &[],
            ),
            (
                "enforced and quiet",
                HttpTokens::Required,
                Readiness::Compliant,
                |_| {},
                &[],
            ),
            (
                "enforced, refusing v1",
                HttpTokens::Required,
                Readiness::RejectingV1,
                |r| r.usage = Some(usage(0, 3)),
                &[("imdsv1-refused", Severity::Medium)],
            ),
            (
                "enforced container host at hop 1",
                HttpTokens::Required,
                Readiness::Compliant,
                |r| r.container_host = true,
                &[("container-hop-limit", Severity::Medium)],
            ),
            (
                "enforced container host at hop 2",
                HttpTokens::Required,
                Readiness::Compliant,
                |r| {
                    r.container_host = true;
                    r.instance.metadata.hop_limit = Some(2);
                },
                &[],
            ),
            // Not enforced yet: imdsv1-allowed covers it.
            (
                "v1 container host",
                HttpTokens::Optional,
                Readiness::Ready,
                |r| r.container_host = true,
                &[("imdsv1-allowed", Severity::Medium)],
            ),
        ];
        for (name, tokens, readiness, edit, want) in cases {
            let mut r = record(*tokens, *readiness);
            edit(&mut r);
            let report = ScanReport {
                instances: vec![r],
                ..Default::default()
            };
            let mut got: Vec<(&str, Severity)> =
                run(&report).iter().map(|f| (f.rule, f.severity)).collect();
            got.sort();
            let mut want = want.to_vec();
            want.sort();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_finding_names_the_role_and_the_instance_arn() {
        let mut r = record(HttpTokens::Optional, Readiness::Ready);
        r.role_name = Some("web".into());
        let id = r.instance.instance_id.clone();
        let f = &run(&ScanReport {
            instances: vec![r],
            ..Default::default()
        })[0];
        assert!(f.message.contains("role web"));
        assert_eq!(
            f.resource,
            format!("arn:aws:ec2:eu-west-1:111122223333:instance/{id}")
        );
    }
}
