//! Undoing a run: every instance the run changed goes back to its exact
//! previous options (from the journal), through a new journaled run.
//!
//! The rollback holds its parent's lease from the start (so it cannot run
//! while the parent is being applied or resumed, or beside another rollback
//! of it), then its own. Which instances it touches is decided from what
//! EC2 says now: one at the parent's target is put back; one already at its
//! previous options needs nothing; one changed again since is left alone
//! (unless `force`) and reported. Its compare-and-set at send time then
//! protects what it observed here, like any run.

use std::collections::BTreeSet;

use super::lease::{self, LeaseGuard, TakenOver};
use super::observe::{Verdict, compare, found, observe_fleet};
use super::{Fleet, RunError};
use crate::model::{Action, Options};
use crate::store::Store;
use crate::store::journal::{ChangeRecord, ChangeStatus, NewChange, NewRun, Purpose, Run, RunKind};

/// A run to undo, held by this process, and its changes that may have landed.
pub struct Candidates {
    pub parent: Run,
    /// Held, never read: dropping the candidates gives the parent's lease up.
    _lease: LeaseGuard,
    pub taken_over: TakenOver,
    /// Changes EC2 may have accepted (answered successes, unanswered calls,
    /// failures after an attempt: a lost answer can still have landed).
    pub changes: Vec<ChangeRecord>,
    /// Whether `--instance-ids` narrowed them.
    pub narrowed: bool,
}

/// Takes the parent's lease and lists what may need undoing.
pub fn candidates(
    store: &mut Store,
    parent: i64,
    only: &BTreeSet<String>,
) -> Result<Candidates, RunError> {
    store.run_head(parent)?; // "no run with id N" before anything else
    let (guard, taken_over) = lease::acquire(store, &[parent], Purpose::Rollback)?;
    let run = store.load_run(parent)?;
    let changes = run
        .changes
        .iter()
        .filter(|c| match c.status {
            ChangeStatus::Applied | ChangeStatus::Pending | ChangeStatus::Issued => true,
            ChangeStatus::Failed | ChangeStatus::Planned => c.attempts > 0,
            ChangeStatus::Skipped => false,
        })
        .filter(|c| only.is_empty() || only.contains(&c.instance_id))
        .cloned()
        .collect();
    Ok(Candidates {
        parent: run,
        _lease: guard,
        taken_over,
        changes,
        narrowed: !only.is_empty(),
    })
}

/// Something worth telling about an instance the rollback leaves alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Gone(String),
    /// Accepted by the parent, but already back at its previous options.
    AlreadyPrevious(String),
    /// Changed again since the parent run; left alone without `force`.
    ChangedAgain {
        instance_id: String,
        now: Options,
    },
}

/// The rollback's changes and what it leaves alone.
#[derive(Debug, Default)]
pub struct Selection {
    pub changes: Vec<NewChange>,
    pub notes: Vec<Note>,
    /// Whether it undoes every change of the parent that landed.
    pub covers_all: bool,
}

/// Decides, from what EC2 says now, which candidates to put back.
pub async fn select(
    fleet: &Fleet<'_>,
    candidates: &Candidates,
    force: bool,
) -> Result<Selection, RunError> {
    let seen = observe_fleet(
        fleet,
        candidates.changes.iter().map(|c| {
            (
                c.account_id.as_str(),
                c.region.as_str(),
                c.instance_id.as_str(),
            )
        }),
    )
    .await;
    let mut out = Selection::default();
    let mut left_alone = false;
    for c in &candidates.changes {
        let observed = found(&seen, &c.account_id, &c.region, &c.instance_id)?;
        let back = |now: Options| NewChange {
            account_id: c.account_id.clone(),
            region: c.region.clone(),
            instance_id: c.instance_id.clone(),
            previous: now,
            target: c.previous,
        };
        // The parent moved previous → target; undoing compares the other way.
        match compare(&c.target, &c.previous, &observed) {
            Verdict::Gone => out.notes.push(Note::Gone(c.instance_id.clone())),
            Verdict::AtTarget => {
                // Expected for failed attempts; worth a word for accepted ones.
                if matches!(c.status, ChangeStatus::Applied | ChangeStatus::Pending) {
                    out.notes.push(Note::AlreadyPrevious(c.instance_id.clone()));
                }
            }
            Verdict::AtPrevious => out.changes.push(back(c.target)),
            Verdict::Changed(now) if force => out.changes.push(back(now)),
            Verdict::Changed(now) => {
                left_alone = true;
                out.notes.push(Note::ChangedAgain {
                    instance_id: c.instance_id.clone(),
                    now,
                });
            }
            Verdict::Unreadable => {
                left_alone = true;
                out.notes.push(Note::ChangedAgain {
                    instance_id: c.instance_id.clone(),
                    now: c.target,
                });
            }
        }
    }
    out.covers_all = !candidates.narrowed && !left_alone;
    Ok(out)
}

/// Journals the rollback run (its parent becomes `partly-rolled-back` in
/// the same transaction) with this process's lease on it.
pub fn start(
    store: &mut Store,
    parent: &Run,
    selection: &Selection,
    log_path: Option<&str>,
) -> Result<(i64, LeaseGuard), RunError> {
    let me = lease::me(Purpose::Apply);
    let created_at = crate::clock::now();
    let run = store.create_run(
        &NewRun {
            kind: RunKind::Rollback,
            action: Action::Rollback,
            parent_run: Some(parent.id),
            plan: None,
            created_at: &created_at,
            log_path,
            covers_all: Some(selection.covers_all),
            changes: &selection.changes,
            wave: None,
        },
        &me,
    )?;
    Ok((run, LeaseGuard::start(store, vec![run], me)))
}
