//! One error type for every AWS call, keeping what users need verbatim:
//! the operation, AWS's error code and message, and the request id.
//!
//! Classification (`AwsErrorKind`) turns the many spellings AWS uses across
//! services (`UnauthorizedOperation`, `AccessDenied`, `AccessDeniedException`,
//! ...) into the few situations we give distinct advice for.

use std::fmt;

/// What went wrong, as far as the advice we give is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The credentials are valid but lack a permission.
    AccessDenied,
    /// The session token or SSO token has expired.
    ExpiredToken,
    /// The credentials are malformed, unknown to AWS, or the signature is wrong.
    BadCredentials,
    /// No credentials could be found anywhere in the chain (instance metadata
    /// that refused, timed out or was unreachable included).
    NoCredentials,
    /// The region is not enabled for the account (opt-in region).
    RegionDisabled,
    /// AWS is throttling us.
    Throttled,
    /// The request never got an answer: DNS, connection, timeout.
    Network,
    /// Any other error AWS answered with.
    Service,
    /// Anything else (a bug, a malformed response).
    Other,
}

/// The AWS calls imdsguard makes (and loading credentials, which is not
/// one but fails like one). Named as IAM actions: what a user must grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    DescribeRegions,
    DescribeInstances,
    ModifyInstanceMetadataOptions,
    GetInstanceMetadataDefaults,
    DescribeLaunchTemplateVersions,
    DescribeImages,
    CreateLaunchTemplateVersion,
    CreateLaunchTemplate,
    ModifyLaunchTemplate,
    ModifyInstanceMetadataDefaults,
    DescribeAutoScalingGroups,
    DescribeLaunchConfigurations,
    UpdateAutoScalingGroup,
    ListInstanceProfiles,
    GetCallerIdentity,
    AssumeRole,
    ListAccounts,
    GetMetricData,
    /// Owner notices (`imdsguard notify`).
    SnsPublish,
    SesSendEmail,
    /// CloudTrail logs in S3 (`imdsguard trail`).
    S3ListBucket,
    S3GetObject,
    LookupEvents,
    StartQueryExecution,
    GetQueryExecution,
    GetQueryResults,
    /// Finding or refreshing credentials (the SDK's default chain).
    Credentials,
}

impl Operation {
    pub const ALL: [Operation; 27] = [
        Operation::DescribeRegions,
        Operation::DescribeInstances,
        Operation::ModifyInstanceMetadataOptions,
        Operation::GetInstanceMetadataDefaults,
        Operation::DescribeLaunchTemplateVersions,
        Operation::DescribeImages,
        Operation::CreateLaunchTemplateVersion,
        Operation::CreateLaunchTemplate,
        Operation::ModifyLaunchTemplate,
        Operation::ModifyInstanceMetadataDefaults,
        Operation::DescribeAutoScalingGroups,
        Operation::DescribeLaunchConfigurations,
        Operation::UpdateAutoScalingGroup,
        Operation::ListInstanceProfiles,
        Operation::GetCallerIdentity,
        Operation::AssumeRole,
        Operation::ListAccounts,
        Operation::GetMetricData,
        Operation::SnsPublish,
        Operation::SesSendEmail,
        Operation::S3ListBucket,
        Operation::S3GetObject,
        Operation::LookupEvents,
        Operation::StartQueryExecution,
        Operation::GetQueryExecution,
        Operation::GetQueryResults,
        Operation::Credentials,
    ];

    /// The IAM action, e.g. `ec2:DescribeInstances`; `credentials` for the chain.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::DescribeRegions => "ec2:DescribeRegions",
            Operation::DescribeInstances => "ec2:DescribeInstances",
            Operation::ModifyInstanceMetadataOptions => "ec2:ModifyInstanceMetadataOptions",
            Operation::GetInstanceMetadataDefaults => "ec2:GetInstanceMetadataDefaults",
            Operation::DescribeLaunchTemplateVersions => "ec2:DescribeLaunchTemplateVersions",
            Operation::DescribeImages => "ec2:DescribeImages",
            Operation::CreateLaunchTemplateVersion => "ec2:CreateLaunchTemplateVersion",
            Operation::CreateLaunchTemplate => "ec2:CreateLaunchTemplate",
            Operation::ModifyLaunchTemplate => "ec2:ModifyLaunchTemplate",
            Operation::ModifyInstanceMetadataDefaults => "ec2:ModifyInstanceMetadataDefaults",
            Operation::DescribeAutoScalingGroups => "autoscaling:DescribeAutoScalingGroups",
            Operation::DescribeLaunchConfigurations => "autoscaling:DescribeLaunchConfigurations",
            Operation::UpdateAutoScalingGroup => "autoscaling:UpdateAutoScalingGroup",
            Operation::ListInstanceProfiles => "iam:ListInstanceProfiles",
            Operation::GetCallerIdentity => "sts:GetCallerIdentity",
            Operation::AssumeRole => "sts:AssumeRole",
            Operation::ListAccounts => "organizations:ListAccounts",
            Operation::GetMetricData => "cloudwatch:GetMetricData",
            Operation::SnsPublish => "sns:Publish",
            Operation::SesSendEmail => "ses:SendEmail",
            Operation::S3ListBucket => "s3:ListBucket",
            Operation::S3GetObject => "s3:GetObject",
            Operation::LookupEvents => "cloudtrail:LookupEvents",
            Operation::StartQueryExecution => "athena:StartQueryExecution",
            Operation::GetQueryExecution => "athena:GetQueryExecution",
            Operation::GetQueryResults => "athena:GetQueryResults",
            Operation::Credentials => "credentials",
        }
    }

    /// The operation stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// A real AWS call (not the local credential chain).
    fn is_call(self) -> bool {
        self != Operation::Credentials
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An error from one AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The call, named as its IAM action.
    pub operation: Operation,
    pub kind: AwsErrorKind,
    /// AWS's error code, verbatim (e.g. `UnauthorizedOperation`).
    pub code: Option<String>,
    /// AWS's error message, or a description of the local failure.
    pub message: String,
    pub request_id: Option<String>,
}

