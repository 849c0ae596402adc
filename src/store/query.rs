//! Reading the database with SQL: `query` (one read-only statement of the
//! user's) and `history` (enforcement per stored scan). The connection
//! stays in the store; callers get typed results.

use rusqlite::types::ValueRef;
use serde::Serialize;

use super::{Store, StoreError};

/// One SQLite value, as SQLite typed it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    /// Blobs are shown as lowercase hex.
    Blob(String),
}

impl Serialize for SqlValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SqlValue::Null => s.serialize_none(),
            SqlValue::Integer(v) => s.serialize_i64(*v),
            // JSON has no NaN or infinity: those become null.
            SqlValue::Real(v) if v.is_finite() => s.serialize_f64(*v),
            SqlValue::Real(_) => s.serialize_none(),
            SqlValue::Text(t) | SqlValue::Blob(t) => s.serialize_str(t),
        }
    }
}

/// The result of a user's SELECT: column names and rows of values.
#[derive(Debug, Clone, Default)]
pub struct QueryRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// Why a statement was not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query only reads: this statement would change the database")]
    Writes,
    #[error("query reads only this database: ATTACH and DETACH are refused")]
    Attach,
    #[error("SQL error: {0}")]
    Sql(String),
}

/// One stored scan's totals, for `history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    pub scan: i64,
    pub finished_at: String,
    pub accounts: i64,
    pub regions: i64,
    pub instances: i64,
    pub required: i64,
    pub optional: i64,
    pub disabled: i64,
    pub percent_enforced: Option<f64>,
    pub percent_protected: Option<f64>,
    pub usage_days: Option<i64>,
    /// IMDSv1 calls over the scan's usage window, all instances; `None`
    /// when the scan did not measure usage.
    pub v1_calls: Option<i64>,
    pub complete: bool,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Store {
    /// Runs one read-only statement (the database is opened read-only with
    /// `query_only`, and no database can be attached).
    pub fn query(&self, sql: &str) -> Result<QueryRows, QueryError> {
        let bad = |e: rusqlite::Error| {
            let text = one_line(&e.to_string());
            if text.contains("attached databases") {
                QueryError::Attach
            } else {
                QueryError::Sql(text)
            }
        };
        let mut stmt = self.conn.prepare(sql).map_err(bad)?;
        if !stmt.readonly() {
            return Err(QueryError::Writes);
        }
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let n = columns.len();
        let mut rows = Vec::new();
        let mut cursor = stmt.query([]).map_err(bad)?;
        while let Some(row) = cursor.next().map_err(bad)? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match row.get_ref(i).map_err(bad)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(v) => SqlValue::Integer(v),
                    ValueRef::Real(v) => SqlValue::Real(v),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => {
                        SqlValue::Blob(b.iter().map(|x| format!("{x:02x}")).collect())
                    }
                });
            }
            rows.push(values);
        }
        Ok(QueryRows { columns, rows })
    }

    /// Enforcement per stored scan, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT s.id, s.finished_at,
                    COUNT(DISTINCT r.account_id), COUNT(r.region),
                    COALESCE(SUM(r.instances), 0), COALESCE(SUM(r.required), 0),
                    COALESCE(SUM(r.optional), 0), COALESCE(SUM(r.disabled), 0),
                    CASE WHEN SUM(r.instances) > 0
                         THEN ROUND(100.0 * SUM(r.required) / SUM(r.instances), 1) END,
                    CASE WHEN SUM(r.instances) > 0
                         THEN ROUND(100.0 * (SUM(r.required) + SUM(r.disabled)) / SUM(r.instances), 1) END,
                    s.usage_days,
                    CASE WHEN s.usage_days IS NOT NULL
                         THEN (SELECT COALESCE(SUM(u.v1_calls), 0) FROM usage u WHERE u.scan_id = s.id) END,
                    s.complete
             FROM scans s LEFT JOIN scan_regions r ON r.scan_id = s.id
             GROUP BY s.id ORDER BY s.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(HistoryRow {
                scan: r.get(0)?,
                finished_at: r.get(1)?,
                accounts: r.get(2)?,
                regions: r.get(3)?,
                instances: r.get(4)?,
                required: r.get(5)?,
                optional: r.get(6)?,
                disabled: r.get(7)?,
                percent_enforced: r.get(8)?,
                percent_protected: r.get(9)?,
                usage_days: r.get(10)?,
                v1_calls: r.get(11)?,
                complete: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
