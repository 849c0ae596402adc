//! The readiness verdict: one word per instance that says whether enforcing
//! IMDSv2 on it is done, safe, unsafe, or unproven (README: readiness).
//!
//! The rule that matters most: an instance that allows v1 and has no
//! metric data is `unknown`, never `ready`. "No data" is not "no v1 calls".

use serde::Serialize;

use crate::model::{MetadataOptions, Posture};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// `HttpTokens=required`, endpoint enabled, no refused v1 calls.
    Compliant,
    /// Enforced, but something on it still tries v1 and is refused.
    RejectingV1,
    /// Endpoint disabled: no IMDS at all.
    Disabled,
    /// Allows v1, made no v1 calls, and data covers the window: safe to enforce.
    Ready,
    /// Allows v1 and made v1 calls: fix the software first.
    InUse,
    /// Allows v1 and there is no evidence either way.
    Unknown,
}

impl Readiness {
    pub const ALL: [Readiness; 6] = [
        Readiness::Compliant,
        Readiness::RejectingV1,
        Readiness::Disabled,
        Readiness::Ready,
        Readiness::InUse,
        Readiness::Unknown,
    ];

    /// The column header for tables.
    pub fn header(self) -> &'static str {
        match self {
            Readiness::Compliant => "COMPLIANT",
            Readiness::RejectingV1 => "REJECTING-V1",
            Readiness::Disabled => "DISABLED",
            Readiness::Ready => "READY",
            Readiness::InUse => "IN-USE",
            Readiness::Unknown => "UNKNOWN",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Compliant => "compliant",
            Readiness::RejectingV1 => "rejecting-v1",
            Readiness::Disabled => "disabled",
            Readiness::Ready => "ready",
            Readiness::InUse => "in-use",
            Readiness::Unknown => "unknown",
        }
    }
}

/// v1 usage of one instance over a window, from CloudWatch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub window_days: u32,
    /// Sum of `MetadataNoToken` over the window.
    pub v1_calls: u64,
    /// The last day (UTC, `YYYY-MM-DD`) with v1 calls.
    pub last_v1_call: Option<String>,
    /// Days of the window with any datapoint of either metric.
    pub days_with_data: u32,
    /// Sum of `MetadataNoTokenRejected` over the window.
    pub rejected_calls: u64,
}

/// The verdict and a human reason, from the options and (if measured) usage.
pub fn assess(options: &MetadataOptions, usage: Option<&Usage>) -> (Readiness, String) {
    match options.posture() {
        Posture::Disabled => (Readiness::Disabled, "metadata endpoint disabled".into()),
        Posture::Required => match usage {
            Some(u) if u.rejected_calls > 0 => (
                Readiness::RejectingV1,
                format!(
                    "IMDSv2 required, but {} v1 calls refused in {} days",
                    u.rejected_calls, u.window_days
                ),
            ),
            Some(u) => (
                Readiness::Compliant,
                format!(
                    "IMDSv2 required, no refused v1 calls in {} days",
                    u.window_days
                ),
            ),
            None => (Readiness::Compliant, "IMDSv2 required".into()),
        },
        Posture::Optional => match usage {
            None => (
                Readiness::Unknown,
                "allows IMDSv1; v1 usage not measured".into(),
            ),
            Some(u) if u.v1_calls > 0 => (
                Readiness::InUse,
                match &u.last_v1_call {
                    Some(day) => format!(
                        "{} v1 calls in {} days, last on {day}",
                        u.v1_calls, u.window_days
                    ),
                    None => format!("{} v1 calls in {} days", u.v1_calls, u.window_days),
                },
            ),
            Some(u) if u.days_with_data == 0 => (
                Readiness::Unknown,
                format!(
                    "allows IMDSv1; no metric data in {} days: not proven safe",
                    u.window_days
                ),
            ),
            Some(u) => (
                Readiness::Ready,
                format!(
                    "no v1 calls in {} days, data on {} of {} days",
                    u.window_days, u.days_with_data, u.window_days
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpTokens, Toggle};

    fn opts(tokens: HttpTokens, endpoint: Toggle) -> MetadataOptions {
        MetadataOptions {
            http_tokens: Some(tokens),
            http_endpoint: Some(endpoint),
            ..Default::default()
        }
    }

    fn usage(v1: u64, rejected: u64, days: u32) -> Usage {
        Usage {
            window_days: 14,
            v1_calls: v1,
            last_v1_call: (v1 > 0).then(|| "2026-11-20".into()),
            days_with_data: days,
            rejected_calls: rejected,
        }
    }

    #[test]
    fn six_verdicts() {
        let req = opts(HttpTokens::Required, Toggle::Enabled);
        let opt = opts(HttpTokens::Optional, Toggle::Enabled);
        assert_eq!(assess(&req, Some(&usage(0, 0, 14))).0, Readiness::Compliant);
        assert_eq!(
            assess(&req, Some(&usage(0, 3, 14))).0,
            Readiness::RejectingV1
        );
        assert_eq!(
            assess(&opts(HttpTokens::Optional, Toggle::Disabled), None).0,
            Readiness::Disabled
        );
        let (v, reason) = assess(&opt, Some(&usage(0, 0, 14)));
        assert_eq!(v, Readiness::Ready);
        assert_eq!(reason, "no v1 calls in 14 days, data on 14 of 14 days");
        let (v, reason) = assess(&opt, Some(&usage(412, 0, 14)));
        assert_eq!(v, Readiness::InUse);
        assert_eq!(reason, "412 v1 calls in 14 days, last on 2026-11-20");
        assert_eq!(assess(&opt, Some(&usage(0, 0, 0))).0, Readiness::Unknown);
        assert_eq!(assess(&opt, None).0, Readiness::Unknown);
    }
}
