//! `imdsguard plan`: selection → scan (fresh or stored) → plan file.

use crate::commands::problems;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::plan::Source;
use crate::ops::{self, Session};
use crate::output::{self, Format};
use crate::ops::fleet::Target;
use crate::plan::{Plan, PlanRequest};
use crate::store::Store;
use crate::printer::Printer;

pub async fn run(
    session: &Session,
    printer: &Printer,
    request: PlanRequest,
    source: Source,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let (plan, _, code) = make(session, printer, &mut store, &request, source).await?;
    let plan = &plan;
    match &printer.out {
        // --out is the plan file (JSON); stdout still shows it as asked.
        Some(path) => {
            printer.emit_to(Some(path), |w, style| {
                output::plan::render(plan, Format::Json, style, w)
            })?;
            printer.emit_to(None, |w, style| output::plan::render(plan, format, style, w))?;
            if format == Format::Table {
                printer.note(&format!(
                    "plan written to {}; apply it with `imdsguard apply {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
        None => {
            printer.emit(|w, style| output::plan::render(plan, format, style, w))?;
            printer.note("no plan file written: pass --out FILE to save one for `imdsguard apply`");
        }
    }
    Ok(code)
}

/// Makes a plan (scanning now, or from a stored scan), prints the scan's
/// problems, and returns the plan, the accounts a fresh scan reached (to
/// act on them with the same credentials), and whether the scan was whole.
pub async fn make(
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
