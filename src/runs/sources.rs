//! Driving a run that changes sources of new instances: each change's steps
//! in order, the intent journaled before every call and what AWS made after
//! it. Changes go one at a time (they are few: templates, groups, regions;
//! and their APIs' limits are low). A step whose answer was never journaled
//! (a crash, Ctrl-C) is looked for first on resume — a version or template
//! we made carries our run and change in its description or name — and is
//! sent again only when AWS shows it did not land.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::aws::{
    AccountApis, AwsError, AwsErrorKind, DefaultsTarget, GroupLaunchSpec, GroupTarget,
    MetadataDefaults, TemplateTarget,
};
use crate::model::HttpTokens;
use crate::sources::{ChangeResult, SourceChange};
use crate::store::Store;
use crate::store::journal::{ChangeStatus, RunKind, RunStatus};
use crate::store::source_runs::{SourceRecord, SourceRun};

use super::RunError;

/// How a source run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub applied: usize,
    pub failed: usize,
    /// Found landed on resume instead of being sent again.
    pub found_landed: usize,
    pub interrupted: bool,
}

/// The marker a version or template we make carries, so a resumed run can
/// recognise it.
pub fn marker(run: i64, seq: i64) -> String {
    format!("imdsguard run {run} change {seq}")
}

/// An idempotency token unique to this run's change and step.
fn client_token(run: i64, seq: i64, created_at: &str) -> String {
    let stamp: String = created_at.chars().filter(char::is_ascii_digit).collect();
    format!("imdsguard-{run}-{seq}-{stamp}")
}

/// Drives every change of `run` not yet applied. `apis` has every account
/// the run touches; `interrupt` is Ctrl-C.
pub async fn drive(
    store: &Store,
    run: i64,
    apis: &BTreeMap<String, &AccountApis>,
    interrupt: &AtomicBool,
) -> Result<Outcome, RunError> {
    let loaded = store.load_source_run(run)?;
    let mut outcome = Outcome::default();
    for rec in &loaded.changes {
        if rec.status == ChangeStatus::Applied || rec.status == ChangeStatus::Skipped {
            continue;
        }
        if interrupt.load(Ordering::SeqCst) {
            outcome.interrupted = true;
            break;
        }
        let Some(account) = apis.get(&rec.account_id) else {
            return Err(RunError::NoAccount(rec.account_id.clone()));
        };
        match one(store, &loaded, rec, account, interrupt, &mut outcome).await? {
            Step::Done => outcome.applied += 1,
            Step::Failed => outcome.failed += 1,
            Step::Stopped => {
                outcome.interrupted = true;
                break;
            }
        }
    }
    let status = if outcome.interrupted {
        RunStatus::Interrupted
    } else if outcome.failed > 0 {
        RunStatus::Incomplete
    } else {
        RunStatus::Done
    };
    let now = crate::clock::now();
    store.set_run_status(run, status, (!outcome.interrupted).then_some(now.as_str()))?;
    if let (RunKind::Rollback, Some(parent)) = (loaded.kind, loaded.parent_run)
        && !outcome.interrupted
    {
        let all = outcome.failed == 0;
        let parent_status = if all {
            RunStatus::RolledBack
        } else {
            RunStatus::PartlyRolledBack
        };
        store.mark_rolled_back(parent, parent_status, run)?;
    }
    Ok(outcome)
}

enum Step {
    Done,
    Failed,
    Stopped,
}

