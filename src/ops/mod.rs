//! The application layer, between the CLI and the engine. Each operation
//! takes resolved request types (built from flags in `settings.rs`), an AWS
//! provider, the store and a progress reporter, and returns typed results;
//! it never prints. Commands then only confirm, render and pick an exit
//! code.
//!
//! * [`fleet`]: the session (how to reach AWS and the database) and the
//!   accounts a command works on;
//! * [`scan`], [`plan`]: inventory and plans;
//! * [`apply`], [`rollback`]: change runs, on top of [`crate::runs`];
//! * [`views`]: what is read back from the database;
//! * [`inventory`]: launch templates and account defaults per region;
//! * [`notify`]: owner notices, written and sent;
//! * [`rollout`]: a plan in waves, watched between them;
//! * [`effect`]: the before/after proof of a run's or a rollout's changes.

pub mod apply;
pub mod effect;
pub mod fix;
pub mod fleet;
pub mod inventory;
pub mod notify;
pub mod plan;
pub mod rollback;
pub mod rollout;
pub mod scan;
#[cfg(test)]
mod tests;
pub mod trail;
pub mod views;

use crate::aws::AwsError;
use crate::fanout::FanoutError;
use crate::model::Options;
use crate::plan::PlanError;
use crate::runs::RunError;
use crate::store::StoreError;

pub use fleet::{AccountScope, Session};

/// The session's AWS provider: the SDK's default credential chain, checked
/// (no credentials is one clear error up front).
pub async fn provider(session: &Session) -> Result<Box<dyn crate::aws::AwsProvider>, OpsError> {
    Ok(Box::new(
        crate::aws::sdk::SdkProvider::load(&session.aws).await?,
    ))
}

/// The accounts of the session's scope, reached with its credentials.
pub async fn targets(session: &Session) -> Result<Vec<fleet::Target>, OpsError> {
    let provider = provider(session).await?;
    fleet::targets(session, provider.as_ref()).await
}

/// The notice calls, with the session's own credentials.
pub async fn notifier(session: &Session) -> Result<Box<dyn crate::aws::NotifyApi>, OpsError> {
    Ok(crate::aws::sdk::SdkProvider::load(&session.aws)
        .await?
        .notifier())
}

/// S3 with the session's own credentials, in `region` (default: the
/// session's): where a trail's logs are.
pub async fn objects(
    session: &Session,
    region: Option<&str>,
) -> Result<Box<dyn crate::aws::ObjectApi>, OpsError> {
    Ok(crate::aws::sdk::SdkProvider::load(&session.aws)
        .await?
        .objects(region))
}

/// Athena with the session's own credentials, in its region.
pub async fn athena(session: &Session) -> Result<Box<dyn crate::aws::AthenaApi>, OpsError> {
    Ok(crate::aws::sdk::SdkProvider::load(&session.aws)
        .await?
        .athena())
}

/// The session's database, for writing (created and migrated as needed).
pub fn store(session: &Session) -> Result<crate::store::Store, OpsError> {
    Ok(crate::store::Store::open(&session.db)?)
}

/// Why an operation could not do its work (partial results are not errors:
/// they come back as failures inside the result).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("unknown region `{name}`")]
    UnknownRegion { name: String, known: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Run(#[from] RunError),
    /// The credentials are not for an account the work needs.
    #[error("account {account} is not the account of your credentials ({caller})")]
    NotReachable { account: String, caller: String },
    /// Planned instances that no longer exist: nothing was sent.
    #[error("{} planned instance(s) no longer exist: {}; nothing was changed", .0.len(), list(.0.iter().map(String::as_str)))]
    Missing(Vec<String>),
    /// Planned instances whose options changed since the plan: nothing was sent.
    #[error("{} instance(s) changed since the plan was made: {}; nothing was changed", .0.len(),
        list(.0.iter().map(|(id, now)| format!("{id} (now {})", now.describe())).collect::<Vec<_>>().iter().map(String::as_str)))]
    Changed(Vec<(String, Options)>),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The first ten items, and how many more.
pub fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    let mut s = items
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        s.push_str(&format!(" and {} more", items.len() - 10));
    }
    s
}

impl From<FanoutError> for OpsError {
    fn from(e: FanoutError) -> Self {
        match e {
            FanoutError::Aws(e) | FanoutError::Regions { error: e, .. } => OpsError::Aws(e),
            FanoutError::UnknownRegion { name, known } => OpsError::UnknownRegion { name, known },
        }
    }
}
