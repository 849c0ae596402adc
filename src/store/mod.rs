//! The local database: every scan, saved in SQLite so later commands
//! (`show`, `report`, `query`, `plan`) work from what was seen, offline.
//!
//! The schema is versioned with SQLite's `user_version`; [`MIGRATIONS`] is
//! append-only, and each migration runs once, in a transaction. A database
//! written by a newer imdsguard is refused rather than misread.

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::de::DeserializeOwned;

use crate::aws::AwsError;
use crate::model::{Instance, InstanceState, MetadataOptions};
use crate::readiness::{Readiness, Usage};
use crate::report::DayPoint;
use crate::report::{Failure, InstanceRecord, RegionSummary, ScanReport};

/// A stored lowercase enum value (`required`, `enabled`, ...) from column `i`;
/// NULL or an unknown value reads as `None`, as EC2 leaving it out would.
fn enum_column<T: DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = r.get(i)?;
    Ok(s.and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok()))
}

/// Append-only: never edit a migration that has shipped; add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: scans, per-region summaries and failures, instances.
    r#"
    CREATE TABLE scans (
        id            INTEGER PRIMARY KEY,
        started_at    TEXT NOT NULL,
        finished_at   TEXT NOT NULL,
        tool_version  TEXT NOT NULL,
        usage_days    INTEGER,
        complete      INTEGER NOT NULL,
        identities_json TEXT NOT NULL DEFAULT '[]',
        warnings_json TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE scan_regions (
        scan_id       INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id    TEXT NOT NULL,
        region        TEXT NOT NULL,
        instances     INTEGER NOT NULL,
        required      INTEGER NOT NULL,
        optional      INTEGER NOT NULL,
        disabled      INTEGER NOT NULL,
        complete      INTEGER NOT NULL,
        PRIMARY KEY (scan_id, account_id, region)
    );
    CREATE TABLE scan_failures (
        scan_id       INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id    TEXT,
        region        TEXT,
        operation     TEXT NOT NULL,
        error_code    TEXT,
        message       TEXT NOT NULL
    );
    CREATE TABLE instances (
        scan_id                INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id             TEXT NOT NULL,
        region                 TEXT NOT NULL,
        instance_id            TEXT NOT NULL,
        name                   TEXT,
        state                  TEXT NOT NULL,
        launch_time            TEXT,
        image_id               TEXT,
        http_tokens            TEXT,
        http_endpoint          TEXT,
        hop_limit              INTEGER,
        instance_metadata_tags TEXT,
        http_protocol_ipv6     TEXT,
        metadata_state         TEXT,
        instance_profile_arn   TEXT,
        role_name              TEXT,
        owner                  TEXT,
        tags_json              TEXT NOT NULL,
        asg_name               TEXT,
        cfn_stack              TEXT,
        launch_template        TEXT,
        container_host         INTEGER NOT NULL,
        container_reason       TEXT,
        readiness              TEXT NOT NULL,
        reason                 TEXT NOT NULL,
        PRIMARY KEY (scan_id, account_id, region, instance_id)
    );
    CREATE INDEX instances_by_instance ON instances(instance_id);
    -- Usage over the scan's window, for instances that were measured.
    CREATE TABLE usage (
        scan_id        INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id     TEXT NOT NULL,
        region         TEXT NOT NULL,
        instance_id    TEXT NOT NULL,
        window_days    INTEGER NOT NULL,
        v1_calls       INTEGER NOT NULL,
        last_v1_call   TEXT,
        days_with_data INTEGER NOT NULL,
        rejected_calls INTEGER NOT NULL,
        PRIMARY KEY (scan_id, account_id, region, instance_id)
    );
    -- The daily series behind it: one row per instance per day with data.
    CREATE TABLE usage_daily (
        scan_id        INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id     TEXT NOT NULL,
        region         TEXT NOT NULL,
        instance_id    TEXT NOT NULL,
        day            TEXT NOT NULL,
        v1_calls       REAL NOT NULL,
        rejected_calls REAL NOT NULL,
        PRIMARY KEY (scan_id, account_id, region, instance_id, day)
    );
    "#,
    // 2: the change journal: runs of apply/rollback and each change's life.
    r#"
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,          -- apply | rollback
        action        TEXT NOT NULL,
        parent_run    INTEGER REFERENCES runs(id),
        status        TEXT NOT NULL,          -- running | interrupted | done | failed
        created_at    TEXT NOT NULL,
        finished_at   TEXT,
        tool_version  TEXT NOT NULL,
        plan_digest   TEXT,
        plan_json     TEXT
    );
    CREATE TABLE changes (
        run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq            INTEGER NOT NULL,
        account_id     TEXT NOT NULL,
        region         TEXT NOT NULL,
        instance_id    TEXT NOT NULL,
        previous_json  TEXT NOT NULL,         -- the full options before the change
        target_json    TEXT NOT NULL,         -- the full options sent
        status         TEXT NOT NULL,         -- planned | issued | applied | pending | failed | skipped
        attempts       INTEGER NOT NULL DEFAULT 0,
        issued_at      TEXT,                  -- intent: written before each call
        finished_at    TEXT,                  -- result: written after it
        response_state TEXT,
        request_id     TEXT,
        error_code     TEXT,
        message        TEXT,
        verified       INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX changes_by_instance ON changes(instance_id);
    "#,
    // 3: runs you can trust: closed sets of names (CHECK), one owner per run
    // (run_leases), what a re-check observed, why a change ended where it
    // did, and which status each change's `--log` line reported. SQLite
    // cannot add a CHECK to a column, so both tables are rebuilt; a run that
    // version 2 called `failed` (finished with problems) is `incomplete` now.
    r#"
    CREATE TABLE runs_v3 (
        id             INTEGER PRIMARY KEY,
        kind           TEXT NOT NULL CHECK (kind IN ('apply', 'rollback')),
        action         TEXT NOT NULL CHECK (action IN ('require-v2', 'disable-endpoint', 'allow-v1', 'rollback')),
        parent_run     INTEGER REFERENCES runs(id),
        status         TEXT NOT NULL CHECK (status IN
                           ('running', 'interrupted', 'done', 'incomplete', 'rolled-back', 'partly-rolled-back')),
        created_at     TEXT NOT NULL,
        finished_at    TEXT,
        tool_version   TEXT NOT NULL,
        plan_digest    TEXT,
        plan_json      TEXT,
        rolled_back_by INTEGER REFERENCES runs(id),
        covers_all     INTEGER,               -- rollback runs: undoes every change of its parent that landed
        log_path       TEXT
    );
    INSERT INTO runs_v3 (id, kind, action, parent_run, status, created_at, finished_at, tool_version, plan_digest, plan_json)
        SELECT id, kind, action, parent_run, CASE status WHEN 'failed' THEN 'incomplete' ELSE status END,
               created_at, finished_at, tool_version, plan_digest, plan_json
        FROM runs;
    CREATE TABLE changes_v3 (
        run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq            INTEGER NOT NULL,
        account_id     TEXT NOT NULL,
        region         TEXT NOT NULL,
        instance_id    TEXT NOT NULL,
        previous_json  TEXT NOT NULL,         -- the options the change expects (and rollback restores)
        target_json    TEXT NOT NULL,         -- the full options sent
        status         TEXT NOT NULL CHECK (status IN ('planned', 'issued', 'applied', 'pending', 'failed', 'skipped')),
        reason         TEXT CHECK (reason IN ('at-target', 'changed-since-plan', 'gone', 'refused', 'no-answer',
                                              'answer-lost', 'stopped', 'not-verified')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        issued_at      TEXT,                  -- intent: written before each call
        finished_at    TEXT,                  -- result: written after it
        response_state TEXT CHECK (response_state IN ('pending', 'applied')),
        request_id     TEXT,
        error_code     TEXT,
        message        TEXT,
        observed_json  TEXT,                  -- what a re-check saw when it differed from previous and target
        verified       INTEGER NOT NULL DEFAULT 0,
        logged_status  TEXT CHECK (logged_status IN ('planned', 'issued', 'applied', 'pending', 'failed', 'skipped')),
        PRIMARY KEY (run_id, seq)
    );
    INSERT INTO changes_v3 (run_id, seq, account_id, region, instance_id, previous_json, target_json, status,
            attempts, issued_at, finished_at, response_state, request_id, error_code, message, verified)
        SELECT run_id, seq, account_id, region, instance_id, previous_json, target_json, status,
            attempts, issued_at, finished_at, response_state, request_id, error_code, message, verified
        FROM changes;
    DROP TABLE changes;
    DROP TABLE runs;
    ALTER TABLE runs_v3 RENAME TO runs;
    ALTER TABLE changes_v3 RENAME TO changes;
    CREATE INDEX changes_by_instance ON changes(instance_id);
    -- The process driving a run, if any (see src/runs/lease.rs).
    CREATE TABLE run_leases (
        run_id        INTEGER PRIMARY KEY REFERENCES runs(id),
        pid           INTEGER NOT NULL,
        host          TEXT NOT NULL,
        process_start TEXT,
        purpose       TEXT NOT NULL CHECK (purpose IN ('apply', 'resume', 'rollback')),
        acquired_at   TEXT NOT NULL,
        heartbeat_at  INTEGER NOT NULL        -- epoch seconds
    );
    "#,
    // 4: owner notices sent through SNS or SES (see src/store/notices.rs).
    r#"
    CREATE TABLE notices (
        id            INTEGER PRIMARY KEY,
        scan_id       INTEGER NOT NULL,
        owner_key     TEXT NOT NULL,          -- tag:VALUE | account:ID
        channel       TEXT NOT NULL CHECK (channel IN ('sns', 'ses')),
        destination   TEXT NOT NULL,          -- topic ARN | e-mail address
        digest        TEXT NOT NULL,          -- of what the notice asked for
        status        TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
        message_id    TEXT,
        error         TEXT,
        created_at    TEXT NOT NULL,
        finished_at   TEXT
    );
    CREATE INDEX notices_by_owner ON notices(owner_key, channel, destination);
    "#,
    // 5: rollouts, a plan applied in waves (see src/store/rollouts.rs).
    r#"
    CREATE TABLE rollouts (
        id            INTEGER PRIMARY KEY,
        created_at    TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('applying', 'soaking', 'halted', 'done', 'aborted')),
        current_wave  INTEGER NOT NULL,
        plan_json     TEXT NOT NULL,
        waves_spec    TEXT NOT NULL,
        soak_secs     INTEGER NOT NULL,
        max_rejected  INTEGER NOT NULL,
        health_cmd    TEXT
    );
    CREATE TABLE rollout_waves (
        rollout_id    INTEGER NOT NULL REFERENCES rollouts(id),
        number        INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'passed', 'halted')),
        run_id        INTEGER REFERENCES runs(id),
        applied_at    INTEGER,                -- epoch seconds its run finished
        soak_until    INTEGER,
        PRIMARY KEY (rollout_id, number)
    );
    CREATE TABLE rollout_members (
        rollout_id     INTEGER NOT NULL REFERENCES rollouts(id),
        plan_index     INTEGER NOT NULL,
        wave           INTEGER NOT NULL,
        account_id     TEXT NOT NULL,
        region         TEXT NOT NULL,
        instance_id    TEXT NOT NULL,
        group_key      TEXT NOT NULL,
        mark           TEXT CHECK (mark IN ('held', 'rolled-back')),
        reason         TEXT,
        rejected_calls INTEGER,
        v1_calls       INTEGER,
        PRIMARY KEY (rollout_id, plan_index)
    );
    CREATE TABLE rollout_decisions (
        id            INTEGER PRIMARY KEY,
        rollout_id    INTEGER NOT NULL REFERENCES rollouts(id),
        at            TEXT NOT NULL,
        wave          INTEGER NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('apply-wave', 'pass', 'halt', 'resume', 'finish', 'abort')),
        reason        TEXT NOT NULL,
        done          INTEGER NOT NULL
    );
    -- The before/after proof of a run's or a rollout's changes, as last
    -- measured (`runs RUN --effect`, `rollout status ID --effect`).
    CREATE TABLE effects (
        id            INTEGER PRIMARY KEY,
        subject       TEXT NOT NULL,          -- run N | rollout N
        measured_at   TEXT NOT NULL,
        effect_json   TEXT NOT NULL
    );
    "#,
    // 6: where new instances come from, per scan (see src/sources.rs):
    // launch templates and Auto Scaling groups with what their next launch
    // gets and which level decided, each region's account default, and
    // the AMIs without ImdsSupport=v2.0 behind instances that allow v1.
    // `row_json` is the whole typed row; the other columns are for SQL.
    r#"
    CREATE TABLE launch_templates (
        scan_id             INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id          TEXT NOT NULL,
        region              TEXT NOT NULL,
        template_id         TEXT NOT NULL,
        name                TEXT,
        default_version     INTEGER NOT NULL,
        latest_version      INTEGER NOT NULL,
        default_next_tokens TEXT NOT NULL,    -- what the next launch from $Default gets
        latest_next_tokens  TEXT NOT NULL,
        decided_by          TEXT NOT NULL,    -- the level that decided $Default's tokens
        allows_v1           INTEGER NOT NULL, -- $Default or $Latest launches instances that allow v1
        explanation         TEXT NOT NULL,
        row_json            TEXT NOT NULL,
        PRIMARY KEY (scan_id, account_id, region, template_id)
    );
    CREATE TABLE auto_scaling_groups (
        scan_id               INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id            TEXT NOT NULL,
        region                TEXT NOT NULL,
        name                  TEXT NOT NULL,
        launch_kind           TEXT NOT NULL CHECK (launch_kind IN ('template', 'configuration', 'unknown')),
        template_id           TEXT,
        version_pin           TEXT,           -- $Default | $Latest | N
        launch_configuration  TEXT,
        next_tokens           TEXT,           -- NULL when the launch data was not found
        decided_by            TEXT,
        allows_v1             INTEGER NOT NULL,
        instances             INTEGER NOT NULL,
        instances_allowing_v1 INTEGER NOT NULL,
        explanation           TEXT,
        row_json              TEXT NOT NULL,
        PRIMARY KEY (scan_id, account_id, region, name)
    );
    CREATE TABLE region_defaults (
        scan_id                INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id             TEXT NOT NULL,
        region                 TEXT NOT NULL,
        http_tokens            TEXT,          -- NULL: no preference
        http_tokens_enforced   TEXT,
        hop_limit              INTEGER,
        http_endpoint          TEXT,
        instance_metadata_tags TEXT,
        managed_by             TEXT,          -- account | declarative-policy
        PRIMARY KEY (scan_id, account_id, region)
    );
    CREATE TABLE images (
        scan_id               INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id            TEXT NOT NULL,
        region                TEXT NOT NULL,
        image_id              TEXT NOT NULL,  -- an AMI without ImdsSupport=v2.0
        instances_allowing_v1 INTEGER NOT NULL,
        PRIMARY KEY (scan_id, account_id, region, image_id)
    );
    -- Runs that change sources (templates fix, asg fix, defaults set, their
    -- rollbacks) are runs like the others (ids, leases, statuses); their
    -- changes are in source_changes, not changes.
    ALTER TABLE runs ADD COLUMN scope TEXT NOT NULL DEFAULT 'instances'
        CHECK (scope IN ('instances', 'sources'));
    CREATE TABLE source_changes (
        run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        account_id   TEXT NOT NULL,
        region       TEXT NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('template', 'group', 'defaults')),
        resource     TEXT NOT NULL,           -- lt-..., the group's name, or 'account default'
        change_json  TEXT NOT NULL,           -- the typed change, with all its rollback needs
        status       TEXT NOT NULL CHECK (status IN ('planned', 'issued', 'applied', 'failed', 'skipped')),
        steps_done   INTEGER NOT NULL DEFAULT 0,
        result_json  TEXT,                    -- what AWS made (a version, a template)
        issued_at    TEXT,                    -- intent: written before each step's call
        finished_at  TEXT,
        error_code   TEXT,
        message      TEXT,
        PRIMARY KEY (run_id, seq)
    );
    "#,
    // 7: CloudTrail attribution (`imdsguard trail`, see src/trail.rs): each
    // read of a trail, the instances whose role credentials were delivered
    // over IMDSv1 with their calls, and the user agents that made them with
    // the verdict. Never an access key id or a source IP address.
    r#"
    CREATE TABLE trail_runs (
        id              INTEGER PRIMARY KEY,
        created_at      TEXT NOT NULL,
        source          TEXT NOT NULL,        -- s3://bucket/prefix | lookup | athena:db.table
        window_start    TEXT NOT NULL,
        window_end      TEXT NOT NULL,
        records         INTEGER NOT NULL,     -- records in the window
        attributed      INTEGER NOT NULL,     -- credentials delivered over IMDSv1 to an instance
        v2              INTEGER NOT NULL,     -- delivered over IMDSv2 (context)
        v1_not_instance INTEGER NOT NULL,     -- over IMDSv1 to a session that is not an instance
        malformed       INTEGER NOT NULL,
        objects         INTEGER NOT NULL
    );
    CREATE TABLE trail_instances (
        trail_run           INTEGER NOT NULL REFERENCES trail_runs(id) ON DELETE CASCADE,
        account_id          TEXT NOT NULL,
        region              TEXT NOT NULL,
        instance_id         TEXT NOT NULL,
        role_name           TEXT NOT NULL,
        v1_credential_calls INTEGER NOT NULL,
        first_seen          TEXT NOT NULL,
        last_seen           TEXT NOT NULL,
        events_json         TEXT NOT NULL,    -- {"source:name": calls}
        PRIMARY KEY (trail_run, account_id, region, instance_id)
    );
    CREATE TABLE trail_agents (
        trail_run   INTEGER NOT NULL REFERENCES trail_runs(id) ON DELETE CASCADE,
        account_id  TEXT NOT NULL,
        region      TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        user_agent  TEXT NOT NULL,
        calls       INTEGER NOT NULL,
        tool        TEXT,
        version     TEXT,
        verdict     TEXT NOT NULL CHECK (verdict IN ('upgrade', 'supports-v2', 'unknown')),
        advice      TEXT NOT NULL,
        PRIMARY KEY (trail_run, account_id, region, instance_id, user_agent)
    );
    "#,
    // 8: the daily series packed into each instance's `usage` row (see
    // src/store/series.rs): one row per measured instance instead of one
    // per instance per day, keyed without a rowid (no second copy of the
    // key in an index). Existing series are converted; `usage_daily` becomes
    // a view with the old columns, so per-day queries still work.
    r#"
    CREATE TABLE usage_v8 (
        scan_id         INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        account_id      TEXT NOT NULL,
        region          TEXT NOT NULL,
        instance_id     TEXT NOT NULL,
        window_days     INTEGER NOT NULL,
        v1_calls        INTEGER NOT NULL,
        last_v1_call    TEXT,
        days_with_data  INTEGER NOT NULL,
        rejected_calls  INTEGER NOT NULL,
        series_start    INTEGER,              -- first day with data, days since 1970-01-01
        v1_series       TEXT,                 -- JSON: MetadataNoToken per day from series_start, null = no data
        rejected_series TEXT,                 -- JSON: MetadataNoTokenRejected per day; NULL when all 0
        PRIMARY KEY (scan_id, account_id, region, instance_id)
    ) WITHOUT ROWID;
    WITH RECURSIVE
      bounds AS (
        SELECT scan_id, account_id, region, instance_id,
               CAST(julianday(MIN(day)) - 2440587.5 AS INTEGER) AS lo,
               CAST(julianday(MAX(day)) - 2440587.5 AS INTEGER) AS hi
        FROM usage_daily GROUP BY scan_id, account_id, region, instance_id),
      days (scan_id, account_id, region, instance_id, lo, d, hi) AS (
        SELECT scan_id, account_id, region, instance_id, lo, lo, hi FROM bounds
        UNION ALL
        SELECT scan_id, account_id, region, instance_id, lo, d + 1, hi FROM days WHERE d < hi),
      series AS (
        SELECT days.scan_id, days.account_id, days.region, days.instance_id, days.lo AS start,
               json_group_array(u.v1_calls ORDER BY days.d) AS v1,
               json_group_array(u.rejected_calls ORDER BY days.d) AS rejected,
               MAX(u.rejected_calls) AS most_rejected
        FROM days LEFT JOIN usage_daily u
          ON u.scan_id = days.scan_id AND u.account_id = days.account_id AND u.region = days.region
         AND u.instance_id = days.instance_id AND u.day = date(days.d * 86400, 'unixepoch')
        GROUP BY days.scan_id, days.account_id, days.region, days.instance_id)
    INSERT INTO usage_v8
    SELECT us.scan_id, us.account_id, us.region, us.instance_id, us.window_days, us.v1_calls,
           us.last_v1_call, us.days_with_data, us.rejected_calls, s.start, s.v1,
           CASE WHEN s.most_rejected > 0 THEN s.rejected END
    FROM usage us LEFT JOIN series s
      ON s.scan_id = us.scan_id AND s.account_id = us.account_id AND s.region = us.region
     AND s.instance_id = us.instance_id;
    DROP TABLE usage_daily;
    DROP TABLE usage;
    ALTER TABLE usage_v8 RENAME TO usage;
    -- The old table's columns, one row per instance per day with data.
    CREATE VIEW usage_daily AS
    SELECT u.scan_id, u.account_id, u.region, u.instance_id,
           date((u.series_start + s.key) * 86400, 'unixepoch') AS day,
           CAST(s.value AS REAL) AS v1_calls,
           CAST(COALESCE(json_extract(u.rejected_series, '$[' || s.key || ']'), 0) AS REAL) AS rejected_calls
    FROM usage u, json_each(u.v1_series) s
    WHERE s.type <> 'null';
    "#,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this imdsguard understands ({known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "database {path} has schema version {found}, older than this imdsguard's ({known}), and this command only reads"
    )]
    TooOld {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no scan with id {0} in the database")]
    NoScan(i64),
    #[error("no run with id {0} in the database")]
    NoRun(i64),
    #[error("no rollout with id {0} in the database")]
    NoRollout(i64),
    #[error("the database holds unreadable data: {0}")]
    Corrupt(String),
    #[error("no database at {0}")]
    Missing(PathBuf),
    #[error("the database has no scan yet")]
    Empty,
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn hint(&self) -> &'static str {
        match self {
            StoreError::TooNew { .. } => "upgrade imdsguard, or pass --db with another path",
            StoreError::TooOld { .. } => {
                "run any command that writes it once (e.g. `imdsguard scan`) to upgrade it, then try again"
            }
            StoreError::NoScan(_) => {
                "`imdsguard history` lists the scans; omit --scan for the latest"
            }
            StoreError::Empty | StoreError::Missing(_) => {
                "run `imdsguard scan` first (or pass the --db it used)"
            }
            StoreError::NoRun(_) => "`imdsguard runs` lists the runs in this database (check --db)",
            StoreError::NoRollout(_) => {
                "`imdsguard rollout list` lists the rollouts in this database (check --db)"
            }
            _ => "check --db (or IMDSGUARD_DB) points to a writable file",
        }
    }
}

