//! Rows as a table, JSON or CSV: typed row structs (`history`, `show
//! owners`, `show roles`, `templates show`, `defaults show`) through the
//! [`Row`] trait, and the dynamic rows of a user's `query`.
//!
//! JSON is `{schema, kind, columns, rows}` with one object per row, keyed by
//! column; CSV has the columns as its header; tables right-align numbers.

use std::borrow::Cow;
use std::io::Write;

use serde::Serialize;

use crate::groups::{OwnerRow, RoleRow, Tally};
use crate::model::{HttpTokens, Toggle};
use crate::ops::inventory::{DefaultsRow, GroupRow, TemplateRow};
use crate::output::json::SCHEMA;
use crate::output::markdown;
use crate::output::table::{Cell, cell, write_table};
use crate::output::{RowsFormat, Style};
use crate::store::query::{HistoryRow, QueryRows, SqlValue};

/// One value of a row, as tables and CSV show it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    /// Nothing, which people should see named (an instance without an
    /// owner tag): the label in tables and Markdown, empty in CSV.
    Absent(&'static str),
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Value<'_> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Null | Value::Absent(_) => Cow::Borrowed(""),
            Value::Text(t) => Cow::Borrowed(t),
            Value::Int(v) => Cow::Owned(v.to_string()),
            Value::Float(v) => Cow::Owned(v.to_string()),
            Value::Bool(v) => Cow::Borrowed(if *v { "true" } else { "false" }),
        }
    }

    /// How a person sees it: a table cell.
    fn shown(&self) -> Cow<'_, str> {
        match self {
            Value::Absent(label) => Cow::Borrowed(label),
            v => v.text(),
        }
    }

    fn cell(&self) -> Cell {
        let text = self.shown().into_owned();
        match self {
            Value::Int(_) | Value::Float(_) => Cell {
                text,
                paint: None,
                right: true,
            },
            _ => cell(text),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Text(Cow::Borrowed(s))
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<i32> for Value<'_> {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A typed row: its columns in order (the same names, in the same order, as
/// the keys its `Serialize` writes) and each column's value.
pub trait Row: Serialize {
    const COLUMNS: &'static [&'static str];
    fn values(&self) -> Vec<Value<'_>>;
}

/// Renders typed rows.
pub fn render<R: Row>(
    kind: &str,
    rows: &[R],
    format: RowsFormat,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let values: Vec<Vec<Value>> = rows.iter().map(Row::values).collect();
    write_rows(kind, R::COLUMNS, &values, rows, format, style, out)
}

/// Renders the rows of a user's `query`.
pub fn render_query(
    rows: &QueryRows,
    format: RowsFormat,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let columns: Vec<&str> = rows.columns.iter().map(String::as_str).collect();
    let values: Vec<Vec<Value>> = rows
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    SqlValue::Null => Value::Null,
                    SqlValue::Integer(i) => Value::Int(*i),
                    SqlValue::Real(f) => Value::Float(*f),
                    SqlValue::Text(t) | SqlValue::Blob(t) => Value::from(t),
                })
                .collect()
        })
        .collect();
    // JSON: one object per row, keyed by column, in column order.
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .rows
        .iter()
        .map(|r| {
            rows.columns
                .iter()
                .cloned()
                .zip(
                    r.iter()
                        .map(|v| serde_json::to_value(v).expect("SQL values serialize")),
                )
                .collect()
        })
        .collect();
    write_rows("query", &columns, &values, &objects, format, style, out)
}

