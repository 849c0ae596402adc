//! Staged rollouts: a plan applied in waves, each watched for breakage
//! before the next (see `store::rollouts` for the state machine's tables
//! and `ops::rollout` for the steps).
//!
//! This module holds the pure parts: how changes are split into waves
//! ([`waves`]), what a finished soak means ([`judge`]), and the
//! before/after proof of changes ([`effect`]).

pub mod effect;
pub mod waves;

use crate::usage::CallsSince;

/// What a soak found on one wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No instance had more refused IMDSv1 calls than allowed, and the
    /// health command (if any) passed.
    Clean,
    /// These members broke: (plan index, refused calls).
    Broke(Vec<(i64, u64)>),
    /// The health command failed; every member of the wave is suspect.
    Unhealthy(String),
}

/// The verdict on a wave: `calls` per member (plan index), the allowed
/// number of refused calls, and the health command's failure, if any.
/// Rejected calls decide before the health command: they name the
/// instances, a failed health check does not.
pub fn judge(calls: &[(i64, CallsSince)], max_rejected: u64, health: Option<String>) -> Verdict {
    let broke: Vec<(i64, u64)> = calls
        .iter()
        .filter(|(_, c)| c.rejected_calls > max_rejected)
        .map(|(i, c)| (*i, c.rejected_calls))
        .collect();
    if !broke.is_empty() {
        return Verdict::Broke(broke);
    }
    match health {
        Some(why) => Verdict::Unhealthy(why),
        None => Verdict::Clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(rejected: u64) -> CallsSince {
        CallsSince {
            v1_calls: 0,
            rejected_calls: rejected,
        }
    }

    #[test]
    fn rejected_calls_over_the_limit_break_their_instances() {
        let calls = [(0, c(0)), (1, c(3)), (2, c(1))];
        assert_eq!(judge(&calls, 0, None), Verdict::Broke(vec![(1, 3), (2, 1)]));
        assert_eq!(judge(&calls, 1, None), Verdict::Broke(vec![(1, 3)]));
        assert_eq!(judge(&calls, 3, None), Verdict::Clean);
        assert_eq!(
            judge(&calls, 3, Some("exit 1".into())),
            Verdict::Unhealthy("exit 1".into())
        );
        assert_eq!(
            judge(&calls, 0, Some("x".into())),
            Verdict::Broke(vec![(1, 3), (2, 1)])
        );
    }
}
