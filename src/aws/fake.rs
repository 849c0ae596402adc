//! In-memory fakes of our AWS traits, for unit tests of the engine.
//!
//! Unlike moto, the fake EC2 pages by *instances* and honours `MaxResults`
//! as real EC2 does, and it counts every call, so tests can assert exactly
//! how many requests a scan makes at fleet sizes moto cannot serve quickly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{
    AccountApis, AwsError, Ec2Api, Filter, IamApi, InstancePage, MetadataDefaults, ModifyOutcome,
    ProfilePage, StsApi,
};
use crate::model::{
    HttpTokens, Identity, Instance, InstanceProfile, InstanceState, MetadataOptions, RegionInfo,
    Toggle,
};

#[derive(Default)]
pub struct Calls {
    pub describe_regions: AtomicUsize,
    pub describe_instances: AtomicUsize,
    pub list_instance_profiles: AtomicUsize,
    pub caller_identity: AtomicUsize,
    pub modifies: AtomicUsize,
    pub dry_runs: AtomicUsize,
    /// `MaxResults` of every `DescribeInstances` call, in order.
    pub page_sizes: Mutex<Vec<i32>>,
}

impl Calls {
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub struct FakeEc2 {
    pub regions: Vec<RegionInfo>,
    /// Behind a lock so `ModifyInstanceMetadataOptions` can change them.
    pub instances: HashMap<String, Vec<Instance>>,
    pub modified: Mutex<HashMap<String, crate::model::Options>>,
    /// Answer every `ModifyInstanceMetadataOptions` (dry run or not) with this error.
    pub modify_error: Option<AwsError>,
    /// Answer dry runs with this error (e.g. `UnauthorizedOperation`).
    pub dry_run_error: Option<AwsError>,
    /// Regions whose `DescribeInstances` fails with this error.
    pub failing: HashMap<String, AwsError>,
    pub calls: std::sync::Arc<Calls>,
    /// From this many real modifies on, every call fails with this error
    /// (credentials that expire mid-run).
    pub fail_after: Option<(usize, AwsError)>,
    /// This many real modifies land, then answer this error (an answer lost
    /// after EC2 acted: a timeout, a proxy's 500).
    pub lose_answers: Mutex<usize>,
    /// Before the Nth `DescribeInstances` (1-based), someone else sets these
    /// options on this instance (drift during a run).
    pub drift_before_describe: Mutex<Option<(usize, String, crate::model::Options)>>,
    /// The instance id of every real modify that reached the fake, in order.
    pub modify_log: Mutex<Vec<String>>,
    /// Regions whose `GetInstanceMetadataDefaults` fails with this error.
    pub defaults_error: HashMap<String, AwsError>,
    /// Each region's account defaults (absent: no preference).
    pub defaults: HashMap<String, MetadataDefaults>,
    /// Every launch template version, per region.
    pub templates: HashMap<String, Vec<super::TemplateVersion>>,
    /// AMI id → `ImdsSupport=v2.0`.
    pub images: HashMap<String, bool>,
    /// The launch-path calls, in order (`DescribeImages us-east-1`, ...);
    /// shared, so a test can read it after the fake is boxed.
    pub launch_log: std::sync::Arc<Mutex<Vec<String>>>,
}

impl FakeEc2 {
    fn log(&self, entry: String) {
        self.launch_log.lock().unwrap().push(entry);
    }
}

#[async_trait]
impl Ec2Api for FakeEc2 {
    async fn describe_regions(&self, _region: &str) -> Result<Vec<RegionInfo>, AwsError> {
        self.calls.describe_regions.fetch_add(1, Ordering::SeqCst);
        Ok(self.regions.clone())
    }

