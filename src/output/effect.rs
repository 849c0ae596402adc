//! The before/after proof of a run's or a rollout's changes: per instance,
//! IMDSv1 calls before and after its change and refusals after it; then the
//! set's calls per bucket, the change marked.

use std::io::Write;

use serde::Serialize;

use crate::output::json::SCHEMA;
use crate::output::table::{Cell, cell, num, painted, write_table};
use crate::output::{Format, Paint, Style};
use crate::rollout::effect::Effect;

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.1}"))
}

pub fn render(
    subject: &str,
    effect: &Effect,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                schema: &'static str,
                kind: &'static str,
                subject: &'a str,
                #[serde(flatten)]
                effect: &'a Effect,
            }
            serde_json::to_writer_pretty(
                &mut *out,
                &Doc {
                    schema: SCHEMA,
                    kind: "effect",
                    subject,
                    effect,
                },
            )?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record([
                "account_id",
                "region",
                "instance_id",
                "changed_at",
                "v1_calls_before",
                "v1_per_day_before",
                "v1_calls_after",
                "v1_per_day_after",
                "rejected_calls_after",
            ])?;
            for i in &effect.instances {
                w.write_record([
                    i.account_id.as_str(),
                    &i.region,
                    &i.instance_id,
                    &crate::clock::at(i.changed_at),
                    &i.v1_calls_before.to_string(),
                    &rate(i.v1_per_day_before),
                    &i.v1_calls_after.to_string(),
                    &rate(i.v1_per_day_after),
                    &i.rejected_calls_after.to_string(),
                ])?;
            }
            w.flush()
        }
        Format::Table => {
            writeln!(
                out,
                "{}",
                style.paint(
                    &format!(
                        "Effect of {subject}: {} instance(s); IMDSv1 calls {} before, {} after; {} refused after ({} buckets)",
                        effect.instances.len(),
                        effect.v1_calls_before,
                        effect.v1_calls_after,
                        effect.rejected_calls_after,
                        if effect.period == 3600 { "hourly" } else { "daily" }
                    ),
                    Paint::Bold
                )
            )?;
            let rows: Vec<Vec<Cell>> = effect
                .instances
                .iter()
                .map(|i| {
                    let mut after = num(i.v1_calls_after);
                    if i.v1_calls_after > 0 {
                        after.paint = Some(Paint::Red);
                    }
                    let mut refused = num(i.rejected_calls_after);
                    if i.rejected_calls_after > 0 {
                        refused.paint = Some(Paint::Red);
                    }
                    vec![
                        cell(&i.account_id),
                        cell(&i.region),
                        cell(&i.instance_id),
                        cell(crate::clock::at(i.changed_at)),
                        num(i.v1_calls_before),
                        cell(rate(i.v1_per_day_before)),
                        after,
                        cell(rate(i.v1_per_day_after)),
                        refused,
                    ]
                })
                .collect();
            write_table(
                out,
                style,
                &[
                    "account",
                    "region",
                    "instance",
                    "changed",
                    "v1 before",
                    "v1/day before",
                    "v1 after",
                    "v1/day after",
                    "refused after",
                ],
                &rows,
            )?;
            let max = effect
                .total
                .iter()
                .map(|b| b.v1_calls.max(b.rejected_calls))
                .max()
                .unwrap_or(0);
            writeln!(
                out,
                "\nIMDSv1 calls of these instances per bucket (▲ the change):"
            )?;
            let rows: Vec<Vec<Cell>> = effect
                .total
                .iter()
                .map(|b| {
                    let width = if max == 0 {
                        0
                    } else {
                        (b.v1_calls * 40).div_ceil(max) as usize
                    };
                    vec![
                        cell(crate::clock::at(b.t)),
                        num(b.v1_calls),
                        num(b.rejected_calls),
                        painted("█".repeat(width), Paint::Red),
                        cell(if b.change { "▲ change" } else { "" }),
                    ]
                })
                .collect();
            write_table(out, style, &["bucket", "v1", "refused", "", ""], &rows)
        }
    }
}
