//! Owner notices: for each owner of instances that still allow IMDSv1, one
//! notice that lists those instances with their readiness, role, IMDSv1
//! calls, and the exact next step for each; composed as Markdown (for
//! tickets and files) and as a plain-text e-mail body.
//!
//! A notice's [`Notice::digest`] covers what the owner is asked to act on
//! (instances, verdicts, calls, next steps), not when it was made, so a
//! re-run can tell "nothing changed since the last notice" from "send
//! again".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::markdown;
use crate::readiness::Readiness;
use crate::report::{InstanceRecord, ScanReport};

/// Who a notice goes to: the value of an owner tag, or, for instances
/// without one, their account (someone there owns them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    Tagged(String),
    Untagged { account_id: String },
}

impl Owner {
    /// A stable key for the journal: `tag:VALUE` or `account:ID`.
    pub fn key(&self) -> String {
        match self {
            Owner::Tagged(v) => format!("tag:{v}"),
            Owner::Untagged { account_id } => format!("account:{account_id}"),
        }
    }

    /// How people read it.
    pub fn display(&self) -> String {
        match self {
            Owner::Tagged(v) => v.clone(),
            Owner::Untagged { account_id } => {
                format!("account {account_id} (instances without an owner tag)")
            }
        }
    }

    /// The tag value when it is an e-mail address (SES needs one).
    pub fn email(&self) -> Option<&str> {
        match self {
            Owner::Tagged(v) if is_email(v) => Some(v),
            _ => None,
        }
    }

    /// A file name stem that is safe on every file system and stable from
    /// run to run: the owner in `[a-z0-9._-]`, and when that is not the
    /// owner exactly (`Team A`, `../etc`), a short hash of it so that two
    /// owners never share a file.
    pub fn file_stem(&self) -> String {
        let raw = match self {
            // A leading `_` is only ever ours (tagged stems never start with
            // one), so no tag can name the file of an account's untagged
            // instances.
            Owner::Untagged { account_id } => return format!("_no-owner-tag-{account_id}"),
            Owner::Tagged(v) => v.clone(),
        };
        let mut slug: String = raw
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-' | '@') => c,
                _ => '-',
            })
            .collect();
        slug = slug
            .trim_matches(|c| c == '-' || c == '.' || c == '_')
            .to_owned();
        slug.truncate(60);
        if slug != raw || slug.is_empty() {
            let short = short_hash(&raw);
            slug = if slug.is_empty() {
                short
            } else {
                format!("{slug}-{short}")
            };
        }
        slug
    }
}

/// Eight hex digits of SHA-256: enough to tell owners' file names apart.
fn short_hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One file stem per notice, all distinct: an owner's own stem, and where
/// two owners would share one (a tag forged to look like another owner's
/// hashed stem), each of them with a hash of its own key added.
pub fn file_stems(notices: &[Notice]) -> Vec<String> {
    let stems: Vec<String> = notices.iter().map(|n| n.owner.file_stem()).collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &stems {
        *seen.entry(s).or_default() += 1;
    }
    stems
        .iter()
        .zip(notices)
        .map(|(s, n)| {
            if seen[s.as_str()] > 1 {
                format!("{s}-{}", short_hash(&n.owner.key()))
            } else {
                s.clone()
            }
        })
        .collect()
}

/// A plausible address: one `@`, something on both sides, a dot in the
/// domain, no spaces or control characters. SES validates the rest.
fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && v.len() <= 254
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// What the owner should do about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// No IMDSv1 call in the window: safe to enforce.
    Enforce { command: String },
    /// IMDSv1 is used: the software that calls it must be upgraded first;
    /// `callers` is what CloudTrail named (`imdsguard trail`), if read.
    Upgrade {
        rescan: String,
        callers: Option<String>,
    },
    /// No evidence either way.
    Measure { why: String, rescan: String },
}

impl NextStep {
    /// The step in words, then the command that takes it.
    pub fn text(&self) -> String {
        format!("{} {}", self.prose(|s| s.to_owned()), self.command())
    }

