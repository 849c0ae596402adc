//! What EC2 says now about the instances a run changes, and how that
//! compares with what a change expects: the "compare" of compare-and-set.
//!
//! Reads are batched: one `DescribeInstances` per region for up to 200 ids
//! (EC2 refuses more than 200 filter values in one call:
//! `FilterLimitExceeded`; the `InstanceIds` parameter would take 1000 but
//! fails the whole call if one id no longer exists), pages of 1000.

use std::collections::{BTreeMap, HashMap};

use crate::aws::{AwsError, Ec2Api, Filter};
use crate::model::{MetadataState, Options};

/// Instance ids per `DescribeInstances` call (EC2's filter-value limit).
pub const IDS_PER_CALL: usize = 200;

/// One instance, as a re-check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Not found, terminated or shutting down.
    Gone,
    /// Found, but EC2 did not report every metadata option.
    Unreadable,
    Found {
        options: Options,
        state: Option<MetadataState>,
    },
}

/// What a batched re-describe found, per key, or the error of its region.
pub type Observations<K> = HashMap<K, Result<Observed, AwsError>>;

/// The (account, region, instance) key of [`observe_fleet`].
pub type FleetKey = (String, String, String);

/// How an instance's options compare with a change's `previous` and `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As the change expects: it may be sent.
    AtPrevious,
    /// Already at the target.
    AtTarget,
    /// Someone changed it: neither what the change expects nor its target.
    Changed(Options),
    Unreadable,
    Gone,
}

pub fn compare(previous: &Options, target: &Options, seen: &Observed) -> Verdict {
    match seen {
        Observed::Gone => Verdict::Gone,
        Observed::Unreadable => Verdict::Unreadable,
        Observed::Found { options, .. } if options == target => Verdict::AtTarget,
        Observed::Found { options, .. } if options == previous => Verdict::AtPrevious,
        Observed::Found { options, .. } => Verdict::Changed(*options),
    }
}

/// Re-describes `ids` in one region, [`IDS_PER_CALL`] at a time; returns
/// the observations and the number of calls made.
pub async fn observe_region(
    ec2: &dyn Ec2Api,
    region: &str,
    ids: &[&str],
) -> (HashMap<String, Result<Observed, AwsError>>, usize) {
    let mut out = HashMap::new();
    let mut calls = 0;
    for chunk in ids.chunks(IDS_PER_CALL) {
        let filters = [Filter {
            name: "instance-id".into(),
            values: chunk.iter().map(|s| (*s).to_owned()).collect(),
        }];
        calls += 1;
        let found = crate::aws::live_instances(ec2, region, &filters)
            .await
            .map(|list| {
                list.into_iter()
                    .map(|i| {
                        let seen = match i.metadata.explicit() {
                            Some(options) => Observed::Found {
                                options,
                                state: i.metadata.state,
                            },
                            None => Observed::Unreadable,
                        };
                        (i.instance_id, seen)
                    })
                    .collect::<HashMap<_, _>>()
            });
        for id in chunk {
            let value = match &found {
                Ok(map) => Ok(map.get(*id).copied().unwrap_or(Observed::Gone)),
                Err(e) => Err(e.clone()),
            };
            out.insert((*id).to_owned(), value);
        }
    }
    (out, calls)
}

/// Re-describes (region, instance) pairs of one account, batched per region.
pub async fn observe<'x>(
    ec2: &dyn Ec2Api,
    instances: impl Iterator<Item = (&'x str, &'x str)>,
) -> Observations<(String, String)> {
    let mut by_region: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (region, id) in instances {
        by_region.entry(region).or_default().push(id);
    }
    let mut out = HashMap::new();
    for (region, ids) in by_region {
        let (seen, _) = observe_region(ec2, region, &ids).await;
        out.extend(seen.into_iter().map(|(id, v)| ((region.to_owned(), id), v)));
    }
    out
}

/// Re-describes (account, region, instance) triples, batched per account
/// and region. An account missing from `fleet` is left out.
pub async fn observe_fleet<'x>(
    fleet: &super::Fleet<'_>,
    items: impl Iterator<Item = (&'x str, &'x str, &'x str)>,
) -> Observations<FleetKey> {
    let mut by_account: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (account, region, id) in items {
        by_account.entry(account).or_default().push((region, id));
    }
    let mut out = HashMap::new();
    for (account, list) in by_account {
        let Some(ec2) = fleet.get(account) else {
            continue;
        };
        let seen = observe(*ec2, list.into_iter()).await;
        out.extend(
            seen.into_iter()
                .map(|((region, id), v)| ((account.to_owned(), region, id), v)),
        );
    }
    out
}

/// What [`observe_fleet`] found for one instance: its region's error, or
/// an account the fleet could not reach, as the run's error.
pub fn found(
    seen: &Observations<FleetKey>,
    account: &str,
    region: &str,
    instance: &str,
) -> Result<Observed, super::RunError> {
    match seen.get(&(account.to_owned(), region.to_owned(), instance.to_owned())) {
        Some(Ok(o)) => Ok(*o),
        Some(Err(e)) => Err(super::RunError::Aws(e.clone())),
        None => Err(super::RunError::NoAccount(account.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpTokens, Toggle};

    fn o(tokens: HttpTokens, hop: i32) -> Options {
        Options {
            http_tokens: tokens,
            http_endpoint: Toggle::Enabled,
            hop_limit: hop,
            instance_metadata_tags: Toggle::Disabled,
            http_protocol_ipv6: Toggle::Disabled,
        }
    }

    #[test]
    fn compares_with_previous_and_target() {
        let prev = o(HttpTokens::Optional, 1);
        let target = o(HttpTokens::Required, 1);
        let found = |options| Observed::Found {
            options,
            state: None,
        };
        assert_eq!(compare(&prev, &target, &found(prev)), Verdict::AtPrevious);
        assert_eq!(compare(&prev, &target, &found(target)), Verdict::AtTarget);
        let other = o(HttpTokens::Optional, 3);
        assert_eq!(
            compare(&prev, &target, &found(other)),
            Verdict::Changed(other)
        );
        assert_eq!(compare(&prev, &target, &Observed::Gone), Verdict::Gone);
    }

    #[tokio::test]
    async fn batches_of_200_ids_per_call() {
        use crate::aws::fake::{Calls, FakeEc2, instance};
        let calls = std::sync::Arc::new(Calls::default());
        let mut ec2 = FakeEc2 {
            calls: calls.clone(),
            ..Default::default()
        };
        let fleet: Vec<_> = (0..450)
            .map(|i| instance(i, HttpTokens::Optional))
            .collect();
        let ids: Vec<String> = fleet.iter().map(|i| i.instance_id.clone()).collect();
        ec2.instances.insert("r".into(), fleet);
        let mut asked: Vec<&str> = ids.iter().map(String::as_str).collect();
        asked.push("i-0000000000000ffff");
        let (seen, n) = observe_region(&ec2, "r", &asked).await;
        assert_eq!(n, 3);
        assert_eq!(Calls::get(&calls.describe_instances), 3);
        assert_eq!(seen["i-0000000000000ffff"], Ok(Observed::Gone));
        assert!(matches!(seen[ids[0].as_str()], Ok(Observed::Found { .. })));
    }
}
