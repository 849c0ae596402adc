//! `imdsguard apply`, `harden` and `disable`: check a plan against what EC2
//! says now, journal a run, execute it, and report. Also the shared
//! [`execute`] used by `rollback`.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::apply::{ExecOutcome, ExecSettings, Executor};
use std::collections::BTreeSet;

use futures::stream::{self, StreamExt};

use crate::cli::{ApplyArgs, DisableArgs, ExecOpts, HardenArgs, OneStepArgs};
use crate::clock::now;
use crate::commands::accounts::{AccountMap, apis_for, describe_all, into_map, scan_targets};
use crate::commands::{confirm, emit, plan as plan_cmd, print_error, warn};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::journal::{ChangeRecord, ChangeStatus, NewChange};
use crate::output;
use crate::plan::{self, Action, Plan};
use crate::progress::{Bar, Reporter, Silent};
use crate::settings::Global;
use crate::store::Store;

pub async fn run(global: &Global, args: &ApplyArgs) -> Result<ExitCode, Error> {
    validate_exec(&args.exec)?;
    let mut store = Store::open(&global.db)?;
    if let Some(run) = args.resume {
        return resume(global, &mut store, run, &args.exec).await;
    }
    let path = args
        .plan
        .as_ref()
        .expect("clap requires PLAN without --resume");
    let plan = plan::load(path)?;
    if plan.action == Action::Rollback {
        return Err(Error::Refused {
            message: "this plan is a rollback; it is applied by `imdsguard rollback`".into(),
            hint: "run `imdsguard rollback RUN`".into(),
        });
    }
    let plan_json = std::fs::read_to_string(path).unwrap_or_default();
    if plan.changes.is_empty() {
        eprintln!("nothing to do: the plan has no changes");
        return Ok(ExitCode::Success);
    }
    let apis = apis_for(global, &plan_accounts(&plan)).await?;
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
    validate_exec(exec)?;
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

fn validate_exec(exec: &ExecOpts) -> Result<(), Error> {
    if !(exec.rate > 0.0 && exec.rate <= 1000.0) {
        return Err(Error::Usage {
            message: format!("--rate {} is out of range", exec.rate),
            hint: "pass changes per second per region, e.g. --rate 5 (EC2's sustained limit)"
                .into(),
        });
    }
    Ok(())
}

fn plan_accounts(plan: &Plan) -> BTreeSet<String> {
    plan.changes.iter().map(|c| c.account_id.clone()).collect()
}

/// The safety checks, then the run. Nothing is sent unless every planned
/// instance's account can be reached (its own credentials, or `--role-name`),
/// and every instance exists and still has the options the plan saw (or
/// already has its target).
async fn apply_plan(
    global: &Global,
    apis: &AccountMap,
    store: &mut Store,
    plan: &Plan,
    plan_json: &str,
    exec: &ExecOpts,
) -> Result<ExitCode, Error> {
    let seen = describe_all(
        apis,
        plan.changes.iter().map(|c| {
            (
                c.account_id.as_str(),
                c.region.as_str(),
                c.instance_id.as_str(),
            )
        }),
    )
    .await;
    let mut missing = Vec::new();
    let mut drifted = Vec::new();
    let mut at_target = Vec::new();
    for c in &plan.changes {
        match seen.get(&(
            c.account_id.clone(),
            c.region.clone(),
            c.instance_id.clone(),
        )) {
            Some(Err(e)) => return Err(Error::Aws(e.clone())),
            Some(Ok(None)) | None => missing.push(c.instance_id.as_str()),
            Some(Ok(Some((now, _)))) if *now == c.target => at_target.push(c.instance_id.as_str()),
            Some(Ok(Some((now, _)))) if *now != c.current => {
                drifted.push(format!("{} (now {})", c.instance_id, now.describe()))
            }
            Some(Ok(Some(_))) => {}
        }
    }
    if !missing.is_empty() {
        return Err(Error::Refused {
            message: format!(
                "{} planned instance(s) no longer exist: {}; nothing was changed",
                missing.len(),
                list(&missing)
            ),
            hint: "re-run `imdsguard plan` to plan against the current fleet".into(),
        });
    }
    if !drifted.is_empty() {
        let refs: Vec<&str> = drifted.iter().map(String::as_str).collect();
        return Err(Error::Refused {
            message: format!(
                "{} instance(s) changed since the plan was made: {}; nothing was changed",
                drifted.len(),
                list(&refs)
            ),
            hint: "re-run `imdsguard plan` so the plan matches what is there now".into(),
        });
    }
    enforced_defaults_warning(global, apis, plan).await;
    let todo = plan.changes.len() - at_target.len();
    let regions: std::collections::BTreeSet<&str> =
        plan.changes.iter().map(|c| c.region.as_str()).collect();
    let question = format!(
        "Apply {} to {todo} instance(s) in {} region(s) of {}{}?",
        plan.action.as_str(),
        regions.len(),
        match apis.len() {
            1 => format!("account {}", apis.keys().next().expect("one")),
            n => format!("{n} accounts"),
        },
        if at_target.is_empty() {
            String::new()
        } else {
            format!(" ({} already at target)", at_target.len())
        }
    );
    if !confirm(&question, exec.yes)? {
        eprintln!("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let changes: Vec<NewChange> = plan
        .changes
        .iter()
        .map(|c| NewChange {
            account_id: c.account_id.clone(),
            region: c.region.clone(),
            instance_id: c.instance_id.clone(),
            previous: c.current,
            target: c.target,
        })
        .collect();
    let run = store.create_run(
        "apply",
        plan.action.as_str(),
        None,
        Some((&plan.digest, plan_json)),
        &now(),
        &changes,
    )?;
    let at = now();
    let loaded = store.load_run(run)?;
    for c in &loaded.changes {
        if at_target.contains(&c.instance_id.as_str()) {
            store.settle(run, c.seq, ChangeStatus::Skipped, "already at target", &at)?;
        }
    }
    if global.verbosity >= 0 {
        eprintln!("run {run} started: {todo} change(s)");
    }
    execute(global, apis, store, run, plan.action.as_str(), exec).await
}

/// Where the account default has `HttpTokensEnforced=enabled`, EC2 refuses
/// any change back to `HttpTokens=optional`: say so before changing anything.
async fn enforced_defaults_warning(global: &Global, apis: &AccountMap, plan: &Plan) {
    let places: BTreeSet<(&str, &str)> = plan
        .changes
        .iter()
        .map(|c| (c.account_id.as_str(), c.region.as_str()))
        .collect();
    for (account, region) in places {
        let Some(a) = apis.get(account) else { continue };
        match a.ec2.metadata_defaults(region).await {
            Ok(d) if d.http_tokens_enforced.as_deref() == Some("enabled") => {
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
            Ok(_) => {}
            // Older partitions and emulators lack the API; it only feeds a warning.
            Err(e) => tracing::debug!("{region}: {e}"),
        }
    }
}

fn list(items: &[&str]) -> String {
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

/// Finishes an interrupted run: changes whose call was sent but whose answer
/// was never recorded are checked against EC2 first, so nothing EC2 already
/// accepted is sent again.
async fn resume(
    global: &Global,
    store: &mut Store,
    run: i64,
    exec: &ExecOpts,
) -> Result<ExitCode, Error> {
    let loaded = store.load_run(run)?;
    let open: Vec<&ChangeRecord> = loaded
        .changes
        .iter()
        .filter(|c| matches!(c.status, ChangeStatus::Planned | ChangeStatus::Issued))
        .collect();
    if open.is_empty() {
        eprintln!("run {run} has nothing left to do");
        return finish(global, store, run, &ExecOutcome::default());
    }
    let apis = apis_for(global, &open.iter().map(|c| c.account_id.clone()).collect()).await?;
    let seen = describe_all(
        &apis,
        open.iter().map(|c| {
            (
                c.account_id.as_str(),
                c.region.as_str(),
                c.instance_id.as_str(),
            )
        }),
    )
    .await;
    let at = now();
    let mut todo = 0;
    for c in &open {
        match seen.get(&(
            c.account_id.clone(),
            c.region.clone(),
            c.instance_id.clone(),
        )) {
            Some(Err(e)) => return Err(Error::Aws(e.clone())),
            Some(Ok(Some((now, _)))) if *now == c.target => {
                // Already in effect: an answered call, or one whose answer was lost.
                let status = if c.status == ChangeStatus::Issued || c.attempts > 0 {
                    ChangeStatus::Applied
                } else {
                    ChangeStatus::Skipped
                };
                store.settle(run, c.seq, status, "found at target on resume", &at)?;
            }
            Some(Ok(Some((now, _)))) if *now != c.previous => {
                let msg = format!(
                    "changed since the run started (now {}); not touched",
                    now.describe()
                );
                store.settle(run, c.seq, ChangeStatus::Skipped, &msg, &at)?;
            }
            Some(Ok(Some(_))) => {
                store.mark_result(
                    run,
                    c.seq,
                    ChangeStatus::Planned,
                    None,
                    None,
                    None,
                    None,
                    &at,
                )?;
                todo += 1;
            }
            Some(Ok(None)) | None => {
                store.mark_result(
                    run,
                    c.seq,
                    ChangeStatus::Failed,
                    None,
                    None,
                    Some("InvalidInstanceID.NotFound"),
                    Some("instance no longer exists"),
                    &at,
                )?;
            }
        }
    }
    if todo > 0
        && !confirm(
            &format!("Resume run {run}: {todo} change(s) left?"),
            exec.yes,
        )?
    {
        eprintln!("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    store.set_run_status(run, "running", None)?;
    execute(global, &apis, store, run, &loaded.action, exec).await
}

/// Runs the executor over a journaled run, with Ctrl-C handling, progress
/// and the `--log` file, then reports.
pub async fn execute(
    global: &Global,
    apis: &AccountMap,
    store: &mut Store,
    run: i64,
    action: &str,
    exec: &ExecOpts,
) -> Result<ExitCode, Error> {
    let changes = store.load_run(run)?.changes;
    let cancel = AtomicBool::new(false);
    let log = match &exec.log {
        Some(path) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| Error::Output {
                    path: path.clone(),
                    source,
                })?,
        )),
        None => None,
    };
    let on_result = |c: &ChangeRecord| {
        if let Some(file) = &log {
            let line = serde_json::json!({
                "time": now(),
                "run": run,
                "account_id": c.account_id,
                "region": c.region,
                "instance_id": c.instance_id,
                "action": action,
                "previous": c.previous,
                "target": c.target,
                "dry_run": false,
                "status": c.status.as_str(),
                "error_code": c.error_code,
            });
            let mut f = file.lock().expect("not poisoned");
            let _ = writeln!(f, "{line}");
        }
    };
    let reporter: Box<dyn Reporter> = if global.progress {
        Box::new(Bar::new("applying"))
    } else {
        Box::new(Silent)
    };
    // EC2's bucket holds about 100 calls and is shared with every other
    // caller in the account and region: start with half of it, at most.
    let burst = (exec.rate * 10.0).clamp(1.0, 50.0);
    let settings = ExecSettings {
        rate: exec.rate,
        burst,
        concurrency: global.concurrency,
        check_permissions: exec.check_permissions,
        verify_timeout: Duration::from_secs(exec.verify_timeout),
        ..ExecSettings::default()
    };
    // One executor per account (EC2 limits are per account and region),
    // all journaling into the same run.
    let mut by_account: std::collections::BTreeMap<String, Vec<ChangeRecord>> = Default::default();
    for c in changes {
        by_account.entry(c.account_id.clone()).or_default().push(c);
    }
    let outcome = {
        let journal = Mutex::new(&mut *store);
        let executors: Vec<(Executor, Vec<ChangeRecord>)> = by_account
            .into_iter()
            .filter_map(|(account, changes)| {
                let ec2 = apis.get(&account)?.ec2.as_ref();
                Some((
                    Executor {
                        ec2,
                        store: &journal,
                        run,
                        settings: settings.clone(),
                        cancel: &cancel,
                        reporter: reporter.as_ref(),
                        on_result: &on_result,
                    },
                    changes,
                ))
            })
            .collect();
        let all = stream::iter(executors)
            .map(|(executor, changes)| async move { executor.execute(changes).await })
            .buffer_unordered(global.concurrency.max(1))
            .collect::<Vec<_>>();
        tokio::select! {
            r = all => r.into_iter().try_fold(ExecOutcome::default(), |mut acc, o| {
                let o = o?;
                acc.interrupted |= o.interrupted;
                acc.stopped_by = acc.stopped_by.or(o.stopped_by);
                acc.throttled += o.throttled;
                acc.retries += o.retries;
                Ok::<_, crate::apply::ExecError>(acc)
            }),
            _ = ctrl_c(&cancel, run) => unreachable!("ctrl_c never returns"),
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            store.set_run_status(run, "failed", Some(&now()))?;
            return Err(e.into());
        }
    };
    finish(global, store, run, &outcome)
}

/// First Ctrl-C: stop sending, let in-flight calls finish and be journaled.
/// Second: quit at once (the journal already holds every intent).
async fn ctrl_c(cancel: &AtomicBool, run: i64) {
    if tokio::signal::ctrl_c().await.is_ok() {
        cancel.store(true, Ordering::SeqCst);
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

fn finish(
    global: &Global,
    store: &mut Store,
    run: i64,
    outcome: &ExecOutcome,
) -> Result<ExitCode, Error> {
    let loaded = store.load_run(run)?;
    let left = loaded
        .changes
        .iter()
        .filter(|c| matches!(c.status, ChangeStatus::Planned | ChangeStatus::Issued))
        .count();
    let failed = loaded
        .changes
        .iter()
        .filter(|c| c.status == ChangeStatus::Failed)
        .count();
    let pending = loaded
        .changes
        .iter()
        .filter(|c| c.status == ChangeStatus::Pending)
        .count();
    let status = if outcome.interrupted || left > 0 {
        "interrupted"
    } else if failed > 0 || pending > 0 {
        "failed"
    } else {
        "done"
    };
    let finished_at = now();
    store.set_run_status(run, status, Some(&finished_at))?;
    let mut loaded = loaded;
    loaded.status = status.to_owned();
    loaded.finished_at = Some(finished_at);
    emit(global.out.as_deref(), |w| {
        output::run::render(&loaded, false, global.format, global.stdout_style, w)
    })?;
    if outcome.throttled > 0 && global.verbosity >= 0 {
        warn(
            global.stderr_style,
            global.verbosity,
            &format!(
                "EC2 throttled {} call(s); {} retr(ies) with backoff in all",
                outcome.throttled, outcome.retries
            ),
        );
    }
    if let Some(e) = &outcome.stopped_by {
        print_error(
            global.stderr_style,
            &format!("run {run} stopped: {e}"),
            &e.hint(),
        );
    }
    if left > 0 {
        eprintln!(
            "{left} change(s) not sent: resume with `imdsguard apply --resume {run}`, undo with `imdsguard rollback {run}`"
        );
    } else if failed > 0 || pending > 0 {
        eprintln!(
            "{failed} failed, {pending} pending: see `imdsguard runs {run}`; undo with `imdsguard rollback {run}`"
        );
    }
    Ok(match status {
        "done" => ExitCode::Success,
        "interrupted" if outcome.interrupted => ExitCode::Interrupted,
        _ => ExitCode::Failure,
    })
}
