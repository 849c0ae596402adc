//! `imdsguard query "SQL"` and `imdsguard history`: read-only SQL over the
//! stored scans and runs (see `store::query`: nothing can be written or
//! attached).

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::views;
use crate::output::{self, RowsFormat};
use crate::printer::Printer;

pub fn run(
    db: &std::path::Path,
    printer: &Printer,
    sql: &str,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    let rows = views::query(&views::open(db)?, sql)?;
    printer.emit(|w, style| output::rows::render_query(&rows, format, style, w))?;
    Ok(ExitCode::Success)
}

/// One scan per line: how enforcement moved over time.
pub fn history(
    db: &std::path::Path,
    printer: &Printer,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    let rows = views::history(&views::open(db)?)?;
    printer.emit(|w, style| output::rows::render("history", &rows, format, style, w))?;
    Ok(ExitCode::Success)
}
