//! Fixing the sources of new instances: `templates fix`, `asg fix`,
//! `defaults set`, and rolling them back. Each reads the sources as they
//! are now (never a stale scan), decides the changes, and leaves
//! confirmation to the command; `start` journals the run with this
//! process's lease and `execute` drives it (`runs::sources`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::OpsError;
use super::fleet::{AccountMap, Session, Target};
use crate::aws::{DefaultsTarget, GroupTarget, MetadataDefaults, TemplateTarget};
use crate::model::{HttpTokens, Toggle};
use crate::plan::HopLimit;
use crate::report::{Failure, ScanReport};
use crate::runs::RunError;
use crate::runs::lease::{LeaseGuard, me};
use crate::runs::sources::Outcome;
use crate::sources::{GroupLaunch, GroupSource, SourceChange, Sources, TemplateSource, VersionPin};
use crate::store::Store;
use crate::store::journal::{Purpose, RunKind};
use crate::store::source_runs::{NewSourceChange, SourceRun};

/// What to fix, free of CLI types.
#[derive(Debug, Clone)]
pub enum FixRequest {
    Templates {
        /// Empty: every template whose default or latest allows v1.
        ids: Vec<String>,
        hop_limit: HopLimit,
        set_default: bool,
    },
    Groups {
        /// Empty: every group whose next launch allows v1.
        names: Vec<String>,
        hop_limit: HopLimit,
    },
    Defaults {
        hop_limit: Option<i32>,
        enforce: bool,
    },
}

/// A change not proposed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Left {
    pub account_id: String,
    pub region: String,
    pub resource: String,
    pub why: String,
}

/// What enforcing IMDSv2 at the account level would block in a region,
/// from the latest stored scan and the sources read now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnforceImpact {
    pub account_id: String,
    pub region: String,
    /// Instances with IMDSv1 calls in the latest scan: after enforcement
    /// they can never be rolled back to v1.
    pub instances_in_use: Vec<String>,
    /// Templates and groups that set HttpTokens=optional themselves: their
    /// launches would be refused.
    pub launch_paths_refused: Vec<String>,
}

/// The changes a fix would make, and what it would not touch.
#[derive(Debug, Default)]
pub struct Proposal {
    pub changes: Vec<NewSourceChange>,
    pub left: Vec<Left>,
    /// Per changed group: instances that still allow v1 and the command that
    /// would replace them (never run by imdsguard).
    pub refreshes: Vec<Refresh>,
    pub impact: Vec<EnforceImpact>,
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
}

/// An instance refresh imdsguard does not start, and why one is wanted.
#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    pub account_id: String,
    pub region: String,
    pub group: String,
    pub instances_allowing_v1: u64,
}

/// Evidence of containers behind a template or group, from the latest scan:
/// its instances that are container hosts.
fn container_evidence(
    scan: Option<&ScanReport>,
    template: Option<&str>,
    group: Option<&str>,
) -> bool {
    scan.is_some_and(|s| {
        s.instances.iter().any(|r| {
            r.container_host
                && (template.is_some_and(|t| {
                    r.launch_template
                        .as_deref()
                        .is_some_and(|lt| lt.starts_with(t))
                }) || group.is_some_and(|g| r.asg_name.as_deref() == Some(g)))
        })
    })
}

/// The hop limit a fixed version gets: `None` keeps the source's.
fn hop(choice: HopLimit, containers: bool, current: Option<i32>) -> Option<i32> {
    match choice {
        HopLimit::Keep => None,
        HopLimit::Set(n) => Some(n),
        HopLimit::Auto if containers && current.unwrap_or(1) < 2 => Some(2),
        HopLimit::Auto => None,
    }
}

fn template_target(hop_limit: Option<i32>) -> TemplateTarget {
    TemplateTarget {
        http_tokens: HttpTokens::Required,
        hop_limit,
        description: "imdsguard: IMDSv2 required".into(),
    }
}

/// A launch template name for a group's converted configuration: the
/// group's name reduced to the characters EC2 allows, and a hash of the
/// whole name so two groups never share one.
pub fn converted_name(group: &str) -> String {
    let safe: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "().-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let digest = Sha256::digest(group.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("imdsguard-{safe}-{hash}")
}

