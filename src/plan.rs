//! Plans: the exact change `apply` will make to each instance, computed
//! from a scan and written to a versioned, self-checking JSON file.
//!
//! A plan records, per instance, the options seen and the complete target
//! options, so `apply` can refuse drift and send every field explicitly. Its
//! `digest` (SHA-256 of the rest) makes a hand-edited or damaged file an
//! error instead of a surprise.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::filter::{parse_account_id, parse_instance_id, parse_region};
use crate::model::{Field, HttpTokens, Options, Toggle};
use crate::readiness::Readiness;
use crate::report::{InstanceRecord, ScanReport};

pub const SCHEMA: &str = "imdsguard/plan-v1";

pub use crate::model::Action;

/// How to set the hop limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HopLimit {
    Keep,
    /// 2 on container hosts that have less (containers are one hop further), the rest kept.
    Auto,
    Set(i32),
}

/// The choices a plan was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSettings {
    pub hop_limit: HopLimit,
    pub enable_tags: bool,
    pub include_in_use: bool,
    pub include_unknown: bool,
}

/// One instance to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedChange {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub name: Option<String>,
    pub readiness: Readiness,
    pub why: String,
    /// The options as the scan saw them; `apply` refuses to act if they changed.
    pub current: Options,
    pub target: Options,
}

/// The opt-in that would have planned a skipped instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptIn {
    /// It made IMDSv1 calls: enforcing would break it.
    IncludeInUse,
    /// Nothing proves it safe (no metric data).
    IncludeUnknown,
}

/// One selected instance the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skipped {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub readiness: Readiness,
    pub why: String,
    /// What would plan it anyway (the CLI names the flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<OptIn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub schema: String,
    pub created_at: String,
    pub action: Action,
    pub scan_id: Option<i64>,
    pub settings: PlanSettings,
    pub changes: Vec<PlannedChange>,
    pub skipped: Vec<Skipped>,
    /// Selected instances already at their target.
    pub unchanged: u64,
    /// SHA-256 (hex) of this document with `digest` empty.
    pub digest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("plan {path} is not a valid plan file: {reason}")]
    Malformed { path: String, reason: String },
    #[error("plan {path} was modified after `imdsguard plan` wrote it (digest mismatch)")]
    Tampered { path: String },
    #[error("plan {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("plan {path}: {instance_id}: {reason}")]
    Meaning {
        path: String,
        instance_id: String,
        reason: String,
    },
    #[error(
        "plan {path} was made {age} ago ({created_at}), more than the {max} allowed: readiness may have changed since"
    )]
    TooOld {
        path: String,
        created_at: String,
        age: String,
        max: String,
    },
    #[error("hop limit {0} is out of range")]
    HopLimit(i32),
}

impl PlanError {
    pub fn hint(&self) -> &'static str {
        match self {
            PlanError::Unreadable { .. } => {
                "check the path; `imdsguard plan --out FILE` writes a plan"
            }
            PlanError::Malformed { .. }
            | PlanError::Invalid { .. }
            | PlanError::Tampered { .. }
            | PlanError::Meaning { .. } => {
                "plans are not meant to be edited: run `imdsguard plan` again with the selection you want"
            }
            PlanError::TooOld { .. } => {
                "run `imdsguard plan` again (readiness ages), or pass a longer --max-plan-age to apply it as it is"
            }
            PlanError::HopLimit(_) => "the hop limit is 1 to 64; `auto` sets 2 on container hosts",
        }
    }
}

/// The inputs of plan computation, free of CLI types.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub action: Action,
    pub settings: PlanSettings,
}

/// Computes a plan from a scan's records (already filtered by the selection).
pub fn build(
    request: &PlanRequest,
    scan: &ScanReport,
    created_at: String,
) -> Result<Plan, PlanError> {
    if let HopLimit::Set(n) = request.settings.hop_limit
        && !(1..=64).contains(&n)
    {
        return Err(PlanError::HopLimit(n));
    }
    let mut plan = Plan {
        schema: SCHEMA.to_owned(),
        created_at,
        action: request.action,
        scan_id: scan.id,
        settings: request.settings.clone(),
        changes: Vec::new(),
        skipped: Vec::new(),
        unchanged: 0,
        digest: String::new(),
    };
    for rec in &scan.instances {
        let skip = |why: String, needs: Option<OptIn>| Skipped {
            account_id: rec.account_id.clone(),
            region: rec.region.clone(),
            instance_id: rec.instance.instance_id.clone(),
            readiness: rec.readiness,
            why,
            needs,
        };
        let Some(current) = rec.instance.metadata.explicit() else {
            plan.skipped
                .push(skip("EC2 did not report its metadata options".into(), None));
            continue;
        };
        let target = target_for(request, rec.container_host, current);
        if target == current {
            plan.unchanged += 1;
            continue;
        }
        if let Some((why, needs)) = gate(request, rec, &current, &target) {
            plan.skipped.push(skip(why, Some(needs)));
            continue;
        }
        plan.changes.push(PlannedChange {
            account_id: rec.account_id.clone(),
            region: rec.region.clone(),
            instance_id: rec.instance.instance_id.clone(),
            name: rec.instance.name().map(str::to_owned),
            readiness: rec.readiness,
            why: rec.reason.clone(),
            current,
            target,
        });
    }
    plan.digest = digest(&plan);
    Ok(plan)
}

