//! imdsguard: take an AWS estate from IMDSv1 to IMDSv2 safely.
//!
//! The binary is thin: parse flags (`cli`), merge them into settings
//! (`settings`), run one command (`commands`), print any error with its
//! hint, and exit with a documented code (`exit_codes`).

mod aws;
mod cli;
mod clock;
mod commands;
mod container;
mod error;
mod exit_codes;
mod filter;
mod findings;
mod groups;
mod journal;
mod model;
mod output;
mod plan;
mod progress;
mod readiness;
mod report;
mod runs;
mod scan;
mod settings;
mod store;
mod usage;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit_codes::ExitCode;
use crate::settings::Global;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let global = match Global::from_args(&cli.global) {
        Ok(g) => g,
        Err(e) => {
            let style = output::Style { color: false };
            commands::print_error(style, &e.to_string(), &e.hint());
            return e.exit_code().into();
        }
    };
    init_logging(global.verbosity, global.stderr_style.color);
    let is_report = matches!(&cli.command, Command::Report(_));
    let sarif_ok = is_report
        || matches!(
            &cli.command,
            Command::Scan(_)
                | Command::Show(cli::ShowArgs {
                    view: cli::ShowView::Instances,
                    ..
                })
        );
    let refused = match global.format {
        output::Format::Sarif if !sarif_ok => {
            Some("--format sarif is for findings: `scan`, `show instances` and `report`")
        }
        output::Format::Html if !is_report => Some("--format html is for `report`"),
        _ => None,
    };
    if let Some(message) = refused {
        let e = error::Error::Usage {
            message: message.into(),
            hint: "use --format json, csv or table here".into(),
        };
        commands::print_error(global.stderr_style, &e.to_string(), &e.hint());
        return e.exit_code().into();
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            commands::print_error(
                global.stderr_style,
                &format!("cannot start the async runtime: {e}"),
                "",
            );
            return ExitCode::Failure.into();
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Scan(args) => commands::scan::run(&global, args).await,
            Command::Show(args) => commands::show::run(&global, args),
            Command::Plan(args) => commands::plan::run(&global, args).await,
            Command::Apply(args) => commands::apply::run(&global, args).await,
            Command::Rollback(args) => commands::rollback::run(&global, args).await,
            Command::Runs(args) => commands::runs::run(&global, args),
            Command::Harden(args) => commands::apply::harden(&global, args).await,
            Command::Disable(args) => commands::apply::disable(&global, args).await,
            Command::Query(args) => commands::query::run(&global, args),
            Command::History => commands::query::history(&global),
            Command::Report(args) => commands::report::run(&global, args),
            Command::Policy(cli::PolicyCommand::Scp(args)) => commands::policy::run(&global, args),
            Command::Defaults(cli::DefaultsCommand::Show) => {
                commands::defaults::show(&global).await
            }
            Command::Templates(cli::TemplatesCommand::Show) => {
                commands::templates::show(&global).await
            }
        }
    });
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            commands::print_error(global.stderr_style, &e.to_string(), &e.hint());
            e.exit_code().into()
        }
    }
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
