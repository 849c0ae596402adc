//! `imdsguard trail`: read → attribute → save → render.

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::trail::TrailRequest;
use crate::ops::{self, Session};
use crate::output::{self, Format};
use crate::printer::Printer;

/// `--print-sql`: the Athena query for the window, nothing run (offline).
pub fn print_sql(printer: &Printer, request: &TrailRequest) -> Result<ExitCode, Error> {
    if let crate::ops::trail::TrailSource::Athena { table, .. } = &request.source {
        let sql = crate::cloudtrail::athena_sql(table, &ops::trail::window(request));
        printer.emit(|w, _| writeln!(w, "{sql}"))?;
    }
    Ok(ExitCode::Success)
}

pub async fn run(
    session: &Session,
    printer: &Printer,
    request: &TrailRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let result = ops::trail::read(session, &mut store, request).await?;
    printer.emit(|w, style| output::trail::render(&result, format, style, w))?;
    let c = &result.counts;
    printer.note(&format!(
        "{}: {} object(s) of {} account(s), {} record(s) in the window; {} used credentials delivered over IMDSv1 by {} instance(s); {} over IMDSv2; {} over IMDSv1 to sessions that are not instances; {} malformed",
        result.source,
        c.objects,
        result.accounts.len(),
        c.records,
        c.attributed,
        result.instances.len(),
        c.v2,
        c.v1_not_instance,
        c.malformed
    ));
    printer.failures(&result.failures);
    for (key, why) in &result.bad_objects {
        printer.warn(&format!("could not read {key}: {why}"));
    }
    if !result.metadata_only.is_empty() {
        printer.note(&format!(
            "{} instance(s) of the latest scan call IMDSv1 but fetched no credentials over it in the window: IMDSv1 use is not credential fetches (metadata reads): {}",
            result.metadata_only.len(),
            ops::list(result.metadata_only.iter().map(|(_, _, i)| i.as_str()))
        ));
    }
    Ok(
        if result.counts.malformed > 0 || !result.failures.is_empty() {
            ExitCode::Failure
        } else {
            ExitCode::Success
        },
    )
}
