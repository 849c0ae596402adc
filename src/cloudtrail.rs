//! Reading a trail for `imdsguard trail`, from one of three sources:
//!
//! * the log objects a trail writes to S3
//!   (`[prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/*.json.gz`),
//!   found by listing only the window's date prefixes (never the whole
//!   bucket), fetched and parsed `concurrency` at a time and folded into one
//!   tally as they arrive: memory is bounded by the concurrency, not by the
//!   volume of logs;
//! * `LookupEvents` per account and region (management events, 90 days),
//!   paced to CloudTrail's 2 requests per second per account and region;
//! * one Athena query over the trail's table that filters and aggregates on
//!   AWS's side ([`athena_sql`], also printed by `--print-sql`).

use std::io::Read;

use futures::stream::{self, StreamExt};

use crate::aws::{
    AthenaApi, AwsError, AwsErrorKind, CloudTrailApi, ObjectApi, Operation, QueryState, all_pages,
};
use crate::trail::{AggregateRow, Record, Tally};

/// The days a window covers, oldest first, and its exact bounds.
#[derive(Debug, Clone)]
pub struct TrailWindow {
    /// RFC 3339, inclusive.
    pub start: String,
    pub end: String,
    /// `YYYY/MM/DD`, the date folders CloudTrail writes (UTC).
    pub days: Vec<String>,
}

impl TrailWindow {
    /// The last `days` days up to `now` (epoch seconds).
    pub fn last(days: u32, now: i64) -> TrailWindow {
        let start = now - i64::from(days) * 86_400;
        let first_day = start.div_euclid(86_400);
        let last_day = now.div_euclid(86_400);
        TrailWindow {
            start: crate::clock::at(start),
            end: crate::clock::at(now),
            days: (first_day..=last_day)
                .map(|d| crate::clock::day_label(d as i32).replace('-', "/"))
                .collect(),
        }
    }
}

/// What reading the bucket did, besides the tally.
#[derive(Debug, Default)]
pub struct Listing {
    pub accounts: Vec<String>,
}

