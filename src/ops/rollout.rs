//! Rollouts, the application side: splitting a plan into waves from what
//! its scan knew, the plan of one wave, the soak's measurement and health
//! check, and the state changes that follow a decision. Driving runs
//! (Ctrl-C, progress) stays with the command, as for `apply`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::OpsError;
use super::fleet::AccountMap;
use crate::plan::{self, Plan};
use crate::rollout::waves::{self, GroupKey, Member, Traits, WaveSpec};
use crate::rollout::{self as engine, Verdict};
use crate::store::Store;
use crate::store::journal::{ChangeStatus, Run};
use crate::store::rollouts::{
    Decision, DecisionKind, MemberMark, NewMember, Rollout, RolloutSettings, RolloutState,
    WaveState,
};
use crate::usage::{self, CallsSince};

/// What `rollout start` and the soak are told, resolved from flags.
#[derive(Debug, Clone)]
pub struct RolloutRequest {
    pub spec: WaveSpec,
    /// `--waves` as typed, kept with the rollout.
    pub waves_text: String,
    pub soak: Duration,
    pub max_rejected: u64,
    pub health_cmd: Option<String>,
}

/// A plan split into waves: plan indexes per wave, and each change's group.
#[derive(Debug, Clone)]
pub struct Split {
    pub waves: Vec<Vec<usize>>,
    pub groups: Vec<GroupKey>,
}

impl Split {
    pub fn group_count(&self) -> usize {
        self.groups.iter().collect::<BTreeSet<_>>().len()
    }
}

/// Splits `plan` into waves, grouping its changes by what its scan saw
/// (AMI, role, Auto Scaling group or owner). A plan without a stored scan
/// makes each instance a group of its own.
pub fn split(store: &Store, plan: &Plan, spec: &WaveSpec) -> Result<Split, OpsError> {
    let mut traits: HashMap<String, Traits> = HashMap::new();
    // A plan whose scan is not in this database groups each instance alone.
    let report = match plan.scan_id.map(|id| store.load_report(id)) {
        Some(Err(crate::store::StoreError::NoScan(_))) | None => None,
        Some(r) => Some(r?),
    };
    if let Some(report) = report {
        for r in report.instances {
            traits.insert(
                r.instance.instance_id.clone(),
                Traits {
                    image_id: r.instance.image_id.clone(),
                    role: r.role_name,
                    asg: r.asg_name,
                    owner: r.owner,
                },
            );
        }
    }
    let groups: Vec<GroupKey> = plan
        .changes
        .iter()
        .map(|c| GroupKey::of(&c.instance_id, traits.get(&c.instance_id)))
        .collect();
    let members: Vec<Member> = groups
        .iter()
        .enumerate()
        .map(|(index, group)| Member {
            index,
            group: group.clone(),
        })
        .collect();
    Ok(Split {
        waves: waves::split(spec, &members),
        groups,
    })
}

/// The plan of one wave: the rollout's plan with only these changes (and
/// its own digest), so the wave's run journals exactly what it sends.
pub fn wave_plan(plan: &Plan, indexes: &[usize]) -> (Plan, String) {
    let mut sub = plan.clone();
    sub.changes = indexes.iter().map(|&i| plan.changes[i].clone()).collect();
    sub.skipped.clear();
    sub.unchanged = 0;
    sub.digest = String::new();
    sub.digest = plan::digest(&sub);
    let json = serde_json::to_string_pretty(&sub).expect("plans serialize");
    (sub, json)
}

/// Records a new rollout, with its open decision to apply wave 1 (whose
/// run is made next, linked to the wave as it is created).
pub fn record(
    store: &mut Store,
    plan_json: &str,
    request: &RolloutRequest,
    plan: &Plan,
    split: &Split,
) -> Result<i64, OpsError> {
    let mut members = Vec::with_capacity(plan.changes.len());
    for (w, wave) in split.waves.iter().enumerate() {
        for &i in wave {
            let c = &plan.changes[i];
            members.push(NewMember {
                plan_index: i,
                wave: w + 1,
                account_id: &c.account_id,
                region: &c.region,
                instance_id: &c.instance_id,
                group: split.groups[i].to_string(),
            });
        }
    }
    Ok(store.create_rollout(
        plan_json,
        &RolloutSettings {
            waves: request.waves_text.clone(),
            soak_secs: request.soak.as_secs() as i64,
            max_rejected: request.max_rejected as i64,
            health_cmd: request.health_cmd.clone(),
        },
        split.waves.len(),
        &members,
    )?)
}