    async fn describe_instances(
        &self,
        region: &str,
        filters: &[Filter],
        max_results: i32,
        next_token: Option<String>,
    ) -> Result<InstancePage, AwsError> {
        let n = self.calls.describe_instances.fetch_add(1, Ordering::SeqCst) + 1;
        self.calls.page_sizes.lock().unwrap().push(max_results);
        if let Some(err) = self.failing.get(region) {
            return Err(err.clone());
        }
        if let Some((after, err)) = &self.fail_after
            && Calls::get(&self.calls.modifies) >= *after
        {
            return Err(err.clone());
        }
        {
            let mut drift = self.drift_before_describe.lock().unwrap();
            if drift.as_ref().is_some_and(|(at, _, _)| *at == n) {
                let (_, id, options) = drift.take().expect("checked");
                self.modified.lock().unwrap().insert(id, options);
            }
        }
        assert!(
            (5..=1000).contains(&max_results),
            "EC2 rejects MaxResults {max_results}"
        );
        let modified = self.modified.lock().unwrap();
        let all: Vec<Instance> = self
            .instances
            .get(region)
            .map(|v| {
                v.iter()
                    .filter(|i| matches_filters(i, filters))
                    .map(|i| {
                        let mut i = i.clone();
                        if let Some(o) = modified.get(&i.instance_id) {
                            i.metadata.http_tokens = Some(o.http_tokens);
                            i.metadata.http_endpoint = Some(o.http_endpoint);
                            i.metadata.hop_limit = Some(o.hop_limit);
                            i.metadata.instance_metadata_tags = Some(o.instance_metadata_tags);
                            i.metadata.http_protocol_ipv6 = Some(o.http_protocol_ipv6);
                        }
                        i
                    })
                    .collect()
            })
            .unwrap_or_default();
        let start: usize = next_token
            .map(|t| t.parse().expect("our own token"))
            .unwrap_or(0);
        let end = (start + max_results as usize).min(all.len());
        Ok(InstancePage {
            instances: all[start..end].to_vec(),
            next_token: (end < all.len()).then(|| end.to_string()),
        })
    }

    async fn modify_metadata_options(
        &self,
        _region: &str,
        instance_id: &str,
        target: &crate::model::Options,
        dry_run: bool,
    ) -> Result<ModifyOutcome, AwsError> {
        if dry_run {
            self.calls.dry_runs.fetch_add(1, Ordering::SeqCst);
            if let Some(e) = self.dry_run_error.as_ref().or(self.modify_error.as_ref()) {
                return Err(e.clone());
            }
            return Ok(ModifyOutcome {
                state: None,
                request_id: None,
            });
        }
        let n = self.calls.modifies.fetch_add(1, Ordering::SeqCst);
        if let Some((after, err)) = &self.fail_after
            && n >= *after
        {
            return Err(err.clone());
        }
        if let Some(e) = &self.modify_error {
            return Err(e.clone());
        }
        self.modify_log.lock().unwrap().push(instance_id.to_owned());
        self.modified
            .lock()
            .unwrap()
            .insert(instance_id.to_owned(), *target);
        {
            let mut lose = self.lose_answers.lock().unwrap();
            if *lose > 0 {
                *lose -= 1;
                return Err(AwsError::local(
                    crate::aws::Operation::ModifyInstanceMetadataOptions,
                    crate::aws::AwsErrorKind::Network,
                    "connection reset after the request was sent",
                ));
            }
        }
        Ok(ModifyOutcome {
            state: Some(crate::model::MetadataState::Applied),
            request_id: Some(format!("req-{instance_id}")),
        })
    }

    async fn metadata_defaults(&self, region: &str) -> Result<MetadataDefaults, AwsError> {
        self.log(format!("GetInstanceMetadataDefaults {region}"));
        match self.defaults_error.get(region) {
            Some(e) => Err(e.clone()),
            None => Ok(self.defaults.get(region).cloned().unwrap_or_default()),
        }
    }

