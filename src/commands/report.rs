//! `imdsguard report`: a stored scan for people (HTML) or machines.

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::views;
use crate::output::{self, ReportFormat, ScanFormat};
use crate::printer::Printer;

pub fn run(
    db: &std::path::Path,
    printer: &Printer,
    scan: Option<i64>,
    format: ReportFormat,
) -> Result<ExitCode, Error> {
    let store = views::open(db)?;
    let as_scan = |f| {
        let scanned = views::scan(&store, scan)?;
        printer.emit(|w, style| output::render(&scanned.report, &scanned.findings, f, style, w))?;
        Ok::<_, Error>(ExitCode::Success)
    };
    match format {
        ReportFormat::Html => {
            let data = views::report(&store, scan)?;
            printer.emit(|w, _| output::html::render(&data, w))?;
            Ok(ExitCode::Success)
        }
        ReportFormat::Markdown => {
            let data = views::report(&store, scan)?;
            printer.emit(|w, _| output::markdown::render_report(&data, w))?;
            Ok(ExitCode::Success)
        }
        ReportFormat::Table => as_scan(ScanFormat::Table),
        ReportFormat::Json => as_scan(ScanFormat::Json),
        ReportFormat::Csv => as_scan(ScanFormat::Csv),
        ReportFormat::Sarif => as_scan(ScanFormat::Sarif),
    }
}
