//! `imdsguard runs [RUN]`: the journal, read back (read-only); with
//! `--effect`, the before/after proof of one run's changes.

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::views;
use crate::output::{self, Format};
use crate::printer::Printer;

pub fn run(
    db: &std::path::Path,
    printer: &Printer,
    run: Option<i64>,
    format: Format,
) -> Result<ExitCode, Error> {
    let store = views::open(db)?;
    match run {
        Some(id) if store.is_source_run(id)? => {
            let run = store.load_source_run(id)?;
            crate::commands::fix::show(printer, &run, format)?;
        }
        Some(id) => {
            let (run, lease) = views::run(&store, id)?;
            let view = output::run::RunView {
                run: &run,
                outcome: None,
                lease,
                all: true,
            };
            printer.emit(|w, style| output::run::render(&view, format, style, w))?;
        }
        None => {
            let runs = views::runs(&store)?;
            printer.emit(|w, style| output::run::render_list(&runs, format, style, w))?;
        }
    }
    Ok(ExitCode::Success)
}

/// `runs RUN --effect`: IMDSv1 calls of the run's changed instances before
/// and after their change (see `ops::effect`).
pub async fn effect(
    session: &crate::ops::Session,
    printer: &Printer,
    run: i64,
    format: Format,
) -> Result<ExitCode, Error> {
    let store = crate::ops::store(session)?;
    let changed = crate::ops::effect::of_run(&store.load_run(run)?);
    show_effect(
        session,
        printer,
        &store,
        &format!("run {run}"),
        &changed,
        format,
    )
    .await
}

/// Measures, keeps and renders the effect of `changed` (a run's or a
/// rollout's changes that landed).
pub async fn show_effect(
    session: &crate::ops::Session,
    printer: &Printer,
    store: &crate::store::Store,
    subject: &str,
    changed: &[crate::rollout::effect::Changed],
    format: Format,
) -> Result<ExitCode, Error> {
    if changed.is_empty() {
        printer.note(&format!(
            "{subject}: no change landed, so there is no effect to show"
        ));
        return Ok(ExitCode::Success);
    }
    let provider = crate::ops::provider(session).await?;
    let effect =
        crate::ops::effect::measure(session, provider.as_ref(), store, subject, changed).await?;
    printer.emit(|w, style| output::effect::render(subject, &effect, format, style, w))?;
    Ok(ExitCode::Success)
}
