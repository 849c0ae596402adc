//! IMDSv1 usage from CloudWatch: `MetadataNoToken` (v1 calls answered) and
//! `MetadataNoTokenRejected` (v1 calls refused), `Sum` per instance per UTC
//! day, with the fewest `GetMetricData` calls CloudWatch allows.
//!
//! Packing: two queries per instance, up to 500 queries per call, so 250
//! instances per call, unless the window is so long that 500 queries would
//! exceed the 100,800 datapoints one response may carry; then fewer per call
//! (never more pages than needed).
//!
//! Period: one day (86,400 s). CloudWatch keeps 1-minute data for 15 days,
//! 5-minute data for 63 days and 1-hour data for 455 days, and a query
//! reaching into older data must use a period that is a multiple of 300 s
//! or 3,600 s respectively; one day is a multiple of all of them, and daily
//! buckets are what `last_v1_call` and the charts need.

use std::collections::{BTreeMap, HashMap};

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::aws::{AwsError, CloudWatchApi, Metric, MetricQuery, MetricRequest};
use crate::readiness::Usage;
use crate::report::{DayPoint, FleetDay, ScanReport};

pub const MIN_DAYS: u32 = 1;
pub const MAX_DAYS: u32 = 455;
pub const DEFAULT_DAYS: u32 = 14;
/// CloudWatch's cap on queries per `GetMetricData` call.
pub const MAX_QUERIES: usize = 500;
/// CloudWatch's cap on datapoints per `GetMetricData` response.
pub const MAX_DATAPOINTS: usize = 100_800;
use crate::clock::{DAY, day_label};

/// A usage window CloudWatch cannot serve: EC2 metrics are kept for
/// [`MAX_DAYS`] days, and a window needs at least [`MIN_DAYS`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("a window of {0} days is out of range ({MIN_DAYS} to {MAX_DAYS})")]
pub struct DaysOutOfRange(pub u32);

/// The time window of a usage measurement: `days` whole UTC days ending
/// with today (today's bucket is partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub days: u32,
    /// Epoch seconds of the first bucket (midnight UTC).
    pub start: i64,
    /// Epoch seconds of the end of the last bucket (next midnight UTC).
    pub end: i64,
    pub period: i32,
    /// Queries per `GetMetricData` call (even: both metrics of an instance travel together).
    pub queries_per_call: usize,
}

/// The smallest period CloudWatch accepts for data `age_secs` old.
pub fn min_period_for_age(age_secs: i64) -> i32 {
    if age_secs <= 15 * DAY {
        60
    } else if age_secs <= 63 * DAY {
        300
    } else {
        3600
    }
}

impl Window {
    pub fn new(days: u32, now: i64) -> Result<Window, DaysOutOfRange> {
        if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
            return Err(DaysOutOfRange(days));
        }
        let today = now.div_euclid(DAY) * DAY;
        let buckets = days as usize;
        let fit = (MAX_DATAPOINTS / buckets).min(MAX_QUERIES);
        Ok(Window {
            days,
            start: today - (i64::from(days) - 1) * DAY,
            end: today + DAY,
            period: DAY as i32,
            queries_per_call: fit - fit % 2,
        })
        .inspect(|w| debug_assert_eq!(w.period % min_period_for_age(now - w.start), 0))
    }

    /// Number of `GetMetricData` calls (without pagination) for `n` instances.
    #[cfg(test)]
    pub fn calls_for(&self, n: usize) -> usize {
        (2 * n).div_ceil(self.queries_per_call)
    }
}

/// An instance's usage and its daily series (only days with data, oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceUsage {
    pub usage: Usage,
    pub daily: Vec<DayPoint>,
}

/// Measures usage for `instance_ids` in one region. Instances CloudWatch
/// has no datapoint for are still in the result, with `days_with_data` 0.
/// Batches run side by side, each holding a permit of `gate` (the region's
/// calls in flight, `--region-calls`); pages within a batch follow each
/// other, as their tokens require.
pub async fn measure(
    cw: &dyn CloudWatchApi,
    region: &str,
    instance_ids: &[String],
    window: &Window,
    gate: &Semaphore,
) -> Result<HashMap<String, InstanceUsage>, AwsError> {
    let batches = instance_ids.chunks(window.queries_per_call / 2);
    let count = batches.len();
    let mut batches = stream::iter(batches)
        .map(|chunk| async move {
            let _permit = gate.acquire().await.expect("the gate is never closed");
            // Only this batch's series are held while its pages arrive.
            let mut daily: Vec<BTreeMap<i64, DayPoint>> = vec![BTreeMap::new(); chunk.len()];
            let span = (window.start, window.end, window.period);
            both_metrics(cw, region, chunk, span, |i, metric, t, v| {
                // Bucket by UTC day whatever alignment the service used.
                let day = t.div_euclid(DAY);
                let point = daily[i].entry(day).or_insert(DayPoint {
                    day: day as i32,
                    ..Default::default()
                });
                match metric {
                    Metric::MetadataNoToken => point.v1_calls += v,
                    Metric::MetadataNoTokenRejected => point.rejected_calls += v,
                }
            })
            .await?;
            Ok::<_, AwsError>((chunk, daily))
        })
        // The gate is the bound; this only lets every batch queue for it.
        .buffer_unordered(count.max(1));
    let mut out = HashMap::with_capacity(instance_ids.len());
    while let Some(batch) = batches.next().await {
        let (chunk, daily) = batch?;
        for (id, days) in chunk.iter().zip(daily) {
            out.insert(id.clone(), summarize(window, days));
        }
    }
    Ok(out)
}

