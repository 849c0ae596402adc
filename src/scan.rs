//! The inventory engine: which regions, every instance in them, the role
//! behind each instance profile, and the derived fields of each record.
//!
//! Call budget per account: one `GetCallerIdentity`, one `DescribeRegions`,
//! one `ListInstanceProfiles` listing (paginated), and per region
//! ceil(instances / 1000) `DescribeInstances` calls. Nothing per instance.
//! Regions run concurrently, bounded by `concurrency`; a region that fails
//! is recorded as a [`Failure`] and the others carry on.

use std::collections::{BTreeSet, HashMap};

use futures::stream::{self, StreamExt};

use crate::aws::{AccountApis, AwsError, AwsErrorKind, all_pages, live_instances};
use crate::container;
use crate::filter::Selection;
use crate::model::{Instance, InstanceProfile, RegionInfo};
use crate::progress::Reporter;
use crate::readiness;
use crate::report::{Failure, InstanceRecord, RegionSummary};
use crate::usage::{self, InstanceUsage, Window};

/// Which regions to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionRequest {
    /// Every region enabled for the account.
    All,
    /// These, validated against `DescribeRegions`.
    List(Vec<String>),
}

/// What the engine needs to know, free of CLI types.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub regions: RegionRequest,
    pub selection: Selection,
    /// Tag keys that name an owner, tried in order, matched case-insensitively.
    pub owner_tags: Vec<String>,
    pub concurrency: usize,
    /// The usage window, or `None` for `--no-usage`.
    pub usage: Option<Window>,
    /// Regions in flight across all accounts scanned at once (`--concurrency`).
    pub permits: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Errors that stop the scan of an account.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("unknown region `{name}`")]
    UnknownRegion { name: String, known: Vec<String> },
}

/// One account's inventory.
#[derive(Debug, Default)]
pub struct AccountInventory {
    pub account_id: String,
    pub principal_arn: String,
    pub regions: Vec<RegionSummary>,
    pub records: Vec<InstanceRecord>,
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
}

