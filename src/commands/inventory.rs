//! `imdsguard templates show` and `imdsguard defaults show`: what the next
//! instance launched gets, per account and region (see `ops::inventory`).

use crate::commands::problems;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::inventory::Listing;
use crate::ops::{self, Session};
use crate::output::rows::Row;
use crate::output::{self, RowsFormat};
use crate::printer::Printer;

pub async fn templates(
    session: &Session,
    printer: &Printer,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    let targets = ops::targets(session).await?;
    let listing = ops::inventory::templates(session, &targets).await?;
    show(printer, "templates", &listing, format)
}

pub async fn groups(
    session: &Session,
    printer: &Printer,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    let targets = ops::targets(session).await?;
    let listing = ops::inventory::groups(session, &targets).await?;
    show(printer, "auto-scaling-groups", &listing, format)
}

pub async fn defaults(
    session: &Session,
    printer: &Printer,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    let targets = ops::targets(session).await?;
    let listing = ops::inventory::defaults(session, &targets).await?;
    show(printer, "defaults", &listing, format)
}

fn show<R: Row>(
    printer: &Printer,
    kind: &str,
    listing: &Listing<R>,
    format: RowsFormat,
) -> Result<ExitCode, Error> {
    printer.emit(|w, style| output::rows::render(kind, &listing.rows, format, style, w))?;
    Ok(problems(printer, &listing.warnings, &listing.failures))
}
