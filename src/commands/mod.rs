//! One module per subcommand (or family). Each is thin: take the resolved
//! request, call the operation (`crate::ops`), confirm where it changes
//! AWS, render through the printer, and return an exit code. None calls
//! AWS, SQL, the findings registry or another command itself.

pub mod apply;
pub mod drive;
pub mod inventory;
pub mod plan;
pub mod policy;
pub mod query;
pub mod report;
pub mod resume;
pub mod rollback;
pub mod runs;
pub mod scan;
pub mod show;

use crate::exit_codes::ExitCode;
use crate::printer::Printer;
use crate::report::Failure;

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
