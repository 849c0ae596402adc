//! What the next instance launched will get, per account and region: the
//! account-level IMDS defaults (`defaults show`), the launch templates
//! (`templates show`, Security Hub EC2.170) and Auto Scaling groups
//! (`asg show`, AutoScaling.3), each resolved as EC2 would at launch. Typed
//! rows; failures per account and region.

use serde::Serialize;

use super::OpsError;
use super::fleet::{Session, Target, each_region};
use crate::aws::MetadataDefaults;
use crate::launch::Rung;
use crate::model::{HttpTokens, Toggle};
use crate::report::Failure;
use crate::sources::{GroupLaunch, Sources};

/// Rows, and what could not be read.
pub struct Listing<R> {
    pub rows: Vec<R>,
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
}

/// One region's account-level IMDS defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultsRow {
    pub account_id: String,
    pub region: String,
    #[serde(flatten)]
    pub defaults: MetadataDefaults,
    /// Without an account default, new instances follow the AMI
    /// (`ImdsSupport=v2.0`) or EC2's default, which allows v1.
    pub allows_v1_by_default: bool,
}

/// `GetInstanceMetadataDefaults` in every region of every target.
pub async fn defaults(
    session: &Session,
    targets: &[Target],
) -> Result<Listing<DefaultsRow>, OpsError> {
    let v = each_region(session, targets, |apis, region| async move {
        apis.ec2.metadata_defaults(&region).await
    })
    .await?;
    let rows = v
        .answers
        .into_iter()
        .map(|(account_id, region, defaults)| DefaultsRow {
            account_id,
            region,
            allows_v1_by_default: defaults.http_tokens != Some(HttpTokens::Required),
            defaults,
        })
        .collect();
    Ok(Listing {
        rows,
        failures: v.failures,
        warnings: v.warnings,
    })
}

/// One launch template: its default version's settings, and what the next
/// launch from its default and latest versions gets (see `launch::resolve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRow {
    pub account_id: String,
    pub region: String,
    pub template_id: String,
    pub name: Option<String>,
    pub default_version: i64,
    pub latest_version: i64,
    /// What the default version sets itself (`None`: left to lower levels).
    pub http_tokens: Option<HttpTokens>,
    pub http_endpoint: Option<Toggle>,
    pub hop_limit: Option<i32>,
    /// What the next launch from `$Default` gets.
    pub next_http_tokens: HttpTokens,
    /// The level that decided it.
    pub decided_by: Rung,
    pub allows_v1: bool,
    pub latest_allows_v1: bool,
    pub explanation: String,
}

/// One Auto Scaling group and what its next launch gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRow {
    pub account_id: String,
    pub region: String,
    pub name: String,
    /// `lt-... $Default`, `lt-... 3`, `launch configuration NAME`.
    pub launches_from: String,
    pub next_http_tokens: Option<HttpTokens>,
    pub decided_by: Option<Rung>,
    pub allows_v1: bool,
    pub instances: u64,
    pub instances_allowing_v1: u64,
    pub explanation: Option<String>,
}

/// The sources of every region of every target, read now (never a stored
/// scan): what `templates show`, `asg show` and the fix commands act on.
pub async fn read_sources(
    session: &Session,
    targets: &[Target],
) -> Result<Listing<Sources>, OpsError> {
    let v = each_region(session, targets, |apis, region| async move {
        Ok(crate::scan::read_sources(apis, &region, session.region_calls).await)
    })
    .await?;
    let mut all = Sources::default();
    let mut warnings = v.warnings;
    for (account, region, (input, notes)) in v.answers {
        all.extend(crate::sources::assess(&account, &region, &input, &[]));
        warnings.extend(
            notes
                .into_iter()
                .map(|w| format!("{account} {region}: {w}")),
        );
    }
    Ok(Listing {
        rows: vec![all],
        failures: v.failures,
        warnings,
    })
}

/// Every launch template of every region of every target (one listing per
/// region, plus what resolving needs: groups, the account default, AMIs).
pub async fn templates(
    session: &Session,
    targets: &[Target],
) -> Result<Listing<TemplateRow>, OpsError> {
    let read = read_sources(session, targets).await?;
    let rows = read
        .rows
        .into_iter()
        .flat_map(|s| s.templates)
        .map(|t| TemplateRow {
            allows_v1: t.default_next.allows_v1(),
            latest_allows_v1: t.latest_next.allows_v1(),
            next_http_tokens: t.default_next.http_tokens,
            decided_by: t.default_next.decided_by,
            explanation: t.default_next.explanation,
            account_id: t.account_id,
            region: t.region,
            template_id: t.template_id,
            name: t.name,
            default_version: t.default_version,
            latest_version: t.latest_version,
            http_tokens: t.default_options.http_tokens,
            http_endpoint: t.default_options.http_endpoint,
            hop_limit: t.default_options.hop_limit,
        })
        .collect();
    Ok(Listing {
        rows,
        failures: read.failures,
        warnings: read.warnings,
    })
}

/// Every Auto Scaling group of every region of every target.
pub async fn groups(session: &Session, targets: &[Target]) -> Result<Listing<GroupRow>, OpsError> {
    let read = read_sources(session, targets).await?;
    let rows = read
        .rows
        .into_iter()
        .flat_map(|s| s.groups)
        .map(|g| GroupRow {
            launches_from: match &g.launch {
                GroupLaunch::Template {
                    template_id, pin, ..
                } => format!("{template_id} {}", pin.as_api()),
                GroupLaunch::Configuration { name } => format!("launch configuration {name}"),
                GroupLaunch::Unknown { detail } => detail.clone(),
            },
            allows_v1: g.allows_v1(),
            next_http_tokens: g.next.as_ref().map(|n| n.http_tokens),
            decided_by: g.next.as_ref().map(|n| n.decided_by),
            explanation: g.next.map(|n| n.explanation),
            account_id: g.account_id,
            region: g.region,
            name: g.name,
            instances: g.instances,
            instances_allowing_v1: g.instances_allowing_v1,
        })
        .collect();
    Ok(Listing {
        rows,
        failures: read.failures,
        warnings: read.warnings,
    })
}
