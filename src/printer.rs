//! The one printer: everything imdsguard writes goes through here. It owns
//! stdout (or `--out`), stderr, colour (`--color`, `NO_COLOR`, terminals),
//! verbosity (`-q` silences all but errors, `-v` adds detail) and progress
//! bars (drawn only when stderr is a terminal). Commands never call
//! `println!`/`eprintln!` themselves.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Error;
use crate::output::sanitize::terminal;
use crate::output::{Paint, Style};
use crate::progress::{Reporter, Silent};
use crate::report::Failure;

/// How output looks, decided once at the edge.
#[derive(Debug, Clone)]
pub struct Printer {
    /// Colour for what goes to stdout (never for `--out`).
    pub stdout_style: Style,
    /// Colour for messages on stderr.
    pub stderr_style: Style,
    /// -1 quiet, 0 normal, 1 `-v`, 2 `-vv`.
    pub verbosity: i8,
    /// Draw progress bars (stderr is a terminal, no `--no-progress`, no `-q`).
    pub progress: bool,
    /// `--out FILE`: the command's output goes there instead of stdout.
    pub out: Option<PathBuf>,
}

impl Printer {
    /// A plain printer for errors met before the flags are understood.
    pub fn fallback() -> Printer {
        Printer {
            stdout_style: Style { color: false },
            stderr_style: Style { color: false },
            verbosity: 0,
            progress: false,
            out: None,
        }
    }

    /// Writes the command's output to `--out` (atomically) or stdout.
    pub fn emit(
        &self,
        render: impl FnOnce(&mut dyn Write, Style) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        self.emit_to(self.out.as_deref(), render)
    }

    /// Writes to `path` (atomically: a temporary file with a random name,
    /// created exclusively beside it, synced, then renamed over it, so a
    /// failed run never leaves half a file and a planted symlink is never
    /// followed) or, without a path, to stdout.
    pub fn emit_to(
        &self,
        path: Option<&Path>,
        render: impl FnOnce(&mut dyn Write, Style) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        match path {
            Some(path) => write_file(path, |w| render(w, Style { color: false })),
            None => {
                let stdout = std::io::stdout();
                let mut lock = std::io::BufWriter::new(stdout.lock());
                match render(&mut lock, self.stdout_style).and_then(|_| lock.flush()) {
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

    /// Renders something for the user on stderr (unless `-q`), beside the
    /// command's output on stdout (a plan shown before its run's result).
    pub fn to_stderr(&self, render: impl FnOnce(&mut dyn Write, Style) -> std::io::Result<()>) {
        if self.verbosity >= 0 {
            let mut err = std::io::stderr().lock();
            let _ = render(&mut err, self.stderr_style);
        }
    }

    /// Something the user should know (unless `-q`), on stderr.
    pub fn note(&self, message: &str) {
        if self.verbosity >= 0 {
            eprintln!("{}", terminal(message));
        }
    }

    /// Detail for `-v` (timings and the like), on stderr.
    pub fn detail(&self, message: &str) {
        if self.verbosity >= 1 {
            eprintln!("{}", terminal(message));
        }
    }

    /// A warning (unless `-q`). Messages quote AWS text (names, error
    /// messages): it is shown escaped, on one line.
    pub fn warn(&self, message: &str) {
        if self.verbosity >= 0 {
            eprintln!(
                "{} {}",
                self.stderr_style.paint("warning:", Paint::Yellow),
                terminal(message)
            );
        }
    }

    /// An error and its hint (always shown).
    pub fn error(&self, message: &str, hint: &str) {
        eprintln!(
            "{} {}",
            self.stderr_style.paint("error:", Paint::Red),
            terminal(message)
        );
        if !hint.is_empty() {
            eprintln!(
                "  {} {}",
                self.stderr_style.paint("help:", Paint::Bold),
                terminal(hint)
            );
        }
    }

    /// Messages a renderer worded (see `output::run::aftermath`).
    pub fn messages(&self, messages: &[crate::output::run::Message]) {
        use crate::output::run::Message;
        for m in messages {
            match m {
                Message::Warning(text) => self.warn(text),
                Message::Error { text, hint } => self.error(text, hint),
                Message::Note(text) => self.note(text),
            }
        }
    }

    /// Each failure as one error line, prefixed by its account and region.
    pub fn failures(&self, failures: &[Failure]) {
        for f in failures {
            let place = match (&f.account_id, &f.region) {
                (Some(a), Some(r)) => format!("{a} {r}: "),
                (Some(a), None) => format!("{a}: "),
                (None, Some(r)) => format!("{r}: "),
                (None, None) => String::new(),
            };
            self.error(&format!("{place}{}", f.error), &f.error.hint());
        }
    }

    /// A progress reporter: a bar on a terminal, nothing elsewhere.
    pub fn reporter(&self, what: &'static str) -> Box<dyn Reporter> {
        if self.progress {
            Box::new(Bar::new(what))
        } else {
            Box::new(Silent)
        }
    }

    /// Asks "proceed? [y/N]" on a terminal; refuses without `--yes`
    /// elsewhere. With `--yes` the question is still shown (unless `-q`):
    /// CI logs then say what was about to change.
    pub fn confirm(&self, question: &str, detail: &str, yes: bool) -> Result<bool, Error> {
        use std::io::BufRead;
        if yes {
            if self.verbosity >= 0 {
                eprintln!("{} yes (--yes)", terminal(question));
                if !detail.is_empty() {
                    eprintln!("  {}", terminal(detail));
                }
            }
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage {
                message: "refusing to go on without confirmation: stdin is not a terminal".into(),
                hint: "pass --yes to confirm non-interactively".into(),
            });
        }
        if !detail.is_empty() {
            eprintln!("  {}", terminal(detail));
        }
        eprint!("{} [y/N] ", terminal(question));
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
}

fn write_file(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let io_err = |source| Error::Output {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".imdsguard-").suffix(".tmp");
    // The mode `File::create` gives (0666 less the umask), not a temporary
    // file's 0600: a report is shared like any file the user writes.
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

/// An indicatif bar on stderr.
struct Bar(ProgressBar);

impl Bar {
    fn new(what: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(what);
        Bar(bar)
    }
}

impl Reporter for Bar {
    fn start(&self, n: u64) {
        self.0.inc_length(n);
        self.0
            .enable_steady_tick(std::time::Duration::from_millis(120));
    }
    fn advance(&self, label: &str) {
        self.0.set_message(terminal(label).into_owned());
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
