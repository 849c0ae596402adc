//! `imdsguard apply`, `harden` and `disable`: resolve the plan (a file, or
//! one made now), ask the engine what EC2 says about it, confirm, start the
//! run, and report. Also [`execute`], the edge around [`runs::drive`]
//! (Ctrl-C, progress bar, `--log`, settings) that `rollback` uses too.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::cli::{ApplyArgs, DisableArgs, ExecOpts, HardenArgs, OneStepArgs};
use crate::commands::accounts::{AccountMap, apis_for, fleet, into_map, scan_targets};
use crate::commands::{confirm, emit, plan as plan_cmd, print_error, warn, warn_taken_over};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::journal::{ChangeStatus, Named};
use crate::model::Action;
use crate::output;
use crate::plan::{self, Plan};
use crate::progress::{Bar, Reporter, Silent};
use crate::runs::executor::ExecSettings;
use crate::runs::lease::LeaseGuard;
use crate::runs::ledger::{ChangeLog, Ledger};
use crate::runs::status::{self, ExitClass, field_changes};
use crate::runs::{self, Drive, Fleet, Outcome, Stop, Stops};
use crate::settings::Global;
use crate::store::Store;

pub async fn run(global: &Global, args: &ApplyArgs) -> Result<ExitCode, Error> {
    exec_settings(global, &args.exec)?;
    if let Some(run) = args.resume {
        return resume(global, run, &args.exec).await;
    }
    let path = args
        .plan
        .as_ref()
        .expect("clap requires PLAN without --resume");
    let max_age = crate::clock::parse_duration(&args.max_plan_age).ok_or_else(|| Error::Usage {
        message: format!("--max-plan-age `{}` is not a duration", args.max_plan_age),
        hint: "pass e.g. 7d, 36h or 90m".into(),
    })?;
    // Everything about the plan file is checked before the database or AWS.
    let plan = plan::load(path)?;
    plan::check_age(
        &plan,
        &path.display().to_string(),
        max_age,
        crate::clock::now_epoch(),
    )?;
    if plan.changes.is_empty() {
        eprintln!("nothing to do: the plan has no changes");
        return Ok(ExitCode::Success);
    }
    let plan_json = std::fs::read_to_string(path).unwrap_or_default();
    let mut store = Store::open(&global.db)?;
    let accounts: BTreeSet<String> = plan.changes.iter().map(|c| c.account_id.clone()).collect();
    let apis = apis_for(global, &accounts).await?;
    apply_plan(global, &apis, &mut store, &plan, &plan_json, &args.exec).await
}

pub async fn harden(global: &Global, args: &HardenArgs) -> Result<ExitCode, Error> {
    let action = if args.allow_v1 {
        Action::AllowV1
    } else {
        Action::RequireV2
    };
    plan_and_apply(global, action, &args.step).await
}

pub async fn disable(global: &Global, args: &DisableArgs) -> Result<ExitCode, Error> {
    plan_and_apply(global, Action::DisableEndpoint, &args.step).await
}

async fn plan_and_apply(
    global: &Global,
    action: Action,
    step: &OneStepArgs,
) -> Result<ExitCode, Error> {
    let exec = &step.exec;
    exec_settings(global, exec)?;
    let inputs = plan_cmd::inputs(action, &step.filters, &step.plan)?;
    let mut store = Store::open(&global.db)?;
    let targets = scan_targets(global).await?;
    let (plan, complete) = plan_cmd::make(global, Some(&targets[..]), &mut store, inputs).await?;
    if step.dry_run || plan.changes.is_empty() {
        emit(global.out.as_deref(), |w| {
            output::plan::render(&plan, global.format, global.stdout_style, w)
        })?;
        if plan.changes.is_empty() {
            eprintln!("nothing to do");
        }
        return Ok(if complete {
            ExitCode::Success
        } else {
            ExitCode::Failure
        });
    }
    // The plan goes to stderr so stdout stays the run's result.
    if global.format == output::Format::Table && global.verbosity >= 0 {
        let mut err = std::io::stderr().lock();
        let _ = output::plan::render(&plan, output::Format::Table, global.stderr_style, &mut err);
        let _ = writeln!(err);
    }
    let plan_json = serde_json::to_string_pretty(&plan).expect("plans serialize");
    // The scan's clients (and their credentials, assumed roles included)
    // serve the changes too: no second round of credential resolution.
    let implicit = plan.changes.first().map(|c| c.account_id.as_str());
    let apis = into_map(targets, implicit);
    let code = apply_plan(global, &apis, &mut store, &plan, &plan_json, exec).await?;
    Ok(if complete { code } else { ExitCode::Failure })
}