    /// The words before the command; `quote` makes the one part that is
    /// data (the reason there is no evidence) safe where it is pasted.
    fn prose(&self, quote: impl Fn(&str) -> String) -> String {
        match self {
            NextStep::Enforce { .. } => {
                "Ready: it will be enforced in the next rollout. To enforce it now:".into()
            }
            NextStep::Upgrade { callers: None, .. } => {
                "Still uses IMDSv1: upgrade what calls the metadata service without a token \
                 (AWS SDKs and CLI from before IMDSv2 support, old agents, curl scripts), \
                 then check again:"
                    .into()
            }
            NextStep::Upgrade {
                callers: Some(c), ..
            } => format!(
                "Still uses IMDSv1. CloudTrail names the software ({}): upgrade it, then check again:",
                quote(c)
            ),
            NextStep::Measure { why, .. } => format!(
                "No evidence yet ({}): keep it running for a few days so CloudWatch \
                 records MetadataNoToken, then check again:",
                quote(why)
            ),
        }
    }

    /// The command that takes the step.
    fn command(&self) -> &str {
        match self {
            NextStep::Enforce { command } => command,
            NextStep::Upgrade { rescan, .. } | NextStep::Measure { rescan, .. } => rescan,
        }
    }
}

/// One instance of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeLine {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub name: Option<String>,
    pub role: Option<String>,
    pub readiness: Readiness,
    pub v1_calls: Option<u64>,
    pub last_v1_call: Option<String>,
    pub next: NextStep,
}

/// One owner's notice.
#[derive(Debug, Clone)]
pub struct Notice {
    pub owner: Owner,
    pub scan_id: i64,
    pub usage_days: Option<u32>,
    pub lines: Vec<NoticeLine>,
}

/// One notice per owner of instances that allow IMDSv1, owners in order.
/// `owner_tags` are tried in order, case-insensitively (as `scan` does).
pub fn build(report: &ScanReport, owner_tags: &[String]) -> Vec<Notice> {
    // How the scan reached each account: with the caller's credentials, or
    // by assuming a role (its principal is `assumed-role/ROLE/imdsguard`);
    // a command in a notice must reach it the same way.
    let reach: BTreeMap<&str, String> = report
        .identities
        .iter()
        .filter_map(|(account, arn)| {
            let role = arn
                .split_once(":assumed-role/")?
                .1
                .strip_suffix("/imdsguard")?;
            Some((
                account.as_str(),
                format!(" --accounts {account} --role-name {role}"),
            ))
        })
        .collect();
    let mut by_owner: BTreeMap<Owner, Vec<NoticeLine>> = BTreeMap::new();
    for r in report.allowing_v1() {
        let owner = match crate::scan::owner_of(&r.instance, owner_tags) {
            Some(v) if !v.trim().is_empty() => Owner::Tagged(v),
            _ => Owner::Untagged {
                account_id: r.account_id.clone(),
            },
        };
        by_owner.entry(owner).or_default().push(line(
            r,
            reach.get(r.account_id.as_str()).map_or("", String::as_str),
        ));
    }
    by_owner
        .into_iter()
        .map(|(owner, mut lines)| {
            lines.sort_by(|a, b| {
                (&a.account_id, &a.region, &a.instance_id).cmp(&(
                    &b.account_id,
                    &b.region,
                    &b.instance_id,
                ))
            });
            Notice {
                owner,
                scan_id: report.id.unwrap_or(0),
                usage_days: report.usage_days,
                lines,
            }
        })
        .collect()
}

/// One instance's line; `accounts` are the flags that reach its account.
fn line(r: &InstanceRecord, accounts: &str) -> NoticeLine {
    let id = &r.instance.instance_id;
    let rescan = format!(
        "imdsguard scan --regions {}{accounts} --instance-ids {id}",
        r.region
    );
    let next = match r.readiness {
        Readiness::Ready => NextStep::Enforce {
            command: format!(
                "imdsguard harden --regions {}{accounts} --instance-ids {id}",
                r.region
            ),
        },
        Readiness::InUse => NextStep::Upgrade {
            rescan,
            callers: r.v1_callers.clone(),
        },
        _ => NextStep::Measure {
            why: r.reason.clone(),
            rescan,
        },
    };
    NoticeLine {
        account_id: r.account_id.clone(),
        region: r.region.clone(),
        instance_id: id.clone(),
        name: r.instance.name().map(str::to_owned),
        role: r.role_name.clone(),
        readiness: r.readiness,
        v1_calls: r.usage.as_ref().map(|u| u.v1_calls),
        last_v1_call: r.usage.as_ref().and_then(|u| u.last_v1_call.clone()),
        next,
    }
}

