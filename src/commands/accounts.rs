//! Reaching accounts: the caller's own, a list (`--accounts`), or the whole
//! organization (`--org`), each other account through `--role-name`.
//! Assumed-role credentials are resolved lazily by the SDK, so a refusal
//! shows up as that account's failure, not as the end of the run.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;

use crate::aws::{AccountApis, sdk};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output::rows::Rows;
use crate::report::Failure;
use crate::settings::{AccountScope, Global};
use futures::StreamExt;

/// One account to work on.
pub struct Target {
    /// `None` for the caller's own account when no list was given (learned from STS).
    pub account_id: Option<String>,
    pub apis: AccountApis,
}

/// The accounts a scan covers.
pub async fn scan_targets(global: &Global) -> Result<Vec<Target>, Error> {
    let base = sdk::load_config(&global.session).await?;
    let ids = match &global.accounts {
        AccountScope::Current => {
            return Ok(vec![Target {
                account_id: None,
                apis: sdk::account_apis(&base),
            }]);
        }
        AccountScope::List(ids) => ids.clone(),
        AccountScope::Organization => sdk::organization_accounts(&base).await?,
    };
    let mut apis = for_accounts(global, &base, &ids.iter().cloned().collect()).await?;
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

/// API sets for exactly these accounts (those of a plan or a run): the
/// caller's own account with its credentials, the others through the role.
pub async fn apis_for(
    global: &Global,
    accounts: &BTreeSet<String>,
) -> Result<BTreeMap<String, AccountApis>, Error> {
    let base = sdk::load_config(&global.session).await?;
    for_accounts(global, &base, accounts).await
}

async fn for_accounts(
    global: &Global,
    base: &SdkConfig,
    accounts: &BTreeSet<String>,
) -> Result<BTreeMap<String, AccountApis>, Error> {
    let caller = sdk::account_apis(base)
        .sts
        .caller_identity()
        .await?
        .account_id;
    let mut out = BTreeMap::new();
    for id in accounts {
        let apis = if *id == caller {
            sdk::account_apis(base)
        } else {
            let Some(role) = &global.role else {
                return Err(Error::Refused {
                    message: format!("account {id} is not the account of your credentials ({caller})"),
                    hint: "pass --role-name (and --external-id if needed) to assume a role in it, or use its credentials"
                        .into(),
                });
            };
            let config =
                sdk::assume_role_config(base, id, &role.role_name, role.external_id.as_deref())
                    .await;
            sdk::account_apis(&config)
        };
        out.insert(id.clone(), apis);
    }
    Ok(out)
}

/// The API sets of the accounts a command touches, by account id.
pub type AccountMap = BTreeMap<String, AccountApis>;

/// The EC2 clients of a map of accounts, as the run engine takes them.
pub fn fleet(apis: &AccountMap) -> crate::runs::Fleet<'_> {
    apis.iter()
        .map(|(id, a)| (id.clone(), a.ec2.as_ref()))
        .collect()
}

/// Calls `visit` once per region of every target (each account's regions
/// concurrently, `--concurrency` at a time) and collects the answers by
/// (account, region), in order, and every failure.
pub async fn each_region<'a, T, F, Fut>(
    global: &Global,
    targets: &'a [Target],
    visit: F,
) -> Result<(Vec<(String, String, T)>, Vec<Failure>), Error>
where
    F: Fn(&'a AccountApis, String) -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::aws::AwsError>>,
{
    let mut answers = Vec::new();
    let mut failures = Vec::new();
    for t in targets {
        let Some((account, regions)) = account_regions(global, t, &mut failures).await? else {
            continue;
        };
        let results: Vec<_> = futures::stream::iter(regions)
            .map(|region| {
                let call = visit(&t.apis, region.clone());
                async move { (region, call.await) }
            })
            .buffered(global.concurrency.max(1))
            .collect()
            .await;
        for (region, result) in results {
            match result {
                Ok(v) => answers.push((account.clone(), region, v)),
                Err(error) => failures.push(Failure {
                    account_id: Some(account.clone()),
                    region: Some(region),
                    error,
                }),
            }
        }
    }
    Ok((answers, failures))
}

/// Writes rows for a per-region listing, prints its failures, and exits 1
/// if any account or region failed.
pub fn finish_rows(
    global: &Global,
    kind: &str,
    rows: &Rows,
    failures: &[Failure],
) -> Result<ExitCode, Error> {
    crate::commands::emit(global.out.as_deref(), |w| {
        crate::output::rows::render(kind, rows, global.format, global.stdout_style, w)
    })?;
    print_failures(global, failures);
    Ok(if failures.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// The account id behind a target and its regions, resolved as a scan does
/// (see [`crate::scan::resolve_regions`]). An account that cannot be reached
/// is a failure; an unknown region is the command's error.
async fn account_regions(
    global: &Global,
    t: &Target,
    failures: &mut Vec<Failure>,
) -> Result<Option<(String, Vec<String>)>, Error> {
    let account = match t.apis.sts.caller_identity().await {
        Ok(i) => i.account_id,
        Err(error) => {
            failures.push(Failure {
                account_id: t.account_id.clone(),
                region: None,
                error,
            });
            return Ok(None);
        }
    };
    let mut warnings = Vec::new();
    let resolved =
        crate::scan::resolve_regions(&t.apis, &account, &global.regions, None, &mut warnings).await;
    for w in &warnings {
        crate::commands::warn(
            global.stderr_style,
            global.verbosity,
            &format!("{account}: {w}"),
        );
    }
    match resolved {
        Ok(r) => {
            failures.extend(r.disabled);
            Ok(Some((account, r.enabled)))
        }
        Err(crate::scan::ScanError::Aws(error)) => {
            failures.push(Failure {
                account_id: Some(account),
                region: None,
                error,
            });
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints each failure as one error line, prefixed by its account and
/// region, with its hint.
pub fn print_failures(global: &Global, failures: &[Failure]) {
    for f in failures {
        let place = match (&f.account_id, &f.region) {
            (Some(a), Some(r)) => format!("{a} {r}: "),
            (Some(a), None) => format!("{a}: "),
            (None, Some(r)) => format!("{r}: "),
            (None, None) => String::new(),
        };
        crate::commands::print_error(
            global.stderr_style,
            &format!("{place}{}", f.error),
            &f.error.hint(),
        );
    }
}