/// The period of EC2's basic monitoring (seconds).
const BASIC_PERIOD: i64 = 300;

/// IMDSv1 calls answered and refused after a change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallsSince {
    pub v1_calls: u64,
    pub rejected_calls: u64,
}

/// For each (instance, change time), the calls from its change time up to
/// `now`, in one region: 250 instances per `GetMetricData`, at the finest
/// period CloudWatch keeps for data that old (1 minute for 15 days). An
/// answered call counts from the bucket that ends after the change; a
/// refused one from the 5-minute datapoint that holds the change.
pub async fn calls_since(
    cw: &dyn CloudWatchApi,
    region: &str,
    since: &[(String, i64)],
    now: i64,
) -> Result<HashMap<String, CallsSince>, AwsError> {
    let mut out = HashMap::with_capacity(since.len());
    for chunk in since.chunks(MAX_QUERIES / 2) {
        let earliest = chunk.iter().map(|(_, t)| *t).min().unwrap_or(now);
        let period = min_period_for_age(now - earliest);
        let start = earliest.div_euclid(period as i64) * period as i64;
        let end = (now.div_euclid(period as i64) + 1) * period as i64;
        let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
        let mut calls = vec![CallsSince::default(); chunk.len()];
        both_metrics(cw, region, &ids, (start, end, period), |i, metric, t, v| {
            let n = v.round().max(0.0) as u64;
            match metric {
                Metric::MetadataNoToken if t + period as i64 > chunk[i].1 => calls[i].v1_calls += n,
                // EC2's basic monitoring reports every 5 minutes, stamped at
                // the start: a datapoint up to 5 minutes before the change
                // can hold refusals after it (and none can come before).
                Metric::MetadataNoTokenRejected
                    if t + (period as i64).max(BASIC_PERIOD) > chunk[i].1 =>
                {
                    calls[i].rejected_calls += n
                }
                _ => {}
            }
        })
        .await?;
        out.extend(ids.into_iter().zip(calls));
    }
    Ok(out)
}

/// One bucket of a metric series: its start (epoch seconds) and both sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    pub t: i64,
    pub v1_calls: f64,
    pub rejected_calls: f64,
}

/// Both metrics of `ids` over `[start, end)` in buckets of `period` seconds,
/// per instance (buckets with data only, oldest first): 250 instances per
/// `GetMetricData`. The caller picks a period CloudWatch keeps for data
/// that old (see [`min_period_for_age`]).
pub async fn series(
    cw: &dyn CloudWatchApi,
    region: &str,
    ids: &[String],
    (start, end, period): (i64, i64, i32),
) -> Result<HashMap<String, Vec<Bucket>>, AwsError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_QUERIES / 2) {
        let mut buckets: Vec<BTreeMap<i64, Bucket>> = vec![BTreeMap::new(); chunk.len()];
        both_metrics(
            cw,
            region,
            chunk,
            (start, end, period),
            |i, metric, t, v| {
                let b = buckets[i].entry(t).or_insert(Bucket {
                    t,
                    ..Default::default()
                });
                match metric {
                    Metric::MetadataNoToken => b.v1_calls += v,
                    Metric::MetadataNoTokenRejected => b.rejected_calls += v,
                }
            },
        )
        .await?;
        for (id, b) in chunk.iter().zip(buckets) {
            out.insert(id.clone(), b.into_values().collect());
        }
    }
    Ok(out)
}

