//! The change journal in SQLite: a run (one `apply`, `harden`, `disable` or
//! `rollback`), the life of each change in it, and who is driving it.
//!
//! Intent is written before every AWS call and the result after it, each in
//! its own committed transaction, so a run cut short by a crash, `kill -9` or
//! Ctrl-C can be resumed or rolled back exactly from what is on disk. Run,
//! change and reason names are closed sets (Rust enums, and `CHECK`
//! constraints in the schema): unknown stored text is an error, never a guess.
//!
//! A run is driven by at most one process at a time: the `run_leases` table
//! holds the owner of each run being driven (see [`crate::runs::lease`] for
//! the rules; this module only reads and writes the rows, atomically).

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::model::{Action, MetadataState, Options};
use crate::store::{Store, StoreError};

/// A closed set of names stored as text.
pub trait Named: Copy + Sized + 'static {
    /// Every value, in display order.
    const ALL: &'static [Self];
    /// The stored (and printed) name.
    fn as_str(self) -> &'static str;

    /// The value stored as `text`; anything else means the database was
    /// written by something we do not understand.
    fn from_stored(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "unknown {} `{text}` in the journal",
                    std::any::type_name::<Self>()
                        .rsplit("::")
                        .next()
                        .unwrap_or("value")
                ))
            })
    }
}

/// A closed set of names: `Named`, and stored and read by SQLite as its
/// name (see [`stored_as_name!`]).
macro_rules! named {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl Named for $ty {
            const ALL: &'static [Self] = &[$(<$ty>::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),+ }
            }
        }
        stored_as_name!($ty);
    };
}

/// A `Named` type stored and read by SQLite as its name (reading unknown
/// text is an error, never a default).
macro_rules! stored_as_name {
    ($ty:ty) => {
        impl rusqlite::types::ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(Named::as_str(*self).into())
            }
        }

        impl rusqlite::types::FromSql for $ty {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty>::from_stored(text)
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

// The model's own closed sets, stored by the names the model gives them.
impl Named for Action {
    const ALL: &'static [Self] = &Action::ALL;
    fn as_str(self) -> &'static str {
        Action::as_str(self)
    }
}
stored_as_name!(Action);

impl Named for MetadataState {
    const ALL: &'static [Self] = &[MetadataState::Pending, MetadataState::Applied];
    fn as_str(self) -> &'static str {
        MetadataState::as_str(self)
    }
}
stored_as_name!(MetadataState);

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// Changes from a plan (`apply`, `harden`, `disable`).
    Apply,
    /// Puts the changes of another run back (`rollback`).
    Rollback,
}
named!(RunKind { Apply => "apply", Rollback => "rollback" });

/// Where a run stands. Every transition is listed in the README
/// ("Run states"); [`crate::runs::status`] decides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// A process is driving it (or was, until it died: see its lease).
    Running,
    /// Stopped before every change was sent (Ctrl-C, expired credentials,
    /// access denied, a region that could not be re-checked); resumable.
    Interrupted,
    /// Every change is applied and verified, or was already at its target.
    Done,
    /// Every change was tried; some failed, stayed pending, or were skipped
    /// because someone changed the instance. `--resume` re-checks them.
    Incomplete,
    /// A rollback run put back every change of this run that landed.
    RolledBack,
    /// A rollback run put back some of its changes, or is still doing so.
    PartlyRolledBack,
}
named!(RunStatus {
    Running => "running",
    Interrupted => "interrupted",
    Done => "done",
    Incomplete => "incomplete",
    RolledBack => "rolled-back",
    PartlyRolledBack => "partly-rolled-back",
});

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// Not yet sent.
    Planned,
    /// Sent (intent recorded); no answer recorded. After a crash: unknown.
    Issued,
    /// EC2 accepted it and it took effect.
    Applied,
    /// EC2 accepted it; not yet in effect (or not verified in time).
    Pending,
    /// EC2 refused it, the instance is gone, or whether it landed is unknown.
    Failed,
    /// Deliberately not sent (already at target, or changed by someone else).
    Skipped,
}
named!(ChangeStatus {
    Planned => "planned",
    Issued => "issued",
    Applied => "applied",
    Pending => "pending",
    Failed => "failed",
    Skipped => "skipped",
});

impl ChangeStatus {
    /// Settled for good: nothing a resume would do to it.
    pub fn is_final(self) -> bool {
        matches!(self, ChangeStatus::Applied | ChangeStatus::Skipped)
    }
}

