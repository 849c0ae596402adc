//! The inventory engine: which regions, every instance in them, the role
//! behind each instance profile, and the derived fields of each record.
//!
//! Call budget per account: one `GetCallerIdentity`, one `DescribeRegions`,
//! one `ListInstanceProfiles` listing (paginated), and per region
//! ceil(instances / 1000) `DescribeInstances` calls. Nothing per instance.
//! Regions run concurrently, bounded by `concurrency`; a region that fails
//! is recorded as a [`Failure`] and the others carry on.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::Semaphore;

use crate::aws::{AccountApis, AwsError, all_pages, live_instances};
use crate::container;
use crate::fanout::{self, RegionRequest};
use crate::filter::Selection;
use crate::model::{Instance, InstanceProfile};
use crate::progress::Reporter;
use crate::readiness;
use crate::report::{Failure, InstanceRecord, RegionSummary};
use crate::sources::{self, RegionInput, Sources};
use crate::usage::{self, InstanceUsage, Window};

pub use crate::fanout::FanoutError as ScanError;

/// What the engine needs to know, free of CLI types.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub regions: RegionRequest,
    pub selection: Selection,
    /// Tag keys that name an owner, tried in order, matched case-insensitively.
    pub owner_tags: Vec<String>,
    /// The usage window, or `None` for `--no-usage`.
    pub usage: Option<Window>,
    /// Regions in flight across all accounts scanned at once (`--concurrency`).
    pub permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// AWS calls in flight at once in one account and region
    /// (`--region-calls`): AWS's rate limits are per account and region.
    pub region_calls: usize,
    /// Also read the sources of new instances (templates, groups, account
    /// defaults, AMIs): `false` for `--no-sources`.
    pub sources: bool,
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
    pub sources: Sources,
}

