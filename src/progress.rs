//! Progress reporting. The engine reports through the small [`Reporter`]
//! trait; only the printer at the edge draws a bar (stderr is a terminal,
//! not `--no-progress`, not `-q`), as uv does.

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
