//! Our narrow view of AWS: the few calls the engine makes, behind traits.
//!
//! The engine only ever sees [`Ec2Api`], [`IamApi`], [`StsApi`] and
//! [`CloudWatchApi`], which speak
//! our own `model` types. `sdk` implements them on the official AWS SDK for
//! Rust; tests implement them with in-memory fakes (see `fake`) so paging,
//! call counts and failures can be tested without a network. Each method is
//! one AWS request, so pagination (and therefore the number of calls) is
//! decided by the engine, where it can be tested.

pub mod error;
#[cfg(test)]
pub mod fake;
mod regional;
pub mod sdk;
mod sdk_error;
mod sdk_launch;
mod sdk_trail;
pub mod template_data;

use async_trait::async_trait;

pub use error::{AwsError, AwsErrorKind, Operation};

use crate::model::{
    HttpTokens, Identity, Instance, InstanceProfile, MetadataState, Options, RegionInfo, Toggle,
};

/// EC2's largest `DescribeInstances` page.
pub const PAGE_SIZE: i32 = 1000;

/// Follows a paginated listing to its end. `fetch` is one request: given the
/// previous page's token, it returns that page's items and the next token.
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), AwsError>>,
{
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = fetch(token).await?;
        out.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// A page's next token as our pages carry it: AWS ends a listing with no
/// token or, for some APIs, an empty one; both mean the last page.
fn page_token(token: Option<&str>) -> Option<String> {
    token.filter(|t| !t.is_empty()).map(str::to_owned)
}

/// Every instance matching `filters` in `region`, in pages of 1000, without
/// those terminated or on their way out (they are never acted on).
pub async fn live_instances(
    ec2: &dyn Ec2Api,
    region: &str,
    filters: &[Filter],
) -> Result<Vec<Instance>, AwsError> {
    let mut all = all_pages(|token| async move {
        let page = ec2
            .describe_instances(region, filters, PAGE_SIZE, token)
            .await?;
        Ok((page.instances, page.next_token))
    })
    .await?;
    all.retain(|i| !i.state.is_gone());
    Ok(all)
}

/// The partition a region belongs to, as ARNs spell it. Credentials of one
/// partition are useless in another, and ARNs must name the right one.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// One server-side `DescribeInstances` filter (`Name` and `Values`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// One page of `DescribeInstances`, flattened out of its reservations.
#[derive(Debug, Clone, Default)]
pub struct InstancePage {
    pub instances: Vec<Instance>,
    pub next_token: Option<String>,
}

/// One page of `ListInstanceProfiles`.
#[derive(Debug, Clone, Default)]
pub struct ProfilePage {
    pub profiles: Vec<InstanceProfile>,
    pub next_marker: Option<String>,
}

/// The EC2 calls we make. Regional: every call names its region.
#[async_trait]
pub trait Ec2Api: Send + Sync {
    /// Done with `region` for now: drop what is kept for it (see
    /// [`AccountApis::release_region`]). Calls there still work after.
    fn release_region(&self, _region: &str) {}

    /// `DescribeRegions` with `AllRegions=true`, sent to `region`.
    async fn describe_regions(&self, region: &str) -> Result<Vec<RegionInfo>, AwsError>;

    /// One page of `DescribeInstances`.
    async fn describe_instances(
        &self,
        region: &str,
        filters: &[Filter],
        max_results: i32,
        next_token: Option<String>,
    ) -> Result<InstancePage, AwsError>;

    /// One `ModifyInstanceMetadataOptions`, every field explicit, sent once
    /// (no SDK retries: the executor retries, paces and journals each attempt).
    /// With `dry_run`, EC2's `DryRunOperation` answer is a success.
    async fn modify_metadata_options(
        &self,
        region: &str,
        instance_id: &str,
        target: &Options,
        dry_run: bool,
    ) -> Result<ModifyOutcome, AwsError>;

    /// `GetInstanceMetadataDefaults` for the account in `region`.
    async fn metadata_defaults(&self, region: &str) -> Result<MetadataDefaults, AwsError>;

    /// One page of the `$Default` and `$Latest` versions of every launch
    /// template in `region` (`DescribeLaunchTemplateVersions` without ids).
    async fn template_versions(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<TemplatePage, AwsError>;

    /// Numbered versions of one template (`DescribeLaunchTemplateVersions`
    /// with its id): what a group pinned to an older version launches.
    async fn template_versions_of(
        &self,
        region: &str,
        template_id: &str,
        versions: &[i64],
    ) -> Result<Vec<TemplateVersion>, AwsError>;

    /// The versions of one template above `min_version` (one page of up
    /// to 200): where a resumed run looks for a version it made.
    async fn template_versions_since(
        &self,
        region: &str,
        template_id: &str,
        min_version: i64,
    ) -> Result<Vec<TemplateVersion>, AwsError>;

    /// `DescribeImages` of up to [`IMAGE_BATCH`] ids, as an `image-id`
    /// filter (ids that are gone or not visible are left out, not an error).
    async fn describe_images(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<ImageInfo>, AwsError>;

    /// A new version of `template_id` that copies `source_version`'s data
    /// field by field (never relying on `SourceVersion` inheritance) with
    /// `target`'s metadata options. Two requests: the source version's data
    /// (`DescribeLaunchTemplateVersions`), then `CreateLaunchTemplateVersion`
    /// with `client_token`, so a re-send after a lost answer creates nothing new.
    async fn create_template_version(
        &self,
        region: &str,
        template_id: &str,
        source_version: i64,
        target: &TemplateTarget,
        client_token: &str,
    ) -> Result<i64, AwsError>;

    /// `ModifyLaunchTemplate`: makes `version` the template's default.
    async fn set_default_version(
        &self,
        region: &str,
        template_id: &str,
        version: i64,
    ) -> Result<(), AwsError>;

    /// `CreateLaunchTemplate` named `name` from launch template data that
    /// the Auto Scaling side converted from a launch configuration.
    async fn create_template(
        &self,
        region: &str,
        name: &str,
        data: TemplateData,
        client_token: &str,
    ) -> Result<CreatedTemplate, AwsError>;

    /// `ModifyInstanceMetadataDefaults`: every field explicit, so the
    /// account default becomes exactly `target` (rollback sends the old one).
    async fn modify_metadata_defaults(
        &self,
        region: &str,
        target: &DefaultsTarget,
    ) -> Result<(), AwsError>;
}

/// Image ids per `DescribeImages` (EC2 caps a filter's values at 200).
pub const IMAGE_BATCH: usize = 200;

/// One AMI, as far as IMDS is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub image_id: String,
    /// `ImdsSupport=v2.0`: instances launched from it require tokens
    /// unless something above the AMI says otherwise.
    pub imds_v2: bool,
}

/// The metadata options a fixed launch template version gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateTarget {
    pub http_tokens: HttpTokens,
    /// `None` keeps the source version's hop limit (or its absence).
    pub hop_limit: Option<i32>,
    /// Shown in the console and by `describe-launch-template-versions`.
    pub description: String,
}

/// A template the Auto Scaling side made from a launch configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreatedTemplate {
    pub template_id: String,
    pub version: i64,
}

