//! The notice journal: every owner notice sent (or being sent) through SNS
//! or SES, with the digest of what it said, so a re-run sends only the
//! notices whose content changed (see `notify`).
//!
//! The intent is written before the call and the answer after it. A row
//! left `sending` by a crash does not count as sent: the next run sends it
//! again, so a notice may arrive twice but is never lost.

use rusqlite::{OptionalExtension, params};

use super::journal::Named;
use super::{Store, StoreError};

/// Where a notice goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sns,
    Ses,
}
named!(Channel { Sns => "sns", Ses => "ses" });

/// One notice's journal entry, for the intent.
pub struct NoticeIntent<'a> {
    pub scan_id: i64,
    pub owner_key: &'a str,
    pub channel: Channel,
    pub destination: &'a str,
    pub digest: &'a str,
}

impl Store {
    /// The digest of the last notice that reached `destination` for this
    /// owner, if any.
    pub fn last_sent_digest(
        &self,
        owner_key: &str,
        channel: Channel,
        destination: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT digest FROM notices
                 WHERE owner_key = ?1 AND channel = ?2 AND destination = ?3 AND status = 'sent'
                 ORDER BY id DESC LIMIT 1",
                params![owner_key, channel, destination],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Journals the intent to send, before the call.
    pub fn begin_notice(&self, n: &NoticeIntent) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO notices (scan_id, owner_key, channel, destination, digest, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'sending', ?6)",
            params![
                n.scan_id,
                n.owner_key,
                n.channel,
                n.destination,
                n.digest,
                crate::clock::now()
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Journals the answer: the message id, or why it failed.
    pub fn finish_notice(&self, id: i64, result: Result<&str, &str>) -> Result<(), StoreError> {
        let (status, message_id, error) = match result {
            Ok(m) => ("sent", Some(m), None),
            Err(e) => ("failed", None, Some(e)),
        };
        self.conn.execute(
            "UPDATE notices SET status = ?2, message_id = ?3, error = ?4, finished_at = ?5 WHERE id = ?1",
            params![id, status, message_id, error, crate::clock::now()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sent_notice_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let intent = |digest| NoticeIntent {
            scan_id: 1,
            owner_key: "tag:team-a",
            channel: Channel::Sns,
            destination: "arn:aws:sns:us-east-1:1:t",
            digest,
        };
        let crashed = store.begin_notice(&intent("d1")).unwrap();
        assert!(crashed > 0);
        assert_eq!(
            store
                .last_sent_digest("tag:team-a", Channel::Sns, "arn:aws:sns:us-east-1:1:t")
                .unwrap(),
            None
        );
        let failed = store.begin_notice(&intent("d2")).unwrap();
        store.finish_notice(failed, Err("AccessDenied")).unwrap();
        let sent = store.begin_notice(&intent("d3")).unwrap();
        store.finish_notice(sent, Ok("m-1")).unwrap();
        assert_eq!(
            store
                .last_sent_digest("tag:team-a", Channel::Sns, "arn:aws:sns:us-east-1:1:t")
                .unwrap()
                .as_deref(),
            Some("d3")
        );
        assert_eq!(
            store
                .last_sent_digest("tag:team-a", Channel::Ses, "arn:aws:sns:us-east-1:1:t")
                .unwrap(),
            None
        );
    }
}
