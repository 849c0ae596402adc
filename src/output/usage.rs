//! Usage views of a stored scan: per instance (who still calls IMDSv1, with
//! a daily sparkline), and the fleet's daily totals (the before/after
//! picture of an enforcement).

use std::io::Write;

use serde::Serialize;

use crate::clock::day_label;
use crate::output::json::{InstanceV1, SCHEMA};
use crate::output::table::{Cell, cell, num, painted, write_table};
use crate::output::{Format, Paint, Style};
use crate::report::{FleetDay, InstanceRecord, ScanReport};
use crate::store::trails::CallerMap;

/// Instances with usage, most v1 calls first.
pub fn ranked(report: &ScanReport) -> Vec<&InstanceRecord> {
    let mut v: Vec<&InstanceRecord> = report
        .instances
        .iter()
        .filter(|r| r.usage.is_some())
        .collect();
    v.sort_by(|a, b| {
        let (ua, ub) = (
            a.usage.as_ref().expect("filtered"),
            b.usage.as_ref().expect("filtered"),
        );
        ub.v1_calls
            .cmp(&ua.v1_calls)
            .then(ub.rejected_calls.cmp(&ua.rejected_calls))
            .then(a.instance.instance_id.cmp(&b.instance.instance_id))
    });
    v
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A terminal sparkline over `days`: blank for no data, `▁` for zero,
/// taller bars for more calls.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(x) if *x <= 0.0 || max <= 0.0 => BARS[0],
            Some(x) => BARS[(1.0 + (x / max) * 6.999).floor() as usize],
        })
        .collect()
}

#[derive(Serialize)]
struct UsageDoc<'a> {
    schema: &'static str,
    kind: &'static str,
    scan_id: Option<i64>,
    window_days: Option<u32>,
    days: Vec<String>,
    instances: Vec<UsageInstance<'a>>,
}

#[derive(Serialize)]
struct UsageInstance<'a> {
    #[serde(flatten)]
    instance: InstanceV1<'a>,
    /// From the latest `imdsguard trail`: the software that used
    /// credentials delivered over IMDSv1, each with what to do; absent
    /// when no trail was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    v1_callers: Option<String>,
    /// `v1_calls` per day of the window, `null` for days without data.
    daily_v1_calls: Vec<Option<f64>>,
    daily_rejected_calls: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct FleetDoc<'a> {
    schema: &'static str,
    kind: &'static str,
    scan_id: Option<i64>,
    window_days: Option<u32>,
    days: &'a [FleetDay],
}

/// What the latest trail read says about `r`'s IMDSv1 use: its callers, or
/// that its v1 calls are not credential fetches.
pub fn callers_of(callers: Option<&CallerMap>, r: &InstanceRecord) -> Option<String> {
    let map = callers?;
    let key = (
        r.account_id.clone(),
        r.region.clone(),
        r.instance.instance_id.clone(),
    );
    Some(match map.get(&key) {
        Some(c) if !c.agents.is_empty() => c.agents.join("; "),
        _ if r.usage.as_ref().is_some_and(|u| u.v1_calls > 0) => {
            "IMDSv1 use is not credential fetches (metadata reads)".to_owned()
        }
        _ => String::new(),
    })
}

fn series(rec: &InstanceRecord, days: &[i32], rejected: bool) -> Vec<Option<f64>> {
    days.iter()
        .map(|d| {
            // `daily` is sorted by day.
            rec.daily.binary_search_by_key(d, |p| p.day).ok().map(|i| {
                if rejected {
                    rec.daily[i].rejected_calls
                } else {
                    rec.daily[i].v1_calls
                }
            })
        })
        .collect()
}