/// Launch template data converted by the SDK layer, opaque to the engine:
/// it passes from [`AutoScalingApi::configuration_data`] to
/// [`Ec2Api::create_template`] without being looked at (it holds user data,
/// which imdsguard never prints or stores).
pub struct TemplateData(pub Box<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for TemplateData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TemplateData(..)")
    }
}

/// A region's account default as `ModifyInstanceMetadataDefaults` takes it:
/// `None` is sent as `no-preference` (or hop limit -1), clearing the value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DefaultsTarget {
    pub http_tokens: Option<HttpTokens>,
    pub hop_limit: Option<i32>,
    pub http_endpoint: Option<Toggle>,
    pub instance_metadata_tags: Option<Toggle>,
    /// `HttpTokensEnforced`: `None` leaves it as it is (EC2 reads an
    /// omitted field as unchanged); rollback sends the old value.
    pub http_tokens_enforced: Option<Toggle>,
}

impl DefaultsTarget {
    /// "tokens required, hop 2, enforced".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "tokens {}",
            self.http_tokens.map_or("no-preference", HttpTokens::as_str)
        )];
        if let Some(h) = self.hop_limit {
            parts.push(format!("hop {h}"));
        }
        if let Some(e) = self.http_endpoint {
            parts.push(format!("endpoint {}", e.as_str()));
        }
        if self.http_tokens_enforced == Some(Toggle::Enabled) {
            parts.push("enforced".into());
        }
        parts.join(", ")
    }

    /// The values a region has now, as a target that restores them.
    pub fn restoring(d: &MetadataDefaults) -> DefaultsTarget {
        DefaultsTarget {
            http_tokens: d.http_tokens,
            hop_limit: d.hop_limit.filter(|h| *h > 0),
            http_endpoint: d.http_endpoint,
            instance_metadata_tags: d.instance_metadata_tags,
            http_tokens_enforced: Some(d.http_tokens_enforced.unwrap_or(Toggle::Disabled)),
        }
    }
}

