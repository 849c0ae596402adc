//! Change runs: everything between "a plan, or a run id" and "a finished
//! journal". The commands (`apply`, `rollback`, `harden`, `disable`) resolve
//! their input, call in here, confirm, render and pick an exit code; every
//! decision about what to send, what to skip and what a run's state is
//! lives here, testable against the in-memory EC2 fake.
//!
//! * [`lease`]: one owner per run;
//! * [`observe`]: what EC2 says now, compared with what a change expects;
//! * [`ledger`]: the journal and the `--log` file, written together;
//! * [`executor`]: compare-and-set batches, pacing, retries, verification;
//! * [`status`]: the run state machine, exit classes, field-change counts;
//! * [`apply`], [`resume`], [`rollback`]: starting each kind of run;
//! * [`drive`] (here): the permission phase, then every account's executor.

pub mod apply;
pub mod executor;
pub mod lease;
pub mod ledger;
pub mod observe;
pub mod resume;
pub mod rollback;
pub mod sources;
pub mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};

use crate::aws::{AwsError, Ec2Api};
use crate::progress::Reporter;
use crate::store::StoreError;
use crate::store::journal::{ChangeRecord, Lease, RunKind};
use executor::{Counters, Denied, ExecSettings, Executor, RegionFailure};
use ledger::{Ledger, LedgerError};

/// The EC2 client of every account a run touches, by account id.
pub type Fleet<'a> = BTreeMap<String, &'a dyn Ec2Api>;

/// Why a run stopped before sending everything.
#[derive(Debug, Clone)]
pub enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// Another process took the run over (our heartbeat had gone stale).
    LeaseLost,
    /// The credentials expired or are no longer accepted.
    Credentials(AwsError),
    /// AWS denied a change.
    AccessDenied(AwsError),
}

/// A problem that stops every account's executor.
#[derive(Debug, Clone)]
pub enum Halt {
    Credentials(AwsError),
    AccessDenied(AwsError),
}

/// The stop signals a run watches: Ctrl-C, a lost lease, and the first
/// credentials or access problem any change met.
#[derive(Default)]
pub struct Stops {
    /// Set by the edge on Ctrl-C.
    pub interrupt: Arc<AtomicBool>,
    pub lease_lost: Arc<AtomicBool>,
    halt: Mutex<Option<Halt>>,
}

impl Stops {
    pub fn new(interrupt: Arc<AtomicBool>, lease_lost: Arc<AtomicBool>) -> Stops {
        Stops {
            interrupt,
            lease_lost,
            halt: Mutex::new(None),
        }
    }

    /// Whether nothing more may be sent.
    pub fn stopped(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
            || self.lease_lost.load(Ordering::SeqCst)
            || self.halt.lock().expect("not poisoned").is_some()
    }

    /// Records the first halt (later ones say the same thing).
    pub fn halt(&self, h: Halt) {
        self.halt.lock().expect("not poisoned").get_or_insert(h);
    }

    /// Why the run stopped, if it did; a halt explains more than Ctrl-C.
    pub fn stop(&self) -> Option<Stop> {
        match self.halt.lock().expect("not poisoned").clone() {
            Some(Halt::Credentials(e)) => return Some(Stop::Credentials(e)),
            Some(Halt::AccessDenied(e)) => return Some(Stop::AccessDenied(e)),
            None => {}
        }
        if self.lease_lost.load(Ordering::SeqCst) {
            Some(Stop::LeaseLost)
        } else if self.interrupt.load(Ordering::SeqCst) {
            Some(Stop::Interrupted)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Aws(#[from] AwsError),
    /// Someone alive drives the run.
    #[error("{}", held(.lease, *.kind))]
    Held { lease: Box<Lease>, kind: RunKind },
    #[error("run {run} was {} by run {by}; nothing more is applied from it", if *.partly { "partly rolled back" } else { "rolled back" })]
    RolledBack { run: i64, by: i64, partly: bool },
    #[error(
        "permission check failed for {} in {} {}: {}; no change was made in any account",
        .0.instance_id, .0.account_id, .0.region, .0.error
    )]
    Permission(Box<Denied>),
    #[error("account {0} of the run cannot be reached with these credentials")]
    NoAccount(String),
}

/// "run 3 is being applied by pid 4242 on host x since ..."
fn held(lease: &Lease, kind: RunKind) -> String {
    format!(
        "run {}{} is being {} by {}",
        lease.run,
        if kind == RunKind::Rollback {
            " (a rollback run)"
        } else {
            ""
        },
        lease.holder.purpose.verb(),
        lease::describe_holder(lease)
    )
}

/// What a run's execution saw, for the summary and the benchmark.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stop: Option<Stop>,
    pub throttled: u64,
    pub retries: u64,
    /// `DescribeInstances` calls made to compare before sending.
    pub rechecks: u64,
    /// `DescribeInstances` calls made to verify.
    pub verifies: u64,
    pub region_failures: Vec<RegionFailure>,
}

