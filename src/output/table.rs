//! Tables for people: the summary per account and region, the verdict
//! counts, then the instances that still allow IMDSv1 (the work to do).

use std::io::Write;

use crate::model::HttpTokens;
use crate::output::sanitize::terminal;
use crate::output::{Paint, Style, percent_text};
use crate::readiness::Readiness;
use crate::report::{RegionSummary, ScanReport};

/// A cell: its plain text (for width) and how to paint it.
pub struct Cell {
    pub text: String,
    pub paint: Option<Paint>,
    pub right: bool,
}

pub fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        paint: None,
        right: false,
    }
}

/// A left-aligned cell in a colour.
pub fn painted(text: impl Into<String>, paint: Paint) -> Cell {
    Cell {
        text: text.into(),
        paint: Some(paint),
        right: false,
    }
}

pub fn num(n: u64) -> Cell {
    Cell {
        text: n.to_string(),
        paint: None,
        right: true,
    }
}

/// Writes aligned columns. Every table goes through here, so this is where
/// AWS-provided text is made inert for the terminal (see [`terminal`]).
pub fn write_table(
    out: &mut dyn Write,
    style: Style,
    header: &[&str],
    rows: &[Vec<Cell>],
) -> std::io::Result<()> {
    let rows: Vec<Vec<Cell>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| Cell {
                    text: terminal(&c.text).into_owned(),
                    paint: c.paint,
                    right: c.right,
                })
                .collect()
        })
        .collect();
    let rows = &rows[..];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.text.chars().count());
        }
    }
    let line = |cells: Vec<(String, Option<Paint>, bool)>| -> String {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, (text, paint, right)) in cells.into_iter().enumerate() {
            let pad = widths[i].saturating_sub(text.chars().count());
            let painted = match paint {
                Some(p) => style.paint(&text, p),
                None => text,
            };
            if right {
                s.push_str(&" ".repeat(pad));
                s.push_str(&painted);
            } else {
                s.push_str(&painted);
                if i != last {
                    s.push_str(&" ".repeat(pad));
                }
            }
            if i != last {
                s.push_str("  ");
            }
        }
        s
    };
    let right_cols: Vec<bool> = (0..header.len())
        .map(|i| rows.first().and_then(|r| r.get(i)).is_some_and(|c| c.right))
        .collect();
    writeln!(
        out,
        "{}",
        line(
            header
                .iter()
                .zip(&right_cols)
                .map(|(h, r)| (h.to_string(), Some(Paint::Bold), *r))
                .collect()
        )
    )?;
    for row in rows {
        writeln!(
            out,
            "{}",
            line(
                row.iter()
                    .map(|c| (c.text.clone(), c.paint, c.right))
                    .collect()
            )
        )?;
    }
    Ok(())
}

fn summary_row(s: &RegionSummary, account: &str, region: &str) -> Vec<Cell> {
    let enforced = s.percent_enforced();
    let paint = match enforced {
        Some(p) if p >= 100.0 => Some(Paint::Green),
        Some(_) => Some(Paint::Yellow),
        None => None,
    };
    let mut row = vec![
        cell(account),
        cell(if s.complete {
            region.to_owned()
        } else {
            format!("{region} (failed)")
        }),
        num(s.instances),
        num(s.required),
        num(s.optional),
        num(s.disabled),
        Cell {
            text: percent_text(enforced),
            paint,
            right: true,
        },
        Cell {
            text: percent_text(s.percent_protected()),
            paint: None,
            right: true,
        },
    ];
    if s.optional > 0 && row[4].paint.is_none() {
        row[4].paint = Some(Paint::Red);
    }
    row
}