/// The target a plan computes for an instance from the options it saw.
fn target_for(request: &PlanRequest, container_host: bool, current: Options) -> Options {
    let mut t = current;
    match request.action {
        Action::RequireV2 => t.http_tokens = HttpTokens::Required,
        Action::DisableEndpoint => t.http_endpoint = Toggle::Disabled,
        Action::AllowV1 => t.http_tokens = HttpTokens::Optional,
        Action::Rollback => {}
    }
    // Hop limit and tags only matter where IMDS is served.
    if t.http_endpoint == Toggle::Enabled {
        match request.settings.hop_limit {
            HopLimit::Keep => {}
            HopLimit::Auto => {
                if container_host && t.hop_limit < 2 {
                    t.hop_limit = 2;
                }
            }
            HopLimit::Set(n) => t.hop_limit = n,
        }
        if request.settings.enable_tags {
            t.instance_metadata_tags = Toggle::Enabled;
        }
    }
    t
}

/// Why a change must not be made without an explicit opt-in, and which.
fn gate(
    request: &PlanRequest,
    rec: &InstanceRecord,
    current: &Options,
    target: &Options,
) -> Option<(String, OptIn)> {
    let enforcing =
        current.http_tokens == HttpTokens::Optional && target.http_tokens == HttpTokens::Required;
    if !enforcing {
        return None;
    }
    match rec.readiness {
        Readiness::InUse if !request.settings.include_in_use => Some((
            format!("{}; enforcing would break it", rec.reason),
            OptIn::IncludeInUse,
        )),
        Readiness::Unknown if !request.settings.include_unknown => Some((
            format!("{}; not proven safe", rec.reason),
            OptIn::IncludeUnknown,
        )),
        _ => None,
    }
}

/// SHA-256 of the plan with an empty digest, as lowercase hex.
pub fn digest(plan: &Plan) -> String {
    let mut copy = plan.clone();
    copy.digest = String::new();
    let bytes = serde_json::to_vec(&copy).expect("plans serialize");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads and checks a plan file: JSON shape, schema version, digest, and
/// every field's validity. Nothing reaches AWS unless all of it holds.
/// Returns the plan and the file's text as read (the run journals it).
pub fn load(path: &Path) -> Result<(Plan, String), PlanError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PlanError::Unreadable {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let plan = parse(&text, &shown)?;
    Ok((plan, text))
}

pub fn parse(text: &str, shown: &str) -> Result<Plan, PlanError> {
    // Check the schema first so an old or foreign file gets the right message.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| PlanError::Malformed {
            path: shown.to_owned(),
            reason: e.to_string(),
        })?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => {
            return Err(PlanError::Invalid {
                path: shown.to_owned(),
                reason: format!("schema `{other}` is not `{SCHEMA}`"),
            });
        }
        None => {
            return Err(PlanError::Malformed {
                path: shown.to_owned(),
                reason: "no `schema` field".into(),
            });
        }
    }
    let plan: Plan = serde_json::from_value(value).map_err(|e| PlanError::Malformed {
        path: shown.to_owned(),
        reason: e.to_string(),
    })?;
    if digest(&plan) != plan.digest {
        return Err(PlanError::Tampered {
            path: shown.to_owned(),
        });
    }
    validate(&plan).map_err(|reason| PlanError::Invalid {
        path: shown.to_owned(),
        reason,
    })?;
    check_meaning(&plan, shown)?;
    Ok(plan)
}

