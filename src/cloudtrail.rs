//! Reading a trail for `imdsguard trail`: the log objects a trail writes to
//! S3 (`[prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/*.json.gz`),
//! found by listing only the window's date prefixes (never the whole
//! bucket), fetched and parsed `concurrency` at a time and folded into one
//! tally as they arrive: memory is bounded by the concurrency, not by the
//! volume of logs.

use std::io::Read;

use futures::stream::{self, StreamExt};

use crate::aws::{AwsError, ObjectApi, all_pages};
use crate::trail::Tally;

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