async fn one(
    store: &Store,
    run: &SourceRun,
    rec: &SourceRecord,
    apis: &AccountApis,
    interrupt: &AtomicBool,
    outcome: &mut Outcome,
) -> Result<Step, RunError> {
    let steps = rec.change.steps();
    let mut done = rec.steps_done;
    let mut result = rec.result.clone();
    let region = rec.region.as_str();
    if rec.in_flight {
        match landed(apis, region, run.id, rec, done, &result).await {
            Ok(Some(r)) => {
                result = r;
                done += 1;
                outcome.found_landed += 1;
                let now = crate::clock::now();
                store.source_step_done(run.id, rec.seq, done, done == steps, &result, &now)?;
            }
            Ok(None) => {}
            Err(e) => {
                let now = crate::clock::now();
                store.source_change_ended(
                    run.id,
                    rec.seq,
                    ChangeStatus::Failed,
                    e.code.as_deref(),
                    &format!("could not check whether the last call landed: {e}"),
                    &now,
                )?;
                return Ok(Step::Failed);
            }
        }
    }
    while done < steps {
        if interrupt.load(Ordering::SeqCst) {
            return Ok(Step::Stopped);
        }
        store.source_step_issued(run.id, rec.seq, &crate::clock::now())?;
        match send(apis, region, run, rec, done, &result).await {
            Ok(r) => {
                result = r;
                done += 1;
                let now = crate::clock::now();
                store.source_step_done(run.id, rec.seq, done, done == steps, &result, &now)?;
            }
            Err(e) => {
                let now = crate::clock::now();
                store.source_change_ended(
                    run.id,
                    rec.seq,
                    ChangeStatus::Failed,
                    e.code.as_deref(),
                    &e.to_string(),
                    &now,
                )?;
                return Ok(Step::Failed);
            }
        }
    }
    Ok(Step::Done)
}

fn described(target: &TemplateTarget, run: i64, seq: i64) -> TemplateTarget {
    TemplateTarget {
        description: format!("{} ({})", target.description, marker(run, seq)),
        ..target.clone()
    }
}

fn made(result: &ChangeResult, what: &str) -> Result<i64, AwsError> {
    result.version.ok_or_else(|| {
        AwsError::local(
            crate::aws::Operation::CreateLaunchTemplateVersion,
            AwsErrorKind::Other,
            format!("the journal lost the {what} this change made"),
        )
    })
}

/// Sends step `step` of a change; returns what it made.
async fn send(
    apis: &AccountApis,
    region: &str,
    run: &SourceRun,
    rec: &SourceRecord,
    step: i64,
    result: &ChangeResult,
) -> Result<ChangeResult, AwsError> {
    let token = client_token(run.id, rec.seq, &run.created_at);
    let mut out = result.clone();
    match (&rec.change, step) {
        (
            SourceChange::NewVersion {
                template_id,
                source_version,
                target,
                ..
            }
            | SourceChange::PinGroup {
                template_id,
                source_version,
                target,
                ..
            },
            0,
        ) => {
            let version = apis
                .ec2
                .create_template_version(
                    region,
                    template_id,
                    *source_version,
                    &described(target, run.id, rec.seq),
                    &token,
                )
                .await?;
            out.version = Some(version);
        }
        (SourceChange::NewVersion { template_id, .. }, 1) => {
            apis.ec2
                .set_default_version(region, template_id, made(result, "version")?)
                .await?;
        }
        (
            change @ (SourceChange::PinGroup { group, .. }
            | SourceChange::ConvertGroup { group, .. }),
            1,
        ) => {
            let target = change.group_target(result).ok_or_else(|| {
                AwsError::local(
                    crate::aws::Operation::UpdateAutoScalingGroup,
                    AwsErrorKind::Other,
                    "the journal lost the version or template this change made",
                )
            })?;
            apis.autoscaling
                .update_group(region, group, &target)
                .await?;
        }
        (
            SourceChange::ConvertGroup {
                configuration,
                template_name,
                hop_limit,
                ..
            },
            0,
        ) => {
            let data = apis
                .autoscaling
                .configuration_data(region, configuration, HttpTokens::Required, *hop_limit)
                .await?;
            out.template = Some(
                apis.ec2
                    .create_template(region, template_name, data, &token)
                    .await?,
            );
        }
        (SourceChange::SetDefaults { target, .. }, 0) => {
            apis.ec2.modify_metadata_defaults(region, target).await?;
        }
        (
            SourceChange::RestoreDefaultVersion {
                template_id,
                version,
            },
            0,
        ) => {
            apis.ec2
                .set_default_version(region, template_id, *version)
                .await?;
        }
        (SourceChange::RestoreGroup { group, target }, 0) => {
            apis.autoscaling.update_group(region, group, target).await?;
        }
        (change, step) => {
            return Err(AwsError::local(
                crate::aws::Operation::Credentials,
                AwsErrorKind::Other,
                format!("{} has no step {step}", change.describe()),
            ));
        }
    }
    Ok(out)
}

