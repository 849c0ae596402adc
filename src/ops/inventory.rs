//! What the next instance launched will get, per account and region: the
//! account-level IMDS defaults (`defaults show`) and the launch templates
//! whose default version brings IMDSv1 back (`templates show`, Security Hub
//! EC2.170). Typed rows; failures per account and region.

use std::collections::BTreeMap;

use serde::Serialize;

use super::OpsError;
use super::fleet::{Session, Target, each_region};
use crate::aws::{AwsError, Ec2Api, MetadataDefaults, TemplateVersion};
use crate::model::{HttpTokens, Toggle};
use crate::report::Failure;

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

/// One launch template: its default version's settings, and whether its
/// default and latest versions allow IMDSv1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRow {
    pub account_id: String,
    pub region: String,
    pub template_id: String,
    pub name: Option<String>,
    pub default_version: i64,
    pub latest_version: Option<i64>,
    pub http_tokens: Option<HttpTokens>,
    pub http_endpoint: Option<Toggle>,
    pub hop_limit: Option<i32>,
    pub allows_v1: bool,
    pub latest_allows_v1: bool,
}

/// The `$Default` and `$Latest` versions of every launch template in every
/// region of every target (one listing per region).
pub async fn templates(
    session: &Session,
    targets: &[Target],
) -> Result<Listing<TemplateRow>, OpsError> {
    let v = each_region(session, targets, |apis, region| async move {
        list(apis.ec2.as_ref(), &region).await
    })
    .await?;
    let rows = v
        .answers
        .into_iter()
        .flat_map(|(account, region, versions)| summarize(&account, &region, versions))
        .collect();
    Ok(Listing {
        rows,
        failures: v.failures,
        warnings: v.warnings,
    })
}

async fn list(ec2: &dyn Ec2Api, region: &str) -> Result<Vec<TemplateVersion>, AwsError> {
    crate::aws::all_pages(|token| async move {
        let page = ec2.template_versions(region, token).await?;
        Ok((page.versions, page.next_token))
    })
    .await
}

/// A version allows IMDSv1 unless it requires tokens (unset inherits the
/// AMI's or the account's default, which is not a guarantee).
fn allows_v1(v: &TemplateVersion) -> bool {
    v.http_tokens != Some(HttpTokens::Required) && v.http_endpoint != Some(Toggle::Disabled)
}

/// One row per template: its default version's settings, and whether its
/// latest allows v1.
fn summarize(account: &str, region: &str, versions: Vec<TemplateVersion>) -> Vec<TemplateRow> {
    let mut by_template: BTreeMap<String, (Option<TemplateVersion>, Option<TemplateVersion>)> =
        BTreeMap::new();
    for v in versions {
        let entry = by_template.entry(v.template_id.clone()).or_default();
        if v.is_default {
            entry.0 = Some(v.clone());
        }
        if entry.1.as_ref().is_none_or(|l| v.version > l.version) {
            entry.1 = Some(v);
        }
    }
    by_template
        .into_iter()
        .filter_map(|(id, (default, latest))| {
            let d = default.or_else(|| latest.clone())?;
            Some(TemplateRow {
                account_id: account.to_owned(),
                region: region.to_owned(),
                template_id: id,
                name: d.template_name.clone(),
                default_version: d.version,
                latest_version: latest.as_ref().map(|l| l.version),
                http_tokens: d.http_tokens,
                http_endpoint: d.http_endpoint,
                hop_limit: d.hop_limit,
                allows_v1: allows_v1(&d),
                latest_allows_v1: latest.as_ref().is_some_and(allows_v1),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, version: i64, default: bool, tokens: Option<HttpTokens>) -> TemplateVersion {
        TemplateVersion {
            template_id: id.into(),
            template_name: Some(format!("{id}-name")),
            version,
            is_default: default,
            http_tokens: tokens,
            http_endpoint: None,
            hop_limit: None,
            image_id: None,
        }
    }

    #[test]
    fn default_and_latest_per_template() {
        let rows = summarize(
            "1",
            "r",
            vec![
                v("lt-a", 1, true, Some(HttpTokens::Required)),
                v("lt-a", 3, false, None),
                v("lt-b", 2, true, None),
                v("lt-b", 2, true, None),
            ],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].default_version, rows[0].latest_version),
            (1, Some(3))
        );
        assert_eq!((rows[0].allows_v1, rows[0].latest_allows_v1), (false, true));
        assert!(rows[1].allows_v1, "unset tokens: not a guarantee");
    }
}
