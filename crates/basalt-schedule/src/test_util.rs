//! Helpers for tests: RFC 3339 instants and naive local times.

use chrono::{DateTime, NaiveDateTime, SecondsFormat};

/// Epoch milliseconds of an RFC 3339 instant such as `2024-03-01T10:00:00Z`.
pub(crate) fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp_millis()
}

/// An instant as `2024-03-01T10:00:00Z`.
pub(crate) fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A local wall-clock time such as `2024-03-10T02:30:00`.
pub(crate) fn naive(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap_or_else(|e| panic!("{s}: {e}"))
}