/// Reads the sources now and decides the changes `request` makes. `scan`
/// is the latest stored scan, for `--hop-limit auto` and the impact of
/// `--enforce`.
pub async fn propose(
    session: &Session,
    targets: &[Target],
    scan: Option<&ScanReport>,
    request: &FixRequest,
) -> Result<Proposal, OpsError> {
    let read = super::inventory::read_sources(session, targets).await?;
    let sources = read.rows.into_iter().next().unwrap_or_default();
    let mut p = Proposal {
        failures: read.failures,
        warnings: read.warnings,
        ..Default::default()
    };
    match request {
        FixRequest::Templates {
            ids,
            hop_limit,
            set_default,
        } => templates(&mut p, &sources, scan, ids, *hop_limit, *set_default),
        FixRequest::Groups { names, hop_limit } => {
            groups(&mut p, &sources, scan, names, *hop_limit)
        }
        FixRequest::Defaults { hop_limit, enforce } => {
            defaults(&mut p, &sources, scan, *hop_limit, *enforce)
        }
    }
    Ok(p)
}

fn wanted<'a>(all: impl Iterator<Item = &'a str>, named: &[String]) -> BTreeSet<String> {
    let seen: BTreeSet<String> = all.map(str::to_owned).collect();
    named
        .iter()
        .filter(|n| !seen.contains(*n))
        .cloned()
        .collect()
}

fn templates(
    p: &mut Proposal,
    s: &Sources,
    scan: Option<&ScanReport>,
    ids: &[String],
    choice: HopLimit,
    set_default: bool,
) {
    for missing in wanted(s.templates.iter().map(|t| t.template_id.as_str()), ids) {
        p.warnings.push(format!(
            "launch template {missing} not found in the selected regions"
        ));
    }
    for t in &s.templates {
        if !ids.is_empty() && !ids.contains(&t.template_id) {
            continue;
        }
        if !t.allows_v1() {
            if !ids.is_empty() {
                p.left.push(left(
                    t,
                    "its default and latest versions already require IMDSv2",
                ));
            }
            continue;
        }
        // Fix the default if it allows v1 (and make the fix the default);
        // else the latest, which is what `$Latest` groups launch.
        let from_default = t.default_next.allows_v1();
        let source_version = if from_default {
            t.default_version
        } else {
            t.latest_version
        };
        let containers = container_evidence(scan, Some(&t.template_id), None);
        p.changes.push(NewSourceChange {
            account_id: t.account_id.clone(),
            region: t.region.clone(),
            change: SourceChange::NewVersion {
                template_id: t.template_id.clone(),
                source_version,
                latest_version: t.latest_version,
                previous_default: t.default_version,
                make_default: from_default && set_default,
                target: template_target(hop(choice, containers, t.default_next.hop_limit.into())),
            },
        });
    }
}

fn left(t: &TemplateSource, why: &str) -> Left {
    Left {
        account_id: t.account_id.clone(),
        region: t.region.clone(),
        resource: t.template_id.clone(),
        why: why.into(),
    }
}

fn group_left(g: &GroupSource, why: String) -> Left {
    Left {
        account_id: g.account_id.clone(),
        region: g.region.clone(),
        resource: g.name.clone(),
        why,
    }
}

