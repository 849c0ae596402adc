//! `imdsguard scan`: inventory → store → render.

use crate::commands::problems;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::scan::ScanRequest;
use crate::ops::{self, Session};
use crate::output::{self, ScanFormat};
use crate::printer::Printer;

pub async fn run(
    session: &Session,
    printer: &Printer,
    request: ScanRequest,
    format: ScanFormat,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let targets = ops::targets(session).await?;
    let reporter = printer.reporter("scanning regions");
    let scanned =
        ops::scan::scan(session, &targets, &mut store, request, reporter.as_ref()).await?;
    printer
        .emit(|w, style| output::render(&scanned.report, &scanned.findings, format, style, w))?;
    Ok(problems(
        printer,
        &scanned.report.warnings,
        &scanned.report.failures,
    ))
}