/// The plan indexes of wave `n` still to change (not held back).
pub fn wave_indexes(rollout: &Rollout, n: i64) -> Vec<usize> {
    rollout
        .members
        .iter()
        .filter(|m| m.wave == n && m.mark.is_none())
        .map(|m| m.plan_index as usize)
        .collect()
}

/// The rollout's plan, as it was when the rollout started.
pub fn plan_of(rollout: &Rollout) -> Result<Plan, OpsError> {
    Ok(plan::parse(
        &rollout.plan_json,
        &format!("rollout {}", rollout.id),
    )?)
}

/// A wave's run finished: it soaks from now, and the decision that applied
/// it is done.
pub fn wave_applied(
    store: &mut Store,
    rollout: &Rollout,
    wave: i64,
    decision: i64,
    now: i64,
) -> Result<(), OpsError> {
    store.set_wave_applied(rollout.id, wave, now, now + rollout.settings.soak_secs)?;
    store.close_decision(rollout.id, decision, RolloutState::Soaking, wave)?;
    Ok(())
}

/// One member of a wave as its run left it.
#[derive(Debug, Clone)]
pub struct Landed {
    pub plan_index: i64,
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    /// Epoch seconds the change was last sent (refusals can start then).
    pub changed_at: i64,
}

/// The members of wave `n` whose change landed (applied by its run, not
/// rolled back since).
pub fn landed(rollout: &Rollout, run: &Run, n: i64) -> Vec<Landed> {
    let by_instance: HashMap<&str, &crate::store::journal::ChangeRecord> = run
        .changes
        .iter()
        .map(|c| (c.instance_id.as_str(), c))
        .collect();
    rollout
        .members
        .iter()
        .filter(|m| m.wave == n && m.mark.is_none())
        .filter_map(|m| {
            let c = by_instance.get(m.instance_id.as_str())?;
            if c.status != ChangeStatus::Applied {
                return None;
            }
            let changed_at = c
                .issued_at
                .as_deref()
                .or(c.finished_at.as_deref())
                .and_then(crate::clock::parse_epoch)?;
            Some(Landed {
                plan_index: m.plan_index,
                account_id: m.account_id.clone(),
                region: m.region.clone(),
                instance_id: m.instance_id.clone(),
                changed_at,
            })
        })
        .collect()
}

/// IMDSv1 calls since each landed change: one batched `GetMetricData`
/// per account and region (250 instances a call).
pub async fn measure(
    apis: &AccountMap,
    landed: &[Landed],
    now: i64,
) -> Result<Vec<(i64, CallsSince)>, OpsError> {
    let mut places: BTreeMap<(&str, &str), Vec<&Landed>> = BTreeMap::new();
    for l in landed {
        places
            .entry((l.account_id.as_str(), l.region.as_str()))
            .or_default()
            .push(l);
    }
    let mut out = Vec::with_capacity(landed.len());
    for ((account, region), members) in places {
        let Some(a) = apis.get(account) else {
            continue;
        };
        let since: Vec<(String, i64)> = members
            .iter()
            .map(|m| (m.instance_id.clone(), m.changed_at))
            .collect();
        let calls = usage::calls_since(a.cloudwatch.as_ref(), region, &since, now).await?;
        for m in members {
            out.push((
                m.plan_index,
                calls.get(&m.instance_id).copied().unwrap_or_default(),
            ));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// How long `--health-cmd` may run before it counts as failed (and is killed).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `--health-cmd` through `sh -c` with the wave's instance ids in
/// `IMDSGUARD_INSTANCE_IDS` (comma-separated), `IMDSGUARD_ROLLOUT` and
/// `IMDSGUARD_WAVE`; `Some(why)` when it fails or outlives `timeout`.
pub fn health(
    cmd: &str,
    rollout: i64,
    wave: i64,
    landed: &[Landed],
    timeout: Duration,
) -> Option<String> {
    let ids: Vec<&str> = landed.iter().map(|l| l.instance_id.as_str()).collect();
    // Its stderr goes to a file: a pipe nobody reads could fill and stall it.
    let stderr = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return Some(format!("the health command could not start: {e}")),
    };
    let mut child = match std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("IMDSGUARD_INSTANCE_IDS", ids.join(","))
        .env("IMDSGUARD_ROLLOUT", rollout.to_string())
        .env("IMDSGUARD_WAVE", wave.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr.try_clone().ok()?)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Some(format!("the health command could not start: {e}")),
    };
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Some(format!(
                    "the health command ran longer than {} and was stopped",
                    crate::clock::human_duration(timeout.as_secs())
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Some(format!("the health command could not be waited for: {e}")),
        }
    };
    if status.success() {
        return None;
    }
    let mut text = String::new();
    let mut f = stderr;
    use std::io::{Read, Seek};
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut text));
    let last = text
        .lines()
        .last()
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    Some(format!("the health command failed ({status}){last}"))
}

