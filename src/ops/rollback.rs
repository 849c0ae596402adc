//! `rollback RUN`: what to put back (see [`crate::runs::rollback`]), with
//! the accounts reached and the account defaults that would refuse it.

use std::collections::BTreeSet;

use super::OpsError;
use super::fleet::{AccountMap, Session, accounts, fleet};
use crate::aws::AwsProvider;
use crate::model::HttpTokens;
use crate::runs;
use crate::runs::rollback::{Candidates, Selection};
use crate::runs::status::{FieldChange, field_changes};
use crate::store::Store;

/// A rollback ready to be confirmed and started.
pub struct Prepared {
    /// Holds the parent's lease until dropped.
    pub candidates: Candidates,
    pub apis: AccountMap,
    pub selection: Selection,
    pub fields: Vec<FieldChange>,
    /// (account, region) whose default enforces IMDSv2: EC2 will refuse a
    /// return to `HttpTokens=optional` there.
    pub enforced: Vec<(String, String)>,
}

impl Prepared {
    /// Instances left alone because they changed again since the run.
    pub fn left_alone(&self) -> usize {
        self.selection
            .notes
            .iter()
            .filter(|n| matches!(n, runs::rollback::Note::ChangedAgain { .. }))
            .count()
    }
}

pub async fn prepare(
    session: &Session,
    provider: &dyn AwsProvider,
    store: &mut Store,
    run: i64,
    only: &BTreeSet<String>,
    force: bool,
) -> Result<Prepared, OpsError> {
    let candidates = runs::rollback::candidates(store, run, only)?;
    if candidates.changes.is_empty() {
        return Ok(Prepared {
            candidates,
            apis: AccountMap::new(),
            selection: Selection::default(),
            fields: Vec::new(),
            enforced: Vec::new(),
        });
    }
    let ids: BTreeSet<String> = candidates
        .changes
        .iter()
        .map(|c| c.account_id.clone())
        .collect();
    let apis = accounts(session, provider, &ids).await?;
    let selection = runs::rollback::select(&fleet(&apis), &candidates, force).await?;
    let places = selection
        .changes
        .iter()
        .filter(|c| c.target.http_tokens == HttpTokens::Optional)
        .map(|c| (c.account_id.as_str(), c.region.as_str()))
        .collect();
    let enforced = runs::apply::enforced_defaults(&fleet(&apis), places).await;
    let fields = field_changes(selection.changes.iter().map(|c| (&c.previous, &c.target)));
    Ok(Prepared {
        candidates,
        apis,
        selection,
        fields,
        enforced,
    })
}