/// A launch template as a group names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateRef {
    pub template_id: Option<String>,
    pub template_name: Option<String>,
    /// `$Default`, `$Latest` or a number; `None` means `$Default`.
    pub version: Option<String>,
}

/// How a group launches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum GroupLaunchSpec {
    Template {
        template: TemplateRef,
    },
    /// A mixed instances policy: its template, and the templates its
    /// overrides name (instance types launched from another template).
    Mixed {
        template: TemplateRef,
        overrides: Vec<TemplateRef>,
    },
    Configuration {
        name: String,
    },
    /// Nothing we know how to read.
    Unknown,
}

/// One Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoScalingGroup {
    pub name: String,
    pub arn: Option<String>,
    pub launch: GroupLaunchSpec,
    pub instance_ids: Vec<String>,
}

/// One page of `DescribeAutoScalingGroups`.
#[derive(Debug, Clone, Default)]
pub struct GroupPage {
    pub groups: Vec<AutoScalingGroup>,
    pub next_token: Option<String>,
}

/// One launch configuration, as far as IMDS is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchConfiguration {
    pub name: String,
    pub image_id: Option<String>,
    pub http_tokens: Option<HttpTokens>,
    pub http_endpoint: Option<Toggle>,
    pub hop_limit: Option<i32>,
}

/// One page of `DescribeLaunchConfigurations`.
#[derive(Debug, Clone, Default)]
pub struct ConfigurationPage {
    pub configurations: Vec<LaunchConfiguration>,
    pub next_token: Option<String>,
}

/// What `UpdateAutoScalingGroup` points a group at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum GroupTarget {
    Template {
        template_id: String,
        version: String,
    },
    Configuration {
        name: String,
    },
}

impl GroupTarget {
    pub fn describe(&self) -> String {
        match self {
            GroupTarget::Template {
                template_id,
                version,
            } => format!("{template_id} {version}"),
            GroupTarget::Configuration { name } => format!("launch configuration {name}"),
        }
    }
}

/// The Auto Scaling calls we make. Regional.
#[async_trait]
pub trait AutoScalingApi: Send + Sync {
    /// Done with `region` for now (see [`AccountApis::release_region`]).
    fn release_region(&self, _region: &str) {}

    /// One page of `DescribeAutoScalingGroups`.
    async fn describe_groups(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<GroupPage, AwsError>;

    /// One page of `DescribeLaunchConfigurations` (all of them: the names
    /// are few, and one listing costs less than a call per group).
    async fn describe_configurations(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<ConfigurationPage, AwsError>;

    /// The launch template data equivalent to launch configuration `name`,
    /// with `http_tokens` and `hop_limit` set (`DescribeLaunchConfigurations`
    /// by name, converted field by field).
    async fn configuration_data(
        &self,
        region: &str,
        name: &str,
        http_tokens: HttpTokens,
        hop_limit: Option<i32>,
    ) -> Result<TemplateData, AwsError>;

    /// `UpdateAutoScalingGroup`: launches from `target` from now on. No
    /// instance is replaced (that is an instance refresh, never started here).
    async fn update_group(
        &self,
        region: &str,
        name: &str,
        target: &GroupTarget,
    ) -> Result<(), AwsError>;
}

/// What `ModifyInstanceMetadataOptions` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyOutcome {
    /// `pending` or `applied`; `None` for a successful dry run.
    pub state: Option<MetadataState>,
    pub request_id: Option<String>,
}

/// Who manages a region's account-level IMDS defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManagedBy {
    /// The account itself (`ModifyInstanceMetadataDefaults`).
    Account,
    /// An Organizations declarative policy: the account cannot change them.
    DeclarativePolicy,
}

/// The account-level IMDS defaults of a region (`GetInstanceMetadataDefaults`).
/// `None` everywhere means no account-level preference (the AMI's or EC2's
/// default applies); values EC2 may add later also read as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MetadataDefaults {
    pub http_tokens: Option<HttpTokens>,
    /// `enabled` makes EC2 refuse any change back to `HttpTokens=optional`.
    pub http_tokens_enforced: Option<Toggle>,
    pub hop_limit: Option<i32>,
    pub http_endpoint: Option<Toggle>,
    pub instance_metadata_tags: Option<Toggle>,
    pub managed_by: Option<ManagedBy>,
}