/// Checks that a plan means what a plan may mean, whoever computed its
/// digest: every target is what [`build`] would compute from the options
/// the plan saw, its action and its settings. So a target never goes
/// against its action (`require-v2` → tokens `required`, `disable-endpoint`
/// → endpoint `disabled`, `allow-v1` → tokens `optional`), never re-enables
/// an endpoint the plan saw disabled, and changes hop limit, tags and IPv6
/// only where the plan's own settings asked for it.
pub fn check_meaning(plan: &Plan, shown: &str) -> Result<(), PlanError> {
    let refuse = |instance_id: &str, reason: String| PlanError::Meaning {
        path: shown.to_owned(),
        instance_id: instance_id.to_owned(),
        reason,
    };
    if plan.action == Action::Rollback {
        return Err(PlanError::Invalid {
            path: shown.to_owned(),
            reason: "plans do not roll back: `imdsguard rollback RUN` does, from the journal"
                .into(),
        });
    }
    if let HopLimit::Set(n) = plan.settings.hop_limit
        && !(1..=64).contains(&n)
    {
        return Err(PlanError::Invalid {
            path: shown.to_owned(),
            reason: format!("settings: hop limit {n} is out of range 1..64"),
        });
    }
    let request = PlanRequest {
        action: plan.action,
        settings: plan.settings.clone(),
    };
    for c in &plan.changes {
        // Whether the instance is a container host is not in the plan: with
        // `--hop-limit auto` either answer is a possible target.
        let allowed = [
            target_for(&request, false, c.current),
            target_for(&request, true, c.current),
        ];
        if allowed.contains(&c.target) {
            continue;
        }
        let field = Field::ALL
            .into_iter()
            .find(|f| allowed.iter().all(|a| f.value(a) != f.value(&c.target)))
            .unwrap_or(Field::HopLimit);
        let (got, saw, want) = (
            field.value(&c.target),
            field.value(&c.current),
            field.value(&allowed[0]),
        );
        let action = plan.action.as_str();
        let reason = match field {
            Field::HttpEndpoint if c.current.http_endpoint == Toggle::Disabled => format!(
                "HttpEndpoint `{got}` would re-enable the metadata endpoint the plan saw disabled; nothing ever re-enables a disabled endpoint"
            ),
            Field::HttpTokens | Field::HttpEndpoint => format!(
                "{} `{got}` is not what a {action} plan sets for an instance it saw with `{saw}` (`{want}`)",
                field.api_name()
            ),
            Field::HopLimit => format!(
                "HttpPutResponseHopLimit {got}: the plan saw {saw}, and its settings (hop limit {}) make it {want}",
                match plan.settings.hop_limit {
                    HopLimit::Keep => "keep".to_owned(),
                    HopLimit::Auto => "auto".to_owned(),
                    HopLimit::Set(n) => n.to_string(),
                }
            ),
            Field::InstanceMetadataTags => format!(
                "InstanceMetadataTags `{got}`: the plan saw `{saw}` and {}",
                if plan.settings.enable_tags {
                    "enables tags only where the endpoint is enabled"
                } else {
                    "its settings do not enable tags"
                }
            ),
            Field::HttpProtocolIpv6 => format!(
                "HttpProtocolIpv6 `{got}`: the plan saw `{saw}`, and plans never change IPv6"
            ),
        };
        return Err(refuse(&c.instance_id, reason));
    }
    Ok(())
}

/// Refuses a plan made longer ago than `max` (readiness ages: an instance
/// `ready` a week ago may call IMDSv1 today), or one dated in the future.
pub fn check_age(
    plan: &Plan,
    shown: &str,
    max: std::time::Duration,
    now: i64,
) -> Result<(), PlanError> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let invalid = |reason: String| PlanError::Invalid {
        path: shown.to_owned(),
        reason,
    };
    let made = OffsetDateTime::parse(&plan.created_at, &Rfc3339)
        .map_err(|_| {
            invalid(format!(
                "created_at `{}` is not an RFC 3339 time",
                plan.created_at
            ))
        })?
        .unix_timestamp();
    // Clocks disagree a little between the machine that planned and this one.
    if made > now + 300 {
        return Err(invalid(format!(
            "created_at {} is in the future",
            plan.created_at
        )));
    }
    let age = (now - made).max(0) as u64;
    if age > max.as_secs() {
        return Err(PlanError::TooOld {
            path: shown.to_owned(),
            created_at: plan.created_at.clone(),
            age: crate::clock::human_duration(age),
            max: crate::clock::human_duration(max.as_secs()),
        });
    }
    Ok(())
}

