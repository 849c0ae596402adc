//! The run state machine and what a finished run means for its caller.
//!
//! | from | event | to |
//! |---|---|---|
//! | (new) | `apply`/`harden`/`disable`/`rollback` creates the run | `running` |
//! | `running` | every change applied, or already at target | `done` |
//! | `running` | every change tried; some failed, pending, or changed by someone else | `incomplete` |
//! | `running` | stopped with changes not sent (Ctrl-C, credentials, access denied, a region that could not be re-checked, a lost lease) | `interrupted` |
//! | `interrupted`, `incomplete`, `running` (holder gone) | `apply --resume` | `running` |
//! | any but `rolled-back` | `rollback` creates a rollback run of it | `partly-rolled-back` |
//! | `partly-rolled-back` | that rollback run ends `done`, having covered every change that landed | `rolled-back` |
//! | `rolled-back`, `partly-rolled-back` | `apply --resume` | refused |
//!
//! A run exits 0 only if it ends `done`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Outcome;
use super::lease::LeaseGuard;
use crate::model::{Field, Options};
use crate::store::journal::{ChangeRecord, ChangeStatus, Reason, Run, RunKind, RunStatus};
use crate::store::{Store, StoreError};

/// Where a run ends, given its changes.
pub fn conclude(changes: &[ChangeRecord]) -> RunStatus {
    if changes
        .iter()
        .any(|c| matches!(c.status, ChangeStatus::Planned | ChangeStatus::Issued))
    {
        RunStatus::Interrupted
    } else if changes.iter().all(reached) {
        RunStatus::Done
    } else {
        RunStatus::Incomplete
    }
}

/// Whether a change reached its goal: applied, or already at its target.
pub fn reached(c: &ChangeRecord) -> bool {
    c.status == ChangeStatus::Applied
        || (c.status == ChangeStatus::Skipped && c.reason == Some(Reason::AtTarget))
}

/// The changes that keep a run from `done`: for the exit-1 list.
pub fn problems(run: &Run) -> Vec<&ChangeRecord> {
    run.changes.iter().filter(|c| !reached(c)).collect()
}

/// Writes the run's final state (and, for a rollback, its parent's), and
/// returns the run as it now stands. A run whose lease was lost belongs to
/// another process: its state is theirs to write.
pub fn finish(store: &Store, run_id: i64, guard: &LeaseGuard) -> Result<Run, StoreError> {
    let mut run = store.load_run(run_id)?;
    if guard.is_lost() {
        return Ok(run);
    }
    let status = conclude(&run.changes);
    let at = crate::clock::now();
    store.set_run_status(run_id, status, Some(&at))?;
    run.status = status;
    run.finished_at = Some(at);
    if run.kind == RunKind::Rollback
        && let Some(parent) = run.parent_run
    {
        let full = status == RunStatus::Done && store.covers_all(run_id)?;
        store.mark_rolled_back(
            parent,
            if full {
                RunStatus::RolledBack
            } else {
                RunStatus::PartlyRolledBack
            },
            run_id,
        )?;
    }
    Ok(run)
}

/// The exit classes of a finished run, decided here so every command agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// Every change applied (and verified) or already at target.
    Done,
    /// Stopped by Ctrl-C with changes not sent.
    Interrupted,
    /// Anything else: changes failed, pending, skipped, or not sent.
    Problems,
}

pub fn exit_class(run: &Run, outcome: &Outcome) -> ExitClass {
    match run.status {
        RunStatus::Done if outcome.stop.is_none() => ExitClass::Done,
        _ if matches!(outcome.stop, Some(super::Stop::Interrupted)) => ExitClass::Interrupted,
        _ => ExitClass::Problems,
    }
}

/// How many changes move each field from one value to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: Field,
    pub from: String,
    pub to: String,
    pub count: u64,
}

/// Every kind of field change among `(previous, target)` pairs, by field
/// then by transition; fields nothing changes are absent.
pub fn field_changes<'a>(
    pairs: impl Iterator<Item = (&'a Options, &'a Options)>,
) -> Vec<FieldChange> {
    let mut counts: BTreeMap<(Field, String, String), u64> = BTreeMap::new();
    for (from, to) in pairs {
        for f in Field::ALL {
            let (a, b) = (f.value(from), f.value(to));
            if a != b {
                *counts.entry((f, a, b)).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|((field, from, to), count)| FieldChange {
            field,
            from,
            to,
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpTokens, Toggle};

    fn change(status: ChangeStatus, reason: Option<Reason>) -> ChangeRecord {
        let o = Options {
            http_tokens: HttpTokens::Optional,
            http_endpoint: Toggle::Enabled,
            hop_limit: 1,
            instance_metadata_tags: Toggle::Disabled,
            http_protocol_ipv6: Toggle::Disabled,
        };
        ChangeRecord {
            seq: 0,
            account_id: "a".into(),
            region: "r".into(),
            instance_id: "i".into(),
            previous: o,
            target: o,
            status,
            reason,
            attempts: 0,
            issued_at: None,
            finished_at: None,
            response_state: None,
            request_id: None,
            error_code: None,
            message: None,
            observed: None,
            verified: false,
            logged: None,
            tries: 0,
        }
    }

    #[test]
    fn run_states_from_changes() {
        use ChangeStatus::*;
        let applied = change(Applied, None);
        let at_target = change(Skipped, Some(Reason::AtTarget));
        let drifted = change(Skipped, Some(Reason::ChangedSincePlan));
        assert_eq!(
            conclude(&[applied.clone(), at_target.clone()]),
            RunStatus::Done
        );
        assert_eq!(conclude(&[applied.clone(), drifted]), RunStatus::Incomplete);
        assert_eq!(
            conclude(&[applied.clone(), change(Pending, None)]),
            RunStatus::Incomplete
        );
        assert_eq!(
            conclude(&[applied.clone(), change(Failed, None)]),
            RunStatus::Incomplete
        );
        assert_eq!(
            conclude(&[applied.clone(), change(Planned, None)]),
            RunStatus::Interrupted
        );
        assert_eq!(
            conclude(&[change(Failed, None), change(Issued, None)]),
            RunStatus::Interrupted
        );
    }

    #[test]
    fn counts_every_kind_of_field_change() {
        let base = change(ChangeStatus::Planned, None).previous;
        let v2 = Options {
            http_tokens: HttpTokens::Required,
            ..base
        };
        let v2_hop2 = Options { hop_limit: 2, ..v2 };
        let pairs = [(base, v2), (base, v2), (base, v2_hop2)];
        let fc = field_changes(pairs.iter().map(|(a, b)| (a, b)));
        assert_eq!(
            fc,
            vec![
                FieldChange {
                    field: Field::HttpTokens,
                    from: "optional".into(),
                    to: "required".into(),
                    count: 3
                },
                FieldChange {
                    field: Field::HopLimit,
                    from: "1".into(),
                    to: "2".into(),
                    count: 1
                },
            ]
        );
    }
}
