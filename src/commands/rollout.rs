//! `imdsguard rollout`: a plan applied in waves, each watched before the
//! next (see `ops::rollout` and `store::rollouts`).
//!
//! Every step holds the lease of the rollout's first run (its anchor), so
//! one process at a time advances a rollout; each decision is journaled
//! before it is acted on, and a step that died is finished by the next
//! `advance` (it resumes the runs it started, never re-sends a change).

use std::collections::{BTreeMap, BTreeSet};

use crate::commands::drive::{ExecRequest, drive, open_log, warn_taken_over};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::fleet::{AccountMap, fleet};
use crate::ops::rollout::{self as steps, RolloutRequest};
use crate::ops::{self, Session};
use crate::output::{self, Format};
use crate::plan::Plan;
use crate::printer::Printer;
use crate::rollout::Verdict;
use crate::runs::lease::{self, LeaseGuard, describe_holder};
use crate::runs::{self, RunError};
use crate::store::Store;
use crate::store::journal::{Purpose, RunStatus};
use crate::store::rollouts::{DecisionKind, Rollout, RolloutState, WaveState};

/// `rollout start PLAN`: check the plan as `apply` does, split it, confirm,
/// apply wave 1.
pub async fn start(
    session: &Session,
    printer: &Printer,
    path: &std::path::Path,
    max_age: std::time::Duration,
    request: &RolloutRequest,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let Some((plan, plan_json)) = crate::commands::read_plan(printer, path, max_age)? else {
        return Ok(ExitCode::Success);
    };
    let mut store = ops::store(session)?;
    let split = steps::split(&store, &plan, &request.spec)?;
    let provider = ops::provider(session).await?;
    let apis = ops::apply::plan_accounts(session, provider.as_ref(), &plan).await?;
    let checked = ops::apply::check(&apis, &plan).await?;
    let sizes: Vec<String> = split.waves.iter().map(|w| w.len().to_string()).collect();
    let question = format!(
        "Roll {} out to {} instance(s) in {} wave(s) of {} ({} group(s), soak {} between waves)?",
        plan.action.as_str(),
        plan.changes.len(),
        split.waves.len(),
        sizes.join(" + "),
        split.group_count(),
        crate::clock::human_duration(request.soak.as_secs()),
    );
    let detail = output::run::field_summary(&checked.fields);
    if !printer.confirm(&question, &detail, exec.yes)? {
        printer.note("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    for (account, region) in &checked.enforced {
        printer.warn(&format!(
            "{account} {region}: the account default has HttpTokensEnforced=enabled: a rollback of a broken instance to HttpTokens=optional will be refused"
        ));
    }
    let id = steps::record(&mut store, &plan_json, request, &plan, &split)?;
    printer.note(&format!(
        "rollout {id} started: wave 1 of {} (the canaries), {} instance(s)",
        split.waves.len(),
        split.waves[0].len()
    ));
    let rollout = store.load_rollout(id)?;
    let stepped = apply_wave(session, printer, &mut store, rollout, 1, exec).await?;
    show(printer, &store, id, format)?;
    Ok(stepped.code())
}

/// The open decision of a rollout (the one a step must finish first).
fn open_decision(rollout: &Rollout) -> Result<i64, Error> {
    rollout
        .decisions
        .iter()
        .rev()
        .find(|d| !d.done)
        .map(|d| d.id)
        .ok_or_else(|| Error::Refused {
            message: format!("rollout {} has no open decision", rollout.id),
            hint: "`imdsguard rollout status ID` shows its decisions".into(),
        })
}

/// What one step did.
enum Stepped {
    /// The soak has this long to go.
    Waiting(u64),
    /// A wave was applied and soaks now.
    Moved,
    /// A wave was applied, but some of its changes did not land (failed,
    /// or skipped because the instance changed): they are left out.
    Partial,
    /// A wave's run did not finish (interrupted, or answers still open):
    /// the next step resumes it.
    Unfinished,
    Halted,
    Ended,
}

impl Stepped {
    fn code(&self) -> ExitCode {
        match self {
            Stepped::Waiting(_) | Stepped::Moved | Stepped::Ended => ExitCode::Success,
            Stepped::Partial | Stepped::Unfinished | Stepped::Halted => ExitCode::Failure,
        }
    }
}

/// `rollout advance ID [--watch]`: one step, or steps until the rollout
/// halts or ends.
pub async fn advance(
    session: &Session,
    printer: &Printer,
    id: i64,
    watch: bool,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut problems = false;
    loop {
        let stepped = step(session, printer, id, exec).await?;
        problems |= matches!(stepped, Stepped::Partial);
        match stepped {
            Stepped::Waiting(secs) if watch => {
                // A progress line on a terminal (nothing in logs): the wait
                // until the next look, at most a minute.
                let wait = secs.clamp(1, 60);
                let bar = printer.reporter("soaking");
                bar.start(wait);
                for s in 0..wait {
                    bar.advance(&format!(
                        "rollout {id}: {} of soak left",
                        crate::clock::human_duration(secs - s)
                    ));
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                bar.finish();
            }
            Stepped::Moved | Stepped::Partial if watch => {}
            other => {
                let store = ops::views::open(&session.db)?;
                show(printer, &store, id, format)?;
                return Ok(match other.code() {
                    ExitCode::Success if problems => ExitCode::Failure,
                    code => code,
                });
            }
        }
    }
}

/// Takes the rollout's lock: the lease of its first wave's run.
fn lock(printer: &Printer, store: &mut Store, rollout: &Rollout) -> Result<LeaseGuard, Error> {
    let anchor = rollout
        .waves
        .first()
        .and_then(|w| w.run_id)
        .ok_or_else(|| Error::Refused {
            message: format!("rollout {} has no first run", rollout.id),
            hint: "start a new rollout with `imdsguard rollout start PLAN`".into(),
        })?;
    match lease::acquire(store, &[anchor], Purpose::Resume) {
        Ok((guard, taken)) => {
            warn_taken_over(printer, &taken);
            Ok(guard)
        }
        Err(RunError::Held { lease, .. }) => Err(Error::Refused {
            message: format!(
                "rollout {} is being advanced by {}",
                rollout.id,
                describe_holder(&lease)
            ),
            hint: format!(
                "wait for it to finish; a process that is gone is taken over (on this host at once, elsewhere after {} s without a heartbeat)",
                lease::STALE_AFTER
            ),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn step(
    session: &Session,
    printer: &Printer,
    id: i64,
    exec: &ExecRequest,
) -> Result<Stepped, Error> {
    let mut store = ops::store(session)?;
    let rollout = store.load_rollout(id)?;
    if matches!(rollout.state, RolloutState::Done | RolloutState::Aborted) {
        printer.note(&format!(
            "rollout {id} is {}",
            crate::store::journal::Named::as_str(rollout.state)
        ));
        return Ok(Stepped::Ended);
    }
    if rollout.waves[0].run_id.is_none() {
        // `start` died before wave 1's run existed: make it now (the run is
        // linked to its wave as it is created, so only one process can).
        return apply_wave(session, printer, &mut store, rollout, 1, exec).await;
    }
    let _lock = lock(printer, &mut store, &rollout)?;
    // Reload under the lock: another process may have moved it meanwhile.
    let rollout = store.load_rollout(id)?;
    if matches!(rollout.state, RolloutState::Done | RolloutState::Aborted) {
        return Ok(Stepped::Ended);
    }
    if let Some(open) = rollout.decisions.iter().rev().find(|d| !d.done) {
        printer.note(&format!(
            "rollout {id}: finishing decision {} ({}: {}) that a previous process left open",
            open.id,
            crate::store::journal::Named::as_str(open.kind),
            open.reason
        ));
        return finish_open(session, printer, &mut store, rollout, exec).await;
    }
    match rollout.state {
        RolloutState::Done | RolloutState::Aborted => {
            printer.note(&format!(
                "rollout {id} is {}",
                crate::store::journal::Named::as_str(rollout.state)
            ));
            return Ok(Stepped::Ended);
        }
        RolloutState::Halted => {
            printer.warn(&format!(
                "rollout {id} is halted: `imdsguard rollout status {id}` says why; `imdsguard rollout resume {id}` goes on, `imdsguard rollout abort {id}` undoes it"
            ));
            return Ok(Stepped::Halted);
        }
        RolloutState::Applying | RolloutState::Soaking => {}
    }
    let n = rollout.current_wave;
    let wave = &rollout.waves[(n - 1) as usize];
    let now = crate::clock::now_epoch();
    if let Some(until) = wave.soak_until
        && now < until
    {
        let left = (until - now) as u64;
        printer.note(&format!(
            "rollout {id}: wave {n} soaks for {} more; nothing to do yet",
            crate::clock::human_duration(left)
        ));
        return Ok(Stepped::Waiting(left));
    }
    // The soak is over: what did the wave's instances do since their change?
    let run = store.load_run(wave.run_id.expect("an applied wave has a run"))?;
    let landed = steps::landed(&rollout, &run, n);
    let provider = ops::provider(session).await?;
    let accounts: BTreeSet<String> = landed.iter().map(|l| l.account_id.clone()).collect();
    let apis = ops::fleet::accounts(session, provider.as_ref(), &accounts).await?;
    let calls = steps::measure(&apis, &landed, now).await?;
    let health = rollout
        .settings
        .health_cmd
        .as_deref()
        .and_then(|cmd| steps::health(cmd, id, n, &landed, steps::HEALTH_TIMEOUT));
    match steps::judge(&store, &rollout, &calls, health)? {
        Verdict::Clean => {
            let d = store.open_decision(
                id,
                n,
                DecisionKind::Pass,
                &format!(
                    "wave {n}: no instance refused more than {} IMDSv1 call(s) since its change{}",
                    rollout.settings.max_rejected,
                    if rollout.settings.health_cmd.is_some() {
                        "; the health command passed"
                    } else {
                        ""
                    }
                ),
            )?;
            store.set_wave_state(id, n, WaveState::Passed)?;
            store.close_decision(id, d, RolloutState::Soaking, n)?;
            let rollout = store.load_rollout(id)?;
            next_wave(session, printer, &mut store, rollout, exec).await
        }
        Verdict::Broke(offenders) => {
            let ids = steps::offender_ids(&rollout, &offenders);
            let reason = format!(
                "wave {n}: {} instance(s) refused IMDSv1 calls since their change ({}); rolling them back and holding their groups",
                ids.len(),
                ids.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            printer.warn(&format!("rollout {id}: {reason}"));
            let d = store.open_decision(id, n, DecisionKind::Halt, &reason)?;
            roll_back(session, printer, &mut store, run.id, &ids, exec).await?;
            halted(printer, &mut store, id, n, d, &offenders, &ids)
        }
        Verdict::Unhealthy(why) => {
            let reason = format!("wave {n}: {why}");
            printer.warn(&format!("rollout {id}: {reason}; halting"));
            let d = store.open_decision(id, n, DecisionKind::Halt, &reason)?;
            store.set_wave_state(id, n, WaveState::Halted)?;
            store.close_decision(id, d, RolloutState::Halted, n)?;
            Ok(Stepped::Halted)
        }
    }
}

/// Marks what the rollback of `ids` (the offenders of wave `n`) did, holds
/// their groups, halts, and says so (also what could not be rolled back).
fn halted(
    printer: &Printer,
    store: &mut Store,
    id: i64,
    n: i64,
    decision: i64,
    offenders: &[(i64, u64)],
    ids: &BTreeSet<String>,
) -> Result<Stepped, Error> {
    let rollout = store.load_rollout(id)?;
    let run = rollout.waves[(n - 1) as usize]
        .run_id
        .expect("a halted wave has a run");
    let back = steps::rolled_back(store, run)?;
    let held = steps::halt(store, &rollout, n, decision, offenders, &back)?;
    let stuck: Vec<&str> = ids
        .iter()
        .filter(|i| !back.contains(*i))
        .map(String::as_str)
        .collect();
    if !stuck.is_empty() {
        printer.warn(&format!(
            "rollout {id}: {} instance(s) could not be rolled back and still require IMDSv2: {} (`imdsguard runs` shows why; `imdsguard rollback {run} --instance-ids ...` tries again)",
            stuck.len(),
            stuck.join(", ")
        ));
    }
    printer.warn(&format!(
        "rollout {id} halted: {} instance(s) rolled back, {held} held back",
        ids.len() - stuck.len()
    ));
    Ok(Stepped::Halted)
}

/// After wave `current_wave` passed: applies the next wave that has
/// anything to change, or finishes the rollout.
async fn next_wave(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    rollout: Rollout,
    exec: &ExecRequest,
) -> Result<Stepped, Error> {
    let id = rollout.id;
    let mut n = rollout.current_wave + 1;
    while (n as usize) <= rollout.waves.len() && steps::wave_indexes(&rollout, n).is_empty() {
        store.set_wave_state(id, n, WaveState::Passed)?;
        n += 1;
    }
    if n as usize > rollout.waves.len() {
        let d = store.open_decision(
            id,
            rollout.current_wave,
            DecisionKind::Finish,
            "every wave passed",
        )?;
        store.close_decision(id, d, RolloutState::Done, rollout.current_wave)?;
        printer.note(&format!("rollout {id} is done: every wave passed"));
        return Ok(Stepped::Ended);
    }
    let count = steps::wave_indexes(&rollout, n).len();
    store.open_decision(
        id,
        n,
        DecisionKind::ApplyWave,
        &format!(
            "wave {} passed: apply wave {n} ({count} instance(s))",
            rollout.current_wave
        ),
    )?;
    store.set_rollout_state(id, RolloutState::Applying)?;
    let rollout = store.load_rollout(id)?;
    apply_wave(session, printer, store, rollout, n, exec).await
}

/// Applies wave `n` under its open decision: makes its run (linked to the
/// wave as it is created) or resumes the one a previous process made, and
/// drives it; then the wave soaks, unless the run did not finish.
async fn apply_wave(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    rollout: Rollout,
    n: i64,
    exec: &ExecRequest,
) -> Result<Stepped, Error> {
    let id = rollout.id;
    let run = match rollout.waves[(n - 1) as usize].run_id {
        // A previous process made the run: finish it, never re-send.
        Some(run) => {
            finish_run(session, printer, store, run, exec).await?;
            run
        }
        None => {
            let plan: Plan = steps::plan_of(&rollout)?;
            let (sub, json) = steps::wave_plan(&plan, &steps::wave_indexes(&rollout, n));
            let provider = ops::provider(session).await?;
            let apis = ops::apply::plan_accounts(session, provider.as_ref(), &sub).await?;
            let log = open_log(exec.log.as_deref())?;
            let log_path = log.as_ref().map(|l| l.path().display().to_string());
            let (run, guard) =
                runs::apply::start(store, &sub, &json, log_path.as_deref(), Some((id, n)))?;
            printer.note(&format!(
                "rollout {id}: wave {n} is run {run} ({} change(s))",
                sub.changes.len()
            ));
            drive(printer, store, &fleet(&apis), run, guard, exec, log).await?;
            run
        }
    };
    let (open, missed) = steps::run_outcome(&store.load_run(run)?);
    if open > 0 {
        printer.warn(&format!(
            "rollout {id}: wave {n}'s run {run} did not finish ({open} change(s) not final); the next `imdsguard rollout advance {id}` resumes it"
        ));
        return Ok(Stepped::Unfinished);
    }
    if missed > 0 {
        printer.warn(&format!(
            "rollout {id}: {missed} change(s) of wave {n} did not land (failed, or skipped because the instance changed); they are left out (`imdsguard runs {run}` says why)"
        ));
    }
    // Wave 1's run is the rollout's lock, and its lease ended with its
    // drive: hold the lock again before the decision is closed, and close
    // it only if no other process did meanwhile.
    let rollout = store.load_rollout(id)?;
    let _lock = lock(printer, store, &rollout)?;
    let rollout = store.load_rollout(id)?;
    if let Ok(decision) = open_decision(&rollout) {
        steps::wave_applied(store, &rollout, n, decision, crate::clock::now_epoch())?;
    }
    Ok(if missed > 0 {
        Stepped::Partial
    } else {
        Stepped::Moved
    })
}

/// Finishes a run a previous process started (as `apply --resume RUN`
/// would, without asking): every change not final is re-checked first.
async fn finish_run(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    run: i64,
    exec: &ExecRequest,
) -> Result<(), Error> {
    let provider = ops::provider(session).await?;
    let (r, apis) = ops::apply::resume(session, provider.as_ref(), store, run).await?;
    warn_taken_over(printer, &r.taken_over);
    if r.open_changes().count() == 0 {
        ops::apply::finish_idle(store, r)?;
        return Ok(());
    }
    let path = exec
        .log
        .clone()
        .or_else(|| r.run.log_path.as_ref().map(Into::into));
    let log = open_log(path.as_deref())?;
    ops::apply::reopen(store, run, log.as_ref().map(|l| l.path()))?;
    drive(printer, store, &fleet(&apis), run, r.guard, exec, log).await?;
    Ok(())
}

/// The rollback of `run` a previous process started and did not finish.
fn unfinished_rollback(store: &Store, run: i64) -> Result<Option<i64>, Error> {
    let Some(rb) = store.run_head(run)?.rolled_back_by else {
        return Ok(None);
    };
    let status = store.run_head(rb)?.status;
    Ok(matches!(status, RunStatus::Running | RunStatus::Interrupted).then_some(rb))
}

/// Rolls back `only` (instance ids) of run `run`, as `rollback RUN
/// --instance-ids` would, without asking: the rollout decided it.
async fn roll_back(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    run: i64,
    only: &BTreeSet<String>,
    exec: &ExecRequest,
) -> Result<(), Error> {
    let provider = ops::provider(session).await?;
    let prepared =
        ops::rollback::prepare(session, provider.as_ref(), store, run, only, false).await?;
    if prepared.selection.changes.is_empty() {
        return Ok(());
    }
    for (account, region) in &prepared.enforced {
        printer.warn(&format!(
            "{account} {region}: the account default has HttpTokensEnforced=enabled; EC2 will refuse to re-allow IMDSv1 there"
        ));
    }
    let log = open_log(exec.log.as_deref())?;
    let log_path = log.as_ref().map(|l| l.path().display().to_string());
    let (new_run, guard) = runs::rollback::start(
        store,
        &prepared.candidates.parent,
        &prepared.selection,
        log_path.as_deref(),
    )?;
    printer.note(&format!(
        "run {new_run}: rolling back {} instance(s) of run {run}",
        prepared.selection.changes.len()
    ));
    let apis: &AccountMap = &prepared.apis;
    drive(printer, store, &fleet(apis), new_run, guard, exec, log).await?;
    Ok(())
}

/// Finishes the decision a previous process left open, the same way it
/// would have been finished.
async fn finish_open(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    rollout: Rollout,
    exec: &ExecRequest,
) -> Result<Stepped, Error> {
    let open = rollout
        .decisions
        .iter()
        .rev()
        .find(|d| !d.done)
        .expect("called with an open decision")
        .clone();
    let id = rollout.id;
    match open.kind {
        DecisionKind::ApplyWave => {
            apply_wave(session, printer, store, rollout, open.wave, exec).await
        }
        DecisionKind::Halt => {
            // Roll back what the wave's soak found, if that did not finish:
            // the rollback compares with EC2, so an instance already back is
            // left alone.
            let offenders: Vec<(i64, u64)> = rollout
                .members
                .iter()
                .filter(|m| {
                    m.wave == open.wave
                        && m.rejected_calls.unwrap_or(0) > rollout.settings.max_rejected
                })
                .map(|m| (m.plan_index, m.rejected_calls.unwrap_or(0) as u64))
                .collect();
            let ids = steps::offender_ids(&rollout, &offenders);
            if let Some(run) = rollout.waves[(open.wave - 1) as usize].run_id
                && !offenders.is_empty()
            {
                match unfinished_rollback(store, run)? {
                    Some(rb) => finish_run(session, printer, store, rb, exec).await?,
                    None => roll_back(session, printer, store, run, &ids, exec).await?,
                }
            }
            halted(printer, store, id, open.wave, open.id, &offenders, &ids)
        }
        DecisionKind::Abort => {
            let left = abort_runs(session, printer, store, &rollout, exec).await?;
            store.close_decision(id, open.id, RolloutState::Aborted, rollout.current_wave)?;
            Ok(if left {
                Stepped::Partial
            } else {
                Stepped::Ended
            })
        }
        DecisionKind::Resume => {
            steps::finish_open_resume(store, &rollout, &open)?;
            Ok(Stepped::Moved)
        }
        DecisionKind::Pass => {
            store.close_decision(id, open.id, RolloutState::Soaking, rollout.current_wave)?;
            Ok(Stepped::Moved)
        }
        DecisionKind::Finish => {
            store.close_decision(id, open.id, RolloutState::Done, rollout.current_wave)?;
            Ok(Stepped::Ended)
        }
    }
}

/// `rollout resume ID [--skip-group]`.
pub fn resume(
    session: &Session,
    printer: &Printer,
    id: i64,
    skip_group: bool,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let rollout = store.load_rollout(id)?;
    let _lock = lock(printer, &mut store, &rollout)?;
    let rollout = store.load_rollout(id)?;
    if rollout.state != RolloutState::Halted {
        return Err(Error::Refused {
            message: format!(
                "rollout {id} is {}, not halted",
                crate::store::journal::Named::as_str(rollout.state)
            ),
            hint: format!("`imdsguard rollout advance {id}` moves it on"),
        });
    }
    steps::resume(&mut store, &rollout, skip_group)?;
    printer.note(&format!(
        "rollout {id} resumed: the next `imdsguard rollout advance {id}` checks wave {} again, then applies wave {}",
        rollout.current_wave,
        rollout.current_wave + 1
    ));
    show(printer, &store, id, format)?;
    Ok(ExitCode::Success)
}

/// `rollout abort ID`: every wave's run rolled back, newest first.
pub async fn abort(
    session: &Session,
    printer: &Printer,
    id: i64,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let rollout = store.load_rollout(id)?;
    let _lock = lock(printer, &mut store, &rollout)?;
    let rollout = store.load_rollout(id)?;
    if rollout.state == RolloutState::Aborted {
        printer.note(&format!("rollout {id} is already aborted"));
        show(printer, &store, id, format)?;
        return Ok(ExitCode::Success);
    }
    let runs = rollout.waves.iter().filter(|w| w.run_id.is_some()).count();
    if !printer.confirm(
        &format!("Roll back everything rollout {id} changed ({runs} run(s))?"),
        "",
        exec.yes,
    )? {
        printer.note("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let d = store.open_decision(
        id,
        rollout.current_wave,
        DecisionKind::Abort,
        "aborted by a person: every change rolled back",
    )?;
    // What an interrupted step had decided is overridden.
    store.supersede_open_decisions(id, d, "aborted")?;
    let left = abort_runs(session, printer, &mut store, &rollout, exec).await?;
    store.close_decision(id, d, RolloutState::Aborted, rollout.current_wave)?;
    show(printer, &store, id, format)?;
    Ok(if left {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}

/// Rolls back every wave's run, newest first (finishing a rollback a
/// previous process started); true when some change could not be undone.
async fn abort_runs(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    rollout: &Rollout,
    exec: &ExecRequest,
) -> Result<bool, Error> {
    for w in rollout.waves.iter().rev() {
        let Some(run) = w.run_id else { continue };
        if let Some(rb) = unfinished_rollback(store, run)? {
            finish_run(session, printer, store, rb, exec).await?;
        }
        if store.run_head(run)?.status == RunStatus::RolledBack {
            continue;
        }
        roll_back(session, printer, store, run, &BTreeSet::new(), exec).await?;
    }
    let left = steps::mark_aborted(store, rollout)?;
    if !left.is_empty() {
        printer.warn(&format!(
            "rollout {}: {} instance(s) could not be rolled back: {} (`imdsguard runs` shows why)",
            rollout.id,
            left.len(),
            left.join(", ")
        ));
    }
    Ok(!left.is_empty())
}

/// `rollout status ID`.
pub fn status(
    db: &std::path::Path,
    printer: &Printer,
    id: i64,
    format: Format,
) -> Result<ExitCode, Error> {
    let store = ops::views::open(db)?;
    show(printer, &store, id, format)?;
    Ok(ExitCode::Success)
}

/// `rollout status ID --effect`: the before/after proof of every change
/// the rollout made and kept.
pub async fn effect(
    session: &Session,
    printer: &Printer,
    id: i64,
    format: Format,
) -> Result<ExitCode, Error> {
    let store = ops::store(session)?;
    let rollout = store.load_rollout(id)?;
    let changed = ops::effect::of_rollout(&store, &rollout)?;
    crate::commands::runs::show_effect(
        session,
        printer,
        &store,
        &format!("rollout {id}"),
        &changed,
        format,
    )
    .await
}

/// `rollout list`.
pub fn list(db: &std::path::Path, printer: &Printer, format: Format) -> Result<ExitCode, Error> {
    let store = ops::views::open(db)?;
    let mut rollouts = Vec::new();
    for id in store.rollout_ids()? {
        rollouts.push(store.load_rollout(id)?);
    }
    printer.emit(|w, style| output::rollout::render_list(&rollouts, format, style, w))?;
    Ok(ExitCode::Success)
}

fn show(printer: &Printer, store: &Store, id: i64, format: Format) -> Result<(), Error> {
    let rollout = store.load_rollout(id)?;
    let mut runs = BTreeMap::new();
    for w in &rollout.waves {
        if let Some(r) = w.run_id {
            runs.insert(r, store.load_run(r)?);
        }
    }
    printer.emit(|w, style| output::rollout::render(&rollout, &runs, format, style, w))?;
    Ok(())
}
