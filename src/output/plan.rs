//! Renders a plan for people (what changes, what is skipped and why) and
//! for machines (the plan document itself, or CSV rows).

use std::io::Write;

use crate::model::Options;
use crate::output::table::{Cell, cell, painted, write_table};
use crate::output::{Format, Paint, Style};
use crate::plan::{OptIn, Plan, Skipped};

/// `tokens optional→required, hop 1→2`: only the fields that change.
pub fn diff(a: &Options, b: &Options) -> String {
    let mut parts = Vec::new();
    if a.http_tokens != b.http_tokens {
        parts.push(format!(
            "tokens {}→{}",
            a.http_tokens.as_str(),
            b.http_tokens.as_str()
        ));
    }
    if a.http_endpoint != b.http_endpoint {
        parts.push(format!(
            "endpoint {}→{}",
            a.http_endpoint.as_str(),
            b.http_endpoint.as_str()
        ));
    }
    if a.hop_limit != b.hop_limit {
        parts.push(format!("hop {}→{}", a.hop_limit, b.hop_limit));
    }
    if a.instance_metadata_tags != b.instance_metadata_tags {
        parts.push(format!(
            "tags {}→{}",
            a.instance_metadata_tags.as_str(),
            b.instance_metadata_tags.as_str()
        ));
    }
    if a.http_protocol_ipv6 != b.http_protocol_ipv6 {
        parts.push(format!(
            "ipv6 {}→{}",
            a.http_protocol_ipv6.as_str(),
            b.http_protocol_ipv6.as_str()
        ));
    }
    parts.join(", ")
}

/// The engine's reason, and the flag that would plan the instance anyway.
fn why(s: &Skipped) -> String {
    match s.needs {
        Some(OptIn::IncludeInUse) => format!("{} (--include-in-use to force)", s.why),
        Some(OptIn::IncludeUnknown) => format!("{} (--include-unknown to force)", s.why),
        None => s.why.clone(),
    }
}

pub fn render(
    plan: &Plan,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, plan)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record([
                "account_id",
                "region",
                "instance_id",
                "name",
                "readiness",
                "change",
                "why",
            ])?;
            for c in &plan.changes {
                w.write_record([
                    c.account_id.as_str(),
                    c.region.as_str(),
                    c.instance_id.as_str(),
                    c.name.as_deref().unwrap_or(""),
                    c.readiness.as_str(),
                    &diff(&c.current, &c.target),
                    c.why.as_str(),
                ])?;
            }
            w.flush()
        }
        Format::Table => {
            writeln!(
                out,
                "{} {} · {} to change · {} skipped · {} already at target",
                style.paint("Plan:", Paint::Bold),
                plan.action.as_str(),
                plan.changes.len(),
                plan.skipped.len(),
                plan.unchanged
            )?;
            if !plan.changes.is_empty() {
                writeln!(out)?;
                let rows: Vec<Vec<Cell>> = plan
                    .changes
                    .iter()
                    .map(|c| {
                        vec![
                            cell(&c.account_id),
                            cell(&c.region),
                            cell(&c.instance_id),
                            cell(c.name.as_deref().unwrap_or("-")),
                            cell(c.readiness.as_str()),
                            Cell {
                                text: diff(&c.current, &c.target),
                                paint: Some(Paint::Green),
                                right: false,
                            },
                        ]
                    })
                    .collect();
                write_table(
                    out,
                    style,
                    &[
                        "ACCOUNT",
                        "REGION",
                        "INSTANCE",
                        "NAME",
                        "READINESS",
                        "CHANGE",
                    ],
                    &rows,
                )?;
            }
            if !plan.skipped.is_empty() {
                writeln!(out)?;
                writeln!(out, "{}", style.paint("Skipped:", Paint::Bold))?;
                let rows: Vec<Vec<Cell>> = plan
                    .skipped
                    .iter()
                    .map(|s| {
                        vec![
                            cell(&s.region),
                            cell(&s.instance_id),
                            painted(s.readiness.as_str(), Paint::Yellow),
                            cell(why(s)),
                        ]
                    })
                    .collect();
                write_table(
                    out,
                    style,
                    &["REGION", "INSTANCE", "READINESS", "WHY"],
                    &rows,
                )?;
            }
            Ok(())
        }
    }
}