/// One launch template version, as far as IMDS is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    pub template_id: String,
    pub template_name: Option<String>,
    pub version: i64,
    pub is_default: bool,
    /// `None` where the version leaves the option unset (then the AMI's or
    /// the account's default decides at launch).
    pub http_tokens: Option<HttpTokens>,
    pub http_endpoint: Option<Toggle>,
    pub hop_limit: Option<i32>,
    /// The AMI the version launches (`None` also for `resolve:ssm:` ids,
    /// which EC2 resolves only at launch).
    pub image_id: Option<String>,
    /// `VersionDescription`: how a resumed run recognises a version it made.
    pub description: Option<String>,
}

/// One page of `DescribeLaunchTemplateVersions`.
#[derive(Debug, Clone, Default)]
pub struct TemplatePage {
    pub versions: Vec<TemplateVersion>,
    pub next_token: Option<String>,
}

/// The IAM calls we make (IAM is global: one listing serves every region).
#[async_trait]
pub trait IamApi: Send + Sync {
    /// One page of `ListInstanceProfiles`.
    async fn list_instance_profiles(&self, marker: Option<String>)
    -> Result<ProfilePage, AwsError>;
}

/// The STS calls we make.
#[async_trait]
pub trait StsApi: Send + Sync {
    /// `GetCallerIdentity`: which account and principal our credentials are.
    async fn caller_identity(&self) -> Result<Identity, AwsError>;
}

/// The EC2 metrics we read, in namespace `AWS/EC2`, dimension `InstanceId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// IMDSv1 calls that were answered.
    MetadataNoToken,
    /// IMDSv1 calls that were refused because IMDSv2 is required.
    MetadataNoTokenRejected,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::MetadataNoToken => "MetadataNoToken",
            Metric::MetadataNoTokenRejected => "MetadataNoTokenRejected",
        }
    }
}

/// One `MetricDataQuery`: the `Sum` of one metric of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// Unique within the request; starts with a lowercase letter.
    pub id: String,
    pub metric: Metric,
    pub instance_id: String,
}

/// One `GetMetricData` request (before pagination).
#[derive(Debug, Clone)]
pub struct MetricRequest {
    pub queries: Vec<MetricQuery>,
    /// Epoch seconds, inclusive.
    pub start: i64,
    /// Epoch seconds, exclusive.
    pub end: i64,
    /// Seconds per datapoint.
    pub period: i32,
}

/// The datapoints of one query (timestamps in epoch seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSeries {
    pub id: String,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

/// One page of `GetMetricData`.
#[derive(Debug, Clone, Default)]
pub struct MetricPage {
    pub series: Vec<MetricSeries>,
    pub next_token: Option<String>,
}

/// The CloudWatch calls we make.
#[async_trait]
pub trait CloudWatchApi: Send + Sync {
    /// Done with `region` for now (see [`AccountApis::release_region`]).
    fn release_region(&self, _region: &str) {}

    /// One page of `GetMetricData` in `region`.
    async fn get_metric_data(
        &self,
        region: &str,
        request: &MetricRequest,
        next_token: Option<String>,
    ) -> Result<MetricPage, AwsError>;
}

/// How to reach accounts other than the caller's: a role assumed in each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSettings {
    pub role_name: String,
    pub external_id: Option<String>,
}

/// What is per organisation rather than per account: who the caller is,
/// which accounts the organisation has, and the API set of any account
/// (the caller's own with its credentials, the others through a role).
/// The SDK implements it ([`sdk::SdkProvider`]); tests use a fake, so
/// `--org`, `--accounts` and per-account failures are unit-tested.
#[async_trait]
pub trait AwsProvider: Send + Sync {
    /// The API set of the account the credentials belong to.
    fn own(&self) -> AccountApis;

    /// The API set of `account_id` through `role`. Nothing is called yet:
    /// a refusal to assume the role surfaces on the account's first call.
    async fn assumed(&self, account_id: &str, role: &RoleSettings) -> AccountApis;

    /// The ACTIVE accounts of the caller's organization
    /// (`organizations:ListAccounts`, paginated).
    async fn organization_accounts(&self) -> Result<Vec<String>, AwsError>;
}

/// One page of `ListObjectsV2`: keys, or with a delimiter the folders.
#[derive(Debug, Clone, Default)]
pub struct ObjectPage {
    pub keys: Vec<String>,
    /// The `CommonPrefixes` (folders), with a `/` delimiter.
    pub prefixes: Vec<String>,
    pub next_token: Option<String>,
}

