//! `imdsguard runs [RUN]`: the journal, read back.

use crate::cli::RunsArgs;
use crate::commands::emit;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output;
use crate::settings::Global;
use crate::store::Store;

pub fn run(global: &Global, args: &RunsArgs) -> Result<ExitCode, Error> {
    let store = Store::open(&global.db)?;
    match args.run {
        Some(id) => {
            let run = store.load_run(id)?;
            emit(global.out.as_deref(), |w| {
                output::run::render(&run, true, global.format, global.stdout_style, w)
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