fn validate(plan: &Plan) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for c in &plan.changes {
        parse_instance_id(&c.instance_id)
            .map_err(|_| format!("malformed instance id `{}`", c.instance_id))?;
        parse_region(&c.region).map_err(|_| format!("malformed region `{}`", c.region))?;
        parse_account_id(&c.account_id)
            .map_err(|_| format!("malformed account id `{}`", c.account_id))?;
        for o in [&c.current, &c.target] {
            if !(1..=64).contains(&o.hop_limit) {
                return Err(format!(
                    "{}: hop limit {} is out of range 1..64",
                    c.instance_id, o.hop_limit
                ));
            }
        }
        if c.current == c.target {
            return Err(format!("{}: target equals current", c.instance_id));
        }
        if !seen.insert((&c.account_id, &c.region, &c.instance_id)) {
            return Err(format!("{} appears twice", c.instance_id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::Readiness;

    fn record(
        n: usize,
        tokens: HttpTokens,
        readiness: Readiness,
        container: bool,
    ) -> InstanceRecord {
        let mut r = crate::report::test_support::record(n, tokens, readiness);
        r.container_host = container;
        r
    }

    fn request(action: Action, hop: HopLimit) -> PlanRequest {
        PlanRequest {
            action,
            settings: PlanSettings {
                hop_limit: hop,
                enable_tags: false,
                include_in_use: false,
                include_unknown: false,
            },
        }
    }

    fn scan(records: Vec<InstanceRecord>) -> ScanReport {
        ScanReport {
            id: Some(1),
            instances: records,
            ..Default::default()
        }
    }

    #[test]
    fn require_v2_gates_on_readiness() {
        let s = scan(vec![
            record(1, HttpTokens::Optional, Readiness::Ready, false),
            record(2, HttpTokens::Optional, Readiness::InUse, false),
            record(3, HttpTokens::Optional, Readiness::Unknown, false),
            record(4, HttpTokens::Required, Readiness::Compliant, false),
            record(5, HttpTokens::Optional, Readiness::Ready, true),
        ]);
        let plan = build(&request(Action::RequireV2, HopLimit::Auto), &s, "t".into()).unwrap();
        let changed: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| c.instance_id.as_str())
            .collect();
        assert_eq!(
            changed,
            vec![format!("i-{:017x}", 1), format!("i-{:017x}", 5)]
        );
        assert_eq!(
            plan.changes[0].target.hop_limit, 1,
            "not a container host: kept"
        );
        assert_eq!(
            plan.changes[1].target.hop_limit, 2,
            "container host: raised"
        );
        assert_eq!(plan.skipped.len(), 2);
        assert_eq!(plan.skipped[0].needs, Some(OptIn::IncludeInUse));
        assert_eq!(plan.skipped[1].needs, Some(OptIn::IncludeUnknown));
        assert_eq!(plan.unchanged, 1);
        // Everything else is preserved.
        let c = &plan.changes[0];
        assert_eq!(
            (c.target.http_endpoint, c.target.instance_metadata_tags),
            (c.current.http_endpoint, c.current.instance_metadata_tags)
        );
    }

    #[test]
    fn disabled_endpoint_is_never_reenabled() {
        let mut r = record(1, HttpTokens::Optional, Readiness::Disabled, false);
        r.instance.metadata.http_endpoint = Some(Toggle::Disabled);
        let plan = build(
            &request(Action::RequireV2, HopLimit::Set(3)),
            &scan(vec![r]),
            "t".into(),
        )
        .unwrap();
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].target.http_endpoint, Toggle::Disabled);
        assert_eq!(
            plan.changes[0].target.hop_limit, 1,
            "hop limit untouched where IMDS is off"
        );
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let s = scan(vec![record(
            1,
            HttpTokens::Optional,
            Readiness::Ready,
            false,
        )]);
        let plan = build(&request(Action::RequireV2, HopLimit::Keep), &s, "t".into()).unwrap();
        let text = serde_json::to_string_pretty(&plan).unwrap();
        assert_eq!(parse(&text, "p").unwrap(), plan);
        let edited = text.replace("\"hop_limit\": 1", "\"hop_limit\": 9");
        assert!(matches!(
            parse(&edited, "p"),
            Err(PlanError::Tampered { .. })
        ));
        assert!(matches!(
            parse(&text[..text.len() / 2], "p"),
            Err(PlanError::Malformed { .. })
        ));
        let foreign = text.replace(SCHEMA, "imdsguard/plan-v9");
        assert!(matches!(
            parse(&foreign, "p"),
            Err(PlanError::Invalid { .. })
        ));
        assert!(matches!(parse("{}", "p"), Err(PlanError::Malformed { .. })));
    }

    /// A plan edited and re-digested: the digest holds, the meaning does not.
    fn redigested(plan: &Plan, edit: impl FnOnce(&mut Plan)) -> Result<Plan, PlanError> {
        let mut p = plan.clone();
        edit(&mut p);
        p.digest = digest(&p);
        parse(&serde_json::to_string(&p).unwrap(), "p")
    }

    fn meaning_error(r: Result<Plan, PlanError>) -> String {
        match r {
            Err(PlanError::Meaning {
                instance_id,
                reason,
                ..
            }) => format!("{instance_id}: {reason}"),
            other => panic!("expected a meaning error, got {other:?}"),
        }
    }

    #[test]
    fn targets_must_mean_what_the_action_and_settings_say() {
        let mut disabled = record(2, HttpTokens::Optional, Readiness::Disabled, false);
        disabled.instance.metadata.http_endpoint = Some(Toggle::Disabled);
        let s = scan(vec![
            record(1, HttpTokens::Optional, Readiness::Ready, false),
            disabled,
        ]);
        let plan = build(&request(Action::RequireV2, HopLimit::Keep), &s, "t".into()).unwrap();
        // The control: re-digesting an unedited plan changes nothing.
        assert_eq!(redigested(&plan, |_| {}).unwrap(), plan);
        let e = meaning_error(redigested(&plan, |p| {
            p.changes[0].target.http_tokens = HttpTokens::Optional;
            p.changes[0].target.hop_limit = 64;
        }));
        assert!(
            e.contains("HttpTokens `optional` is not what a require-v2 plan sets"),
            "{e}"
        );
        let e = meaning_error(redigested(&plan, |p| {
            p.changes[1].target.http_endpoint = Toggle::Enabled;
        }));
        assert!(e.contains("would re-enable the metadata endpoint"), "{e}");
        let e = meaning_error(redigested(&plan, |p| p.changes[0].target.hop_limit = 64));
        assert!(
            e.contains("HttpPutResponseHopLimit 64: the plan saw 1"),
            "{e}"
        );
        let e = meaning_error(redigested(&plan, |p| {
            p.changes[0].target.instance_metadata_tags = Toggle::Enabled
        }));
        assert!(e.contains("its settings do not enable tags"), "{e}");
        let e = meaning_error(redigested(&plan, |p| {
            p.changes[0].target.http_protocol_ipv6 = Toggle::Enabled
        }));
        assert!(e.contains("plans never change IPv6"), "{e}");
        // The same target is right when the settings asked for it.
        let tagged = redigested(&plan, |p| {
            p.settings.enable_tags = true;
            p.changes[0].target.instance_metadata_tags = Toggle::Enabled;
        });
        assert!(tagged.is_ok(), "{tagged:?}");
        // `auto` may or may not raise a host to 2 (the plan cannot tell a
        // container host), but never to anything else.
        let auto = |hop| {
            redigested(&plan, |p| {
                p.settings.hop_limit = HopLimit::Auto;
                p.changes[0].target.hop_limit = hop;
            })
        };
        assert!(auto(2).is_ok());
        assert!(matches!(auto(3), Err(PlanError::Meaning { .. })));
        assert!(matches!(
            redigested(&plan, |p| p.action = Action::Rollback),
            Err(PlanError::Invalid { .. })
        ));
    }

    #[test]
    fn plans_older_than_the_limit_are_refused() {
        let s = scan(vec![record(
            1,
            HttpTokens::Optional,
            Readiness::Ready,
            false,
        )]);
        let mut plan = build(
            &request(Action::RequireV2, HopLimit::Keep),
            &s,
            "2026-11-20T00:00:00Z".into(),
        )
        .unwrap();
        let now = time::macros::datetime!(2026-11-28 00:00 UTC).unix_timestamp();
        let week = std::time::Duration::from_secs(7 * 86_400);
        assert!(matches!(
            check_age(&plan, "p", week, now),
            Err(PlanError::TooOld { ref age, .. }) if age == "8 days"
        ));
        assert!(check_age(&plan, "p", week * 2, now).is_ok());
        plan.created_at = "2026-12-01T00:00:00Z".into();
        assert!(matches!(
            check_age(&plan, "p", week, now),
            Err(PlanError::Invalid { ref reason, .. }) if reason.contains("future")
        ));
    }

    #[test]
    fn bad_hop_limit() {
        let s = scan(vec![]);
        assert!(matches!(
            build(
                &request(Action::RequireV2, HopLimit::Set(65)),
                &s,
                "t".into()
            ),
            Err(PlanError::HopLimit(65))
        ));
    }
}
