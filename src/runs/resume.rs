//! Finishing a run that did not finish: after Ctrl-C, a crash, `kill -9`,
//! expired credentials, or with changes that failed or stayed pending.
//!
//! A resume re-checks every change that is not final (`planned`, `issued`,
//! `pending`, `failed`) through the same compare-and-set the first attempt
//! used: one whose call landed (even if its answer was lost) is found at
//! its target and recorded `applied` without a second call; one still at
//! its expected options is sent; one someone else changed is skipped. A run
//! that was (partly) rolled back is never resumed.

use super::RunError;
use super::lease::{self, LeaseGuard, TakenOver};
use crate::store::Store;
use crate::store::journal::{ChangeRecord, Purpose, Run, RunKind, RunStatus};

/// A run this process now owns, ready to be finished.
pub struct Resumable {
    pub run: Run,
    pub guard: LeaseGuard,
    /// Leases taken over from holders that were gone, and why.
    pub taken_over: TakenOver,
}

impl Resumable {
    /// The changes that are not final: what the resume will re-check.
    pub fn open_changes(&self) -> impl Iterator<Item = &ChangeRecord> {
        self.run.changes.iter().filter(|c| !c.status.is_final())
    }
}

fn refuse_rolled_back(run: &Run) -> Result<(), RunError> {
    match (run.status, run.rolled_back_by) {
        (RunStatus::RolledBack | RunStatus::PartlyRolledBack, Some(by)) => {
            Err(RunError::RolledBack {
                run: run.id,
                by,
                partly: run.status == RunStatus::PartlyRolledBack,
            })
        }
        _ => Ok(()),
    }
}

/// Takes `run` over for a resume: refuses a rolled-back run, and a run (or,
/// for a rollback run, its parent) that a live process drives.
pub fn open(store: &mut Store, run: i64) -> Result<Resumable, RunError> {
    let head = store.run_head(run)?;
    refuse_rolled_back(&head)?;
    let mut runs = vec![run];
    if head.kind == RunKind::Rollback
        && let Some(parent) = head.parent_run
    {
        runs.push(parent);
    }
    let (guard, taken_over) = lease::acquire(store, &runs, Purpose::Resume)?;
    // Read again under the lease: a rollback may have finished meanwhile.
    let loaded = store.load_run(run)?;
    refuse_rolled_back(&loaded)?;
    Ok(Resumable {
        run: loaded,
        guard,
        taken_over,
    })
}
