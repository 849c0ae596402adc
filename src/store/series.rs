//! The daily usage series, packed into the instance's one `usage` row
//! (schema 8) instead of a row per instance per day.
//!
//! A 14-day scan of 100,000 instances wrote 1.4 million `usage_daily` rows,
//! two thirds of the database and most of the time after the last AWS
//! answer. Now each measured instance keeps, next to its totals:
//! - `series_start`: the first day with data (days since 1970-01-01, UTC);
//! - `v1_series`: a JSON array of `MetadataNoToken` sums from that day to
//!   the last day with data, `null` for a day CloudWatch had no datapoint,
//!   so "no data" and "zero calls" stay apart as they were;
//! - `rejected_series`: the same for `MetadataNoTokenRejected`, or NULL when
//!   every day's is 0 (nearly always, and never stored in vain).
//!
//! JSON, not a binary blob, so `imdsguard query` users can read it, and so
//! the `usage_daily` view (migration 8) can unpack it with SQLite's
//! `json_each` and keep answering per-day questions with the old columns.

use crate::report::DayPoint;

/// The packed columns of one instance's series; all `None` without data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Packed {
    pub start: Option<i32>,
    pub v1: Option<String>,
    pub rejected: Option<String>,
}

/// Packs `daily` (sorted by day, one point per day, as measured).
pub fn pack(daily: &[DayPoint]) -> Packed {
    let (Some(first), Some(last)) = (daily.first(), daily.last()) else {
        return Packed::default();
    };
    let len = (last.day - first.day + 1).max(1) as usize;
    let mut v1: Vec<Option<f64>> = vec![None; len];
    let mut rejected: Vec<Option<f64>> = vec![None; len];
    for p in daily {
        let i = (p.day - first.day) as usize;
        v1[i] = Some(p.v1_calls);
        rejected[i] = Some(p.rejected_calls);
    }
    let any_rejected = daily.iter().any(|p| p.rejected_calls != 0.0);
    Packed {
        start: Some(first.day),
        v1: Some(json_array(&v1)),
        rejected: any_rejected.then(|| json_array(&rejected)),
    }
}

/// Unpacks what [`pack`] wrote: the days with data, oldest first.
pub fn unpack(start: i32, v1: &str, rejected: Option<&str>) -> Result<Vec<DayPoint>, String> {
    let v1: Vec<Option<f64>> =
        serde_json::from_str(v1).map_err(|e| format!("v1_series `{v1}`: {e}"))?;
    let rejected: Vec<Option<f64>> = match rejected {
        Some(r) => serde_json::from_str(r).map_err(|e| format!("rejected_series `{r}`: {e}"))?,
        None => Vec::new(),
    };
    Ok(v1
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v1_calls| DayPoint {
                day: start + i as i32,
                v1_calls,
                rejected_calls: rejected.get(i).copied().flatten().unwrap_or(0.0),
            })
        })
        .collect())
}

/// `[0,3,null,1.5]`: whole numbers without a fraction (CloudWatch sums of
/// counts nearly always are), so a quiet fortnight is 29 bytes.
fn json_array(values: &[Option<f64>]) -> String {
    let mut s = String::with_capacity(values.len() * 2 + 2);
    s.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match v {
            None => s.push_str("null"),
            Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => s.push_str(&(*v as i64).to_string()),
            // Finite (CloudWatch sends no NaN): serde_json spells it exactly.
            Some(v) => s.push_str(
                &serde_json::Number::from_f64(*v)
                    .map_or_else(|| "null".to_owned(), |n| n.to_string()),
            ),
        }
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(day: i32, v1: f64, rejected: f64) -> DayPoint {
        DayPoint {
            day,
            v1_calls: v1,
            rejected_calls: rejected,
        }
    }

    #[test]
    fn round_trip_keeps_gaps_zeros_and_fractions() {
        let daily = vec![
            p(20_000, 0.0, 0.0),
            p(20_001, 3.0, 0.0),
            p(20_003, 1.5, 2.0),
        ];
        let packed = pack(&daily);
        assert_eq!(packed.start, Some(20_000));
        assert_eq!(packed.v1.as_deref(), Some("[0,3,null,1.5]"));
        assert_eq!(packed.rejected.as_deref(), Some("[0,0,null,2]"));
        let back = unpack(
            20_000,
            packed.v1.as_deref().unwrap(),
            packed.rejected.as_deref(),
        )
        .unwrap();
        assert_eq!(back, daily);
    }

    #[test]
    fn quiet_fortnight_is_small_and_no_rejections_store_nothing() {
        let daily: Vec<DayPoint> = (0..14).map(|d| p(20_000 + d, 0.0, 0.0)).collect();
        let packed = pack(&daily);
        assert_eq!(packed.v1.as_deref().map(str::len), Some(29));
        assert_eq!(packed.rejected, None);
        assert_eq!(
            unpack(20_000, packed.v1.as_deref().unwrap(), None).unwrap(),
            daily
        );
    }

    #[test]
    fn no_data_packs_to_nothing_and_garbage_is_an_error() {
        assert_eq!(pack(&[]), Packed::default());
        assert!(unpack(0, "[1,", None).is_err());
        assert!(unpack(0, "[1]", Some("{}")).is_err());
    }
}
