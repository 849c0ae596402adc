//! `imdsguard trail`: read a trail's logs for a window, attribute the
//! IMDSv1-delivered credential use to instances and their software, save
//! it, and join it to the latest scan.

use super::{OpsError, Session};
use crate::cloudtrail::{self, AthenaTable, TrailWindow};
use crate::store::Store;
use crate::trail::{Counts, InstanceTally, Tally};

/// Where the trail is read from.
#[derive(Debug, Clone)]
pub enum TrailSource {
    /// The trail's log objects in S3.
    Bucket {
        bucket: String,
        prefix: String,
        /// The bucket's region (default: the session's).
        region: Option<String>,
        /// Log objects fetched at once.
        concurrency: usize,
    },
    /// `LookupEvents` in every selected account and region.
    Lookup,
    /// One query over the trail's Athena table.
    Athena {
        table: AthenaTable,
        output: String,
        workgroup: Option<String>,
    },
}

/// What to read, free of CLI types.
#[derive(Debug, Clone)]
pub struct TrailRequest {
    pub source: TrailSource,
    pub days: u32,
}

/// What a read found.
#[derive(Debug)]
pub struct TrailResult {
    pub id: i64,
    pub source: String,
    pub window: TrailWindow,
    pub accounts: Vec<String>,
    pub counts: Counts,
    /// Objects that could not be read, with why.
    pub bad_objects: Vec<(String, String)>,
    pub instances: Vec<InstanceTally>,
    /// Instances of the latest scan that made IMDSv1 calls (CloudWatch)
    /// but fetched no credentials over IMDSv1 in the window: their v1 use
    /// is metadata reads, not credential fetches.
    pub metadata_only: Vec<(String, String, String)>,
    /// Accounts and regions that could not be read (`--lookup`).
    pub failures: Vec<crate::report::Failure>,
}

/// The window a request reads (the last `days` days up to now).
pub fn window(request: &TrailRequest) -> TrailWindow {
    TrailWindow::last(request.days, crate::clock::now_epoch())
}

pub async fn read(
    session: &Session,
    store: &mut Store,
    request: &TrailRequest,
) -> Result<TrailResult, OpsError> {
    let now = crate::clock::now_epoch();
    let window = window(request);
    let mut tally = Tally::new(&window.start, &window.end);
    let mut accounts = Vec::new();
    let mut failures = Vec::new();
    let source = match &request.source {
        TrailSource::Bucket {
            bucket,
            prefix,
            region,
            concurrency,
        } => {
            let s3 = super::objects(session, region.as_deref()).await?;
            let listing = cloudtrail::from_bucket(
                s3.as_ref(),
                bucket,
                prefix,
                &window,
                *concurrency,
                &mut tally,
            )
            .await?;
            accounts = listing.accounts;
            match prefix.trim_matches('/') {
                "" => format!("s3://{bucket}"),
                p => format!("s3://{bucket}/{p}"),
            }
        }
        TrailSource::Lookup => {
            let targets = super::targets(session).await?;
            let start = now - i64::from(request.days) * 86_400;
            let (ws, we) = (window.start.clone(), window.end.clone());
            let v = super::fleet::each_region(session, &targets, |apis, region| {
                let (ws, we) = (ws.clone(), we.clone());
                async move {
                    let mut t = Tally::new(&ws, &we);
                    cloudtrail::from_lookup(apis.cloudtrail.as_ref(), &region, start, now, &mut t)
                        .await?;
                    Ok(t)
                }
            })
            .await?;
            for (account, _, t) in v.answers {
                if !accounts.contains(&account) {
                    accounts.push(account);
                }
                tally.merge(t);
            }
            failures = v.failures;
            "cloudtrail:LookupEvents".to_owned()
        }
        TrailSource::Athena {
            table,
            output,
            workgroup,
        } => {
            let athena = super::athena(session).await?;
            cloudtrail::from_athena(
                athena.as_ref(),
                table,
                output,
                workgroup.as_deref(),
                &window,
                &mut tally,
            )
            .await?;
            format!("athena:{}.{}", table.database, table.table)
        }
    };
    let (counts, bad_objects, instances) = tally.instances();
    let id = store.save_trail(&source, (&window.start, &window.end), &counts, &instances)?;
    let metadata_only = metadata_only(store, &instances)?;
    Ok(TrailResult {
        id,
        source,
        window,
        failures,
        accounts,
        counts,
        bad_objects,
        instances,
        metadata_only,
    })
}

/// The latest scan's `in-use` instances that the trail does not name.
fn metadata_only(
    store: &Store,
    instances: &[InstanceTally],
) -> Result<Vec<(String, String, String)>, OpsError> {
    let Some(id) = store.latest_scan()? else {
        return Ok(Vec::new());
    };
    let report = store.load_report(id)?;
    let named: std::collections::HashSet<(&str, &str, &str)> = instances
        .iter()
        .map(|t| {
            (
                t.account_id.as_str(),
                t.region.as_str(),
                t.instance_id.as_str(),
            )
        })
        .collect();
    Ok(report
        .instances
        .iter()
        .filter(|r| r.readiness == crate::readiness::Readiness::InUse)
        .filter(|r| {
            !named.contains(&(
                r.account_id.as_str(),
                r.region.as_str(),
                r.instance.instance_id.as_str(),
            ))
        })
        .map(|r| {
            (
                r.account_id.clone(),
                r.region.clone(),
                r.instance.instance_id.clone(),
            )
        })
        .collect())
}
