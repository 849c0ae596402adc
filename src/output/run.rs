//! Renders an apply or rollback run: counts per status, the changes that
//! need attention, and what to do next.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::model::Field;
use crate::output::json::SCHEMA;
use crate::output::plan::diff;
use crate::output::table::{Cell, cell, num, write_table};
use crate::output::{Format, Paint, Style};
use crate::runs::status::{FieldChange, field_changes};
use crate::runs::{Outcome, Stop};
use crate::store::journal::{ChangeRecord, ChangeStatus, Lease, Named, Purpose, Run, RunListing};

pub fn counts(run: &Run) -> BTreeMap<&'static str, u64> {
    let mut m: BTreeMap<&'static str, u64> =
        ChangeStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for c in &run.changes {
        *m.entry(c.status.as_str()).or_default() += 1;
    }
    m
}

/// A run to render: the journal, and what only the process that drove it
/// knows (its execution), or who drives it now.
pub struct RunView<'a> {
    pub run: &'a Run,
    pub outcome: Option<&'a Outcome>,
    pub lease: Option<Lease>,
    /// Every change (`runs RUN`), or only those not applied (after a run).
    pub all: bool,
}

/// `HttpTokens optional→required: 69; HttpEndpoint: none; ...`: every field,
/// with each transition's count, or `none`.
pub fn field_summary(changes: &[FieldChange]) -> String {
    Field::ALL
        .iter()
        .map(|f| {
            let moves: Vec<String> = changes
                .iter()
                .filter(|c| c.field == *f)
                .map(|c| format!("{}→{}: {}", c.from, c.to, c.count))
                .collect();
            if moves.is_empty() {
                format!("{}: none", f.api_name())
            } else {
                format!("{} {}", f.api_name(), moves.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The field changes that landed in a run (applied or pending).
fn landed(run: &Run) -> Vec<FieldChange> {
    field_changes(
        run.changes
            .iter()
            .filter(|c| matches!(c.status, ChangeStatus::Applied | ChangeStatus::Pending))
            .map(|c| (&c.previous, &c.target)),
    )
}

#[derive(Serialize)]
struct Execution {
    throttled: u64,
    retries: u64,
    /// `DescribeInstances` calls made to compare before sending.
    describe_rechecks: u64,
    describe_verifies: u64,
}

#[derive(Serialize)]
struct LeaseDoc<'a> {
    pid: u32,
    host: &'a str,
    purpose: Purpose,
    since: &'a str,
    heartbeat_age_secs: i64,
}

#[derive(Serialize)]
struct RunDoc<'a> {
    schema: &'static str,
    kind: &'static str,
    run: &'a Run,
    counts: BTreeMap<&'static str, u64>,
    field_changes: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<Execution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<LeaseDoc<'a>>,
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
            c.message
                .as_deref()
                .or(c.error_code.as_deref())
                .unwrap_or(""),
        ),
    ]
}

pub fn render(
    view: &RunView<'_>,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let run = view.run;
    match format {
        Format::Json => {
            let doc = RunDoc {
                schema: SCHEMA,
                kind: "run",
                run,
                counts: counts(run),
                field_changes: landed(run),
                execution: view.outcome.map(|o| Execution {
                    throttled: o.throttled,
                    retries: o.retries,
                    describe_rechecks: o.rechecks,
                    describe_verifies: o.verifies,
                }),
                lease: view.lease.as_ref().map(|l| LeaseDoc {
                    pid: l.holder.pid,
                    host: &l.holder.host,
                    purpose: l.holder.purpose,
                    since: &l.acquired_at,
                    heartbeat_age_secs: crate::clock::now_epoch() - l.heartbeat,
                }),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record([
                "run",
                "seq",
                "account_id",
                "region",
                "instance_id",
                "status",
                "reason",
                "previous",
                "target",
                "observed",
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
                    c.reason.map(Named::as_str).unwrap_or("").to_owned(),
                    c.previous.describe(),
                    c.target.describe(),
                    c.observed.map(|o| o.describe()).unwrap_or_default(),
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
                None => format!("{} {}", run.kind.as_str(), run.action.as_str()),
            };
            writeln!(
                out,
                "{} {} · {what} · {} · {}",
                style.paint(&format!("Run {}", run.id), Paint::Bold),
                run.status.as_str(),
                run.created_at,
                if summary.is_empty() {
                    "no changes".into()
                } else {
                    summary
                }
            )?;
            let landed = landed(run);
            if !landed.is_empty() {
                writeln!(out, "Changed: {}", field_summary(&landed))?;
            }
            if let Some(by) = run.rolled_back_by {
                writeln!(out, "Undone by run {by}.")?;
            }
            if let Some(l) = &view.lease {
                writeln!(
                    out,
                    "Held by pid {} on host {} since {} ({}; last heartbeat {} s ago).",
                    l.holder.pid,
                    crate::output::sanitize::terminal(&l.holder.host),
                    l.acquired_at,
                    l.holder.purpose.as_str(),
                    crate::clock::now_epoch() - l.heartbeat
                )?;
            }
            let rows: Vec<Vec<Cell>> = run
                .changes
                .iter()
                .filter(|c| view.all || c.status != ChangeStatus::Applied)
                .map(row)
                .collect();
            if !rows.is_empty() {
                writeln!(out)?;
                write_table(
                    out,
                    style,
                    &[
                        "ACCOUNT", "REGION", "INSTANCE", "STATUS", "CHANGE", "ATTEMPTS", "DETAIL",
                    ],
                    &rows,
                )?;
            }
            Ok(())
        }
    }
}

/// What to tell the user after a run, beside its rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Warning(String),
    Error { text: String, hint: String },
    Note(String),
}

/// The words after a run: throttling, what stopped it and what to do, the
/// regions that could not be re-checked, and every change not done.
pub fn aftermath(run: &Run, outcome: &Outcome) -> Vec<Message> {
    let id = run.id;
    let mut out = Vec::new();
    if outcome.throttled > 0 {
        out.push(Message::Warning(format!(
            "EC2 throttled {} call(s); {} retr(ies) with backoff in all",
            outcome.throttled, outcome.retries
        )));
    }
    let stop = match &outcome.stop {
        Some(Stop::Credentials(e)) => Some((
            format!("run {id} stopped: {e}"),
            format!("refresh your credentials and run `imdsguard apply --resume {id}`"),
        )),
        Some(Stop::AccessDenied(e)) => Some((
            format!("run {id} stopped: {e}"),
            format!("{}; then `imdsguard apply --resume {id}`", e.hint()),
        )),
        Some(Stop::LeaseLost) => Some((
            format!(
                "run {id} was taken over by another process (this one had stopped answering); it stopped sending"
            ),
            format!("`imdsguard runs {id}` shows where it stands"),
        )),
        Some(Stop::Interrupted) | None => None,
    };
    if let Some((text, hint)) = stop {
        out.push(Message::Error { text, hint });
    }
    for f in &outcome.region_failures {
        out.push(Message::Error {
            text: format!(
                "{} {}: could not re-check instances before changing them: {}; their changes were not sent",
                f.account_id, f.region, f.error
            ),
            hint: format!("{}; then `imdsguard apply --resume {id}`", f.error.hint()),
        });
    }
    let problems = crate::runs::status::problems(run);
    if problems.is_empty() {
        return out;
    }
    let shown: Vec<String> = problems
        .iter()
        .map(
            |c| match c.reason.map(Named::as_str).or(c.error_code.as_deref()) {
                Some(why) => format!("{} ({}: {why})", c.instance_id, c.status.as_str()),
                None => format!("{} ({})", c.instance_id, c.status.as_str()),
            },
        )
        .collect();
    out.push(Message::Note(format!(
        "{} change(s) not done: {}",
        problems.len(),
        crate::ops::list(shown.iter().map(String::as_str))
    )));
    let left = problems
        .iter()
        .filter(|c| matches!(c.status, ChangeStatus::Planned | ChangeStatus::Issued))
        .count();
    out.push(Message::Note(if left > 0 {
        format!(
            "{left} change(s) not sent: resume with `imdsguard apply --resume {id}`, undo with `imdsguard rollback {id}`"
        )
    } else {
        format!(
            "see `imdsguard runs {id}`; `imdsguard apply --resume {id}` re-checks them, `imdsguard rollback {id}` undoes the run"
        )
    }));
    out
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
        Format::Json => {
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
                        cell(i.run.kind.as_str()),
                        cell(i.run.action.as_str()),
                        cell(i.run.status.as_str()),
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
                let mut w = crate::output::csv::writer(out);
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