/// Whether step `step`, sent but never answered in the journal, landed:
/// what it made if so, `None` if AWS shows it did not (so it is sent again).
async fn landed(
    apis: &AccountApis,
    region: &str,
    run: i64,
    rec: &SourceRecord,
    step: i64,
    result: &ChangeResult,
) -> Result<Option<ChangeResult>, AwsError> {
    let mut out = result.clone();
    let mark = marker(run, rec.seq);
    match (&rec.change, step) {
        (
            SourceChange::NewVersion {
                template_id,
                latest_version,
                ..
            }
            | SourceChange::PinGroup {
                template_id,
                latest_version,
                ..
            },
            0,
        ) => {
            let since = apis
                .ec2
                .template_versions_since(region, template_id, latest_version + 1)
                .await?;
            let ours = since
                .iter()
                .find(|v| v.description.as_deref().is_some_and(|d| d.contains(&mark)));
            Ok(ours.map(|v| {
                out.version = Some(v.version);
                out
            }))
        }
        (SourceChange::NewVersion { template_id, .. }, 1) => {
            let version = made(result, "version")?;
            let found = apis
                .ec2
                .template_versions_of(region, template_id, &[version])
                .await?;
            Ok(found.iter().any(|v| v.is_default).then_some(out))
        }
        (
            SourceChange::RestoreDefaultVersion {
                template_id,
                version,
            },
            0,
        ) => {
            let found = apis
                .ec2
                .template_versions_of(region, template_id, &[*version])
                .await?;
            Ok(found.iter().any(|v| v.is_default).then_some(out))
        }
        (SourceChange::ConvertGroup { template_name, .. }, 0) => {
            let listed = crate::aws::all_pages(|token| async move {
                let page = apis.ec2.template_versions(region, token).await?;
                Ok((page.versions, page.next_token))
            })
            .await?;
            Ok(listed
                .iter()
                .find(|v| v.template_name.as_deref() == Some(template_name.as_str()))
                .map(|v| {
                    out.template = Some(crate::aws::CreatedTemplate {
                        template_id: v.template_id.clone(),
                        version: 1,
                    });
                    out
                }))
        }
        (
            change @ (SourceChange::PinGroup { group, .. }
            | SourceChange::ConvertGroup { group, .. }),
            1,
        ) => match change.group_target(result) {
            Some(want) => Ok(group_is(apis, region, group, &want).await?.then_some(out)),
            None => Ok(None),
        },
        (SourceChange::RestoreGroup { group, target }, 0) => {
            Ok(group_is(apis, region, group, target).await?.then_some(out))
        }
        (SourceChange::SetDefaults { target, .. }, 0) => {
            let now = apis.ec2.metadata_defaults(region).await?;
            Ok(defaults_are(&now, target).then_some(out))
        }
        _ => Ok(None),
    }
}

/// The changes that undo a source run: the undo of every change that
/// landed, or that a crash may have landed (its undo restores what was
/// there, which is harmless if it did not), newest first.
pub fn undo(parent: &SourceRun) -> Vec<crate::store::source_runs::NewSourceChange> {
    parent
        .changes
        .iter()
        .rev()
        .filter(|c| c.steps_done > 0 || c.in_flight)
        .filter_map(|c| {
            c.change
                .undo(&c.result)
                .map(|change| crate::store::source_runs::NewSourceChange {
                    account_id: c.account_id.clone(),
                    region: c.region.clone(),
                    change,
                })
        })
        .collect()
}

