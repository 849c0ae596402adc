//! Progress reporting. The engine reports through the small [`Reporter`]
//! trait; only the binary's edge decides whether to draw a bar (stderr is a
//! terminal, not `--no-progress`, not `-q`), as uv does.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub trait Reporter: Send + Sync {
    /// `n` more units of work (regions, changes) are about to start.
    fn start(&self, _n: u64) {}
    /// One unit finished; `label` says which.
    fn advance(&self, _label: &str) {}
    fn finish(&self) {}
}

/// Reports nothing (pipes, CI, `-q`, tests).
pub struct Silent;
impl Reporter for Silent {}

/// An indicatif bar on stderr.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(what: &'static str) -> Self {
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
        self.0.set_message(label.to_owned());
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
