//! `imdsguard scan`: inventory → store → render.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::aws::sdk;
use crate::cli::ScanArgs;
use crate::commands::{emit, print_error, warn};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output;
use crate::progress::{Bar, Reporter, Silent};
use crate::report::ScanReport;
use crate::scan::{ScanSettings, scan_account};
use crate::settings::{self, Global};
use crate::store::Store;
use crate::usage::Window;

pub async fn run(global: &Global, args: &ScanArgs) -> Result<ExitCode, Error> {
    // Everything that can be wrong with the input is checked before AWS is called.
    let selection = settings::selection(&args.filters)?;
    let owner_tags: Vec<String> = args
        .owner_tag
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let window = if args.no_usage {
        None
    } else {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Some(Window::new(args.days, now).map_err(|e| Error::Usage {
            message: e.to_string(),
            hint: e.hint(),
        })?)
    };
    let mut store = Store::open(&global.db)?;

    let started_at = now();
    let config = sdk::load_config(&global.session).await?;
    let apis = sdk::account_apis(&config);
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
    let inventory = scan_account(&apis, &scan_settings, reporter.as_ref()).await?;

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

    emit(global.out.as_deref(), |w| {
        output::render(&report, global.format, global.stdout_style, w)
    })?;

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
    Ok(if report.failures.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero is a valid nanosecond")
        .format(&Rfc3339)
        .expect("RFC 3339 formats any UTC time")
}
