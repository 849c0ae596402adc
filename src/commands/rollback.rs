//! `imdsguard rollback RUN`: every instance a run changed goes back to its
//! exact previous options (see [`runs::rollback`]): resolve the input, let
//! the engine select, confirm, execute, report.

use std::collections::BTreeSet;

use crate::cli::RollbackArgs;
use crate::commands::accounts::{apis_for, fleet};
use crate::commands::apply::execute;
use crate::commands::{confirm, warn, warn_taken_over};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::filter::parse_instance_id;
use crate::model::HttpTokens;
use crate::runs::ledger::ChangeLog;
use crate::runs::rollback::Note;
use crate::runs::{self, status::field_changes};
use crate::settings::Global;
use crate::store::Store;

pub async fn run(global: &Global, args: &RollbackArgs) -> Result<ExitCode, Error> {
    let only: BTreeSet<String> = args
        .instance_ids
        .iter()
        .map(|i| parse_instance_id(i))
        .collect::<Result<_, _>>()?;
    let mut store = Store::open(&global.db)?;
    // Holds the parent's lease until this process is done with it.
    let candidates = runs::rollback::candidates(&mut store, args.run, &only)?;
    warn_taken_over(
        global.stderr_style,
        global.verbosity,
        &candidates.taken_over,
    );
    if candidates.changes.is_empty() {
        eprintln!("run {}: nothing to roll back", args.run);
        return Ok(ExitCode::Success);
    }
    let accounts: BTreeSet<String> = candidates
        .changes
        .iter()
        .map(|c| c.account_id.clone())
        .collect();
    let apis = apis_for(global, &accounts).await?;
    let fleet = fleet(&apis);
    let selection = runs::rollback::select(&fleet, &candidates, args.force).await?;
    for note in &selection.notes {
        let text = match note {
            Note::Gone(id) => format!("{id}: no longer exists"),
            Note::AlreadyPrevious(id) => format!("{id}: already at its previous options"),
            Note::ChangedAgain { instance_id, now } => format!(
                "{instance_id}: changed again since run {} (now {}); left alone (--force to override)",
                args.run,
                now.describe()
            ),
        };
        warn(global.stderr_style, global.verbosity, &text);
    }
    let left_alone = selection
        .notes
        .iter()
        .filter(|n| matches!(n, Note::ChangedAgain { .. }))
        .count();
    if selection.changes.is_empty() {
        eprintln!("run {}: nothing to roll back", args.run);
        return Ok(if left_alone > 0 {
            ExitCode::Failure
        } else {
            ExitCode::Success
        });
    }
    // EC2 refuses a return to optional tokens where the account enforces v2.
    let places = selection
        .changes
        .iter()
        .filter(|c| c.target.http_tokens == HttpTokens::Optional)
        .map(|c| (c.account_id.as_str(), c.region.as_str()))
        .collect();
    for (account, region) in runs::apply::enforced_defaults(&fleet, places).await {
        warn(
            global.stderr_style,
            global.verbosity,
            &format!(
                "{account} {region}: the account default has HttpTokensEnforced=enabled; EC2 will refuse to re-allow IMDSv1 there"
            ),
        );
    }
    let fields = field_changes(selection.changes.iter().map(|c| (&c.previous, &c.target)));
    if !confirm(
        &format!(
            "Roll back {} instance(s) changed by run {}?\n  {}\n",
            selection.changes.len(),
            args.run,
            crate::output::run::field_summary(&fields)
        ),
        args.exec.yes,
        global.verbosity,
    )? {
        eprintln!("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let log = args
        .exec
        .log
        .as_deref()
        .map(ChangeLog::open)
        .transpose()
        .map_err(|e| Error::Run(Box::new(e.into())))?;
    let log_path = log.as_ref().map(|l| l.path().display().to_string());
    let (run, guard) = runs::rollback::start(
        &mut store,
        &candidates.parent,
        &selection,
        log_path.as_deref(),
    )?;
    if global.verbosity >= 0 {
        eprintln!("run {run} started: rolling back run {}", args.run);
    }
    let code = execute(global, &fleet, &mut store, run, guard, &args.exec, log).await?;
    drop(candidates);
    // Instances left alone mean the run is not wholly undone: say so in the
    // exit code too, not only in a warning.
    if left_alone > 0 && code == ExitCode::Success {
        eprintln!(
            "{left_alone} instance(s) of run {} left alone (changed again since); `--force` rolls them back too",
            args.run
        );
        return Ok(ExitCode::Failure);
    }
    Ok(code)
}
