//! The change journal in SQLite: a run (one `apply` or `rollback`) and the
//! life of each change in it. Intent is written before every AWS call and
//! the result after it, each in its own committed transaction, so a run cut
//! short by a crash, `kill -9` or Ctrl-C can be resumed or rolled back
//! exactly from what is on disk.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::model::Options;
use crate::store::{Store, StoreError};

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
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
    /// EC2 refused it, or every attempt failed.
    Failed,
    /// Deliberately not sent (already at target, drifted, run stopped).
    Skipped,
}

impl ChangeStatus {
    pub const ALL: [ChangeStatus; 6] = [
        ChangeStatus::Planned,
        ChangeStatus::Issued,
        ChangeStatus::Applied,
        ChangeStatus::Pending,
        ChangeStatus::Failed,
        ChangeStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Planned => "planned",
            ChangeStatus::Issued => "issued",
            ChangeStatus::Applied => "applied",
            ChangeStatus::Pending => "pending",
            ChangeStatus::Failed => "failed",
            ChangeStatus::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> ChangeStatus {
        ChangeStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(ChangeStatus::Issued)
    }
}

/// One journaled change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    pub seq: i64,
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub previous: Options,
    pub target: Options,
    pub status: ChangeStatus,
    pub attempts: i64,
    pub issued_at: Option<String>,
    pub finished_at: Option<String>,
    pub response_state: Option<String>,
    pub request_id: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub verified: bool,
}

/// A run and its changes.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub kind: String,
    pub action: String,
    pub parent_run: Option<i64>,
    pub status: String,
    pub created_at: String,
    pub finished_at: Option<String>,
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

fn to_json(o: &Options) -> String {
    serde_json::to_string(o).expect("options serialize")
}