/// Why a change is where it is, beyond its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Skipped: the instance already had the target options; nothing sent.
    AtTarget,
    /// Skipped: the instance's options differ from those the change expected
    /// (someone else changed it); not touched. `observed` holds what was seen.
    ChangedSincePlan,
    /// Failed: the instance no longer exists.
    Gone,
    /// Failed: AWS refused the call (`error_code` says why).
    Refused,
    /// Failed: every attempt ended without a usable answer (timeouts,
    /// connection errors, 5xx), and a re-check shows none of them landed.
    NoAnswer,
    /// Applied: a call's answer was lost, but EC2 shows the target.
    AnswerLost,
    /// Planned: the run stopped before this change was sent.
    Stopped,
    /// Pending: not seen `applied` within `--verify-timeout`.
    NotVerified,
}
named!(Reason {
    AtTarget => "at-target",
    ChangedSincePlan => "changed-since-plan",
    Gone => "gone",
    Refused => "refused",
    NoAnswer => "no-answer",
    AnswerLost => "answer-lost",
    Stopped => "stopped",
    NotVerified => "not-verified",
});

/// What the process driving a run is doing with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Carrying out a run it created (apply, harden, disable, rollback).
    Apply,
    /// Finishing an interrupted run (`apply --resume`).
    Resume,
    /// Undoing this run through a new rollback run.
    Rollback,
}
named!(Purpose { Apply => "apply", Resume => "resume", Rollback => "rollback" });

impl Purpose {
    /// "run 3 is being {verb} by pid ..."
    pub fn verb(self) -> &'static str {
        match self {
            Purpose::Apply => "applied",
            Purpose::Resume => "resumed",
            Purpose::Rollback => "rolled back",
        }
    }
}

/// One journaled change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    pub seq: i64,
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    /// The options the change expects to find (and restores on rollback).
    pub previous: Options,
    /// The options it sends, every field explicit.
    pub target: Options,
    pub status: ChangeStatus,
    pub reason: Option<Reason>,
    pub attempts: i64,
    pub issued_at: Option<String>,
    pub finished_at: Option<String>,
    pub response_state: Option<MetadataState>,
    pub request_id: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    /// The options seen by the last re-check, where they differed from both
    /// `previous` and `target` (why the change was skipped).
    pub observed: Option<Options>,
    pub verified: bool,
    /// The status last written to the run's `--log` file.
    #[serde(skip)]
    pub logged: Option<ChangeStatus>,
    /// Attempts made by this process (`attempts` counts every process's).
    #[serde(skip)]
    pub tries: u32,
}

impl ChangeRecord {
    /// Sets a new status with its reason and message, leaving AWS's answer alone.
    pub fn settle(&mut self, status: ChangeStatus, reason: Reason, message: impl Into<String>) {
        self.status = status;
        self.reason = Some(reason);
        self.message = Some(message.into());
    }
}

/// A run and its changes.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub kind: RunKind,
    pub action: Action,
    pub parent_run: Option<i64>,
    pub status: RunStatus,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The rollback run that last undid (some of) this run.
    pub rolled_back_by: Option<i64>,
    /// Where the run's `--log` lines go (resume keeps writing there).
    #[serde(skip)]
    pub log_path: Option<String>,
    pub changes: Vec<ChangeRecord>,
}

/// A run (without its changes) and how many changes are in each status.
pub type RunListing = (Run, Vec<(ChangeStatus, i64)>);

/// A new change, before it is journaled.
#[derive(Debug, Clone)]
pub struct NewChange {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub previous: Options,
    pub target: Options,
}

/// A new run, before it is journaled.
pub struct NewRun<'a> {
    pub kind: RunKind,
    pub action: Action,
    pub parent_run: Option<i64>,
    /// The plan's digest and text, for runs made from a plan.
    pub plan: Option<(&'a str, &'a str)>,
    pub created_at: &'a str,
    pub log_path: Option<&'a str>,
    /// Rollback runs: whether they undo every change of their parent that landed.
    pub covers_all: Option<bool>,
    pub changes: &'a [NewChange],
    /// The rollout wave (rollout, number) this run applies: linked in the
    /// same transaction, so no run of a wave exists unlinked, and refused if
    /// the wave has a run already (two processes cannot both make it).
    pub wave: Option<(i64, i64)>,
}

/// The process driving a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// When the process started, as the OS tells it: a pid reused by another
    /// process after a crash does not look alive.
    pub process_start: Option<String>,
    pub purpose: Purpose,
}