    async fn template_versions(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<super::TemplatePage, AwsError> {
        self.log(format!("DescribeLaunchTemplateVersions {region}"));
        // $Default and $Latest of every template, two templates per page.
        let all = self.templates.get(region).cloned().unwrap_or_default();
        let mut wanted: Vec<super::TemplateVersion> = Vec::new();
        let mut ids: Vec<&str> = all.iter().map(|v| v.template_id.as_str()).collect();
        ids.dedup();
        for id in &ids {
            let of: Vec<_> = all.iter().filter(|v| v.template_id == *id).collect();
            let latest = of.iter().map(|v| v.version).max().unwrap_or(0);
            wanted.extend(
                of.into_iter()
                    .filter(|v| v.is_default || v.version == latest)
                    .cloned(),
            );
        }
        let start: usize = next_token.map_or(0, |t| t.parse().unwrap());
        let end = (start + 2).min(wanted.len());
        Ok(super::TemplatePage {
            versions: wanted[start..end].to_vec(),
            next_token: (end < wanted.len()).then(|| end.to_string()),
        })
    }

    async fn template_versions_of(
        &self,
        region: &str,
        template_id: &str,
        versions: &[i64],
    ) -> Result<Vec<super::TemplateVersion>, AwsError> {
        self.log(format!(
            "DescribeLaunchTemplateVersions {region} {template_id}"
        ));
        Ok(self
            .templates
            .get(region)
            .into_iter()
            .flatten()
            .filter(|v| v.template_id == template_id && versions.contains(&v.version))
            .cloned()
            .collect())
    }

    async fn template_versions_since(
        &self,
        region: &str,
        template_id: &str,
        min_version: i64,
    ) -> Result<Vec<super::TemplateVersion>, AwsError> {
        self.log(format!(
            "DescribeLaunchTemplateVersions {region} {template_id} since {min_version}"
        ));
        Ok(self
            .templates
            .get(region)
            .into_iter()
            .flatten()
            .filter(|v| v.template_id == template_id && v.version >= min_version)
            .cloned()
            .collect())
    }

    async fn describe_images(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<super::ImageInfo>, AwsError> {
        assert!(ids.len() <= super::IMAGE_BATCH, "EC2 caps filter values");
        self.log(format!("DescribeImages {region}"));
        Ok(ids
            .iter()
            .filter_map(|id| {
                self.images.get(id).map(|v2| super::ImageInfo {
                    image_id: id.clone(),
                    imds_v2: *v2,
                })
            })
            .collect())
    }

    async fn create_template_version(
        &self,
        region: &str,
        template_id: &str,
        source_version: i64,
        _target: &super::TemplateTarget,
        _client_token: &str,
    ) -> Result<i64, AwsError> {
        self.log(format!(
            "CreateLaunchTemplateVersion {region} {template_id} from {source_version}"
        ));
        Ok(source_version + 100)
    }

    async fn set_default_version(
        &self,
        region: &str,
        template_id: &str,
        version: i64,
    ) -> Result<(), AwsError> {
        self.log(format!(
            "ModifyLaunchTemplate {region} {template_id} {version}"
        ));
        Ok(())
    }

    async fn create_template(
        &self,
        region: &str,
        name: &str,
        _data: super::TemplateData,
        _client_token: &str,
    ) -> Result<super::CreatedTemplate, AwsError> {
        self.log(format!("CreateLaunchTemplate {region} {name}"));
        Ok(super::CreatedTemplate {
            template_id: format!("lt-{name}"),
            version: 1,
        })
    }

    async fn modify_metadata_defaults(
        &self,
        region: &str,
        target: &super::DefaultsTarget,
    ) -> Result<(), AwsError> {
        self.log(format!(
            "ModifyInstanceMetadataDefaults {region} {target:?}"
        ));
        Ok(())
    }
}

/// CloudTrail with no events.
#[derive(Default)]
pub struct FakeCloudTrail;

#[async_trait]
impl super::CloudTrailApi for FakeCloudTrail {
    async fn lookup_events(
        &self,
        _region: &str,
        _start: i64,
        _end: i64,
        _token: Option<String>,
    ) -> Result<super::EventPage, AwsError> {
        Ok(super::EventPage::default())
    }
}

/// Auto Scaling groups and launch configurations, per region.
#[derive(Default)]
pub struct FakeAutoScaling {
    pub groups: HashMap<String, Vec<super::AutoScalingGroup>>,
    pub configurations: HashMap<String, Vec<super::LaunchConfiguration>>,
    pub log: Mutex<Vec<String>>,
}

#[async_trait]
impl super::AutoScalingApi for FakeAutoScaling {
    async fn describe_groups(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<super::GroupPage, AwsError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("DescribeAutoScalingGroups {region}"));
        let all = self.groups.get(region).cloned().unwrap_or_default();
        let start: usize = next_token.map_or(0, |t| t.parse().unwrap());
        let end = (start + 2).min(all.len());
        Ok(super::GroupPage {
            groups: all[start..end].to_vec(),
            next_token: (end < all.len()).then(|| end.to_string()),
        })
    }

    async fn describe_configurations(
        &self,
        region: &str,
        _next_token: Option<String>,
    ) -> Result<super::ConfigurationPage, AwsError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("DescribeLaunchConfigurations {region}"));
        Ok(super::ConfigurationPage {
            configurations: self.configurations.get(region).cloned().unwrap_or_default(),
            next_token: None,
        })
    }

    async fn configuration_data(
        &self,
        _region: &str,
        name: &str,
        _http_tokens: HttpTokens,
        _hop_limit: Option<i32>,
    ) -> Result<super::TemplateData, AwsError> {
        Ok(super::TemplateData(Box::new(name.to_owned())))
    }

    async fn update_group(
        &self,
        region: &str,
        name: &str,
        target: &super::GroupTarget,
    ) -> Result<(), AwsError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("UpdateAutoScalingGroup {region} {name} {target:?}"));
        Ok(())
    }
}

