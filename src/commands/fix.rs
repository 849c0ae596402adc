//! `templates fix`, `asg fix`, `defaults set`, and the rollback and resume
//! of their runs: read now → show → confirm → journal → drive → render.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::commands::drive::ctrl_c;
use crate::commands::problems;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::fix::{FixRequest, Proposal};
use crate::ops::fleet::AccountMap;
use crate::ops::{self, Session};
use crate::output::fix::{ChangeRow, FixView};
use crate::output::{self, Format};
use crate::printer::Printer;
use crate::runs::sources::Outcome;
use crate::store::Store;
use crate::store::journal::{ChangeStatus, Named};

use crate::store::source_runs::{NewSourceChange, SourceRun};

/// What a fix command was asked to do besides its request.
pub struct FixFlags {
    pub dry_run: bool,
    pub yes: bool,
    pub format: Format,
}

pub async fn run(
    session: &Session,
    printer: &Printer,
    request: FixRequest,
    flags: FixFlags,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let targets = ops::targets(session).await?;
    let latest = match store.latest_scan()? {
        Some(id) => Some(store.load_report(id)?),
        None => None,
    };
    let proposal = ops::fix::propose(session, &targets, latest.as_ref(), &request).await?;
    let read_code = problems(printer, &proposal.warnings, &proposal.failures);
    let impact = output::fix::impact_notes(&proposal.impact);
    for line in &impact {
        printer.warn(line);
    }
    if matches!(request, FixRequest::Defaults { enforce: true, .. }) && latest.is_none() {
        printer.warn(
            "no stored scan: what --enforce would block among running instances is unknown \
             (run `imdsguard scan` first to see it)",
        );
    }
    let planned = planned(&proposal.changes);
    if flags.dry_run || proposal.changes.is_empty() {
        emit(
            printer,
            &proposal,
            None,
            flags.dry_run,
            planned,
            flags.format,
        )?;
        if flags.dry_run && !proposal.changes.is_empty() {
            printer.note("dry run: nothing was sent");
        }
        return Ok(read_code);
    }
    if flags.format == Format::Table {
        emit(printer, &proposal, None, false, planned, Format::Table)?;
    }
    let n = proposal.changes.len();
    let question = format!("Make these {n} change(s)?");
    let detail = "journaled: `imdsguard rollback RUN` undoes them";
    if !printer.confirm(&question, detail, flags.yes)? {
        printer.note("nothing was changed");
        return Ok(ExitCode::Success);
    }
    let apis = ops::fleet::into_map(targets, None);
    let apis = with_implicit(apis, &proposal, session).await?;
    let (run, guard) = ops::fix::start(&mut store, &proposal.changes)?;
    let outcome = drive(printer, &store, run, &apis).await?;
    drop(guard);
    let loaded = store.load_source_run(run)?;
    finish(printer, &proposal, &loaded, &outcome, flags.format)?;
    for line in output::fix::refresh_notes(&proposal.refreshes) {
        printer.note(&line);
    }
    Ok(code(&outcome, read_code))
}

/// The caller's own account has no id among the targets when no account
/// list was given: the proposal's rows name it.
async fn with_implicit(
    mut apis: AccountMap,
    proposal: &Proposal,
    session: &Session,
) -> Result<AccountMap, Error> {
    let needed: std::collections::BTreeSet<String> = proposal
        .changes
        .iter()
        .map(|c| c.account_id.clone())
        .filter(|a| !apis.contains_key(a))
        .collect();
    if !needed.is_empty() {
        let provider = ops::provider(session).await?;
        apis.extend(ops::fleet::accounts(session, provider.as_ref(), &needed).await?);
    }
    Ok(apis)
}

async fn drive(
    printer: &Printer,
    store: &Store,
    run: i64,
    apis: &AccountMap,
) -> Result<Outcome, Error> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let outcome = tokio::select! {
        r = ops::fix::execute(store, run, apis, &interrupt) => r?,
        _ = ctrl_c(printer, &interrupt, run) => unreachable!("ctrl_c never returns"),
    };
    if outcome.found_landed > 0 {
        printer.note(&format!(
            "{} change(s) had landed before the interruption: found, not sent again",
            outcome.found_landed
        ));
    }
    Ok(outcome)
}

fn emit(
    printer: &Printer,
    proposal: &Proposal,
    run: Option<i64>,
    dry_run: bool,
    changes: Vec<ChangeRow>,
    format: Format,
) -> Result<(), Error> {
    let view = FixView {
        schema: crate::output::json::SCHEMA,
        kind: "source-run",
        run,
        dry_run,
        changes,
        left_alone: &proposal.left,
        instance_refreshes_not_started: &proposal.refreshes,
        enforce_impact: &proposal.impact,
    };
    printer.emit(|w, style| output::fix::render(&view, format, style, w))?;
    Ok(())
}

/// Changes not journaled yet, as rows.
fn planned(changes: &[NewSourceChange]) -> Vec<ChangeRow> {
    changes
        .iter()
        .map(|c| {
            ChangeRow::new(
                &c.account_id,
                &c.region,
                &c.change,
                "planned",
                &Default::default(),
                None,
            )
        })
        .collect()
}

