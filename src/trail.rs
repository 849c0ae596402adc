//! CloudTrail attribution: which software fetched role credentials over
//! IMDSv1. Every API call made with role credentials that an instance got
//! from instance metadata carries `userIdentity.sessionContext.ec2RoleDelivery`
//! (`"1.0"`: delivered over IMDSv1, `"2.0"`: over IMDSv2); for instance
//! profile roles the role session name (the end of `userIdentity.arn`) is
//! the instance id, and `userAgent` names the SDK or tool.
//!
//! Pure: records in (as CloudTrail writes them), a tally per instance out.
//! Only the fields below are read: access key ids and source IP addresses
//! are never deserialized, so they can be neither stored nor printed.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::agents::{self, Agent};

/// One CloudTrail record, as far as attribution needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_time: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub aws_region: Option<String>,
    pub recipient_account_id: Option<String>,
    pub user_agent: Option<String>,
    pub user_identity: Option<UserIdentity>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    pub arn: Option<String>,
    pub account_id: Option<String>,
    pub session_context: Option<SessionContext>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    pub ec2_role_delivery: Option<String>,
}

/// How a record counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// Credentials delivered over IMDSv1 to this instance, of this role.
    V1 { instance_id: String, role: String },
    /// Delivered over IMDSv2: context, never attributed.
    V2,
    /// Delivered over IMDSv1 to a session that is not an instance id.
    V1NotAnInstance,
    /// No `ec2RoleDelivery`: not credentials from instance metadata.
    Other,
}

/// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` → (role, session).
fn assumed_role(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.split_once(":assumed-role/")?.1;
    let (role, session) = rest.rsplit_once('/')?;
    Some((role, session))
}

/// `i-` and 8 or 17 hex digits.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// Whether `delivery` (`"1.0"`, `"2.0"`) is below 2.0.
fn below_v2(delivery: &str) -> bool {
    delivery.parse::<f64>().map(|v| v < 2.0).unwrap_or(false)
}

pub fn attribute(r: &Record) -> Attribution {
    let Some(id) = &r.user_identity else {
        return Attribution::Other;
    };
    let Some(delivery) = id
        .session_context
        .as_ref()
        .and_then(|c| c.ec2_role_delivery.as_deref())
    else {
        return Attribution::Other;
    };
    if !below_v2(delivery) {
        return Attribution::V2;
    }
    match id.arn.as_deref().and_then(assumed_role) {
        Some((role, session)) if is_instance_id(session) => Attribution::V1 {
            instance_id: session.to_owned(),
            role: role.to_owned(),
        },
        _ => Attribution::V1NotAnInstance,
    }
}

/// Counts of what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub records: u64,
    /// Attributed to an instance: credentials delivered over IMDSv1.
    pub attributed: u64,
    /// Delivered over IMDSv2 (context).
    pub v2: u64,
    /// Delivered over IMDSv1 to a session that is not an instance.
    pub v1_not_instance: u64,
    /// Records or objects that could not be read.
    pub malformed: u64,
    pub objects: u64,
}

/// One instance's v1-delivered credential use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstanceTally {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub role_name: String,
    pub v1_credential_calls: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// `eventSource:eventName` → calls.
    pub events: BTreeMap<String, u64>,
    /// User agent → calls.
    pub user_agents: BTreeMap<String, u64>,
}

/// One user agent of an instance, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentUse {
    pub user_agent: String,
    pub calls: u64,
    #[serde(flatten)]
    pub agent: Agent,
    /// `upgrade AWS CLI to ≥ 1.16.289`, `unknown agent`.
    pub advice: String,
}

