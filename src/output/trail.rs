//! `imdsguard trail`'s output: a table of instances whose role credentials
//! were delivered over IMDSv1, with the software that used them and what to
//! do; or one JSON object (`kind: "trail"`).

use std::io::Write;

use serde::Serialize;

use crate::ops::trail::TrailResult;
use crate::output::json::SCHEMA;
use crate::output::rows::{self, Row, Value};
use crate::output::{Format, RowsFormat, Style};
use crate::trail::{AgentUse, Counts};

#[derive(Serialize)]
struct TrailDoc<'a> {
    schema: &'static str,
    kind: &'static str,
    id: i64,
    source: &'a str,
    window: Window<'a>,
    counts: &'a Counts,
    instances: Vec<InstanceV1<'a>>,
    /// In-use instances of the latest scan with no credential fetch over
    /// IMDSv1 in the window: their IMDSv1 use is metadata reads.
    metadata_reads_only: Vec<Key<'a>>,
    bad_objects: Vec<Bad<'a>>,
}

#[derive(Serialize)]
struct Window<'a> {
    start: &'a str,
    end: &'a str,
    days: usize,
}

#[derive(Serialize)]
struct InstanceV1<'a> {
    account_id: &'a str,
    region: &'a str,
    instance_id: &'a str,
    role_name: &'a str,
    v1_credential_calls: u64,
    first_seen: &'a str,
    last_seen: &'a str,
    top_events: Vec<(String, u64)>,
    user_agents: Vec<AgentUse>,
}

#[derive(Serialize)]
struct Key<'a> {
    account_id: &'a str,
    region: &'a str,
    instance_id: &'a str,
}

#[derive(Serialize)]
struct Bad<'a> {
    key: &'a str,
    error: &'a str,
}

/// One table row per instance: its most frequent user agent and advice.
#[derive(Serialize)]
struct TrailRow {
    account_id: String,
    region: String,
    instance_id: String,
    role_name: String,
    v1_credential_calls: u64,
    last_seen: String,
    software: String,
    advice: String,
}

impl Row for TrailRow {
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "region",
        "instance_id",
        "role_name",
        "v1_credential_calls",
        "last_seen",
        "software",
        "advice",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            (&self.account_id).into(),
            (&self.region).into(),
            (&self.instance_id).into(),
            (&self.role_name).into(),
            self.v1_credential_calls.into(),
            (&self.last_seen).into(),
            (&self.software).into(),
            (&self.advice).into(),
        ]
    }
}

pub fn render(
    r: &TrailResult,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let doc = TrailDoc {
                schema: SCHEMA,
                kind: "trail",
                id: r.id,
                source: &r.source,
                window: Window {
                    start: &r.window.start,
                    end: &r.window.end,
                    days: r.window.days.len(),
                },
                counts: &r.counts,
                instances: r
                    .instances
                    .iter()
                    .map(|t| InstanceV1 {
                        account_id: &t.account_id,
                        region: &t.region,
                        instance_id: &t.instance_id,
                        role_name: &t.role_name,
                        v1_credential_calls: t.v1_credential_calls,
                        first_seen: &t.first_seen,
                        last_seen: &t.last_seen,
                        top_events: t.top_events(5),
                        user_agents: t.agents(),
                    })
                    .collect(),
                metadata_reads_only: r
                    .metadata_only
                    .iter()
                    .map(|(a, g, i)| Key {
                        account_id: a,
                        region: g,
                        instance_id: i,
                    })
                    .collect(),
                bad_objects: r
                    .bad_objects
                    .iter()
                    .map(|(key, error)| Bad { key, error })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Format::Table | Format::Csv => {
            let rows: Vec<TrailRow> = r
                .instances
                .iter()
                .map(|t| {
                    let agents = t.agents();
                    let top = agents.first();
                    TrailRow {
                        account_id: t.account_id.clone(),
                        region: t.region.clone(),
                        instance_id: t.instance_id.clone(),
                        role_name: t.role_name.clone(),
                        v1_credential_calls: t.v1_credential_calls,
                        last_seen: t.last_seen.clone(),
                        software: top
                            .map(|a| match (&a.agent.tool, &a.agent.version) {
                                (Some(tool), Some(v)) => format!("{tool} {v}"),
                                _ => a.user_agent.clone(),
                            })
                            .unwrap_or_default(),
                        advice: top.map(|a| a.advice.clone()).unwrap_or_default(),
                    }
                })
                .collect();
            let rows_format = if format == Format::Csv {
                RowsFormat::Csv
            } else {
                RowsFormat::Table
            };
            rows::render("trail", &rows, rows_format, style, out)
        }
    }
}
