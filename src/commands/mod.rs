//! One module per subcommand (or family). Each is thin: take the resolved
//! request, call the operation (`crate::ops`), confirm where it changes
//! AWS, render through the printer, and return an exit code. None calls
//! AWS, SQL, the findings registry or another command itself; what several
//! share is here and in `drive` (driving and reporting a change run).

pub mod apply;
pub mod completions;
pub mod drive;
pub mod fix;
pub mod inventory;
pub mod man;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod query;
pub mod report;
pub mod resume;
pub mod rollback;
pub mod rollout;
pub mod runs;
pub mod scan;
pub mod show;
pub mod trail;

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::fleet::Target;
use crate::ops::plan::Source;
use crate::ops::{self, Session};
use crate::plan::{Plan, PlanRequest};
use crate::printer::Printer;
use crate::report::Failure;
use crate::store::Store;

/// Prints what a command met on the way (warnings, then failures) and says
/// whether the result is complete (exit 0) or partial (exit 1).
pub fn problems(printer: &Printer, warnings: &[String], failures: &[Failure]) -> ExitCode {
    for w in warnings {
        printer.warn(w);
    }
    printer.failures(failures);
    if failures.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    }
}

/// Makes a plan (scanning now, or from a stored scan), prints the scan's
/// problems, and returns the plan, the accounts a fresh scan reached (to
/// act on them with the same credentials), and whether the scan was whole.
pub async fn make_plan(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    request: &PlanRequest,
    source: Source,
) -> Result<(Plan, Vec<Target>, ExitCode), Error> {
    let targets = match source {
        Source::Stored { .. } => Vec::new(),
        Source::Fresh(_) => ops::targets(session).await?,
    };
    let reporter = printer.reporter("scanning regions");
    let planned =
        ops::plan::make(session, &targets, store, request, source, reporter.as_ref()).await?;
    let code = problems(printer, &planned.warnings, &planned.failures);
    Ok((planned.plan, targets, code))
}

/// A plan file, checked before anything else happens (malformed, edited,
/// meaningless or too old: refused); `None` when it has no changes (said).
pub fn read_plan(
    printer: &Printer,
    path: &std::path::Path,
    max_age: std::time::Duration,
) -> Result<Option<(crate::plan::Plan, String)>, Error> {
    let (plan, plan_json) = crate::plan::load(path)?;
    crate::plan::check_age(
        &plan,
        &path.display().to_string(),
        max_age,
        crate::clock::now_epoch(),
    )?;
    if plan.changes.is_empty() {
        printer.note("nothing to do: the plan has no changes");
        return Ok(None);
    }
    Ok(Some((plan, plan_json)))
}
