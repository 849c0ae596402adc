//! `imdsguard defaults show`: the account-level IMDS defaults of every
//! selected account and region (`GetInstanceMetadataDefaults`), which decide
//! whether the next instance launched there allows IMDSv1.

use serde_json::Value;

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
            "http_tokens",
            "http_tokens_enforced",
            "hop_limit",
            "http_endpoint",
            "instance_metadata_tags",
            "managed_by",
            "allows_v1_by_default",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: Vec::new(),
    };
    let (answers, failures) = each_region(global, &targets, |apis, region| async move {
        apis.ec2.metadata_defaults(&region).await
    })
    .await?;
    let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
    for (account, region, d) in answers {
        rows.rows.push(vec![
            Value::from(account),
            Value::from(region),
            opt(&d.http_tokens),
            opt(&d.http_tokens_enforced),
            d.hop_limit.map_or(Value::Null, Value::from),
            opt(&d.http_endpoint),
            opt(&d.instance_metadata_tags),
            opt(&d.managed_by),
            // Without an account default, new instances follow the AMI
            // (ImdsSupport v2.0) or EC2's default, which allows v1.
            Value::from(d.http_tokens.as_deref() != Some("required")),
        ]);
    }
    finish_rows(global, "defaults", &rows, &failures)
}
