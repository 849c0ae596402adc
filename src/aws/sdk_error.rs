//! SDK errors into ours: AWS's code and message kept verbatim, local
//! failures (network, credentials) classified. Shared by every SDK module.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;

use super::error::Operation;
use super::{AwsError, AwsErrorKind};

/// An error and its sources, as one line, without Debug dumps.
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Converts any SDK error into ours, keeping AWS's code and message verbatim.
pub(super) fn convert<E, R>(operation: Operation, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) if err.code().is_some() => {
            AwsError::from_code(
                operation,
                err.code(),
                err.message(),
                err.meta().request_id(),
            )
        }
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
            AwsError::local(operation, AwsErrorKind::Network, error_chain(&err))
        }
        SdkError::TimeoutError(_) => {
            AwsError::local(operation, AwsErrorKind::Network, error_chain(&err))
        }
        _ => {
            let text = error_chain(&err);
            if text.contains("loading credentials") {
                return credentials_error(&text);
            }
            let kind = if text.contains("no credentials") || text.contains("CredentialsNotLoaded") {
                AwsErrorKind::NoCredentials
            } else {
                AwsErrorKind::Other
            };
            AwsError::local(operation, kind, text)
        }
    }
}

/// A call failed because its credentials could not be loaded: for an
/// assumed role, that is `sts:AssumeRole` failing, with AWS's own code.
fn credentials_error(text: &str) -> AwsError {
    // The provider's error carries AWS's answer as `code: "..", message: ".."`.
    let field = |name: &str| -> Option<String> {
        let start = text.find(&format!("{name}: \""))? + name.len() + 3;
        let len = text[start..].find('"')?;
        Some(text[start..start + len].to_owned())
    };
    let operation = if text.contains("AssumeRole") || text.contains("assume") {
        Operation::AssumeRole
    } else {
        Operation::Credentials
    };
    match field("code") {
        Some(code) => {
            AwsError::from_code(operation, Some(&code), field("message").as_deref(), None)
        }
        None => AwsError::local(operation, AwsErrorKind::BadCredentials, text),
    }
}
