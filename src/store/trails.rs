//! CloudTrail attribution results (schema 7): one `trail_runs` row per
//! `imdsguard trail`, its instances (`trail_instances`) and their user
//! agents with the verdict (`trail_agents`). No access key id or source IP
//! is ever read, so none is stored.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::trail::{Counts, InstanceTally};

/// The callers of a trail read, by (account, region, instance).
pub type CallerMap = std::collections::HashMap<(String, String, String), Callers>;

/// What a stored trail read says about one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Callers {
    pub v1_credential_calls: u64,
    /// `tool version: advice`, most calls first.
    pub agents: Vec<String>,
}

impl Store {
    /// Saves one trail read in one transaction; returns its id.
    pub fn save_trail(
        &mut self,
        source: &str,
        window: (&str, &str),
        counts: &Counts,
        instances: &[InstanceTally],
    ) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO trail_runs (created_at, source, window_start, window_end, records, attributed, v2,
                v1_not_instance, malformed, objects)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                crate::clock::now(),
                source,
                window.0,
                window.1,
                counts.records,
                counts.attributed,
                counts.v2,
                counts.v1_not_instance,
                counts.malformed,
                counts.objects
            ],
        )?;
        let run = tx.last_insert_rowid();
        {
            let mut inst = tx.prepare(
                "INSERT INTO trail_instances (trail_run, account_id, region, instance_id, role_name,
                    v1_credential_calls, first_seen, last_seen, events_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut agent = tx.prepare(
                "INSERT INTO trail_agents (trail_run, account_id, region, instance_id, user_agent, calls, tool,
                    version, verdict, advice)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for t in instances {
                inst.execute(params![
                    run,
                    t.account_id,
                    t.region,
                    t.instance_id,
                    t.role_name,
                    t.v1_credential_calls,
                    t.first_seen,
                    t.last_seen,
                    serde_json::to_string(&t.events).expect("maps serialize"),
                ])?;
                for a in t.agents() {
                    agent.execute(params![
                        run,
                        t.account_id,
                        t.region,
                        t.instance_id,
                        a.user_agent,
                        a.calls,
                        a.agent.tool,
                        a.agent.version,
                        a.agent.verdict.kind(),
                        a.advice,
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(run)
    }

    /// The callers the latest trail read found, by (account, region,
    /// instance); `None` when no trail was ever read.
    pub fn latest_callers(&self) -> Result<Option<CallerMap>, StoreError> {
        let head: Option<i64> = self
            .conn
            .query_row("SELECT MAX(id) FROM trail_runs", [], |r| r.get(0))
            .optional()?
            .flatten();
        let Some(head) = head else {
            return Ok(None);
        };
        let mut out = CallerMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT account_id, region, instance_id, v1_credential_calls FROM trail_instances WHERE trail_run = ?1",
        )?;
        let rows = stmt.query_map([head], |r| {
            Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, u64>(3)?))
        })?;
        for row in rows {
            let (k, n) = row?;
            out.entry(k).or_default().v1_credential_calls = n;
        }
        let mut stmt = self.conn.prepare(
            "SELECT account_id, region, instance_id, tool, version, advice, user_agent FROM trail_agents
             WHERE trail_run = ?1 ORDER BY calls DESC, user_agent",
        )?;
        let rows = stmt.query_map([head], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?),
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        for row in rows {
            let (k, tool, version, advice, ua) = row?;
            let who = match (tool, version) {
                (Some(t), Some(v)) => format!("{t} {v}"),
                _ => ua,
            };
            out.entry(k)
                .or_default()
                .agents
                .push(format!("{who}: {advice}"));
        }
        Ok(Some(out))
    }
}
