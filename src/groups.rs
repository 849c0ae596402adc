//! "What breaks if we enforce, and who do we tell?": a scan's instances
//! that still allow IMDSv1, grouped by owner tag and by IAM role (what an
//! SSRF would hand out). Typed rows; `output::rows` renders them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::readiness::Readiness;
use crate::report::ScanReport;

/// What a group of instances that allow IMDSv1 holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub allowing_v1: u64,
    pub in_use: u64,
    pub ready: u64,
    pub unknown: u64,
    pub v1_calls: u64,
}

impl Tally {
    fn add(&mut self, readiness: Readiness, v1_calls: u64) {
        self.allowing_v1 += 1;
        match readiness {
            Readiness::InUse => self.in_use += 1,
            Readiness::Ready => self.ready += 1,
            _ => self.unknown += 1,
        }
        self.v1_calls += v1_calls;
    }
}

/// One owner (`None`: instances without an owner tag) and their instances
/// that allow IMDSv1, with the roles those instances hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerRow {
    pub owner: Option<String>,
    #[serde(flatten)]
    pub tally: Tally,
    /// Role names, sorted, comma-separated.
    pub roles: String,
}

/// One IAM role (per account) behind instances that allow IMDSv1, with
/// the owners of those instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleRow {
    pub role_name: String,
    pub account_id: String,
    #[serde(flatten)]
    pub tally: Tally,
    /// Owners, sorted, comma-separated.
    pub owners: String,
}

/// Most instances allowing IMDSv1 first; ties keep the key order.
fn by_count<T>(mut rows: Vec<T>, count: impl Fn(&T) -> u64) -> Vec<T> {
    rows.sort_by_key(|r| std::cmp::Reverse(count(r)));
    rows
}

/// One row per owner.
pub fn by_owner(report: &ScanReport) -> Vec<OwnerRow> {
    let mut t: BTreeMap<Option<&str>, (Tally, BTreeSet<&str>)> = BTreeMap::new();
    for r in report.allowing_v1() {
        let (tally, roles) = t.entry(r.owner.as_deref()).or_default();
        tally.add(r.readiness, r.usage.as_ref().map_or(0, |u| u.v1_calls));
        roles.extend(r.role_name.as_deref());
    }
    let rows = t
        .into_iter()
        .map(|(owner, (tally, roles))| OwnerRow {
            owner: owner.map(str::to_owned),
            tally,
            roles: roles.into_iter().collect::<Vec<_>>().join(", "),
        })
        .collect();
    by_count(rows, |r| r.tally.allowing_v1)
}

/// One row per (account, role) behind instances that allow IMDSv1.
pub fn by_role(report: &ScanReport) -> Vec<RoleRow> {
    let mut t: BTreeMap<(&str, &str), (Tally, BTreeSet<&str>)> = BTreeMap::new();
    for r in report.allowing_v1() {
        let Some(role) = r.role_name.as_deref() else {
            continue;
        };
        let (tally, owners) = t.entry((r.account_id.as_str(), role)).or_default();
        tally.add(r.readiness, r.usage.as_ref().map_or(0, |u| u.v1_calls));
        owners.extend(r.owner.as_deref());
    }
    let rows = t
        .into_iter()
        .map(|((account, role), (tally, owners))| RoleRow {
            role_name: role.to_owned(),
            account_id: account.to_owned(),
            tally,
            owners: owners.into_iter().collect::<Vec<_>>().join(", "),
        })
        .collect();
    by_count(rows, |r| r.tally.allowing_v1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HttpTokens;
    use crate::report::InstanceRecord;
    use crate::report::test_support::record;

    fn rec(
        n: usize,
        tokens: HttpTokens,
        owner: Option<&str>,
        role: Option<&str>,
        v: Readiness,
    ) -> InstanceRecord {
        let mut r = record(n, tokens, v);
        r.owner = owner.map(str::to_owned);
        r.role_name = role.map(str::to_owned);
        r
    }

    #[test]
    fn groups_only_instances_that_allow_v1() {
        let report = ScanReport {
            instances: vec![
                rec(
                    1,
                    HttpTokens::Optional,
                    Some("alice"),
                    Some("web"),
                    Readiness::InUse,
                ),
                rec(
                    2,
                    HttpTokens::Optional,
                    Some("alice"),
                    Some("db"),
                    Readiness::Ready,
                ),
                rec(
                    3,
                    HttpTokens::Optional,
                    None,
                    Some("web"),
                    Readiness::Unknown,
                ),
                rec(
                    4,
                    HttpTokens::Required,
                    Some("bob"),
                    Some("web"),
                    Readiness::Compliant,
                ),
            ],
            ..Default::default()
        };
        let owners = by_owner(&report);
        assert_eq!(owners.len(), 2);
        assert_eq!(owners[0].owner.as_deref(), Some("alice"));
        assert_eq!(
            owners[0].tally,
            Tally {
                allowing_v1: 2,
                in_use: 1,
                ready: 1,
                unknown: 0,
                v1_calls: 0
            }
        );
        assert_eq!(owners[0].roles, "db, web");
        assert_eq!(owners[1].owner, None);
        let roles = by_role(&report);
        assert_eq!(
            (roles[0].role_name.as_str(), roles[0].tally.allowing_v1),
            ("web", 2)
        );
        assert_eq!(roles[0].owners, "alice");
    }
}