impl Notice {
    /// What the owner is asked to act on (which instances, their verdicts
    /// and next steps), hashed: equal digests mean the notice would ask the
    /// same thing again.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.owner.key().as_bytes());
        for l in &self.lines {
            // Not the call counts: over a rolling window they change with
            // every scan, and an owner would be sent the same request again.
            let fields = [
                l.account_id.as_str(),
                &l.region,
                &l.instance_id,
                l.role.as_deref().unwrap_or(""),
                l.readiness.as_str(),
                l.next.command(),
            ];
            for f in fields {
                h.update(f.as_bytes());
                h.update([0]);
            }
            h.update([1]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn count(&self, r: Readiness) -> usize {
        self.lines.iter().filter(|l| l.readiness == r).count()
    }

    /// One line, ASCII, under 100 characters (SNS's limit for a subject).
    pub fn subject(&self) -> String {
        let n = self.lines.len();
        let mut s = format!(
            "IMDSv1: {n} instance{} of {} to act on",
            if n == 1 { "" } else { "s" },
            self.owner.display()
        );
        s.retain(|c| c.is_ascii_graphic() || c == ' ');
        if s.len() > 99 {
            s.truncate(96);
            s.push_str("...");
        }
        s
    }

    fn summary(&self) -> String {
        format!(
            "{} instance(s) you own still allow IMDSv1 (the metadata service answers a plain GET, \
             so one SSRF bug can hand out the instance role's credentials): {} ready to enforce, \
             {} still using IMDSv1, {} without data.",
            self.lines.len(),
            self.count(Readiness::Ready),
            self.count(Readiness::InUse),
            self.lines.len() - self.count(Readiness::Ready) - self.count(Readiness::InUse)
        )
    }

    /// Where the notice's facts come from.
    fn source(&self) -> String {
        format!(
            "From imdsguard scan {}{}.",
            self.scan_id,
            self.usage_days
                .map(|d| format!(", IMDSv1 use measured over {d} days"))
                .unwrap_or_default()
        )
    }

    fn calls(l: &NoticeLine) -> String {
        match (l.v1_calls, &l.last_v1_call) {
            (Some(n), Some(last)) => format!("{n} (last {last})"),
            (Some(n), None) => n.to_string(),
            (None, _) => "not measured".into(),
        }
    }

    /// The notice as GitHub-flavoured Markdown. Every AWS string is inert.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(
            m,
            "# IMDSv1 on instances of {}\n",
            markdown::text(&self.owner.display())
        );
        let _ = writeln!(m, "{}\n", self.summary());
        let rows: Vec<Vec<String>> = self
            .lines
            .iter()
            .map(|l| {
                vec![
                    markdown::text(&l.instance_id),
                    markdown::text(l.name.as_deref().unwrap_or("")),
                    markdown::text(&l.account_id),
                    markdown::text(&l.region),
                    l.readiness.as_str().to_owned(),
                    markdown::text(l.role.as_deref().unwrap_or("")),
                    markdown::text(&Self::calls(l)),
                ]
            })
            .collect();
        markdown::table(
            &mut m,
            &[
                "instance",
                "name",
                "account",
                "region",
                "readiness",
                "role",
                "v1 calls",
            ],
            &[],
            &rows,
        );
        m.push_str("## Next steps\n\n");
        for l in &self.lines {
            // The command is built from ids and region names EC2 validated;
            // a backtick could still close the code span, so none passes.
            let _ = writeln!(
                m,
                "- **{}**: {} `{}`",
                markdown::text(&l.instance_id),
                l.next.prose(markdown::words),
                l.next.command().replace('`', "'")
            );
        }
        let _ = writeln!(m, "\n_{}_", self.source());
        m
    }

