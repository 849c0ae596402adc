//! The plain data the engine works on: an EC2 instance as we see it, and its
//! instance metadata options.
//!
//! These types are deliberately independent of the AWS SDK (the `aws` module
//! converts into them) and of any output format (renderers convert out of
//! them), so the engine and its tests never touch SDK types.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// `HttpTokens`: whether the metadata service demands a session token (IMDSv2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpTokens {
    /// IMDSv2 only: a plain v1 GET is refused.
    Required,
    /// IMDSv1 still answers.
    Optional,
}

/// An `enabled` / `disabled` switch, as EC2 reports `HttpEndpoint`,
/// `InstanceMetadataTags` and `HttpProtocolIpv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Toggle {
    Enabled,
    Disabled,
}

/// Whether the last change to an instance's metadata options has taken effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataState {
    Pending,
    Applied,
}

impl HttpTokens {
    /// As EC2 spells it; a value EC2 may add later reads as `None`.
    pub fn from_api(s: &str) -> Option<HttpTokens> {
        match s {
            "required" => Some(HttpTokens::Required),
            "optional" => Some(HttpTokens::Optional),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpTokens::Required => "required",
            HttpTokens::Optional => "optional",
        }
    }
}

impl Toggle {
    /// As EC2 spells it; a value EC2 may add later reads as `None`.
    pub fn from_api(s: &str) -> Option<Toggle> {
        match s {
            "enabled" => Some(Toggle::Enabled),
            "disabled" => Some(Toggle::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Toggle::Enabled => "enabled",
            Toggle::Disabled => "disabled",
        }
    }
}

impl MetadataState {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataState::Pending => "pending",
            MetadataState::Applied => "applied",
        }
    }
}

/// An instance's metadata options exactly as EC2 reported them. A field EC2
/// left out stays `None`: we never invent a value, because a later change
/// must send back exactly what was there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataOptions {
    pub http_tokens: Option<HttpTokens>,
    pub http_endpoint: Option<Toggle>,
    pub hop_limit: Option<i32>,
    pub instance_metadata_tags: Option<Toggle>,
    pub http_protocol_ipv6: Option<Toggle>,
    pub state: Option<MetadataState>,
}

/// A complete set of metadata options, every field explicit: what we send
/// to `ModifyInstanceMetadataOptions` and what we journal. EC2 derives an
/// omitted field from defaults (and moto resets it), so a change never
/// leaves one out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub http_tokens: HttpTokens,
    pub http_endpoint: Toggle,
    pub hop_limit: i32,
    pub instance_metadata_tags: Toggle,
    pub http_protocol_ipv6: Toggle,
}

impl Options {
    /// A short human form: `required/enabled/hop 2/tags off/ipv6 off`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} hop {} tags {} ipv6 {}",
            self.http_tokens.as_str(),
            self.http_endpoint.as_str(),
            self.hop_limit,
            self.instance_metadata_tags.as_str(),
            self.http_protocol_ipv6.as_str()
        )
    }
}

/// What a run does to each instance. Stored in plan files and in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `HttpTokens=required` (IMDSv2 only); a disabled endpoint stays disabled.
    RequireV2,
    /// `HttpEndpoint=disabled`: no IMDS at all.
    DisableEndpoint,
    /// `HttpTokens=optional`: metabadger's `-v1` (prefer `rollback`).
    AllowV1,
    /// Back to each instance's exact previous options (made by `rollback`).
    Rollback,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::RequireV2,
        Action::DisableEndpoint,
        Action::AllowV1,
        Action::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::RequireV2 => "require-v2",
            Action::DisableEndpoint => "disable-endpoint",
            Action::AllowV1 => "allow-v1",
            Action::Rollback => "rollback",
        }
    }
}

/// One field of the metadata options, for checks and summaries that go
/// field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    HttpTokens,
    HttpEndpoint,
    HopLimit,
    InstanceMetadataTags,
    HttpProtocolIpv6,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::HttpTokens,
        Field::HttpEndpoint,
        Field::HopLimit,
        Field::InstanceMetadataTags,
        Field::HttpProtocolIpv6,
    ];

    /// The name EC2's API gives the field.
    pub fn api_name(self) -> &'static str {
        match self {
            Field::HttpTokens => "HttpTokens",
            Field::HttpEndpoint => "HttpEndpoint",
            Field::HopLimit => "HttpPutResponseHopLimit",
            Field::InstanceMetadataTags => "InstanceMetadataTags",
            Field::HttpProtocolIpv6 => "HttpProtocolIpv6",
        }
    }

    /// The word tables use: `tokens`, `endpoint`, `hop`, `tags`, `ipv6`.
    pub fn short_name(self) -> &'static str {
        match self {
            Field::HttpTokens => "tokens",
            Field::HttpEndpoint => "endpoint",
            Field::HopLimit => "hop",
            Field::InstanceMetadataTags => "tags",
            Field::HttpProtocolIpv6 => "ipv6",
        }
    }

    /// The field's value in `o`, as text.
    pub fn value(self, o: &Options) -> String {
        match self {
            Field::HttpTokens => o.http_tokens.as_str().to_owned(),
            Field::HttpEndpoint => o.http_endpoint.as_str().to_owned(),
            Field::HopLimit => o.hop_limit.to_string(),
            Field::InstanceMetadataTags => o.instance_metadata_tags.as_str().to_owned(),
            Field::HttpProtocolIpv6 => o.http_protocol_ipv6.as_str().to_owned(),
        }
    }
}

