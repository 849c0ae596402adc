//! "What breaks if we enforce, and who do we tell?": a scan's instances
//! that still allow IMDSv1, grouped by owner tag and by IAM role (what an
//! SSRF would hand out). Plain rows, rendered by `output::rows`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::output::rows::Rows;
use crate::readiness::Readiness;
use crate::report::ScanReport;

#[derive(Default)]
struct Tally {
    allowing_v1: u64,
    in_use: u64,
    ready: u64,
    unknown: u64,
    v1_calls: u64,
    others: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, readiness: Readiness, v1_calls: u64, other: Option<&str>) {
        self.allowing_v1 += 1;
        match readiness {
            Readiness::InUse => self.in_use += 1,
            Readiness::Ready => self.ready += 1,
            _ => self.unknown += 1,
        }
        self.v1_calls += v1_calls;
        if let Some(o) = other {
            self.others.insert(o.to_owned());
        }
    }

    fn row(&self, mut head: Vec<Value>) -> Vec<Value> {
        head.extend([
            Value::from(self.allowing_v1),
            Value::from(self.in_use),
            Value::from(self.ready),
            Value::from(self.unknown),
            Value::from(self.v1_calls),
            Value::from(self.others.iter().cloned().collect::<Vec<_>>().join(", ")),
        ]);
        head
    }
}

fn columns(head: &[&str], other: &str) -> Vec<String> {
    head.iter()
        .copied()
        .chain([
            "allowing_v1",
            "in_use",
            "ready",
            "unknown",
            "v1_calls",
            other,
        ])
        .map(str::to_owned)
        .collect()
}

fn sorted(mut rows: Vec<Vec<Value>>, count_col: usize) -> Vec<Vec<Value>> {
    rows.sort_by(|a, b| b[count_col].as_u64().cmp(&a[count_col].as_u64()));
    rows
}

/// One row per owner (instances without an owner tag: owner `null`).
pub fn by_owner(report: &ScanReport) -> Rows {
    let mut t: BTreeMap<Option<&str>, Tally> = BTreeMap::new();
    for r in report.allowing_v1() {
        let calls = r.usage.as_ref().map_or(0, |u| u.v1_calls);
        t.entry(r.owner.as_deref())
            .or_default()
            .add(r.readiness, calls, r.role_name.as_deref());
    }
    let rows = t
        .iter()
        .map(|(owner, tally)| tally.row(vec![owner.map_or(Value::Null, Value::from)]))
        .collect();
    Rows {
        columns: columns(&["owner"], "roles"),
        rows: sorted(rows, 1),
    }
}

/// One row per (account, role) behind instances that allow IMDSv1.
pub fn by_role(report: &ScanReport) -> Rows {
    let mut t: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    for r in report.allowing_v1() {
        let Some(role) = r.role_name.as_deref() else {
            continue;
        };
        let calls = r.usage.as_ref().map_or(0, |u| u.v1_calls);
        t.entry((r.account_id.as_str(), role)).or_default().add(
            r.readiness,
            calls,
            r.owner.as_deref(),
        );
    }
    let rows = t
        .iter()
        .map(|((account, role), tally)| tally.row(vec![Value::from(*role), Value::from(*account)]))
        .collect();
    Rows {
        columns: columns(&["role_name", "account_id"], "owners"),
        rows: sorted(rows, 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::record;
    use crate::model::HttpTokens;
    use crate::report::InstanceRecord;

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
        assert_eq!(owners.rows.len(), 2);
        assert_eq!(owners.rows[0][0], Value::from("alice"));
        assert_eq!(
            owners.rows[0][1..5],
            [
                Value::from(2),
                Value::from(1),
                Value::from(1),
                Value::from(0)
            ]
        );
        assert_eq!(owners.rows[0][6], Value::from("db, web"));
        assert_eq!(owners.rows[1][0], Value::Null);
        let roles = by_role(&report);
        assert_eq!(roles.rows[0][0], Value::from("web"));
        assert_eq!(roles.rows[0][2], Value::from(2));
        assert_eq!(roles.rows[0][7], Value::from("alice"));
    }
}