    /// The notice as a plain-text e-mail body (no markup, one instance per
    /// paragraph). AWS strings have their control characters removed.
    pub fn text(&self) -> String {
        // One line per value, in the order it was written.
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !crate::text::reorders(*c))
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
        let mut t = String::new();
        let _ = writeln!(t, "Hello {},\n", clean(&self.owner.display()));
        let _ = writeln!(t, "{}\n", self.summary());
        for l in &self.lines {
            let _ = writeln!(
                t,
                "* {}{} ({} {}), {}, role {}, IMDSv1 calls: {}",
                l.instance_id,
                l.name
                    .as_deref()
                    .map(|n| format!(" \"{}\"", clean(n)))
                    .unwrap_or_default(),
                l.account_id,
                l.region,
                l.readiness.as_str(),
                clean(l.role.as_deref().unwrap_or("none")),
                Self::calls(l)
            );
            let _ = writeln!(t, "  Next: {}\n", l.next.text());
        }
        let _ = writeln!(t, "{}", self.source());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HttpTokens;
    use crate::readiness::Usage;
    use crate::report::test_support::record;

    fn tagged(n: usize, owner: Option<&str>, readiness: Readiness) -> InstanceRecord {
        let mut r = record(n, HttpTokens::Optional, readiness);
        if let Some(o) = owner {
            r.instance.tags.insert("Owner".into(), o.into());
        }
        r.usage = Some(Usage {
            window_days: 14,
            v1_calls: if readiness == Readiness::InUse { 7 } else { 0 },
            last_v1_call: (readiness == Readiness::InUse).then(|| "2026-11-29".into()),
            days_with_data: 14,
            rejected_calls: 0,
        });
        r
    }

    fn report(records: Vec<InstanceRecord>) -> ScanReport {
        ScanReport {
            id: Some(4),
            usage_days: Some(14),
            instances: records,
            ..Default::default()
        }
    }

    #[test]
    fn one_notice_per_owner_untagged_under_the_account() {
        let mut enforced = tagged(4, Some("team-a"), Readiness::Compliant);
        enforced.instance.metadata.http_tokens = Some(HttpTokens::Required);
        let notices = build(
            &report(vec![
                tagged(1, Some("team-a"), Readiness::Ready),
                tagged(2, None, Readiness::InUse),
                tagged(3, Some("team-a"), Readiness::Unknown),
                enforced,
            ]),
            &["owner".into()],
        );
        assert_eq!(notices.len(), 2);
        assert_eq!(notices[0].owner, Owner::Tagged("team-a".into()));
        assert_eq!(
            notices[0].lines.len(),
            2,
            "the enforced instance is not listed"
        );
        assert_eq!(
            notices[1].owner,
            Owner::Untagged {
                account_id: "111122223333".into()
            }
        );
        assert!(matches!(notices[1].lines[0].next, NextStep::Upgrade { .. }));
        let ready = &notices[0].lines[0];
        assert_eq!(
            ready.next,
            NextStep::Enforce {
                command: format!(
                    "imdsguard harden --regions us-east-1 --instance-ids {}",
                    ready.instance_id
                )
            }
        );
        // Another owner tag key picks other owners.
        let by_team = build(
            &report(vec![tagged(1, Some("x"), Readiness::Ready)]),
            &["team".into()],
        );
        assert!(matches!(by_team[0].owner, Owner::Untagged { .. }));
    }

    #[test]
    fn the_digest_changes_with_what_the_owner_must_do_only() {
        let a = build(
            &report(vec![tagged(1, Some("o"), Readiness::Ready)]),
            &["owner".into()],
        );
        let mut later = report(vec![tagged(1, Some("o"), Readiness::Ready)]);
        later.id = Some(9);
        let b = build(&later, &["owner".into()]);
        assert_eq!(
            a[0].digest(),
            b[0].digest(),
            "a new scan saying the same is unchanged"
        );
        let c = build(
            &report(vec![tagged(1, Some("o"), Readiness::InUse)]),
            &["owner".into()],
        );
        assert_ne!(a[0].digest(), c[0].digest());
        let mut more_calls = report(vec![tagged(1, Some("o"), Readiness::InUse)]);
        more_calls.instances[0].usage.as_mut().unwrap().v1_calls += 100;
        let d = build(&more_calls, &["owner".into()]);
        assert_eq!(
            c[0].digest(),
            d[0].digest(),
            "more calls ask for nothing new"
        );
    }