/// A run's lease: who drives it, since when, and their last sign of life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run: i64,
    pub holder: Holder,
    pub acquired_at: String,
    /// Epoch seconds of the last heartbeat.
    pub heartbeat: i64,
}

/// What [`Store::acquire_leases`] did.
#[derive(Debug)]
pub enum Acquired<Why> {
    /// Every lease is ours now; these were taken over from holders that are
    /// gone, each with why its holder was judged gone.
    Ours(Vec<(Lease, Why)>),
    /// Someone alive holds this one; nothing was taken.
    Held(Lease),
}

fn to_json(o: &Options) -> String {
    serde_json::to_string(o).expect("options serialize")
}

fn from_json(text: &str) -> Result<Options, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const RUN_COLUMNS: &str =
    "id, kind, action, parent_run, status, created_at, finished_at, rolled_back_by, log_path";

/// A run's head (without its changes) from a row of [`RUN_COLUMNS`].
fn read_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        kind: r.get(1)?,
        action: r.get(2)?,
        parent_run: r.get(3)?,
        status: r.get(4)?,
        created_at: r.get(5)?,
        finished_at: r.get(6)?,
        rolled_back_by: r.get(7)?,
        log_path: r.get(8)?,
        changes: Vec::new(),
    })
}

impl Store {
    /// Records a run, all its changes as `planned`, and `holder`'s lease on
    /// it, in one transaction: nobody else can ever see it unowned.
    pub fn create_run(&mut self, new: &NewRun<'_>, holder: &Holder) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO runs (kind, action, parent_run, status, created_at, tool_version, plan_digest, plan_json,
                log_path, covers_all)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                new.kind,
                new.action,
                new.parent_run,
                new.created_at,
                env!("CARGO_PKG_VERSION"),
                new.plan.map(|p| p.0),
                new.plan.map(|p| p.1),
                new.log_path,
                new.covers_all,
            ],
        )?;
        let run = tx.last_insert_rowid();
        // From the moment a rollback exists, nothing more is applied from its
        // parent: the parent is (at least) partly rolled back.
        if let (RunKind::Rollback, Some(parent)) = (new.kind, new.parent_run) {
            tx.execute(
                "UPDATE runs SET status = 'partly-rolled-back', rolled_back_by = ?2 WHERE id = ?1",
                params![parent, run],
            )?;
        }
        {
            let mut stmt = tx.prepare(
                "INSERT INTO changes (run_id, seq, account_id, region, instance_id, previous_json, target_json, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'planned')",
            )?;
            for (seq, c) in new.changes.iter().enumerate() {
                stmt.execute(params![
                    run,
                    seq as i64,
                    c.account_id,
                    c.region,
                    c.instance_id,
                    to_json(&c.previous),
                    to_json(&c.target)
                ])?;
            }
        }
        if let Some((rollout, number)) = new.wave {
            let linked = tx.execute(
                "UPDATE rollout_waves SET run_id = ?3 WHERE rollout_id = ?1 AND number = ?2 AND run_id IS NULL",
                params![rollout, number, run],
            )?;
            if linked != 1 {
                return Err(StoreError::Corrupt(format!(
                    "wave {number} of rollout {rollout} has a run already (or does not exist)"
                )));
            }
        }
        insert_lease(&tx, run, holder, crate::clock::now_epoch())?;
        tx.commit()?;
        Ok(run)
    }

    /// Intent: written (and committed) before the call is sent.
    pub fn mark_issued(&self, run: i64, seq: i64, at: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE changes SET status = 'issued', reason = NULL, attempts = attempts + 1, issued_at = ?3
             WHERE run_id = ?1 AND seq = ?2",
            params![run, seq, at],
        )?;
        Ok(())
    }

    /// Writes everything a change has learned: its status and reason, AWS's
    /// answer (a request id is kept once known), what a re-check observed,
    /// whether it was verified, and when.
    pub fn record(&self, run: i64, c: &ChangeRecord, at: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE changes SET status = ?3, reason = ?4, response_state = ?5,
                request_id = COALESCE(?6, request_id), error_code = ?7, message = ?8,
                observed_json = ?9, verified = ?10, finished_at = ?11
             WHERE run_id = ?1 AND seq = ?2",
            params![
                run,
                c.seq,
                c.status,
                c.reason,
                c.response_state,
                c.request_id,
                c.error_code,
                c.message,
                c.observed.as_ref().map(to_json),
                c.verified,
                at,
            ],
        )?;
        Ok(())
    }

    /// The status whose `--log` line has been written for a change.
    pub fn mark_logged(&self, run: i64, seq: i64, status: ChangeStatus) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE changes SET logged_status = ?3 WHERE run_id = ?1 AND seq = ?2",
            params![run, seq, status],
        )?;
        Ok(())
    }

    pub fn set_run_status(
        &self,
        run: i64,
        status: RunStatus,
        finished_at: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![run, status, finished_at],
        )?;
        Ok(())
    }

    /// Marks `run` as (partly) undone by the rollback run `by`.
    pub fn mark_rolled_back(&self, run: i64, status: RunStatus, by: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET status = ?2, rolled_back_by = ?3 WHERE id = ?1",
            params![run, status, by],
        )?;
        Ok(())
    }

    /// Whether a rollback run undoes every change of its parent that landed.
    pub fn covers_all(&self, run: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT covers_all FROM runs WHERE id = ?1", [run], |r| {
                r.get::<_, Option<bool>>(0)
            })?
            .unwrap_or(false))
    }

    /// Back to `running`, for a resume.
    pub fn reopen_run(&self, run: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?1",
            [run],
        )?;
        Ok(())
    }

    /// Where future `--log` lines of a resumed run go.
    pub fn set_log_path(&self, run: i64, path: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET log_path = ?2 WHERE id = ?1",
            params![run, path],
        )?;
        Ok(())
    }

    /// A run's head, without its changes.
    pub fn run_head(&self, run: i64) -> Result<Run, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [run],
                read_run,
            )
            .optional()?
            .ok_or(StoreError::NoRun(run))
    }

    pub fn load_run(&self, run: i64) -> Result<Run, StoreError> {
        let mut head = self.run_head(run)?;
        let mut stmt = self.conn.prepare(
            "SELECT seq, account_id, region, instance_id, previous_json, target_json, status, reason, attempts,
                issued_at, finished_at, response_state, request_id, error_code, message, observed_json,
                verified, logged_status
             FROM changes WHERE run_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([run])?;
        while let Some(r) = rows.next()? {
            let observed: Option<String> = r.get(15)?;
            head.changes.push(ChangeRecord {
                seq: r.get(0)?,
                account_id: r.get(1)?,
                region: r.get(2)?,
                instance_id: r.get(3)?,
                previous: from_json(&r.get::<_, String>(4)?)?,
                target: from_json(&r.get::<_, String>(5)?)?,
                status: r.get(6)?,
                reason: r.get(7)?,
                attempts: r.get(8)?,
                issued_at: r.get(9)?,
                finished_at: r.get(10)?,
                response_state: r.get(11)?,
                request_id: r.get(12)?,
                error_code: r.get(13)?,
                message: r.get(14)?,
                observed: observed.as_deref().map(from_json).transpose()?,
                verified: r.get(16)?,
                logged: r.get(17)?,
                tries: 0,
            });
        }
        Ok(head)
    }

    /// All runs, newest first, without their changes but with status counts.
    pub fn list_runs(&self) -> Result<Vec<RunListing>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC"))?;
        let runs: Vec<Run> = stmt.query_map([], read_run)?.collect::<Result<_, _>>()?;
        let mut counts = self.conn.prepare(
            "SELECT status, COUNT(*) FROM changes WHERE run_id = ?1 GROUP BY status
                 UNION ALL
                 SELECT status, COUNT(*) FROM source_changes WHERE run_id = ?1 GROUP BY status",
        )?;
        let mut out = Vec::new();
        for run in runs {
            let mut c = Vec::new();
            let mut rows = counts.query([run.id])?;
            while let Some(row) = rows.next()? {
                c.push((row.get(0)?, row.get(1)?));
            }
            c.sort();
            out.push((run, c));
        }
        Ok(out)
    }

    /// Takes the leases of `runs` for `me`, all or none, atomically
    /// (`BEGIN IMMEDIATE`: two processes cannot both see a run free). A lease
    /// held by someone else is taken over only where `gone` says why its
    /// holder is gone; otherwise nothing is taken and the live holder is
    /// returned.
    pub fn acquire_leases<Why>(
        &mut self,
        runs: &[i64],
        me: &Holder,
        now: i64,
        gone: impl Fn(&Lease) -> Option<Why>,
    ) -> Result<Acquired<Why>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut taken_over = Vec::new();
        for &run in runs {
            if let Some(lease) = lease_row(&tx, run)? {
                if lease.holder.pid == me.pid
                    && lease.holder.host == me.host
                    && lease.holder.process_start == me.process_start
                {
                    continue; // ours already (a rollback holding its parent and itself)
                }
                let Some(why) = gone(&lease) else {
                    return Ok(Acquired::Held(lease)); // dropping `tx` rolls back
                };
                tx.execute("DELETE FROM run_leases WHERE run_id = ?1", [run])?;
                taken_over.push((lease, why));
            }
            insert_lease(&tx, run, me, now)?;
        }
        tx.commit()?;
        Ok(Acquired::Ours(taken_over))
    }

    /// Refreshes `me`'s heartbeat on `runs`; false if any of them is no
    /// longer ours (it was taken over: we must stop driving it).
    pub fn heartbeat(&self, runs: &[i64], me: &Holder, now: i64) -> Result<bool, StoreError> {
        let mut ours = true;
        for &run in runs {
            let n = self.conn.execute(
                "UPDATE run_leases SET heartbeat_at = ?4 WHERE run_id = ?1 AND pid = ?2 AND host = ?3",
                params![run, me.pid, me.host, now],
            )?;
            ours &= n == 1;
        }
        Ok(ours)
    }

    /// Gives up `me`'s leases on `runs` (someone else's are left alone).
    pub fn release_leases(&self, runs: &[i64], me: &Holder) -> Result<(), StoreError> {
        for &run in runs {
            self.conn.execute(
                "DELETE FROM run_leases WHERE run_id = ?1 AND pid = ?2 AND host = ?3",
                params![run, me.pid, me.host],
            )?;
        }
        Ok(())
    }

    /// Who holds `run`'s lease, if anyone.
    pub fn lease(&self, run: i64) -> Result<Option<Lease>, StoreError> {
        lease_row(&self.conn, run)
    }
}

