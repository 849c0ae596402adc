//! `imdsguard rollback RUN`: every instance a run changed goes back to its
//! exact previous options (from the journal), as a new journaled run.

use std::collections::BTreeSet;

use crate::cli::RollbackArgs;
use crate::clock::now;
use crate::commands::accounts::{apis_for, describe_all};
use crate::commands::{apply, confirm, warn};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::filter::parse_instance_id;
use crate::journal::{ChangeStatus, NewChange};
use crate::model::HttpTokens;
use crate::settings::Global;
use crate::store::Store;

pub async fn run(global: &Global, args: &RollbackArgs) -> Result<ExitCode, Error> {
    let only: BTreeSet<String> = args
        .instance_ids
        .iter()
        .map(|i| parse_instance_id(i))
        .collect::<Result<_, _>>()?;
    let mut store = Store::open(&global.db)?;
    let parent = store.load_run(args.run)?;
    // Anything EC2 may have accepted: answered successes, unanswered calls,
    // and failures or stops after an attempt (a timed-out call can still land).
    // What actually landed is decided below, from what EC2 says now.
    let candidates: Vec<_> = parent
        .changes
        .iter()
        .filter(|c| match c.status {
            ChangeStatus::Applied | ChangeStatus::Pending | ChangeStatus::Issued => true,
            ChangeStatus::Failed | ChangeStatus::Planned => c.attempts > 0,
            ChangeStatus::Skipped => false,
        })
        .filter(|c| only.is_empty() || only.contains(&c.instance_id))
        .collect();
    if candidates.is_empty() {
        eprintln!("run {}: nothing to roll back", args.run);
        return Ok(ExitCode::Success);
    }
    let apis = apis_for(
        global,
        &candidates.iter().map(|c| c.account_id.clone()).collect(),
    )
    .await?;
    let seen = describe_all(
        &apis,
        candidates.iter().map(|c| {
            (
                c.account_id.as_str(),
                c.region.as_str(),
                c.instance_id.as_str(),
            )
        }),
    )
    .await;
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    for c in &candidates {
        match seen.get(&(
            c.account_id.clone(),
            c.region.clone(),
            c.instance_id.clone(),
        )) {
            Some(Err(e)) => return Err(Error::Aws(e.clone())),
            Some(Ok(None)) | None => notes.push(format!("{}: no longer exists", c.instance_id)),
            Some(Ok(Some((now, _)))) if *now == c.previous => {
                // Expected for failed attempts; worth a word for accepted ones.
                if matches!(c.status, ChangeStatus::Applied | ChangeStatus::Pending) {
                    notes.push(format!(
                        "{}: already at its previous options",
                        c.instance_id
                    ));
                }
            }
            Some(Ok(Some((now, _)))) if *now != c.target && !args.force => notes.push(format!(
                "{}: changed again since run {} (now {}); left alone (--force to override)",
                c.instance_id,
                args.run,
                now.describe()
            )),
            Some(Ok(Some((now, _)))) => changes.push(NewChange {
                account_id: c.account_id.clone(),
                region: c.region.clone(),
                instance_id: c.instance_id.clone(),
                previous: *now,
                target: c.previous,
            }),
        }
    }
    for n in &notes {
        warn(global.stderr_style, global.verbosity, n);
    }
    if changes.is_empty() {
        eprintln!("run {}: nothing to roll back", args.run);
        return Ok(ExitCode::Success);
    }
    // EC2 refuses a return to optional tokens where the account enforces v2.
    let places: BTreeSet<(&str, &str)> = changes
        .iter()
        .filter(|c| c.target.http_tokens == HttpTokens::Optional)
        .map(|c| (c.account_id.as_str(), c.region.as_str()))
        .collect();
    for (account, region) in places {
        let Some(a) = apis.get(account) else { continue };
        if let Ok(d) = a.ec2.metadata_defaults(region).await
            && d.http_tokens_enforced.as_deref() == Some("enabled")
        {
            warn(
                global.stderr_style,
                global.verbosity,
                &format!(
                    "{region}: the account default has HttpTokensEnforced=enabled; EC2 will refuse to re-allow IMDSv1 there"
                ),
            );
        }
    }
    if !confirm(
        &format!(
            "Roll back {} instance(s) changed by run {}?",
            changes.len(),
            args.run
        ),
        args.exec.yes,
    )? {
        eprintln!("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let run = store.create_run(
        "rollback",
        "rollback",
        Some(args.run),
        None,
        &now(),
        &changes,
    )?;
    if global.verbosity >= 0 {
        eprintln!("run {run} started: rolling back run {}", args.run);
    }
    apply::execute(global, &apis, &mut store, run, "rollback", &args.exec).await
}
