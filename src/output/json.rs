//! JSON output, schema `imdsguard/v1`.
//!
//! These types are the contract with users' scripts: they are separate from
//! the engine's so internals can change freely. Change them only by adding
//! fields, or by bumping the schema version (README: JSON, schema `imdsguard/v1`).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::readiness::{Readiness, Usage};
use crate::report::{InstanceRecord, RegionSummary, ScanReport};

pub const SCHEMA: &str = "imdsguard/v1";

#[derive(Serialize)]
pub struct ScanDoc<'a> {
    pub schema: &'static str,
    pub kind: &'static str,
    pub scan: ScanMeta<'a>,
    pub summary: Summary,
    pub instances: Instances<'a>,
    pub failures: Vec<FailureV1<'a>>,
    pub warnings: &'a [String],
    /// Added in v1 without a version bump: fields are only ever added.
    pub findings: &'a [crate::findings::Finding],
    /// Where new instances come from (added in v1).
    pub sources: SourcesV1<'a>,
}

/// The sources of new instances, each row with its ARN and whether the
/// next launch from it allows IMDSv1.
#[derive(Serialize)]
pub struct SourcesV1<'a> {
    pub launch_templates: Vec<Flagged<'a, crate::sources::TemplateSource>>,
    pub auto_scaling_groups: Vec<Flagged<'a, crate::sources::GroupSource>>,
    pub account_defaults: Vec<Flagged<'a, crate::sources::DefaultsSource>>,
    pub images: Vec<Flagged<'a, crate::sources::ImageSource>>,
}

#[derive(Serialize)]
pub struct Flagged<'a, T> {
    pub arn: String,
    pub allows_v1: bool,
    #[serde(flatten)]
    pub row: &'a T,
}

impl<'a> SourcesV1<'a> {
    pub fn new(s: &'a crate::sources::Sources) -> SourcesV1<'a> {
        SourcesV1 {
            launch_templates: s
                .templates
                .iter()
                .map(|row| Flagged {
                    arn: row.arn(),
                    allows_v1: row.allows_v1(),
                    row,
                })
                .collect(),
            auto_scaling_groups: s
                .groups
                .iter()
                .map(|row| Flagged {
                    arn: row.arn(),
                    allows_v1: row.allows_v1(),
                    row,
                })
                .collect(),
            account_defaults: s
                .defaults
                .iter()
                .map(|row| Flagged {
                    arn: row.arn(),
                    allows_v1: !row.requires_v2(),
                    row,
                })
                .collect(),
            images: s
                .images
                .iter()
                .map(|row| Flagged {
                    arn: row.arn(),
                    allows_v1: true,
                    row,
                })
                .collect(),
        }
    }
}

/// The instance records, serialized one at a time as they are written:
/// a 100,000-instance scan never holds a second copy of itself.
pub struct Instances<'a>(pub &'a [InstanceRecord]);

impl Serialize for Instances<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(InstanceV1::new))
    }
}

#[derive(Serialize)]
pub struct ScanMeta<'a> {
    pub id: Option<i64>,
    pub started_at: &'a str,
    pub finished_at: &'a str,
    pub usage_days: Option<u32>,
    pub identities: Vec<Identity<'a>>,
    pub complete: bool,
}

#[derive(Serialize)]
pub struct Identity<'a> {
    pub account_id: &'a str,
    pub arn: &'a str,
}

#[derive(Serialize)]
pub struct Summary {
    pub total: Counts,
    pub regions: Vec<Counts>,
}

#[derive(Serialize)]
pub struct Counts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub instances: u64,
    pub required: u64,
    pub optional: u64,
    pub disabled: u64,
    pub percent_enforced: Option<f64>,
    pub percent_protected: Option<f64>,
    pub readiness: BTreeMap<&'static str, u64>,
    pub complete: bool,
}

impl Counts {
    fn new(s: &RegionSummary, total: bool) -> Counts {
        Counts {
            account_id: (!total).then(|| s.account_id.clone()),
            region: (!total).then(|| s.region.clone()),
            instances: s.instances,
            required: s.required,
            optional: s.optional,
            disabled: s.disabled,
            percent_enforced: s.percent_enforced(),
            percent_protected: s.percent_protected(),
            readiness: Readiness::ALL
                .iter()
                .map(|r| r.as_str())
                .zip(s.verdicts)
                .collect(),
            complete: s.complete,
        }
    }
}