/// Turns the execution flags into the executor's settings, refusing values
/// that make no sense before anything else happens.
fn exec_settings(global: &Global, exec: &ExecOpts) -> Result<ExecSettings, Error> {
    if !(exec.rate > 0.0 && exec.rate <= 1000.0) {
        return Err(Error::Usage {
            message: format!("--rate {} is out of range", exec.rate),
            hint: "pass changes per second per region, e.g. --rate 5 (EC2's sustained limit)"
                .into(),
        });
    }
    if exec.recheck_window == 0 {
        return Err(Error::Usage {
            message: "--recheck-window 0 leaves no time to send a change after looking at it"
                .into(),
            hint: "pass seconds, e.g. --recheck-window 30 (the default)".into(),
        });
    }
    Ok(ExecSettings {
        rate: exec.rate,
        // EC2's bucket holds about 100 calls and is shared with every other
        // caller in the account and region: start with half of it, at most.
        burst: (exec.rate * 10.0).clamp(1.0, 50.0),
        concurrency: global.concurrency,
        verify_timeout: Duration::from_secs(exec.verify_timeout),
        recheck_window: Duration::from_secs(exec.recheck_window),
        ..ExecSettings::default()
    })
}

/// The checks, the question, the run. Nothing is sent unless every planned
/// instance's account can be reached, and every instance exists and still
/// has the options the plan saw (or already has its target).
async fn apply_plan(
    global: &Global,
    apis: &AccountMap,
    store: &mut Store,
    plan: &Plan,
    plan_json: &str,
    exec: &ExecOpts,
) -> Result<ExitCode, Error> {
    let fleet = fleet(apis);
    let pre = runs::apply::preflight(&fleet, plan).await?;
    if !pre.missing.is_empty() {
        return Err(Error::Refused {
            message: format!(
                "{} planned instance(s) no longer exist: {}; nothing was changed",
                pre.missing.len(),
                list(pre.missing.iter().map(String::as_str))
            ),
            hint: "re-run `imdsguard plan` to plan against the current fleet".into(),
        });
    }
    if !pre.changed.is_empty() {
        let shown: Vec<String> = pre
            .changed
            .iter()
            .map(|(id, now)| format!("{id} (now {})", now.describe()))
            .collect();
        return Err(Error::Refused {
            message: format!(
                "{} instance(s) changed since the plan was made: {}; nothing was changed",
                shown.len(),
                list(shown.iter().map(String::as_str))
            ),
            hint: "re-run `imdsguard plan` so the plan matches what is there now".into(),
        });
    }
    let places = plan
        .changes
        .iter()
        .map(|c| (c.account_id.as_str(), c.region.as_str()))
        .collect();
    for (account, region) in runs::apply::enforced_defaults(&fleet, places).await {
        let what = if plan.action == Action::AllowV1 {
            "EC2 will refuse these changes to HttpTokens=optional"
        } else {
            "a later rollback to HttpTokens=optional will be refused"
        };
        warn(
            global.stderr_style,
            global.verbosity,
            &format!(
                "{account} {region}: the account default has HttpTokensEnforced=enabled: {what}"
            ),
        );
    }
    let at_target: BTreeSet<&str> = pre.at_target.iter().map(String::as_str).collect();
    let regions: BTreeSet<&str> = plan.changes.iter().map(|c| c.region.as_str()).collect();
    let accounts: BTreeSet<&str> = plan.changes.iter().map(|c| c.account_id.as_str()).collect();
    let fields = field_changes(
        plan.changes
            .iter()
            .filter(|c| !at_target.contains(c.instance_id.as_str()))
            .map(|c| (&c.current, &c.target)),
    );
    let question = format!(
        "Apply {} to {} instance(s) in {} region(s) of {}{}?\n  {}\n",
        plan.action.as_str(),
        pre.to_send,
        regions.len(),
        match accounts.len() {
            1 => format!("account {}", accounts.first().expect("one")),
            n => format!("{n} accounts"),
        },
        if at_target.is_empty() {
            String::new()
        } else {
            format!(" ({} already at target)", at_target.len())
        },
        output::run::field_summary(&fields),
    );
    if !confirm(&question, exec.yes, global.verbosity)? {
        eprintln!("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let log = open_log(exec.log.as_deref())?;
    let (run, guard) = runs::apply::start(store, plan, plan_json, log_path(&log).as_deref())?;
    if global.verbosity >= 0 {
        eprintln!("run {run} started: {} change(s)", pre.to_send);
    }
    execute(global, &fleet, store, run, guard, exec, log).await
}

fn open_log(path: Option<&std::path::Path>) -> Result<Option<ChangeLog>, Error> {
    path.map(ChangeLog::open)
        .transpose()
        .map_err(|e| Error::Run(Box::new(e.into())))
}

fn log_path(log: &Option<ChangeLog>) -> Option<String> {
    log.as_ref().map(|l| l.path().display().to_string())
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    let mut s = items
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        s.push_str(&format!(" and {} more", items.len() - 10));
    }
    s
}

/// Finishes a run that did not finish (see [`runs::resume`]).
async fn resume(global: &Global, run: i64, exec: &ExecOpts) -> Result<ExitCode, Error> {
    let mut store = Store::open(&global.db)?;
    let r = runs::resume::open(&mut store, run)?;
    warn_taken_over(global.stderr_style, global.verbosity, &r.taken_over);
    // Keep writing the run's log where it went (or where --log says now).
    let path = exec
        .log
        .clone()
        .or_else(|| r.run.log_path.as_ref().map(Into::into));
    if r.open == 0 {
        eprintln!("run {run} has nothing left to do");
        let outcome = Outcome::default();
        let finished = status::finish(&store, run, &r.guard)?;
        drop(r.guard);
        return report(global, &finished, &outcome);
    }
    let accounts: BTreeSet<String> = r
        .run
        .changes
        .iter()
        .filter(|c| !c.status.is_final())
        .map(|c| c.account_id.clone())
        .collect();
    let apis = apis_for(global, &accounts).await?;
    if !confirm(
        &format!(
            "Resume run {run}: {} change(s) to re-check and finish?",
            r.open
        ),
        exec.yes,
        global.verbosity,
    )? {
        eprintln!("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let log = open_log(path.as_deref())?;
    if let Some(p) = log_path(&log) {
        store.set_log_path(run, &p)?;
    }
    store.reopen_run(run)?;
    execute(global, &fleet(&apis), &mut store, run, r.guard, exec, log).await
}

/// Drives a journaled run that this process holds the lease of, with
/// Ctrl-C handling, progress and the `--log` file, then reports.
pub async fn execute(
    global: &Global,
    fleet: &Fleet<'_>,
    store: &mut Store,
    run: i64,
    guard: LeaseGuard,
    exec: &ExecOpts,
    log: Option<ChangeLog>,
) -> Result<ExitCode, Error> {
    let settings = exec_settings(global, exec)?;
    let loaded = store.load_run(run)?;
    let stops = Stops::new(guard.lost());
    let reporter: Box<dyn Reporter> = if global.progress {
        Box::new(Bar::new("applying"))
    } else {
        Box::new(Silent)
    };
    let result = {
        let ledger = Ledger::new(
            store,
            run,
            loaded.kind,
            loaded.action,
            loaded.parent_run,
            log,
        );
        let mut changes = loaded.changes;
        // Lines a crash kept from the log, before anything new happens.
        let caught_up = ledger
            .catch_up(&mut changes)
            .map_err(runs::RunError::from)?;
        if caught_up > 0 && global.verbosity >= 0 {
            eprintln!("wrote {caught_up} log line(s) a previous process did not");
        }
        let drive = Drive {
            fleet,
            ledger: &ledger,
            settings: &settings,
            stops: &stops,
            reporter: reporter.as_ref(),
            check_permissions: exec.check_permissions,
        };
        tokio::select! {
            r = runs::drive(&drive, changes) => r,
            _ = ctrl_c(&stops, run) => unreachable!("ctrl_c never returns"),
        }
    };
    let finished = status::finish(store, run, &guard)?;
    drop(guard);
    let outcome = result?;
    report(global, &finished, &outcome)
}

/// First Ctrl-C: stop sending, let in-flight calls finish and be journaled.
/// Second: quit at once (the journal already holds every intent, and the
/// next process takes over the lease of a dead one).
async fn ctrl_c(stops: &Stops, run: i64) {
    if tokio::signal::ctrl_c().await.is_ok() {
        stops.interrupt.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: finishing the calls in flight; press Ctrl-C again to quit now");
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!(
            "quit: resume with `imdsguard apply --resume {run}`, undo with `imdsguard rollback {run}`"
        );
        std::process::exit(130);
    }
    std::future::pending::<()>().await
}

/// Renders a finished run, says what stopped it and what is left, and picks
/// the exit code: 0 only when every change is applied or already at target.
fn report(
    global: &Global,
    run: &crate::journal::Run,
    outcome: &Outcome,
) -> Result<ExitCode, Error> {
    emit(global.out.as_deref(), |w| {
        let view = output::run::RunView {
            run,
            outcome: Some(outcome),
            lease: None,
            all: false,
        };
        output::run::render(&view, global.format, global.stdout_style, w)
    })?;
    let id = run.id;
    if outcome.throttled > 0 {
        warn(
            global.stderr_style,
            global.verbosity,
            &format!(
                "EC2 throttled {} call(s); {} retr(ies) with backoff in all",
                outcome.throttled, outcome.retries
            ),
        );
    }
    match &outcome.stop {
        Some(Stop::Credentials(e)) => print_error(
            global.stderr_style,
            &format!("run {id} stopped: {e}"),
            &format!("refresh your credentials and run `imdsguard apply --resume {id}`"),
        ),
        Some(Stop::AccessDenied(e)) => print_error(
            global.stderr_style,
            &format!("run {id} stopped: {e}"),
            &format!("{}; then `imdsguard apply --resume {id}`", e.hint()),
        ),
        Some(Stop::LeaseLost) => print_error(
            global.stderr_style,
            &format!(
                "run {id} was taken over by another process (this one had stopped answering); it stopped sending"
            ),
            &format!("`imdsguard runs {id}` shows where it stands"),
        ),
        Some(Stop::Interrupted) | None => {}
    }
    for f in &outcome.region_failures {
        print_error(
            global.stderr_style,
            &format!(
                "{} {}: could not re-check instances before changing them: {}; their changes were not sent",
                f.account_id, f.region, f.error
            ),
            &format!("{}; then `imdsguard apply --resume {id}`", f.error.hint()),
        );
    }
    let problems = status::problems(run);
    let left = problems
        .iter()
        .filter(|c| matches!(c.status, ChangeStatus::Planned | ChangeStatus::Issued))
        .count();
    if !problems.is_empty() && global.verbosity >= 0 {
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
        eprintln!(
            "{} change(s) not done: {}",
            problems.len(),
            list(shown.iter().map(String::as_str))
        );
    }
    if left > 0 {
        eprintln!(
            "{left} change(s) not sent: resume with `imdsguard apply --resume {id}`, undo with `imdsguard rollback {id}`"
        );
    } else if !problems.is_empty() {
        eprintln!(
            "see `imdsguard runs {id}`; `imdsguard apply --resume {id}` re-checks them, `imdsguard rollback {id}` undoes the run"
        );
    }
    Ok(match status::exit_class(run, outcome) {
        ExitClass::Done => ExitCode::Success,
        ExitClass::Interrupted => ExitCode::Interrupted,
        ExitClass::Problems => ExitCode::Failure,
    })
}
