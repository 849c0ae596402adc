//! imdsguard: take an AWS estate from IMDSv1 to IMDSv2 safely.
//!
//! The binary is thin: parse flags (`cli`), resolve them into the session,
//! the printer and each command's request (`settings`), run one command
//! (`commands`), print any error with its hint, and exit with a documented
//! code (`exit_codes`).

mod agents;
mod aws;
mod cli;
mod clock;
mod cloudtrail;
mod commands;
mod container;
mod error;
mod exit_codes;
mod fanout;
mod filter;
mod findings;
mod groups;
mod launch;
#[cfg(test)]
mod layers;
mod markdown;
mod model;
mod notify;
mod ops;
mod output;
mod plan;
mod policy;
mod printer;
mod progress;
mod readiness;
mod report;
mod rollout;
mod runs;
mod scan;
mod settings;
mod sources;
mod store;
mod text;
mod trail;
mod usage;

use clap::{CommandFactory, Parser};

use crate::cli::{
    AsgCommand, Cli, Command, DefaultsCommand, PolicyCommand, RolloutCommand, ShowCommand,
    TemplatesCommand,
};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::Session;
use crate::printer::Printer;
use crate::settings as s;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (session, printer) = match s::resolve(&cli.global) {
        Ok(resolved) => resolved,
        Err(e) => {
            Printer::fallback().error(&e.to_string(), &e.hint());
            return e.exit_code().into();
        }
    };
    init_logging(printer.verbosity, printer.stderr_style.color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&format!("cannot start the async runtime: {e}"), "");
            return ExitCode::Failure.into();
        }
    };
    match runtime.block_on(dispatch(cli.command, &session, &printer)) {
        Ok(code) => code.into(),
        Err(e) => {
            printer.error(&e.to_string(), &e.hint());
            e.exit_code().into()
        }
    }
}

/// Resolves each command's flags into its request and runs it.
async fn dispatch(command: Command, session: &Session, p: &Printer) -> Result<ExitCode, Error> {
    let db = session.db.as_path();
    match command {
        Command::Scan(a) => {
            let request = s::scan_request(
                &a.filters,
                &a.owner_tag,
                a.days,
                a.no_usage,
                !a.no_sources,
                a.fail_on,
            )?;
            commands::scan::run(session, p, request, s::scan_format(a.output.format)).await
        }
        Command::Show(ShowCommand::Instances(a)) => {
            commands::show::instances(db, p, a.scan, s::scan_format(a.output.format))
        }
        Command::Show(ShowCommand::Usage(a)) => {
            commands::show::usage(db, p, a.scan, a.fleet, s::format(a.output.format))
        }
        Command::Show(ShowCommand::Owners(a)) => {
            commands::show::owners(db, p, a.scan, s::rows_format(a.output.format))
        }
        Command::Show(ShowCommand::Roles(a)) => {
            commands::show::roles(db, p, a.scan, s::rows_format(a.output.format))
        }
        Command::Plan(a) => {
            let (request, source) = s::plan_request(s::action(a.action), &a.filters, &a.plan)?;
            commands::plan::run(session, p, request, source, s::format(a.output.format)).await
        }
        Command::Apply(a) => {
            let exec = s::exec_request(&a.exec, session);
            let format = s::format(a.output.format);
            match (a.resume, &a.plan) {
                (Some(run), _) => commands::resume::run(session, p, run, &exec, format).await,
                (None, Some(path)) => {
                    commands::apply::apply(session, p, path, a.max_plan_age, &exec, format).await
                }
                (None, None) => unreachable!("clap requires PLAN without --resume"),
            }
        }
        Command::Harden(a) => {
            let action = if a.allow_v1 {
                model::Action::AllowV1
            } else {
                model::Action::RequireV2
            };
            one_step(session, p, action, &a.step).await
        }
        Command::Disable(a) => one_step(session, p, model::Action::DisableEndpoint, &a.step).await,
        Command::Rollback(a) => {
            let exec = s::exec_request(&a.exec, session);
            let only = a.instance_ids.iter().cloned().collect();
            let format = s::format(a.output.format);
            commands::rollback::run(session, p, a.run, &only, a.force, &exec, format).await
        }
        Command::Runs(a) => match (a.run, a.effect) {
            (Some(run), true) => {
                commands::runs::effect(session, p, run, s::format(a.output.format)).await
            }
            _ => commands::runs::run(db, p, a.run, s::format(a.output.format)),
        },
        Command::Query(a) => commands::query::run(db, p, &a.sql, s::rows_format(a.output.format)),
        Command::History(o) => commands::query::history(db, p, s::rows_format(o.format)),
        Command::Report(a) => commands::report::run(db, p, a.scan, s::report_format(a.format)),
        Command::Rollout(r) => rollout(session, p, r).await,
        Command::Notify(a) => {
            let request = s::notify_request(&a)?;
            commands::notify::run(session, p, &request, a.yes, s::format(a.output.format)).await
        }
        Command::Policy(PolicyCommand::Declarative(a)) => commands::policy::declarative(
            db,
            p,
            a.hop_limit,
            &a.exception_message,
            a.format == cli::PolicyFormatArg::Json,
        ),
        Command::Policy(PolicyCommand::Scp(a)) => commands::policy::scp(
            db,
            p,
            &a.admin_role_arn,
            a.max_hop_limit,
            a.deny_v1_credentials,
            a.format == cli::PolicyFormatArg::Json,
        ),
        Command::Defaults(DefaultsCommand::Show(o)) => {
            commands::inventory::defaults(session, p, s::rows_format(o.format)).await
        }
        Command::Templates(TemplatesCommand::Show(o)) => {
            commands::inventory::templates(session, p, s::rows_format(o.format)).await
        }
        Command::Templates(TemplatesCommand::Fix(a)) => {
            commands::fix::run(session, p, s::templates_fix(&a), s::fix_flags(&a.opts)).await
        }
        Command::Trail(a) => {
            let request = s::trail_request(&a)?;
            if a.print_sql {
                return commands::trail::print_sql(p, &request);
            }
            commands::trail::run(session, p, &request, s::format(a.output.format)).await
        }
        Command::Asg(AsgCommand::Show(o)) => {
            commands::inventory::groups(session, p, s::rows_format(o.format)).await
        }
        Command::Asg(AsgCommand::Fix(a)) => {
            commands::fix::run(session, p, s::groups_fix(&a), s::fix_flags(&a.opts)).await
        }
        Command::Defaults(DefaultsCommand::Set(a)) => {
            commands::fix::run(session, p, s::defaults_set(&a), s::fix_flags(&a.opts)).await
        }
        Command::Completions(a) => commands::completions::run(p, s::shell(a.shell), Cli::command()),
        Command::Man(a) => commands::man::run(p, Cli::command(), a.dir.as_deref()),
    }
}

