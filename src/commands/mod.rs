//! One module per subcommand: each wires settings, the AWS layer, the
//! engine, the store and a renderer together, and returns an exit code.

pub mod accounts;
pub mod apply;
pub mod defaults;
pub mod plan;
pub mod policy;
pub mod query;
pub mod report;
pub mod rollback;
pub mod runs;
pub mod scan;
pub mod show;
pub mod templates;

use std::io::Write;
use std::path::Path;

use crate::error::Error;
use crate::output::Style;
use crate::output::sanitize::terminal;

/// Writes `render`'s output to `--out` (atomically: a temp file renamed into
/// place, so a failed run never leaves half a report) or to stdout.
pub fn emit(
    out: Option<&Path>,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    match out {
        Some(path) => {
            let io_err = |source| Error::Output {
                path: path.to_owned(),
                source,
            };
            // A temporary file with a random name, created exclusively
            // (O_EXCL: never through a planted symlink) in the target's
            // directory, written, synced, then renamed over the target.
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let mut builder = tempfile::Builder::new();
            builder.prefix(".imdsguard-").suffix(".tmp");
            // The mode `File::create` gives (0666 less the umask), not a
            // temporary file's 0600: a report is shared like any file.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                builder.permissions(std::fs::Permissions::from_mode(0o666));
            }
            let tmp = builder.tempfile_in(dir).map_err(io_err)?;
            let mut file = std::io::BufWriter::new(tmp);
            render(&mut file).map_err(io_err)?;
            file.flush().map_err(io_err)?;
            let tmp = file.into_inner().map_err(|e| io_err(e.into_error()))?;
            tmp.as_file().sync_all().map_err(io_err)?;
            tmp.persist(path).map_err(|e| io_err(e.error))?;
            // The rename itself is durable once the directory is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            match render(&mut lock).and_then(|_| lock.flush()) {
                Ok(()) => Ok(()),
                // `imdsguard scan | head` is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(source) => Err(Error::Output {
                    path: "<stdout>".into(),
                    source,
                }),
            }
        }
    }
}

/// Asks "proceed? [y/N]" on a terminal; refuses without `--yes` elsewhere.
/// With `--yes` the question is still shown (unless `-q`): CI logs then say
/// what was about to change.
pub fn confirm(question: &str, yes: bool, verbosity: i8) -> Result<bool, Error> {
    use std::io::{BufRead, IsTerminal};
    if yes {
        if verbosity >= 0 {
            // The answer goes after the question, before any detail lines.
            let (ask, detail) = question.split_once('\n').unwrap_or((question, ""));
            eprintln!("{ask} yes (--yes)");
            if !detail.trim().is_empty() {
                eprintln!("{}", detail.trim_end());
            }
        }
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage {
            message: "refusing to change AWS without confirmation: stdin is not a terminal".into(),
            hint: "pass --yes to confirm non-interactively".into(),
        });
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Usage {
            message: format!("cannot read the answer: {e}"),
            hint: "pass --yes to confirm non-interactively".into(),
        })?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Prints a warning on stderr (unless `-q`). Messages quote AWS text (names,
/// error messages): it is shown escaped, one line.
pub fn warn(style: Style, verbosity: i8, message: &str) {
    if verbosity >= 0 {
        eprintln!(
            "{} {}",
            style.paint("warning:", crate::output::Paint::Yellow),
            terminal(message)
        );
    }
}

/// Warns about each run lease taken over from a process that was gone.
pub fn warn_taken_over(style: Style, verbosity: i8, taken: &crate::runs::lease::TakenOver) {
    for (lease, why) in taken {
        warn(
            style,
            verbosity,
            &format!(
                "run {} was held by {} ({why}); taking it over",
                lease.run,
                crate::runs::lease::describe_holder(lease)
            ),
        );
    }
}

/// Prints an error and its hint on stderr, AWS text escaped.
pub fn print_error(style: Style, message: &str, hint: &str) {
    eprintln!(
        "{} {}",
        style.paint("error:", crate::output::Paint::Red),
        terminal(message)
    );
    if !hint.is_empty() {
        eprintln!(
            "  {} {}",
            style.paint("help:", crate::output::Paint::Bold),
            terminal(hint)
        );
    }
}
