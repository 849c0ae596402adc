//! `imdsguard scan`: inventory → store → render. [`perform`] is also the
//! first step of `plan`, `harden` and `disable`.

use crate::aws::AccountApis;
use crate::cli::ScanArgs;
use crate::clock::now;
use crate::commands::{emit, print_error, warn};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::filter::Selection;
use crate::output;
use crate::progress::{Bar, Reporter, Silent};
use crate::report::ScanReport;
use crate::scan::{ScanSettings, scan_account};
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

/// Scans the account behind `apis`, saves the scan and returns it.
pub async fn perform(
    global: &Global,
    apis: &AccountApis,
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
    };
    let reporter: Box<dyn Reporter> = if global.progress {
        Box::new(Bar::new("scanning regions"))
    } else {
        Box::new(Silent)
    };
    let inventory = scan_account(apis, &scan_settings, reporter.as_ref()).await?;
    let mut report = ScanReport {
        id: None,
        started_at,
        finished_at: now(),
        identities: vec![(
            inventory.account_id.clone(),
            inventory.principal_arn.clone(),
        )],
        regions: inventory.regions,
        instances: inventory.records,
        failures: inventory.failures,
        warnings: inventory.warnings,
        usage_days: window.map(|w| w.days),
    };
    report.id = Some(store.save_scan(&report)?);
    Ok(report)
}

/// Prints a scan's warnings and failures on stderr.
pub fn print_problems(global: &Global, report: &ScanReport) {
    for w in &report.warnings {
        warn(global.stderr_style, global.verbosity, w);
    }
    for f in &report.failures {
        let place = match (&f.account_id, &f.region) {
            (Some(a), Some(r)) => format!("{a} {r}: "),
            (Some(a), None) => format!("{a}: "),
            _ => String::new(),
        };
        print_error(
            global.stderr_style,
            &format!("{place}{}", f.error),
            &f.error.hint(),
        );
    }
}

pub async fn run(global: &Global, args: &ScanArgs) -> Result<ExitCode, Error> {
    // Everything that can be wrong with the input is checked before AWS is called.
    let selection = settings::selection(&args.filters)?;
    let (owner_tags, window) = inputs(&args.owner_tag, args.days, args.no_usage)?;
    let mut store = Store::open(&global.db)?;
    let apis = crate::commands::connect(global).await?;
    let report = perform(global, &apis, &mut store, selection, owner_tags, window).await?;
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
