//! `imdsguard apply`, `apply --resume`, `harden` and `disable`: resolve the
//! plan (a file, or one made now), let the operation check it, confirm,
//! start the run, drive it with Ctrl-C handling, and report. [`drive`] and
//! [`report`] serve `rollback` too.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::commands::problems;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::journal::{ChangeStatus, Named};
use crate::model::Action;
use crate::ops::apply::{Execution, Finished};
use crate::ops::fleet::{AccountMap, fleet, into_map};
use crate::ops::plan::Source;
use crate::ops::{self, Session};
use crate::output::{self, Format};
use crate::plan::{self, Plan, PlanRequest};
use crate::printer::Printer;
use crate::runs::executor::ExecSettings;
use crate::runs::lease::LeaseGuard;
use crate::runs::ledger::ChangeLog;
use crate::runs::status::{self, ExitClass};
use crate::runs::{Fleet, Stop};
use crate::store::Store;

/// How changes are executed, from the command line.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub settings: ExecSettings,
    pub yes: bool,
    pub check_permissions: bool,
    pub log: Option<PathBuf>,
}

/// `apply PLAN`: every check of the plan file comes before the database or AWS.
pub async fn apply(
    session: &Session,
    printer: &Printer,
    path: &std::path::Path,
    max_age: Duration,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let plan = plan::load(path)?;
    plan::check_age(
        &plan,
        &path.display().to_string(),
        max_age,
        crate::clock::now_epoch(),
    )?;
    if plan.changes.is_empty() {
        printer.note("nothing to do: the plan has no changes");
        return Ok(ExitCode::Success);
    }
    let plan_json = std::fs::read_to_string(path).unwrap_or_default();
    let mut store = ops::store(session)?;
    let provider = ops::provider(session).await?;
    let apis = ops::apply::plan_accounts(session, provider.as_ref(), &plan).await?;
    apply_plan(printer, &apis, &mut store, &plan, &plan_json, exec, format).await
}

/// `harden` / `disable`: plan now (printed on stderr), then apply.
pub async fn plan_and_apply(
    session: &Session,
    printer: &Printer,
    request: PlanRequest,
    source: Source,
    dry_run: bool,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let provider = ops::provider(session).await?;
    let targets = ops::fleet::targets(session, provider.as_ref()).await?;
    let reporter = printer.reporter("scanning regions");
    let planned = ops::plan::make(
        session,
        &targets,
        &mut store,
        &request,
        source,
        reporter.as_ref(),
    )
    .await?;
    let scan_code = problems(printer, &planned.warnings, &planned.failures);
    let plan = planned.plan;
    if dry_run || plan.changes.is_empty() {
        printer.emit(|w, style| output::plan::render(&plan, format, style, w))?;
        if plan.changes.is_empty() {
            printer.note("nothing to do");
        }
        return Ok(scan_code);
    }
    // The plan goes to stderr so stdout stays the run's result.
    if format == Format::Table {
        printer.to_stderr(|w, style| {
            output::plan::render(&plan, Format::Table, style, w)?;
            writeln!(w)
        });
    }
    let plan_json = serde_json::to_string_pretty(&plan).expect("plans serialize");
    // The scan's clients (and their credentials, assumed roles included)
    // serve the changes too: no second round of credential resolution.
    let implicit = plan.changes.first().map(|c| c.account_id.as_str());
    let apis = into_map(targets, implicit);
    let code = apply_plan(printer, &apis, &mut store, &plan, &plan_json, exec, format).await?;
    Ok(if scan_code == ExitCode::Success {
        code
    } else {
        ExitCode::Failure
    })
}

