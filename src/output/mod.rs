//! Renderers: each takes finished, typed data (a scan, a plan, a run, rows)
//! and writes one format. They never call AWS, the database or the engine;
//! what they show was computed before them (findings included).

pub mod csv;
pub mod effect;
pub mod fix;
pub mod html;
pub mod json;
pub mod markdown;
pub mod notify;
pub mod plan;
pub mod rollout;
pub mod rows;
pub mod run;
pub mod sanitize;
pub mod sarif;
pub mod table;
#[cfg(test)]
mod tests;
pub mod trail;
pub mod usage;

use std::io::Write;

use crate::findings::Finding;
use crate::report::ScanReport;

/// Formats of outputs that are tables, documents or rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Formats of typed rows (`show owners`, `show roles`, `history`, `query`,
/// `templates show`, `defaults show`): the table formats, plus Markdown
/// for pull requests and tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsFormat {
    Table,
    Json,
    Csv,
    Markdown,
}

/// `scan` and `show instances`: a scan, or its findings as SARIF 2.1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanFormat {
    Table,
    Json,
    Csv,
    Sarif,
}

/// `report`: a scan for people (a self-contained HTML page) or machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Markdown,
    Table,
    Json,
    Csv,
    Sarif,
}

/// ANSI styling, on or off as decided once at the edge (`--color`, `NO_COLOR`, TTY).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Paint {
    Bold,
    Green,
    Red,
    Yellow,
}

impl Style {
    pub fn paint(&self, text: &str, paint: Paint) -> String {
        if !self.color || text.is_empty() {
            return text.to_owned();
        }
        let code = match paint {
            Paint::Bold => "1",
            Paint::Green => "32",
            Paint::Red => "31",
            Paint::Yellow => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// A scan (and the findings computed from it) in any of its formats.
pub fn render(
    report: &ScanReport,
    findings: &[Finding],
    format: ScanFormat,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        ScanFormat::Table => table::render(report, findings, style, out),
        ScanFormat::Json => json::render(report, findings, out),
        ScanFormat::Csv => csv::render(report, out),
        ScanFormat::Sarif => sarif::render(findings, out),
    }
}

/// Formats a percentage the way tables show it.
pub fn percent_text(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into())
}