fn groups(
    p: &mut Proposal,
    s: &Sources,
    scan: Option<&ScanReport>,
    names: &[String],
    choice: HopLimit,
) {
    for missing in wanted(s.groups.iter().map(|g| g.name.as_str()), names) {
        p.warnings.push(format!(
            "Auto Scaling group {missing} not found in the selected regions"
        ));
    }
    let latest: BTreeMap<(&str, &str, &str), i64> = s
        .templates
        .iter()
        .map(|t| {
            (
                (
                    t.account_id.as_str(),
                    t.region.as_str(),
                    t.template_id.as_str(),
                ),
                t.latest_version,
            )
        })
        .collect();
    for g in &s.groups {
        if !names.is_empty() && !names.contains(&g.name) {
            continue;
        }
        if !g.allows_v1() {
            if !names.is_empty() {
                let why = match &g.next {
                    Some(_) => "its next launch already requires IMDSv2".to_owned(),
                    None => "its launch template or configuration could not be read".to_owned(),
                };
                p.left.push(group_left(g, why));
            }
            continue;
        }
        let containers = container_evidence(scan, None, Some(&g.name));
        let current_hop = g.next.as_ref().map(|n| n.hop_limit);
        let hop_limit = hop(choice, containers, current_hop);
        let change = match &g.launch {
            GroupLaunch::Template {
                mixed_overrides: Some(_),
                template_id,
                ..
            } => {
                p.left.push(group_left(
                    g,
                    format!(
                        "a mixed instances policy: fix its launch templates (imdsguard templates fix --template {template_id})"
                    ),
                ));
                continue;
            }
            GroupLaunch::Template {
                template_id,
                pin: VersionPin::Fixed(n),
                ..
            } => SourceChange::PinGroup {
                group: g.name.clone(),
                template_id: template_id.clone(),
                source_version: *n,
                latest_version: latest
                    .get(&(
                        g.account_id.as_str(),
                        g.region.as_str(),
                        template_id.as_str(),
                    ))
                    .copied()
                    .unwrap_or(*n),
                previous: GroupTarget::Template {
                    template_id: template_id.clone(),
                    version: n.to_string(),
                },
                target: template_target(hop_limit),
            },
            GroupLaunch::Template {
                template_id, pin, ..
            } => {
                p.left.push(group_left(
                    g,
                    format!(
                        "follows {} of {template_id}: fix the template (imdsguard templates fix --template {template_id})",
                        pin.as_api()
                    ),
                ));
                continue;
            }
            GroupLaunch::Configuration { name } => SourceChange::ConvertGroup {
                group: g.name.clone(),
                configuration: name.clone(),
                template_name: converted_name(&g.name),
                hop_limit,
                previous: GroupTarget::Configuration { name: name.clone() },
            },
            GroupLaunch::Unknown { detail } => {
                p.left.push(group_left(g, detail.clone()));
                continue;
            }
        };
        // Its instances that allow v1, as the latest scan saw them; without
        // a scan, every instance it launched from what allowed v1.
        let allowing = match scan {
            Some(scan) => scan
                .instances
                .iter()
                .filter(|r| {
                    r.account_id == g.account_id
                        && r.region == g.region
                        && r.asg_name.as_deref() == Some(g.name.as_str())
                        && r.instance.metadata.allows_v1()
                })
                .count() as u64,
            None => g.instances,
        };
        if allowing > 0 {
            p.refreshes.push(Refresh {
                account_id: g.account_id.clone(),
                region: g.region.clone(),
                group: g.name.clone(),
                instances_allowing_v1: allowing,
            });
        }
        p.changes.push(NewSourceChange {
            account_id: g.account_id.clone(),
            region: g.region.clone(),
            change,
        });
    }
}

fn defaults(
    p: &mut Proposal,
    s: &Sources,
    scan: Option<&ScanReport>,
    hop_limit: Option<i32>,
    enforce: bool,
) {
    for d in &s.defaults {
        let now: &MetadataDefaults = &d.defaults;
        if now.managed_by == Some(crate::aws::ManagedBy::DeclarativePolicy) {
            p.left.push(Left {
                account_id: d.account_id.clone(),
                region: d.region.clone(),
                resource: "account default".into(),
                why: "managed by an Organizations declarative policy: change the policy \
                      (imdsguard policy declarative), not the account"
                    .into(),
            });
            continue;
        }
        let previous = DefaultsTarget::restoring(now);
        let target = DefaultsTarget {
            http_tokens: Some(HttpTokens::Required),
            hop_limit: hop_limit.or(previous.hop_limit),
            http_endpoint: previous.http_endpoint,
            instance_metadata_tags: previous.instance_metadata_tags,
            http_tokens_enforced: if enforce {
                Some(Toggle::Enabled)
            } else {
                previous.http_tokens_enforced
            },
        };
        if target == previous {
            continue;
        }
        if enforce && previous.http_tokens_enforced != Some(Toggle::Enabled) {
            p.impact
                .push(enforce_impact(&d.account_id, &d.region, s, scan));
        }
        p.changes.push(NewSourceChange {
            account_id: d.account_id.clone(),
            region: d.region.clone(),
            change: SourceChange::SetDefaults { previous, target },
        });
    }
}

