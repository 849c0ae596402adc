//! `notify`: one notice per owner of instances that still allow IMDSv1,
//! from a stored scan, written to files and/or sent through SNS and SES.
//!
//! Files are a local view: they are always (re)written, also with
//! `--dry-run`, so the exact text can be read before anything is sent.
//! Sends are journaled (`store::notices`): intent before the call, answer
//! after it; a notice whose digest equals the last one sent to the same
//! destination is `unchanged` and not sent again unless `resend`.

use std::path::{Path, PathBuf};

use super::OpsError;
use crate::aws::{AwsErrorKind, NotifyApi};
use crate::notify::{self, Notice, Owner};
use crate::store::Store;
use crate::store::notices::{Channel, NoticeIntent};

/// SNS takes at most 256 KiB per message; stay clear of it.
const SNS_MAX_BYTES: usize = 250_000;

/// An SNS topic, its region taken from its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub arn: String,
    pub region: String,
}

impl Topic {
    /// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`, or why it is not one.
    pub fn parse(arn: &str) -> Result<Topic, String> {
        let parts: Vec<&str> = arn.split(':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "sns"
            && !parts[3].is_empty()
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && !parts[5].is_empty()
            && parts[5]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if ok && parts[5].ends_with(".fifo") {
            // A FIFO topic needs a message group and deduplication id per
            // message; owner notices are not ordered work.
            Err(format!(
                "`{arn}` is a FIFO topic; notices go to a standard topic"
            ))
        } else if ok {
            Ok(Topic {
                arn: arn.to_owned(),
                region: parts[3].to_owned(),
            })
        } else {
            Err(format!("`{arn}` is not an SNS topic ARN"))
        }
    }
}

/// What `notify` should do, resolved from flags.
#[derive(Debug, Clone)]
pub struct NotifyRequest {
    pub scan: Option<i64>,
    pub owner_tags: Vec<String>,
    pub out_dir: Option<PathBuf>,
    pub sns: Option<Topic>,
    pub ses_from: Option<String>,
    pub resend: bool,
    pub dry_run: bool,
}

impl NotifyRequest {
    /// Whether anything goes to AWS (and credentials are needed).
    pub fn sends(&self) -> bool {
        !self.dry_run && (self.sns.is_some() || self.ses_from.is_some())
    }
}

/// Where one notice went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    File,
    Sns,
    Ses,
}

/// What happened to one notice on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Written,
    Sent {
        message_id: String,
    },
    /// `--dry-run`: this would be sent.
    WouldSend,
    /// Same content as the last notice sent there.
    Unchanged,
    /// SES: the owner tag is not an e-mail address.
    NoAddress,
    Failed {
        error: String,
    },
    /// Not tried: an earlier send on this channel met an error that every
    /// later one would meet too (credentials, permissions).
    NotTried {
        because: String,
    },
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Written => "written",
            Status::Sent { .. } => "sent",
            Status::WouldSend => "would-send",
            Status::Unchanged => "unchanged",
            Status::NoAddress => "no-address",
            Status::Failed { .. } => "failed",
            Status::NotTried { .. } => "not-tried",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub via: Via,
    /// The file, topic ARN or e-mail address.
    pub destination: String,
    pub status: Status,
}

#[derive(Debug, Clone)]
pub struct NoticeOutcome {
    pub notice: Notice,
    pub digest: String,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone)]
pub struct NotifyOutcome {
    pub scan_id: i64,
    pub dry_run: bool,
    pub notices: Vec<NoticeOutcome>,
}

impl NotifyOutcome {
    pub fn failed(&self) -> usize {
        self.notices
            .iter()
            .flat_map(|n| &n.deliveries)
            .filter(|d| matches!(d.status, Status::Failed { .. } | Status::NotTried { .. }))
            .count()
    }
}

/// The notices of a stored scan (the latest without an id), and the
/// database to journal their sending in.
pub fn prepare(db: &Path, request: &NotifyRequest) -> Result<(Store, Vec<Notice>), OpsError> {
    let store = Store::open(db)?;
    let id = match request.scan {
        Some(id) => id,
        None => store
            .latest_scan()?
            .ok_or(crate::store::StoreError::Empty)?,
    };
    let mut report = store.load_report(id)?;
    super::views::with_callers(&store, &mut report)?;
    let notices = notify::build(&report, &request.owner_tags);
    Ok((store, notices))
}

