//! `imdsguard scan`: inventory → store → render. [`perform`] is also the
//! first step of `plan`, `harden` and `disable`.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::cli::ScanArgs;
use crate::clock::now;
use crate::commands::accounts::Target;
use crate::commands::{emit, warn};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::filter::Selection;
use crate::output;
use crate::progress::{Bar, Reporter, Silent};
use crate::report::{Failure, ScanReport};
use crate::scan::{ScanError, ScanSettings, scan_account};
use crate::settings::{self, Global};
use crate::store::Store;
use crate::usage::Window;

/// Checks the scan inputs that need no AWS call: owner tags and `--days`.
pub fn inputs(
    owner_tag: &[String],
    days: u32,
    no_usage: bool,
) -> Result<(Vec<String>, Option<Window>), Error> {
    let owner_tags = owner_tag
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let window = if no_usage {
        None
    } else {
        Some(
            Window::new(days, crate::clock::now_epoch()).map_err(|e| Error::Usage {
                message: e.to_string(),
                hint: e.hint(),
            })?,
        )
    };
    Ok((owner_tags, window))
}

/// Scans every target account (concurrently, with at most `--concurrency`
/// regions in flight in all), saves the scan as one and returns it. An
/// account that cannot be reached is a failure of that account; with a
/// single implicit account it is the command's error, as before.
pub async fn perform(
    global: &Global,
    targets: &[Target],
    store: &mut Store,
    selection: Selection,
    owner_tags: Vec<String>,
    window: Option<Window>,
) -> Result<ScanReport, Error> {
    let started_at = now();
    let scan_settings = ScanSettings {
        regions: global.regions.clone(),
        selection,
        owner_tags,
        concurrency: global.concurrency,
        usage: window,
        permits: Arc::new(Semaphore::new(global.concurrency.max(1))),
    };
    let reporter: Box<dyn Reporter> = if global.progress {
        Box::new(Bar::new("scanning regions"))
    } else {
        Box::new(Silent)
    };
    let settings = &scan_settings;
    let reporter = reporter.as_ref();
    let results: Vec<_> = stream::iter(targets)
        .map(|t| async move { (t, scan_account(&t.apis, settings, reporter).await) })
        .buffered(global.concurrency.max(1))
        .collect()
        .await;
    reporter.finish();
    let mut report = ScanReport {
        id: None,
        started_at,
        usage_days: window.map(|w| w.days),
        ..Default::default()
    };
    for (target, result) in results {
        let inventory = match result {
            Ok(i) => i,
            Err(ScanError::Aws(error)) if target.account_id.is_some() => {
                report.failures.push(Failure {
                    account_id: target.account_id.clone(),
                    region: None,
                    error,
                });
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
    report.id = Some(store.save_scan(&report)?);
    Ok(report)
}

/// Prints a scan's warnings and failures on stderr.
pub fn print_problems(global: &Global, report: &ScanReport) {
    for w in &report.warnings {
        warn(global.stderr_style, global.verbosity, w);
    }
    crate::commands::accounts::print_failures(global, &report.failures);
}

pub async fn run(global: &Global, args: &ScanArgs) -> Result<ExitCode, Error> {
    // Everything that can be wrong with the input is checked before AWS is called.
    let selection = settings::selection(&args.filters)?;
    let (owner_tags, window) = inputs(&args.owner_tag, args.days, args.no_usage)?;
    let mut store = Store::open(&global.db)?;
    let targets = crate::commands::accounts::scan_targets(global).await?;
    let report = perform(global, &targets, &mut store, selection, owner_tags, window).await?;
    emit(global.out.as_deref(), |w| {
        output::render(&report, global.format, global.stdout_style, w)
    })?;
    print_problems(global, &report);
    Ok(if report.failures.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}
