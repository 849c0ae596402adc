//! `imdsguard apply --resume RUN`: finishes a run that did not finish (see
//! `runs::resume`): take it over, confirm, drive, report.

use crate::commands::drive::{ExecRequest, drive, open_log, report, warn_taken_over};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::{self, Session, fleet::fleet};
use crate::output::Format;
use crate::printer::Printer;

pub async fn run(
    session: &Session,
    printer: &Printer,
    run: i64,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    if store.is_source_run(run)? {
        return crate::commands::fix::resume(session, printer, &mut store, run, format).await;
    }
    let provider = ops::provider(session).await?;
    let (r, apis) = ops::apply::resume(session, provider.as_ref(), &mut store, run).await?;
    warn_taken_over(printer, &r.taken_over);
    let open = r.open_changes().count();
    if open == 0 {
        printer.note(&format!("run {run} has nothing left to do"));
        let finished = ops::apply::finish_idle(&store, r)?;
        return report(printer, &finished, format);
    }
    let question = format!(
        "Resume run {run}: {} change(s) to re-check and finish?",
        open
    );
    if !printer.confirm(&question, "", exec.yes)? {
        printer.note("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    // Keep writing the run's log where it went (or where --log says now).
    let path = exec
        .log
        .clone()
        .or_else(|| r.run.log_path.as_ref().map(Into::into));
    let log = open_log(path.as_deref())?;
    ops::apply::reopen(&store, run, log.as_ref().map(|l| l.path()))?;
    let finished = drive(printer, &mut store, &fleet(&apis), run, r.guard, exec, log).await?;
    report(printer, &finished, format)
}