/// Both metrics of each of `ids` (at most 250) over `(start, end, period)`,
/// every page; `point(index in ids, metric, timestamp, value)` per datapoint.
async fn both_metrics(
    cw: &dyn CloudWatchApi,
    region: &str,
    ids: &[String],
    (start, end, period): (i64, i64, i32),
    mut point: impl FnMut(usize, Metric, i64, f64),
) -> Result<(), AwsError> {
    let mut queries = Vec::with_capacity(ids.len() * 2);
    for (i, id) in ids.iter().enumerate() {
        queries.push(MetricQuery {
            id: format!("n{i}"),
            metric: Metric::MetadataNoToken,
            instance_id: id.clone(),
        });
        queries.push(MetricQuery {
            id: format!("r{i}"),
            metric: Metric::MetadataNoTokenRejected,
            instance_id: id.clone(),
        });
    }
    let request = MetricRequest {
        queries,
        start,
        end,
        period,
    };
    let mut token = None;
    loop {
        let page = cw.get_metric_data(region, &request, token).await?;
        for series in page.series {
            let (metric, idx) = match series.id.split_at_checked(1) {
                Some(("n", idx)) => (Metric::MetadataNoToken, idx),
                Some(("r", idx)) => (Metric::MetadataNoTokenRejected, idx),
                _ => continue,
            };
            let Some(i) = idx.parse::<usize>().ok().filter(|i| *i < ids.len()) else {
                continue;
            };
            for (t, v) in series.timestamps.iter().zip(&series.values) {
                point(i, metric, *t, *v);
            }
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(()),
        }
    }
}

fn summarize(window: &Window, days: BTreeMap<i64, DayPoint>) -> InstanceUsage {
    let (first, last) = (window.start.div_euclid(DAY), window.end.div_euclid(DAY));
    let daily: Vec<DayPoint> = days
        .into_iter()
        .filter(|(d, _)| (first..last).contains(d))
        .map(|(_, p)| p)
        .collect();
    let v1: f64 = daily.iter().map(|p| p.v1_calls).sum();
    let rejected: f64 = daily.iter().map(|p| p.rejected_calls).sum();
    let last_v1 = daily
        .iter()
        .rev()
        .find(|p| p.v1_calls > 0.0)
        .map(|p| day_label(p.day));
    InstanceUsage {
        usage: Usage {
            window_days: window.days,
            v1_calls: v1.round() as u64,
            last_v1_call: last_v1,
            days_with_data: daily.len() as u32,
            rejected_calls: rejected.round() as u64,
        },
        daily,
    }
}

/// Fleet-wide totals per day of the window (days without any data
/// included, as zeros).
pub fn fleet_days(report: &ScanReport, days: &[i32]) -> Vec<FleetDay> {
    let mut by_day: BTreeMap<i32, FleetDay> = days
        .iter()
        .map(|d| {
            (
                *d,
                FleetDay {
                    day: day_label(*d),
                    ..Default::default()
                },
            )
        })
        .collect();
    for rec in &report.instances {
        for p in &rec.daily {
            if let Some(f) = by_day.get_mut(&p.day) {
                f.v1_calls += p.v1_calls.round() as u64;
                f.rejected_calls += p.rejected_calls.round() as u64;
                f.instances_with_data += 1;
            }
        }
    }
    by_day.into_values().collect()
}

/// The days a stored scan's usage window covered, rebuilt from when it ran.
pub fn scan_days(report: &ScanReport) -> Vec<i32> {
    let Some(days) = report.usage_days else {
        return Vec::new();
    };
    let when = time::OffsetDateTime::parse(
        &report.finished_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| t.unix_timestamp())
    .unwrap_or(0);
    Window::new(days, when)
        .map(|w| window_days(&w))
        .unwrap_or_default()
}

