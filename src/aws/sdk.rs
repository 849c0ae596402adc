//! The real AWS layer: our traits implemented on the official AWS SDK for Rust.
//!
//! Configuration comes from the SDK's own loader, so the whole default
//! credential chain works unchanged (environment, shared config and
//! credentials files, SSO, assume-role profiles, web identity, container and
//! instance roles), as do `AWS_ENDPOINT_URL` and `AWS_MAX_ATTEMPTS`. Retries
//! are the SDK's (one retry budget, in one place); we only expose its knobs.

use async_trait::async_trait;
use aws_config::imds::client::error::ImdsError;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::operation::RequestId;

use super::error::Operation;
use super::regional::PerRegion;
use super::sdk_error::{convert, error_chain};
use super::{
    AccountApis, AwsError, AwsErrorKind, CloudWatchApi, Ec2Api, Filter, IamApi, InstancePage,
    MetadataDefaults, MetricPage, MetricRequest, MetricSeries, ModifyOutcome, ProfilePage, StsApi,
    TemplatePage, TemplateVersion,
};
use crate::model::{
    HttpTokens, Identity, Instance, InstanceProfile, InstanceState, MetadataOptions, MetadataState,
    Options, RegionInfo, Toggle,
};

/// How the SDK retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    Standard,
    Adaptive,
}

/// Everything that shapes how we reach AWS, from flags and environment.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// Region for discovery and global calls when the environment names none.
    pub fallback_region: Option<String>,
    pub max_attempts: Option<u32>,
    pub retry_mode: Option<RetryMode>,
}

/// Loads the SDK configuration and proves credentials can be found, so that
/// "no credentials" is one clear error up front instead of one per region.
async fn load_config(opts: &SessionOptions) -> Result<SdkConfig, AwsError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if opts.max_attempts.is_some() || opts.retry_mode.is_some() {
        let mut retry = match opts.retry_mode {
            Some(RetryMode::Adaptive) => RetryConfig::adaptive(),
            _ => RetryConfig::standard(),
        };
        if let Some(n) = opts.max_attempts {
            retry = retry.with_max_attempts(n);
        }
        loader = loader.retry_config(retry);
    }
    // A stuck connection must not hang a scan forever. Two minutes per
    // attempt leaves room for GetMetricData's slowest large answers.
    loader = loader.timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .operation_attempt_timeout(std::time::Duration::from_secs(120))
            .build(),
    );
    let mut config = loader.http_client(shared_http_client()).load().await;
    if config.region().is_none() {
        let fallback = opts
            .fallback_region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_owned());
        config = config
            .into_builder()
            .region(aws_config::Region::new(fallback))
            .build();
    }
    check_credentials(&config, opts.profile.as_deref()).await?;
    Ok(config)
}

/// One HTTP client (one connection pool, one load of the trusted roots) for
/// every service, region and account of the run. Without it each SDK client
/// builds its own: an organisation scan made 3 per account and region, 50,000
/// pools holding a connection each (the process ran out of file descriptors)
/// and 2.3 GB of memory. Built as the SDK builds its default one: rustls
/// with aws-lc, and the proxy from `HTTPS_PROXY`/`NO_PROXY`.
fn shared_http_client() -> aws_sdk_sts::config::SharedHttpClient {
    use aws_smithy_http_client::{ConnectorBuilder, proxy::ProxyConfig, tls};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    })
}

async fn check_credentials(config: &SdkConfig, profile: Option<&str>) -> Result<(), AwsError> {
    let Some(provider) = config.credentials_provider() else {
        return Err(AwsError::local(
            Operation::Credentials,
            AwsErrorKind::NoCredentials,
            "no credentials provider is configured",
        ));
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(err) => {
            let profile = profile
                .map(str::to_owned)
                .or_else(|| std::env::var("AWS_PROFILE").ok());
            Err(credentials_failure(&err, profile.as_deref()))
        }
    }
}