/// Where an instance stands on IMDS, for counting. The classes do not
/// overlap: an instance with the endpoint disabled counts as `Disabled`
/// whatever its `HttpTokens` says, because no metadata is served at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Posture {
    /// Endpoint enabled and `HttpTokens=required`.
    Required,
    /// Endpoint enabled and IMDSv1 allowed (or EC2 did not say: we assume the worst).
    Optional,
    /// Endpoint disabled: no IMDS at all.
    Disabled,
}

impl MetadataOptions {
    pub fn posture(&self) -> Posture {
        if self.http_endpoint == Some(Toggle::Disabled) {
            Posture::Disabled
        } else if self.http_tokens == Some(HttpTokens::Required) {
            Posture::Required
        } else {
            Posture::Optional
        }
    }

    /// The explicit options, when EC2 reported every field. Fields EC2 did
    /// not report take its documented defaults only for the two that older
    /// API versions omit (`HttpProtocolIpv6`, `InstanceMetadataTags`).
    pub fn explicit(&self) -> Option<Options> {
        Some(Options {
            http_tokens: self.http_tokens?,
            http_endpoint: self.http_endpoint?,
            hop_limit: self.hop_limit?,
            instance_metadata_tags: self.instance_metadata_tags.unwrap_or(Toggle::Disabled),
            http_protocol_ipv6: self.http_protocol_ipv6.unwrap_or(Toggle::Disabled),
        })
    }

    /// True when a plain IMDSv1 request would be answered.
    pub fn allows_v1(&self) -> bool {
        self.posture() == Posture::Optional
    }
}

/// The lifecycle state of an instance (`pending`, `running`, `stopped`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceState(pub String);

impl InstanceState {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Instances on their way out or gone are never part of a scan.
    pub fn is_gone(&self) -> bool {
        matches!(self.0.as_str(), "terminated" | "shutting-down")
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One EC2 instance, as read from `DescribeInstances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    pub state: InstanceState,
    /// RFC 3339, UTC.
    pub launch_time: Option<String>,
    pub image_id: Option<String>,
    pub metadata: MetadataOptions,
    pub instance_profile_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl Instance {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    pub fn name(&self) -> Option<&str> {
        self.tag("Name")
    }
}

/// An AWS region, as `DescribeRegions` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    pub name: String,
    /// `opt-in-not-required`, `opted-in` or `not-opted-in`.
    pub opt_in_status: Option<String>,
}

impl RegionInfo {
    pub fn is_enabled(&self) -> bool {
        !matches!(self.opt_in_status.as_deref(), Some("not-opted-in"))
    }
}

/// An IAM instance profile and the role(s) inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProfile {
    pub arn: String,
    pub name: String,
    pub role_names: Vec<String>,
}

/// Who we are talking to AWS as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: String,
    pub arn: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(tokens: Option<HttpTokens>, endpoint: Option<Toggle>) -> MetadataOptions {
        MetadataOptions {
            http_tokens: tokens,
            http_endpoint: endpoint,
            ..Default::default()
        }
    }

    #[test]
    fn disabled_endpoint_wins_over_tokens() {
        let o = opts(Some(HttpTokens::Required), Some(Toggle::Disabled));
        assert_eq!(o.posture(), Posture::Disabled);
        let o = opts(Some(HttpTokens::Optional), Some(Toggle::Disabled));
        assert_eq!(o.posture(), Posture::Disabled);
        assert!(!o.allows_v1());
    }

    #[test]
    fn missing_tokens_is_treated_as_v1_allowed() {
        let o = opts(None, Some(Toggle::Enabled));
        assert_eq!(o.posture(), Posture::Optional);
        assert!(o.allows_v1());
        let o = opts(Some(HttpTokens::Required), None);
        assert_eq!(o.posture(), Posture::Required);
    }

    #[test]
    fn gone_states() {
        assert!(InstanceState("terminated".into()).is_gone());
        assert!(InstanceState("shutting-down".into()).is_gone());
        assert!(!InstanceState("stopped".into()).is_gone());
    }
}