/// Records what the soak saw on each landed member, and judges the wave.
pub fn judge(
    store: &Store,
    rollout: &Rollout,
    calls: &[(i64, CallsSince)],
    health: Option<String>,
) -> Result<Verdict, OpsError> {
    for (i, c) in calls {
        store.set_member_calls(rollout.id, *i, c.rejected_calls as i64, c.v1_calls as i64)?;
    }
    Ok(engine::judge(
        calls,
        rollout.settings.max_rejected.max(0) as u64,
        health,
    ))
}

/// The instances `run`'s rollbacks put back (their rollback change
/// applied), across every rollback run of it.
pub fn rolled_back(store: &Store, run: i64) -> Result<BTreeSet<String>, OpsError> {
    let mut out = BTreeSet::new();
    for (r, _) in store.list_runs()? {
        if r.parent_run == Some(run) {
            let rb = store.load_run(r.id)?;
            out.extend(
                rb.changes
                    .iter()
                    .filter(|c| c.status == ChangeStatus::Applied)
                    .map(|c| c.instance_id.clone()),
            );
        }
    }
    Ok(out)
}

/// After the offenders of wave `n` were rolled back: marks those whose
/// rollback landed (`back`; the others keep a reason saying it did not),
/// holds back every not-yet-changed member of their groups, and halts.
/// Returns how many were held.
pub fn halt(
    store: &mut Store,
    rollout: &Rollout,
    n: i64,
    decision: i64,
    offenders: &[(i64, u64)],
    back: &BTreeSet<String>,
) -> Result<usize, OpsError> {
    let mut groups = BTreeSet::new();
    for (i, rejected) in offenders {
        let m = &rollout.members[member_at(rollout, *i)];
        groups.insert(m.group.clone());
        let why = format!(
            "{rejected} refused IMDSv1 call(s) after its change (more than --max-rejected {})",
            rollout.settings.max_rejected
        );
        if back.contains(&m.instance_id) {
            store.mark_member(rollout.id, *i, Some(MemberMark::RolledBack), Some(&why))?;
        } else {
            store.mark_member(
                rollout.id,
                *i,
                None,
                Some(&format!(
                    "{why}; its rollback did not land (see `imdsguard runs`): roll it back by hand"
                )),
            )?;
        }
    }
    let mut held = 0;
    for m in &rollout.members {
        if m.wave > n && m.mark.is_none() && groups.contains(&m.group) {
            store.mark_member(
                rollout.id,
                m.plan_index,
                Some(MemberMark::Held),
                Some(&format!(
                    "held back: an instance of its group broke in wave {n}"
                )),
            )?;
            held += 1;
        }
    }
    store.set_wave_state(rollout.id, n, WaveState::Halted)?;
    store.close_decision(rollout.id, decision, RolloutState::Halted, n)?;
    Ok(held)
}

/// The instance ids of `offenders` (plan indexes with their refused calls).
pub fn offender_ids(rollout: &Rollout, offenders: &[(i64, u64)]) -> BTreeSet<String> {
    offenders
        .iter()
        .map(|(i, _)| rollout.members[member_at(rollout, *i)].instance_id.clone())
        .collect()
}