/// The checks, the question, the run.
async fn apply_plan(
    printer: &Printer,
    apis: &AccountMap,
    store: &mut Store,
    plan: &Plan,
    plan_json: &str,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let checked = ops::apply::check(apis, plan).await?;
    for (account, region) in &checked.enforced {
        let what = if plan.action == Action::AllowV1 {
            "EC2 will refuse these changes to HttpTokens=optional"
        } else {
            "a later rollback to HttpTokens=optional will be refused"
        };
        printer.warn(&format!(
            "{account} {region}: the account default has HttpTokensEnforced=enabled: {what}"
        ));
    }
    let question = format!(
        "Apply {} to {} instance(s) in {} region(s) of {}{}?",
        plan.action.as_str(),
        checked.to_send,
        checked.regions,
        match checked.accounts.len() {
            1 => format!("account {}", checked.accounts.first().expect("one")),
            n => format!("{n} accounts"),
        },
        match checked.at_target {
            0 => String::new(),
            n => format!(" ({n} already at target)"),
        },
    );
    let detail = output::run::field_summary(&checked.fields);
    if !printer.confirm(&question, &detail, exec.yes)? {
        printer.note("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let log = open_log(exec.log.as_deref())?;
    let path = log.as_ref().map(|l| l.path().display().to_string());
    let (run, guard) = crate::runs::apply::start(store, plan, plan_json, path.as_deref())?;
    printer.note(&format!("run {run} started: {} change(s)", checked.to_send));
    let finished = drive(printer, store, &fleet(apis), run, guard, exec, log).await?;
    report(printer, &finished, format)
}

fn open_log(path: Option<&std::path::Path>) -> Result<Option<ChangeLog>, Error> {
    path.map(ChangeLog::open)
        .transpose()
        .map_err(|e| Error::from(crate::runs::RunError::from(e)))
}

/// `apply --resume RUN`: finishes a run that did not finish.
pub async fn resume(
    session: &Session,
    printer: &Printer,
    run: i64,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let provider = ops::provider(session).await?;
    let (r, apis) = ops::apply::resume(session, provider.as_ref(), &mut store, run).await?;
    warn_taken_over(printer, &r.taken_over);
    if r.open == 0 {
        printer.note(&format!("run {run} has nothing left to do"));
        let run = crate::runs::status::finish(&store, run, &r.guard)?;
        drop(r.guard);
        let finished = Finished {
            run,
            outcome: Default::default(),
            caught_up: 0,
        };
        return report(printer, &finished, format);
    }
    if !printer.confirm(
        &format!(
            "Resume run {run}: {} change(s) to re-check and finish?",
            r.open
        ),
        "",
        exec.yes,
    )? {
        printer.note("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    // Keep writing the run's log where it went (or where --log says now).
    let path = exec
        .log
        .clone()
        .or_else(|| r.run.log_path.as_ref().map(Into::into));
    let log = open_log(path.as_deref())?;
    if let Some(l) = &log {
        store.set_log_path(run, &l.path().display().to_string())?;
    }
    store.reopen_run(run)?;
    let finished = drive(printer, &mut store, &fleet(&apis), run, r.guard, exec, log).await?;
    report(printer, &finished, format)
}

/// Warns about each run lease taken over from a process that was gone.
pub fn warn_taken_over(printer: &Printer, taken: &crate::runs::lease::TakenOver) {
    for (lease, why) in taken {
        printer.warn(&format!(
            "run {} was held by {} ({why}); taking it over",
            lease.run,
            crate::runs::lease::describe_holder(lease)
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

async fn ctrl_c(printer: &Printer, interrupt: &AtomicBool, run: i64) {
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

/// Renders a finished run, says what stopped it and what is left, and picks
/// the exit code: 0 only when every change is applied or already at target.
pub fn report(printer: &Printer, finished: &Finished, format: Format) -> Result<ExitCode, Error> {
    let (run, outcome) = (&finished.run, &finished.outcome);
    printer.emit(|w, style| {
        let view = output::run::RunView {
            run,
            outcome: Some(outcome),
            lease: None,
            all: false,
        };
        output::run::render(&view, format, style, w)
    })?;
    let id = run.id;
    if outcome.throttled > 0 {
        printer.warn(&format!(
            "EC2 throttled {} call(s); {} retr(ies) with backoff in all",
            outcome.throttled, outcome.retries
        ));
    }
    match &outcome.stop {
        Some(Stop::Credentials(e)) => printer.error(
            &format!("run {id} stopped: {e}"),
            &format!("refresh your credentials and run `imdsguard apply --resume {id}`"),
        ),
        Some(Stop::AccessDenied(e)) => printer.error(
            &format!("run {id} stopped: {e}"),
            &format!("{}; then `imdsguard apply --resume {id}`", e.hint()),
        ),
        Some(Stop::LeaseLost) => printer.error(
            &format!("run {id} was taken over by another process (this one had stopped answering); it stopped sending"),
            &format!("`imdsguard runs {id}` shows where it stands"),
        ),
        Some(Stop::Interrupted) | None => {}
    }
    for f in &outcome.region_failures {
        printer.error(
            &format!(
                "{} {}: could not re-check instances before changing them: {}; their changes were not sent",
                f.account_id, f.region, f.error
            ),
            &format!("{}; then `imdsguard apply --resume {id}`", f.error.hint()),
        );
    }
    let problems = status::problems(run);
    if !problems.is_empty() {
        let shown: Vec<String> = problems
            .iter()
            .map(|c| {
                let why = c
                    .reason
                    .map(Named::as_str)
                    .or(c.error_code.as_deref())
                    .unwrap_or("");
                if why.is_empty() {
                    format!("{} ({})", c.instance_id, c.status.as_str())
                } else {
                    format!("{} ({}: {why})", c.instance_id, c.status.as_str())
                }
            })
            .collect();
        printer.note(&format!(
            "{} change(s) not done: {}",
            problems.len(),
            ops::list(shown.iter().map(String::as_str))
        ));
        let left = problems
            .iter()
            .filter(|c| matches!(c.status, ChangeStatus::Planned | ChangeStatus::Issued))
            .count();
        if left > 0 {
            printer.note(&format!(
                "{left} change(s) not sent: resume with `imdsguard apply --resume {id}`, undo with `imdsguard rollback {id}`"
            ));
        } else {
            printer.note(&format!(
                "see `imdsguard runs {id}`; `imdsguard apply --resume {id}` re-checks them, `imdsguard rollback {id}` undoes the run"
            ));
        }
    }
    Ok(match status::exit_class(run, outcome) {
        ExitClass::Done => ExitCode::Success,
        ExitClass::Interrupted => ExitCode::Interrupted,
        ExitClass::Problems => ExitCode::Failure,
    })
}
