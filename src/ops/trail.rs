//! `imdsguard trail`: read a trail's logs for a window, attribute the
//! IMDSv1-delivered credential use to instances and their software, save
//! it, and join it to the latest scan.

use super::{OpsError, Session};
use crate::cloudtrail::{self, TrailWindow};
use crate::store::Store;
use crate::trail::{Counts, InstanceTally, Tally};

/// What to read, free of CLI types.
#[derive(Debug, Clone)]
pub struct TrailRequest {
    pub bucket: String,
    pub prefix: String,
    /// The bucket's region (default: the session's).
    pub bucket_region: Option<String>,
    pub days: u32,
    /// Log objects fetched at once.
    pub concurrency: usize,
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
}

pub async fn read(
    session: &Session,
    store: &mut Store,
    request: &TrailRequest,
) -> Result<TrailResult, OpsError> {
    let s3 = super::objects(session, request.bucket_region.as_deref()).await?;
    let window = TrailWindow::last(request.days, crate::clock::now_epoch());
    let mut tally = Tally::new(&window.start, &window.end);
    let listing = cloudtrail::from_bucket(
        s3.as_ref(),
        &request.bucket,
        &request.prefix,
        &window,
        request.concurrency,
        &mut tally,
    )
    .await?;
    let (counts, bad_objects, instances) = tally.instances();
    let source = match request.prefix.trim_matches('/') {
        "" => format!("s3://{}", request.bucket),
        p => format!("s3://{}/{p}", request.bucket),
    };
    let id = store.save_trail(&source, (&window.start, &window.end), &counts, &instances)?;
    let metadata_only = metadata_only(store, &instances)?;
    Ok(TrailResult {
        id,
        source,
        window,
        accounts: listing.accounts,
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