/// The database's schema version; a version newer than this build knows is refused.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known,
        });
    }
    Ok(version)
}

#[macro_use]
pub mod journal;
pub mod notices;
pub mod query;
pub mod rollouts;
mod series;
pub mod source_runs;
mod sources;
pub mod trails;

/// The database. Its connection is private to this module and `journal`:
/// everything else asks through methods, so SQL lives in one place.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.conn.path().filter(|p| !p.is_empty()).map(Path::new)
    }

    /// Runs SQL as it is, for tests that must put the database in a state
    /// no command would (a stolen lease, a lost log line).
    #[cfg(test)]
    pub fn execute_for_test(&self, sql: &str) -> rusqlite::Result<usize> {
        self.conn.execute(sql, [])
    }

    /// A second connection to an existing, migrated database, for work that
    /// must not wait on the first (the lease heartbeat).
    pub fn open_side(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        schema_version(&conn, path)?;
        Ok(Store { conn })
    }

    /// Refuses a database whose journal predates this build's (read-only
    /// opens never migrate; the journal's columns changed in version 3).
    pub fn require_current(&self) -> Result<(), StoreError> {
        let path = self.path().unwrap_or(Path::new(":memory:"));
        let found = schema_version(&self.conn, path)?;
        let known = MIGRATIONS.len() as i64;
        if found < known {
            return Err(StoreError::TooOld {
                path: path.to_owned(),
                found,
                known,
            });
        }
        Ok(())
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut store = Store { conn };
        store.migrate(path)?;
        Ok(store)
    }

    /// Opens an existing database for reading only (`show`, `runs`, `report`,
    /// `query`, `history`): nothing is created or migrated, `query_only`
    /// forbids writes, and no other database can be attached.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        conn.pragma_update(None, "query_only", "ON")?;
        // No other database file may be attached: `query` would otherwise
        // read any SQLite file on disk (`ATTACH` counts as read-only).
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        schema_version(&conn, path)?;
        Ok(Store { conn })
    }

    #[cfg(test)]
    pub fn in_memory() -> Store {
        let mut store = Store {
            conn: Connection::open_in_memory().unwrap(),
        };
        store.migrate(Path::new(":memory:")).unwrap();
        store
    }

    fn migrate(&mut self, path: &Path) -> Result<(), StoreError> {
        self.conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL lets `show`/`query` read while a scan writes.
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        // Every journal commit reaches the disk before the call it announces
        // is sent: in WAL mode, NORMAL could lose the last commits on power loss.
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        // A scan's transaction touches pages all over the instance indexes
        // (ids are random); with SQLite's default 2 MB cache it spilled
        // pages to the WAL again and again before committing (16 MB: 100,000
        // instances save in about a second). The cache grows only as pages
        // are used, so small databases stay small.
        self.conn.pragma_update(None, "cache_size", -16_384)?;
        let version = schema_version(&self.conn, path)?;
        // A migration that rebuilds a table needs foreign keys off (SQLite's
        // documented procedure; the pragma is a no-op inside a transaction),
        // and checks them itself before it commits.
        self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            let broken: i64 =
                tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if broken > 0 {
                return Err(StoreError::Corrupt(format!(
                    "migration {} left {broken} broken reference(s)",
                    i + 1
                )));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(())
    }

    #[cfg(test)]
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Saves a whole scan in one transaction, sets its id in `report` and
    /// returns it.
    #[cfg(test)]
    pub fn save_scan(&mut self, report: &mut ScanReport) -> Result<i64, StoreError> {
        Ok(self.save_scan_with(report, |_| ())?.0)
    }

    /// Saves a whole scan in one transaction, sets its id in `report`, and
    /// runs `alongside` on another thread while the rows are written (the
    /// scan command renders its output there: at 100,000 instances saving
    /// and rendering each take most of a second, and were the whole tail of
    /// a scan after the last AWS answer). `alongside` sees the report with
    /// its id; it runs even if saving then fails, and its result is
    /// returned only when the scan was saved.
    pub fn save_scan_with<R: Send>(
        &mut self,
        report: &mut ScanReport,
        alongside: impl FnOnce(&ScanReport) -> R + Send,
    ) -> Result<(i64, R), StoreError> {
        // A scan is not the journal: losing the last one to a power cut
        // costs a re-scan, never a change to AWS. So its commit does not
        // wait for the disk (WAL with synchronous=NORMAL stays consistent);
        // every journal write keeps FULL (see `migrate`).
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let saved = self.save_scan_normal(report, alongside);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        saved
    }

    fn save_scan_normal<R: Send>(
        &mut self,
        report: &mut ScanReport,
        alongside: impl FnOnce(&ScanReport) -> R + Send,
    ) -> Result<(i64, R), StoreError> {
        let tx = self.conn.transaction()?;
        let complete = report.failures.is_empty();
        tx.execute(
            "INSERT INTO scans (started_at, finished_at, tool_version, usage_days, complete, identities_json, warnings_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                report.started_at,
                report.finished_at,
                env!("CARGO_PKG_VERSION"),
                report.usage_days,
                complete,
                serde_json::to_string(&report.identities).expect("strings serialize"),
                serde_json::to_string(&report.warnings).expect("strings serialize"),
            ],
        )?;
        let id = tx.last_insert_rowid();
        report.id = Some(id);
        let report = &*report;
        let (saved, beside) = std::thread::scope(|scope| {
            let beside = scope.spawn(|| alongside(report));
            let saved = Self::save_rows(&tx, id, report);
            (saved, beside.join())
        });
        let beside = match beside {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        saved?;
        tx.commit()?;
        Ok((id, beside))
    }

    /// Every row of scan `id` but its `scans` row.
    fn save_rows(
        tx: &rusqlite::Transaction<'_>,
        id: i64,
        report: &ScanReport,
    ) -> Result<(), StoreError> {
        {
            let mut stmt = tx.prepare(
                "INSERT INTO scan_regions (scan_id, account_id, region, instances, required, optional, disabled, complete)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in &report.regions {
                stmt.execute(params![
                    id,
                    r.account_id,
                    r.region,
                    r.instances,
                    r.required,
                    r.optional,
                    r.disabled,
                    r.complete
                ])?;
            }
            let mut stmt = tx.prepare(
                "INSERT INTO scan_failures (scan_id, account_id, region, operation, error_code, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for f in &report.failures {
                stmt.execute(params![
                    id,
                    f.account_id,
                    f.region,
                    f.error.operation.as_str(),
                    f.error.code,
                    f.error.message
                ])?;
            }
            let mut stmt = tx.prepare(
                "INSERT INTO instances (scan_id, account_id, region, instance_id, name, state, launch_time, image_id,
                    http_tokens, http_endpoint, hop_limit, instance_metadata_tags, http_protocol_ipv6, metadata_state,
                    instance_profile_arn, role_name, owner, tags_json, asg_name, cfn_stack, launch_template,
                    container_host, container_reason, readiness, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
            )?;
            let mut usage_stmt = tx.prepare(
                "INSERT INTO usage (scan_id, account_id, region, instance_id, window_days, v1_calls, last_v1_call,
                    days_with_data, rejected_calls, series_start, v1_series, rejected_series)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for rec in &report.instances {
                let i = &rec.instance;
                let m = &i.metadata;
                stmt.execute(params![
                    id,
                    rec.account_id,
                    rec.region,
                    i.instance_id,
                    i.name(),
                    i.state.as_str(),
                    i.launch_time,
                    i.image_id,
                    m.http_tokens.map(|t| t.as_str()),
                    m.http_endpoint.map(|t| t.as_str()),
                    m.hop_limit,
                    m.instance_metadata_tags.map(|t| t.as_str()),
                    m.http_protocol_ipv6.map(|t| t.as_str()),
                    m.state.map(|s| s.as_str()),
                    i.instance_profile_arn,
                    rec.role_name,
                    rec.owner,
                    serde_json::to_string(&i.tags).expect("tags serialize"),
                    rec.asg_name,
                    rec.cfn_stack,
                    rec.launch_template,
                    rec.container_host,
                    rec.container_reason,
                    rec.readiness.as_str(),
                    rec.reason,
                ])?;
                // The daily series is measured with the usage, never without.
                if let Some(u) = &rec.usage {
                    let packed = series::pack(&rec.daily);
                    usage_stmt.execute(params![
                        id,
                        rec.account_id,
                        rec.region,
                        i.instance_id,
                        u.window_days,
                        u.v1_calls,
                        u.last_v1_call,
                        u.days_with_data,
                        u.rejected_calls,
                        packed.start,
                        packed.v1,
                        packed.rejected
                    ])?;
                }
            }
            sources::save(tx, id, &report.sources)?;
        }
        Ok(())
    }

    /// The id of the newest scan, if any.
    pub fn latest_scan(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MAX(id) FROM scans", [], |r| r.get(0))?)
    }

    /// Rebuilds a saved scan exactly as it was reported.
    pub fn load_report(&self, scan_id: i64) -> Result<ScanReport, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT started_at, finished_at, usage_days, identities_json, warnings_json FROM scans WHERE id = ?1",
                [scan_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<u32>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?
            .ok_or(StoreError::NoScan(scan_id))?;
        let mut report = ScanReport {
            id: Some(scan_id),
            started_at: head.0,
            finished_at: head.1,
            usage_days: head.2,
            identities: serde_json::from_str(&head.3).unwrap_or_default(),
            warnings: serde_json::from_str(&head.4).unwrap_or_default(),
            ..Default::default()
        };

        // Usage and its daily series, by instance.
        type Measured = (Usage, Vec<DayPoint>);
        let mut usage: HashMap<(String, String, String), Measured> = HashMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT account_id, region, instance_id, window_days, v1_calls, last_v1_call, days_with_data,
                rejected_calls, series_start, v1_series, rejected_series
             FROM usage WHERE scan_id = ?1",
        )?;
        let rows = stmt.query_map([scan_id], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?),
                Usage {
                    window_days: r.get(3)?,
                    v1_calls: r.get(4)?,
                    last_v1_call: r.get(5)?,
                    days_with_data: r.get(6)?,
                    rejected_calls: r.get(7)?,
                },
                (
                    r.get::<_, Option<i32>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                ),
            ))
        })?;
        for row in rows {
            let (k, u, packed) = row?;
            let daily = match packed {
                (Some(start), Some(v1), rejected) => {
                    series::unpack(start, &v1, rejected.as_deref()).map_err(StoreError::Corrupt)?
                }
                _ => Vec::new(),
            };
            usage.insert(k, (u, daily));
        }

        let mut stmt = self.conn.prepare(
            "SELECT account_id, region, instance_id, state, launch_time, image_id, http_tokens, http_endpoint,
                hop_limit, instance_metadata_tags, http_protocol_ipv6, metadata_state, instance_profile_arn,
                role_name, owner, tags_json, asg_name, cfn_stack, launch_template, container_host,
                container_reason, readiness, reason
             FROM instances WHERE scan_id = ?1 ORDER BY account_id, region, rowid",
        )?;
        let rows = stmt.query_map([scan_id], |r| {
            let tags_json: String = r.get(15)?;
            let instance = Instance {
                instance_id: r.get(2)?,
                state: InstanceState(r.get(3)?),
                launch_time: r.get(4)?,
                image_id: r.get(5)?,
                metadata: MetadataOptions {
                    http_tokens: enum_column(r, 6)?,
                    http_endpoint: enum_column(r, 7)?,
                    hop_limit: r.get(8)?,
                    instance_metadata_tags: enum_column(r, 9)?,
                    http_protocol_ipv6: enum_column(r, 10)?,
                    state: enum_column(r, 11)?,
                },
                instance_profile_arn: r.get(12)?,
                tags: serde_json::from_str(&tags_json).unwrap_or_default(),
            };
            let readiness: String = r.get(21)?;
            Ok(InstanceRecord {
                account_id: r.get(0)?,
                region: r.get(1)?,
                role_name: r.get(13)?,
                owner: r.get(14)?,
                asg_name: r.get(16)?,
                cfn_stack: r.get(17)?,
                launch_template: r.get(18)?,
                container_host: r.get(19)?,
                container_reason: r.get(20)?,
                v1_callers: None,
                usage: None,
                daily: Vec::new(),
                readiness: Readiness::ALL
                    .into_iter()
                    .find(|v| v.as_str() == readiness)
                    .unwrap_or(Readiness::Unknown),
                reason: r.get(22)?,
                instance,
            })
        })?;
        for row in rows {
            let mut rec = row?;
            let key = (
                rec.account_id.clone(),
                rec.region.clone(),
                rec.instance.instance_id.clone(),
            );
            if let Some((u, daily)) = usage.remove(&key) {
                rec.usage = Some(u);
                rec.daily = daily;
            }
            report.instances.push(rec);
        }

        let mut stmt = self.conn.prepare(
            "SELECT account_id, region, instances, required, optional, disabled, complete
             FROM scan_regions WHERE scan_id = ?1 ORDER BY account_id, region",
        )?;
        let rows = stmt.query_map([scan_id], |r| {
            Ok(RegionSummary {
                account_id: r.get(0)?,
                region: r.get(1)?,
                instances: r.get(2)?,
                required: r.get(3)?,
                optional: r.get(4)?,
                disabled: r.get(5)?,
                verdicts: [0; 6],
                complete: r.get(6)?,
            })
        })?;
        // Verdicts per region in one pass (an organisation has thousands of
        // regions: a pass over every instance per region would be quadratic).
        let mut verdicts: HashMap<(&str, &str), [u64; 6]> = HashMap::new();
        for rec in &report.instances {
            let idx = Readiness::ALL
                .iter()
                .position(|r| *r == rec.readiness)
                .expect("listed");
            verdicts
                .entry((rec.account_id.as_str(), rec.region.as_str()))
                .or_default()[idx] += 1;
        }
        let mut regions = Vec::new();
        for row in rows {
            let mut summary = row?;
            if let Some(v) = verdicts.get(&(summary.account_id.as_str(), summary.region.as_str())) {
                summary.verdicts = *v;
            }
            regions.push(summary);
        }
        drop(verdicts);
        report.regions = regions;

        let mut stmt = self.conn.prepare(
            "SELECT account_id, region, operation, error_code, message FROM scan_failures WHERE scan_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([scan_id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (account_id, region, operation, code, message) = row?;
            let operation = crate::aws::Operation::parse(&operation).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown operation `{operation}` in scan_failures"))
            })?;
            report.failures.push(Failure::new(
                account_id.as_deref(),
                region.as_deref(),
                AwsError::from_code(operation, code.as_deref(), Some(&message), None),
            ));
        }
        report.sources = sources::load(&self.conn, scan_id)?;
        Ok(report)
    }

    /// Counts rows of a table in a scan.
    #[cfg(test)]
    pub fn count(&self, table: &str, scan_id: i64) -> Result<i64, StoreError> {
        let sql = match table {
            "instances" => "SELECT COUNT(*) FROM instances WHERE scan_id = ?1",
            "scan_regions" => "SELECT COUNT(*) FROM scan_regions WHERE scan_id = ?1",
            "scan_failures" => "SELECT COUNT(*) FROM scan_failures WHERE scan_id = ?1",
            other => panic!("no table {other}"),
        };
        Ok(self.conn.query_row(sql, [scan_id], |r| r.get(0))?)
    }
}

