//! `apply`, `apply --resume`, `harden`, `disable`: the checks before a run,
//! starting it, and driving it to its end. Built on [`crate::runs`]; adds
//! the accounts (which credentials reach which account) and the wiring the
//! engine needs. Confirmation, Ctrl-C and rendering stay with the command.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::OpsError;
use super::fleet::{AccountMap, Session, accounts, fleet};
use crate::aws::AwsProvider;
use crate::plan::Plan;
use crate::progress::Reporter;
use crate::runs::executor::ExecSettings;
use crate::runs::lease::LeaseGuard;
use crate::runs::ledger::{ChangeLog, Ledger};
use crate::runs::status::{self, FieldChange, field_changes};
use crate::runs::{self, Drive, Fleet, Outcome, Stops};
use crate::store::Store;
use crate::store::journal::Run;

/// What the checks before a run found (nothing was sent).
#[derive(Debug)]
pub struct Checked {
    /// Changes that will be sent.
    pub to_send: usize,
    /// Instances already at their target.
    pub at_target: usize,
    pub regions: usize,
    pub accounts: BTreeSet<String>,
    /// Every kind of field change the sends will make.
    pub fields: Vec<FieldChange>,
    /// (account, region) where the account default has
    /// `HttpTokensEnforced=enabled`: EC2 refuses any return to v1 there.
    pub enforced: Vec<(String, String)>,
}

/// The accounts of a plan, reached with the session's credentials.
pub async fn plan_accounts(
    session: &Session,
    provider: &dyn AwsProvider,
    plan: &Plan,
) -> Result<AccountMap, OpsError> {
    let ids: BTreeSet<String> = plan.changes.iter().map(|c| c.account_id.clone()).collect();
    accounts(session, provider, &ids).await
}

/// Checks a plan against what EC2 says now: every instance must exist and
/// still have the options the plan saw (or already have its target).
pub async fn check(apis: &AccountMap, plan: &Plan) -> Result<Checked, OpsError> {
    let fleet = fleet(apis);
    let pre = runs::apply::preflight(&fleet, plan).await?;
    if !pre.missing.is_empty() {
        return Err(OpsError::Missing(pre.missing));
    }
    if !pre.changed.is_empty() {
        return Err(OpsError::Changed(pre.changed));
    }
    let at_target: BTreeSet<&str> = pre.at_target.iter().map(String::as_str).collect();
    let places = plan
        .changes
        .iter()
        .map(|c| (c.account_id.as_str(), c.region.as_str()))
        .collect::<BTreeSet<_>>();
    let regions = places
        .iter()
        .map(|(_, r)| *r)
        .collect::<BTreeSet<_>>()
        .len();
    let enforced = runs::apply::enforced_defaults(&fleet, places).await;
    Ok(Checked {
        to_send: pre.to_send,
        at_target: at_target.len(),
        regions,
        accounts: plan.changes.iter().map(|c| c.account_id.clone()).collect(),
        fields: field_changes(
            plan.changes
                .iter()
                .filter(|c| !at_target.contains(c.instance_id.as_str()))
                .map(|c| (&c.current, &c.target)),
        ),
        enforced,
    })
}

/// How a run is driven, from the edge.
pub struct Execution<'a> {
    pub settings: &'a ExecSettings,
    pub check_permissions: bool,
    pub log: Option<ChangeLog>,
    /// Set by the command on Ctrl-C.
    pub interrupt: Arc<AtomicBool>,
    pub reporter: &'a dyn Reporter,
}

/// A run as it ended, and what driving it saw.
#[derive(Debug)]
pub struct Finished {
    pub run: Run,
    pub outcome: Outcome,
    /// Log lines a previous process did not write, written first.
    pub caught_up: usize,
}

/// Drives a journaled run this process holds the lease of, then writes its
/// final state. A refused permission check still finishes the run (every
/// change `planned`, so it stays resumable) before the error is returned.
pub async fn execute(
    store: &mut Store,
    fleet: &Fleet<'_>,
    run_id: i64,
    guard: LeaseGuard,
    ex: Execution<'_>,
) -> Result<Finished, OpsError> {
    let loaded = store.load_run(run_id)?;
    let stops = Stops::new(ex.interrupt, guard.lost());
    let (result, caught_up) = {
        let ledger = Ledger::new(
            store,
            run_id,
            loaded.kind,
            loaded.action,
            loaded.parent_run,
            ex.log,
        );
        let mut changes = loaded.changes;
        // Lines a crash kept from the log, before anything new happens.
        let caught_up = ledger
            .catch_up(&mut changes)
            .map_err(runs::RunError::from)?;
        let drive = Drive {
            fleet,
            ledger: &ledger,
            settings: ex.settings,
            stops: &stops,
            reporter: ex.reporter,
            check_permissions: ex.check_permissions,
        };
        (runs::drive(&drive, changes).await, caught_up)
    };
    let run = status::finish(store, run_id, &guard)?;
    drop(guard);
    Ok(Finished {
        run,
        outcome: result?,
        caught_up,
    })
}

/// Opens `run` for a resume (see [`runs::resume`]) and reaches the
/// accounts of its changes that are not final.
pub async fn resume(
    session: &Session,
    provider: &dyn AwsProvider,
    store: &mut Store,
    run: i64,
) -> Result<(runs::resume::Resumable, AccountMap), OpsError> {
    let r = runs::resume::open(store, run)?;
    let ids: BTreeSet<String> = r.open_changes().map(|c| c.account_id.clone()).collect();
    let apis = if ids.is_empty() {
        AccountMap::new()
    } else {
        accounts(session, provider, &ids).await?
    };
    Ok((r, apis))
}

/// A resumed run with nothing left to do: its state is written again (a
/// crashed run still says `running`) and it is reported as it stands.
pub fn finish_idle(store: &Store, r: runs::resume::Resumable) -> Result<Finished, OpsError> {
    let run = status::finish(store, r.run.id, &r.guard)?;
    Ok(Finished {
        run,
        outcome: Outcome::default(),
        caught_up: 0,
    })
}

/// Back to `running` for a resume, keeping its log where `log` says.
pub fn reopen(store: &Store, run: i64, log: Option<&std::path::Path>) -> Result<(), OpsError> {
    if let Some(path) = log {
        store.set_log_path(run, &path.display().to_string())?;
    }
    store.reopen_run(run)?;
    Ok(())
}
