//! `imdsguard apply PLAN`, `harden` and `disable`: resolve the plan (a file,
//! or one made now), let the operation check it against EC2, confirm, start
//! the run, drive it and report (see `commands::drive`).

use std::time::Duration;

use crate::commands::drive::{ExecRequest, drive, open_log, report};
use crate::commands::make_plan;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::model::Action;
use crate::ops::fleet::{AccountMap, fleet, into_map};
use crate::ops::plan::Source;
use crate::ops::{self, Session};
use crate::output::{self, Format};
use crate::plan::{Plan, PlanRequest};
use crate::printer::Printer;
use crate::store::Store;

/// `apply PLAN`: every check of the plan file comes before the database or AWS.
pub async fn apply(
    session: &Session,
    printer: &Printer,
    path: &std::path::Path,
    max_age: Duration,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let Some((plan, plan_json)) = crate::commands::read_plan(printer, path, max_age)? else {
        return Ok(ExitCode::Success);
    };
    let mut store = ops::store(session)?;
    let provider = ops::provider(session).await?;
    let apis = ops::apply::plan_accounts(session, provider.as_ref(), &plan).await?;
    apply_plan(printer, &apis, &mut store, &plan, &plan_json, exec, format).await
}

/// `harden` / `disable`: plan now (printed on stderr), then apply.
pub async fn plan_and_apply(
    session: &Session,
    printer: &Printer,
    request: PlanRequest,
    source: Source,
    dry_run: bool,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let mut store = ops::store(session)?;
    let (plan, targets, scan_code) =
        make_plan(session, printer, &mut store, &request, source).await?;
    if dry_run || plan.changes.is_empty() {
        printer.emit(|w, style| output::plan::render(&plan, format, style, w))?;
        if plan.changes.is_empty() {
            printer.note("nothing to do");
        }
        return Ok(scan_code);
    }
    // The plan goes to stderr so stdout stays the run's result.
    if format == Format::Table {
        printer.to_stderr(|w, style| {
            output::plan::render(&plan, Format::Table, style, w)?;
            writeln!(w)
        });
    }
    let plan_json = serde_json::to_string_pretty(&plan).expect("plans serialize");
    // The scan's clients (and their credentials, assumed roles included)
    // serve the changes too: no second round of credential resolution.
    let implicit = plan.changes.first().map(|c| c.account_id.as_str());
    let apis = into_map(targets, implicit);
    let code = apply_plan(printer, &apis, &mut store, &plan, &plan_json, exec, format).await?;
    Ok(if scan_code == ExitCode::Success {
        code
    } else {
        ExitCode::Failure
    })
}

/// The checks, the question, the run.
async fn apply_plan(
    printer: &Printer,
    apis: &AccountMap,
    store: &mut Store,
    plan: &Plan,
    plan_json: &str,
    exec: &ExecRequest,
    format: Format,
) -> Result<ExitCode, Error> {
    let checked = ops::apply::check(apis, plan).await?;
    for (account, region) in &checked.enforced {
        let what = if plan.action == Action::AllowV1 {
            "EC2 will refuse these changes to HttpTokens=optional"
        } else {
            "a later rollback to HttpTokens=optional will be refused"
        };
        printer.warn(&format!(
            "{account} {region}: the account default has HttpTokensEnforced=enabled: {what}"
        ));
    }
    let question = format!(
        "Apply {} to {} instance(s) in {} region(s) of {}{}?",
        plan.action.as_str(),
        checked.to_send,
        checked.regions,
        match checked.accounts.len() {
            1 => format!("account {}", checked.accounts.first().expect("one")),
            n => format!("{n} accounts"),
        },
        match checked.at_target {
            0 => String::new(),
            n => format!(" ({n} already at target)"),
        },
    );
    let detail = output::run::field_summary(&checked.fields);
    if !printer.confirm(&question, &detail, exec.yes)? {
        printer.note("aborted: nothing was changed");
        return Ok(ExitCode::Failure);
    }
    let log = open_log(exec.log.as_deref())?;
    let path = log.as_ref().map(|l| l.path().display().to_string());
    let (run, guard) = crate::runs::apply::start(store, plan, plan_json, path.as_deref(), None)?;
    printer.note(&format!("run {run} started: {} change(s)", checked.to_send));
    let finished = drive(printer, store, &fleet(apis), run, guard, exec, log).await?;
    report(printer, &finished, format)
}