/// The folder names one level under `prefix` (`ListObjectsV2` with a `/`
/// delimiter), paginated.
async fn folders(s3: &dyn ObjectApi, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError> {
    all_pages(|token| async move {
        let page = s3.list(bucket, prefix, true, token).await?;
        Ok((page.prefixes, page.next_token))
    })
    .await
}

fn last_segment(folder: &str) -> &str {
    folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// Reads the window's logs of every account (and organization) under
/// `prefix` into `tally`.
pub async fn from_bucket(
    s3: &dyn ObjectApi,
    bucket: &str,
    prefix: &str,
    window: &TrailWindow,
    concurrency: usize,
    tally: &mut Tally,
) -> Result<Listing, AwsError> {
    let base = match prefix.trim_matches('/') {
        "" => "AWSLogs/".to_owned(),
        p => format!("{p}/AWSLogs/"),
    };
    let mut listing = Listing::default();
    let mut account_folders = Vec::new();
    for folder in folders(s3, bucket, &base).await? {
        let name = last_segment(&folder);
        if crate::filter::parse_account_id(name).is_ok() {
            account_folders.push(folder);
        } else if name.starts_with("o-") {
            // An organization trail: one more level, the accounts.
            for inner in folders(s3, bucket, &folder).await? {
                if crate::filter::parse_account_id(last_segment(&inner)).is_ok() {
                    account_folders.push(inner);
                }
            }
        }
    }
    let mut day_prefixes = Vec::new();
    for account in &account_folders {
        listing.accounts.push(last_segment(account).to_owned());
        for region in folders(s3, bucket, &format!("{account}CloudTrail/")).await? {
            for day in &window.days {
                day_prefixes.push(format!("{region}{day}/"));
            }
        }
    }
    // The keys of each day, listed concurrently.
    let keys: Vec<Result<Vec<String>, AwsError>> = stream::iter(day_prefixes)
        .map(|p| async move {
            all_pages(|token| {
                let p = p.clone();
                async move {
                    let page = s3.list(bucket, &p, false, token).await?;
                    Ok((page.keys, page.next_token))
                }
            })
            .await
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut all = Vec::new();
    for k in keys {
        all.extend(k?);
    }
    // Fetched and decompressed concurrently; folded in one at a time.
    let mut objects = stream::iter(all)
        .map(|key| async move {
            let body = s3.get(bucket, &key).await;
            (key, body.map(|b| gunzip(&b)))
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((key, body)) = objects.next().await {
        match body {
            Ok(Ok(json)) => tally.add_object(&key, &json),
            Ok(Err(e)) => tally.bad_object(&key, &format!("not gzip: {e}")),
            Err(e) => return Err(e),
        }
    }
    Ok(listing)
}

/// Gunzips a log object (an object that is not gzip is read as is: some
/// tools copy logs out decompressed).
fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 8);
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// A CloudTrail table in Athena, `database.table`: names checked here,
/// so the SQL below never carries anything but identifiers we quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaTable {
    pub database: String,
    pub table: String,
}

impl AthenaTable {
    /// `db.table`, each part letters, digits and underscores.
    pub fn parse(raw: &str) -> Option<AthenaTable> {
        let (d, t) = raw.split_once('.')?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        (ok(d) && ok(t)).then(|| AthenaTable {
            database: d.to_owned(),
            table: t.to_owned(),
        })
    }
}

/// The one query that does the filtering and aggregation on Athena (or
/// CloudTrail Lake, with its table name): calls made with credentials
/// delivered over IMDSv1 to an instance session, per account, region,
/// instance, role, user agent and event, in the window. Columns follow the
/// CloudTrail table of the Athena User Guide ("Query AWS CloudTrail logs").
pub fn athena_sql(table: &AthenaTable, window: &TrailWindow) -> String {
    // The window's bounds are our own RFC 3339 strings (digits, '-', ':', 'T', 'Z').
    format!(
        r#"SELECT recipientaccountid AS account_id,
       awsregion AS region,
       element_at(split(useridentity.arn, '/'), -1) AS instance_id,
       element_at(split(useridentity.arn, '/'), -2) AS role_name,
       coalesce(useragent, '') AS user_agent,
       eventsource || ':' || eventname AS event,
       count(*) AS calls,
       min(eventtime) AS first_seen,
       max(eventtime) AS last_seen
FROM "{db}"."{table}"
WHERE useridentity.sessioncontext.ec2roledelivery = '1.0'
  AND useridentity.arn LIKE '%:assumed-role/%'
  AND regexp_like(element_at(split(useridentity.arn, '/'), -1), '^i-([0-9a-f]{{8}}|[0-9a-f]{{17}})$')
  AND eventtime >= '{start}'
  AND eventtime <= '{end}'
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY calls DESC"#,
        db = table.database,
        table = table.table,
        start = window.start,
        end = window.end,
    )
}

/// Runs [`athena_sql`] and folds its rows into `tally`. Polls every
/// second until Athena is done; a failed query is an error with Athena's
/// reason.
pub async fn from_athena(
    athena: &dyn AthenaApi,
    table: &AthenaTable,
    output: &str,
    workgroup: Option<&str>,
    window: &TrailWindow,
    tally: &mut Tally,
) -> Result<(), AwsError> {
    let id = athena
        .start_query(&athena_sql(table, window), output, workgroup)
        .await?;
    loop {
        match athena.query_state(&id).await? {
            QueryState::Succeeded => break,
            QueryState::Failed(why) => {
                return Err(AwsError::local(
                    Operation::GetQueryExecution,
                    AwsErrorKind::Service,
                    format!("the Athena query {id} failed: {why}"),
                ));
            }
            QueryState::Running => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
    let rows = all_pages(|token| {
        let id = id.clone();
        async move {
            let page = athena.query_results(&id, token).await?;
            Ok((page.rows, page.next_token))
        }
    })
    .await?;
    for (n, row) in rows.into_iter().enumerate() {
        let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        if n == 0 && cell(0) == "account_id" {
            continue; // the header row
        }
        match cell(6).parse::<u64>() {
            Ok(calls) => tally.add_aggregate(&AggregateRow {
                account_id: cell(0),
                region: cell(1),
                instance_id: cell(2),
                role_name: cell(3),
                user_agent: cell(4),
                event: cell(5),
                calls,
                first_seen: cell(7),
                last_seen: cell(8),
            }),
            Err(_) => tally.counts.malformed += 1,
        }
    }
    Ok(())
}

/// CloudTrail's limit on `LookupEvents`: 2 requests per second per account
/// and region.
const LOOKUP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Every management event of the window in `region`, 50 per page, paced
/// to CloudTrail's limit, folded into `tally`.
pub async fn from_lookup(
    api: &dyn CloudTrailApi,
    region: &str,
    window_start: i64,
    window_end: i64,
    tally: &mut Tally,
) -> Result<u64, AwsError> {
    let mut token = None;
    let mut pages = 0u64;
    loop {
        if pages > 0 {
            tokio::time::sleep(LOOKUP_INTERVAL).await;
        }
        let page = api
            .lookup_events(region, window_start, window_end, token)
            .await?;
        pages += 1;
        for text in &page.events {
            match serde_json::from_str::<Record>(text) {
                Ok(r) => tally.add(&r),
                Err(_) => tally.counts.malformed += 1,
            }
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(pages),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_tables_are_identifiers_only() {
        assert!(AthenaTable::parse("cloudtrail_db.org_trail").is_some());
        for bad in [
            "db",
            "db.",
            ".t",
            "db.t; DROP TABLE x",
            "db.t\"--",
            "d b.t",
            "db.t.x",
        ] {
            assert!(AthenaTable::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_sql_filters_v1_delivery_instances_and_the_window() {
        let w = TrailWindow {
            start: "2026-11-17T00:00:00Z".into(),
            end: "2026-12-01T00:00:00Z".into(),
            days: vec![],
        };
        let sql = athena_sql(&AthenaTable::parse("db.trail").unwrap(), &w);
        assert!(sql.contains(r#"FROM "db"."trail""#));
        assert!(sql.contains("useridentity.sessioncontext.ec2roledelivery = '1.0'"));
        assert!(sql.contains("'^i-([0-9a-f]{8}|[0-9a-f]{17})$'"));
        assert!(sql.contains("eventtime >= '2026-11-17T00:00:00Z'"));
        assert!(sql.contains("GROUP BY 1, 2, 3, 4, 5, 6"));
        assert!(!sql.contains("accesskeyid") && !sql.contains("sourceipaddress"));
    }

    #[test]
    fn windows_list_each_utc_day_once() {
        let w = TrailWindow::last(2, 1_764_547_200 + 3600); // 2025-12-01T01:00Z
        assert_eq!(w.days, vec!["2025/11/29", "2025/11/30", "2025/12/01"]);
    }
}
