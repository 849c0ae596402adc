//! Generic rows (column names + SQL values) as a table, JSON or CSV: the
//! output of `query` and `history`.

use std::io::Write;

use serde_json::{Map, Value};

use crate::output::json::SCHEMA;
use crate::output::table::{Cell, cell, write_table};
use crate::output::{Format, Style};

/// A result set: column names and rows of JSON values (SQLite's types map
/// onto JSON's: NULL, integer, real, text; blobs become hex strings).
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn render(
    kind: &str,
    rows: &Rows,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        // `main` refuses --format sarif and html where they do not apply.
        Format::Json | Format::Sarif | Format::Html => {
            let records: Vec<Value> = rows
                .rows
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    for (c, v) in rows.columns.iter().zip(r) {
                        m.insert(c.clone(), v.clone());
                    }
                    Value::Object(m)
                })
                .collect();
            let doc = serde_json::json!({
                "schema": SCHEMA,
                "kind": kind,
                "columns": rows.columns,
                "rows": records,
            });
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record(&rows.columns)?;
            for r in &rows.rows {
                w.write_record(r.iter().map(text))?;
            }
            w.flush()
        }
        Format::Table => {
            if rows.rows.is_empty() {
                return writeln!(out, "(no rows)");
            }
            let header: Vec<&str> = rows.columns.iter().map(String::as_str).collect();
            let cells: Vec<Vec<Cell>> = rows
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| match v {
                            Value::Number(_) => Cell {
                                text: text(v),
                                paint: None,
                                right: true,
                            },
                            _ => cell(text(v)),
                        })
                        .collect()
                })
                .collect();
            write_table(out, style, &header, &cells)?;
            writeln!(
                out,
                "({} row{})",
                rows.rows.len(),
                if rows.rows.len() == 1 { "" } else { "s" }
            )
        }
    }
}
