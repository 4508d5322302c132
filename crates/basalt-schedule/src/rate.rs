//! `rate(value unit)`: a fixed period, measured in elapsed time (a day is 24 hours, whatever
//! daylight saving does to the wall clock).

/// The unit of a rate expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minutes,
    Hours,
    Days,
}

impl RateUnit {
    /// Milliseconds in one unit.
    pub fn millis(self) -> i64 {
        match self {
            RateUnit::Minutes => 60_000,
            RateUnit::Hours => 3_600_000,
            RateUnit::Days => 86_400_000,
        }
    }

    fn word(self, singular: bool) -> &'static str {
        match (self, singular) {
            (RateUnit::Minutes, true) => "minute",
            (RateUnit::Minutes, false) => "minutes",
            (RateUnit::Hours, true) => "hour",
            (RateUnit::Hours, false) => "hours",
            (RateUnit::Days, true) => "day",
            (RateUnit::Days, false) => "days",
        }
    }
}

/// A parsed `rate(value unit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    value: u32,
    unit: RateUnit,
}

impl Rate {
    /// The positive count of units.
    pub fn value(&self) -> u32 {
        self.value
    }

    pub fn unit(&self) -> RateUnit {
        self.unit
    }

    /// The period in milliseconds.
    pub fn period_ms(&self) -> i64 {
        i64::from(self.value) * self.unit.millis()
    }

    /// Parses the text between `rate(` and `)`: a positive integer, one space (or more), and
    /// the unit, singular exactly when the value is 1.
    pub(crate) fn parse_body(body: &str) -> Result<Rate, String> {
        let mut parts = body.split_whitespace();
        let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("rate({body}) must be `rate(value unit)`"));
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("rate value {value:?} is not a positive integer"));
        }
        let value: u32 = value
            .parse()
            .map_err(|_| format!("rate value {value:?} is too large"))?;
        if value == 0 {
            return Err("rate value must be positive".to_string());
        }
        let (unit, singular) = match unit {
            "minute" => (RateUnit::Minutes, true),
            "minutes" => (RateUnit::Minutes, false),
            "hour" => (RateUnit::Hours, true),
            "hours" => (RateUnit::Hours, false),
            "day" => (RateUnit::Days, true),
            "days" => (RateUnit::Days, false),
            other => {
                return Err(format!(
                    "rate unit {other:?} is not minute(s), hour(s) or day(s)"
                ));
            }
        };
        if singular != (value == 1) {
            return Err(format!(
                "rate({value} {}) must be written rate({value} {})",
                unit.word(singular),
                unit.word(value == 1)
            ));
        }
        Ok(Rate { value, unit })
    }

    /// The first `anchor_ms + k * period` (k >= 0) strictly after `after_ms`.
    pub(crate) fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        if after_ms < anchor_ms {
            return Some(anchor_ms);
        }
        let period = self.period_ms();
        let k = (after_ms - anchor_ms) / period + 1;
        anchor_ms.checked_add(k.checked_mul(period)?)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rate({} {})",
            self.value,
            self.unit.word(self.value == 1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{iso, ms};

    fn rate(body: &str) -> Rate {
        Rate::parse_body(body).unwrap()
    }

    #[test]
    fn doc_examples_parse() {
        assert_eq!(rate("5 minutes").period_ms(), 300_000);
        assert_eq!(rate("1 minute").period_ms(), 60_000);
        assert_eq!(rate("1 hour").period_ms(), 3_600_000);
        assert_eq!(rate("12 hours").period_ms(), 43_200_000);
        assert_eq!(rate("1 day").period_ms(), 86_400_000);
        assert_eq!(rate("7 days").period_ms(), 7 * 86_400_000);
        assert_eq!(rate("15 minutes").to_string(), "rate(15 minutes)");
        assert_eq!(rate("1 day").to_string(), "rate(1 day)");
    }

    #[test]
    fn singular_only_for_one_and_other_errors() {
        for bad in [
            "1 minutes",
            "5 minute",
            "1 hours",
            "2 hour",
            "1 days",
            "3 day",
            "0 minutes",
            "-1 minutes",
            "+5 minutes",
            "1.5 hours",
            "5 seconds",
            "2 weeks",
            "5",
            "minutes",
            "",
            "5 Minutes",
            "5 minutes extra",
            "99999999999 minutes",
        ] {
            assert!(Rate::parse_body(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn fires_at_anchor_plus_whole_periods() {
        let r = rate("5 minutes");
        let anchor = ms("2024-03-01T10:02:30Z");
        // Strictly after the anchor: the first period.
        assert_eq!(
            iso(r.next_after(anchor, anchor).unwrap()),
            "2024-03-01T10:07:30Z"
        );
        // Before the anchor: the anchor itself (k = 0).
        assert_eq!(
            iso(r.next_after(anchor - 1, anchor).unwrap()),
            "2024-03-01T10:02:30Z"
        );
        let t = ms("2024-03-01T10:07:30Z");
        assert_eq!(
            iso(r.next_after(t, anchor).unwrap()),
            "2024-03-01T10:12:30Z"
        );
        assert_eq!(
            iso(r.next_after(t - 1, anchor).unwrap()),
            "2024-03-01T10:07:30Z"
        );
        let later = ms("2024-03-02T00:00:00Z");
        assert_eq!(
            iso(r.next_after(later, anchor).unwrap()),
            "2024-03-02T00:02:30Z"
        );
    }

    #[test]
    fn one_hour_and_seven_days() {
        let anchor = ms("2024-01-01T00:00:00Z");
        let h = rate("1 hour");
        assert_eq!(
            iso(h.next_after(ms("2024-01-01T05:59:59Z"), anchor).unwrap()),
            "2024-01-01T06:00:00Z"
        );
        let w = rate("7 days");
        assert_eq!(
            iso(w.next_after(anchor, anchor).unwrap()),
            "2024-01-08T00:00:00Z"
        );
        assert_eq!(
            iso(w.next_after(ms("2024-02-26T00:00:00Z"), anchor).unwrap()),
            "2024-03-04T00:00:00Z"
        );
    }

    #[test]
    fn days_are_24_hours_across_dst() {
        // New York springs forward on 2024-03-10; a day rate stays 24 elapsed hours.
        let d = rate("1 day");
        let anchor = ms("2024-03-09T17:00:00Z"); // 12:00 EST
        assert_eq!(
            iso(d.next_after(anchor, anchor).unwrap()),
            "2024-03-10T17:00:00Z"
        ); // 13:00 EDT
    }
}
