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
    // Rendered while the scan is saved (a scan the database then refuses
    // has still been shown: the error says it was not saved).
    let (scanned, (rendered, rendering)) = ops::scan::scan_alongside(
        session,
        &targets,
        &mut store,
        request,
        reporter.as_ref(),
        |report, findings| {
            let clock = std::time::Instant::now();
            let rendered =
                printer.emit(|w, style| output::render(report, findings, format, style, w));
            (rendered, clock.elapsed())
        },
    )
    .await?;
    rendered?;
    let t = scanned.timings;
    printer.detail(&format!(
        "timings: reading {:.2} s, then {:.2} s saving while assessing ({:.2} s) and rendering ({:.2} s)",
        t.reading.as_secs_f64(),
        t.storing.as_secs_f64(),
        t.assessing.as_secs_f64(),
        rendering.as_secs_f64()
    ));
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
