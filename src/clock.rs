//! Wall-clock helpers: timestamps as RFC 3339 UTC, second precision; UTC
//! days as numbers and `YYYY-MM-DD` labels; durations for people.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero is a valid nanosecond")
        .format(&Rfc3339)
        .expect("RFC 3339 formats any UTC time")
}

pub fn now_epoch() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// An epoch as [`now`] writes times (empty if out of range).
pub fn at(epoch: i64) -> String {
    OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The epoch seconds of an RFC 3339 timestamp (as [`now`] writes them).
pub fn parse_epoch(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A duration the way people say it: `45 s`, `12 min`, `5 h`, `8 days`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// Parses `30s`, `15m`, `12h`, `7d` (or a bare number of seconds).
pub fn parse_duration(raw: &str) -> Option<std::time::Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (n, unit) = raw.split_at(split);
    let n: u64 = n.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale).map(std::time::Duration::from_secs)
}

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn day_label(day: i32) -> String {
    day_string(i64::from(day) * DAY)
}

/// `YYYY-MM-DD` of an epoch second, UTC.
pub fn day_string(epoch: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(epoch) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => epoch.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_strings() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(1_795_000_000), "2026-11-18");
        let d = (1_795_000_000 / DAY) as i32;
        assert_eq!(day_label(d), "2026-11-18");
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("7d"),
            Some(std::time::Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            parse_duration("90m"),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration("30"),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("7w"), None);
        assert_eq!(human_duration(8 * 86_400 + 5), "8 days");
        assert_eq!(human_duration(45), "45 s");
    }
}
