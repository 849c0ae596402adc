//! Documented exit codes (see `--help` and the README).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// An error, or a partial result (some account or region failed).
    Failure = 1,
    /// Bad arguments or input; nothing was changed.
    Usage = 2,
    /// `scan --fail-on`: a finding at or above the threshold exists.
    Findings = 3,
    /// Stopped by Ctrl-C (the run can be resumed).
    Interrupted = 130,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}
