//! Timestamps in the three AWS wire formats. Canonically a timestamp is epoch seconds
//! (an integer when whole, else a float with millisecond precision).

use basalt_spec::TimestampFormat;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Number, Value};

pub fn to_canonical(secs: f64) -> Value {
    if secs.fract() == 0.0 && secs.abs() < 9.0e15 {
        Value::Number(Number::from(secs as i64))
    } else {
        Number::from_f64((secs * 1000.0).round() / 1000.0)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

pub fn from_canonical(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_any(s),
        _ => None,
    }
}

/// Parses a timestamp in `fmt`, falling back to the other formats (clients are not always
/// consistent, and being lenient on input costs nothing).
pub fn parse(s: &str, fmt: TimestampFormat) -> Option<f64> {
    let first = match fmt {
        TimestampFormat::Iso8601 => parse_iso8601(s),
        TimestampFormat::Rfc822 => parse_http_date(s),
        TimestampFormat::UnixTimestamp => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
    };
    first.or_else(|| parse_any(s))
}

pub fn parse_any(s: &str) -> Option<f64> {
    let s = s.trim();
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .or_else(|| parse_iso8601(s))
        .or_else(|| parse_http_date(s))
}

fn parse_iso8601(s: &str) -> Option<f64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(secs_of(dt.with_timezone(&Utc)));
    }
    // Without an offset (some clients omit the `Z`).
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(secs_of(Utc.from_utc_datetime(&naive)));
        }
    }
    None
}

fn parse_http_date(s: &str) -> Option<f64> {
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(secs_of(dt.with_timezone(&Utc)));
    }
    let trimmed = s.trim_end_matches(" GMT").trim_end_matches(" UTC");
    for fmt in [
        "%a, %d %b %Y %H:%M:%S%.f",
        "%A, %d-%b-%y %H:%M:%S",
        "%a %b %e %H:%M:%S %Y",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(trimmed, fmt) {
            return Some(secs_of(Utc.from_utc_datetime(&naive)));
        }
    }
    None
}

fn secs_of(dt: DateTime<Utc>) -> f64 {
    dt.timestamp() as f64 + f64::from(dt.timestamp_subsec_millis()) / 1000.0
}

fn datetime(secs: f64) -> DateTime<Utc> {
    let whole = secs.floor();
    let millis = ((secs - whole) * 1000.0).round() as u32;
    let (whole, millis) = if millis >= 1000 {
        (whole + 1.0, 0)
    } else {
        (whole, millis)
    };
    Utc.timestamp_opt(whole as i64, millis * 1_000_000)
        .single()
        .unwrap_or_default()
}

pub fn format(secs: f64, fmt: TimestampFormat) -> Value {
    match fmt {
        TimestampFormat::UnixTimestamp => to_canonical(secs),
        TimestampFormat::Iso8601 => Value::String(format_iso8601(secs)),
        TimestampFormat::Rfc822 => Value::String(format_http_date(secs)),
    }
}

pub fn format_iso8601(secs: f64) -> String {
    let dt = datetime(secs);
    if dt.timestamp_subsec_millis() == 0 {
        dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

pub fn format_http_date(secs: f64) -> String {
    let dt = datetime(secs);
    if dt.timestamp_subsec_millis() == 0 {
        dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    } else {
        dt.format("%a, %d %b %Y %H:%M:%S%.3f GMT").to_string()
    }
}

/// Formats an epoch as text in `fmt` (headers, query strings, XML).
pub fn format_text(secs: f64, fmt: TimestampFormat) -> String {
    match format(secs, fmt) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let t = 946845296.0;
        assert_eq!(format_iso8601(t), "2000-01-02T20:34:56Z");
        assert_eq!(format_http_date(t), "Sun, 02 Jan 2000 20:34:56 GMT");
        assert_eq!(
            parse("2000-01-02T20:34:56Z", TimestampFormat::Iso8601),
            Some(t)
        );
        assert_eq!(
            parse("Sun, 02 Jan 2000 20:34:56 GMT", TimestampFormat::Rfc822),
            Some(t)
        );
        assert_eq!(parse("946845296", TimestampFormat::UnixTimestamp), Some(t));
        assert_eq!(
            parse("2000-01-02T20:34:56.123Z", TimestampFormat::Iso8601),
            Some(t + 0.123)
        );
        assert_eq!(format_iso8601(t + 0.123), "2000-01-02T20:34:56.123Z");
        assert_eq!(to_canonical(t), serde_json::json!(946845296));
        assert_eq!(to_canonical(1.5), serde_json::json!(1.5));
        assert_eq!(parse("garbage", TimestampFormat::Iso8601), None);
    }
}