/// Writes rows; JSON serializes `json_rows` as they are (one object per row).
fn write_rows<J: Serialize + ?Sized>(
    kind: &str,
    columns: &[&str],
    values: &[Vec<Value>],
    json_rows: &J,
    format: RowsFormat,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        RowsFormat::Markdown => {
            if values.is_empty() {
                return writeln!(out, "_No rows._");
            }
            let right: Vec<bool> = values[0]
                .iter()
                .map(|v| matches!(v, Value::Int(_) | Value::Float(_)))
                .collect();
            let cells: Vec<Vec<String>> = values
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| match v {
                            Value::Absent(label) => format!("_{}_", markdown::text(label)),
                            v => markdown::text(&v.text()),
                        })
                        .collect()
                })
                .collect();
            let mut m = String::new();
            markdown::table(&mut m, columns, &right, &cells);
            out.write_all(m.trim_end().as_bytes())?;
            writeln!(out)
        }
        RowsFormat::Table => {
            if values.is_empty() {
                return writeln!(out, "(no rows)");
            }
            let cells: Vec<Vec<Cell>> = values
                .iter()
                .map(|r| r.iter().map(Value::cell).collect())
                .collect();
            write_table(out, style, columns, &cells)?;
            writeln!(
                out,
                "({} row{})",
                values.len(),
                if values.len() == 1 { "" } else { "s" }
            )
        }
        RowsFormat::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record(columns)?;
            for r in values {
                w.write_record(r.iter().map(Value::text))?;
            }
            w.flush()
        }
        RowsFormat::Json => {
            #[derive(Serialize)]
            struct Doc<'a, J: ?Sized> {
                schema: &'static str,
                kind: &'a str,
                columns: &'a [&'a str],
                rows: &'a J,
            }
            serde_json::to_writer_pretty(
                &mut *out,
                &Doc {
                    schema: SCHEMA,
                    kind,
                    columns,
                    rows: json_rows,
                },
            )?;
            writeln!(out)
        }
    }
}

impl From<HttpTokens> for Value<'_> {
    fn from(v: HttpTokens) -> Self {
        Value::Text(Cow::Borrowed(v.as_str()))
    }
}

impl From<Toggle> for Value<'_> {
    fn from(v: Toggle) -> Self {
        Value::Text(Cow::Borrowed(v.as_str()))
    }
}

fn tally(t: &Tally) -> [Value<'static>; 5] {
    [
        t.allowing_v1.into(),
        t.in_use.into(),
        t.ready.into(),
        t.unknown.into(),
        t.v1_calls.into(),
    ]
}

/// How tables name the owner of instances without an owner tag.
pub const NO_OWNER: &str = "(no owner tag)";

const TALLY: [&str; 5] = ["allowing_v1", "in_use", "ready", "unknown", "v1_calls"];

impl Row for OwnerRow {
    const COLUMNS: &'static [&'static str] = &[
        "owner", TALLY[0], TALLY[1], TALLY[2], TALLY[3], TALLY[4], "roles",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        let mut v = vec![
            self.owner
                .as_ref()
                .map_or(Value::Absent(NO_OWNER), Value::from),
        ];
        v.extend(tally(&self.tally));
        v.push((&self.roles).into());
        v
    }
}

impl Row for RoleRow {
    const COLUMNS: &'static [&'static str] = &[
        "role_name",
        "account_id",
        TALLY[0],
        TALLY[1],
        TALLY[2],
        TALLY[3],
        TALLY[4],
        "owners",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        let mut v = vec![(&self.role_name).into(), (&self.account_id).into()];
        v.extend(tally(&self.tally));
        v.push((&self.owners).into());
        v
    }
}

impl Row for HistoryRow {
    const COLUMNS: &'static [&'static str] = &[
        "scan",
        "finished_at",
        "accounts",
        "regions",
        "instances",
        "required",
        "optional",
        "disabled",
        "percent_enforced",
        "percent_protected",
        "usage_days",
        "v1_calls",
        "complete",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            self.scan.into(),
            (&self.finished_at).into(),
            self.accounts.into(),
            self.regions.into(),
            self.instances.into(),
            self.required.into(),
            self.optional.into(),
            self.disabled.into(),
            self.percent_enforced.into(),
            self.percent_protected.into(),
            self.usage_days.into(),
            self.v1_calls.into(),
            self.complete.into(),
        ]
    }
}

