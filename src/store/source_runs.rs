//! The journal of runs that change sources of new instances (launch
//! templates, Auto Scaling groups, account defaults): a run row like any
//! other (`scope = 'sources'`, so ids, leases, statuses and `runs` are
//! shared) and one `source_changes` row per change, written before each
//! step's call (intent) and after it (what AWS made).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::journal::{ChangeStatus, Holder, RunKind, RunStatus, insert_lease};
use super::{Store, StoreError};
use crate::model::Action;
use crate::sources::{ChangeResult, SourceChange};

/// One journaled source change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRecord {
    pub seq: i64,
    pub account_id: String,
    pub region: String,
    pub change: SourceChange,
    pub status: ChangeStatus,
    /// Steps that landed (see [`SourceChange::steps`]).
    pub steps_done: i64,
    /// A step was sent and its answer never journaled (a crash, Ctrl-C).
    pub in_flight: bool,
    pub result: ChangeResult,
    pub error_code: Option<String>,
    pub message: Option<String>,
}

/// A source run and its changes.
#[derive(Debug, Clone, Serialize)]
pub struct SourceRun {
    pub id: i64,
    pub kind: RunKind,
    pub parent_run: Option<i64>,
    pub status: RunStatus,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub rolled_back_by: Option<i64>,
    pub changes: Vec<SourceRecord>,
}

/// A new source change, before it is journaled.
#[derive(Debug, Clone)]
pub struct NewSourceChange {
    pub account_id: String,
    pub region: String,
    pub change: SourceChange,
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("a source change does not read back: {e}"))
}

impl Store {
    /// Records a source run, its changes as `planned` and `holder`'s lease,
    /// in one transaction. A rollback marks its parent partly rolled back.
    pub fn create_source_run(
        &mut self,
        kind: RunKind,
        parent_run: Option<i64>,
        created_at: &str,
        changes: &[NewSourceChange],
        holder: &Holder,
    ) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        let action = match kind {
            RunKind::Apply => Action::RequireV2,
            RunKind::Rollback => Action::Rollback,
        };
        tx.execute(
            "INSERT INTO runs (kind, action, parent_run, status, created_at, tool_version, scope)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5, 'sources')",
            params![
                kind,
                action,
                parent_run,
                created_at,
                env!("CARGO_PKG_VERSION")
            ],
        )?;
        let run = tx.last_insert_rowid();
        if let (RunKind::Rollback, Some(parent)) = (kind, parent_run) {
            tx.execute(
                "UPDATE runs SET status = 'partly-rolled-back', rolled_back_by = ?2 WHERE id = ?1",
                params![parent, run],
            )?;
        }
        {
            let mut stmt = tx.prepare(
                "INSERT INTO source_changes (run_id, seq, account_id, region, kind, resource, change_json, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'planned')",
            )?;
            for (seq, c) in changes.iter().enumerate() {
                stmt.execute(params![
                    run,
                    seq as i64,
                    c.account_id,
                    c.region,
                    c.change.kind().as_str(),
                    c.change.resource(),
                    serde_json::to_string(&c.change).expect("changes serialize"),
                ])?;
            }
        }
        insert_lease(&tx, run, holder, crate::clock::now_epoch())?;
        tx.commit()?;
        Ok(run)
    }

    /// Whether `run` changes sources (else instances).
    pub fn is_source_run(&self, run: i64) -> Result<bool, StoreError> {
        let scope: Option<String> = self
            .conn
            .query_row("SELECT scope FROM runs WHERE id = ?1", [run], |r| r.get(0))
            .optional()?;
        match scope {
            Some(s) => Ok(s == "sources"),
            None => Err(StoreError::NoRun(run)),
        }
    }

    /// Intent, committed before a step's call is sent.
    pub fn source_step_issued(&self, run: i64, seq: i64, at: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE source_changes SET status = 'issued', issued_at = ?3 WHERE run_id = ?1 AND seq = ?2",
            params![run, seq, at],
        )?;
        Ok(())
    }

    /// A step landed: `steps_done` and what it made. The change is
    /// `applied` once its last step is.
    pub fn source_step_done(
        &self,
        run: i64,
        seq: i64,
        steps_done: i64,
        last: bool,
        result: &ChangeResult,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE source_changes SET steps_done = ?3, result_json = ?4, finished_at = ?5,
                status = CASE WHEN ?6 THEN 'applied' ELSE 'planned' END, error_code = NULL, message = NULL
             WHERE run_id = ?1 AND seq = ?2",
            params![
                run,
                seq,
                steps_done,
                serde_json::to_string(result).expect("results serialize"),
                at,
                last
            ],
        )?;
        Ok(())
    }

    /// A change ended without landing (`failed`, or `skipped` with why).
    pub fn source_change_ended(
        &self,
        run: i64,
        seq: i64,
        status: ChangeStatus,
        code: Option<&str>,
        message: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE source_changes SET status = ?3, error_code = ?4, message = ?5, finished_at = ?6
             WHERE run_id = ?1 AND seq = ?2",
            params![run, seq, status, code, message, at],
        )?;
        Ok(())
    }

    pub fn load_source_run(&self, run: i64) -> Result<SourceRun, StoreError> {
        let head = self.run_head(run)?;
        let mut stmt = self.conn.prepare(
            "SELECT seq, account_id, region, change_json, status, steps_done, result_json, error_code, message,
                issued_at, finished_at
             FROM source_changes WHERE run_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([run])?;
        let mut changes = Vec::new();
        while let Some(r) = rows.next()? {
            let status: ChangeStatus = r.get(4)?;
            let result: Option<String> = r.get(6)?;
            changes.push(SourceRecord {
                seq: r.get(0)?,
                account_id: r.get(1)?,
                region: r.get(2)?,
                change: serde_json::from_str(&r.get::<_, String>(3)?).map_err(corrupt)?,
                status,
                steps_done: r.get(5)?,
                in_flight: status == ChangeStatus::Issued,
                result: result
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(corrupt)?
                    .unwrap_or_default(),
                error_code: r.get(7)?,
                message: r.get(8)?,
            });
        }
        Ok(SourceRun {
            id: head.id,
            kind: head.kind,
            parent_run: head.parent_run,
            status: head.status,
            created_at: head.created_at,
            finished_at: head.finished_at,
            rolled_back_by: head.rolled_back_by,
            changes,
        })
    }
}