impl Store {
    /// Records a run and all its changes as `planned`, in one transaction.
    pub fn create_run(
        &mut self,
        kind: &str,
        action: &str,
        parent_run: Option<i64>,
        plan: Option<(&str, &str)>,
        created_at: &str,
        changes: &[NewChange],
    ) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO runs (kind, action, parent_run, status, created_at, tool_version, plan_digest, plan_json)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7)",
            params![
                kind,
                action,
                parent_run,
                created_at,
                env!("CARGO_PKG_VERSION"),
                plan.map(|p| p.0),
                plan.map(|p| p.1)
            ],
        )?;
        let run = tx.last_insert_rowid();
        {
            let mut stmt = tx.prepare(
                "INSERT INTO changes (run_id, seq, account_id, region, instance_id, previous_json, target_json, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'planned')",
            )?;
            for (seq, c) in changes.iter().enumerate() {
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
        tx.commit()?;
        Ok(run)
    }

    /// Intent: written (and committed) before the call is sent.
    pub fn mark_issued(&self, run: i64, seq: i64, at: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE changes SET status = 'issued', attempts = attempts + 1, issued_at = ?3
             WHERE run_id = ?1 AND seq = ?2",
            params![run, seq, at],
        )?;
        Ok(())
    }

    /// Result: written after the call returns.
    #[allow(clippy::too_many_arguments)]
    pub fn mark_result(
        &self,
        run: i64,
        seq: i64,
        status: ChangeStatus,
        response_state: Option<&str>,
        request_id: Option<&str>,
        error_code: Option<&str>,
        message: Option<&str>,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE changes SET status = ?3, response_state = ?4, request_id = COALESCE(?5, request_id),
                error_code = ?6, message = ?7, finished_at = ?8
             WHERE run_id = ?1 AND seq = ?2",
            params![run, seq, status.as_str(), response_state, request_id, error_code, message, at],
        )?;
        Ok(())
    }

    /// A change settled without a call (already at target, drifted, gone):
    /// `status` with a reason and no AWS answer.
    pub fn settle(
        &self,
        run: i64,
        seq: i64,
        status: ChangeStatus,
        reason: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.mark_result(run, seq, status, None, None, None, Some(reason), at)
    }

    /// The outcome of re-describing the instance after the change.
    pub fn mark_verified(
        &self,
        run: i64,
        seq: i64,
        status: ChangeStatus,
        verified: bool,
        message: Option<&str>,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE changes SET status = ?3, verified = ?4, message = COALESCE(?5, message), finished_at = ?6
             WHERE run_id = ?1 AND seq = ?2",
            params![run, seq, status.as_str(), verified, message, at],
        )?;
        Ok(())
    }

    pub fn set_run_status(
        &self,
        run: i64,
        status: &str,
        finished_at: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![run, status, finished_at],
        )?;
        Ok(())
    }

    pub fn load_run(&self, run: i64) -> Result<Run, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT kind, action, parent_run, status, created_at, finished_at FROM runs WHERE id = ?1",
                [run],
                |r| {
                    Ok(Run {
                        id: run,
                        kind: r.get(0)?,
                        action: r.get(1)?,
                        parent_run: r.get(2)?,
                        status: r.get(3)?,
                        created_at: r.get(4)?,
                        finished_at: r.get(5)?,
                        changes: Vec::new(),
                    })
                },
            )
            .optional()?;
        let mut head = head.ok_or(StoreError::NoRun(run))?;
        let mut stmt = self.conn.prepare(
            "SELECT seq, account_id, region, instance_id, previous_json, target_json, status, attempts, issued_at,
                finished_at, response_state, request_id, error_code, message, verified
             FROM changes WHERE run_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([run], |r| {
            let previous: String = r.get(4)?;
            let target: String = r.get(5)?;
            let status: String = r.get(6)?;
            Ok((
                previous,
                target,
                status,
                ChangeRecord {
                    seq: r.get(0)?,
                    account_id: r.get(1)?,
                    region: r.get(2)?,
                    instance_id: r.get(3)?,
                    previous: placeholder(),
                    target: placeholder(),
                    status: ChangeStatus::Planned,
                    attempts: r.get(7)?,
                    issued_at: r.get(8)?,
                    finished_at: r.get(9)?,
                    response_state: r.get(10)?,
                    request_id: r.get(11)?,
                    error_code: r.get(12)?,
                    message: r.get(13)?,
                    verified: r.get(14)?,
                },
            ))
        })?;
        for row in rows {
            let (previous, target, status, mut rec) = row?;
            rec.previous =
                serde_json::from_str(&previous).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            rec.target =
                serde_json::from_str(&target).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            rec.status = ChangeStatus::parse(&status);
            head.changes.push(rec);
        }
        Ok(head)
    }

    /// All runs, newest first, without their changes but with status counts.
    pub fn list_runs(&self) -> Result<Vec<RunListing>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, action, parent_run, status, created_at, finished_at FROM runs ORDER BY id DESC",
        )?;
        let runs: Vec<Run> = stmt
            .query_map([], |r| {
                Ok(Run {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    action: r.get(2)?,
                    parent_run: r.get(3)?,
                    status: r.get(4)?,
                    created_at: r.get(5)?,
                    finished_at: r.get(6)?,
                    changes: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        let mut counts = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM changes WHERE run_id = ?1 GROUP BY status")?;
        for run in runs {
            let c: Vec<(ChangeStatus, i64)> = counts
                .query_map([run.id], |r| {
                    Ok((ChangeStatus::parse(&r.get::<_, String>(0)?), r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            out.push((run, c));
        }
        Ok(out)
    }
}

fn placeholder() -> Options {
    use crate::model::{HttpTokens, Toggle};
    Options {
        http_tokens: HttpTokens::Optional,
        http_endpoint: Toggle::Enabled,
        hop_limit: 1,
        instance_metadata_tags: Toggle::Disabled,
        http_protocol_ipv6: Toggle::Disabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trip() {
        let mut store = Store::in_memory();
        let mut target = placeholder();
        target.http_tokens = crate::model::HttpTokens::Required;
        let change = NewChange {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            instance_id: "i-12345678".into(),
            previous: placeholder(),
            target,
        };
        let run = store
            .create_run(
                "apply",
                "require-v2",
                None,
                Some(("d", "{}")),
                "t0",
                &[change],
            )
            .unwrap();
        store.mark_issued(run, 0, "t1").unwrap();
        let r = store.load_run(run).unwrap();
        assert_eq!(r.changes[0].status, ChangeStatus::Issued);
        assert_eq!(r.changes[0].attempts, 1);
        store
            .mark_result(
                run,
                0,
                ChangeStatus::Pending,
                Some("pending"),
                Some("req-1"),
                None,
                None,
                "t2",
            )
            .unwrap();
        store
            .mark_verified(run, 0, ChangeStatus::Applied, true, None, "t3")
            .unwrap();
        let r = store.load_run(run).unwrap();
        let c = &r.changes[0];
        assert_eq!(
            (c.status, c.verified, c.request_id.as_deref()),
            (ChangeStatus::Applied, true, Some("req-1"))
        );
        assert_eq!(c.target, target);
        assert_eq!(c.previous, placeholder());
        let runs = store.list_runs().unwrap();
        assert_eq!(runs[0].1, vec![(ChangeStatus::Applied, 1)]);
        assert!(matches!(store.load_run(99), Err(StoreError::NoRun(99))));
    }
}
