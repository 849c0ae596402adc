//! `imdsguard runs [RUN]`: the journal, read back (read-only).

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::views;
use crate::output::{self, Format};
use crate::printer::Printer;

pub fn run(
    db: &std::path::Path,
    printer: &Printer,
    run: Option<i64>,
    format: Format,
) -> Result<ExitCode, Error> {
    let store = views::open(db)?;
    match run {
        Some(id) => {
            let (run, lease) = views::run(&store, id)?;
            let view = output::run::RunView {
                run: &run,
                outcome: None,
                lease,
                all: true,
            };
            printer.emit(|w, style| output::run::render(&view, format, style, w))?;
        }
        None => {
            let runs = views::runs(&store)?;
            printer.emit(|w, style| output::run::render_list(&runs, format, style, w))?;
        }
    }
    Ok(ExitCode::Success)
}
