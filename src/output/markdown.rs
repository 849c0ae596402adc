//! GitHub-flavoured Markdown, for pull requests, tickets and owner notices:
//! the HTML report's content as headings, paragraphs and tables, and any
//! typed rows as one table.
//!
//! Every string from AWS goes through [`text`] (see `crate::markdown`).

use std::fmt::Write as _;
use std::io::Write;

pub use crate::markdown::{table, text};

use crate::ops::views::ReportData;
use crate::output::percent_text;
use crate::readiness::Readiness;
use crate::report::RegionSummary;

/// Rows of the instance table; the rest are counted, not listed (as in HTML).
const MAX_ROWS: usize = 500;

fn summary_row(label: String, s: &RegionSummary) -> Vec<String> {
    vec![
        label,
        s.instances.to_string(),
        percent_text(s.percent_enforced()),
        percent_text(s.percent_protected()),
        s.optional.to_string(),
        s.count(Readiness::InUse).to_string(),
        s.count(Readiness::Ready).to_string(),
        if s.complete { "yes" } else { "**no**" }.to_owned(),
    ]
}

/// The report: what the HTML page shows, as Markdown.
pub fn render_report(data: &ReportData, out: &mut dyn Write) -> std::io::Result<()> {
    let report = &data.usage.report;
    let total = report.total();
    let mut m = String::new();
    let _ = writeln!(m, "# imdsguard report: scan {}\n", report.id.unwrap_or(0));
    let _ = writeln!(
        m,
        "{} · {} account(s) · {} region(s){}\n",
        report.finished_at.clone(),
        data.accounts.len(),
        report.regions.len(),
        report
            .usage_days
            .map(|d| format!(" · IMDSv1 use over {d} days"))
            .unwrap_or_default()
    );
    table(
        &mut m,
        &[
            "instances",
            "IMDSv2 enforced",
            "protected",
            "allow IMDSv1",
            "ready to enforce",
            "still use IMDSv1",
        ],
        &[true; 6],
        &[vec![
            total.instances.to_string(),
            percent_text(total.percent_enforced()),
            percent_text(total.percent_protected()),
            total.optional.to_string(),
            total.count(Readiness::Ready).to_string(),
            total.count(Readiness::InUse).to_string(),
        ]],
    );
    if !report.failures.is_empty() {
        let _ = writeln!(
            m,
            "> **Incomplete:** {} account/region(s) failed; their figures are missing.\n",
            report.failures.len()
        );
    }

    if data.accounts.len() > 1 {
        m.push_str("## By account\n\n");
        let rows: Vec<Vec<String>> = data
            .accounts
            .iter()
            .map(|a| summary_row(text(&a.account_id), a))
            .collect();
        table(
            &mut m,
            &[
                "account",
                "instances",
                "% enforced",
                "% protected",
                "allow v1",
                "in use",
                "ready",
                "complete",
            ],
            &[false, true, true, true, true, true, true, false],
            &rows,
        );
    }

    if data.trend.len() > 1 {
        m.push_str("## Trend over stored scans\n\n");
        let rows: Vec<Vec<String>> = data
            .trend
            .iter()
            .map(|s| {
                vec![
                    s.scan.to_string(),
                    s.finished_at.clone(),
                    s.instances.to_string(),
                    percent_text(s.percent_enforced),
                    percent_text(s.percent_protected),
                    s.optional.to_string(),
                    s.v1_calls.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                ]
            })
            .collect();
        table(
            &mut m,
            &[
                "scan",
                "finished",
                "instances",
                "% enforced",
                "% protected",
                "allow v1",
                "v1 calls",
            ],
            &[false, false, true, true, true, true, true],
            &rows,
        );
    }

    m.push_str("## Enforcement by region\n\n");
    let rows: Vec<Vec<String>> = report
        .regions
        .iter()
        .map(|r| {
            vec![
                text(&r.account_id),
                text(&r.region),
                r.instances.to_string(),
                r.required.to_string(),
                r.disabled.to_string(),
                r.optional.to_string(),
                percent_text(r.percent_enforced()),
            ]
        })
        .collect();
    table(
        &mut m,
        &[
            "account",
            "region",
            "instances",
            "required",
            "disabled",
            "optional",
            "% enforced",
        ],
        &[false, false, true, true, true, true, true],
        &rows,
    );

    m.push_str("## Readiness\n\n");
    let rows: Vec<Vec<String>> = Readiness::ALL
        .iter()
        .zip(total.verdicts)
        .map(|(r, n)| vec![r.as_str().to_owned(), n.to_string()])
        .collect();
    table(&mut m, &["verdict", "instances"], &[false, true], &rows);

    if report.usage_days.is_some() && !data.usage.fleet.is_empty() {
        m.push_str("## IMDSv1 calls per day (whole fleet)\n\n");
        let rows: Vec<Vec<String>> = data
            .usage
            .fleet
            .iter()
            .map(|d| {
                vec![
                    d.day.clone(),
                    d.v1_calls.to_string(),
                    d.rejected_calls.to_string(),
                    d.instances_with_data.to_string(),
                ]
            })
            .collect();
        table(
            &mut m,
            &["day", "v1 calls", "refused", "instances with data"],
            &[false, true, true, true],
            &rows,
        );
    }

    if !data.effects.is_empty() {
        m.push_str("## Effect of changes\n\n");
        let rows: Vec<Vec<String>> = data
            .effects
            .iter()
            .map(|(subject, at, e)| {
                vec![
                    text(subject),
                    at.clone(),
                    e.instances.len().to_string(),
                    e.v1_calls_before.to_string(),
                    e.v1_calls_after.to_string(),
                    e.rejected_calls_after.to_string(),
                ]
            })
            .collect();
        table(
            &mut m,
            &[
                "changes of",
                "measured",
                "instances",
                "v1 calls before",
                "v1 calls after",
                "refused after",
            ],
            &[false, false, true, true, true, true],
            &rows,
        );
    }

    m.push_str("## Owners of instances that allow IMDSv1\n\n");
    if data.owners.is_empty() {
        m.push_str("No instance allows IMDSv1.\n\n");
    } else {
        let rows: Vec<Vec<String>> = data
            .owners
            .iter()
            .map(|r| {
                let t = &r.tally;
                vec![
                    r.owner
                        .as_deref()
                        .map_or_else(|| NO_OWNER_MD.to_owned(), text),
                    t.allowing_v1.to_string(),
                    t.in_use.to_string(),
                    t.ready.to_string(),
                    t.unknown.to_string(),
                    t.v1_calls.to_string(),
                    text(&r.roles),
                ]
            })
            .collect();
        table(
            &mut m,
            &[
                "owner", "allow v1", "in use", "ready", "unknown", "v1 calls", "roles",
            ],
            &[false, true, true, true, true, true, false],
            &rows,
        );
    }

    m.push_str("## Findings\n\n");
    if data.findings.is_empty() {
        m.push_str("None.\n\n");
    } else {
        let mut by_rule: std::collections::BTreeMap<(&str, &str, &str), usize> = Default::default();
        for f in &data.findings {
            *by_rule
                .entry((f.rule, f.title, f.severity.as_str()))
                .or_default() += 1;
        }
        let rows: Vec<Vec<String>> = by_rule
            .into_iter()
            .map(|((rule, title, sev), n)| {
                vec![
                    format!("`{rule}`"),
                    text(title),
                    sev.to_owned(),
                    n.to_string(),
                ]
            })
            .collect();
        table(
            &mut m,
            &["rule", "title", "severity", "resources"],
            &[false, false, false, true],
            &rows,
        );
    }

    let lines = report.sources.lines();
    let _ = writeln!(m, "## Sources of new IMDSv1 instances ({})\n", lines.len());
    if lines.is_empty() {
        let _ = writeln!(m, "{}\n", text(report.sources.none_note()));
    } else {
        let _ = writeln!(m, "{}\n", text(crate::sources::PRECEDENCE_NOTE));
        let rows: Vec<Vec<String>> = lines
            .into_iter()
            .map(|l| {
                vec![
                    l.kind.to_owned(),
                    text(&l.account_id),
                    text(&l.region),
                    text(&l.resource),
                    l.decided_by.to_owned(),
                    text(&l.detail),
                ]
            })
            .collect();
        table(
            &mut m,
            &[
                "kind",
                "account",
                "region",
                "resource",
                "decided by",
                "next launch",
            ],
            &[false; 6],
            &rows,
        );
    }

    let v1: Vec<_> = report.allowing_v1().collect();
    let _ = writeln!(m, "## Instances that allow IMDSv1 ({})\n", v1.len());
    if !v1.is_empty() {
        let rows: Vec<Vec<String>> = v1
            .iter()
            .take(MAX_ROWS)
            .map(|r| {
                vec![
                    text(&r.account_id),
                    text(&r.region),
                    text(&r.instance.instance_id),
                    text(r.instance.name().unwrap_or("")),
                    text(r.role_name.as_deref().unwrap_or("")),
                    r.owner
                        .as_deref()
                        .map_or_else(|| NO_OWNER_MD.to_owned(), text),
                    r.readiness.as_str().to_owned(),
                    crate::markdown::words(&r.reason),
                ]
            })
            .collect();
        table(
            &mut m,
            &[
                "account",
                "region",
                "instance",
                "name",
                "role",
                "owner",
                "readiness",
                "reason",
            ],
            &[],
            &rows,
        );
        if v1.len() > MAX_ROWS {
            let _ = writeln!(
                m,
                "{} more not listed: `imdsguard show instances --format csv` has them all.\n",
                v1.len() - MAX_ROWS
            );
        }
    }
    let _ = writeln!(m, "_Generated by imdsguard {}._", env!("CARGO_PKG_VERSION"));
    out.write_all(m.as_bytes())
}

/// How Markdown shows an instance without an owner tag.
pub const NO_OWNER_MD: &str = "_\\(no owner tag\\)_";