/// Everything a run is driven with.
pub struct Drive<'a, 's> {
    pub fleet: &'a Fleet<'a>,
    pub ledger: &'a Ledger<'s>,
    pub settings: &'a ExecSettings,
    pub stops: &'a Stops,
    pub reporter: &'a dyn Reporter,
    /// Dry-run every change first; one refusal anywhere changes nothing anywhere.
    pub check_permissions: bool,
}

/// Drives every change of a run that is not final: with `check_permissions`,
/// every account's dry runs finish before any account's first real change;
/// then each account's executor (EC2 limits are per account and region)
/// runs concurrently.
pub async fn drive(d: &Drive<'_, '_>, changes: Vec<ChangeRecord>) -> Result<Outcome, RunError> {
    let mut by_account: BTreeMap<String, Vec<ChangeRecord>> = BTreeMap::new();
    for c in changes.into_iter().filter(|c| !c.status.is_final()) {
        by_account.entry(c.account_id.clone()).or_default().push(c);
    }
    let counters = &Counters::default();
    let mut work = Vec::new();
    for (account, changes) in by_account {
        let ec2 = *d
            .fleet
            .get(&account)
            .ok_or_else(|| RunError::NoAccount(account.clone()))?;
        work.push((account, ec2, changes));
    }
    let concurrency = d.settings.concurrency.max(1);
    if d.check_permissions {
        let refused = &AtomicBool::new(false);
        let refusals: Vec<Result<(), Denied>> = stream::iter(&work)
            .map(|(account, ec2, changes)| async move {
                executor(d, counters, account, *ec2)
                    .check_permissions(changes, refused)
                    .await
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        if let Some(Err(denied)) = refusals.into_iter().find(Result::is_err) {
            return Err(RunError::Permission(Box::new(denied)));
        }
        if d.stops.stopped() {
            return Ok(Outcome {
                stop: d.stops.stop(),
                ..Outcome::default()
            });
        }
    }
    let total: usize = work.iter().map(|(_, _, c)| c.len()).sum();
    d.reporter.start(total as u64);
    let results: Vec<Result<Vec<RegionFailure>, LedgerError>> = stream::iter(work)
        .map(|(account, ec2, changes)| async move {
            executor(d, counters, &account, ec2).execute(changes).await
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    d.reporter.finish();
    let mut region_failures = Vec::new();
    for r in results {
        region_failures.extend(r?);
    }
    Ok(Outcome {
        stop: d.stops.stop(),
        throttled: counters.throttled.load(Ordering::Relaxed),
        retries: counters.retries.load(Ordering::Relaxed),
        rechecks: counters.rechecks.load(Ordering::Relaxed),
        verifies: counters.verifies.load(Ordering::Relaxed),
        region_failures,
    })
}

/// One account's executor, borrowing the run's shared parts.
fn executor<'a, 's>(
    d: &'a Drive<'a, 's>,
    counters: &'a Counters,
    account_id: &'a str,
    ec2: &'a dyn Ec2Api,
) -> Executor<'a, 's> {
    Executor {
        account_id,
        ec2,
        ledger: d.ledger,
        settings: d.settings,
        stops: d.stops,
        reporter: d.reporter,
        counters,
    }
}
