//! The session (how to reach AWS and the database) and the accounts a
//! command works on: the caller's own, a list (`--accounts`), or the whole
//! organization (`--org`), every other account through a role. Assumed-role
//! credentials are resolved lazily, so a refusal shows up as that account's
//! failure, not as the end of the command.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;

use super::OpsError;
use crate::aws::sdk::SessionOptions;
use crate::aws::{AccountApis, AwsProvider, RoleSettings};
use crate::fanout::{self, FanoutError, RegionRequest};
use crate::progress::Silent;
use crate::report::Failure;

/// Which accounts a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountScope {
    /// The account of the credentials in use.
    Current,
    /// These accounts, through the role.
    List(Vec<String>),
    /// Every active account of the organization, through the role.
    Organization,
}

/// Everything that says where a command works: AWS (credentials, endpoint,
/// retries), which accounts and regions, the database, and how much at once.
#[derive(Debug, Clone)]
pub struct Session {
    pub aws: SessionOptions,
    pub accounts: AccountScope,
    /// Set with `--role-name` (required with `--accounts` / `--org`).
    pub role: Option<RoleSettings>,
    pub regions: RegionRequest,
    pub db: PathBuf,
    /// Account-regions in flight in all (and accounts at once): `--concurrency`.
    pub concurrency: usize,
    /// AWS calls in flight at once in one account and region: `--region-calls`.
    pub region_calls: usize,
}

/// One account to work on.
pub struct Target {
    /// `None` for the caller's own account when no list was given (learned from STS).
    pub account_id: Option<String>,
    pub apis: AccountApis,
}

/// The API sets of the accounts a command touches, by account id.
pub type AccountMap = BTreeMap<String, AccountApis>;

/// The accounts of the session's scope.
pub async fn targets(
    session: &Session,
    provider: &dyn AwsProvider,
) -> Result<Vec<Target>, OpsError> {
    let ids = match &session.accounts {
        AccountScope::Current => {
            return Ok(vec![Target {
                account_id: None,
                apis: provider.own(),
            }]);
        }
        AccountScope::List(ids) => ids.clone(),
        AccountScope::Organization => provider.organization_accounts().await?,
    };
    let mut apis = accounts(session, provider, &ids.iter().cloned().collect()).await?;
    Ok(ids
        .into_iter()
        .filter_map(|id| {
            let a = apis.remove(&id)?;
            Some(Target {
                account_id: Some(id),
                apis: a,
            })
        })
        .collect())
}

/// API sets for exactly these accounts (those of a plan or a run): the
/// caller's own account with its credentials, the others through the role.
/// Without a role, an account that is not the caller's is refused.
pub async fn accounts(
    session: &Session,
    provider: &dyn AwsProvider,
    ids: &BTreeSet<String>,
) -> Result<AccountMap, OpsError> {
    let caller = provider.own().sts.caller_identity().await?.account_id;
    let mut out = BTreeMap::new();
    for id in ids {
        let apis = if *id == caller {
            provider.own()
        } else {
            let Some(role) = &session.role else {
                return Err(OpsError::NotReachable {
                    account: id.clone(),
                    caller,
                });
            };
            provider.assumed(id, role).await
        };
        out.insert(id.clone(), apis);
    }
    Ok(out)
}

/// The targets a scan ran on, by account id, to act on what it found. The
/// one target without an id (the caller's own account, no `--accounts`) is
/// `implicit_account`, the account the scan reported.
pub fn into_map(targets: Vec<Target>, implicit_account: Option<&str>) -> AccountMap {
    targets
        .into_iter()
        .filter_map(|t| {
            Some((
                t.account_id
                    .or_else(|| implicit_account.map(str::to_owned))?,
                t.apis,
            ))
        })
        .collect()
}

/// The EC2 clients of a map of accounts, as the run engine takes them.
pub fn fleet(apis: &AccountMap) -> crate::runs::Fleet<'_> {
    apis.iter()
        .map(|(id, a)| (id.clone(), a.ec2.as_ref()))
        .collect()
}

/// What visiting every region of every target found.
#[derive(Debug)]
pub struct Visited<T> {
    /// (account, region, answer), in target then region order.
    pub answers: Vec<(String, String, T)>,
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
}

/// Calls `visit` once per region of every target (see [`crate::fanout`]:
/// accounts and regions at once, bounded by the session's concurrency) and
/// collects the answers and every failure. An account that cannot be
/// reached is a failure; an unknown region is the command's error.
pub async fn each_region<'a, T, F, Fut>(
    session: &Session,
    targets: &'a [Target],
    visit: F,
) -> Result<Visited<T>, OpsError>
where
    F: Fn(&'a AccountApis, String) -> Fut,
    Fut: Future<Output = Result<T, crate::aws::AwsError>>,
{
    let permits = tokio::sync::Semaphore::new(session.concurrency.max(1));
    let (permits, visit) = (&permits, &visit);
    let per_account = fanout::visit_accounts(targets, session.concurrency, |t| async move {
        let found = fanout::account_regions(&t.apis, &session.regions, None).await;
        let found = match found {
            Ok(f) => f,
            Err(e) => return (t, Err(e)),
        };
        let regions =
            fanout::visit_regions(&found.regions, permits, &Silent, |r| visit(&t.apis, r)).await;
        (t, Ok((found, regions)))
    })
    .await;
    let mut out = Visited {
        answers: Vec::new(),
        failures: Vec::new(),
        warnings: Vec::new(),
    };
    for (t, result) in per_account {
        let (found, regions) = match result {
            Ok(r) => r,
            Err(FanoutError::Aws(error)) => {
                out.failures
                    .push(Failure::new(t.account_id.as_deref(), None, error));
                continue;
            }
            Err(FanoutError::Regions { account_id, error }) => {
                out.failures
                    .push(Failure::new(Some(&account_id), None, error));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let account = found.account_id;
        out.warnings.extend(
            found
                .warnings
                .into_iter()
                .map(|w| format!("{account}: {w}")),
        );
        out.failures.extend(found.failures);
        for (region, result) in regions {
            match result {
                Ok(v) => out.answers.push((account.clone(), region, v)),
                Err(error) => out
                    .failures
                    .push(Failure::new(Some(&account), Some(&region), error)),
            }
        }
    }
    Ok(out)
}
