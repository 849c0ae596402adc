//! The result of a scan as plain data: what renderers print and what the
//! store saves. Nothing here knows about AWS SDK types or output formats.

use crate::aws::AwsError;
use crate::model::{Instance, Posture};
use crate::readiness::{Readiness, Usage};

/// One day of one instance. Compact on purpose: a 100,000-instance scan
/// over 14 days holds 1.4 million of these.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DayPoint {
    /// Days since 1970-01-01 (UTC).
    pub day: i32,
    pub v1_calls: f64,
    pub rejected_calls: f64,
}

/// One day of the whole fleet: the before/after picture of an enforcement.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FleetDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub v1_calls: u64,
    pub rejected_calls: u64,
    pub instances_with_data: u64,
}

/// One instance with everything we derived about it.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub account_id: String,
    pub region: String,
    pub instance: Instance,
    /// The role inside the instance profile: what an SSRF would hand out.
    pub role_name: Option<String>,
    pub owner: Option<String>,
    pub asg_name: Option<String>,
    pub cfn_stack: Option<String>,
    /// `lt-...` and version, from the tags EC2 puts on instances it launched from a template.
    pub launch_template: Option<String>,
    pub container_host: bool,
    pub container_reason: Option<String>,
    pub usage: Option<Usage>,
    /// The daily series behind `usage`, days with data only, oldest first.
    pub daily: Vec<DayPoint>,
    pub readiness: Readiness,
    pub reason: String,
    /// What the latest `imdsguard trail` says made its IMDSv1 calls (the
    /// software and what to do), when one was read; see `ops::views`.
    pub v1_callers: Option<String>,
}

/// Counts for one account and region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionSummary {
    pub account_id: String,
    pub region: String,
    pub instances: u64,
    pub required: u64,
    pub optional: u64,
    pub disabled: u64,
    /// Instances per readiness verdict, in `Readiness::ALL` order.
    pub verdicts: [u64; 6],
    /// False when the region failed: its counts are then not the truth.
    pub complete: bool,
}

impl RegionSummary {
    pub fn add(&mut self, record: &InstanceRecord) {
        self.instances += 1;
        match record.instance.metadata.posture() {
            Posture::Required => self.required += 1,
            Posture::Optional => self.optional += 1,
            Posture::Disabled => self.disabled += 1,
        }
        let idx = Readiness::ALL
            .iter()
            .position(|r| *r == record.readiness)
            .expect("listed");
        self.verdicts[idx] += 1;
    }

    pub fn merge(&mut self, other: &RegionSummary) {
        self.instances += other.instances;
        self.required += other.required;
        self.optional += other.optional;
        self.disabled += other.disabled;
        for (a, b) in self.verdicts.iter_mut().zip(other.verdicts) {
            *a += b;
        }
        self.complete &= other.complete;
    }

    /// Instances with verdict `v`.
    pub fn count(&self, v: Readiness) -> u64 {
        self.verdicts[Readiness::ALL.iter().position(|r| *r == v).expect("listed")]
    }

    /// `required / instances`, metabadger's "percent enforced". `None` for no instances.
    pub fn percent_enforced(&self) -> Option<f64> {
        percent(self.required, self.instances)
    }

    /// `(required + disabled) / instances`: instances where v1 cannot be used.
    pub fn percent_protected(&self) -> Option<f64> {
        percent(self.required + self.disabled, self.instances)
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    // One decimal, so JSON and tables agree and tests can compare exactly.
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

/// Something that failed without stopping the scan.
#[derive(Debug, Clone)]
pub struct Failure {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub error: AwsError,
}

impl Failure {
    /// The one way an AWS error becomes a failure of an account or region.
    pub fn new(account_id: Option<&str>, region: Option<&str>, error: AwsError) -> Failure {
        Failure {
            account_id: account_id.map(str::to_owned),
            region: region.map(str::to_owned),
            error,
        }
    }
}

/// A whole scan.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// The scan's id in the database, once saved.
    pub id: Option<i64>,
    pub started_at: String,
    pub finished_at: String,
    /// The principal the scan ran as, per account (ARN).
    pub identities: Vec<(String, String)>,
    pub regions: Vec<RegionSummary>,
    pub instances: Vec<InstanceRecord>,
    pub failures: Vec<Failure>,
    /// Things the user should know that are not failures (roles unknown, ids not found).
    pub warnings: Vec<String>,
    /// The usage window in days, when usage was measured.
    pub usage_days: Option<u32>,
    /// Where new instances come from (templates, groups, defaults, AMIs).
    pub sources: crate::sources::Sources,
}

impl ScanReport {
    pub fn total(&self) -> RegionSummary {
        let mut total = RegionSummary {
            complete: true,
            ..Default::default()
        };
        for r in &self.regions {
            total.merge(r);
        }
        total
    }

    /// One summary per account (its regions merged; `region` left empty),
    /// in account order: the per-account view of a multi-account scan.
    pub fn by_account(&self) -> Vec<RegionSummary> {
        let mut accounts: std::collections::BTreeMap<&str, RegionSummary> = Default::default();
        for r in &self.regions {
            accounts
                .entry(&r.account_id)
                .or_insert_with(|| RegionSummary {
                    account_id: r.account_id.clone(),
                    complete: true,
                    ..Default::default()
                })
                .merge(r);
        }
        accounts.into_values().collect()
    }

    /// Instances that still answer IMDSv1, the ones that need action.
    pub fn allowing_v1(&self) -> impl Iterator<Item = &InstanceRecord> {
        self.instances
            .iter()
            .filter(|r| r.instance.metadata.allows_v1())
    }
}

/// Test records, for the tests of code that works on scan results.
#[cfg(test)]
pub mod test_support {
    use super::InstanceRecord;
    use crate::model::HttpTokens;
    use crate::readiness::Readiness;

    /// A quick instance record for tests of code that works on scan results.
    pub fn record(n: usize, tokens: HttpTokens, readiness: Readiness) -> InstanceRecord {
        InstanceRecord {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            instance: crate::aws::fake::instance(n, tokens),
            role_name: None,
            owner: None,
            asg_name: None,
            cfn_stack: None,
            launch_template: None,
            container_host: false,
            container_reason: None,
            usage: None,
            daily: Vec::new(),
            readiness,
            reason: "r".into(),
            v1_callers: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_to_one_decimal() {
        let s = RegionSummary {
            instances: 3,
            required: 1,
            disabled: 1,
            optional: 1,
            ..Default::default()
        };
        assert_eq!(s.percent_enforced(), Some(33.3));
        assert_eq!(s.percent_protected(), Some(66.7));
        assert_eq!(RegionSummary::default().percent_enforced(), None);
    }

    #[test]
    fn accounts_merge_their_regions() {
        let region = |account: &str, region: &str, required, optional, complete| RegionSummary {
            account_id: account.into(),
            region: region.into(),
            instances: required + optional,
            required,
            optional,
            complete,
            ..Default::default()
        };
        let report = ScanReport {
            regions: vec![
                region("2", "us-east-1", 1, 0, true),
                region("1", "us-east-1", 1, 2, true),
                region("1", "eu-west-1", 3, 0, false),
            ],
            ..Default::default()
        };
        let accounts = report.by_account();
        assert_eq!(accounts.len(), 2);
        assert_eq!(
            (
                accounts[0].account_id.as_str(),
                accounts[0].instances,
                accounts[0].required
            ),
            ("1", 6, 4)
        );
        assert!(
            !accounts[0].complete,
            "a failed region makes its account incomplete"
        );
        assert_eq!(
            (accounts[1].account_id.as_str(), accounts[1].instances),
            ("2", 1)
        );
    }
}
