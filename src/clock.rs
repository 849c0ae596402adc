//! Wall-clock helpers: timestamps as RFC 3339 UTC, second precision.

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
