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
    let fail_on = request.fail_on;
    let mut store = ops::store(session)?;
    let targets = ops::targets(session).await?;
    let reporter = printer.reporter("scanning regions");
    let scanned =
        ops::scan::scan(session, &targets, &mut store, request, reporter.as_ref()).await?;
    printer
        .emit(|w, style| output::render(&scanned.report, &scanned.findings, format, style, w))?;
    let code = problems(printer, &scanned.report.warnings, &scanned.report.failures);
    // A partial scan is the worse news: it stays exit 1.
    if let Some(threshold) = fail_on
        && code == ExitCode::Success
    {
        let over = scanned
            .findings
            .iter()
            .filter(|f| f.severity >= threshold)
            .count();
        if over > 0 {
            printer.warn(&format!(
                "{over} finding(s) at or above {} (--fail-on): exit 3",
                threshold.as_str()
            ));
            return Ok(ExitCode::Findings);
        }
    }
    Ok(code)
}