/// `rollout` and its steps.
async fn rollout(
    session: &Session,
    p: &Printer,
    command: RolloutCommand,
) -> Result<ExitCode, Error> {
    let db = session.db.as_path();
    match command {
        RolloutCommand::Start(a) => {
            let request = s::rollout_request(&a)?;
            let exec = s::exec_request(&a.exec, session);
            let format = s::format(a.output.format);
            commands::rollout::start(session, p, &a.plan, a.max_plan_age, &request, &exec, format)
                .await
        }
        RolloutCommand::Advance(a) => {
            let exec = s::exec_request(&a.exec, session);
            commands::rollout::advance(session, p, a.id, a.watch, &exec, s::format(a.output.format))
                .await
        }
        RolloutCommand::Resume(a) => {
            commands::rollout::resume(session, p, a.id, a.skip_group, s::format(a.output.format))
        }
        RolloutCommand::Abort(a) => {
            let exec = s::exec_request(&a.exec, session);
            commands::rollout::abort(session, p, a.id, &exec, s::format(a.output.format)).await
        }
        RolloutCommand::Status(a) if a.effect => {
            commands::rollout::effect(session, p, a.id, s::format(a.output.format)).await
        }
        RolloutCommand::Status(a) => {
            commands::rollout::status(db, p, a.id, s::format(a.output.format))
        }
        RolloutCommand::List(o) => commands::rollout::list(db, p, s::format(o.format)),
    }
}

/// `harden` and `disable`: a plan made now, then applied.
async fn one_step(
    session: &Session,
    p: &Printer,
    action: model::Action,
    step: &cli::OneStepArgs,
) -> Result<ExitCode, Error> {
    let (request, source) = s::plan_request(action, &step.filters, &step.plan)?;
    let exec = s::exec_request(&step.exec, session);
    let format = s::format(step.output.format);
    commands::apply::plan_and_apply(session, p, request, source, step.dry_run, &exec, format).await
}

/// Logs go to stderr; `-v` shows ours, `-vv` also the SDK's.
fn init_logging(verbosity: i8, ansi: bool) {
    let level = match verbosity {
        i8::MIN..=0 => return,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(verbosity >= 2)
        .with_ansi(ansi)
        .init();
}
