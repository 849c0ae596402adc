//! `imdsguard runs [RUN]`: the journal, read back (read-only).

use crate::cli::RunsArgs;
use crate::commands::emit;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output;
use crate::settings::Global;
use crate::store::Store;

pub fn run(global: &Global, args: &RunsArgs) -> Result<ExitCode, Error> {
    // Reading the journal creates and migrates nothing.
    let store = Store::open_read_only(&global.db)?;
    store.require_current()?;
    match args.run {
        Some(id) => {
            let run = store.load_run(id)?;
            let view = output::run::RunView {
                run: &run,
                outcome: None,
                lease: store.lease(id)?,
                all: true,
            };
            emit(global.out.as_deref(), |w| {
                output::run::render(&view, global.format, global.stdout_style, w)
            })?;
        }
        None => {
            let runs = store.list_runs()?;
            emit(global.out.as_deref(), |w| {
                output::run::render_list(&runs, global.format, global.stdout_style, w)
            })?;
        }
    }
    Ok(ExitCode::Success)
}
