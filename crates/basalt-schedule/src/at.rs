//! `at(yyyy-mm-ddThh:mm:ss)`: a one-time schedule, read in the schedule's time zone.

use chrono::{NaiveDate, NaiveDateTime};

use crate::tz::Zone;

/// A parsed one-time schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    local: NaiveDateTime,
    zone: Zone,
    instant_ms: i64,
}

impl At {
    /// The wall-clock time as written.
    pub fn local(&self) -> NaiveDateTime {
        self.local
    }

    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The instant it fires (epoch milliseconds). A local time skipped by a spring-forward
    /// transition fires the length of the gap later; one that occurs twice fires at its first.
    pub fn instant_ms(&self) -> i64 {
        self.instant_ms
    }

    /// Parses the text between `at(` and `)`: exactly `yyyy-mm-ddThh:mm:ss`.
    pub(crate) fn parse_body(body: &str, zone: Zone) -> Result<At, String> {
        let b = body.as_bytes();
        let shape_ok = b.len() == 19
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(format!("at({body}) must be at(yyyy-mm-ddThh:mm:ss)"));
        }
        let num =
            |r: std::ops::Range<usize>| -> u32 { body[r].parse().expect("digits checked above") };
        let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
        let (h, mi, s) = (num(11..13), num(14..16), num(17..19));
        let local = NaiveDate::from_ymd_opt(y as i32, mo, d)
            .and_then(|date| date.and_hms_opt(h, mi, s))
            .ok_or_else(|| format!("at({body}) is not a valid date and time"))?;
        Ok(At {
            local,
            zone,
            instant_ms: zone.one_time_instant(local),
        })
    }

    pub(crate) fn next_after(&self, after_ms: i64) -> Option<i64> {
        (self.instant_ms > after_ms).then_some(self.instant_ms)
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at({})", self.local.format("%Y-%m-%dT%H:%M:%S"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{iso, ms};

    fn at(body: &str, tz: &str) -> At {
        At::parse_body(body, Zone::parse(tz).unwrap()).unwrap()
    }

    #[test]
    fn utc_and_zoned() {
        assert_eq!(
            iso(at("2022-11-20T13:00:00", "UTC").instant_ms()),
            "2022-11-20T13:00:00Z"
        );
        // The Scheduler guide's one-time example time, read in Los Angeles (PST, UTC-8).
        assert_eq!(
            iso(at("2022-11-20T13:00:00", "America/Los_Angeles").instant_ms()),
            "2022-11-20T21:00:00Z"
        );
        // Summer in Los Angeles: PDT, UTC-7.
        assert_eq!(
            iso(at("2023-07-04T09:00:00", "America/Los_Angeles").instant_ms()),
            "2023-07-04T16:00:00Z"
        );
        assert_eq!(
            iso(at("2024-01-01T00:00:00", "Asia/Kolkata").instant_ms()),
            "2023-12-31T18:30:00Z"
        );
        assert_eq!(
            at("2024-02-29T23:59:59", "UTC").to_string(),
            "at(2024-02-29T23:59:59)"
        );
    }

    #[test]
    fn fires_once_then_never() {
        let a = at("2030-01-01T00:00:00", "UTC");
        let t = ms("2030-01-01T00:00:00Z");
        assert_eq!(a.next_after(t - 1), Some(t));
        assert_eq!(a.next_after(t), None);
        assert_eq!(a.next_after(t + 60_000), None);
    }

    #[test]
    fn dst_edges() {
        assert_eq!(
            iso(at("2024-03-10T02:30:00", "America/New_York").instant_ms()),
            "2024-03-10T07:30:00Z"
        );
        assert_eq!(
            iso(at("2024-11-03T01:30:00", "America/New_York").instant_ms()),
            "2024-11-03T05:30:00Z"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "2024-02-30T00:00:00",
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T00:60:00",
            "2024-01-01T00:00:60",
            "2024-1-01T00:00:00",
            "2024-01-01 00:00:00",
            "2024-01-01T00:00",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.000",
            "",
            " 2024-01-01T00:00:00",
        ] {
            assert!(
                At::parse_body(bad, Zone::UTC).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(At::parse_body("2024-02-29T00:00:00", Zone::UTC).is_ok());
    }
}