/// Scans one account: who it is and its regions (see
/// [`fanout::account_regions`]), then every region under the shared
/// permits while its IAM instance profiles are listed once.
pub async fn scan_account(
    apis: &AccountApis,
    settings: &ScanSettings,
    reporter: &dyn Reporter,
) -> Result<AccountInventory, ScanError> {
    let pinned = settings.selection.pinned_regions();
    let found = fanout::account_regions(apis, &settings.regions, pinned.as_ref()).await?;
    let mut inv = AccountInventory {
        account_id: found.account_id,
        principal_arn: found.principal_arn,
        failures: found.failures,
        warnings: found.warnings,
        ..Default::default()
    };
    let regions: Vec<String> = found
        .regions
        .into_iter()
        .filter(|r| !settings.selection.excludes_region(r))
        .collect();
    reporter.start(regions.len() as u64);

    // IAM is listed once per account, alongside the regional listings.
    let profiles = list_profiles(apis);
    let account_id = inv.account_id.as_str();
    let listings =
        fanout::visit_regions(&regions, &settings.permits, reporter, |region| async move {
            let listing = scan_region(apis, account_id, &region, settings).await;
            apis.release_region(&region);
            listing
        });
    let (profiles, listings) = futures::join!(profiles, listings);
    reporter.finish();

    let roles = match profiles {
        Ok(p) => Some(RoleIndex::new(p)),
        Err(e) => {
            inv.warnings
                .push(format!("roles unknown: {e} (help: {})", e.hint()));
            None
        }
    };

    let account_id = inv.account_id.clone();
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
                let first = inv.records.len();
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
                    inv.failures
                        .push(Failure::new(Some(&account_id), Some(&region), error));
                }
                if let Some((input, warnings)) = listing.launch {
                    let here: Vec<&Instance> =
                        inv.records[first..].iter().map(|r| &r.instance).collect();
                    inv.sources
                        .extend(sources::assess(&account_id, &region, &input, &here));
                    inv.warnings
                        .extend(warnings.into_iter().map(|w| format!("{region}: {w}")));
                }
            }
            Err(error) => {
                summary.complete = false;
                inv.failures
                    .push(Failure::new(Some(&account_id), Some(&region), error));
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

/// One region's selected instances and, if measured, their usage.
struct RegionListing {
    instances: Vec<Instance>,
    /// `None` when usage is not measured; an error leaves the inventory intact.
    usage: Option<Result<HashMap<String, InstanceUsage>, AwsError>>,
    /// The region's launch paths, and what could not be read of them.
    launch: Option<(RegionInput, Vec<String>)>,
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
    // Metric batches and source listings share the region's budget.
    let gate = Semaphore::new(settings.region_calls.max(1));
    let gate = &gate;
    let usage = async {
        match &settings.usage {
            Some(window) => {
                let ids: Vec<String> = instances
                    .iter()
                    .filter(|i| i.metadata.posture() != crate::model::Posture::Disabled)
                    .map(|i| i.instance_id.clone())
                    .collect();
                Some(usage::measure(apis.cloudwatch.as_ref(), region, &ids, window, gate).await)
            }
            None => None,
        }
    };
    let launch = async {
        match settings.sources {
            true => Some(launch_input(apis, region, &instances, gate).await),
            false => None,
        }
    };
    let (usage, launch) = futures::join!(usage, launch);
    Ok(RegionListing {
        instances,
        usage,
        launch,
    })
}

/// A region's sources of new instances, read on their own (for the fix
/// commands, which must act on what is there now). AMIs of templates and
/// configurations are described; no instance is listed.
pub async fn read_sources(
    apis: &AccountApis,
    region: &str,
    region_calls: usize,
) -> (RegionInput, Vec<String>) {
    launch_input(apis, region, &[], &Semaphore::new(region_calls.max(1))).await
}

/// `call`, once it holds a permit of the region's `gate`.
async fn gated<T>(gate: &Semaphore, call: impl Future<Output = T>) -> T {
    let _permit = gate.acquire().await.expect("the gate is never closed");
    call.await
}

/// A region's launch paths: one paginated listing each of template
/// versions (`$Default` and `$Latest`), Auto Scaling groups and (only when
/// a group uses one) launch configurations; the account default; one more
/// template listing per template that groups pin to an older version; and
/// the AMIs involved, 200 per `DescribeImages`. A listing that fails leaves
/// its part unknown (a warning), never the region's instances. Each listing
/// holds a permit of `gate` (pages of one listing follow each other).
async fn launch_input(
    apis: &AccountApis,
    region: &str,
    instances: &[Instance],
    gate: &Semaphore,
) -> (RegionInput, Vec<String>) {
    let mut warnings = Vec::new();
    let mut note = |what: &str, e: AwsError| {
        warnings.push(format!("{what} unknown: {e} (help: {})", e.hint()));
    };
    let versions = gated(
        gate,
        all_pages(|token| async move {
            let page = apis.ec2.template_versions(region, token).await?;
            Ok((page.versions, page.next_token))
        }),
    );
    let groups = gated(
        gate,
        all_pages(|token| async move {
            let page = apis.autoscaling.describe_groups(region, token).await?;
            Ok((page.groups, page.next_token))
        }),
    );
    let defaults = gated(gate, apis.ec2.metadata_defaults(region));
    let (versions, groups, defaults) = futures::join!(versions, groups, defaults);
    let mut input = RegionInput {
        versions: versions.map_err(|e| note("launch templates", e)).ok(),
        groups: groups.map_err(|e| note("Auto Scaling groups", e)).ok(),
        defaults: defaults.map_err(|e| note("account defaults", e)).ok(),
        ..Default::default()
    };

    let groups = input.groups.as_deref().unwrap_or_default();
    if groups
        .iter()
        .any(|g| matches!(g.launch, crate::aws::GroupLaunchSpec::Configuration { .. }))
    {
        let listed = gated(
            gate,
            all_pages(|token| async move {
                let page = apis
                    .autoscaling
                    .describe_configurations(region, token)
                    .await?;
                Ok((page.configurations, page.next_token))
            }),
        )
        .await;
        match listed {
            Ok(c) => input.configurations = c,
            Err(e) => note("launch configurations", e),
        }
    }
    if let Some(versions) = input.versions.as_mut() {
        for (id, numbers) in sources::pinned_versions(versions, groups) {
            match gated(gate, apis.ec2.template_versions_of(region, &id, &numbers)).await {
                Ok(found) => versions.extend(found),
                Err(e) => note(&format!("pinned versions of {id}"), e),
            }
        }
    }
    let wanted = sources::wanted_images(
        input.versions.as_deref().unwrap_or_default(),
        &input.configurations,
        instances.iter(),
    );
    let mut images = HashMap::new();
    let mut images_known = true;
    for chunk in wanted.chunks(crate::aws::IMAGE_BATCH) {
        match gated(gate, apis.ec2.describe_images(region, chunk)).await {
            Ok(found) => images.extend(found.into_iter().map(|i| (i.image_id, i.imds_v2))),
            Err(e) => {
                note("AMI IMDS support", e);
                images_known = false;
                break;
            }
        }
    }
    input.images = images_known.then_some(images);
    (input, warnings)
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

/// The instance's owner: the value of the first of `owner_tags` it has,
/// keys compared case-insensitively (`Owner` and `owner` are one tag to people).
pub fn owner_of(instance: &Instance, owner_tags: &[String]) -> Option<String> {
    owner_tags.iter().find_map(|key| {
        instance
            .tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    })
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
    let owner = owner_of(&instance, owner_tags);
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
        v1_callers: None,
        instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsErrorKind;
    use crate::aws::fake::{Calls, FakeAccount, instance};
    use crate::filter::SelectionInput;
    use crate::model::{HttpTokens, RegionInfo, Toggle};
    use crate::progress::Silent;

    fn settings(regions: RegionRequest) -> ScanSettings {
        ScanSettings {
            regions,
            selection: Selection::default(),
            owner_tags: vec!["owner".into()],
            usage: None,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(4)),
            region_calls: 4,
            sources: true,
        }
    }

    async fn run(apis: &AccountApis, s: &ScanSettings) -> Result<AccountInventory, ScanError> {
        scan_account(apis, s, &Silent).await
    }

    #[tokio::test]
    async fn pages_of_1000_and_no_per_instance_calls() {
        let mut fake = FakeAccount::new(&["us-east-1"]);
        fake.ec2.instances.insert(
            "us-east-1".into(),
            (0..2500)
                .map(|n| instance(n, HttpTokens::Optional))
                .collect(),
        );
        let calls = fake.calls.clone();
        let apis = fake.into_apis();
        let inv = run(&apis, &settings(RegionRequest::All)).await.unwrap();
        assert_eq!(inv.records.len(), 2500);
        assert_eq!(Calls::get(&calls.describe_instances), 3);
        assert_eq!(*calls.page_sizes.lock().unwrap(), vec![1000, 1000, 1000]);
        assert_eq!(Calls::get(&calls.list_instance_profiles), 1);
        assert_eq!(Calls::get(&calls.describe_regions), 1);
        assert_eq!(Calls::get(&calls.caller_identity), 1);
    }

    #[tokio::test]
    async fn roles_joined_from_one_paginated_listing() {
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
        let inv = run(&apis, &settings(RegionRequest::All)).await.unwrap();
        let roles: Vec<Option<&str>> = inv.records.iter().map(|r| r.role_name.as_deref()).collect();
        assert_eq!(roles, vec![Some("web-role"), Some("db-role"), None]);
        assert_eq!(Calls::get(&calls.list_instance_profiles), 2);
    }

    #[tokio::test]
    async fn failed_region_is_reported_and_others_complete() {
        let mut fake = FakeAccount::new(&["us-east-1", "us-west-2"]);
        fake.ec2
            .instances
            .insert("us-east-1".into(), vec![instance(1, HttpTokens::Required)]);
        fake.ec2.failing.insert(
            "us-west-2".into(),
            AwsError::from_code(
                crate::aws::Operation::DescribeInstances,
                Some("UnauthorizedOperation"),
                Some("no"),
                None,
            ),
        );
        let apis = fake.into_apis();
        let inv = run(&apis, &settings(RegionRequest::All)).await.unwrap();
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

    #[tokio::test]
    async fn unknown_and_disabled_regions() {
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
        .await
        .unwrap_err();
        assert!(matches!(err, ScanError::UnknownRegion { ref name, .. } if name == "us-east-9"));
        let inv = run(
            &apis,
            &settings(RegionRequest::List(vec![
                "us-east-1".into(),
                "me-south-1".into(),
            ])),
        )
        .await
        .unwrap();
        assert_eq!(inv.regions.len(), 1);
        assert_eq!(inv.failures[0].error.kind, AwsErrorKind::RegionDisabled);
        // `all` skips regions the account has not opted into.
        let inv = run(&apis, &settings(RegionRequest::All)).await.unwrap();
        assert_eq!(
            inv.regions
                .iter()
                .map(|r| r.region.as_str())
                .collect::<Vec<_>>(),
            vec!["us-east-1"]
        );
    }

    #[tokio::test]
    async fn owner_tag_case_insensitive_and_container_hosts() {
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
        let inv = run(&apis, &settings(RegionRequest::All)).await.unwrap();
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

    #[tokio::test]
    async fn selection_is_applied_client_side_too() {
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
        let inv = run(&apis, &s).await.unwrap();
        assert_eq!(inv.records.len(), 1);
        assert!(
            inv.warnings[0].contains(&format!("i-{:017x}", 99)),
            "{:?}",
            inv.warnings
        );
    }

    #[tokio::test]
    async fn sts_failure_is_fatal() {
        let mut fake = FakeAccount::new(&["us-east-1"]);
        fake.sts_fail = Some(AwsError::from_code(
            crate::aws::Operation::GetCallerIdentity,
            Some("ExpiredToken"),
            Some("expired"),
            None,
        ));
        let apis = fake.into_apis();
        let err = run(&apis, &settings(RegionRequest::All)).await.unwrap_err();
        assert!(matches!(err, ScanError::Aws(ref e) if e.kind == AwsErrorKind::ExpiredToken));
    }
}
