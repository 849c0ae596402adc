//! The SDK side of launch paths: AMIs, launch template versions, account
//! defaults (EC2) and Auto Scaling groups and launch configurations. Kept
//! apart from `sdk.rs` because it is its own subject; the `Ec2Api` impl
//! there delegates here.

use async_trait::async_trait;
use aws_config::SdkConfig;

use super::error::Operation;
use super::regional::PerRegion;
use super::sdk_error::convert;
use super::template_data;
use super::{
    AutoScalingApi, AutoScalingGroup, AwsError, AwsErrorKind, ConfigurationPage, CreatedTemplate,
    DefaultsTarget, GroupLaunchSpec, GroupPage, GroupTarget, ImageInfo, LaunchConfiguration,
    TemplateData, TemplateRef, TemplateTarget, TemplateVersion,
};
use crate::model::{HttpTokens, Toggle};

fn tokens(s: &str) -> Option<HttpTokens> {
    HttpTokens::from_api(s)
}

fn toggle(s: &str) -> Option<Toggle> {
    Toggle::from_api(s)
}

/// One launch template version, converted.
pub(super) fn version(v: &aws_sdk_ec2::types::LaunchTemplateVersion) -> Option<TemplateVersion> {
    let data = v.launch_template_data();
    let md = data.and_then(|d| d.metadata_options());
    Some(TemplateVersion {
        template_id: v.launch_template_id()?.to_owned(),
        template_name: v.launch_template_name().map(str::to_owned),
        version: v.version_number()?,
        is_default: v.default_version().unwrap_or(false),
        http_tokens: md
            .and_then(|m| m.http_tokens())
            .and_then(|t| tokens(t.as_str())),
        http_endpoint: md
            .and_then(|m| m.http_endpoint())
            .and_then(|t| toggle(t.as_str())),
        hop_limit: md.and_then(|m| m.http_put_response_hop_limit()),
        image_id: data
            .and_then(|d| d.image_id())
            .filter(|id| id.starts_with("ami-"))
            .map(str::to_owned),
        description: v.version_description().map(str::to_owned),
    })
}

pub(super) async fn versions_since(
    client: &aws_sdk_ec2::Client,
    template_id: &str,
    min_version: i64,
) -> Result<Vec<TemplateVersion>, AwsError> {
    let out = client
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .min_version(min_version.to_string())
        .max_results(200)
        .send()
        .await
        .map_err(|e| convert(Operation::DescribeLaunchTemplateVersions, e))?;
    Ok(out
        .launch_template_versions()
        .iter()
        .filter_map(version)
        .filter(|v| v.version >= min_version)
        .collect())
}

pub(super) async fn versions_of(
    client: &aws_sdk_ec2::Client,
    template_id: &str,
    versions: &[i64],
) -> Result<Vec<TemplateVersion>, AwsError> {
    let out = client
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .set_versions(Some(versions.iter().map(i64::to_string).collect()))
        .send()
        .await
        .map_err(|e| convert(Operation::DescribeLaunchTemplateVersions, e))?;
    Ok(out
        .launch_template_versions()
        .iter()
        .filter_map(version)
        .collect())
}

