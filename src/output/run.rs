//! Renders an apply or rollback run: counts per status, the changes that
//! need attention, and what to do next.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::journal::{ChangeRecord, ChangeStatus, Run, RunListing};
use crate::output::json::SCHEMA;
use crate::output::plan::diff;
use crate::output::table::{Cell, cell, num, write_table};
use crate::output::{Format, Paint, Style};

pub fn counts(run: &Run) -> BTreeMap<&'static str, u64> {
    let mut m: BTreeMap<&'static str, u64> =
        ChangeStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for c in &run.changes {
        *m.entry(c.status.as_str()).or_default() += 1;
    }
    m
}

#[derive(Serialize)]
struct RunDoc<'a> {
    schema: &'static str,
    kind: &'static str,
    run: &'a Run,
    counts: BTreeMap<&'static str, u64>,
}

fn paint_for(s: ChangeStatus) -> Option<Paint> {
    match s {
        ChangeStatus::Applied => Some(Paint::Green),
        ChangeStatus::Failed => Some(Paint::Red),
        ChangeStatus::Pending | ChangeStatus::Issued | ChangeStatus::Planned => Some(Paint::Yellow),
        ChangeStatus::Skipped => None,
    }
}

fn row(c: &ChangeRecord) -> Vec<Cell> {
    vec![
        cell(&c.account_id),
        cell(&c.region),
        cell(&c.instance_id),
        Cell {
            text: c.status.as_str().to_owned(),
            paint: paint_for(c.status),
            right: false,
        },
        cell(diff(&c.previous, &c.target)),
        num(c.attempts as u64),
        cell(
            c.error_code
                .as_deref()
                .or(c.message.as_deref())
                .unwrap_or(""),
        ),
    ]
}

/// `all`: every change (for `runs RUN`); otherwise only those not applied.
pub fn render(
    run: &Run,
    all: bool,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        // `main` refuses --format sarif and html where they do not apply.
        Format::Json | Format::Sarif | Format::Html => {
            let doc = RunDoc {
                schema: SCHEMA,
                kind: "run",
                run,
                counts: counts(run),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "run",
                "seq",
                "account_id",
                "region",
                "instance_id",
                "status",
                "previous",
                "target",
                "attempts",
                "request_id",
                "error_code",
                "message",
            ])?;
            for c in &run.changes {
                w.write_record([
                    run.id.to_string(),
                    c.seq.to_string(),
                    c.account_id.clone(),
                    c.region.clone(),
                    c.instance_id.clone(),
                    c.status.as_str().to_owned(),
                    c.previous.describe(),
                    c.target.describe(),
                    c.attempts.to_string(),
                    c.request_id.clone().unwrap_or_default(),
                    c.error_code.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                ])?;
            }
            w.flush()
        }
        Format::Table => {
            let summary = counts(run)
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let what = match run.parent_run {
                Some(p) => format!("rollback of run {p}"),
                None => format!("{} {}", run.kind, run.action),
            };
            writeln!(
                out,
                "{} {} · {what} · {} · {}",
                style.paint(&format!("Run {}", run.id), Paint::Bold),
                run.status,
                run.created_at,
                if summary.is_empty() {
                    "no changes".into()
                } else {
                    summary
                }
            )?;
            let rows: Vec<Vec<Cell>> = run
                .changes
                .iter()
                .filter(|c| all || c.status != ChangeStatus::Applied)
                .map(row)
                .collect();
            if !rows.is_empty() {
                writeln!(out)?;
                write_table(
                    out,
                    style,
                    &[
                        "ACCOUNT", "REGION", "INSTANCE", "STATUS", "CHANGE", "ATTEMPTS", "ERROR",
                    ],
                    &rows,
                )?;
            }
            Ok(())
        }
    }
}

/// `runs`: one line per run.
pub fn render_list(
    runs: &[RunListing],
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Item<'a> {
        #[serde(flatten)]
        run: &'a Run,
        counts: BTreeMap<&'static str, i64>,
    }
    let items: Vec<Item> = runs
        .iter()
        .map(|(run, c)| Item {
            run,
            counts: c.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
        })
        .collect();
    match format {
        // `main` refuses --format sarif and html where they do not apply.
        Format::Json | Format::Sarif | Format::Html => {
            #[derive(Serialize)]
            struct Doc<'a> {
                schema: &'static str,
                kind: &'static str,
                runs: Vec<Item<'a>>,
            }
            serde_json::to_writer_pretty(
                &mut *out,
                &Doc {
                    schema: SCHEMA,
                    kind: "runs",
                    runs: items,
                },
            )?;
            writeln!(out)
        }
        Format::Csv | Format::Table => {
            if runs.is_empty() && format == Format::Table {
                return writeln!(out, "No runs yet.");
            }
            let rows: Vec<Vec<Cell>> = items
                .iter()
                .map(|i| {
                    vec![
                        num(i.run.id as u64),
                        cell(&i.run.kind),
                        cell(&i.run.action),
                        cell(&i.run.status),
                        cell(&i.run.created_at),
                        cell(
                            i.run
                                .parent_run
                                .map(|p| p.to_string())
                                .unwrap_or_else(|| "-".into()),
                        ),
                        cell(
                            i.counts
                                .iter()
                                .map(|(s, n)| format!("{s} {n}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        ),
                    ]
                })
                .collect();
            if format == Format::Csv {
                let mut w = csv::Writer::from_writer(out);
                w.write_record([
                    "run",
                    "kind",
                    "action",
                    "status",
                    "created_at",
                    "parent_run",
                    "changes",
                ])?;
                for r in rows {
                    w.write_record(r.iter().map(|c| c.text.as_str()))?;
                }
                return w.flush();
            }
            write_table(
                out,
                style,
                &[
                    "RUN", "KIND", "ACTION", "STATUS", "CREATED", "UNDOES", "CHANGES",
                ],
                &rows,
            )
        }
    }
}
