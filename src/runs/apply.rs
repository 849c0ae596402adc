//! Starting a run from a plan: the checks made before anything is sent
//! (every instance still exists and still has the options the plan saw),
//! the account defaults worth a warning, and the journaled, leased run.

use std::collections::BTreeSet;

use super::lease::{self, LeaseGuard};
use super::observe::{Verdict, compare, found, observe_fleet};
use super::{Fleet, RunError};
use crate::model::Options;
use crate::plan::Plan;
use crate::store::Store;
use crate::store::journal::{NewChange, NewRun, Purpose, RunKind};

/// What EC2 says about a plan's instances now, before anything is sent.
#[derive(Debug, Default)]
pub struct Preflight {
    /// Instances that no longer exist.
    pub missing: Vec<String>,
    /// Instances whose options are neither what the plan saw nor its target.
    pub changed: Vec<(String, Options)>,
    /// Instances already at their target (nothing will be sent to them).
    pub at_target: Vec<String>,
    /// Changes that will be sent.
    pub to_send: usize,
}

/// Compares every planned instance with what EC2 says now (batched).
pub async fn preflight(fleet: &Fleet<'_>, plan: &Plan) -> Result<Preflight, RunError> {
    let seen = observe_fleet(
        fleet,
        plan.changes.iter().map(|c| {
            (
                c.account_id.as_str(),
                c.region.as_str(),
                c.instance_id.as_str(),
            )
        }),
    )
    .await;
    let mut out = Preflight::default();
    for c in &plan.changes {
        let observed = found(&seen, &c.account_id, &c.region, &c.instance_id)?;
        match compare(&c.current, &c.target, &observed) {
            Verdict::AtPrevious => out.to_send += 1,
            Verdict::AtTarget => out.at_target.push(c.instance_id.clone()),
            Verdict::Changed(now) => out.changed.push((c.instance_id.clone(), now)),
            Verdict::Unreadable => out.changed.push((c.instance_id.clone(), c.current)),
            Verdict::Gone => out.missing.push(c.instance_id.clone()),
        }
    }
    Ok(out)
}

/// The (account, region) places among `places` whose account default has
/// `HttpTokensEnforced=enabled` (EC2 then refuses any return to v1). The
/// API is missing in older partitions and emulators: those places are
/// skipped, since this only feeds a warning.
pub async fn enforced_defaults(
    fleet: &Fleet<'_>,
    places: BTreeSet<(&str, &str)>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (account, region) in places {
        let Some(ec2) = fleet.get(account) else {
            continue;
        };
        match ec2.metadata_defaults(region).await {
            Ok(d) if d.http_tokens_enforced == Some(crate::model::Toggle::Enabled) => {
                out.push((account.to_owned(), region.to_owned()));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("{account} {region}: {e}"),
        }
    }
    out
}

/// Journals a run for `plan` (every change `planned`) with this process's
/// lease on it.
pub fn start(
    store: &mut Store,
    plan: &Plan,
    plan_json: &str,
    log_path: Option<&str>,
    wave: Option<(i64, i64)>,
) -> Result<(i64, LeaseGuard), RunError> {
    let changes: Vec<NewChange> = plan
        .changes
        .iter()
        .map(|c| NewChange {
            account_id: c.account_id.clone(),
            region: c.region.clone(),
            instance_id: c.instance_id.clone(),
            previous: c.current,
            target: c.target,
        })
        .collect();
    let me = lease::me(Purpose::Apply);
    let created_at = crate::clock::now();
    let run = store.create_run(
        &NewRun {
            kind: RunKind::Apply,
            action: plan.action,
            parent_run: None,
            plan: Some((&plan.digest, plan_json)),
            created_at: &created_at,
            log_path,
            covers_all: None,
            changes: &changes,
            wave,
        },
        &me,
    )?;
    Ok((run, LeaseGuard::start(store, vec![run], me)))
}