pub fn render(
    report: &ScanReport,
    findings: &[crate::findings::Finding],
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let total = report.total();
    let accounts: std::collections::BTreeSet<&str> = report
        .regions
        .iter()
        .map(|r| r.account_id.as_str())
        .collect();
    let scan = report
        .id
        .map(|id| format!("Scan {id}"))
        .unwrap_or_else(|| "Scan".into());
    writeln!(
        out,
        "{} · {} account(s) · {} region(s) · {}",
        style.paint(&scan, Paint::Bold),
        accounts.len(),
        report.regions.len(),
        report.finished_at
    )?;
    writeln!(out)?;

    let mut rows: Vec<Vec<Cell>> = report
        .regions
        .iter()
        .map(|s| summary_row(s, &s.account_id, &s.region))
        .collect();
    rows.push(summary_row(&total, "TOTAL", ""));
    write_table(
        out,
        style,
        &[
            "ACCOUNT",
            "REGION",
            "INSTANCES",
            "REQUIRED",
            "OPTIONAL",
            "DISABLED",
            "ENFORCED",
            "PROTECTED",
        ],
        &rows,
    )?;

    if total.instances > 0 {
        writeln!(out)?;
        let verdicts = Readiness::ALL
            .iter()
            .zip(total.verdicts)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{} {n}", r.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(out, "Readiness: {verdicts}")?;
        if report.usage_days.is_some() {
            writeln!(out)?;
            let mut rows: Vec<Vec<Cell>> = report
                .regions
                .iter()
                .map(|s| {
                    let mut row = vec![cell(&s.account_id), cell(&s.region)];
                    row.extend(s.verdicts.iter().map(|n| num(*n)));
                    row
                })
                .collect();
            let mut last = vec![cell("TOTAL"), cell("")];
            last.extend(total.verdicts.iter().map(|n| num(*n)));
            rows.push(last);
            for row in &mut rows {
                // in-use and rejecting-v1 need someone's attention.
                for idx in [1, 4] {
                    if row[idx + 2].text != "0" {
                        row[idx + 2].paint = Some(Paint::Red);
                    }
                }
            }
            let mut header = vec!["ACCOUNT", "REGION"];
            header.extend(Readiness::ALL.iter().map(|r| r.header()));
            write_table(out, style, &header, &rows)?;
        }
    }

    if !findings.is_empty() {
        let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
        for f in findings {
            *by_rule.entry(f.rule).or_default() += 1;
        }
        let high = findings
            .iter()
            .filter(|f| f.severity == crate::findings::Severity::High)
            .count();
        writeln!(out)?;
        writeln!(
            out,
            "Findings: {} ({} high): {} (details: --format json or sarif)",
            findings.len(),
            high,
            by_rule
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }

    let v1: Vec<_> = report.allowing_v1().collect();
    writeln!(out)?;
    if v1.is_empty() {
        if total.instances > 0 {
            writeln!(
                out,
                "{}",
                style.paint("No instance allows IMDSv1.", Paint::Green)
            )?;
        } else {
            writeln!(out, "No instances matched.")?;
        }
    } else {
        writeln!(
            out,
            "{}",
            style.paint(
                &format!("Instances allowing IMDSv1 ({}):", v1.len()),
                Paint::Bold
            )
        )?;
        let rows: Vec<Vec<Cell>> = v1
            .iter()
            .map(|r| {
                let i = &r.instance;
                vec![
                    cell(&r.account_id),
                    cell(&r.region),
                    cell(&i.instance_id),
                    cell(i.name().unwrap_or("-")),
                    cell(i.state.as_str()),
                    painted(
                        i.metadata
                            .http_tokens
                            .map(HttpTokens::as_str)
                            .unwrap_or("?")
                            .to_owned(),
                        Paint::Red,
                    ),
                    Cell {
                        text: i
                            .metadata
                            .hop_limit
                            .map(|h| h.to_string())
                            .unwrap_or_else(|| "-".into()),
                        paint: None,
                        right: true,
                    },
                    cell(r.role_name.as_deref().unwrap_or("-")),
                    cell(r.owner.as_deref().unwrap_or("-")),
                    cell(if r.container_host { "yes" } else { "-" }),
                    cell(r.readiness.as_str()),
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
                "STATE",
                "TOKENS",
                "HOP",
                "ROLE",
                "OWNER",
                "CONTAINERS",
                "READINESS",
            ],
            &rows,
        )?;
    }
    Ok(())
}
