//! What `notify` did: per owner and destination, the status of its notice.

use std::io::Write;

use serde::Serialize;

use crate::ops::notify::{NotifyOutcome, Status, Via};
use crate::output::json::SCHEMA;
use crate::output::table::{Cell, cell, num, painted, write_table};
use crate::output::{Format, Paint, Style};

#[derive(Serialize)]
struct Doc<'a> {
    schema: &'static str,
    kind: &'static str,
    scan_id: i64,
    dry_run: bool,
    notices: Vec<NoticeDoc<'a>>,
}

#[derive(Serialize)]
struct NoticeDoc<'a> {
    owner: String,
    owner_key: String,
    email: Option<&'a str>,
    instances: usize,
    instance_ids: Vec<&'a str>,
    subject: String,
    digest: &'a str,
    deliveries: Vec<DeliveryDoc<'a>>,
}

#[derive(Serialize)]
struct DeliveryDoc<'a> {
    via: Via,
    destination: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn detail(s: &Status) -> (Option<&str>, Option<&str>) {
    match s {
        Status::Sent { message_id } => (Some(message_id), None),
        Status::Failed { error } => (None, Some(error)),
        Status::NotTried { because } => (None, Some(because)),
        _ => (None, None),
    }
}

pub fn render(
    outcome: &NotifyOutcome,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let doc = Doc {
                schema: SCHEMA,
                kind: "notices",
                scan_id: outcome.scan_id,
                dry_run: outcome.dry_run,
                notices: outcome
                    .notices
                    .iter()
                    .map(|n| NoticeDoc {
                        owner: n.notice.owner.display(),
                        owner_key: n.notice.owner.key(),
                        email: n.notice.owner.email(),
                        instances: n.notice.lines.len(),
                        instance_ids: n
                            .notice
                            .lines
                            .iter()
                            .map(|l| l.instance_id.as_str())
                            .collect(),
                        subject: n.notice.subject(),
                        digest: &n.digest,
                        deliveries: n
                            .deliveries
                            .iter()
                            .map(|d| {
                                let (message_id, error) = detail(&d.status);
                                DeliveryDoc {
                                    via: d.via,
                                    destination: &d.destination,
                                    status: d.status.name(),
                                    message_id,
                                    error,
                                }
                            })
                            .collect(),
                    })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record([
                "owner",
                "owner_key",
                "instances",
                "via",
                "destination",
                "status",
                "detail",
            ])?;
            for n in &outcome.notices {
                for d in &n.deliveries {
                    let (id, error) = detail(&d.status);
                    w.write_record([
                        n.notice.owner.display().as_str(),
                        &n.notice.owner.key(),
                        &n.notice.lines.len().to_string(),
                        via(d.via),
                        &d.destination,
                        d.status.name(),
                        id.or(error).unwrap_or(""),
                    ])?;
                }
            }
            w.flush()
        }
        Format::Table => {
            let owners = outcome.notices.len();
            let instances: usize = outcome.notices.iter().map(|n| n.notice.lines.len()).sum();
            writeln!(
                out,
                "{}",
                style.paint(
                    &format!(
                        "Notices from scan {}{}: {owners} owner(s), {instances} instance(s) that allow IMDSv1",
                        outcome.scan_id,
                        if outcome.dry_run { " (dry run: nothing sent)" } else { "" }
                    ),
                    Paint::Bold
                )
            )?;
            let rows: Vec<Vec<Cell>> = outcome
                .notices
                .iter()
                .flat_map(|n| {
                    n.deliveries.iter().map(|d| {
                        let (id, error) = detail(&d.status);
                        let status = match &d.status {
                            Status::Failed { .. } | Status::NotTried { .. } => {
                                painted(d.status.name(), Paint::Red)
                            }
                            Status::Sent { .. } | Status::Written => {
                                painted(d.status.name(), Paint::Green)
                            }
                            _ => cell(d.status.name()),
                        };
                        vec![
                            cell(n.notice.owner.display()),
                            num(n.notice.lines.len() as u64),
                            cell(via(d.via)),
                            cell(&d.destination),
                            status,
                            cell(id.or(error).unwrap_or("")),
                        ]
                    })
                })
                .collect();
            write_table(
                out,
                style,
                &[
                    "owner",
                    "instances",
                    "via",
                    "destination",
                    "status",
                    "detail",
                ],
                &rows,
            )
        }
    }
}

fn via(v: Via) -> &'static str {
    match v {
        Via::File => "file",
        Via::Sns => "sns",
        Via::Ses => "ses",
    }
}