/// Our error for a failed lookup of the default chain's credentials.
///
/// "Found nothing" is `NoCredentials`, whatever shape it takes: every source
/// declined (`CredentialsNotLoaded`), or the chain's last source, instance
/// metadata, failed. The SDK gives up on IMDS quietly only when it cannot
/// connect; an endpoint that answers (403 to the token request where IMDS is
/// blocked or disabled, 403/5xx on the role, a read that times out) ends the
/// chain with a `ProviderError` instead. Either way no credentials exist, so
/// "check the access key" would send the user after a key they do not have.
fn credentials_failure(err: &CredentialsError, profile: Option<&str>) -> AwsError {
    const OP: Operation = Operation::Credentials;
    let imds = imds_failure(err);
    if matches!(err, CredentialsError::CredentialsNotLoaded(_)) || imds.is_some() {
        let mut message = match profile {
            Some(p) => format!(
                "profile `{p}` yields no credentials (is it defined in ~/.aws/config or ~/.aws/credentials?)"
            ),
            None => "tried environment variables, the shared config and credentials files (profiles, SSO), web identity, the container endpoint and instance metadata".into(),
        };
        if let Some(why) = imds {
            message.push_str("; instance metadata ");
            message.push_str(&why);
        }
        return AwsError::local(OP, AwsErrorKind::NoCredentials, message);
    }
    // A source that exists but failed: its messages never contain secret
    // material; they say which source failed and why (e.g. an SSO token
    // that expired).
    let text = error_chain(err);
    let kind = if text.to_ascii_lowercase().contains("expired") {
        AwsErrorKind::ExpiredToken
    } else {
        AwsErrorKind::BadCredentials
    };
    AwsError::local(OP, kind, text)
}

/// What instance metadata did, if an IMDS failure is among `err`'s causes.
/// Worded here rather than with the SDK's `Display`: an error response's
/// prints the whole raw HTTP response, headers and body.
fn imds_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(imds) = e.downcast_ref::<ImdsError>() {
            return Some(match imds {
                ImdsError::FailedToLoadToken(_) => {
                    format!("gave no session token: {}", root_cause(imds))
                }
                ImdsError::ErrorResponse(r) => {
                    format!("answered HTTP {}", r.response().status().as_u16())
                }
                _ => format!("could not be read: {}", root_cause(imds)),
            });
        }
        cause = e.source();
    }
    None
}

/// The innermost cause of an error, as text (the one that says what happened).
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// The region the configuration resolved to (flags, environment or profile).
pub fn home_region(config: &SdkConfig) -> String {
    config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_owned())
}

/// A configuration whose credentials come from assuming `role_name` in
/// `account_id` with the base credentials (refreshed by the SDK as needed).
/// Nothing is called yet: a refusal surfaces on the account's first call.
async fn assume_role_config(
    base: &SdkConfig,
    account_id: &str,
    role_name: &str,
    external_id: Option<&str>,
) -> SdkConfig {
    let arn = format!(
        "arn:{}:iam::{account_id}:role/{role_name}",
        super::partition(&home_region(base))
    );
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(arn)
        .session_name("imdsguard")
        .configure(base);
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    let provider = OncePerAccount {
        assume: builder.build().await,
        held: tokio::sync::Mutex::new(None),
    };
    base.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// The role's credentials, held for every client of the account. Each SDK
/// client caches identities in its own partition, so with a client per
/// service and region an organisation scan assumed every role about 15
/// times (15,487 `AssumeRole` calls for 995 accounts). Here one assumption
/// serves them all until 5 minutes before it expires; clients asking at the
/// same time wait for the one call in flight. A refusal is not held: the
/// next ask tries again.
#[derive(Debug)]
struct OncePerAccount {
    assume: aws_config::sts::AssumeRoleProvider,
    held: tokio::sync::Mutex<Option<aws_credential_types::Credentials>>,
}

impl ProvideCredentials for OncePerAccount {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let mut held = self.held.lock().await;
            let margin = std::time::Duration::from_secs(300);
            if let Some(c) = held.as_ref()
                && c.expiry()
                    .is_none_or(|t| t > std::time::SystemTime::now() + margin)
            {
                return Ok(c.clone());
            }
            let fresh = self.assume.provide_credentials().await?;
            *held = Some(fresh.clone());
            Ok(fresh)
        })
    }
}