/// The S3 calls `imdsguard trail` makes on a trail's bucket, with the
/// caller's own credentials, in the bucket's region.
#[async_trait]
pub trait ObjectApi: Send + Sync {
    /// One page of `ListObjectsV2` under `prefix` (`delimiter`: `/`).
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: bool,
        token: Option<String>,
    ) -> Result<ObjectPage, AwsError>;

    /// `GetObject`: the whole object.
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, AwsError>;
}

/// Where an Athena query stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryState {
    Running,
    Succeeded,
    /// Failed or cancelled, with Athena's reason.
    Failed(String),
}

/// One page of an Athena query's result rows (cells as text).
#[derive(Debug, Clone, Default)]
pub struct QueryPage {
    pub rows: Vec<Vec<Option<String>>>,
    pub next_token: Option<String>,
}

/// The Athena calls `imdsguard trail --athena-table` makes, with the
/// caller's own credentials, in the session's region.
#[async_trait]
pub trait AthenaApi: Send + Sync {
    /// `StartQueryExecution`: returns the execution id.
    async fn start_query(
        &self,
        sql: &str,
        output: &str,
        workgroup: Option<&str>,
    ) -> Result<String, AwsError>;

    /// `GetQueryExecution`'s state.
    async fn query_state(&self, id: &str) -> Result<QueryState, AwsError>;

    /// One page of `GetQueryResults` (the first page starts with the header row).
    async fn query_results(&self, id: &str, token: Option<String>) -> Result<QueryPage, AwsError>;
}

/// One page of CloudTrail `LookupEvents`: each event's record as CloudTrail
/// wrote it (the `CloudTrailEvent` JSON text).
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    pub events: Vec<String>,
    pub next_token: Option<String>,
}

/// The CloudTrail calls we make. Regional.
#[async_trait]
pub trait CloudTrailApi: Send + Sync {
    /// One page (up to 50) of `LookupEvents` between `start` and `end`
    /// (epoch seconds), management events only, unfiltered (CloudTrail
    /// filters on one attribute only: we filter here).
    async fn lookup_events(
        &self,
        region: &str,
        start: i64,
        end: i64,
        token: Option<String>,
    ) -> Result<EventPage, AwsError>;
}

/// The calls that deliver owner notices, made with the caller's own
/// credentials. Each method is one request, sent once (a re-run of
/// `notify` is the retry, guided by the notice journal).
#[async_trait]
pub trait NotifyApi: Send + Sync {
    /// One SNS `Publish` to `topic_arn` in `region` (the topic's), with the
    /// owner as the `owner` message attribute, so subscriptions can filter
    /// on it. Returns the message id.
    async fn publish(
        &self,
        region: &str,
        topic_arn: &str,
        subject: &str,
        message: &str,
        owner: &str,
    ) -> Result<String, AwsError>;

    /// One SES (v2) `SendEmail` of a plain-text message from `from` (a
    /// verified identity) to `to`. Returns the message id.
    async fn send_email(
        &self,
        from: &str,
        to: &str,
        subject: &str,
        text: &str,
    ) -> Result<String, AwsError>;
}

/// Everything the engine needs to talk to one account.
pub struct AccountApis {
    pub ec2: Box<dyn Ec2Api>,
    pub iam: Box<dyn IamApi>,
    pub sts: Box<dyn StsApi>,
    pub cloudwatch: Box<dyn CloudWatchApi>,
    pub autoscaling: Box<dyn AutoScalingApi>,
    pub cloudtrail: Box<dyn CloudTrailApi>,
    /// The region used for global and discovery calls (`DescribeRegions`).
    pub home_region: String,
}

impl AccountApis {
    /// Done with `region` of this account for now: the regional SDK
    /// clients kept for it are dropped (an organisation scan visits 17,000
    /// account-regions once each; keeping three clients for every one of
    /// them held most of a gigabyte). A later call makes a new client.
    pub fn release_region(&self, region: &str) {
        self.ec2.release_region(region);
        self.cloudwatch.release_region(region);
        self.autoscaling.release_region(region);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn partitions() {
        assert_eq!(super::partition("eu-west-1"), "aws");
        assert_eq!(super::partition("cn-north-1"), "aws-cn");
        assert_eq!(super::partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(super::partition("us-iso-east-1"), "aws-iso");
        assert_eq!(super::partition("us-isob-east-1"), "aws-iso-b");
    }
}
