//! `imdsguard rollback RUN`: every instance a run changed goes back to its
//! exact previous options (see `ops::rollback`): prepare, confirm, drive,
//! report.

use std::collections::BTreeSet;

use crate::commands::drive::{ExecRequest, drive, open_log, report, warn_taken_over};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::{self, Session, fleet::fleet};
use crate::output::{self, Format};
use crate::printer::Printer;
use crate::runs::rollback::Note;

pub async fn run(
    session: &Session,
    printer: &Printer,
    run: i64,
    only: &BTreeSet<String>,
    force: bool,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    if store.is_source_run(run)? {
        return crate::commands::fix::rollback(session, printer, &mut store, run, exec.yes, format)
            .await;
    }
    let provider = ops::provider(session).await?;
    // Holds the parent's lease until this function returns.
    let prepared =
        ops::rollback::prepare(session, provider.as_ref(), &mut store, run, only, force).await?;
    warn_taken_over(printer, &prepared.candidates.taken_over);
    for note in &prepared.selection.notes {
        printer.warn(&match note {
            Note::Gone(id) => format!("{id}: no longer exists"),
            Note::AlreadyPrevious(id) => format!("{id}: already at its previous options"),
            Note::ChangedAgain { instance_id, now } => format!(
                "{instance_id}: changed again since run {run} (now {}); left alone (--force to override)",
                now.describe()
            ),
        });
    }
    // Instances left alone mean the run is not wholly undone: say so in the
    // exit code too, not only in a warning.
    let left_alone = prepared.left_alone();
    let incomplete = |code: ExitCode| {
        if left_alone > 0 && code == ExitCode::Success {
            printer.note(&format!(
                "{left_alone} instance(s) of run {run} left alone (changed again since); `--force` rolls them back too"
            ));
            ExitCode::Failure
        } else {
            code
        }
    };
    if prepared.selection.changes.is_empty() {
        printer.note(&format!("run {run}: nothing to roll back"));
        return Ok(incomplete(ExitCode::Success));
    }
    for (account, region) in &prepared.enforced {
        printer.warn(&format!(
            "{account} {region}: the account default has HttpTokensEnforced=enabled; EC2 will refuse to re-allow IMDSv1 there"
        ));
    }
    if !printer.confirm(
        &format!(
            "Roll back {} instance(s) changed by run {run}?",
            prepared.selection.changes.len()
        ),
        &output::run::field_summary(&prepared.fields),
        exec.yes,
    )? {
        printer.note("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let log = open_log(exec.log.as_deref())?;
    let log_path = log.as_ref().map(|l| l.path().display().to_string());
    let (new_run, guard) = crate::runs::rollback::start(
        &mut store,
        &prepared.candidates.parent,
        &prepared.selection,
        log_path.as_deref(),
    )?;
    printer.note(&format!("run {new_run} started: rolling back run {run}"));
    let finished = drive(
        printer,
        &mut store,
        &fleet(&prepared.apis),
        new_run,
        guard,
        exec,
        log,
    )
    .await?;
    Ok(incomplete(report(printer, &finished, format)?))
}
