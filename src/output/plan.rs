//! Renders a plan for people (what changes, what is skipped and why) and
//! for machines (the plan document itself, or CSV rows).

use std::io::Write;

use crate::model::{Field, Options};
use crate::output::table::{Cell, cell, painted, write_table};
use crate::output::{Format, Paint, Style};
use crate::plan::{OptIn, Plan, Skipped};

/// `tokens optional→required, hop 1→2`: only the fields that change.
pub fn diff(a: &Options, b: &Options) -> String {
    Field::ALL
        .into_iter()
        .filter(|f| f.value(a) != f.value(b))
        .map(|f| format!("{} {}→{}", f.short_name(), f.value(a), f.value(b)))
        .collect::<Vec<_>>()
        .join(", ")
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
