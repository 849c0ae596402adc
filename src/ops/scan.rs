//! `scan` (and the first step of `plan`, `harden`, `disable`): every target
//! account's inventory, usage and verdicts, merged, saved as one scan, and
//! assessed once by the findings registry.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::OpsError;
use super::fleet::{Session, Target};
use crate::clock::now;
use crate::fanout::{self, FanoutError};
use crate::filter::Selection;
use crate::findings::{self, Finding};
use crate::progress::Reporter;
use crate::report::{Failure, ScanReport};
use crate::scan::{ScanSettings, scan_account};
use crate::store::Store;
use crate::usage::Window;

/// What to scan, free of CLI types.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub selection: Selection,
    /// Tag keys that name an owner, tried in order.
    pub owner_tags: Vec<String>,
    /// The usage window, or `None` for inventory only.
    pub window: Option<Window>,
    /// Read templates, groups, account defaults and AMIs too.
    pub sources: bool,
    /// `--fail-on`: the severity from which a finding fails the command.
    pub fail_on: Option<findings::Severity>,
}

/// A scan and what it found.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub report: ScanReport,
    pub findings: Vec<Finding>,
    /// Where a fresh scan's time went (zero for a stored one).
    pub timings: Timings,
}

/// Where a scan's time went, for `-v` and the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Reading every account and region (AWS calls and building the records).
    pub reading: std::time::Duration,
    /// After reading: saving the scan, with assessing it and the caller's
    /// work alongside (see [`scan_alongside`]), until all are done.
    pub storing: std::time::Duration,
    /// Of which assessing (the findings), on the other thread.
    pub assessing: std::time::Duration,
}

impl Scanned {
    /// Assesses a scan (fresh or stored) once; renderers only render.
    pub fn new(report: ScanReport) -> Scanned {
        let findings = findings::run(&report);
        Scanned {
            report,
            findings,
            timings: Timings::default(),
        }
    }
}

/// Scans every target account (accounts and regions at once, at most
/// `concurrency` regions in flight in all), saves the scan and assesses it.
/// An account that cannot be reached is a failure of that account; with a
/// single implicit account it is the command's error.
pub async fn scan(
    session: &Session,
    targets: &[Target],
    store: &mut Store,
    request: ScanRequest,
    reporter: &dyn Reporter,
) -> Result<Scanned, OpsError> {
    let (scanned, ()) =
        scan_alongside(session, targets, store, request, reporter, |_, _| ()).await?;
    Ok(scanned)
}

/// [`scan`], with `alongside` (the scan command's rendering) run on the
/// assessed scan while its rows are written: neither waits for the other.
/// Its result is returned only when the scan was saved.
pub async fn scan_alongside<R: Send>(
    session: &Session,
    targets: &[Target],
    store: &mut Store,
    request: ScanRequest,
    reporter: &dyn Reporter,
    alongside: impl FnOnce(&ScanReport, &[Finding]) -> R + Send,
) -> Result<(Scanned, R), OpsError> {
    let started_at = now();
    let settings = ScanSettings {
        regions: session.regions.clone(),
        selection: request.selection,
        owner_tags: request.owner_tags,
        usage: request.window,
        permits: Arc::new(Semaphore::new(session.concurrency.max(1))),
        region_calls: session.region_calls,
        sources: request.sources,
    };
    let settings = &settings;
    let clock = std::time::Instant::now();
    let results = fanout::visit_accounts(targets, session.concurrency, |t| async move {
        (t, scan_account(&t.apis, settings, reporter).await)
    })
    .await;
    let mut report = ScanReport {
        id: None,
        started_at,
        usage_days: request.window.map(|w| w.days),
        ..Default::default()
    };
    for (target, result) in results {
        let inventory = match result {
            Ok(i) => i,
            Err(FanoutError::Aws(error) | FanoutError::Regions { error, .. })
                if target.account_id.is_some() =>
            {
                report
                    .failures
                    .push(Failure::new(target.account_id.as_deref(), None, error));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        report.identities.push((
            inventory.account_id.clone(),
            inventory.principal_arn.clone(),
        ));
        // Move, don't copy, the first (often only) account's records: a
        // second buffer of 100,000 records would double the peak.
        if report.instances.is_empty() {
            report.instances = inventory.records;
        } else {
            report.instances.extend(inventory.records);
        }
        report.regions.extend(inventory.regions);
        report.sources.extend(inventory.sources);
        report.failures.extend(inventory.failures);
        let prefix = if targets.len() > 1 {
            format!("{}: ", inventory.account_id)
        } else {
            String::new()
        };
        report.warnings.extend(
            inventory
                .warnings
                .into_iter()
                .map(|w| format!("{prefix}{w}")),
        );
    }
    report.finished_at = now();
    let reading = clock.elapsed();
    let (_, (findings, assessing, out)) = store.save_scan_with(&mut report, |report| {
        let clock = std::time::Instant::now();
        let findings = findings::run(report);
        let assessing = clock.elapsed();
        let out = alongside(report, &findings);
        (findings, assessing, out)
    })?;
    let scanned = Scanned {
        report,
        findings,
        timings: Timings {
            reading,
            storing: clock.elapsed() - reading,
            assessing,
        },
    };
    Ok((scanned, out))
}
