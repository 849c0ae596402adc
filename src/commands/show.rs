//! `imdsguard show`: views of a stored scan, offline (no AWS call).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{ShowArgs, ShowView};
use crate::commands::emit;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::groups;
use crate::output;
use crate::report::ScanReport;
use crate::settings::Global;
use crate::store::{Store, StoreError};
use crate::usage::{self, Window};

pub fn run(global: &Global, args: &ShowArgs) -> Result<ExitCode, Error> {
    // Viewing creates and migrates nothing.
    let store = Store::open_read_only(&global.db)?;
    let id = match args.scan {
        Some(id) => id,
        None => store.latest_scan()?.ok_or(StoreError::Empty)?,
    };
    let report = store.load_report(id)?;
    match args.view {
        ShowView::Instances => emit(global.out.as_deref(), |w| {
            output::render(&report, global.format, global.stdout_style, w)
        })?,
        ShowView::Owners => emit(global.out.as_deref(), |w| {
            output::rows::render(
                "owners",
                &groups::by_owner(&report),
                global.format,
                global.stdout_style,
                w,
            )
        })?,
        ShowView::Roles => emit(global.out.as_deref(), |w| {
            output::rows::render(
                "roles",
                &groups::by_role(&report),
                global.format,
                global.stdout_style,
                w,
            )
        })?,
        ShowView::Usage => {
            let days = window_days(&report);
            emit(global.out.as_deref(), |w| {
                if args.fleet {
                    output::usage::render_fleet(
                        &report,
                        &days,
                        global.format,
                        global.stdout_style,
                        w,
                    )
                } else {
                    output::usage::render_instances(
                        &report,
                        &days,
                        global.format,
                        global.stdout_style,
                        w,
                    )
                }
            })?
        }
    }
    Ok(ExitCode::Success)
}

/// The days the scan's usage window covered, rebuilt from when it ran.
pub fn window_days(report: &ScanReport) -> Vec<i32> {
    let Some(days) = report.usage_days else {
        return Vec::new();
    };
    let when = OffsetDateTime::parse(&report.finished_at, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0);
    Window::new(days, when)
        .map(|w| usage::window_days(&w))
        .unwrap_or_default()
}
