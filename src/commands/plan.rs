//! `imdsguard plan`: selection → scan (fresh or stored) → plan file.

use crate::commands::make_plan;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::plan::Source;
use crate::ops::{self, Session};
use crate::output::{self, Format};
use crate::plan::PlanRequest;
use crate::printer::Printer;

pub async fn run(
    session: &Session,
    printer: &Printer,
    request: PlanRequest,
    source: Source,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let (plan, _, code) = make_plan(session, printer, &mut store, &request, source).await?;
    let plan = &plan;
    match &printer.out {
        // --out is the plan file (JSON); stdout still shows it as asked.
        Some(path) => {
            printer.emit_to(Some(path), |w, style| {
                output::plan::render(plan, Format::Json, style, w)
            })?;
            printer.emit_to(None, |w, style| {
                output::plan::render(plan, format, style, w)
            })?;
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
