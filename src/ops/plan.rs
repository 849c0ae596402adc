//! `plan`: the exact change for each selected instance, from a fresh scan
//! or a stored one. Changes nothing in AWS.

use super::OpsError;
use super::fleet::{Session, Target};
use super::scan::{ScanRequest, scan};
use crate::fanout::RegionRequest;
use crate::filter::Selection;
use crate::plan::{self, Plan, PlanRequest};
use crate::progress::Reporter;
use crate::report::Failure;
use crate::store::Store;

/// Where a plan's instances come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Scan now (the scan is saved too).
    Fresh(ScanRequest),
    /// A stored scan, narrowed to the selection and the session's regions.
    Stored { scan: i64, selection: Selection },
}

/// A plan and the problems of the scan it rests on.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub warnings: Vec<String>,
    /// Accounts or regions the scan could not read: the plan is partial.
    pub failures: Vec<Failure>,
}

/// Makes a plan. `targets` are the accounts of a fresh scan (unused for a
/// stored one).
pub async fn make(
    session: &Session,
    targets: &[Target],
    store: &mut Store,
    request: &PlanRequest,
    source: Source,
    reporter: &dyn Reporter,
) -> Result<Planned, OpsError> {
    let mut report = match source {
        Source::Stored { scan, selection } => {
            let mut r = store.load_report(scan)?;
            // A stored scan may cover more regions than asked for now.
            let regions = match &session.regions {
                RegionRequest::List(list) => Some(list),
                RegionRequest::All => None,
            };
            r.instances.retain(|rec| {
                regions.is_none_or(|l| l.contains(&rec.region))
                    && selection.matches(&rec.account_id, &rec.region, &rec.instance)
            });
            r
        }
        Source::Fresh(scan_request) => {
            scan(session, targets, store, scan_request, reporter)
                .await?
                .report
        }
    };
    let failures = std::mem::take(&mut report.failures);
    let warnings = std::mem::take(&mut report.warnings);
    let plan = plan::build(request, &report, crate::clock::now())?;
    Ok(Planned {
        plan,
        warnings,
        failures,
    })
}