pub fn render_instances(
    report: &ScanReport,
    days: &[i32],
    callers: Option<&CallerMap>,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let ranked = ranked(report);
    match format {
        Format::Json => {
            let doc = UsageDoc {
                schema: SCHEMA,
                kind: "usage",
                scan_id: report.id,
                window_days: report.usage_days,
                days: days.iter().map(|d| day_label(*d)).collect(),
                instances: ranked
                    .iter()
                    .map(|r| UsageInstance {
                        instance: InstanceV1::new(r),
                        v1_callers: callers_of(callers, r),
                        daily_v1_calls: series(r, days, false),
                        daily_rejected_calls: series(r, days, true),
                    })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            let mut header = vec![
                "account_id",
                "region",
                "instance_id",
                "name",
                "http_tokens",
                "v1_calls",
                "last_v1_call",
                "days_with_data",
                "rejected_calls",
                "readiness",
            ];
            if callers.is_some() {
                header.push("v1_callers");
            }
            let labels: Vec<String> = days.iter().map(|d| day_label(*d)).collect();
            header.extend(labels.iter().map(String::as_str));
            w.write_record(&header)?;
            for r in ranked {
                let u = r.usage.as_ref().expect("ranked has usage");
                let mut row = vec![
                    r.account_id.clone(),
                    r.region.clone(),
                    r.instance.instance_id.clone(),
                    r.instance.name().unwrap_or("").to_owned(),
                    r.instance
                        .metadata
                        .http_tokens
                        .map(|t| t.as_str())
                        .unwrap_or("")
                        .to_owned(),
                    u.v1_calls.to_string(),
                    u.last_v1_call.clone().unwrap_or_default(),
                    u.days_with_data.to_string(),
                    u.rejected_calls.to_string(),
                    r.readiness.as_str().to_owned(),
                ];
                if let Some(c) = callers_of(callers, r) {
                    row.push(crate::output::sanitize::csv_cell(&c).into_owned());
                }
                row.extend(
                    series(r, days, false)
                        .into_iter()
                        .map(|v| v.map(|x| x.to_string()).unwrap_or_default()),
                );
                w.write_record(&row)?;
            }
            w.flush()
        }
        Format::Table => {
            if ranked.is_empty() {
                return writeln!(
                    out,
                    "No usage in this scan (it ran with --no-usage, or matched no instance)."
                );
            }
            writeln!(
                out,
                "{}",
                style.paint(
                    &format!(
                        "IMDSv1 use over {} days (scan {}), most calls first:",
                        report.usage_days.unwrap_or(0),
                        report.id.unwrap_or(0)
                    ),
                    Paint::Bold
                )
            )?;
            let rows: Vec<Vec<Cell>> = ranked
                .iter()
                .map(|r| {
                    let u = r.usage.as_ref().expect("ranked has usage");
                    let mut calls = num(u.v1_calls);
                    if u.v1_calls > 0 {
                        calls.paint = Some(Paint::Red);
                    }
                    let mut row = vec![
                        cell(&r.account_id),
                        cell(&r.region),
                        cell(&r.instance.instance_id),
                        cell(r.instance.name().unwrap_or("-")),
                        cell(
                            r.instance
                                .metadata
                                .http_tokens
                                .map(|t| t.as_str())
                                .unwrap_or("?"),
                        ),
                        calls,
                        cell(u.last_v1_call.as_deref().unwrap_or("-")),
                        Cell {
                            text: format!("{}/{}", u.days_with_data, u.window_days),
                            paint: None,
                            right: true,
                        },
                        num(u.rejected_calls),
                        cell(r.readiness.as_str()),
                        cell(sparkline(&series(r, days, false))),
                    ];
                    if let Some(c) = callers_of(callers, r) {
                        row.push(cell(if c.is_empty() { "-" } else { &c }));
                    }
                    row
                })
                .collect();
            let mut header = vec![
                "ACCOUNT",
                "REGION",
                "INSTANCE",
                "NAME",
                "TOKENS",
                "V1 CALLS",
                "LAST V1",
                "DATA",
                "REJECTED",
                "READINESS",
                "DAILY V1",
            ];
            if callers.is_some() {
                header.push("V1 CALLERS (CLOUDTRAIL)");
            }
            write_table(out, style, &header, &rows)
        }
    }
}

pub fn render_fleet(
    report: &ScanReport,
    fleet: &[FleetDay],
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let doc = FleetDoc {
                schema: SCHEMA,
                kind: "fleet-usage",
                scan_id: report.id,
                window_days: report.usage_days,
                days: fleet,
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record(["day", "v1_calls", "rejected_calls", "instances_with_data"])?;
            for d in fleet {
                w.write_record([
                    d.day.clone(),
                    d.v1_calls.to_string(),
                    d.rejected_calls.to_string(),
                    d.instances_with_data.to_string(),
                ])?;
            }
            w.flush()
        }
        Format::Table => {
            let max = fleet
                .iter()
                .map(|d| d.v1_calls.max(d.rejected_calls))
                .max()
                .unwrap_or(0);
            let bar = |n: u64| {
                let width = if max == 0 {
                    0
                } else {
                    (n * 40).div_ceil(max) as usize
                };
                "█".repeat(width)
            };
            let rows: Vec<Vec<Cell>> = fleet
                .iter()
                .map(|d| {
                    vec![
                        cell(&d.day),
                        num(d.v1_calls),
                        num(d.rejected_calls),
                        num(d.instances_with_data),
                        painted(bar(d.v1_calls), Paint::Red),
                    ]
                })
                .collect();
            writeln!(
                out,
                "{}",
                style.paint(
                    &format!(
                        "Fleet IMDSv1 calls per day (scan {}):",
                        report.id.unwrap_or(0)
                    ),
                    Paint::Bold
                )
            )?;
            write_table(
                out,
                style,
                &["DAY", "V1 CALLS", "REJECTED", "INSTANCES", "V1 CALLS"],
                &rows,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_levels() {
        assert_eq!(sparkline(&[None, Some(0.0), Some(1.0), Some(10.0)]), " ▁▂█");
        assert_eq!(sparkline(&[Some(0.0), Some(0.0)]), "▁▁");
        assert_eq!(sparkline(&[]), "");
    }
}