impl Row for DefaultsRow {
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "region",
        "http_tokens",
        "http_tokens_enforced",
        "hop_limit",
        "http_endpoint",
        "instance_metadata_tags",
        "managed_by",
        "allows_v1_by_default",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            (&self.account_id).into(),
            (&self.region).into(),
            self.defaults.http_tokens.into(),
            self.defaults.http_tokens_enforced.into(),
            self.defaults.hop_limit.into(),
            self.defaults.http_endpoint.into(),
            self.defaults.instance_metadata_tags.into(),
            self.defaults
                .managed_by
                .map(|m| match m {
                    crate::aws::ManagedBy::Account => "account",
                    crate::aws::ManagedBy::DeclarativePolicy => "declarative-policy",
                })
                .into(),
            self.allows_v1_by_default.into(),
        ]
    }
}

impl Row for TemplateRow {
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "region",
        "template_id",
        "name",
        "default_version",
        "latest_version",
        "http_tokens",
        "http_endpoint",
        "hop_limit",
        "next_http_tokens",
        "decided_by",
        "allows_v1",
        "latest_allows_v1",
        "explanation",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            (&self.account_id).into(),
            (&self.region).into(),
            (&self.template_id).into(),
            self.name.as_ref().into(),
            self.default_version.into(),
            self.latest_version.into(),
            self.http_tokens.into(),
            self.http_endpoint.into(),
            self.hop_limit.into(),
            self.next_http_tokens.into(),
            self.decided_by.as_str().into(),
            self.allows_v1.into(),
            self.latest_allows_v1.into(),
            (&self.explanation).into(),
        ]
    }
}

impl Row for GroupRow {
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "region",
        "name",
        "launches_from",
        "next_http_tokens",
        "decided_by",
        "allows_v1",
        "instances",
        "instances_allowing_v1",
        "explanation",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            (&self.account_id).into(),
            (&self.region).into(),
            (&self.name).into(),
            (&self.launches_from).into(),
            self.next_http_tokens.into(),
            self.decided_by.map(|r| r.as_str()).into(),
            self.allows_v1.into(),
            self.instances.into(),
            self.instances_allowing_v1.into(),
            self.explanation.as_ref().into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row's JSON keys are its columns, in order: tables, CSV and JSON agree.
    fn keys_match<R: Row>(row: R) {
        let v = serde_json::to_value(&row).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, R::COLUMNS);
        assert_eq!(row.values().len(), R::COLUMNS.len());
    }

    #[test]
    fn every_row_type_keeps_its_columns_and_keys_in_step() {
        keys_match(OwnerRow {
            owner: None,
            tally: Tally::default(),
            roles: String::new(),
        });
        keys_match(RoleRow {
            role_name: "r".into(),
            account_id: "a".into(),
            tally: Tally::default(),
            owners: String::new(),
        });
        keys_match(HistoryRow {
            scan: 1,
            finished_at: "t".into(),
            accounts: 1,
            regions: 1,
            instances: 1,
            required: 1,
            optional: 0,
            disabled: 0,
            percent_enforced: Some(100.0),
            percent_protected: Some(100.0),
            usage_days: None,
            v1_calls: None,
            complete: true,
        });
        keys_match(DefaultsRow {
            account_id: "a".into(),
            region: "r".into(),
            defaults: Default::default(),
            allows_v1_by_default: true,
        });
        keys_match(TemplateRow {
            account_id: "a".into(),
            region: "r".into(),
            template_id: "lt-1".into(),
            name: None,
            default_version: 1,
            latest_version: 1,
            http_tokens: None,
            http_endpoint: None,
            hop_limit: None,
            next_http_tokens: HttpTokens::Optional,
            decided_by: crate::launch::Rung::Ec2Default,
            allows_v1: true,
            latest_allows_v1: true,
            explanation: "e".into(),
        });
        keys_match(GroupRow {
            account_id: "a".into(),
            region: "r".into(),
            name: "g".into(),
            launches_from: "lt-1 $Default".into(),
            next_http_tokens: None,
            decided_by: None,
            allows_v1: false,
            instances: 0,
            instances_allowing_v1: 0,
            explanation: None,
        });
    }
}
