//! `imdsguard templates show` and `imdsguard defaults show`: what the next
//! instance launched gets, per account and region (see `ops::inventory`).

use crate::commands::problems;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::{self, Session, fleet};
use crate::output::{self, Format};
use crate::printer::Printer;

pub async fn templates(
    session: &Session,
    printer: &Printer,
    format: Format,
) -> Result<ExitCode, Error> {
    let provider = ops::provider(session).await?;
    let targets = fleet::targets(session, provider.as_ref()).await?;
    let listing = ops::inventory::templates(session, &targets).await?;
    printer.emit(|w, style| output::rows::render("templates", &listing.rows, format, style, w))?;
    Ok(problems(printer, &listing.warnings, &listing.failures))
}

pub async fn defaults(
    session: &Session,
    printer: &Printer,
    format: Format,
) -> Result<ExitCode, Error> {
    let provider = ops::provider(session).await?;
    let targets = fleet::targets(session, provider.as_ref()).await?;
    let listing = ops::inventory::defaults(session, &targets).await?;
    printer.emit(|w, style| output::rows::render("defaults", &listing.rows, format, style, w))?;
    Ok(problems(printer, &listing.warnings, &listing.failures))
}
