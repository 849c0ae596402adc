//! Rollouts: a plan applied in waves over days (see `crate::rollout`).
//!
//! A rollout is a state machine in four tables: the rollout (its plan,
//! settings and state), its waves (each applied as one journaled run), its
//! members (each planned change, its wave and group, and what the rollout
//! itself did to it: held back or rolled back), and its decisions. A
//! decision is written before it is acted on and marked done after, so a
//! process that dies in between leaves an open decision the next `advance`
//! finishes (re-using the runs it already started).

use rusqlite::{OptionalExtension, params};

use super::journal::Named;
use super::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutState {
    /// A wave is being applied (its decision is open).
    Applying,
    /// The current wave is applied; waiting for its soak to end.
    Soaking,
    /// Something broke: an instance was rolled back, its group held.
    Halted,
    Done,
    /// Everything the rollout changed was rolled back.
    Aborted,
}
named!(RolloutState {
    Applying => "applying",
    Soaking => "soaking",
    Halted => "halted",
    Done => "done",
    Aborted => "aborted",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaveState {
    Pending,
    /// Its run was made; the soak is on.
    Applied,
    /// The soak ended clean.
    Passed,
    /// The soak found rejected calls or a failed health check.
    Halted,
}
named!(WaveState {
    Pending => "pending",
    Applied => "applied",
    Passed => "passed",
    Halted => "halted",
});

/// What the rollout itself did to a member, beyond its wave's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberMark {
    /// Not changed: its group broke in an earlier wave.
    Held,
    /// Changed, then rolled back because it broke.
    RolledBack,
}
named!(MemberMark { Held => "held", RolledBack => "rolled-back" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// Apply this wave (the run it made is on the wave).
    ApplyWave,
    /// The wave's soak ended clean.
    Pass,
    /// Roll back the offenders, hold their groups, halt.
    Halt,
    /// A person resumed a halted rollout.
    Resume,
    /// Every wave passed.
    Finish,
    /// Roll back everything the rollout changed.
    Abort,
}
named!(DecisionKind {
    ApplyWave => "apply-wave",
    Pass => "pass",
    Halt => "halt",
    Resume => "resume",
    Finish => "finish",
    Abort => "abort",
});

/// The settings a rollout keeps for its whole life.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RolloutSettings {
    pub waves: String,
    pub soak_secs: i64,
    pub max_rejected: i64,
    pub health_cmd: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Rollout {
    pub id: i64,
    pub created_at: String,
    pub state: RolloutState,
    pub current_wave: i64,
    pub settings: RolloutSettings,
    #[serde(skip)]
    pub plan_json: String,
    pub waves: Vec<Wave>,
    pub members: Vec<Member>,
    pub decisions: Vec<Decision>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Wave {
    pub number: i64,
    pub state: WaveState,
    pub run_id: Option<i64>,
    /// Epoch seconds the run finished, and until when it soaks.
    pub applied_at: Option<i64>,
    pub soak_until: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    pub plan_index: i64,
    pub wave: i64,
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub group: String,
    pub mark: Option<MemberMark>,
    pub reason: Option<String>,
    /// What the soak saw after its change.
    pub rejected_calls: Option<i64>,
    pub v1_calls: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    pub id: i64,
    pub at: String,
    pub wave: i64,
    pub kind: DecisionKind,
    pub reason: String,
    pub done: bool,
}

/// A new rollout's members: (plan index, wave, account, region, instance, group).
pub struct NewMember<'a> {
    pub plan_index: usize,
    pub wave: usize,
    pub account_id: &'a str,
    pub region: &'a str,
    pub instance_id: &'a str,
    pub group: String,
}

impl Store {
    /// Creates a rollout: the rollout, its waves and members, and the open
    /// decision to apply wave 1, in one transaction. Wave 1's run is made
    /// next, linked to the wave as it is created (`NewRun::wave`).
    pub fn create_rollout(
        &mut self,
        plan_json: &str,
        settings: &RolloutSettings,
        waves: usize,
        members: &[NewMember],
    ) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        let now = crate::clock::now();
        tx.execute(
            "INSERT INTO rollouts (created_at, state, current_wave, plan_json, waves_spec, soak_secs, max_rejected, health_cmd)
             VALUES (?1, 'applying', 1, ?2, ?3, ?4, ?5, ?6)",
            params![
                now,
                plan_json,
                settings.waves,
                settings.soak_secs,
                settings.max_rejected,
                settings.health_cmd
            ],
        )?;
        let id = tx.last_insert_rowid();
        for n in 1..=waves as i64 {
            tx.execute(
                "INSERT INTO rollout_waves (rollout_id, number, state) VALUES (?1, ?2, 'pending')",
                params![id, n],
            )?;
        }
        for m in members {
            tx.execute(
                "INSERT INTO rollout_members (rollout_id, plan_index, wave, account_id, region, instance_id, group_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    m.plan_index as i64,
                    m.wave as i64,
                    m.account_id,
                    m.region,
                    m.instance_id,
                    m.group
                ],
            )?;
        }
        tx.execute(
            "INSERT INTO rollout_decisions (rollout_id, at, wave, kind, reason, done)
             VALUES (?1, ?2, 1, 'apply-wave', 'the canaries: one instance of every group', 0)",
            params![id, now],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Whether the database has rollouts at all (one older than schema 5,
    /// opened read-only, has not).
    fn has_rollouts(&self) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'rollouts'",
            [],
            |r| r.get(0),
        )?)
    }

    pub fn rollout_ids(&self) -> Result<Vec<i64>, StoreError> {
        if !self.has_rollouts()? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare("SELECT id FROM rollouts ORDER BY id")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    pub fn load_rollout(&self, id: i64) -> Result<Rollout, StoreError> {
        if !self.has_rollouts()? {
            return Err(StoreError::NoRollout(id));
        }
        let head = self
            .conn
            .query_row(
                "SELECT created_at, state, current_wave, plan_json, waves_spec, soak_secs, max_rejected, health_cmd
                 FROM rollouts WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, RolloutState>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        RolloutSettings {
                            waves: r.get(4)?,
                            soak_secs: r.get(5)?,
                            max_rejected: r.get(6)?,
                            health_cmd: r.get(7)?,
                        },
                    ))
                },
            )
            .optional()?
            .ok_or(StoreError::NoRollout(id))?;
        let mut stmt = self.conn.prepare(
            "SELECT number, state, run_id, applied_at, soak_until FROM rollout_waves
             WHERE rollout_id = ?1 ORDER BY number",
        )?;
        let waves = stmt
            .query_map([id], |r| {
                Ok(Wave {
                    number: r.get(0)?,
                    state: r.get(1)?,
                    run_id: r.get(2)?,
                    applied_at: r.get(3)?,
                    soak_until: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT plan_index, wave, account_id, region, instance_id, group_key, mark, reason, rejected_calls, v1_calls
             FROM rollout_members WHERE rollout_id = ?1 ORDER BY plan_index",
        )?;
        let members = stmt
            .query_map([id], |r| {
                Ok(Member {
                    plan_index: r.get(0)?,
                    wave: r.get(1)?,
                    account_id: r.get(2)?,
                    region: r.get(3)?,
                    instance_id: r.get(4)?,
                    group: r.get(5)?,
                    mark: r.get(6)?,
                    reason: r.get(7)?,
                    rejected_calls: r.get(8)?,
                    v1_calls: r.get(9)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT id, at, wave, kind, reason, done FROM rollout_decisions
             WHERE rollout_id = ?1 ORDER BY id",
        )?;
        let decisions = stmt
            .query_map([id], |r| {
                Ok(Decision {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    wave: r.get(2)?,
                    kind: r.get(3)?,
                    reason: r.get(4)?,
                    done: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let (created_at, state, current_wave, plan_json, settings) = head;
        Ok(Rollout {
            id,
            created_at,
            state,
            current_wave,
            settings,
            plan_json,
            waves,
            members,
            decisions,
        })
    }

    /// Journals a decision before it is acted on.
    pub fn open_decision(
        &self,
        rollout: i64,
        wave: i64,
        kind: DecisionKind,
        reason: &str,
    ) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO rollout_decisions (rollout_id, at, wave, kind, reason, done)
             VALUES (?1, ?2, ?3, ?4, ?5, 0)",
            params![rollout, crate::clock::now(), wave, kind, reason],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Marks a decision acted on, and moves the rollout to `state` (and
    /// `current_wave`), in one transaction. A rollout that is done or
    /// aborted stays so: nothing moves it out of an end state.
    pub fn close_decision(
        &mut self,
        rollout: i64,
        decision: i64,
        state: RolloutState,
        current_wave: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE rollout_decisions SET done = 1 WHERE id = ?1",
            [decision],
        )?;
        tx.execute(
            "UPDATE rollouts SET state = ?2, current_wave = ?3
             WHERE id = ?1 AND state NOT IN ('done', 'aborted')",
            params![rollout, state, current_wave],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Closes every open decision but `except` as superseded (an abort
    /// overrides what an interrupted step had decided).
    pub fn supersede_open_decisions(
        &self,
        rollout: i64,
        except: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE rollout_decisions SET done = 1, reason = reason || ' (superseded: ' || ?3 || ')'
             WHERE rollout_id = ?1 AND done = 0 AND id != ?2",
            params![rollout, except, by],
        )?;
        Ok(())
    }

    pub fn set_rollout_state(&self, rollout: i64, state: RolloutState) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE rollouts SET state = ?2 WHERE id = ?1 AND state NOT IN ('done', 'aborted')",
            params![rollout, state],
        )?;
        Ok(())
    }

    /// A wave's run finished at `applied_at`: it soaks until `soak_until`.
    pub fn set_wave_applied(
        &self,
        rollout: i64,
        wave: i64,
        applied_at: i64,
        soak_until: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE rollout_waves SET state = 'applied', applied_at = ?3, soak_until = ?4
             WHERE rollout_id = ?1 AND number = ?2",
            params![rollout, wave, applied_at, soak_until],
        )?;
        Ok(())
    }

    pub fn set_wave_state(
        &self,
        rollout: i64,
        wave: i64,
        state: WaveState,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE rollout_waves SET state = ?3 WHERE rollout_id = ?1 AND number = ?2",
            params![rollout, wave, state],
        )?;
        Ok(())
    }

    /// What a soak saw on one member.
    pub fn set_member_calls(
        &self,
        rollout: i64,
        plan_index: i64,
        rejected: i64,
        v1: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE rollout_members SET rejected_calls = ?3, v1_calls = ?4
             WHERE rollout_id = ?1 AND plan_index = ?2",
            params![rollout, plan_index, rejected, v1],
        )?;
        Ok(())
    }

    /// Marks a member held or rolled back (or clears the mark), and why.
    pub fn mark_member(
        &self,
        rollout: i64,
        plan_index: i64,
        mark: Option<MemberMark>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE rollout_members SET mark = ?3, reason = ?4 WHERE rollout_id = ?1 AND plan_index = ?2",
            params![rollout, plan_index, mark, reason],
        )?;
        Ok(())
    }
}

impl Store {
    /// Keeps a measured effect (`subject`: `run N` or `rollout N`).
    pub fn save_effect(&self, subject: &str, effect_json: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO effects (subject, measured_at, effect_json) VALUES (?1, ?2, ?3)",
            params![subject, crate::clock::now(), effect_json],
        )?;
        Ok(())
    }

    /// The latest effect of each subject, newest first, at most `limit`:
    /// (subject, measured at, JSON). A database without the table (older
    /// than schema 5, opened read-only) has none.
    pub fn latest_effects(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let exists: bool = self.conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'effects'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT subject, measured_at, effect_json FROM effects e
             WHERE id = (SELECT MAX(id) FROM effects WHERE subject = e.subject)
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(store: &mut Store) -> i64 {
        store
            .create_rollout(
                "{}",
                &RolloutSettings {
                    waves: "1,100%".into(),
                    soak_secs: 0,
                    max_rejected: 0,
                    health_cmd: None,
                },
                2,
                &[NewMember {
                    plan_index: 0,
                    wave: 1,
                    account_id: "1",
                    region: "r",
                    instance_id: "i-1",
                    group: "g".into(),
                }],
            )
            .unwrap()
    }

    #[test]
    fn an_aborted_rollout_stays_aborted_and_its_open_decisions_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db")).unwrap();
        let id = rollout(&mut store);
        let open = store.load_rollout(id).unwrap().decisions[0].clone();
        assert!(!open.done && open.kind == DecisionKind::ApplyWave);
        let abort = store
            .open_decision(id, 1, DecisionKind::Abort, "by a person")
            .unwrap();
        store
            .supersede_open_decisions(id, abort, "aborted")
            .unwrap();
        store
            .close_decision(id, abort, RolloutState::Aborted, 1)
            .unwrap();
        // A late step of an old process cannot bring it back.
        store
            .close_decision(id, open.id, RolloutState::Soaking, 2)
            .unwrap();
        store.set_rollout_state(id, RolloutState::Applying).unwrap();
        let r = store.load_rollout(id).unwrap();
        assert_eq!(r.state, RolloutState::Aborted);
        assert!(r.decisions.iter().all(|d| d.done));
        assert!(r.decisions[0].reason.contains("superseded"));
    }
}
