//! `imdsguard query "SQL"` and `imdsguard history`: read-only SQL over the
//! stored scans and runs. The database is opened read-only and with
//! `query_only`, so no statement can change it, and with no room for an
//! attached database, so no statement can read another file.

use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::cli::QueryArgs;
use crate::commands::emit;
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::output::{self, rows::Rows};
use crate::settings::Global;
use crate::store::Store;

const TABLES_HINT: &str = "tables: scans, scan_regions, scan_failures, instances, usage, usage_daily, runs, changes \
(e.g. SELECT region, COUNT(*) FROM instances WHERE http_tokens = 'optional' GROUP BY region)";

pub fn run(global: &Global, args: &QueryArgs) -> Result<ExitCode, Error> {
    let store = Store::open_read_only(&global.db)?;
    let rows = select(&store, &args.sql)?;
    emit(global.out.as_deref(), |w| {
        output::rows::render("query", &rows, global.format, global.stdout_style, w)
    })?;
    Ok(ExitCode::Success)
}

/// One scan per line: how enforcement moved over time.
pub fn history(global: &Global) -> Result<ExitCode, Error> {
    let store = Store::open_read_only(&global.db)?;
    let rows = select(
        &store,
        "SELECT s.id AS scan, s.finished_at,
                COUNT(DISTINCT r.account_id) AS accounts, COUNT(r.region) AS regions,
                COALESCE(SUM(r.instances), 0) AS instances, COALESCE(SUM(r.required), 0) AS required,
                COALESCE(SUM(r.optional), 0) AS optional, COALESCE(SUM(r.disabled), 0) AS disabled,
                CASE WHEN SUM(r.instances) > 0
                     THEN ROUND(100.0 * SUM(r.required) / SUM(r.instances), 1) END AS percent_enforced,
                CASE WHEN SUM(r.instances) > 0
                     THEN ROUND(100.0 * (SUM(r.required) + SUM(r.disabled)) / SUM(r.instances), 1) END
                     AS percent_protected,
                s.usage_days, s.complete
         FROM scans s LEFT JOIN scan_regions r ON r.scan_id = s.id
         GROUP BY s.id ORDER BY s.id",
    )?;
    emit(global.out.as_deref(), |w| {
        output::rows::render("history", &rows, global.format, global.stdout_style, w)
    })?;
    Ok(ExitCode::Success)
}

fn select(store: &Store, sql: &str) -> Result<Rows, Error> {
    let bad = |e: rusqlite::Error| {
        let text = one_line(&e.to_string());
        if text.contains("attached databases") {
            return Error::Usage {
                message: "query reads only this database: ATTACH and DETACH are refused".into(),
                hint: "query the imdsguard database itself (--db picks which one)".into(),
            };
        }
        Error::Usage {
            message: format!("SQL error: {text}"),
            hint: TABLES_HINT.into(),
        }
    };
    let mut stmt = store.conn.prepare(sql).map_err(bad)?;
    if !stmt.readonly() {
        return Err(Error::Usage {
            message: "query only reads: this statement would change the database".into(),
            hint: "use SELECT (or WITH ... SELECT)".into(),
        });
    }
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut cursor = stmt.query([]).map_err(bad)?;
    while let Some(row) = cursor.next().map_err(bad)? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(match row.get_ref(i).map_err(bad)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::from(v),
                ValueRef::Real(v) => {
                    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
                }
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
            });
        }
        rows.push(values);
    }
    Ok(Rows { columns, rows })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
