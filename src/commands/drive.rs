//! What `apply`, `apply --resume`, `harden`, `disable` and `rollback` share
//! once a run exists: driving it with Ctrl-C handling, and reporting it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::{self, apply::Execution, apply::Finished};
use crate::output::{self, Format};
use crate::printer::Printer;
use crate::runs::executor::ExecSettings;
use crate::runs::lease::{LeaseGuard, TakenOver, describe_holder};
use crate::runs::ledger::ChangeLog;
use crate::runs::status::{self, ExitClass};
use crate::runs::{Fleet, RunError};
use crate::store::Store;

/// How changes are executed, from the command line.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub settings: ExecSettings,
    pub yes: bool,
    pub check_permissions: bool,
    pub log: Option<PathBuf>,
}

/// Opens `--log` (or the run's own log) for appending.
pub fn open_log(path: Option<&std::path::Path>) -> Result<Option<ChangeLog>, Error> {
    path.map(ChangeLog::open)
        .transpose()
        .map_err(|e| Error::from(RunError::from(e)))
}

/// Warns about each run lease taken over from a process that was gone.
pub fn warn_taken_over(printer: &Printer, taken: &TakenOver) {
    for (lease, why) in taken {
        printer.warn(&format!(
            "run {} was held by {} ({why}); taking it over",
            lease.run,
            describe_holder(lease)
        ));
    }
}

/// Drives a run to its end: the first Ctrl-C stops sending and lets the
/// calls in flight finish and be journaled; a second quits at once (the
/// journal already holds every intent, and the next process takes over the
/// lease of a dead one).
pub async fn drive(
    printer: &Printer,
    store: &mut Store,
    fleet: &Fleet<'_>,
    run: i64,
    guard: LeaseGuard,
    exec: &ExecRequest,
    log: Option<ChangeLog>,
) -> Result<Finished, Error> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let reporter = printer.reporter("applying");
    let execution = Execution {
        settings: &exec.settings,
        check_permissions: exec.check_permissions,
        log,
        interrupt: interrupt.clone(),
        reporter: reporter.as_ref(),
    };
    let finished = tokio::select! {
        r = ops::apply::execute(store, fleet, run, guard, execution) => r?,
        _ = ctrl_c(printer, &interrupt, run) => unreachable!("ctrl_c never returns"),
    };
    if finished.caught_up > 0 {
        printer.note(&format!(
            "wrote {} log line(s) a previous process did not",
            finished.caught_up
        ));
    }
    Ok(finished)
}

pub async fn ctrl_c(printer: &Printer, interrupt: &AtomicBool, run: i64) {
    if tokio::signal::ctrl_c().await.is_ok() {
        interrupt.store(true, Ordering::SeqCst);
        printer
            .note("\ninterrupted: finishing the calls in flight; press Ctrl-C again to quit now");
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        printer.note(&format!(
            "quit: resume with `imdsguard apply --resume {run}`, undo with `imdsguard rollback {run}`"
        ));
        std::process::exit(ExitCode::Interrupted as i32);
    }
    std::future::pending::<()>().await
}

/// Renders a finished run and what to do next, and picks the exit code:
/// 0 only when every change is applied or already at target.
pub fn report(printer: &Printer, finished: &Finished, format: Format) -> Result<ExitCode, Error> {
    let (run, outcome) = (&finished.run, &finished.outcome);
    let view = output::run::RunView {
        run,
        outcome: Some(outcome),
        lease: None,
        all: false,
    };
    printer.emit(|w, style| output::run::render(&view, format, style, w))?;
    printer.messages(&output::run::aftermath(run, outcome));
    Ok(match status::exit_class(run, outcome) {
        ExitClass::Done => ExitCode::Success,
        ExitClass::Interrupted => ExitCode::Interrupted,
        ExitClass::Problems => ExitCode::Failure,
    })
}