/// Scans one account.
pub async fn scan_account(
    apis: &AccountApis,
    settings: &ScanSettings,
    reporter: &dyn Reporter,
) -> Result<AccountInventory, ScanError> {
    let identity = apis.sts.caller_identity().await?;
    let account_id = identity.account_id.clone();
    let mut inv = AccountInventory {
        account_id: account_id.clone(),
        principal_arn: identity.arn,
        ..Default::default()
    };

    let pinned = settings.selection.pinned_regions();
    let regions = resolve_regions(
        apis,
        &account_id,
        &settings.regions,
        pinned.as_ref(),
        &mut inv.warnings,
    )
    .await?;
    inv.failures.extend(regions.disabled);
    let regions: Vec<String> = regions
        .enabled
        .into_iter()
        .filter(|r| !settings.selection.excludes_region(r))
        .collect();
    reporter.start(regions.len() as u64);

    // IAM is listed once per account, alongside the regional listings.
    let profiles = list_profiles(apis);
    let account_id = account_id.as_str();
    let listings = stream::iter(regions.iter().cloned())
        .map(|region| async move {
            let _permit = settings
                .permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let result = scan_region(apis, account_id, &region, settings).await;
            reporter.advance(&region);
            (region, result)
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect::<Vec<_>>();
    let (profiles, mut listings) = futures::join!(profiles, listings);
    reporter.finish();
    // Stable output whatever order regions finished in.
    listings.sort_by(|a, b| a.0.cmp(&b.0));

    let roles = match profiles {
        Ok(p) => Some(RoleIndex::new(p)),
        Err(e) => {
            inv.warnings
                .push(format!("roles unknown: {e} (help: {})", e.hint()));
            None
        }
    };

    let account_id = account_id.to_owned();
    let mut seen = BTreeSet::new();
    for (region, result) in listings {
        let mut summary = RegionSummary {
            account_id: account_id.clone(),
            region: region.clone(),
            complete: true,
            ..Default::default()
        };
        match result {
            Ok(listing) => {
                let (mut usage, usage_error) = match listing.usage {
                    Some(Ok(u)) => (u, None),
                    Some(Err(e)) => (HashMap::new(), Some(e)),
                    None => (HashMap::new(), None),
                };
                for instance in listing.instances {
                    seen.insert(instance.instance_id.clone());
                    let measured = usage.remove(&instance.instance_id);
                    let mut record = build_record(
                        &account_id,
                        &region,
                        instance,
                        roles.as_ref(),
                        &settings.owner_tags,
                        measured,
                    );
                    if let Some(e) = &usage_error
                        && record.usage.is_none()
                        && record.instance.metadata.allows_v1()
                    {
                        record.reason =
                            format!("allows IMDSv1; v1 usage unknown: {} failed", e.operation);
                    }
                    summary.add(&record);
                    inv.records.push(record);
                }
                if let Some(error) = usage_error {
                    inv.failures.push(Failure {
                        account_id: Some(account_id.clone()),
                        region: Some(region.clone()),
                        error,
                    });
                }
            }
            Err(error) => {
                summary.complete = false;
                inv.failures.push(Failure {
                    account_id: Some(account_id.clone()),
                    region: Some(region.clone()),
                    error,
                });
            }
        }
        inv.regions.push(summary);
    }

    let missing: Vec<&str> = settings
        .selection
        .named_ids()
        .into_iter()
        .filter(|id| !seen.contains(*id))
        .collect();
    if !missing.is_empty() && inv.failures.is_empty() {
        inv.warnings.push(format!(
            "{} selected instance(s) not found in the scanned regions: {}",
            missing.len(),
            abbreviate(&missing, 10)
        ));
    }
    Ok(inv)
}

fn abbreviate(items: &[&str], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

/// Decides the regions to scan; returns them and the requested ones that are disabled.
/// The regions to work on in one account.
pub struct Regions {
    pub enabled: Vec<String>,
    /// Requested regions the account has not enabled, as failures to report.
    pub disabled: Vec<Failure>,
}

/// Decides the regions to visit in an account: every enabled region of its
/// partition, or the requested ones validated against `DescribeRegions`
/// (unknown: an error; not enabled: a failure), narrowed to `pinned`.
pub async fn resolve_regions(
    apis: &AccountApis,
    account_id: &str,
    request: &RegionRequest,
    pinned: Option<&BTreeSet<String>>,
    warnings: &mut Vec<String>,
) -> Result<Regions, ScanError> {
    let listed = apis.ec2.describe_regions(&apis.home_region).await;
    let known: Vec<RegionInfo> = match (request, listed) {
        (_, Ok(list)) => list
            .into_iter()
            .filter(|r| crate::aws::partition(&r.name) == crate::aws::partition(&apis.home_region))
            .collect(),
        // Explicit regions can be scanned without the listing; `all` cannot.
        (RegionRequest::List(names), Err(e)) => {
            warnings.push(format!(
                "could not validate regions ({e}); scanning {} as given",
                names.join(",")
            ));
            names
                .iter()
                .map(|n| RegionInfo {
                    name: n.clone(),
                    opt_in_status: None,
                })
                .collect()
        }
        (RegionRequest::All, Err(e)) => return Err(e.into()),
    };
    let mut enabled = Vec::new();
    let mut disabled = Vec::new();
    match request {
        RegionRequest::All => {
            for r in &known {
                if r.is_enabled() {
                    enabled.push(r.name.clone());
                }
            }
        }
        RegionRequest::List(names) => {
            for name in names {
                match known.iter().find(|r| &r.name == name) {
                    Some(r) if r.is_enabled() => enabled.push(name.clone()),
                    Some(_) => disabled.push(name.clone()),
                    None => {
                        return Err(ScanError::UnknownRegion {
                            name: name.clone(),
                            known: known.iter().map(|r| r.name.clone()).collect(),
                        });
                    }
                }
            }
        }
    }
    if let Some(pinned) = pinned {
        enabled.retain(|r| pinned.contains(r));
    }
    enabled.sort();
    enabled.dedup();
    let disabled = disabled
        .into_iter()
        .map(|region: String| Failure {
            account_id: Some(account_id.to_owned()),
            error: AwsError::local(
                "ec2:DescribeInstances",
                AwsErrorKind::RegionDisabled,
                format!("region {region} is not enabled for account {account_id}"),
            ),
            region: Some(region),
        })
        .collect();
    Ok(Regions { enabled, disabled })
}

/// One region's selected instances and, if measured, their usage.
struct RegionListing {
    instances: Vec<Instance>,
    /// `None` when usage is not measured; an error leaves the inventory intact.
    usage: Option<Result<HashMap<String, InstanceUsage>, AwsError>>,
}

/// Lists a region, applies the selection, then measures usage of the
/// instances whose endpoint is enabled (a disabled endpoint serves no v1).
async fn scan_region(
    apis: &AccountApis,
    account_id: &str,
    region: &str,
    settings: &ScanSettings,
) -> Result<RegionListing, AwsError> {
    let instances: Vec<Instance> = live_instances(
        apis.ec2.as_ref(),
        region,
        &settings.selection.server_filters(region),
    )
    .await?
    .into_iter()
    .filter(|i| settings.selection.matches(account_id, region, i))
    .collect();
    let usage = match &settings.usage {
        Some(window) => {
            let ids: Vec<String> = instances
                .iter()
                .filter(|i| i.metadata.posture() != crate::model::Posture::Disabled)
                .map(|i| i.instance_id.clone())
                .collect();
            Some(usage::measure(apis.cloudwatch.as_ref(), region, &ids, window).await)
        }
        None => None,
    };
    Ok(RegionListing { instances, usage })
}

async fn list_profiles(apis: &AccountApis) -> Result<Vec<InstanceProfile>, AwsError> {
    all_pages(|marker| async move {
        let page = apis.iam.list_instance_profiles(marker).await?;
        Ok((page.profiles, page.next_marker))
    })
    .await
}

/// Instance profile ARN → role, built once per account.
struct RoleIndex {
    by_arn: HashMap<String, Option<String>>,
    by_name: HashMap<String, Option<String>>,
}

impl RoleIndex {
    fn new(profiles: Vec<InstanceProfile>) -> Self {
        let mut by_arn = HashMap::new();
        let mut by_name = HashMap::new();
        for p in profiles {
            let role = p.role_names.first().cloned();
            by_name.insert(p.name.clone(), role.clone());
            by_arn.insert(p.arn, role);
        }
        RoleIndex { by_arn, by_name }
    }

    fn role_for(&self, profile_arn: &str) -> Option<String> {
        if let Some(role) = self.by_arn.get(profile_arn) {
            return role.clone();
        }
        // ARNs can differ in path between APIs; the profile name is unique per account.
        let name = profile_arn.rsplit('/').next()?;
        self.by_name.get(name).cloned().flatten()
    }
}

fn build_record(
    account_id: &str,
    region: &str,
    instance: Instance,
    roles: Option<&RoleIndex>,
    owner_tags: &[String],
    measured: Option<InstanceUsage>,
) -> InstanceRecord {
    let role_name = instance
        .instance_profile_arn
        .as_deref()
        .and_then(|arn| roles.and_then(|r| r.role_for(arn)));
    let owner = owner_tags.iter().find_map(|key| {
        instance
            .tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    });
    let launch_template = instance.tag("aws:ec2launchtemplate:id").map(|id| {
        match instance.tag("aws:ec2launchtemplate:version") {
            Some(v) => format!("{id}:{v}"),
            None => id.to_owned(),
        }
    });
    let container_reason = container::detect(&instance);
    let (usage, daily) = match measured {
        Some(m) => (Some(m.usage), m.daily),
        None => (None, Default::default()),
    };
    let (readiness, reason) = readiness::assess(&instance.metadata, usage.as_ref());
    InstanceRecord {
        account_id: account_id.to_owned(),
        region: region.to_owned(),
        role_name,
        owner,
        asg_name: instance.tag("aws:autoscaling:groupName").map(str::to_owned),
        cfn_stack: instance
            .tag("aws:cloudformation:stack-name")
            .map(str::to_owned),
        launch_template,
        container_host: container_reason.is_some(),
        container_reason,
        usage,
        daily,
        readiness,
        reason,
        instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::{Calls, FakeAccount, instance};
    use crate::filter::SelectionInput;
    use crate::model::{HttpTokens, Toggle};
    use crate::progress::Silent;

    fn settings(regions: RegionRequest) -> ScanSettings {
        ScanSettings {
            regions,
            selection: Selection::default(),
            owner_tags: vec!["owner".into()],
            concurrency: 4,
            usage: None,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(4)),
        }
    }

    fn run(apis: &AccountApis, s: &ScanSettings) -> Result<AccountInventory, ScanError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(scan_account(apis, s, &Silent))
    }

    #[test]
    fn pages_of_1000_and_no_per_instance_calls() {
        let mut fake = FakeAccount::new(&["us-east-1"]);
        fake.ec2.instances.insert(
            "us-east-1".into(),
            (0..2500)
                .map(|n| instance(n, HttpTokens::Optional))
                .collect(),
        );
        let calls = fake.calls.clone();
        let apis = fake.into_apis();
        let inv = run(&apis, &settings(RegionRequest::All)).unwrap();
        assert_eq!(inv.records.len(), 2500);
        assert_eq!(Calls::get(&calls.describe_instances), 3);
        assert_eq!(*calls.page_sizes.lock().unwrap(), vec![1000, 1000, 1000]);
        assert_eq!(Calls::get(&calls.list_instance_profiles), 1);
        assert_eq!(Calls::get(&calls.describe_regions), 1);
        assert_eq!(Calls::get(&calls.caller_identity), 1);
    }

    #[test]
    fn roles_joined_from_one_paginated_listing() {
        let mut fake = FakeAccount::new(&["eu-west-1"]);
        let mut with_role = instance(1, HttpTokens::Optional);
        with_role.instance_profile_arn =
            Some("arn:aws:iam::111122223333:instance-profile/web-profile".into());
        let mut by_name = instance(2, HttpTokens::Optional);
        by_name.instance_profile_arn =
            Some("arn:aws:iam::111122223333:instance-profile/some/path/db-profile".into());
        fake.ec2.instances.insert(
            "eu-west-1".into(),
            vec![with_role, by_name, instance(3, HttpTokens::Required)],
        );
        fake.iam.page_size = 1;
        fake.iam.profiles = vec![
            InstanceProfile {
                arn: "arn:aws:iam::111122223333:instance-profile/web-profile".into(),
                name: "web-profile".into(),
                role_names: vec!["web-role".into()],
            },
            InstanceProfile {
                arn: "arn:aws:iam::111122223333:instance-profile/db-profile".into(),
                name: "db-profile".into(),
                role_names: vec!["db-role".into()],
            },
        ];
        let calls = fake.calls.clone();
        let apis = fake.into_apis();
        let inv = run(&apis, &settings(RegionRequest::All)).unwrap();
        let roles: Vec<Option<&str>> = inv.records.iter().map(|r| r.role_name.as_deref()).collect();
        assert_eq!(roles, vec![Some("web-role"), Some("db-role"), None]);
        assert_eq!(Calls::get(&calls.list_instance_profiles), 2);
    }

    #[test]
    fn failed_region_is_reported_and_others_complete() {
        let mut fake = FakeAccount::new(&["us-east-1", "us-west-2"]);
        fake.ec2
            .instances
            .insert("us-east-1".into(), vec![instance(1, HttpTokens::Required)]);
        fake.ec2.failing.insert(
            "us-west-2".into(),
            AwsError::from_code(
                "ec2:DescribeInstances",
                Some("UnauthorizedOperation"),
                Some("no"),
                None,
            ),
        );
        let apis = fake.into_apis();
        let inv = run(&apis, &settings(RegionRequest::All)).unwrap();
        assert_eq!(inv.records.len(), 1);
        assert_eq!(inv.failures.len(), 1);
        assert_eq!(inv.failures[0].region.as_deref(), Some("us-west-2"));
        assert_eq!(inv.failures[0].error.kind, AwsErrorKind::AccessDenied);
        let east = inv
            .regions
            .iter()
            .find(|r| r.region == "us-east-1")
            .unwrap();
        assert!(east.complete);
        assert_eq!(east.required, 1);
    }

    #[test]
    fn unknown_and_disabled_regions() {
        let mut fake = FakeAccount::new(&["us-east-1"]);
        fake.ec2.regions.push(RegionInfo {
            name: "me-south-1".into(),
            opt_in_status: Some("not-opted-in".into()),
        });
        let apis = fake.into_apis();
        let err = run(
            &apis,
            &settings(RegionRequest::List(vec!["us-east-9".into()])),
        )
        .unwrap_err();
        assert!(matches!(err, ScanError::UnknownRegion { ref name, .. } if name == "us-east-9"));
        let inv = run(
            &apis,
            &settings(RegionRequest::List(vec![
                "us-east-1".into(),
                "me-south-1".into(),
            ])),
        )
        .unwrap();
        assert_eq!(inv.regions.len(), 1);
        assert_eq!(inv.failures[0].error.kind, AwsErrorKind::RegionDisabled);
        // `all` skips regions the account has not opted into.
        let inv = run(&apis, &settings(RegionRequest::All)).unwrap();
        assert_eq!(
            inv.regions
                .iter()
                .map(|r| r.region.as_str())
                .collect::<Vec<_>>(),
            vec!["us-east-1"]
        );
    }

    #[test]
    fn owner_tag_case_insensitive_and_container_hosts() {
        let mut fake = FakeAccount::new(&["us-east-1"]);
        let mut a = instance(1, HttpTokens::Optional);
        a.tags.insert("Owner".into(), "alice".into());
        a.tags.insert("eks:cluster-name".into(), "prod".into());
        a.tags
            .insert("aws:autoscaling:groupName".into(), "asg-1".into());
        let mut b = instance(2, HttpTokens::Optional);
        b.metadata.http_endpoint = Some(Toggle::Disabled);
        fake.ec2.instances.insert("us-east-1".into(), vec![a, b]);
        let apis = fake.into_apis();
        let inv = run(&apis, &settings(RegionRequest::All)).unwrap();
        assert_eq!(inv.records[0].owner.as_deref(), Some("alice"));
        assert!(inv.records[0].container_host);
        assert_eq!(inv.records[0].asg_name.as_deref(), Some("asg-1"));
        assert!(!inv.records[1].container_host);
        let s = &inv.regions[0];
        assert_eq!(
            (s.instances, s.optional, s.disabled, s.required),
            (2, 1, 1, 0)
        );
    }

    #[test]
    fn selection_is_applied_client_side_too() {
        let mut fake = FakeAccount::new(&["us-east-1"]);
        fake.ec2.instances.insert(
            "us-east-1".into(),
            (0..10).map(|n| instance(n, HttpTokens::Optional)).collect(),
        );
        let apis = fake.into_apis();
        let mut s = settings(RegionRequest::All);
        s.selection = Selection::parse(&SelectionInput {
            instance_ids: vec![format!("i-{:017x}", 3), format!("i-{:017x}", 99)],
            ..Default::default()
        })
        .unwrap();
        let inv = run(&apis, &s).unwrap();
        assert_eq!(inv.records.len(), 1);
        assert!(
            inv.warnings[0].contains(&format!("i-{:017x}", 99)),
            "{:?}",
            inv.warnings
        );
    }

    #[test]
    fn sts_failure_is_fatal() {
        let mut fake = FakeAccount::new(&["us-east-1"]);
        fake.sts_fail = Some(AwsError::from_code(
            "sts:GetCallerIdentity",
            Some("ExpiredToken"),
            Some("expired"),
            None,
        ));
        let apis = fake.into_apis();
        let err = run(&apis, &settings(RegionRequest::All)).unwrap_err();
        assert!(matches!(err, ScanError::Aws(ref e) if e.kind == AwsErrorKind::ExpiredToken));
    }
}
