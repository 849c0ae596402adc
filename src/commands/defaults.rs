//! `imdsguard defaults show`: the account-level IMDS defaults of every
//! selected account and region (`GetInstanceMetadataDefaults`), which decide
//! whether the next instance launched there allows IMDSv1.

use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::commands::accounts::{account_regions, print_failures, scan_targets};
use crate::commands::emit;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output::{self, rows::Rows};
use crate::report::Failure;
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
    let mut failures: Vec<Failure> = Vec::new();
    for t in &targets {
        let (account, regions) = match account_regions(global, t).await {
            Ok(x) => x,
            Err(f) => {
                failures.push(f);
                continue;
            }
        };
        let answers: Vec<_> = stream::iter(regions)
            .map(|region| async move {
                let d = t.apis.ec2.metadata_defaults(&region).await;
                (region, d)
            })
            .buffered(global.concurrency.max(1))
            .collect()
            .await;
        for (region, answer) in answers {
            match answer {
                Ok(d) => {
                    let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
                    rows.rows.push(vec![
                        Value::from(account.clone()),
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
                Err(error) => failures.push(Failure {
                    account_id: Some(account.clone()),
                    region: Some(region),
                    error,
                }),
            }
        }
    }
    emit(global.out.as_deref(), |w| {
        output::rows::render("defaults", &rows, global.format, global.stdout_style, w)
    })?;
    print_failures(global, &failures);
    Ok(if failures.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}