/// The ACTIVE accounts of the organization the base credentials belong to
/// (`organizations:ListAccounts`, paginated).
async fn organization_accounts(base: &SdkConfig) -> Result<Vec<String>, AwsError> {
    let client = aws_sdk_organizations::Client::new(base);
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_accounts()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| convert(Operation::ListAccounts, e))?;
        for a in page.accounts() {
            // `State` replaces the retired `Status`; read it first and fall
            // back to `Status` for older answers.
            #[allow(deprecated)]
            let active = match (a.state(), a.status()) {
                (Some(state), _) => state.as_str() == "ACTIVE",
                (None, Some(status)) => status.as_str() == "ACTIVE",
                (None, None) => true,
            };
            if let (true, Some(id)) = (active, a.id()) {
                out.push(id.to_owned());
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// The SDK's view of an organisation: one base configuration (the default
/// credential chain), and an assumed-role configuration per other account.
pub struct SdkProvider {
    base: SdkConfig,
}

impl SdkProvider {
    /// Loads the configuration and proves credentials can be found.
    pub async fn load(opts: &SessionOptions) -> Result<SdkProvider, AwsError> {
        Ok(SdkProvider {
            base: load_config(opts).await?,
        })
    }
}

impl SdkProvider {
    /// S3 in `region` (the trail bucket's), with the caller's own
    /// credentials. Path-style addressing when an endpoint is set (local
    /// emulators), virtual-hosted otherwise, as S3 prefers.
    pub fn objects(&self, region: Option<&str>) -> Box<dyn super::ObjectApi> {
        let region = region.map_or_else(|| home_region(&self.base), str::to_owned);
        let conf = aws_sdk_s3::config::Builder::from(&self.base)
            .region(aws_config::Region::new(region))
            .force_path_style(self.base.endpoint_url().is_some())
            .build();
        Box::new(SdkObjects(aws_sdk_s3::Client::from_conf(conf)))
    }

    /// Athena in the session's region, with the caller's own credentials.
    pub fn athena(&self) -> Box<dyn super::AthenaApi> {
        Box::new(super::sdk_trail::SdkAthena(aws_sdk_athena::Client::new(
            &self.base,
        )))
    }

    /// The notice calls, with the caller's own credentials; SES in the
    /// configured region, SNS in each topic's.
    pub fn notifier(&self) -> Box<dyn super::NotifyApi> {
        Box::new(SdkNotifier {
            base: self.base.clone(),
            sesv2: aws_sdk_sesv2::Client::new(&self.base),
        })
    }
}

struct SdkObjects(aws_sdk_s3::Client);

#[async_trait]
impl super::ObjectApi for SdkObjects {
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: bool,
        token: Option<String>,
    ) -> Result<super::ObjectPage, AwsError> {
        let out = self
            .0
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.then(|| "/".to_owned()))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| convert(Operation::S3ListBucket, e))?;
        Ok(super::ObjectPage {
            keys: out
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect(),
            prefixes: out
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned))
                .collect(),
            next_token: super::page_token(out.next_continuation_token()),
        })
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, AwsError> {
        let out = self
            .0
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| convert(Operation::S3GetObject, e))?;
        let body = out.body.collect().await.map_err(|e| {
            AwsError::local(Operation::S3GetObject, AwsErrorKind::Network, e.to_string())
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

struct SdkNotifier {
    base: SdkConfig,
    sesv2: aws_sdk_sesv2::Client,
}

#[async_trait]
impl super::NotifyApi for SdkNotifier {
    async fn publish(
        &self,
        region: &str,
        topic_arn: &str,
        subject: &str,
        message: &str,
        owner: &str,
    ) -> Result<String, AwsError> {
        use aws_sdk_sns::types::MessageAttributeValue;
        let config = aws_sdk_sns::config::Builder::from(&self.base)
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        let owner = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(owner)
            .build()
            .map_err(|e| {
                AwsError::local(Operation::SnsPublish, AwsErrorKind::Other, e.to_string())
            })?;
        let out = aws_sdk_sns::Client::from_conf(config)
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message)
            .message_attributes("owner", owner)
            .send()
            .await
            .map_err(|e| convert(Operation::SnsPublish, e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    async fn send_email(
        &self,
        from: &str,
        to: &str,
        subject: &str,
        text: &str,
    ) -> Result<String, AwsError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| {
                    AwsError::local(Operation::SesSendEmail, AwsErrorKind::Other, e.to_string())
                })
        };
        let message = Message::builder()
            .subject(content(subject)?)
            .body(Body::builder().text(content(text)?).build())
            .build();
        let out = self
            .sesv2
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| convert(Operation::SesSendEmail, e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

#[async_trait]
impl super::AwsProvider for SdkProvider {
    fn own(&self) -> AccountApis {
        account_apis(&self.base)
    }

    async fn assumed(&self, account_id: &str, role: &super::RoleSettings) -> AccountApis {
        let config = assume_role_config(
            &self.base,
            account_id,
            &role.role_name,
            role.external_id.as_deref(),
        )
        .await;
        account_apis(&config)
    }

    async fn organization_accounts(&self) -> Result<Vec<String>, AwsError> {
        organization_accounts(&self.base).await
    }
}

/// Builds the API set for the account the configuration's credentials belong to.
fn account_apis(config: &SdkConfig) -> AccountApis {
    AccountApis {
        ec2: Box::new(SdkEc2::new(config.clone())),
        iam: Box::new(SdkIam(aws_sdk_iam::Client::new(config))),
        sts: Box::new(SdkSts(aws_sdk_sts::Client::new(config))),
        cloudwatch: Box::new(SdkCloudWatch::new(config.clone())),
        autoscaling: Box::new(super::sdk_launch::SdkAutoScaling::new(config.clone())),
        cloudtrail: Box::new(super::sdk_trail::SdkCloudTrail::new(config.clone())),
        home_region: home_region(config),
    }
}

/// EC2, with one SDK client per region, made on first use and shared
/// (clients are cheap handles over one HTTP connection pool).
pub struct SdkEc2 {
    config: SdkConfig,
    clients: PerRegion<aws_sdk_ec2::Client>,
    /// Clients for mutating calls: SDK retries off, because the executor
    /// owns the retry budget and journals every attempt.
    once_clients: PerRegion<aws_sdk_ec2::Client>,
}

impl SdkEc2 {
    pub fn new(config: SdkConfig) -> Self {
        SdkEc2 {
            config,
            clients: PerRegion::new(),
            once_clients: PerRegion::new(),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_ec2::Client {
        self.clients
            .get(region, |r| Self::make(&self.config, r, false))
    }

    fn once_client(&self, region: &str) -> aws_sdk_ec2::Client {
        self.once_clients
            .get(region, |r| Self::make(&self.config, r, true))
    }

    fn make(config: &SdkConfig, region: aws_config::Region, no_retry: bool) -> aws_sdk_ec2::Client {
        let mut conf = aws_sdk_ec2::config::Builder::from(config).region(region);
        if no_retry {
            conf = conf.retry_config(RetryConfig::disabled());
        }
        aws_sdk_ec2::Client::from_conf(conf.build())
    }
}

#[async_trait]
impl Ec2Api for SdkEc2 {
    fn release_region(&self, region: &str) {
        self.clients.release(region);
        self.once_clients.release(region);
    }

    async fn describe_regions(&self, region: &str) -> Result<Vec<RegionInfo>, AwsError> {
        let out = self
            .client(region)
            .describe_regions()
            .all_regions(true)
            .send()
            .await
            .map_err(|e| convert(Operation::DescribeRegions, e))?;
        Ok(out
            .regions()
            .iter()
            .filter_map(|r| {
                Some(RegionInfo {
                    name: r.region_name()?.to_owned(),
                    opt_in_status: r.opt_in_status().map(str::to_owned),
                })
            })
            .collect())
    }

    async fn describe_instances(
        &self,
        region: &str,
        filters: &[Filter],
        max_results: i32,
        next_token: Option<String>,
    ) -> Result<InstancePage, AwsError> {
        let filters = filters
            .iter()
            .map(|f| {
                aws_sdk_ec2::types::Filter::builder()
                    .name(&f.name)
                    .set_values(Some(f.values.clone()))
                    .build()
            })
            .collect::<Vec<_>>();
        let out = self
            .client(region)
            .describe_instances()
            .max_results(max_results)
            .set_filters((!filters.is_empty()).then_some(filters))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| convert(Operation::DescribeInstances, e))?;
        let instances = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(convert_instance)
            .collect();
        Ok(InstancePage {
            instances,
            next_token: super::page_token(out.next_token()),
        })
    }

    async fn modify_metadata_options(
        &self,
        region: &str,
        instance_id: &str,
        target: &Options,
        dry_run: bool,
    ) -> Result<ModifyOutcome, AwsError> {
        use aws_sdk_ec2::types::{
            InstanceMetadataEndpointState, InstanceMetadataProtocolState, InstanceMetadataTagsState,
        };
        let result = self
            .once_client(region)
            .modify_instance_metadata_options()
            .instance_id(instance_id)
            .http_tokens(tokens_state(target.http_tokens))
            .http_endpoint(InstanceMetadataEndpointState::from(
                target.http_endpoint.as_str(),
            ))
            .http_put_response_hop_limit(target.hop_limit)
            .instance_metadata_tags(InstanceMetadataTagsState::from(
                target.instance_metadata_tags.as_str(),
            ))
            .http_protocol_ipv6(InstanceMetadataProtocolState::from(
                target.http_protocol_ipv6.as_str(),
            ))
            .dry_run(dry_run)
            .send()
            .await;
        match result {
            Ok(out) => Ok(ModifyOutcome {
                state: out
                    .instance_metadata_options()
                    .and_then(|m| m.state())
                    .and_then(|s| metadata_state(s.as_str())),
                request_id: out.request_id().map(str::to_owned),
            }),
            Err(e) if dry_run && e.code() == Some("DryRunOperation") => Ok(ModifyOutcome {
                state: None,
                request_id: e.meta().request_id().map(str::to_owned),
            }),
            Err(e) => Err(convert(Operation::ModifyInstanceMetadataOptions, e)),
        }
    }

    async fn template_versions(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<TemplatePage, AwsError> {
        let out = self
            .client(region)
            .describe_launch_template_versions()
            .versions("$Default")
            .versions("$Latest")
            .max_results(200)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| convert(Operation::DescribeLaunchTemplateVersions, e))?;
        let versions = out
            .launch_template_versions()
            .iter()
            .filter_map(super::sdk_launch::version)
            .collect();
        Ok(TemplatePage {
            versions,
            next_token: super::page_token(out.next_token()),
        })
    }

    async fn metadata_defaults(&self, region: &str) -> Result<MetadataDefaults, AwsError> {
        let out = self
            .client(region)
            .get_instance_metadata_defaults()
            .send()
            .await
            .map_err(|e| convert(Operation::GetInstanceMetadataDefaults, e))?;
        let level = out.account_level();
        Ok(MetadataDefaults {
            http_tokens: level
                .and_then(|l| l.http_tokens())
                .and_then(|t| tokens(t.as_str())),
            http_tokens_enforced: level
                .and_then(|l| l.http_tokens_enforced())
                .and_then(|t| toggle(t.as_str())),
            hop_limit: level.and_then(|l| l.http_put_response_hop_limit()),
            http_endpoint: level
                .and_then(|l| l.http_endpoint())
                .and_then(|t| toggle(t.as_str())),
            instance_metadata_tags: level
                .and_then(|l| l.instance_metadata_tags())
                .and_then(|t| toggle(t.as_str())),
            managed_by: level
                .and_then(|l| l.managed_by())
                .and_then(|m| match m.as_str() {
                    "account" => Some(super::ManagedBy::Account),
                    "declarative-policy" => Some(super::ManagedBy::DeclarativePolicy),
                    _ => None,
                }),
        })
    }

    async fn template_versions_of(
        &self,
        region: &str,
        template_id: &str,
        versions: &[i64],
    ) -> Result<Vec<TemplateVersion>, AwsError> {
        super::sdk_launch::versions_of(&self.client(region), template_id, versions).await
    }

    async fn template_versions_since(
        &self,
        region: &str,
        template_id: &str,
        min_version: i64,
    ) -> Result<Vec<TemplateVersion>, AwsError> {
        super::sdk_launch::versions_since(&self.client(region), template_id, min_version).await
    }

    async fn describe_images(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<super::ImageInfo>, AwsError> {
        super::sdk_launch::describe_images(&self.client(region), ids).await
    }

    async fn create_template_version(
        &self,
        region: &str,
        template_id: &str,
        source_version: i64,
        target: &super::TemplateTarget,
        client_token: &str,
    ) -> Result<i64, AwsError> {
        super::sdk_launch::create_version(
            &self.client(region),
            template_id,
            source_version,
            target,
            client_token,
        )
        .await
    }

    async fn set_default_version(
        &self,
        region: &str,
        template_id: &str,
        version: i64,
    ) -> Result<(), AwsError> {
        super::sdk_launch::set_default(&self.client(region), template_id, version).await
    }

    async fn create_template(
        &self,
        region: &str,
        name: &str,
        data: super::TemplateData,
        client_token: &str,
    ) -> Result<super::CreatedTemplate, AwsError> {
        super::sdk_launch::create_template(&self.client(region), name, data, client_token).await
    }

    async fn modify_metadata_defaults(
        &self,
        region: &str,
        target: &super::DefaultsTarget,
    ) -> Result<(), AwsError> {
        super::sdk_launch::modify_defaults(&self.client(region), target).await
    }
}

fn tokens_state(t: HttpTokens) -> aws_sdk_ec2::types::HttpTokensState {
    aws_sdk_ec2::types::HttpTokensState::from(t.as_str())
}

fn convert_instance(i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
    let md = i.metadata_options();
    Some(Instance {
        instance_id: i.instance_id()?.to_owned(),
        state: InstanceState(
            i.state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_else(|| "unknown".to_owned()),
        ),
        launch_time: i
            .launch_time()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        image_id: i.image_id().map(str::to_owned),
        metadata: MetadataOptions {
            http_tokens: md
                .and_then(|m| m.http_tokens())
                .and_then(|t| tokens(t.as_str())),
            http_endpoint: md
                .and_then(|m| m.http_endpoint())
                .and_then(|t| toggle(t.as_str())),
            hop_limit: md.and_then(|m| m.http_put_response_hop_limit()),
            instance_metadata_tags: md
                .and_then(|m| m.instance_metadata_tags())
                .and_then(|t| toggle(t.as_str())),
            http_protocol_ipv6: md
                .and_then(|m| m.http_protocol_ipv6())
                .and_then(|t| toggle(t.as_str())),
            state: md
                .and_then(|m| m.state())
                .and_then(|s| metadata_state(s.as_str())),
        },
        instance_profile_arn: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_owned),
        tags: i
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
            .collect(),
    })
}

/// `HttpTokens` as EC2 spells it; anything else (`no-preference`, a value
/// added later) is no value.
fn tokens(s: &str) -> Option<HttpTokens> {
    HttpTokens::from_api(s)
}

fn metadata_state(s: &str) -> Option<MetadataState> {
    match s {
        "pending" => Some(MetadataState::Pending),
        "applied" => Some(MetadataState::Applied),
        _ => None,
    }
}

fn toggle(s: &str) -> Option<Toggle> {
    Toggle::from_api(s)
}

pub struct SdkIam(aws_sdk_iam::Client);

#[async_trait]
impl IamApi for SdkIam {
    async fn list_instance_profiles(
        &self,
        marker: Option<String>,
    ) -> Result<ProfilePage, AwsError> {
        let out = self
            .0
            .list_instance_profiles()
            .set_marker(marker)
            .max_items(1000)
            .send()
            .await
            .map_err(|e| convert(Operation::ListInstanceProfiles, e))?;
        let profiles = out
            .instance_profiles()
            .iter()
            .map(|p| InstanceProfile {
                arn: p.arn().to_owned(),
                name: p.instance_profile_name().to_owned(),
                role_names: p.roles().iter().map(|r| r.role_name().to_owned()).collect(),
            })
            .collect();
        Ok(ProfilePage {
            profiles,
            next_marker: if out.is_truncated() {
                out.marker().map(str::to_owned)
            } else {
                None
            },
        })
    }
}

pub struct SdkSts(aws_sdk_sts::Client);

#[async_trait]
impl StsApi for SdkSts {
    async fn caller_identity(&self) -> Result<Identity, AwsError> {
        let out = self
            .0
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| convert(Operation::GetCallerIdentity, e))?;
        Ok(Identity {
            account_id: out.account().unwrap_or_default().to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
        })
    }
}

/// CloudWatch, with one client per region (metrics are regional).
pub struct SdkCloudWatch {
    config: SdkConfig,
    clients: PerRegion<aws_sdk_cloudwatch::Client>,
}

impl SdkCloudWatch {
    pub fn new(config: SdkConfig) -> Self {
        SdkCloudWatch {
            config,
            clients: PerRegion::new(),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        self.clients.get(region, |r| {
            let conf = aws_sdk_cloudwatch::config::Builder::from(&self.config)
                .region(r)
                .build();
            aws_sdk_cloudwatch::Client::from_conf(conf)
        })
    }
}

#[async_trait]
impl CloudWatchApi for SdkCloudWatch {
    fn release_region(&self, region: &str) {
        self.clients.release(region);
    }

    async fn get_metric_data(
        &self,
        region: &str,
        request: &MetricRequest,
        next_token: Option<String>,
    ) -> Result<MetricPage, AwsError> {
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
        let queries = request
            .queries
            .iter()
            .map(|q| {
                MetricDataQuery::builder()
                    .id(&q.id)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace("AWS/EC2")
                                    .metric_name(q.metric.name())
                                    .dimensions(
                                        Dimension::builder()
                                            .name("InstanceId")
                                            .value(&q.instance_id)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .period(request.period)
                            .stat("Sum")
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect();
        let out = self
            .client(region)
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(aws_smithy_types::DateTime::from_secs(request.start))
            .end_time(aws_smithy_types::DateTime::from_secs(request.end))
            .scan_by(ScanBy::TimestampAscending)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| convert(Operation::GetMetricData, e))?;
        Ok(MetricPage {
            series: out
                .metric_data_results()
                .iter()
                .map(|r| MetricSeries {
                    id: r.id().unwrap_or_default().to_owned(),
                    timestamps: r.timestamps().iter().map(|t| t.secs()).collect(),
                    values: r.values().to_vec(),
                })
                .collect(),
            next_token: super::page_token(out.next_token()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A loopback HTTP server answering 403 to every request, like an
    /// instance metadata endpoint that is blocked or disabled. Returns its
    /// URL; the thread lives as long as the test binary.
    fn forbidding_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        url
    }

    #[test]
    fn chain_that_found_nothing_is_no_credentials() {
        let err = CredentialsError::not_loaded("no providers in chain provided credentials");
        let e = credentials_failure(&err, None);
        assert_eq!(e.kind, AwsErrorKind::NoCredentials);
        assert!(e.to_string().starts_with("no AWS credentials found: tried"));
        assert!(e.hint().contains("aws configure"), "{}", e.hint());
        assert!(e.hint().contains("AWS_ACCESS_KEY_ID"));
        assert!(e.hint().contains("aws sso login --profile"));
        assert!(e.hint().contains("scripts/demo"));

        let e = credentials_failure(&err, Some("nosuch"));
        assert_eq!(e.kind, AwsErrorKind::NoCredentials);
        assert!(
            e.to_string()
                .contains("profile `nosuch` yields no credentials")
        );
    }

    /// The shape the SDK really produces when IMDS answers 403 to the token
    /// request: the IMDS provider's `ProviderError` around `ImdsError`
    /// (not `CredentialsNotLoaded`), which ends the default chain.
    #[tokio::test]
    async fn imds_answering_403_is_no_credentials_not_rejected() {
        let client = aws_config::imds::Client::builder()
            .endpoint(forbidding_server())
            .unwrap()
            .build();
        let imds = client
            .get("/latest/meta-data/iam/security-credentials/")
            .await
            .unwrap_err();
        assert!(matches!(imds, ImdsError::FailedToLoadToken(_)), "{imds:?}");
        let err = CredentialsError::provider_error(imds);
        let e = credentials_failure(&err, None);
        assert_eq!(e.kind, AwsErrorKind::NoCredentials, "{e}");
        let line = e.to_string();
        assert!(line.starts_with("no AWS credentials found: "), "{line}");
        assert!(
            line.contains("instance metadata gave no session token: request forbidden"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_source_that_failed_is_rejected_or_expired() {
        let err = CredentialsError::provider_error("the SSO session token has expired");
        assert_eq!(
            credentials_failure(&err, Some("sso")).kind,
            AwsErrorKind::ExpiredToken
        );
        let err = CredentialsError::invalid_configuration("profile `x` has no role_arn");
        assert_eq!(
            credentials_failure(&err, None).kind,
            AwsErrorKind::BadCredentials
        );
    }
}