#[derive(Serialize)]
pub struct InstanceV1<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    pub instance_id: &'a str,
    pub name: Option<&'a str>,
    pub state: &'a str,
    pub launch_time: Option<&'a str>,
    pub image_id: Option<&'a str>,
    pub http_tokens: Option<&'static str>,
    pub http_endpoint: Option<&'static str>,
    pub hop_limit: Option<i32>,
    pub instance_metadata_tags: Option<&'static str>,
    pub http_protocol_ipv6: Option<&'static str>,
    pub metadata_state: Option<&'static str>,
    pub allows_v1: bool,
    pub instance_profile_arn: Option<&'a str>,
    pub role_name: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
    pub asg_name: Option<&'a str>,
    pub cloudformation_stack: Option<&'a str>,
    pub launch_template: Option<&'a str>,
    pub container_host: bool,
    pub container_reason: Option<&'a str>,
    pub usage: Option<&'a Usage>,
    pub readiness: &'static str,
    pub reason: &'a str,
}

impl<'a> InstanceV1<'a> {
    pub fn new(r: &'a InstanceRecord) -> Self {
        let i = &r.instance;
        let m = &i.metadata;
        InstanceV1 {
            account_id: &r.account_id,
            region: &r.region,
            instance_id: &i.instance_id,
            name: i.name(),
            state: i.state.as_str(),
            launch_time: i.launch_time.as_deref(),
            image_id: i.image_id.as_deref(),
            http_tokens: m.http_tokens.map(|t| t.as_str()),
            http_endpoint: m.http_endpoint.map(|t| t.as_str()),
            hop_limit: m.hop_limit,
            instance_metadata_tags: m.instance_metadata_tags.map(|t| t.as_str()),
            http_protocol_ipv6: m.http_protocol_ipv6.map(|t| t.as_str()),
            metadata_state: m.state.map(|s| s.as_str()),
            allows_v1: m.allows_v1(),
            instance_profile_arn: i.instance_profile_arn.as_deref(),
            role_name: r.role_name.as_deref(),
            owner: r.owner.as_deref(),
            tags: &i.tags,
            asg_name: r.asg_name.as_deref(),
            cloudformation_stack: r.cfn_stack.as_deref(),
            launch_template: r.launch_template.as_deref(),
            container_host: r.container_host,
            container_reason: r.container_reason.as_deref(),
            usage: r.usage.as_ref(),
            readiness: r.readiness.as_str(),
            reason: &r.reason,
        }
    }
}

#[derive(Serialize)]
pub struct FailureV1<'a> {
    pub account_id: Option<&'a str>,
    pub region: Option<&'a str>,
    pub operation: &'a str,
    pub code: Option<&'a str>,
    pub message: String,
    pub hint: String,
}

pub fn document<'a>(
    report: &'a ScanReport,
    findings: &'a [crate::findings::Finding],
) -> ScanDoc<'a> {
    ScanDoc {
        schema: SCHEMA,
        kind: "scan",
        scan: ScanMeta {
            id: report.id,
            started_at: &report.started_at,
            finished_at: &report.finished_at,
            usage_days: report.usage_days,
            identities: report
                .identities
                .iter()
                .map(|(account_id, arn)| Identity { account_id, arn })
                .collect(),
            complete: report.failures.is_empty(),
        },
        summary: Summary {
            total: Counts::new(&report.total(), true),
            regions: report
                .regions
                .iter()
                .map(|r| Counts::new(r, false))
                .collect(),
        },
        instances: Instances(&report.instances),
        failures: report
            .failures
            .iter()
            .map(|f| FailureV1 {
                account_id: f.account_id.as_deref(),
                region: f.region.as_deref(),
                operation: f.error.operation.as_str(),
                code: f.error.code.as_deref(),
                message: f.error.to_string(),
                hint: f.error.hint(),
            })
            .collect(),
        warnings: &report.warnings,
        findings,
        sources: SourcesV1::new(&report.sources),
    }
}

pub fn render(
    report: &ScanReport,
    findings: &[crate::findings::Finding],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(report, findings))?;
    writeln!(out)
}
