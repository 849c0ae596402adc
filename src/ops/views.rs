//! What is read back from the database, offline: stored scans (assessed
//! like fresh ones), their usage and groupings, the report's data, history,
//! the user's SQL, and the journal. The database is opened read-only: a
//! view never creates or migrates it.

use super::OpsError;
use super::scan::Scanned;
use crate::findings::{self, Finding};
use crate::groups::{self, OwnerRow, RoleRow};
use crate::report::{FleetDay, RegionSummary, ScanReport};
use crate::rollout::effect::Effect;
use crate::store::journal::{Lease, Run, RunListing};
use crate::store::query::{HistoryRow, QueryError, QueryRows};
use crate::store::{Store, StoreError};
use crate::usage;

/// The database, for reading only.
pub fn open(db: &std::path::Path) -> Result<Store, OpsError> {
    Ok(Store::open_read_only(db)?)
}

/// A stored scan (the latest without an id), as it was saved, with what
/// the latest trail read says about its IMDSv1 callers.
fn report_of(store: &Store, id: Option<i64>) -> Result<ScanReport, OpsError> {
    let mut report = stored(store, id)?;
    with_callers(store, &mut report)?;
    Ok(report)
}

/// A stored scan as saved, without the trail join (which `usage` does
/// itself, keeping the callers for its column).
fn stored(store: &Store, id: Option<i64>) -> Result<ScanReport, OpsError> {
    let id = match id {
        Some(id) => id,
        None => store.latest_scan()?.ok_or(StoreError::Empty)?,
    };
    Ok(store.load_report(id)?)
}

/// Adds to the readiness reason of every instance that calls IMDSv1 what
/// the latest `imdsguard trail` found: the software that fetched
/// credentials over IMDSv1 and what to do, or that its IMDSv1 calls are not
/// credential fetches. Every view (tables, reports, owners, notices) then
/// says it. Nothing changes without a trail read.
/// Returns what the trail read found, for views that show it on its own.
pub fn with_callers(
    store: &Store,
    report: &mut ScanReport,
) -> Result<Option<crate::store::trails::CallerMap>, OpsError> {
    let Some(callers) = store.latest_callers()? else {
        return Ok(None);
    };
    for r in &mut report.instances {
        if r.readiness != crate::readiness::Readiness::InUse {
            continue;
        }
        let key = (
            r.account_id.clone(),
            r.region.clone(),
            r.instance.instance_id.clone(),
        );
        let said = match callers.get(&key) {
            Some(c) if !c.agents.is_empty() => c.agents.join("; "),
            _ => "none: CloudTrail shows no credential fetch over IMDSv1, the calls are metadata reads"
                .to_owned(),
        };
        r.reason = format!("{}; v1 callers (CloudTrail): {said}", r.reason);
        r.v1_callers = Some(said);
    }
    Ok(Some(callers))
}

/// A stored scan, assessed (for views that show findings).
pub fn scan(store: &Store, id: Option<i64>) -> Result<Scanned, OpsError> {
    Ok(Scanned::new(report_of(store, id)?))
}

/// A scan's usage window, day by day.
pub struct UsageView {
    pub report: ScanReport,
    /// The window's day numbers, oldest first.
    pub days: Vec<i32>,
    /// The fleet's totals per day.
    pub fleet: Vec<FleetDay>,
    /// What the latest `imdsguard trail` found, per (account, region,
    /// instance); `None` when no trail was read.
    pub callers: Option<crate::store::trails::CallerMap>,
}

pub fn usage(store: &Store, id: Option<i64>) -> Result<UsageView, OpsError> {
    // One trail query: the join into the reasons and the callers column.
    let mut report = stored(store, id)?;
    let callers = with_callers(store, &mut report)?;
    let days = usage::scan_days(&report);
    let fleet = usage::fleet_days(&report, &days);
    Ok(UsageView {
        report,
        days,
        fleet,
        callers,
    })
}

pub fn owners(store: &Store, id: Option<i64>) -> Result<Vec<OwnerRow>, OpsError> {
    Ok(groups::by_owner(&report_of(store, id)?))
}

pub fn roles(store: &Store, id: Option<i64>) -> Result<Vec<RoleRow>, OpsError> {
    Ok(groups::by_role(&report_of(store, id)?))
}

/// How many measured effects the report shows (the newest).
const MAX_EFFECTS: usize = 5;

/// Everything the HTML and Markdown reports show.
pub struct ReportData {
    pub usage: UsageView,
    pub owners: Vec<OwnerRow>,
    pub findings: Vec<Finding>,
    /// Per account, for multi-account scans.
    pub accounts: Vec<RegionSummary>,
    /// Every stored scan up to this one, oldest first: the trend.
    pub trend: Vec<HistoryRow>,
    /// The latest before/after proof of the newest runs and rollouts
    /// measured (`runs RUN --effect`, `rollout status ID --effect`):
    /// (subject, measured at, effect).
    pub effects: Vec<(String, String, Effect)>,
}

pub fn report(store: &Store, id: Option<i64>) -> Result<ReportData, OpsError> {
    let usage = usage(store, id)?;
    let owners = groups::by_owner(&usage.report);
    let findings = findings::run(&usage.report);
    let accounts = usage.report.by_account();
    let this = usage.report.id;
    let mut trend = store.history()?;
    trend.retain(|s| this.is_none_or(|id| s.scan <= id));
    let effects = store
        .latest_effects(MAX_EFFECTS)?
        .into_iter()
        .filter_map(|(subject, at, json)| Some((subject, at, serde_json::from_str(&json).ok()?)))
        .collect();
    Ok(ReportData {
        usage,
        owners,
        findings,
        accounts,
        trend,
        effects,
    })
}

pub fn history(store: &Store) -> Result<Vec<HistoryRow>, OpsError> {
    Ok(store.history()?)
}

pub fn query(store: &Store, sql: &str) -> Result<QueryRows, QueryError> {
    store.query(sql)
}

/// The journal: every run (the journal's columns changed in version 3, so
/// an older database is refused rather than misread).
pub fn runs(store: &Store) -> Result<Vec<RunListing>, OpsError> {
    store.require_current()?;
    Ok(store.list_runs()?)
}

/// One run, and who drives it now, if anyone.
pub fn run(store: &Store, id: i64) -> Result<(Run, Option<Lease>), OpsError> {
    store.require_current()?;
    Ok((store.load_run(id)?, store.lease(id)?))
}
