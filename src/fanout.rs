//! The one fan-out over accounts × regions: which regions of an account to
//! visit (validated as a scan validates them), every account `limit` at a
//! time, and every region under one semaphore shared by all accounts, so
//! `--concurrency` bounds the regions in flight in all. `scan`, `templates`
//! and `defaults` all go through here; results come back in a stable order.

use std::collections::BTreeSet;
use std::future::Future;

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::aws::{AccountApis, AwsError, AwsErrorKind};
use crate::model::RegionInfo;
use crate::progress::Reporter;
use crate::report::Failure;

/// Which regions to visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionRequest {
    /// Every region enabled for the account.
    All,
    /// These, validated against `DescribeRegions`.
    List(Vec<String>),
}

/// Errors that stop the work on an account.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// Who the caller is could not be learned (`GetCallerIdentity`).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The account's regions could not be listed (`DescribeRegions`).
    #[error("{error}")]
    Regions { account_id: String, error: AwsError },
    #[error("unknown region `{name}`")]
    UnknownRegion { name: String, known: Vec<String> },
}

/// One account, identified, and the regions to visit in it.
#[derive(Debug, Default)]
pub struct AccountRegions {
    pub account_id: String,
    pub principal_arn: String,
    pub regions: Vec<String>,
    /// Requested regions the account has not enabled.
    pub failures: Vec<Failure>,
    /// Things worth saying (regions that could not be validated).
    pub warnings: Vec<String>,
}

/// Who the account is (one `GetCallerIdentity`) and which regions to visit
/// in it: every enabled region of its partition, or the requested ones
/// validated against `DescribeRegions` (unknown: an error; not enabled: a
/// failure), narrowed to `pinned`.
pub async fn account_regions(
    apis: &AccountApis,
    request: &RegionRequest,
    pinned: Option<&BTreeSet<String>>,
) -> Result<AccountRegions, FanoutError> {
    let identity = apis.sts.caller_identity().await?;
    let mut out = AccountRegions {
        account_id: identity.account_id,
        principal_arn: identity.arn,
        ..Default::default()
    };
    let listed = apis.ec2.describe_regions(&apis.home_region).await;
    let known: Vec<RegionInfo> = match (request, listed) {
        (_, Ok(list)) => list
            .into_iter()
            .filter(|r| crate::aws::partition(&r.name) == crate::aws::partition(&apis.home_region))
            .collect(),
        // Explicit regions can be visited without the listing; `all` cannot.
        (RegionRequest::List(names), Err(e)) => {
            out.warnings.push(format!(
                "could not validate regions ({e}); scanning {} as given",
                names.join(",")
            ));
            names
                .iter()
                .map(|n| RegionInfo {
                    name: n.clone(),
                    opt_in_status: None,
                })
                .collect()
        }
        (RegionRequest::All, Err(error)) => {
            return Err(FanoutError::Regions {
                account_id: out.account_id,
                error,
            });
        }
    };
    let mut enabled = Vec::new();
    match request {
        RegionRequest::All => {
            enabled.extend(
                known
                    .iter()
                    .filter(|r| r.is_enabled())
                    .map(|r| r.name.clone()),
            );
        }
        RegionRequest::List(names) => {
            for name in names {
                match known.iter().find(|r| &r.name == name) {
                    Some(r) if r.is_enabled() => enabled.push(name.clone()),
                    Some(_) => out.failures.push(Failure::new(
                        Some(&out.account_id),
                        Some(name),
                        AwsError::local(
                            crate::aws::Operation::DescribeInstances,
                            AwsErrorKind::RegionDisabled,
                            format!(
                                "region {name} is not enabled for account {}",
                                out.account_id
                            ),
                        ),
                    )),
                    None => {
                        return Err(FanoutError::UnknownRegion {
                            name: name.clone(),
                            known: known.iter().map(|r| r.name.clone()).collect(),
                        });
                    }
                }
            }
        }
    }
    if let Some(pinned) = pinned {
        enabled.retain(|r| pinned.contains(r));
    }
    enabled.sort();
    enabled.dedup();
    out.regions = enabled;
    Ok(out)
}

/// Visits each region, holding a permit of `permits` (shared by every
/// account) while it runs; results sorted by region.
pub async fn visit_regions<T, F, Fut>(
    regions: &[String],
    permits: &Semaphore,
    reporter: &dyn Reporter,
    visit: F,
) -> Vec<(String, T)>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = T>,
{
    let mut results: Vec<(String, T)> = stream::iter(regions.iter().cloned())
        .map(|region| {
            let call = visit(region.clone());
            async move {
                let _permit = permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let out = call.await;
                reporter.advance(&region);
                (region, out)
            }
        })
        // The semaphore is the bound (shared with every other account).
        .buffer_unordered(regions.len().max(1))
        .collect()
        .await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}

/// Visits each item (accounts), `limit` at a time; results in input order.
pub async fn visit_accounts<'a, I, T, F, Fut>(items: I, limit: usize, visit: F) -> Vec<T>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = T> + 'a,
{
    stream::iter(items)
        .map(visit)
        .buffered(limit.max(1))
        .collect()
        .await
}