impl InstanceTally {
    /// Its user agents, most calls first, each judged.
    pub fn agents(&self) -> Vec<AgentUse> {
        let mut out: Vec<AgentUse> = self
            .user_agents
            .iter()
            .map(|(ua, n)| {
                let agent = agents::judge(ua);
                AgentUse {
                    advice: agent.verdict.describe(agent.tool.as_deref()),
                    user_agent: ua.clone(),
                    calls: *n,
                    agent,
                }
            })
            .collect();
        out.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.user_agent.cmp(&b.user_agent)));
        out
    }

    /// The few most frequent `source:name` events.
    pub fn top_events(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.events.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// The running tally of a trail read, window-filtered.
#[derive(Debug, Default)]
pub struct Tally {
    pub counts: Counts,
    /// Keys of objects that could not be read, with why.
    pub bad_objects: Vec<(String, String)>,
    instances: HashMap<(String, String, String), InstanceTally>,
    /// Inclusive RFC 3339 bounds.
    start: String,
    end: String,
}

/// One aggregated row: what the Athena query returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRow {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub role_name: String,
    pub user_agent: String,
    /// `eventSource:eventName`.
    pub event: String,
    pub calls: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// Longest user agent kept (CloudTrail caps them too); anything longer is cut.
const MAX_AGENT: usize = 1024;

impl Tally {
    pub fn new(start: &str, end: &str) -> Tally {
        Tally {
            start: start.to_owned(),
            end: end.to_owned(),
            ..Default::default()
        }
    }

    /// Adds one record (outside the window: skipped, not counted).
    pub fn add(&mut self, r: &Record) {
        let time = r.event_time.as_deref().unwrap_or_default();
        if time < self.start.as_str() || time > self.end.as_str() {
            return;
        }
        self.counts.records += 1;
        match attribute(r) {
            Attribution::Other => {}
            Attribution::V2 => self.counts.v2 += 1,
            Attribution::V1NotAnInstance => self.counts.v1_not_instance += 1,
            Attribution::V1 { instance_id, role } => {
                self.counts.attributed += 1;
                let account = r
                    .recipient_account_id
                    .clone()
                    .or_else(|| r.user_identity.as_ref().and_then(|i| i.account_id.clone()))
                    .unwrap_or_default();
                let region = r.aws_region.clone().unwrap_or_default();
                let t = self
                    .instances
                    .entry((account.clone(), region.clone(), instance_id.clone()))
                    .or_insert_with(|| InstanceTally {
                        account_id: account,
                        region,
                        instance_id,
                        role_name: role,
                        first_seen: time.to_owned(),
                        last_seen: time.to_owned(),
                        ..Default::default()
                    });
                t.v1_credential_calls += 1;
                if time < t.first_seen.as_str() {
                    t.first_seen = time.to_owned();
                }
                if time > t.last_seen.as_str() {
                    t.last_seen = time.to_owned();
                }
                let event = format!(
                    "{}:{}",
                    r.event_source.as_deref().unwrap_or("?"),
                    r.event_name.as_deref().unwrap_or("?")
                );
                *t.events.entry(event).or_default() += 1;
                let mut ua: String = r.user_agent.clone().unwrap_or_default();
                if ua.len() > MAX_AGENT {
                    let cut = (0..=MAX_AGENT)
                        .rev()
                        .find(|i| ua.is_char_boundary(*i))
                        .unwrap_or(0);
                    ua.truncate(cut);
                }
                *t.user_agents.entry(ua).or_default() += 1;
            }
        }
    }

    /// One object's records (`{"Records": [...]}`); a record that does not
    /// read is counted, the rest kept; an object that does not read at all
    /// is counted with its key.
    pub fn add_object(&mut self, key: &str, json: &[u8]) {
        // Each record is kept as its raw text, then read straight into
        // `Record` (only the fields used): a malformed record costs only
        // itself, and nothing else of it is ever built (4x faster than
        // going through `Value`, measured by the trail bench).
        #[derive(Deserialize)]
        struct Object<'a> {
            #[serde(rename = "Records", borrow)]
            records: Vec<&'a serde_json::value::RawValue>,
        }
        self.counts.objects += 1;
        match serde_json::from_slice::<Object>(json) {
            Ok(o) => {
                for raw in o.records {
                    match serde_json::from_str::<Record>(raw.get()) {
                        Ok(r) => self.add(&r),
                        Err(_) => self.counts.malformed += 1,
                    }
                }
            }
            Err(e) => {
                self.counts.malformed += 1;
                self.bad_objects.push((key.to_owned(), e.to_string()));
            }
        }
    }

    /// One row of an aggregate (Athena's): `calls` calls of one instance
    /// with one user agent and event, between `first` and `last`.
    pub fn add_aggregate(&mut self, row: &AggregateRow) {
        self.counts.records += row.calls;
        self.counts.attributed += row.calls;
        let t = self
            .instances
            .entry((
                row.account_id.clone(),
                row.region.clone(),
                row.instance_id.clone(),
            ))
            .or_insert_with(|| InstanceTally {
                account_id: row.account_id.clone(),
                region: row.region.clone(),
                instance_id: row.instance_id.clone(),
                role_name: row.role_name.clone(),
                first_seen: row.first_seen.clone(),
                last_seen: row.last_seen.clone(),
                ..Default::default()
            });
        t.v1_credential_calls += row.calls;
        if row.first_seen < t.first_seen {
            t.first_seen = row.first_seen.clone();
        }
        if row.last_seen > t.last_seen {
            t.last_seen = row.last_seen.clone();
        }
        *t.events.entry(row.event.clone()).or_default() += row.calls;
        *t.user_agents.entry(row.user_agent.clone()).or_default() += row.calls;
    }

    /// Folds another tally (of another region or account) into this one.
    pub fn merge(&mut self, other: Tally) {
        let c = other.counts;
        self.counts.records += c.records;
        self.counts.attributed += c.attributed;
        self.counts.v2 += c.v2;
        self.counts.v1_not_instance += c.v1_not_instance;
        self.counts.malformed += c.malformed;
        self.counts.objects += c.objects;
        self.bad_objects.extend(other.bad_objects);
        for (k, t) in other.instances {
            match self.instances.get_mut(&k) {
                None => {
                    self.instances.insert(k, t);
                }
                Some(mine) => {
                    mine.v1_credential_calls += t.v1_credential_calls;
                    if t.first_seen < mine.first_seen {
                        mine.first_seen = t.first_seen;
                    }
                    if t.last_seen > mine.last_seen {
                        mine.last_seen = t.last_seen;
                    }
                    for (e, n) in t.events {
                        *mine.events.entry(e).or_default() += n;
                    }
                    for (u, n) in t.user_agents {
                        *mine.user_agents.entry(u).or_default() += n;
                    }
                }
            }
        }
    }

    /// An object that could not be read (counted, with why).
    pub fn bad_object(&mut self, key: &str, why: &str) {
        self.counts.objects += 1;
        self.counts.malformed += 1;
        self.bad_objects.push((key.to_owned(), why.to_owned()));
    }

    /// The instances, most calls first.
    pub fn instances(self) -> (Counts, Vec<(String, String)>, Vec<InstanceTally>) {
        let mut v: Vec<InstanceTally> = self.instances.into_values().collect();
        v.sort_by(|a, b| {
            b.v1_credential_calls
                .cmp(&a.v1_credential_calls)
                .then_with(|| a.instance_id.cmp(&b.instance_id))
        });
        (self.counts, self.bad_objects, v)
    }
}
