//! A run's ledger: the journal rows in SQLite and the `--log` file's lines,
//! written together, so what the log says never runs ahead of or behind
//! what the journal knows.
//!
//! Every write of a change's state goes through [`Ledger::record`]: the
//! journal row is committed first, then, if the change reached a status it
//! has not been logged in (`applied`, `pending`, `failed`, `skipped`), one
//! JSON line is appended and flushed, and the journal notes that status as
//! logged. A crash between the two leaves the line missing, never a line
//! for a state the journal does not hold; [`Ledger::catch_up`] (run on
//! resume) writes what is missing, after reading the file so a line that
//! did make it is not written twice.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;

use crate::model::Action;
use crate::store::journal::{ChangeRecord, ChangeStatus, Named, RunKind};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The `--log` file: JSON lines, appended, flushed line by line.
pub struct ChangeLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl ChangeLog {
    pub fn open(path: &Path) -> Result<ChangeLog, LedgerError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LedgerError::Log {
                path: path.to_owned(),
                source,
            })?;
        Ok(ChangeLog {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, line: &str) -> Result<(), LedgerError> {
        let mut f = self.file.lock().expect("not poisoned");
        // One write per line (O_APPEND keeps concurrent writers' lines whole),
        // then to disk: the line must survive a crash that follows it.
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        f.write_all(&bytes)
            .and_then(|()| f.sync_data())
            .map_err(|source| LedgerError::Log {
                path: self.path.clone(),
                source,
            })
    }

    /// The (seq, status) pairs already logged for `run`.
    fn logged(&self, run: i64) -> Result<HashSet<(i64, ChangeStatus)>, LedgerError> {
        /// What a log line says about whose change it is (the rest is for people).
        #[derive(Deserialize)]
        struct Logged {
            run: i64,
            seq: i64,
            status: ChangeStatus,
        }
        let file = File::open(&self.path).map_err(|source| LedgerError::Log {
            path: self.path.clone(),
            source,
        })?;
        let mut out = HashSet::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|source| LedgerError::Log {
                path: self.path.clone(),
                source,
            })?;
            // Lines of other tools or runs, and a torn last line, are not ours.
            match serde_json::from_str::<Logged>(&line) {
                Ok(l) if l.run == run => {
                    out.insert((l.seq, l.status));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Statuses that get a log line: where a change ends, or waits to be verified.
fn loggable(s: ChangeStatus) -> bool {
    matches!(
        s,
        ChangeStatus::Applied
            | ChangeStatus::Pending
            | ChangeStatus::Failed
            | ChangeStatus::Skipped
    )
}

/// The journal and the log of one run, shared by its concurrent changes
/// (each write is short).
pub struct Ledger<'s> {
    store: Mutex<&'s mut Store>,
    pub run: i64,
    kind: RunKind,
    action: Action,
    parent_run: Option<i64>,
    log: Option<ChangeLog>,
}

impl<'s> Ledger<'s> {
    pub fn new(
        store: &'s mut Store,
        run: i64,
        kind: RunKind,
        action: Action,
        parent_run: Option<i64>,
        log: Option<ChangeLog>,
    ) -> Ledger<'s> {
        Ledger {
            store: Mutex::new(store),
            run,
            kind,
            action,
            parent_run,
            log,
        }
    }

    /// Intent, committed before the call is sent.
    pub fn issued(&self, c: &mut ChangeRecord) -> Result<(), LedgerError> {
        let at = crate::clock::now();
        self.store
            .lock()
            .expect("not poisoned")
            .mark_issued(self.run, c.seq, &at)?;
        c.status = ChangeStatus::Issued;
        c.reason = None;
        c.attempts += 1;
        c.issued_at = Some(at);
        Ok(())
    }

    /// Writes the change's state to the journal, then its log line if this
    /// status has not been logged yet.
    pub fn record(&self, c: &mut ChangeRecord) -> Result<(), LedgerError> {
        let at = crate::clock::now();
        self.store
            .lock()
            .expect("not poisoned")
            .record(self.run, c, &at)?;
        c.finished_at = Some(at);
        self.log_line(c)
    }

    fn log_line(&self, c: &mut ChangeRecord) -> Result<(), LedgerError> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        if !loggable(c.status) || c.logged == Some(c.status) {
            return Ok(());
        }
        log.append(&self.line(c))?;
        self.store
            .lock()
            .expect("not poisoned")
            .mark_logged(self.run, c.seq, c.status)?;
        c.logged = Some(c.status);
        Ok(())
    }

    /// Writes the lines a crash kept from being written: every change whose
    /// status was never logged and is not in the file already. Returns how
    /// many were written.
    pub fn catch_up(&self, changes: &mut [ChangeRecord]) -> Result<usize, LedgerError> {
        let Some(log) = &self.log else {
            return Ok(0);
        };
        let todo: Vec<usize> = changes
            .iter()
            .enumerate()
            .filter(|(_, c)| loggable(c.status) && c.logged != Some(c.status))
            .map(|(i, _)| i)
            .collect();
        if todo.is_empty() {
            return Ok(0);
        }
        let present = log.logged(self.run)?;
        let mut written = 0;
        for i in todo {
            let c = &mut changes[i];
            if present.contains(&(c.seq, c.status)) {
                self.store
                    .lock()
                    .expect("not poisoned")
                    .mark_logged(self.run, c.seq, c.status)?;
                c.logged = Some(c.status);
            } else {
                self.log_line(c)?;
                written += 1;
            }
        }
        Ok(written)
    }

    fn line(&self, c: &ChangeRecord) -> String {
        serde_json::json!({
            "time": crate::clock::now(),
            "run": self.run,
            "run_kind": self.kind.as_str(),
            "parent_run": self.parent_run,
            "seq": c.seq,
            "account_id": c.account_id,
            "region": c.region,
            "instance_id": c.instance_id,
            "action": self.action.as_str(),
            "previous": c.previous,
            "target": c.target,
            "observed": c.observed,
            "dry_run": false,
            "status": c.status.as_str(),
            "reason": c.reason.map(Named::as_str),
            "attempts": c.attempts,
            "verified": c.verified,
            "request_id": c.request_id,
            "error_code": c.error_code,
            "message": c.message,
        })
        .to_string()
    }
}