/// The day numbers of the window, oldest first.
pub fn window_days(window: &Window) -> Vec<i32> {
    let first = window.start.div_euclid(DAY) as i32;
    (0..window.days as i32).map(|d| first + d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeCloudWatch;
    use crate::clock::day_string;

    const NOW: i64 = 1_795_000_000; // 2026-11-18T...

    #[test]
    fn days_bounds() {
        assert_eq!(Window::new(0, NOW), Err(DaysOutOfRange(0)));
        assert_eq!(Window::new(456, NOW), Err(DaysOutOfRange(456)));
        assert!(Window::new(1, NOW).is_ok());
        assert!(Window::new(455, NOW).is_ok());
    }

    #[test]
    fn retention_boundaries() {
        assert_eq!(min_period_for_age(15 * DAY), 60);
        assert_eq!(min_period_for_age(15 * DAY + 1), 300);
        assert_eq!(min_period_for_age(63 * DAY), 300);
        assert_eq!(min_period_for_age(63 * DAY + 1), 3600);
        for days in [1, 14, 15, 16, 63, 64, 201, 202, 455] {
            let w = Window::new(days, NOW).unwrap();
            let oldest_age = NOW - w.start;
            assert_eq!(w.period % min_period_for_age(oldest_age), 0, "{days}");
            assert_eq!((w.end - w.start) / i64::from(w.period), i64::from(days));
            assert_eq!(w.start % DAY, 0);
            assert!(w.end > NOW && w.end - NOW <= DAY);
            // Never more datapoints per response than CloudWatch returns.
            assert!(
                w.queries_per_call * days as usize <= MAX_DATAPOINTS,
                "{days}"
            );
            assert!(w.queries_per_call <= MAX_QUERIES && w.queries_per_call.is_multiple_of(2));
        }
        assert_eq!(Window::new(14, NOW).unwrap().queries_per_call, 500);
        assert_eq!(Window::new(201, NOW).unwrap().queries_per_call, 500);
        assert_eq!(Window::new(202, NOW).unwrap().queries_per_call, 498);
        assert_eq!(Window::new(455, NOW).unwrap().queries_per_call, 220);
    }

    #[tokio::test]
    async fn four_calls_for_1000_instances() {
        let w = Window::new(14, NOW).unwrap();
        let ids: Vec<String> = (0..1000).map(|i| format!("i-{i:017x}")).collect();
        let cw = FakeCloudWatch::default();
        let usage = measure(&cw, "us-east-1", &ids, &w, &Semaphore::new(4))
            .await
            .unwrap();
        assert_eq!(usage.len(), 1000);
        assert_eq!(cw.calls(), 4);
        assert_eq!(w.calls_for(1000), 4);
        assert!(cw.max_queries() <= 500);
    }

    #[tokio::test]
    async fn batches_overlap_up_to_the_region_gate_and_no_further() {
        let w = Window::new(14, NOW).unwrap();
        let ids: Vec<String> = (0..2000).map(|i| format!("i-{i:017x}")).collect();
        for (permits, want) in [(1, 1), (3, 3), (32, 8)] {
            let cw = FakeCloudWatch::default();
            let usage = measure(&cw, "us-east-1", &ids, &w, &Semaphore::new(permits))
                .await
                .unwrap();
            assert_eq!(usage.len(), 2000);
            assert_eq!(cw.calls(), 8, "the gate never adds calls");
            assert_eq!(cw.max_in_flight(), want, "{permits} permits");
        }
    }

    #[tokio::test]
    async fn follows_next_token_and_sums_per_instance() {
        let w = Window::new(14, NOW).unwrap();
        let ids = vec!["i-00000001".to_owned(), "i-00000002".to_owned()];
        let cw = FakeCloudWatch::default();
        let today = NOW.div_euclid(DAY) * DAY;
        cw.put(
            "i-00000001",
            Metric::MetadataNoToken,
            today - 3 * DAY + 100,
            5.0,
        );
        cw.put(
            "i-00000001",
            Metric::MetadataNoToken,
            today - 3 * DAY + 200,
            2.0,
        );
        cw.put("i-00000001", Metric::MetadataNoToken, today - DAY, 0.0);
        cw.put(
            "i-00000001",
            Metric::MetadataNoToken,
            today - 20 * DAY,
            100.0,
        ); // outside
        cw.put("i-00000002", Metric::MetadataNoTokenRejected, today, 4.0);
        cw.page_size.store(1, std::sync::atomic::Ordering::SeqCst);
        let usage = measure(&cw, "us-east-1", &ids, &w, &Semaphore::new(4))
            .await
            .unwrap();
        let a = &usage["i-00000001"].usage;
        assert_eq!(a.v1_calls, 7);
        assert_eq!(a.days_with_data, 2);
        assert_eq!(
            a.last_v1_call.as_deref(),
            Some(day_string(today - 3 * DAY).as_str())
        );
        let b = &usage["i-00000002"].usage;
        assert_eq!((b.v1_calls, b.rejected_calls, b.days_with_data), (0, 4, 1));
        assert!(cw.calls() > 1, "paged");
    }

    #[tokio::test]
    async fn calls_since_each_change_only_in_one_call_per_250() {
        let cw = FakeCloudWatch::default();
        let changed = NOW - 3600;
        // Before the change: not counted. After: counted, per instance.
        cw.put("i-1", Metric::MetadataNoToken, changed - 600, 9.0);
        cw.put("i-1", Metric::MetadataNoTokenRejected, changed + 120, 2.0);
        cw.put("i-1", Metric::MetadataNoTokenRejected, changed + 900, 1.0);
        cw.put("i-2", Metric::MetadataNoToken, changed + 60, 5.0);
        let mut since: Vec<(String, i64)> = vec![("i-1".into(), changed), ("i-2".into(), changed)];
        since.extend((3..300).map(|i| (format!("i-{i}"), changed)));
        let calls = calls_since(&cw, "us-east-1", &since, NOW).await.unwrap();
        assert_eq!(
            calls["i-1"],
            CallsSince {
                v1_calls: 0,
                rejected_calls: 3
            }
        );
        assert_eq!(calls["i-2"].v1_calls, 5);
        assert_eq!(calls["i-7"], CallsSince::default());
        assert_eq!(cw.calls(), 2, "299 instances: two calls of at most 250");
    }
}