    #[test]
    fn file_stems_are_safe_stable_and_distinct() {
        assert_eq!(Owner::Tagged("team-a".into()).file_stem(), "team-a");
        let evil = Owner::Tagged("../../etc/passwd".into()).file_stem();
        assert!(!evil.contains('/') && !evil.starts_with('.'), "{evil}");
        assert_ne!(
            Owner::Tagged("Team A".into()).file_stem(),
            Owner::Tagged("team-a".into()).file_stem()
        );
        assert_eq!(
            Owner::Tagged("Team A".into()).file_stem(),
            Owner::Tagged("Team A".into()).file_stem()
        );
        assert!(Owner::Tagged("\u{202e}".into()).file_stem().len() == 8);
        let untagged = Owner::Untagged {
            account_id: "111122223333".into(),
        };
        let forged = Owner::Tagged("_no-owner-tag-111122223333".into());
        assert_ne!(untagged.file_stem(), forged.file_stem());
        assert!(!forged.file_stem().starts_with('_'));
    }

    #[test]
    fn no_two_notices_share_a_file() {
        let hashed = Owner::Tagged("Team A".into()).file_stem();
        let notices = build(
            &report(vec![
                tagged(1, Some("Team A"), Readiness::Ready),
                tagged(2, Some(&hashed), Readiness::Ready),
                tagged(3, Some("team-b"), Readiness::Ready),
            ]),
            &["owner".into()],
        );
        let stems = file_stems(&notices);
        let distinct: std::collections::BTreeSet<&String> = stems.iter().collect();
        assert_eq!(distinct.len(), 3, "{stems:?}");
        assert!(
            stems.contains(&"team-b".to_owned()),
            "an owner alone keeps its stem"
        );
    }

    #[test]
    fn only_addresses_get_email() {
        assert_eq!(Owner::Tagged("a@b.io".into()).email(), Some("a@b.io"));
        for v in ["team-a", "a@b", "@b.io", "a b@c.io", "a@b.io\n"] {
            assert_eq!(Owner::Tagged(v.into()).email(), None, "{v:?}");
        }
    }

    #[test]
    fn commands_reach_an_account_the_way_the_scan_did() {
        let mut other = tagged(1, Some("o"), Readiness::Ready);
        other.account_id = "222233334444".into();
        let mut r = report(vec![tagged(2, Some("o"), Readiness::Ready), other]);
        r.identities = vec![
            (
                "111122223333".into(),
                "arn:aws:iam::111122223333:user/me".into(),
            ),
            (
                "222233334444".into(),
                "arn:aws:sts::222233334444:assumed-role/Audit/imdsguard".into(),
            ),
        ];
        let n = &build(&r, &["owner".into()])[0];
        let commands: Vec<&str> = n.lines.iter().map(|l| l.next.command()).collect();
        assert!(!commands[0].contains("--accounts"), "{}", commands[0]);
        assert!(
            commands[1].contains("--accounts 222233334444 --role-name Audit"),
            "{}",
            commands[1]
        );
    }

    #[test]
    fn hostile_tags_stay_inert_in_both_bodies() {
        let mut r = tagged(1, Some("[x](https://evil) <b>"), Readiness::Ready);
        r.instance
            .tags
            .insert("Name".into(), "a\nb`c\u{202e}".into());
        let n = &build(&report(vec![r]), &["owner".into()])[0];
        let md = n.markdown();
        // A link-like owner is a code span: shown, never linked.
        assert!(md.contains("of ` [x](https://evil) <b> `"), "{md}");
        assert!(n.text().contains("\"a b`c\""));
        assert!(n.subject().len() < 100 && !n.subject().contains('\n'));
        let long = build(
            &report(vec![tagged(1, Some(&"x".repeat(72)), Readiness::Ready)]),
            &["owner".into()],
        );
        assert_eq!(long[0].subject().len(), 99);
    }
}