/// Journals an `apply` run of `require-v2` over `changes`, held by `holder`
/// (tests of the journal and of the run engine).
#[cfg(test)]
pub fn test_run(store: &mut Store, changes: &[NewChange], holder: &Holder) -> i64 {
    store
        .create_run(
            &NewRun {
                kind: RunKind::Apply,
                action: Action::RequireV2,
                parent_run: None,
                plan: Some(("d", "{}")),
                created_at: "t0",
                log_path: None,
                covers_all: None,
                changes,
                wave: None,
            },
            holder,
        )
        .unwrap()
}

pub(super) fn insert_lease(
    conn: &rusqlite::Connection,
    run: i64,
    holder: &Holder,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO run_leases (run_id, pid, host, process_start, purpose, acquired_at, heartbeat_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run,
            holder.pid,
            holder.host,
            holder.process_start,
            holder.purpose,
            crate::clock::now(),
            now
        ],
    )?;
    Ok(())
}

fn lease_row(conn: &rusqlite::Connection, run: i64) -> Result<Option<Lease>, StoreError> {
    let row = conn
        .query_row(
            "SELECT pid, host, process_start, purpose, acquired_at, heartbeat_at FROM run_leases WHERE run_id = ?1",
            [run],
            |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Purpose>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?;
    row.map(
        |(pid, host, process_start, purpose, acquired_at, heartbeat)| {
            Ok(Lease {
                run,
                holder: Holder {
                    pid,
                    host,
                    process_start,
                    purpose,
                },
                acquired_at,
                heartbeat,
            })
        },
    )
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpTokens, Toggle};

    fn opts(tokens: HttpTokens) -> Options {
        Options {
            http_tokens: tokens,
            http_endpoint: Toggle::Enabled,
            hop_limit: 1,
            instance_metadata_tags: Toggle::Disabled,
            http_protocol_ipv6: Toggle::Disabled,
        }
    }

    pub fn holder(pid: u32) -> Holder {
        Holder {
            pid,
            host: "h".into(),
            process_start: None,
            purpose: Purpose::Apply,
        }
    }

    fn new_run(store: &mut Store, n: usize) -> i64 {
        let changes: Vec<NewChange> = (0..n)
            .map(|i| NewChange {
                account_id: "111122223333".into(),
                region: "us-east-1".into(),
                instance_id: format!("i-{i:017x}"),
                previous: opts(HttpTokens::Optional),
                target: opts(HttpTokens::Required),
            })
            .collect();
        test_run(store, &changes, &holder(1))
    }

    #[test]
    fn journal_round_trip() {
        let mut store = Store::in_memory();
        let run = new_run(&mut store, 1);
        store.mark_issued(run, 0, "t1").unwrap();
        let r = store.load_run(run).unwrap();
        assert_eq!(r.changes[0].status, ChangeStatus::Issued);
        assert_eq!(r.changes[0].attempts, 1);
        assert_eq!(
            (r.kind, r.action, r.status),
            (RunKind::Apply, Action::RequireV2, RunStatus::Running)
        );
        let mut c = r.changes[0].clone();
        c.status = ChangeStatus::Pending;
        c.response_state = Some(MetadataState::Pending);
        c.request_id = Some("req-1".into());
        store.record(run, &c, "t2").unwrap();
        c.status = ChangeStatus::Applied;
        c.verified = true;
        c.request_id = None; // a later write without one keeps the first
        store.record(run, &c, "t3").unwrap();
        store.mark_logged(run, 0, ChangeStatus::Applied).unwrap();
        let r = store.load_run(run).unwrap();
        let c = &r.changes[0];
        assert_eq!(
            (c.status, c.verified, c.request_id.as_deref(), c.logged),
            (
                ChangeStatus::Applied,
                true,
                Some("req-1"),
                Some(ChangeStatus::Applied)
            )
        );
        assert_eq!(c.target, opts(HttpTokens::Required));
        let runs = store.list_runs().unwrap();
        assert_eq!(runs[0].1, vec![(ChangeStatus::Applied, 1)]);
        assert!(matches!(store.load_run(99), Err(StoreError::NoRun(99))));
    }

    #[test]
    fn unknown_stored_names_are_errors_and_the_schema_refuses_them() {
        let mut store = Store::in_memory();
        let run = new_run(&mut store, 1);
        // The CHECK constraints keep unknown names out...
        assert!(
            store
                .conn
                .execute(
                    "UPDATE changes SET status = 'done' WHERE run_id = ?1",
                    [run]
                )
                .is_err()
        );
        assert!(
            store
                .conn
                .execute("UPDATE runs SET status = 'finished' WHERE id = ?1", [run])
                .is_err()
        );
        // ...and reading never guesses.
        assert!(matches!(
            ChangeStatus::from_stored("done"),
            Err(StoreError::Corrupt(m)) if m.contains("ChangeStatus `done`")
        ));
        assert_eq!(
            RunStatus::from_stored("rolled-back").unwrap(),
            RunStatus::RolledBack
        );
    }

    #[test]
    fn leases_are_exclusive_until_their_holder_is_gone() {
        let mut store = Store::in_memory();
        let run = new_run(&mut store, 1); // holder 1 owns it
        let other = Holder {
            purpose: Purpose::Resume,
            ..holder(2)
        };
        match store
            .acquire_leases(&[run], &other, 100, |_| None::<()>)
            .unwrap()
        {
            Acquired::Held(l) => assert_eq!((l.holder.pid, l.holder.purpose), (1, Purpose::Apply)),
            Acquired::Ours(_) => panic!("taken from a live holder"),
        }
        assert!(store.heartbeat(&[run], &holder(1), 101).unwrap());
        assert!(!store.heartbeat(&[run], &other, 101).unwrap());
        match store
            .acquire_leases(&[run], &other, 200, |_| Some(()))
            .unwrap()
        {
            Acquired::Ours(taken) => assert_eq!(taken[0].0.holder.pid, 1),
            Acquired::Held(_) => panic!("a gone holder keeps it"),
        }
        // The old holder learns it lost the run on its next heartbeat.
        assert!(!store.heartbeat(&[run], &holder(1), 201).unwrap());
        store.release_leases(&[run], &holder(1)).unwrap();
        assert_eq!(store.lease(run).unwrap().unwrap().holder.pid, 2);
        store.release_leases(&[run], &other).unwrap();
        assert!(store.lease(run).unwrap().is_none());
    }

    #[test]
    fn acquiring_several_leases_is_all_or_nothing() {
        let mut store = Store::in_memory();
        let a = new_run(&mut store, 1);
        let b = new_run(&mut store, 1);
        store.release_leases(&[a], &holder(1)).unwrap();
        let me = holder(3);
        assert!(matches!(
            store.acquire_leases(&[a, b], &me, 10, |_| None::<()>).unwrap(),
            Acquired::Held(l) if l.run == b
        ));
        assert!(store.lease(a).unwrap().is_none(), "a was not kept");
    }
}