fn member_at(rollout: &Rollout, plan_index: i64) -> usize {
    rollout
        .members
        .iter()
        .position(|m| m.plan_index == plan_index)
        .expect("offenders are members")
}

/// Why a resume decision was taken, with `--skip-group` or without (the
/// reason says which, so a dangling one is finished the same way).
const RESUME_KEEP_HELD: &str = "resumed; held instances stay held (--skip-group)";
const RESUME_RETURN_HELD: &str = "resumed; held instances go back to their waves";

/// A person looked at a halted rollout: it soaks no more and goes on with
/// its next wave; held members go back to their waves unless `skip_group`.
pub fn resume(store: &mut Store, rollout: &Rollout, skip_group: bool) -> Result<(), OpsError> {
    let why = if skip_group {
        RESUME_KEEP_HELD
    } else {
        RESUME_RETURN_HELD
    };
    let d = store.open_decision(rollout.id, rollout.current_wave, DecisionKind::Resume, why)?;
    finish_resume(store, rollout, d, skip_group)
}

/// Finishes a resume decision a process died in: its steps again (each is
/// idempotent), as its reason says.
pub fn finish_open_resume(
    store: &mut Store,
    rollout: &Rollout,
    decision: &Decision,
) -> Result<(), OpsError> {
    let skip_group = decision.reason == RESUME_KEEP_HELD;
    finish_resume(store, rollout, decision.id, skip_group)
}

fn finish_resume(
    store: &mut Store,
    rollout: &Rollout,
    d: i64,
    skip_group: bool,
) -> Result<(), OpsError> {
    if !skip_group {
        // Only members of waves still to come: earlier waves' runs are made.
        for m in &rollout.members {
            if m.mark == Some(MemberMark::Held) && m.wave > rollout.current_wave {
                store.mark_member(rollout.id, m.plan_index, None, None)?;
            }
        }
    }
    let now = crate::clock::now_epoch();
    store.set_wave_applied(rollout.id, rollout.current_wave, now, now)?;
    store.close_decision(rollout.id, d, RolloutState::Soaking, rollout.current_wave)?;
    Ok(())
}

/// After an abort rolled every wave's run back: each member whose change
/// landed is marked rolled back where its rollback landed. Returns the
/// members whose rollback did not (they still have their change).
pub fn mark_aborted(store: &Store, rollout: &Rollout) -> Result<Vec<String>, OpsError> {
    let mut left = Vec::new();
    for w in &rollout.waves {
        let Some(run) = w.run_id else { continue };
        let back = rolled_back(store, run)?;
        let run = store.load_run(run)?;
        for l in landed(rollout, &run, w.number) {
            if back.contains(&l.instance_id) {
                store.mark_member(
                    rollout.id,
                    l.plan_index,
                    Some(MemberMark::RolledBack),
                    Some("rolled back: the rollout was aborted"),
                )?;
            } else {
                left.push(l.instance_id);
            }
        }
    }
    Ok(left)
}

/// What a wave's run left: changes not final yet (an interrupted or
/// unanswered run: the next step resumes it), and changes that ended
/// without landing (failed, or skipped because they changed).
pub fn run_outcome(run: &Run) -> (usize, usize) {
    let open = run.changes.iter().filter(|c| !c.status.is_final()).count();
    let missed = run
        .changes
        .iter()
        .filter(|c| matches!(c.status, ChangeStatus::Failed | ChangeStatus::Skipped))
        .count();
    (open, missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_command_that_hangs_is_stopped() {
        let why = health("sleep 30", 1, 1, &[], Duration::from_millis(300)).unwrap();
        assert!(why.contains("ran longer than"), "{why}");
        let why = health("echo no >&2; exit 4", 1, 1, &[], HEALTH_TIMEOUT).unwrap();
        assert!(
            why.contains("exit status: 4") && why.ends_with(": no"),
            "{why}"
        );
        assert_eq!(health("true", 1, 1, &[], HEALTH_TIMEOUT), None);
    }
}
