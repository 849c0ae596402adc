//! The before/after proof of changes (see `rollout::effect`): the changed
//! instances of a run or a rollout, their metrics from CloudWatch (one
//! batched `GetMetricData` per 250 instances and account-region), the
//! effect computed and kept in the database for the HTML report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::OpsError;
use super::fleet::{Session, accounts};
use crate::aws::AwsProvider;
use crate::rollout::effect::{self, Changed, Effect};
use crate::store::Store;
use crate::store::journal::{ChangeStatus, Run};
use crate::store::rollouts::Rollout;

/// The changes of `run` that landed, with when.
pub fn of_run(run: &Run) -> Vec<Changed> {
    run.changes
        .iter()
        .filter(|c| c.status == ChangeStatus::Applied)
        .filter_map(|c| {
            Some(Changed {
                account_id: c.account_id.clone(),
                region: c.region.clone(),
                instance_id: c.instance_id.clone(),
                changed_at: crate::clock::parse_epoch(c.finished_at.as_deref()?)?,
            })
        })
        .collect()
}

/// The changes of every wave of `rollout` that landed and stayed.
pub fn of_rollout(store: &Store, rollout: &Rollout) -> Result<Vec<Changed>, OpsError> {
    let mut out = Vec::new();
    for w in &rollout.waves {
        let Some(run) = w.run_id else { continue };
        let run = store.load_run(run)?;
        out.extend(
            super::rollout::landed(rollout, &run, w.number)
                .into_iter()
                .map(|l| Changed {
                    account_id: l.account_id,
                    region: l.region,
                    instance_id: l.instance_id,
                    changed_at: l.changed_at,
                }),
        );
    }
    Ok(out)
}

/// Measures the effect of `changed` now and keeps it under `subject`.
pub async fn measure(
    session: &Session,
    provider: &dyn AwsProvider,
    store: &Store,
    subject: &str,
    changed: &[Changed],
) -> Result<Effect, OpsError> {
    let now = crate::clock::now_epoch();
    let window = effect::window(changed, now);
    let ids: BTreeSet<String> = changed.iter().map(|c| c.account_id.clone()).collect();
    let apis = accounts(session, provider, &ids).await?;
    let mut places: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for c in changed {
        places
            .entry((&c.account_id, &c.region))
            .or_default()
            .push(c.instance_id.clone());
    }
    let mut series = HashMap::new();
    for ((account, region), ids) in places {
        let Some(a) = apis.get(account) else { continue };
        series.extend(crate::usage::series(a.cloudwatch.as_ref(), region, &ids, window).await?);
    }
    let effect = effect::compute(changed, &series, window, now);
    store.save_effect(
        subject,
        &serde_json::to_string(&effect).expect("effects serialize"),
    )?;
    Ok(effect)
}
