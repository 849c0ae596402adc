//! Renderers: each takes a finished [`ScanReport`] (plain data) and writes
//! one format. They never call AWS or the database.

pub mod csv;
pub mod html;
pub mod json;
pub mod plan;
pub mod rows;
pub mod run;
pub mod sanitize;
pub mod sarif;
pub mod table;
pub mod usage;

use std::io::Write;

use crate::report::ScanReport;

/// Output formats for `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// Findings only, as SARIF 2.1.0 (`scan`, `show instances`, `report`).
    Sarif,
    /// A self-contained HTML page (`report`).
    Html,
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

pub fn render(
    report: &ScanReport,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Table => table::render(report, style, out),
        Format::Json => json::render(report, out),
        Format::Csv => csv::render(report, out),
        Format::Sarif => sarif::render(&crate::findings::run(report), out),
        // `main` allows --format html for `report` only, which renders it itself.
        Format::Html => json::render(report, out),
    }
}

/// Formats a percentage the way tables show it.
pub fn percent_text(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into())
}
