//! `imdsguard report`: a stored scan for people (HTML) or machines.

use crate::cli::ReportArgs;
use crate::commands::{emit, show};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output::{self, Format};
use crate::settings::Global;
use crate::store::{Store, StoreError};

pub fn run(global: &Global, args: &ReportArgs) -> Result<ExitCode, Error> {
    let store = Store::open_read_only(&global.db)?;
    let id = match args.scan {
        Some(id) => id,
        None => store.latest_scan()?.ok_or(StoreError::Empty)?,
    };
    let report = store.load_report(id)?;
    emit(global.out.as_deref(), |w| match global.format {
        Format::Html => {
            let days = show::window_days(&report);
            let fleet = output::usage::fleet_days(&report, &days);
            let findings = crate::findings::run(&report);
            output::html::render(&report, &fleet, &findings, w)
        }
        other => output::render(&report, other, global.stdout_style, w),
    })?;
    Ok(ExitCode::Success)
}
