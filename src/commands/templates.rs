//! `imdsguard templates show`: the IMDS settings of every launch template's
//! default and latest version. A default version that leaves `HttpTokens`
//! unset or `optional` brings IMDSv1 back with every instance launched from
//! it (Security Hub EC2.170), whatever was fixed on running instances.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::aws::{AwsError, TemplateVersion};
use crate::commands::accounts::{each_region, finish_rows, scan_targets};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output::rows::Rows;
use crate::settings::Global;

pub async fn show(global: &Global) -> Result<ExitCode, Error> {
    let targets = scan_targets(global).await?;
    let mut rows = Rows {
        columns: [
            "account_id",
            "region",
            "template_id",
            "name",
            "default_version",
            "latest_version",
            "http_tokens",
            "http_endpoint",
            "hop_limit",
            "allows_v1",
            "latest_allows_v1",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: Vec::new(),
    };
    let (answers, failures) = each_region(global, &targets, |apis, region| async move {
        list(apis.ec2.as_ref(), &region).await
    })
    .await?;
    for (account, region, versions) in answers {
        rows.rows.extend(summarize(&account, &region, versions));
    }
    finish_rows(global, "templates", &rows, &failures)
}

async fn list(
    ec2: &dyn crate::aws::Ec2Api,
    region: &str,
) -> Result<Vec<TemplateVersion>, AwsError> {
    crate::aws::all_pages(|token| async move {
        let page = ec2.template_versions(region, token).await?;
        Ok((page.versions, page.next_token))
    })
    .await
}

/// A version allows IMDSv1 unless it requires tokens (unset inherits the
/// AMI's or the account's default, which is not a guarantee).
fn allows_v1(v: &TemplateVersion) -> bool {
    v.http_tokens.as_deref() != Some("required") && v.http_endpoint.as_deref() != Some("disabled")
}

/// One row per template: its default version's settings, and whether its latest allows v1.
fn summarize(account: &str, region: &str, versions: Vec<TemplateVersion>) -> Vec<Vec<Value>> {
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
            let opt = |s: &Option<String>| s.clone().map_or(Value::Null, Value::from);
            Some(vec![
                Value::from(account),
                Value::from(region),
                Value::from(id),
                opt(&d.template_name),
                Value::from(d.version),
                latest
                    .as_ref()
                    .map_or(Value::Null, |l| Value::from(l.version)),
                opt(&d.http_tokens),
                opt(&d.http_endpoint),
                d.hop_limit.map_or(Value::Null, Value::from),
                Value::from(allows_v1(&d)),
                Value::from(latest.as_ref().is_some_and(allows_v1)),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, version: i64, default: bool, tokens: Option<&str>) -> TemplateVersion {
        TemplateVersion {
            template_id: id.into(),
            template_name: Some(format!("{id}-name")),
            version,
            is_default: default,
            http_tokens: tokens.map(str::to_owned),
            http_endpoint: None,
            hop_limit: None,
        }
    }

    #[test]
    fn default_and_latest_per_template() {
        let rows = summarize(
            "1",
            "r",
            vec![
                v("lt-a", 1, true, Some("required")),
                v("lt-a", 3, false, None),
                v("lt-b", 2, true, None),
                v("lt-b", 2, true, None),
            ],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][4], Value::from(1));
        assert_eq!(rows[0][5], Value::from(3));
        assert_eq!(
            (rows[0][9].clone(), rows[0][10].clone()),
            (Value::from(false), Value::from(true))
        );
        assert_eq!(
            rows[1][9],
            Value::from(true),
            "unset tokens: not a guarantee"
        );
    }
}