/// Whether `group` launches from `want` now (one group listing).
async fn group_is(
    apis: &AccountApis,
    region: &str,
    group: &str,
    want: &GroupTarget,
) -> Result<bool, AwsError> {
    let groups = crate::aws::all_pages(|token| async move {
        let page = apis.autoscaling.describe_groups(region, token).await?;
        Ok((page.groups, page.next_token))
    })
    .await?;
    Ok(groups.iter().any(|g| {
        g.name == group
            && match (&g.launch, want) {
                (
                    GroupLaunchSpec::Template { template },
                    GroupTarget::Template {
                        template_id,
                        version,
                    },
                ) => {
                    template.template_id.as_deref() == Some(template_id.as_str())
                        && template.version.as_deref() == Some(version.as_str())
                }
                (
                    GroupLaunchSpec::Configuration { name },
                    GroupTarget::Configuration { name: want },
                ) => name == want,
                _ => false,
            }
    }))
}

/// Whether a region's defaults are `target` (what a rollback restores).
pub fn defaults_are(now: &MetadataDefaults, target: &DefaultsTarget) -> bool {
    let enforced_ok = match target.http_tokens_enforced {
        None => true,
        Some(t) => {
            now.http_tokens_enforced
                .unwrap_or(crate::model::Toggle::Disabled)
                == t
        }
    };
    now.http_tokens == target.http_tokens
        && now.hop_limit.filter(|h| *h > 0) == target.hop_limit
        && now.http_endpoint == target.http_endpoint
        && now.instance_metadata_tags == target.instance_metadata_tags
        && enforced_ok
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicBool;

    use super::{drive, marker};
    use crate::aws::fake::FakeAccount;
    use crate::aws::{DefaultsTarget, TemplateTarget, TemplateVersion};
    use crate::model::{HttpTokens, Toggle};
    use crate::sources::SourceChange;
    use crate::store::Store;
    use crate::store::journal::{ChangeStatus, Holder, Purpose, RunKind};
    use crate::store::source_runs::NewSourceChange;

    const REGION: &str = "eu-west-1";

    fn holder() -> Holder {
        Holder {
            pid: 1,
            host: "h".into(),
            process_start: None,
            purpose: Purpose::Apply,
        }
    }

    fn new_version() -> SourceChange {
        SourceChange::NewVersion {
            template_id: "lt-a".into(),
            source_version: 3,
            latest_version: 3,
            previous_default: 3,
            make_default: true,
            target: TemplateTarget {
                http_tokens: HttpTokens::Required,
                hop_limit: None,
                description: "fix".into(),
            },
        }
    }

    fn journal(store: &mut Store, change: SourceChange) -> i64 {
        let change = NewSourceChange {
            account_id: "111122223333".into(),
            region: REGION.into(),
            change,
        };
        store
            .create_source_run(
                RunKind::Apply,
                None,
                "2026-12-01T00:00:00Z",
                &[change],
                &holder(),
            )
            .unwrap()
    }

    async fn go(store: &Store, run: i64, account: FakeAccount) -> (super::Outcome, Vec<String>) {
        let log = account.ec2.launch_log.clone();
        let apis = account.into_apis();
        let map = BTreeMap::from([("111122223333".to_owned(), &apis)]);
        let outcome = drive(store, run, &map, &AtomicBool::new(false))
            .await
            .unwrap();
        let log = log.lock().unwrap().clone();
        (outcome, log)
    }

    #[tokio::test]
    async fn a_template_fix_runs_its_steps_and_journals_what_it_made() {
        let mut store = Store::in_memory();
        let run = journal(&mut store, new_version());
        let (outcome, log) = go(&store, run, FakeAccount::new(&[REGION])).await;
        assert_eq!((outcome.applied, outcome.failed), (1, 0));
        assert_eq!(
            log,
            vec![
                format!("CreateLaunchTemplateVersion {REGION} lt-a from 3"),
                format!("ModifyLaunchTemplate {REGION} lt-a 103"),
            ]
        );
        let rec = &store.load_source_run(run).unwrap().changes[0];
        assert_eq!(
            (rec.status, rec.steps_done, rec.result.version),
            (ChangeStatus::Applied, 2, Some(103))
        );
    }

    #[tokio::test]
    async fn an_in_flight_create_that_landed_is_found_not_sent_again() {
        let mut store = Store::in_memory();
        let run = journal(&mut store, new_version());
        store.source_step_issued(run, 0, "t").unwrap(); // then the process died
        let mut account = FakeAccount::new(&[REGION]);
        account.ec2.templates.insert(
            REGION.into(),
            vec![TemplateVersion {
                template_id: "lt-a".into(),
                template_name: None,
                version: 4,
                is_default: false,
                http_tokens: Some(HttpTokens::Required),
                http_endpoint: None,
                hop_limit: None,
                image_id: None,
                description: Some(format!("fix ({})", marker(run, 0))),
            }],
        );
        let (outcome, log) = go(&store, run, account).await;
        assert_eq!((outcome.applied, outcome.found_landed), (1, 1));
        assert!(
            !log.iter()
                .any(|l| l.starts_with("CreateLaunchTemplateVersion")),
            "{log:?}"
        );
        assert!(log.contains(&format!("ModifyLaunchTemplate {REGION} lt-a 4")));
    }

    #[tokio::test]
    async fn an_in_flight_create_that_did_not_land_is_sent_once() {
        let mut store = Store::in_memory();
        let run = journal(&mut store, new_version());
        store.source_step_issued(run, 0, "t").unwrap();
        let (outcome, log) = go(&store, run, FakeAccount::new(&[REGION])).await;
        assert_eq!((outcome.applied, outcome.found_landed), (1, 0));
        let creates = log
            .iter()
            .filter(|l| l.starts_with("CreateLaunchTemplateVersion"))
            .count();
        assert_eq!(creates, 1);
    }

    #[tokio::test]
    async fn an_in_flight_defaults_change_already_in_place_is_not_sent_again() {
        let mut store = Store::in_memory();
        let target = DefaultsTarget {
            http_tokens: Some(HttpTokens::Required),
            http_tokens_enforced: Some(Toggle::Disabled),
            ..Default::default()
        };
        let run = journal(
            &mut store,
            SourceChange::SetDefaults {
                previous: DefaultsTarget::default(),
                target,
            },
        );
        store.source_step_issued(run, 0, "t").unwrap();
        let mut account = FakeAccount::new(&[REGION]);
        account.ec2.defaults.insert(
            REGION.into(),
            crate::aws::MetadataDefaults {
                http_tokens: Some(HttpTokens::Required),
                ..Default::default()
            },
        );
        let (outcome, log) = go(&store, run, account).await;
        assert_eq!(outcome.found_landed, 1);
        assert!(
            !log.iter()
                .any(|l| l.starts_with("ModifyInstanceMetadataDefaults"))
        );
    }

    #[test]
    fn a_rollback_undoes_what_landed_newest_first_and_nothing_else() {
        let mut store = Store::in_memory();
        let defaults = SourceChange::SetDefaults {
            previous: DefaultsTarget::default(),
            target: DefaultsTarget {
                http_tokens: Some(HttpTokens::Required),
                ..Default::default()
            },
        };
        let changes: Vec<NewSourceChange> = [new_version(), defaults, new_version()]
            .into_iter()
            .map(|change| NewSourceChange {
                account_id: "1".into(),
                region: REGION.into(),
                change,
            })
            .collect();
        let run = store
            .create_source_run(RunKind::Apply, None, "t", &changes, &holder())
            .unwrap();
        let made = crate::sources::ChangeResult {
            version: Some(9),
            template: None,
        };
        store.source_step_done(run, 0, 2, true, &made, "t").unwrap();
        store
            .source_step_done(run, 1, 1, true, &Default::default(), "t")
            .unwrap();
        // Change 2 was never sent.
        let undo = super::undo(&store.load_source_run(run).unwrap());
        assert_eq!(undo.len(), 2);
        assert!(matches!(
            &undo[0].change,
            SourceChange::SetDefaults { target, .. } if target.http_tokens.is_none()
        ));
        assert!(matches!(
            &undo[1].change,
            SourceChange::RestoreDefaultVersion { version: 3, .. }
        ));
    }
}
