//! The errors a command can end with, each with a one-line message, a
//! one-line hint and an exit code. `main` prints them; nothing panics.

use std::path::PathBuf;

use crate::aws::AwsError;
use crate::exit_codes::ExitCode;
use crate::filter::SelectionError;
use crate::ops::OpsError;
use crate::plan::PlanError;
use crate::runs::RunError;
use crate::store::StoreError;
use crate::store::query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag value that clap could not catch.
    #[error("{message}")]
    Usage { message: String, hint: String },
    #[error(transparent)]
    Selection(#[from] SelectionError),
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("unknown region `{name}`")]
    UnknownRegion {
        name: String,
        suggestion: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Run(Box<RunError>),
    /// A safety check refused to change anything (drift, missing instances, wrong account).
    #[error("{message}")]
    Refused { message: String, hint: String },
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        match e {
            // The same advice as anywhere else these come up.
            RunError::Aws(e) => Error::Aws(e),
            RunError::Store(e) => Error::Store(e),
            e => Error::Run(Box::new(e)),
        }
    }
}

impl From<OpsError> for Error {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Aws(e) => Error::Aws(e),
            OpsError::UnknownRegion { name, known } => {
                let suggestion = closest(&name, &known);
                Error::UnknownRegion { name, suggestion }
            }
            OpsError::Store(e) => Error::Store(e),
            OpsError::Plan(e) => Error::Plan(e),
            OpsError::Run(e) => e.into(),
            e @ OpsError::NotReachable { .. } => Error::Refused {
                message: e.to_string(),
                hint: "pass --role-name (and --external-id if needed) to assume a role in it, or use its credentials".into(),
            },
            e @ OpsError::Missing(_) => Error::Refused {
                message: e.to_string(),
                hint: "re-run `imdsguard plan` to plan against the current fleet".into(),
            },
            OpsError::Write { path, source } => Error::Output { path, source },
            e @ OpsError::Changed(_) => Error::Refused {
                message: e.to_string(),
                hint: "re-run `imdsguard plan` so the plan matches what is there now".into(),
            },
        }
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Self {
        let hint = match e {
            QueryError::Writes => "use SELECT (or WITH ... SELECT)",
            QueryError::Attach => "query the imdsguard database itself (--db picks which one)",
            QueryError::Sql(_) => {
                "tables: scans, scan_regions, scan_failures, instances, usage, usage_daily, runs, changes, run_leases \
                 (e.g. SELECT region, COUNT(*) FROM instances WHERE http_tokens = 'optional' GROUP BY region)"
            }
        };
        Error::Usage {
            message: e.to_string(),
            hint: hint.into(),
        }
    }
}

impl Error {
    pub fn hint(&self) -> String {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::Selection(e) => e.hint().to_owned(),
            Error::Aws(e) => e.hint(),
            Error::UnknownRegion { suggestion, .. } => match suggestion {
                Some(s) => format!("did you mean `{s}`? `--regions all` scans every enabled region"),
                None => "`aws ec2 describe-regions --all-regions` lists region names; `--regions all` scans every enabled region".into(),
            },
            Error::Store(e) => e.hint().to_owned(),
            Error::Output { .. } => "check that the directory exists and is writable".into(),
            Error::Plan(e) => e.hint().to_owned(),
            Error::Run(e) => match e.as_ref() {
                RunError::Store(e) => e.hint().to_owned(),
                RunError::Aws(e) => e.hint(),
                RunError::Ledger(_) => {
                    "check that the --log file's directory exists and is writable (the journal in --db still holds every change)".into()
                }
                RunError::Held { .. } => format!(
                    "wait for it to finish, or stop it with Ctrl-C in its terminal; a process that is gone is taken over (on this host at once, elsewhere after {} s without a heartbeat)",
                    crate::runs::lease::STALE_AFTER
                ),
                RunError::RolledBack { run, .. } => format!(
                    "`imdsguard runs {run}` shows what it holds; to change these instances again, make a new plan with `imdsguard plan`"
                ),
                RunError::Permission(d) => format!("{}; then apply the plan again", d.error.hint()),
                RunError::NoAccount(_) => {
                    "pass --role-name (and --external-id if needed) to reach the run's other accounts".into()
                }
            },
            Error::Refused { hint, .. } => hint.clone(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. }
            | Error::Selection(_)
            | Error::UnknownRegion { .. }
            | Error::Plan(_) => ExitCode::Usage,
            _ => ExitCode::Failure,
        }
    }
}

/// The known name closest to `name` (by edit distance), if it is close.
fn closest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_region_names() {
        let known = vec![
            "us-east-1".to_owned(),
            "us-east-2".to_owned(),
            "eu-west-1".to_owned(),
        ];
        assert_eq!(closest("us-east-9", &known).as_deref(), Some("us-east-1"));
        assert_eq!(closest("ap-south-7", &known), None);
    }
}