pub(super) async fn describe_images(
    client: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<Vec<ImageInfo>, AwsError> {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("image-id")
        .set_values(Some(ids.to_vec()))
        .build();
    let out = client
        .describe_images()
        .filters(filter)
        .include_deprecated(true)
        .send()
        .await
        .map_err(|e| convert(Operation::DescribeImages, e))?;
    Ok(out
        .images()
        .iter()
        .filter_map(|i| {
            Some(ImageInfo {
                image_id: i.image_id()?.to_owned(),
                imds_v2: i.imds_support().is_some_and(|s| s.as_str() == "v2.0"),
            })
        })
        .collect())
}

pub(super) async fn create_version(
    client: &aws_sdk_ec2::Client,
    template_id: &str,
    source_version: i64,
    target: &TemplateTarget,
    client_token: &str,
) -> Result<i64, AwsError> {
    use aws_sdk_ec2::types::{
        LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataEndpointState,
        LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceMetadataProtocolIpv6,
        LaunchTemplateInstanceMetadataTagsState,
    };
    let out = client
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .versions(source_version.to_string())
        .send()
        .await
        .map_err(|e| convert(Operation::DescribeLaunchTemplateVersions, e))?;
    let source = out
        .launch_template_versions()
        .first()
        .and_then(|v| v.launch_template_data())
        .ok_or_else(|| {
            AwsError::local(
                Operation::DescribeLaunchTemplateVersions,
                AwsErrorKind::Service,
                format!("{template_id} has no version {source_version}"),
            )
        })?;
    let mut data = template_data::request_from_response(source);
    let old = source.metadata_options();
    // Every option explicit: the source's, with tokens (and the hop limit
    // when asked) replaced, so nothing falls back to a lower level.
    let options = LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_tokens(LaunchTemplateHttpTokensState::from(
            target.http_tokens.as_str(),
        ))
        .set_http_put_response_hop_limit(
            target
                .hop_limit
                .or_else(|| old.and_then(|o| o.http_put_response_hop_limit())),
        )
        .set_http_endpoint(
            old.and_then(|o| o.http_endpoint())
                .map(|e| LaunchTemplateInstanceMetadataEndpointState::from(e.as_str())),
        )
        .set_instance_metadata_tags(
            old.and_then(|o| o.instance_metadata_tags())
                .map(|t| LaunchTemplateInstanceMetadataTagsState::from(t.as_str())),
        )
        .set_http_protocol_ipv6(
            old.and_then(|o| o.http_protocol_ipv6())
                .map(|p| LaunchTemplateInstanceMetadataProtocolIpv6::from(p.as_str())),
        )
        .build();
    data.metadata_options = Some(options);
    let out = client
        .create_launch_template_version()
        .launch_template_id(template_id)
        .launch_template_data(data)
        .version_description(&target.description)
        .client_token(client_token)
        .send()
        .await
        .map_err(|e| convert(Operation::CreateLaunchTemplateVersion, e))?;
    out.launch_template_version()
        .and_then(|v| v.version_number())
        .ok_or_else(|| {
            AwsError::local(
                Operation::CreateLaunchTemplateVersion,
                AwsErrorKind::Other,
                "EC2 answered without a version number",
            )
        })
}

pub(super) async fn set_default(
    client: &aws_sdk_ec2::Client,
    template_id: &str,
    version: i64,
) -> Result<(), AwsError> {
    client
        .modify_launch_template()
        .launch_template_id(template_id)
        .default_version(version.to_string())
        .send()
        .await
        .map_err(|e| convert(Operation::ModifyLaunchTemplate, e))?;
    Ok(())
}

pub(super) async fn create_template(
    client: &aws_sdk_ec2::Client,
    name: &str,
    data: TemplateData,
    client_token: &str,
) -> Result<CreatedTemplate, AwsError> {
    let data = data
        .0
        .downcast::<aws_sdk_ec2::types::RequestLaunchTemplateData>()
        .map_err(|_| {
            AwsError::local(
                Operation::CreateLaunchTemplate,
                AwsErrorKind::Other,
                "launch template data of an unexpected type",
            )
        })?;
    let out = client
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(*data)
        .version_description("imdsguard: copied from a launch configuration, IMDSv2 required")
        .client_token(client_token)
        .send()
        .await
        .map_err(|e| convert(Operation::CreateLaunchTemplate, e))?;
    let t = out.launch_template();
    match (
        t.and_then(|t| t.launch_template_id()),
        t.and_then(|t| t.latest_version_number()),
    ) {
        (Some(id), Some(v)) => Ok(CreatedTemplate {
            template_id: id.to_owned(),
            version: v,
        }),
        _ => Err(AwsError::local(
            Operation::CreateLaunchTemplate,
            AwsErrorKind::Other,
            "EC2 answered without the template's id",
        )),
    }
}

pub(super) async fn modify_defaults(
    client: &aws_sdk_ec2::Client,
    target: &DefaultsTarget,
) -> Result<(), AwsError> {
    use aws_sdk_ec2::types::{
        DefaultHttpTokensEnforcedState, DefaultInstanceMetadataEndpointState,
        DefaultInstanceMetadataTagsState, MetadataDefaultHttpTokensState,
    };
    const NONE: &str = "no-preference";
    client
        .modify_instance_metadata_defaults()
        .http_tokens(MetadataDefaultHttpTokensState::from(
            target.http_tokens.map_or(NONE, HttpTokens::as_str),
        ))
        .http_put_response_hop_limit(target.hop_limit.unwrap_or(-1))
        .http_endpoint(DefaultInstanceMetadataEndpointState::from(
            target.http_endpoint.map_or(NONE, Toggle::as_str),
        ))
        .instance_metadata_tags(DefaultInstanceMetadataTagsState::from(
            target.instance_metadata_tags.map_or(NONE, Toggle::as_str),
        ))
        .set_http_tokens_enforced(
            target
                .http_tokens_enforced
                .map(|t| DefaultHttpTokensEnforcedState::from(t.as_str())),
        )
        .send()
        .await
        .map_err(|e| convert(Operation::ModifyInstanceMetadataDefaults, e))?;
    Ok(())
}

/// Auto Scaling, one client per region.
pub struct SdkAutoScaling {
    config: SdkConfig,
    clients: PerRegion<aws_sdk_autoscaling::Client>,
}

impl SdkAutoScaling {
    pub fn new(config: SdkConfig) -> Self {
        SdkAutoScaling {
            config,
            clients: PerRegion::new(),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_autoscaling::Client {
        self.clients.get(region, |r| {
            let conf = aws_sdk_autoscaling::config::Builder::from(&self.config)
                .region(r)
                .build();
            aws_sdk_autoscaling::Client::from_conf(conf)
        })
    }
}

fn template_ref(s: &aws_sdk_autoscaling::types::LaunchTemplateSpecification) -> TemplateRef {
    TemplateRef {
        template_id: s.launch_template_id().map(str::to_owned),
        template_name: s.launch_template_name().map(str::to_owned),
        version: s.version().map(str::to_owned),
    }
}

fn group(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> Option<AutoScalingGroup> {
    let launch = if let Some(t) = g.launch_template() {
        GroupLaunchSpec::Template {
            template: template_ref(t),
        }
    } else if let Some(m) = g.mixed_instances_policy() {
        let lt = m.launch_template();
        match lt.and_then(|l| l.launch_template_specification()) {
            Some(spec) => GroupLaunchSpec::Mixed {
                template: template_ref(spec),
                overrides: lt
                    .map(|l| l.overrides())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|o| o.launch_template_specification())
                    .map(template_ref)
                    .collect(),
            },
            None => GroupLaunchSpec::Unknown,
        }
    } else if let Some(name) = g.launch_configuration_name() {
        GroupLaunchSpec::Configuration {
            name: name.to_owned(),
        }
    } else {
        GroupLaunchSpec::Unknown
    };
    Some(AutoScalingGroup {
        name: g.auto_scaling_group_name()?.to_owned(),
        arn: g.auto_scaling_group_arn().map(str::to_owned),
        launch,
        instance_ids: g
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect(),
    })
}

#[async_trait]
impl AutoScalingApi for SdkAutoScaling {
    fn release_region(&self, region: &str) {
        self.clients.release(region);
    }

    async fn describe_groups(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<GroupPage, AwsError> {
        let out = self
            .client(region)
            .describe_auto_scaling_groups()
            .max_records(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| convert(Operation::DescribeAutoScalingGroups, e))?;
        Ok(GroupPage {
            groups: out.auto_scaling_groups().iter().filter_map(group).collect(),
            next_token: super::page_token(out.next_token()),
        })
    }

    async fn describe_configurations(
        &self,
        region: &str,
        next_token: Option<String>,
    ) -> Result<ConfigurationPage, AwsError> {
        let out = self
            .client(region)
            .describe_launch_configurations()
            .max_records(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| convert(Operation::DescribeLaunchConfigurations, e))?;
        let configurations = out
            .launch_configurations()
            .iter()
            .filter_map(|c| {
                let md = c.metadata_options();
                Some(LaunchConfiguration {
                    name: c.launch_configuration_name()?.to_owned(),
                    image_id: c
                        .image_id()
                        .filter(|id| id.starts_with("ami-"))
                        .map(str::to_owned),
                    http_tokens: md
                        .and_then(|m| m.http_tokens())
                        .and_then(|t| tokens(t.as_str())),
                    http_endpoint: md
                        .and_then(|m| m.http_endpoint())
                        .and_then(|t| toggle(t.as_str())),
                    hop_limit: md.and_then(|m| m.http_put_response_hop_limit()),
                })
            })
            .collect();
        Ok(ConfigurationPage {
            configurations,
            next_token: super::page_token(out.next_token()),
        })
    }

    async fn configuration_data(
        &self,
        region: &str,
        name: &str,
        http_tokens: HttpTokens,
        hop_limit: Option<i32>,
    ) -> Result<TemplateData, AwsError> {
        use aws_sdk_ec2::types::{
            LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataEndpointState,
            LaunchTemplateInstanceMetadataOptionsRequest,
        };
        let out = self
            .client(region)
            .describe_launch_configurations()
            .launch_configuration_names(name)
            .send()
            .await
            .map_err(|e| convert(Operation::DescribeLaunchConfigurations, e))?;
        let lc = out.launch_configurations().first().ok_or_else(|| {
            AwsError::local(
                Operation::DescribeLaunchConfigurations,
                AwsErrorKind::Service,
                format!("no launch configuration named {name}"),
            )
        })?;
        let mut data = template_data::request_from_launch_configuration(lc);
        let old = lc.metadata_options();
        data.metadata_options = Some(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::from(http_tokens.as_str()))
                .set_http_put_response_hop_limit(
                    hop_limit.or_else(|| old.and_then(|o| o.http_put_response_hop_limit())),
                )
                .set_http_endpoint(
                    old.and_then(|o| o.http_endpoint())
                        .map(|e| LaunchTemplateInstanceMetadataEndpointState::from(e.as_str())),
                )
                .build(),
        );
        Ok(TemplateData(Box::new(data)))
    }

    async fn update_group(
        &self,
        region: &str,
        name: &str,
        target: &GroupTarget,
    ) -> Result<(), AwsError> {
        let request = self
            .client(region)
            .update_auto_scaling_group()
            .auto_scaling_group_name(name);
        let request = match target {
            GroupTarget::Template {
                template_id,
                version,
            } => request.launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(template_id)
                    .version(version)
                    .build(),
            ),
            GroupTarget::Configuration { name } => request.launch_configuration_name(name),
        };
        request
            .send()
            .await
            .map_err(|e| convert(Operation::UpdateAutoScalingGroup, e))?;
        Ok(())
    }
}
