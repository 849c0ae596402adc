//! The operations against a fake organisation: `--org`, `--accounts`, an
//! account that cannot be reached, the one fan-out, and the refusals that
//! come before any change.

use crate::aws::fake::{FakeAccount, FakeProvider, instance};
use crate::aws::{AwsErrorKind, AwsProvider, Operation, RoleSettings};
use crate::fanout::RegionRequest;
use crate::filter::Selection;
use crate::model::HttpTokens;
use crate::progress::Silent;
use crate::store::Store;

use super::fleet::{self, AccountScope, Session};
use super::scan::{ScanRequest, scan};
use super::{OpsError, inventory};

const ME: &str = "111111111111";
const A: &str = "222222222222";
const B: &str = "333333333333";

fn session(accounts: AccountScope, role: bool) -> Session {
    Session {
        aws: Default::default(),
        accounts,
        role: role.then(|| RoleSettings {
            role_name: "Audit".into(),
            external_id: None,
        }),
        regions: RegionRequest::All,
        db: ":memory:".into(),
        concurrency: 4,
        region_calls: 4,
    }
}

/// An account with `n` instances that allow IMDSv1 in one region.
fn account(id: &'static str, n: usize) -> crate::aws::fake::MakeApis {
    Box::new(move || {
        let mut a = FakeAccount::new(&["us-east-1"]);
        a.ec2.instances.insert(
            "us-east-1".into(),
            (0..n).map(|i| instance(i, HttpTokens::Optional)).collect(),
        );
        a.into_apis_as(id)
    })
}

fn org() -> FakeProvider {
    let mut p = FakeProvider::new(ME)
        .with(ME, account(ME, 1))
        .with(A, account(A, 2))
        .with(B, account(B, 3));
    p.org = Ok(vec![ME.into(), A.into(), B.into()]);
    p
}

fn request() -> ScanRequest {
    ScanRequest {
        selection: Selection::default(),
        owner_tags: vec!["owner".into()],
        window: None,
        sources: true,
        fail_on: None,
    }
}

#[tokio::test]
async fn the_organization_is_scanned_account_by_account_through_the_role() {
    let provider = org();
    let s = session(AccountScope::Organization, true);
    let targets = fleet::targets(&s, &provider).await.unwrap();
    assert_eq!(
        targets
            .iter()
            .map(|t| t.account_id.as_deref())
            .collect::<Vec<_>>(),
        vec![Some(ME), Some(A), Some(B)]
    );
    // The caller's own account uses its credentials; the others the role.
    assert_eq!(*provider.assumed.lock().unwrap(), vec![A, B]);
    let mut store = Store::in_memory();
    let scanned = scan(&s, &targets, &mut store, request(), &Silent)
        .await
        .unwrap();
    let per_account: Vec<(String, u64)> = scanned
        .report
        .regions
        .iter()
        .map(|r| (r.account_id.clone(), r.instances))
        .collect();
    assert_eq!(
        per_account,
        vec![(ME.into(), 1), (A.into(), 2), (B.into(), 3)]
    );
    assert!(scanned.report.failures.is_empty());
    // Assessed once, when the scan was made: the six instances, and each
    // account's one region whose default has no preference.
    let rules = |id: &str| scanned.findings.iter().filter(|f| f.rule == id).count();
    assert_eq!(scanned.findings.len(), 9);
    assert_eq!(rules("account-default-allows-v1"), 3);
    assert!(scanned.report.id.is_some(), "saved");
}

#[tokio::test]
async fn an_account_that_cannot_be_reached_is_its_failure_not_the_end() {
    let provider = FakeProvider::new(ME)
        .with(ME, account(ME, 1))
        .with(A, account(A, 2)); // B is unknown: its role cannot be assumed
    let s = session(AccountScope::List(vec![A.into(), B.into()]), true);
    let targets = fleet::targets(&s, &provider).await.unwrap();
    let mut store = Store::in_memory();
    let scanned = scan(&s, &targets, &mut store, request(), &Silent)
        .await
        .unwrap();
    assert_eq!(scanned.report.instances.len(), 2);
    let f = &scanned.report.failures;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].account_id.as_deref(), Some(B));
    assert_eq!(
        (f[0].error.operation, f[0].error.kind),
        (Operation::AssumeRole, AwsErrorKind::AccessDenied)
    );
}

#[tokio::test]
async fn without_a_role_only_the_callers_account_is_reachable() {
    let provider = org();
    let s = session(AccountScope::Current, false);
    let ids = [ME.to_owned(), A.to_owned()].into_iter().collect();
    match fleet::accounts(&s, &provider, &ids).await {
        Err(OpsError::NotReachable { account, caller }) => {
            assert_eq!((account.as_str(), caller.as_str()), (A, ME));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("reached an account without a role"),
    }
    let only_me = [ME.to_owned()].into_iter().collect();
    let map = fleet::accounts(&s, &provider, &only_me).await.unwrap();
    assert_eq!(map.keys().collect::<Vec<_>>(), vec![ME]);
    assert!(provider.assumed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn one_fan_out_reports_each_account_and_region_apart() {
    let provider = FakeProvider::new(ME).with(ME, account(ME, 0)).with(
        A,
        Box::new(|| {
            let mut a = FakeAccount::new(&["us-east-1", "eu-west-1"]);
            a.ec2.defaults_error.insert(
                "eu-west-1".into(),
                crate::aws::AwsError::from_code(
                    Operation::GetInstanceMetadataDefaults,
                    Some("UnauthorizedOperation"),
                    Some("no"),
                    None,
                ),
            );
            a.into_apis_as(A)
        }),
    );
    let s = session(AccountScope::List(vec![A.into(), B.into()]), true);
    let targets = fleet::targets(&s, &provider).await.unwrap();
    let listing = inventory::defaults(&s, &targets).await.unwrap();
    assert_eq!(
        listing
            .rows
            .iter()
            .map(|r| (r.account_id.as_str(), r.region.as_str()))
            .collect::<Vec<_>>(),
        vec![(A, "us-east-1")]
    );
    let mut failed: Vec<(Option<&str>, Option<&str>)> = listing
        .failures
        .iter()
        .map(|f| (f.account_id.as_deref(), f.region.as_deref()))
        .collect();
    failed.sort();
    assert_eq!(failed, vec![(Some(A), Some("eu-west-1")), (Some(B), None)]);
}

#[tokio::test]
async fn an_unknown_region_is_the_commands_error() {
    let provider = org();
    let mut s = session(AccountScope::Current, false);
    s.regions = RegionRequest::List(vec!["us-east-9".into()]);
    let targets = fleet::targets(&s, &provider).await.unwrap();
    assert!(matches!(
        inventory::templates(&s, &targets).await,
        Err(OpsError::UnknownRegion { ref name, .. }) if name == "us-east-9"
    ));
}

#[tokio::test]
async fn the_provider_is_asked_for_the_organization_once() {
    let mut provider = org();
    provider.org = Err(crate::aws::AwsError::from_code(
        Operation::ListAccounts,
        Some("AccessDeniedException"),
        Some("not the management account"),
        None,
    ));
    let s = session(AccountScope::Organization, true);
    match fleet::targets(&s, &provider as &dyn AwsProvider).await {
        Err(OpsError::Aws(e)) => assert_eq!(e.operation, Operation::ListAccounts),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an organization without ListAccounts"),
    }
}
