//! `imdsguard show`: views of a stored scan, offline (no AWS call).

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::views;
use crate::output::{self, Format, RowsFormat, ScanFormat};
use crate::printer::Printer;

pub fn instances(
    db: &std::path::Path,
    printer: &Printer,
    scan: Option<i64>,
    format: ScanFormat,
) -> Result<ExitCode, Error> {
    let scanned = views::scan(&views::open(db)?, scan)?;
    printer
        .emit(|w, style| output::render(&scanned.report, &scanned.findings, format, style, w))?;
    Ok(ExitCode::Success)
}

pub fn usage(
    db: &std::path::Path,
    printer: &Printer,
    scan: Option<i64>,
    fleet: bool,
    format: Format,
) -> Result<ExitCode, Error> {
    let view = views::usage(&views::open(db)?, scan)?;
    printer.emit(|w, style| {
        if fleet {
            output::usage::render_fleet(&view.report, &view.fleet, format, style, w)
        } else {
            output::usage::render_instances(
                &view.report,
                &view.days,
                view.callers.as_ref(),
                format,
                style,
                w,
            )
        }
    })?;
    Ok(ExitCode::Success)
}

pub fn owners(
    db: &std::path::Path,
    printer: &Printer,
    scan: Option<i64>,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    let rows = views::owners(&views::open(db)?, scan)?;
    printer.emit(|w, style| output::rows::render("owners", &rows, format, style, w))?;
    Ok(ExitCode::Success)
}

pub fn roles(
    db: &std::path::Path,
    printer: &Printer,
    scan: Option<i64>,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    let rows = views::roles(&views::open(db)?, scan)?;
    printer.emit(|w, style| output::rows::render("roles", &rows, format, style, w))?;
    Ok(ExitCode::Success)
}