/// Where the database lives unless `--db` or `IMDSGUARD_DB` says otherwise.
pub fn default_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "imdsguard")
        .map(|d| d.data_dir().join("imdsguard.db"))
        .unwrap_or_else(|| PathBuf::from("imdsguard.db"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HttpTokens;
    use crate::readiness::Readiness;
    use crate::report::RegionSummary;
    use crate::report::test_support::record;

    /// A database as imdsguard left it at schema `version`.
    fn database_at(path: &Path, version: usize) -> Connection {
        let conn = Connection::open(path).unwrap();
        for (i, sql) in MIGRATIONS[..version].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64)
                .unwrap();
        }
        conn
    }

    #[test]
    fn migrates_once_and_saves_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/db.sqlite");
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mut report = ScanReport {
            started_at: "2026-11-25T00:00:00Z".into(),
            finished_at: "2026-11-25T00:00:01Z".into(),
            regions: vec![RegionSummary {
                account_id: "1".into(),
                region: "us-east-1".into(),
                instances: 1,
                optional: 1,
                complete: true,
                ..Default::default()
            }],
            instances: vec![{
                let mut r = record(1, HttpTokens::Optional, Readiness::Unknown);
                r.role_name = Some("r".into());
                r
            }],
            ..Default::default()
        };
        let id = store.save_scan(&mut report).unwrap();
        assert_eq!(store.count("instances", id).unwrap(), 1);
        assert_eq!(store.count("scan_regions", id).unwrap(), 1);
        drop(store);
        // Reopening does not re-run migrations (they would fail: tables exist).
        let store = Store::open(&path).unwrap();
        assert_eq!(store.count("instances", id).unwrap(), 1);
    }

    #[test]
    fn a_version_4_database_has_no_rollouts_until_it_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        drop(database_at(&path, 4));
        // Read-only (views): no rollouts, and no error about missing tables.
        let ro = Store::open_read_only(&path).unwrap();
        assert!(ro.rollout_ids().unwrap().is_empty());
        assert!(matches!(ro.load_rollout(1), Err(StoreError::NoRollout(1))));
        assert!(ro.latest_effects(5).unwrap().is_empty());
        drop(ro);
        // Writable: migrated to the rollouts' schema.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert!(store.rollout_ids().unwrap().is_empty());
        store.save_effect("run 1", "{}").unwrap();
        assert_eq!(store.latest_effects(5).unwrap().len(), 1);
    }

    /// Day rows as the `usage_daily` view (or the old table) gives them.
    fn daily_rows(conn: &Connection) -> Vec<(String, String, f64, f64)> {
        let mut stmt = conn
            .prepare(
                "SELECT instance_id, day, v1_calls, rejected_calls FROM usage_daily
                 ORDER BY instance_id, day",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_version_7_daily_series_is_packed_and_still_queryable_per_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v7.db");
        let before;
        {
            let conn = database_at(&path, 7);
            // Two measured instances: one with a gap, a fraction and
            // refusals; one quiet; and one never measured.
            conn.execute_batch(
                r#"INSERT INTO scans (id, started_at, finished_at, tool_version, usage_days, complete)
                     VALUES (1, '2026-11-20T00:00:00Z', '2026-11-20T00:01:00Z', '0.1.0', 14, 1);
                   INSERT INTO instances (scan_id, account_id, region, instance_id, state, tags_json,
                     container_host, readiness, reason)
                   VALUES (1, '111122223333', 'us-east-1', 'i-0aaaaaaaaaaaaaaaa', 'running', '{}', 0, 'in-use', 'r'),
                          (1, '111122223333', 'us-east-1', 'i-0bbbbbbbbbbbbbbbb', 'running', '{}', 0, 'ready', 'r'),
                          (1, '111122223333', 'us-east-1', 'i-0cccccccccccccccc', 'stopped', '{}', 0, 'unknown', 'r');
                   INSERT INTO usage VALUES
                     (1, '111122223333', 'us-east-1', 'i-0aaaaaaaaaaaaaaaa', 14, 5, '2026-11-19', 3, 2),
                     (1, '111122223333', 'us-east-1', 'i-0bbbbbbbbbbbbbbbb', 14, 0, NULL, 2, 0);
                   INSERT INTO usage_daily VALUES
                     (1, '111122223333', 'us-east-1', 'i-0aaaaaaaaaaaaaaaa', '2026-11-16', 0, 0),
                     (1, '111122223333', 'us-east-1', 'i-0aaaaaaaaaaaaaaaa', '2026-11-17', 3.5, 2),
                     (1, '111122223333', 'us-east-1', 'i-0aaaaaaaaaaaaaaaa', '2026-11-19', 1.5, 0),
                     (1, '111122223333', 'us-east-1', 'i-0bbbbbbbbbbbbbbbb', '2026-11-18', 0, 0),
                     (1, '111122223333', 'us-east-1', 'i-0bbbbbbbbbbbbbbbb', '2026-11-19', 0, 0);"#,
            )
            .unwrap();
            before = daily_rows(&conn);
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        // The view answers exactly what the table held.
        assert_eq!(daily_rows(&store.conn), before);
        let usage_rows: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM usage", [], |r| r.get(0))
            .unwrap();
        assert_eq!(usage_rows, 2);
        // The report rebuilt from the packed rows keeps gaps and fractions.
        let report = store.load_report(1).unwrap();
        let a = &report.instances[0];
        assert_eq!(a.usage.as_ref().map(|u| u.v1_calls), Some(5));
        let days: Vec<(String, f64, f64)> = a
            .daily
            .iter()
            .map(|p| (crate::clock::day_label(p.day), p.v1_calls, p.rejected_calls))
            .collect();
        assert_eq!(
            days,
            vec![
                ("2026-11-16".to_owned(), 0.0, 0.0),
                ("2026-11-17".to_owned(), 3.5, 2.0),
                ("2026-11-19".to_owned(), 1.5, 0.0),
            ]
        );
        assert_eq!(report.instances[1].daily.len(), 2);
        assert!(report.instances[2].usage.is_none() && report.instances[2].daily.is_empty());
        // A quiet instance stores no refusal series at all.
        let quiet: Option<String> = store
            .conn
            .query_row(
                "SELECT rejected_series FROM usage WHERE instance_id = 'i-0bbbbbbbbbbbbbbbb'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(quiet, None);
    }

    #[test]
    fn saved_daily_series_round_trip_and_read_per_day() {
        let mut store = Store::in_memory();
        let mut report = ScanReport {
            started_at: "2026-11-20T00:00:00Z".into(),
            finished_at: "2026-11-20T00:01:00Z".into(),
            usage_days: Some(14),
            ..Default::default()
        };
        let mut rec = record(1, HttpTokens::Optional, Readiness::InUse);
        rec.usage = Some(Usage {
            window_days: 14,
            v1_calls: 4,
            last_v1_call: Some("2026-11-19".into()),
            days_with_data: 2,
            rejected_calls: 1,
        });
        rec.daily = vec![
            DayPoint {
                day: 20_406,
                v1_calls: 1.0,
                rejected_calls: 1.0,
            },
            DayPoint {
                day: 20_410,
                v1_calls: 3.0,
                rejected_calls: 0.0,
            },
        ];
        report.instances.push(rec.clone());
        // What runs alongside the save sees the scan's id, and its result
        // comes back once the rows are committed.
        let (id, seen) = store
            .save_scan_with(&mut report, |r| (r.id, r.instances.len()))
            .unwrap();
        assert_eq!(seen, (Some(id), 1));
        assert_eq!(report.id, Some(id));
        assert_eq!(store.load_report(id).unwrap().instances[0].daily, rec.daily);
        assert_eq!(
            daily_rows(&store.conn),
            vec![
                (
                    rec.instance.instance_id.clone(),
                    crate::clock::day_label(20_406),
                    1.0,
                    1.0
                ),
                (
                    rec.instance.instance_id.clone(),
                    crate::clock::day_label(20_410),
                    3.0,
                    0.0
                ),
            ]
        );
    }

    #[test]
    fn a_version_2_journal_is_migrated_with_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        {
            let conn = database_at(&path, 2);
            conn.execute_batch(
                r#"INSERT INTO runs (id, kind, action, status, created_at, tool_version)
                   VALUES (1, 'apply', 'require-v2', 'failed', 't', '0.1.0');
                 INSERT INTO changes (run_id, seq, account_id, region, instance_id, previous_json,
                   target_json, status, attempts)
                   VALUES (1, 0, '111122223333', 'us-east-1', 'i-0123456789abcdef0',
                   '{"http_tokens":"optional","http_endpoint":"enabled","hop_limit":1,"instance_metadata_tags":"disabled","http_protocol_ipv6":"disabled"}',
                   '{"http_tokens":"required","http_endpoint":"enabled","hop_limit":1,"instance_metadata_tags":"disabled","http_protocol_ipv6":"disabled"}',
                   'failed', 2);"#,
            )
            .unwrap();
        }
        // Read-only opens never migrate: the journal is refused, not misread.
        let ro = Store::open_read_only(&path).unwrap();
        assert!(matches!(
            ro.require_current(),
            Err(StoreError::TooOld { found: 2, .. })
        ));
        drop(ro);
        let store = Store::open(&path).unwrap();
        let run = store.load_run(1).unwrap();
        assert_eq!(run.status, crate::store::journal::RunStatus::Incomplete);
        assert_eq!(
            run.changes[0].status,
            crate::store::journal::ChangeStatus::Failed
        );
        assert_eq!(run.changes[0].attempts, 2);
        let fk: bool = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(fk, "foreign keys are back on after the migration");
    }

    #[test]
    fn read_only_opens_create_nothing_and_attach_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope/imdsguard.db");
        assert!(matches!(
            Store::open_read_only(&missing),
            Err(StoreError::Missing(_))
        ));
        assert!(!dir.path().join("nope").exists());
        let path = dir.path().join("db.sqlite");
        drop(Store::open(&path).unwrap());
        let other = dir.path().join("other.sqlite");
        drop(Store::open(&other).unwrap());
        let ro = Store::open_read_only(&path).unwrap();
        let attach = format!("ATTACH '{}' AS o", other.display());
        assert!(ro.conn.execute_batch(&attach).is_err());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
        let _ = Store::in_memory();
    }
}