fn rows(run: &SourceRun) -> Vec<ChangeRow> {
    run.changes
        .iter()
        .map(|c| {
            ChangeRow::new(
                &c.account_id,
                &c.region,
                &c.change,
                c.status.as_str(),
                &c.result,
                c.message.as_deref(),
            )
        })
        .collect()
}

/// `runs RUN` of a source run: its changes as journaled.
pub fn show(printer: &Printer, run: &SourceRun, format: Format) -> Result<(), Error> {
    if format == Format::Table {
        printer.note(&format!(
            "run {} ({}, changes sources): {} since {}",
            run.id,
            run.kind.as_str(),
            run.status.as_str(),
            run.created_at
        ));
    }
    emit(
        printer,
        &Proposal::default(),
        Some(run.id),
        false,
        rows(run),
        format,
    )
}

fn finish(
    printer: &Printer,
    proposal: &Proposal,
    run: &SourceRun,
    outcome: &Outcome,
    format: Format,
) -> Result<(), Error> {
    emit(printer, proposal, Some(run.id), false, rows(run), format)?;
    let id = run.id;
    if outcome.interrupted {
        printer.note(&format!(
            "run {id} interrupted: resume with `imdsguard apply --resume {id}`, undo with `imdsguard rollback {id}`"
        ));
    } else if outcome.failed > 0 {
        printer.warn(&format!(
            "run {id}: {} change(s) failed; retry them with `imdsguard apply --resume {id}`",
            outcome.failed
        ));
    } else {
        printer.note(&format!(
            "run {id} done; undo it with `imdsguard rollback {id}`"
        ));
    }
    Ok(())
}

fn code(outcome: &Outcome, read_code: ExitCode) -> ExitCode {
    if outcome.interrupted {
        ExitCode::Interrupted
    } else if outcome.failed > 0 || read_code != ExitCode::Success {
        ExitCode::Failure
    } else {
        ExitCode::Success
    }
}

/// `rollback RUN` of a source run: the undo of every change that landed.
pub async fn rollback(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    parent: i64,
    yes: bool,
    format: Format,
) -> Result<ExitCode, Error> {
    let loaded = store.load_source_run(parent)?;
    let changes = ops::fix::rollback_changes(&loaded)?;
    let empty = Proposal::default();
    if changes.is_empty() {
        printer.note(&format!(
            "run {parent} changed nothing that can be put back"
        ));
        return Ok(ExitCode::Success);
    }
    let planned = planned(&changes);
    if format == Format::Table {
        emit(printer, &empty, None, false, planned, Format::Table)?;
    }
    let question = format!("Roll back run {parent} ({} change(s))?", changes.len());
    if !printer.confirm(&question, "", yes)? {
        printer.note("nothing was changed");
        return Ok(ExitCode::Success);
    }
    let apis = accounts(session, changes.iter().map(|c| c.account_id.clone())).await?;
    let (run, guard) = ops::fix::start_rollback(store, parent, &changes)?;
    let outcome = drive(printer, store, run, &apis).await?;
    drop(guard);
    let loaded = store.load_source_run(run)?;
    finish(printer, &empty, &loaded, &outcome, format)?;
    Ok(code(&outcome, ExitCode::Success))
}

/// `apply --resume RUN` of a source run: what is not applied yet, after
/// looking for what an interrupted call may have done.
pub async fn resume(
    session: &Session,
    printer: &Printer,
    store: &mut Store,
    run: i64,
    format: Format,
) -> Result<ExitCode, Error> {
    let loaded = store.load_source_run(run)?;
    if let Some(by) = loaded.rolled_back_by {
        return Err(crate::runs::RunError::RolledBack {
            run,
            by,
            partly: true,
        }
        .into());
    }
    let open: Vec<_> = loaded
        .changes
        .iter()
        .filter(|c| !matches!(c.status, ChangeStatus::Applied | ChangeStatus::Skipped))
        .collect();
    if open.is_empty() {
        printer.note(&format!(
            "run {run}: every change is applied; nothing to resume"
        ));
        return Ok(ExitCode::Success);
    }
    let (guard, taken) =
        crate::runs::lease::acquire(store, &[run], crate::store::journal::Purpose::Resume)
            .map_err(ops::OpsError::from)?;
    crate::commands::drive::warn_taken_over(printer, &taken);
    store.set_run_status(run, crate::store::journal::RunStatus::Running, None)?;
    let apis = accounts(session, open.iter().map(|c| c.account_id.clone())).await?;
    let outcome = drive(printer, store, run, &apis).await?;
    drop(guard);
    let loaded = store.load_source_run(run)?;
    finish(printer, &Proposal::default(), &loaded, &outcome, format)?;
    Ok(code(&outcome, ExitCode::Success))
}

async fn accounts(
    session: &Session,
    ids: impl Iterator<Item = String>,
) -> Result<AccountMap, Error> {
    let ids = ids.collect();
    let provider = ops::provider(session).await?;
    Ok(ops::fleet::accounts(session, provider.as_ref(), &ids).await?)
}
