//! The before/after proof of a change: for each changed instance, IMDSv1
//! calls per day before its change and after it, and calls refused after
//! it; and the whole set's calls per bucket with the change marked (the
//! `MetadataNoToken` graph dropping to zero is the picture people want).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::clock::DAY;
use crate::usage::Bucket;

/// A changed instance and when its change landed (epoch seconds).
#[derive(Debug, Clone)]
pub struct Changed {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub changed_at: i64,
}

/// The window and bucket size to measure `changed` at `now`: as long before
/// the first change as the newest change has been in place (at least a day,
/// at most 14), hourly when that spans three days or less, else daily.
pub fn window(changed: &[Changed], now: i64) -> (i64, i64, i32) {
    let first = changed.iter().map(|c| c.changed_at).min().unwrap_or(now);
    let last = changed.iter().map(|c| c.changed_at).max().unwrap_or(now);
    let after = (now - last).max(0);
    let before = after.clamp(DAY, 14 * DAY);
    let span = now - (first - before);
    let period: i64 = if span <= 3 * DAY { 3600 } else { DAY };
    let start = (first - before).div_euclid(period) * period;
    let end = (now.div_euclid(period) + 1) * period;
    (start, end, period as i32)
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct InstanceEffect {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub changed_at: i64,
    pub v1_calls_before: u64,
    pub v1_calls_after: u64,
    pub rejected_calls_after: u64,
    /// Per day of data before / after (`None` without a full bucket).
    pub v1_per_day_before: Option<f64>,
    pub v1_per_day_after: Option<f64>,
}

/// One bucket of the whole set.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TotalBucket {
    pub t: i64,
    pub v1_calls: u64,
    pub rejected_calls: u64,
    /// Every instance's change had landed before this bucket began.
    pub after: bool,
    /// Some instance's change was sent inside this bucket.
    pub change: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Effect {
    pub start: i64,
    pub end: i64,
    pub period: i32,
    pub instances: Vec<InstanceEffect>,
    pub total: Vec<TotalBucket>,
    pub v1_calls_before: u64,
    pub v1_calls_after: u64,
    pub rejected_calls_after: u64,
}

fn per_day(calls: f64, secs: i64) -> Option<f64> {
    (secs >= 3600).then(|| (calls * DAY as f64 / secs as f64 * 10.0).round() / 10.0)
}

/// Splits each instance's buckets at its change: a bucket that starts at
/// or after the change is after it; one that ends at or before is before;
/// the bucket holding the change mixes both, so its answered calls count
/// on neither side (its refused calls count after: there are none before).
pub fn compute(
    changed: &[Changed],
    series: &HashMap<String, Vec<Bucket>>,
    (start, end, period): (i64, i64, i32),
    now: i64,
) -> Effect {
    let p = period as i64;
    let mut instances = Vec::with_capacity(changed.len());
    let mut total: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for c in changed {
        let buckets = series.get(&c.instance_id).map_or(&[][..], Vec::as_slice);
        let (mut before, mut after, mut rejected) = (0.0, 0.0, 0.0);
        for b in buckets {
            let t = total.entry(b.t).or_default();
            t.0 += b.v1_calls;
            t.1 += b.rejected_calls;
            if b.t + p <= c.changed_at {
                before += b.v1_calls;
            } else if b.t >= c.changed_at {
                after += b.v1_calls;
            }
            // Refusals can only come after the change: the bucket holding
            // it counts too.
            if b.t + p > c.changed_at {
                rejected += b.rejected_calls;
            }
        }
        // Whole buckets on each side, for the per-day rates.
        let before_secs = (c.changed_at.div_euclid(p) * p - start).max(0);
        let after_secs = (now - (c.changed_at.div_euclid(p) + 1) * p).max(0);
        instances.push(InstanceEffect {
            account_id: c.account_id.clone(),
            region: c.region.clone(),
            instance_id: c.instance_id.clone(),
            changed_at: c.changed_at,
            v1_calls_before: before.round() as u64,
            v1_calls_after: after.round() as u64,
            rejected_calls_after: rejected.round() as u64,
            v1_per_day_before: per_day(before, before_secs),
            v1_per_day_after: per_day(after, after_secs),
        });
    }
    let last = changed.iter().map(|c| c.changed_at).max().unwrap_or(end);
    let mut buckets = Vec::new();
    let mut t = start;
    while t < end {
        let (v1, rej) = total.get(&t).copied().unwrap_or_default();
        buckets.push(TotalBucket {
            t,
            v1_calls: v1.round() as u64,
            rejected_calls: rej.round() as u64,
            after: t >= last,
            change: changed.iter().any(|c| (t..t + p).contains(&c.changed_at)),
        });
        t += p;
    }
    Effect {
        start,
        end,
        period,
        v1_calls_before: instances.iter().map(|i| i.v1_calls_before).sum(),
        v1_calls_after: instances.iter().map(|i| i.v1_calls_after).sum(),
        rejected_calls_after: instances.iter().map(|i| i.rejected_calls_after).sum(),
        instances,
        total: buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn changed(id: &str, at: i64) -> Changed {
        Changed {
            account_id: "1".into(),
            region: "r".into(),
            instance_id: id.into(),
            changed_at: at,
        }
    }

    fn b(t: i64, v1: f64, rejected: f64) -> Bucket {
        Bucket {
            t,
            v1_calls: v1,
            rejected_calls: rejected,
        }
    }

    #[test]
    fn the_window_is_as_long_before_as_after_hourly_when_short() {
        let now = 100 * DAY;
        let (start, end, period) = window(&[changed("i", now - 2 * H)], now);
        assert_eq!(period, 3600);
        assert_eq!(start, now - 2 * H - DAY, "at least a day before");
        assert_eq!(end, now + H);
        let (start, _, period) = window(&[changed("i", now - 10 * DAY)], now);
        assert_eq!(period, DAY as i32);
        assert_eq!(start, now - 20 * DAY);
        let (start, _, _) = window(&[changed("i", now - 40 * DAY)], now);
        assert_eq!(start, now - 54 * DAY, "at most 14 days before");
    }

    #[test]
    fn calls_drop_to_zero_after_the_change_and_refusals_show() {
        let now = 100 * DAY;
        let at = now - 10 * H + 1800; // inside the bucket starting now - 10h
        let c = [changed("i-1", at), changed("i-2", at)];
        let w = window(&c, now);
        let mut series = HashMap::new();
        // Before: 6 calls an hour for 4 hours; the change hour mixes; after:
        // none answered, 2 refused in one hour.
        series.insert(
            "i-1".to_owned(),
            vec![
                b(now - 14 * H, 6.0, 0.0),
                b(now - 13 * H, 6.0, 0.0),
                b(now - 12 * H, 6.0, 0.0),
                b(now - 11 * H, 6.0, 0.0),
                b(now - 10 * H, 3.0, 1.0),
                b(now - 5 * H, 0.0, 2.0),
            ],
        );
        let e = compute(&c, &series, w, now);
        let i1 = &e.instances[0];
        assert_eq!(
            (
                i1.v1_calls_before,
                i1.v1_calls_after,
                i1.rejected_calls_after
            ),
            (24, 0, 3)
        );
        assert_eq!(i1.v1_per_day_after, Some(0.0));
        assert!(i1.v1_per_day_before.unwrap() > 0.0);
        assert_eq!(e.instances[1].v1_calls_before, 0, "no data, no calls");
        assert_eq!(
            (e.v1_calls_before, e.v1_calls_after, e.rejected_calls_after),
            (24, 0, 3)
        );
        let marked: Vec<&TotalBucket> = e.total.iter().filter(|t| t.change).collect();
        assert_eq!(marked.len(), 1);
        assert_eq!(marked[0].t, now - 10 * H);
        assert!(e.total.iter().all(|t| t.after == (t.t >= at)));
        assert_eq!(e.total.iter().map(|t| t.v1_calls).sum::<u64>(), 27);
    }
}