fn matches_filters(i: &Instance, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let value = match f.name.as_str() {
            "instance-state-name" => Some(i.state.as_str()),
            "instance-id" => Some(i.instance_id.as_str()),
            name => match name.strip_prefix("tag:") {
                Some(key) => i.tag(key),
                None => panic!("fake EC2 does not know filter {name}"),
            },
        };
        value.is_some_and(|v| f.values.iter().any(|want| want == "*" || want == v))
    })
}

#[derive(Default)]
pub struct FakeIam {
    pub profiles: Vec<InstanceProfile>,
    pub page_size: usize,
    pub fail: Option<AwsError>,
    pub calls: std::sync::Arc<Calls>,
}

#[async_trait]
impl IamApi for FakeIam {
    async fn list_instance_profiles(
        &self,
        marker: Option<String>,
    ) -> Result<ProfilePage, AwsError> {
        self.calls
            .list_instance_profiles
            .fetch_add(1, Ordering::SeqCst);
        if let Some(err) = &self.fail {
            return Err(err.clone());
        }
        let size = if self.page_size == 0 {
            1000
        } else {
            self.page_size
        };
        let start: usize = marker.map(|m| m.parse().unwrap()).unwrap_or(0);
        let end = (start + size).min(self.profiles.len());
        Ok(ProfilePage {
            profiles: self.profiles[start..end].to_vec(),
            next_marker: (end < self.profiles.len()).then(|| end.to_string()),
        })
    }
}

pub struct FakeSts {
    pub account_id: String,
    pub fail: Option<AwsError>,
    pub calls: std::sync::Arc<Calls>,
}

#[async_trait]
impl StsApi for FakeSts {
    async fn caller_identity(&self) -> Result<Identity, AwsError> {
        self.calls.caller_identity.fetch_add(1, Ordering::SeqCst);
        if let Some(err) = &self.fail {
            return Err(err.clone());
        }
        Ok(Identity {
            account_id: self.account_id.clone(),
            arn: format!("arn:aws:iam::{}:user/test", self.account_id),
        })
    }
}

/// A fake account, with every API sharing one call counter.
pub struct FakeAccount {
    pub ec2: FakeEc2,
    pub iam: FakeIam,
    pub cloudwatch: FakeCloudWatch,
    pub autoscaling: FakeAutoScaling,
    pub sts_fail: Option<AwsError>,
    pub calls: std::sync::Arc<Calls>,
}

impl FakeAccount {
    pub fn new(regions: &[&str]) -> Self {
        let calls = std::sync::Arc::new(Calls::default());
        FakeAccount {
            ec2: FakeEc2 {
                regions: regions
                    .iter()
                    .map(|r| RegionInfo {
                        name: (*r).to_owned(),
                        opt_in_status: Some("opt-in-not-required".into()),
                    })
                    .collect(),
                calls: calls.clone(),
                ..Default::default()
            },
            iam: FakeIam {
                calls: calls.clone(),
                ..Default::default()
            },
            cloudwatch: FakeCloudWatch::default(),
            autoscaling: FakeAutoScaling::default(),
            sts_fail: None,
            calls,
        }
    }

    pub fn into_apis(self) -> AccountApis {
        self.into_apis_as("111122223333")
    }

    /// The API set, answering `GetCallerIdentity` as `account_id`.
    pub fn into_apis_as(self, account_id: &str) -> AccountApis {
        let home = self
            .ec2
            .regions
            .first()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        AccountApis {
            sts: Box::new(FakeSts {
                account_id: account_id.into(),
                fail: self.sts_fail,
                calls: self.calls.clone(),
            }),
            ec2: Box::new(self.ec2),
            iam: Box::new(self.iam),
            cloudwatch: Box::new(self.cloudwatch),
            autoscaling: Box::new(self.autoscaling),
            cloudtrail: Box::new(FakeCloudTrail),
            home_region: home,
        }
    }
}

/// Makes an account's API set afresh each time one is asked for.
pub type MakeApis = Box<dyn Fn() -> AccountApis + Send + Sync>;

/// A fake organisation: the caller's account, the accounts a role reaches,
/// and what `ListAccounts` says. An account it does not know answers like
/// one whose role cannot be assumed (`AccessDenied` on its first call).
pub struct FakeProvider {
    pub caller: String,
    pub accounts: HashMap<String, MakeApis>,
    pub org: Result<Vec<String>, AwsError>,
    /// Every account a role was assumed in, in order.
    pub assumed: Mutex<Vec<String>>,
}

impl FakeProvider {
    pub fn new(caller: &str) -> FakeProvider {
        FakeProvider {
            caller: caller.into(),
            accounts: HashMap::new(),
            org: Ok(Vec::new()),
            assumed: Mutex::new(Vec::new()),
        }
    }