fn enforce_impact(
    account: &str,
    region: &str,
    s: &Sources,
    scan: Option<&ScanReport>,
) -> EnforceImpact {
    let here = |a: &str, r: &str| a == account && r == region;
    let instances_in_use = scan
        .map(|scan| {
            scan.instances
                .iter()
                .filter(|r| {
                    here(&r.account_id, &r.region)
                        && r.readiness == crate::readiness::Readiness::InUse
                })
                .map(|r| r.instance.instance_id.clone())
                .collect()
        })
        .unwrap_or_default();
    // Paths that set optional themselves: with enforcement their launches fail.
    let sets_optional = |e: &crate::launch::Effective| {
        e.decided_by == crate::launch::Rung::Launch && e.http_tokens == HttpTokens::Optional
    };
    let mut launch_paths_refused: Vec<String> = s
        .templates
        .iter()
        .filter(|t| here(&t.account_id, &t.region))
        .filter(|t| sets_optional(&t.default_next) || sets_optional(&t.latest_next))
        .map(|t| format!("launch template {}", t.template_id))
        .collect();
    launch_paths_refused.extend(
        s.groups
            .iter()
            .filter(|g| here(&g.account_id, &g.region))
            .filter(|g| g.next.as_ref().is_some_and(sets_optional))
            .map(|g| format!("Auto Scaling group {}", g.name)),
    );
    EnforceImpact {
        account_id: account.to_owned(),
        region: region.to_owned(),
        instances_in_use,
        launch_paths_refused,
    }
}

/// Journals the proposal's changes as a run held by this process.
pub fn start(
    store: &mut Store,
    changes: &[NewSourceChange],
) -> Result<(i64, LeaseGuard), OpsError> {
    let holder = me(Purpose::Apply);
    let run =
        store.create_source_run(RunKind::Apply, None, &crate::clock::now(), changes, &holder)?;
    Ok((run, LeaseGuard::start(store, vec![run], holder)))
}

/// Drives a journaled source run with the accounts' API sets.
pub async fn execute(
    store: &Store,
    run: i64,
    apis: &AccountMap,
    interrupt: &AtomicBool,
) -> Result<Outcome, OpsError> {
    let by_account = apis.iter().map(|(id, a)| (id.clone(), a)).collect();
    Ok(crate::runs::sources::drive(store, run, &by_account, interrupt).await?)
}

/// The rollback of a source run (see `runs::sources::undo`); refused if
/// the run was rolled back already.
pub fn rollback_changes(parent: &SourceRun) -> Result<Vec<NewSourceChange>, OpsError> {
    if let Some(by) = parent.rolled_back_by {
        return Err(OpsError::Run(RunError::RolledBack {
            run: parent.id,
            by,
            partly: false,
        }));
    }
    Ok(crate::runs::sources::undo(parent))
}

/// Journals the rollback run of `parent`.
pub fn start_rollback(
    store: &mut Store,
    parent: i64,
    changes: &[NewSourceChange],
) -> Result<(i64, LeaseGuard), OpsError> {
    let holder = me(Purpose::Rollback);
    let run = store.create_source_run(
        RunKind::Rollback,
        Some(parent),
        &crate::clock::now(),
        changes,
        &holder,
    )?;
    Ok((run, LeaseGuard::start(store, vec![run], holder)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converted_names_are_safe_and_distinct() {
        let a = converted_name("web; rm -rf /");
        assert!(a.starts_with("imdsguard-web--rm--rf--"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "().-_".contains(c))
        );
        assert_ne!(
            converted_name("a/b"),
            converted_name("a b"),
            "the hash tells them apart"
        );
        assert!(converted_name(&"x".repeat(300)).len() <= 128);
    }

    #[test]
    fn auto_hop_limit_only_with_container_evidence() {
        assert_eq!(hop(HopLimit::Auto, true, Some(1)), Some(2));
        assert_eq!(hop(HopLimit::Auto, false, Some(1)), None);
        assert_eq!(hop(HopLimit::Auto, true, Some(3)), None);
        assert_eq!(hop(HopLimit::Set(4), false, None), Some(4));
        assert_eq!(hop(HopLimit::Keep, true, Some(1)), None);
    }
}