/// How many notices a real run would send (not `unchanged`, and with an
/// address where one is needed): when none, nothing needs credentials or
/// a confirmation.
pub fn to_send(
    store: &Store,
    notices: &[Notice],
    request: &NotifyRequest,
) -> Result<usize, OpsError> {
    let mut n = 0;
    for notice in notices {
        let digest = notice.digest();
        for (channel, destination) in destinations(request, notice) {
            let Some(destination) = destination else {
                continue;
            };
            if !unchanged(store, request, notice, &digest, channel, &destination)? {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The channels `request` names for `notice`, each with its destination
/// (`None`: SES, and the owner tag is not an address).
fn destinations(request: &NotifyRequest, notice: &Notice) -> Vec<(Channel, Option<String>)> {
    let sns = request
        .sns
        .as_ref()
        .map(|t| (Channel::Sns, Some(t.arn.clone())));
    let ses = request
        .ses_from
        .as_ref()
        .map(|_| (Channel::Ses, notice.owner.email().map(str::to_owned)));
    sns.into_iter().chain(ses).collect()
}

/// Whether the last notice sent to `destination` asked the same (never,
/// with `--resend`).
fn unchanged(
    store: &Store,
    request: &NotifyRequest,
    notice: &Notice,
    digest: &str,
    channel: Channel,
    destination: &str,
) -> Result<bool, OpsError> {
    Ok(!request.resend
        && store
            .last_sent_digest(&notice.owner.key(), channel, destination)?
            .as_deref()
            == Some(digest))
}

/// Writes and sends the notices. `notifier` is needed only when the
/// request [sends](NotifyRequest::sends).
pub async fn deliver(
    store: &Store,
    notifier: Option<&dyn NotifyApi>,
    notices: Vec<Notice>,
    request: &NotifyRequest,
) -> Result<NotifyOutcome, OpsError> {
    if let Some(dir) = &request.out_dir {
        std::fs::create_dir_all(dir).map_err(|source| OpsError::Write {
            path: dir.clone(),
            source,
        })?;
    }
    let scan_id = notices.first().map_or(0, |n| n.scan_id);
    // Per channel: the reason it stopped, once an error would repeat.
    let mut stopped: [Option<String>; 2] = [None, None];
    let mut out = Vec::with_capacity(notices.len());
    let stems = notify::file_stems(&notices);
    for (notice, stem) in notices.into_iter().zip(stems) {
        let digest = notice.digest();
        let mut deliveries = Vec::new();
        if let Some(dir) = &request.out_dir {
            deliveries.extend(write_files(dir, &stem, &notice)?);
        }
        for (channel, destination) in destinations(request, &notice) {
            let (slot, via) = match channel {
                Channel::Sns => (0, Via::Sns),
                Channel::Ses => (1, Via::Ses),
            };
            let Some(destination) = destination else {
                deliveries.push(Delivery {
                    via,
                    destination: String::new(),
                    status: Status::NoAddress,
                });
                continue;
            };
            let status = if unchanged(store, request, &notice, &digest, channel, &destination)? {
                Status::Unchanged
            } else if request.dry_run {
                Status::WouldSend
            } else if let Some(because) = &stopped[slot] {
                Status::NotTried {
                    because: because.clone(),
                }
            } else {
                let notifier = notifier.expect("a notifier when sending");
                let id = store.begin_notice(&NoticeIntent {
                    scan_id,
                    owner_key: &notice.owner.key(),
                    channel,
                    destination: &destination,
                    digest: &digest,
                })?;
                let result = match channel {
                    Channel::Sns => {
                        let topic = request.sns.as_ref().expect("sns target");
                        notifier
                            .publish(
                                &topic.region,
                                &topic.arn,
                                &notice.subject(),
                                &bounded(notice.text(), SNS_MAX_BYTES),
                                &attribute(&notice.owner),
                            )
                            .await
                    }
                    Channel::Ses => {
                        notifier
                            .send_email(
                                request.ses_from.as_deref().expect("ses sender"),
                                &destination,
                                &notice.subject(),
                                &notice.text(),
                            )
                            .await
                    }
                };
                match result {
                    Ok(message_id) => {
                        store.finish_notice(id, Ok(&message_id))?;
                        Status::Sent { message_id }
                    }
                    Err(e) => {
                        let error = e.to_string();
                        store.finish_notice(id, Err(&error))?;
                        if matches!(
                            e.kind,
                            AwsErrorKind::AccessDenied
                                | AwsErrorKind::ExpiredToken
                                | AwsErrorKind::BadCredentials
                                | AwsErrorKind::NoCredentials
                        ) {
                            stopped[slot] = Some(error.clone());
                        }
                        Status::Failed { error }
                    }
                }
            };
            deliveries.push(Delivery {
                via,
                destination,
                status,
            });
        }
        out.push(NoticeOutcome {
            notice,
            digest,
            deliveries,
        });
    }
    Ok(NotifyOutcome {
        scan_id,
        dry_run: request.dry_run,
        notices: out,
    })
}

/// The `owner` message attribute: the tag value, or `account:ID` for
/// instances without one (what an SNS filter policy matches on).
fn attribute(owner: &Owner) -> String {
    match owner {
        Owner::Tagged(v) => v.clone(),
        Owner::Untagged { .. } => owner.key(),
    }
}

/// `text` cut at a line boundary to fit `max` bytes, saying so.
fn bounded(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let note = "\n[cut to fit the SNS message limit: `imdsguard notify --out-dir DIR` writes the whole notice]\n";
    let mut end = max - note.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').unwrap_or(end);
    format!("{}{note}", &text[..end])
}

/// `DIR/STEM.md` and `DIR/STEM.txt`.
fn write_files(dir: &Path, stem: &str, notice: &Notice) -> Result<Vec<Delivery>, OpsError> {
    let mut out = Vec::new();
    for (ext, body) in [("md", notice.markdown()), ("txt", notice.text())] {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&path, body).map_err(|source| OpsError::Write {
            path: path.clone(),
            source,
        })?;
        out.push(Delivery {
            via: Via::File,
            destination: path.display().to_string(),
            status: Status::Written,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::aws::{AwsError, Operation};
    use std::sync::Mutex;

    /// Refuses every publish with AccessDenied, counting the calls.
    struct Refusing(Mutex<usize>);

    #[async_trait::async_trait]
    impl NotifyApi for Refusing {
        async fn publish(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<String, AwsError> {
            *self.0.lock().unwrap() += 1;
            Err(AwsError::from_code(
                Operation::SnsPublish,
                Some("AuthorizationError"),
                Some("not allowed"),
                None,
            ))
        }
        async fn send_email(&self, _: &str, _: &str, _: &str, _: &str) -> Result<String, AwsError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn a_refusal_stops_the_channel_and_nothing_counts_as_sent() {
        use crate::model::HttpTokens;
        use crate::readiness::Readiness;
        let mut a = crate::report::test_support::record(1, HttpTokens::Optional, Readiness::Ready);
        a.instance.tags.insert("owner".into(), "a".into());
        let mut b = crate::report::test_support::record(2, HttpTokens::Optional, Readiness::Ready);
        b.instance.tags.insert("owner".into(), "b".into());
        let report = crate::report::ScanReport {
            id: Some(1),
            instances: vec![a, b],
            ..Default::default()
        };
        let notices = notify::build(&report, &["owner".into()]);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let request = NotifyRequest {
            scan: None,
            owner_tags: vec!["owner".into()],
            out_dir: None,
            sns: Some(Topic::parse("arn:aws:sns:us-east-1:111122223333:t").unwrap()),
            ses_from: None,
            resend: false,
            dry_run: false,
        };
        let api = Refusing(Mutex::new(0));
        let out = deliver(&store, Some(&api), notices, &request)
            .await
            .unwrap();
        assert_eq!(
            *api.0.lock().unwrap(),
            1,
            "the second owner's notice is not tried"
        );
        assert!(matches!(
            out.notices[0].deliveries[0].status,
            Status::Failed { .. }
        ));
        assert!(matches!(
            out.notices[1].deliveries[0].status,
            Status::NotTried { .. }
        ));
        assert_eq!(out.failed(), 2);
        let topic = "arn:aws:sns:us-east-1:111122223333:t";
        assert_eq!(
            store
                .last_sent_digest("tag:a", Channel::Sns, topic)
                .unwrap(),
            None
        );
    }

    #[test]
    fn topic_arns() {
        let t = Topic::parse("arn:aws:sns:eu-west-1:111122223333:imds-owners").unwrap();
        assert_eq!(t.region, "eu-west-1");
        for bad in [
            "arn:aws:sqs:eu-west-1:111122223333:q",
            "arn:aws:sns:eu-west-1:1111:t",
            "imds-owners",
            "arn:aws:sns:eu-west-1:111122223333:t/x",
            "arn:aws:sns:eu-west-1:111122223333:t.fifo",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_bodies_are_cut_at_a_line_and_say_so() {
        let body: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let cut = bounded(body.clone(), 500);
        assert!(cut.len() <= 500 && cut.contains("[cut to fit"));
        assert!(body.starts_with(cut.split("\n[cut").next().unwrap()));
        assert_eq!(bounded("short".into(), 500), "short");
    }
}