    pub fn with(mut self, account_id: &str, make: MakeApis) -> FakeProvider {
        self.accounts.insert(account_id.into(), make);
        self
    }

    fn apis(&self, account_id: &str) -> AccountApis {
        match self.accounts.get(account_id) {
            Some(make) => make(),
            None => {
                let mut a = FakeAccount::new(&[]);
                a.sts_fail = Some(AwsError::from_code(
                    super::Operation::AssumeRole,
                    Some("AccessDenied"),
                    Some("not authorized to perform: sts:AssumeRole"),
                    None,
                ));
                a.into_apis_as(account_id)
            }
        }
    }
}

#[async_trait]
impl super::AwsProvider for FakeProvider {
    fn own(&self) -> AccountApis {
        self.apis(&self.caller)
    }

    async fn assumed(&self, account_id: &str, _role: &super::RoleSettings) -> AccountApis {
        self.assumed.lock().unwrap().push(account_id.into());
        self.apis(account_id)
    }

    async fn organization_accounts(&self) -> Result<Vec<String>, AwsError> {
        self.org.clone()
    }
}

/// A quick instance for tests: `n` numbers its id, `tokens` its HttpTokens.
pub fn instance(n: usize, tokens: HttpTokens) -> Instance {
    Instance {
        instance_id: format!("i-{n:017x}"),
        state: InstanceState("running".into()),
        launch_time: Some("2026-01-01T00:00:00Z".into()),
        image_id: Some("ami-12345678".into()),
        metadata: MetadataOptions {
            http_tokens: Some(tokens),
            http_endpoint: Some(Toggle::Enabled),
            hop_limit: Some(1),
            instance_metadata_tags: Some(Toggle::Disabled),
            http_protocol_ipv6: Some(Toggle::Disabled),
            state: Some(crate::model::MetadataState::Applied),
        },
        instance_profile_arn: None,
        tags: Default::default(),
    }
}

/// A fake CloudWatch holding datapoints in memory; it buckets by the
/// request's period, pages results `page_size` series at a time, and counts calls.
#[derive(Default)]
pub struct FakeCloudWatch {
    points: Mutex<Vec<(String, crate::aws::Metric, i64, f64)>>,
    calls: AtomicUsize,
    max_queries: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Series per page; 0 means all in one page.
    pub page_size: AtomicUsize,
    pub fail: Option<AwsError>,
}

impl FakeCloudWatch {
    pub fn put(&self, instance: &str, metric: crate::aws::Metric, t: i64, v: f64) {
        self.points
            .lock()
            .unwrap()
            .push((instance.to_owned(), metric, t, v));
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn max_queries(&self) -> usize {
        self.max_queries.load(Ordering::SeqCst)
    }
    /// The most calls that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl crate::aws::CloudWatchApi for FakeCloudWatch {
    async fn get_metric_data(
        &self,
        _region: &str,
        request: &crate::aws::MetricRequest,
        next_token: Option<String>,
    ) -> Result<crate::aws::MetricPage, AwsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.max_queries
            .fetch_max(request.queries.len(), Ordering::SeqCst);
        // In flight across a few polls, so callers that can overlap do.
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        assert!(
            request.queries.len() <= 500,
            "CloudWatch rejects more than 500 queries"
        );
        let points = self.points.lock().unwrap();
        let period = i64::from(request.period);
        let all: Vec<crate::aws::MetricSeries> = request
            .queries
            .iter()
            .map(|q| {
                let mut buckets: std::collections::BTreeMap<i64, f64> = Default::default();
                for (i, m, t, v) in points.iter() {
                    if *i == q.instance_id
                        && *m == q.metric
                        && (request.start..request.end).contains(t)
                    {
                        let b = request.start + (t - request.start) / period * period;
                        *buckets.entry(b).or_default() += v;
                    }
                }
                crate::aws::MetricSeries {
                    id: q.id.clone(),
                    timestamps: buckets.keys().copied().collect(),
                    values: buckets.values().copied().collect(),
                }
            })
            .collect();
        let size = match self.page_size.load(Ordering::SeqCst) {
            0 => all.len().max(1),
            n => n,
        };
        let start: usize = next_token.map(|t| t.parse().unwrap()).unwrap_or(0);
        let end = (start + size).min(all.len());
        Ok(crate::aws::MetricPage {
            series: all[start..end].to_vec(),
            next_token: (end < all.len()).then(|| end.to_string()),
        })
    }
}