impl AwsError {
    /// Builds an error from AWS's code and message, classifying the code.
    pub fn from_code(
        operation: Operation,
        code: Option<&str>,
        message: Option<&str>,
        request_id: Option<&str>,
    ) -> Self {
        let kind = code.map(classify_code).unwrap_or(AwsErrorKind::Service);
        AwsError {
            operation,
            kind,
            code: code.map(str::to_owned),
            message: message.unwrap_or("").to_owned(),
            request_id: request_id.map(str::to_owned),
        }
    }

    pub fn local(operation: Operation, kind: AwsErrorKind, message: impl Into<String>) -> Self {
        AwsError {
            operation,
            kind,
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    /// What the user should do about it, in one line.
    pub fn hint(&self) -> String {
        match self.kind {
            AwsErrorKind::AccessDenied if self.operation == Operation::AssumeRole => {
                "check that the role exists in that account, that its trust policy allows your identity, and --external-id if it requires one".into()
            }
            AwsErrorKind::AccessDenied => format!(
                "grant `{}` to the identity you are using (see README: required permissions)",
                self.operation
            ),
            AwsErrorKind::ExpiredToken => {
                "your session has expired: refresh it (e.g. `aws sso login --profile NAME`, or assume the role again)".into()
            }
            AwsErrorKind::BadCredentials => {
                "check the access key and secret in use (`aws sts get-caller-identity` tells which identity they are)".into()
            }
            AwsErrorKind::NoCredentials => {
                "run `aws configure` or pick a profile (AWS_PROFILE or --profile NAME), export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws sso login --profile NAME`, or set AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN; no AWS account? `scripts/demo` (in the source tree) runs imdsguard against a local emulator".into()
            }
            AwsErrorKind::RegionDisabled => {
                "enable the region for the account, or leave it out of --regions".into()
            }
            AwsErrorKind::Throttled => {
                "AWS is throttling requests: retry later, lower --concurrency, or raise --max-attempts".into()
            }
            AwsErrorKind::Network => {
                "check network access to AWS (or --endpoint-url), proxies and DNS; -v shows more".into()
            }
            AwsErrorKind::Service | AwsErrorKind::Other => {
                "run again with -v for details; the request id helps AWS support".into()
            }
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            AwsErrorKind::AccessDenied => "access denied",
            AwsErrorKind::ExpiredToken => "credentials expired",
            AwsErrorKind::BadCredentials => "credentials rejected",
            AwsErrorKind::NoCredentials => "no AWS credentials found",
            AwsErrorKind::RegionDisabled => "region not enabled",
            AwsErrorKind::Throttled => "throttled",
            AwsErrorKind::Network => "could not reach AWS",
            AwsErrorKind::Service | AwsErrorKind::Other => "request failed",
        };
        // Local failures (credentials) are not an AWS operation.
        if self.operation.is_call() {
            write!(f, "{what} on {}", self.operation)?;
        } else {
            write!(f, "{what}")?;
        }
        match (&self.code, self.message.is_empty()) {
            (Some(code), false) => write!(f, ": {code}: {}", one_line(&self.message))?,
            (Some(code), true) => write!(f, ": {code}")?,
            (None, false) => write!(f, ": {}", one_line(&self.message))?,
            (None, true) => {}
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// AWS messages sometimes carry newlines; our errors are one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Maps AWS error codes (across EC2, IAM, STS, CloudWatch, SNS, SES) to a kind.
pub fn classify_code(code: &str) -> AwsErrorKind {
    match code {
        "UnauthorizedOperation"
        | "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedAccess"
        | "AuthorizationError" // SNS
        | "Forbidden" => AwsErrorKind::AccessDenied,
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            AwsErrorKind::ExpiredToken
        }
        "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId" => AwsErrorKind::BadCredentials,
        "OptInRequired" => AwsErrorKind::RegionDisabled,
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException" => AwsErrorKind::Throttled,
        _ => AwsErrorKind::Service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes_across_services() {
        assert_eq!(
            classify_code("UnauthorizedOperation"),
            AwsErrorKind::AccessDenied
        );
        assert_eq!(classify_code("AccessDenied"), AwsErrorKind::AccessDenied);
        assert_eq!(
            classify_code("AuthorizationError"),
            AwsErrorKind::AccessDenied
        );
        assert_eq!(classify_code("ExpiredToken"), AwsErrorKind::ExpiredToken);
        assert_eq!(classify_code("RequestExpired"), AwsErrorKind::ExpiredToken);
        assert_eq!(classify_code("AuthFailure"), AwsErrorKind::BadCredentials);
        assert_eq!(classify_code("OptInRequired"), AwsErrorKind::RegionDisabled);
        assert_eq!(
            classify_code("RequestLimitExceeded"),
            AwsErrorKind::Throttled
        );
        assert_eq!(
            classify_code("InvalidInstanceID.NotFound"),
            AwsErrorKind::Service
        );
    }

    #[test]
    fn display_is_one_line_and_keeps_code_verbatim() {
        let e = AwsError::from_code(
            Operation::DescribeInstances,
            Some("UnauthorizedOperation"),
            Some("You are not authorized\nto perform this operation."),
            Some("req-1"),
        );
        let s = e.to_string();
        assert_eq!(
            s,
            "access denied on ec2:DescribeInstances: UnauthorizedOperation: You are not authorized to perform this operation."
        );
        assert!(e.hint().contains("ec2:DescribeInstances"));
    }
}
