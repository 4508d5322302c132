//! Time periods (`5m`, `1h`, ...) and the rounding `bin`, `datefloor` and `dateceil` do.

use chrono::{DateTime, Datelike, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// A number of units, as written after `bin(`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    pub n: u64,
    pub unit: Unit,
}

impl Period {
    /// Reads the unit of a period such as `5m`. The stats page lists the units and their
    /// abbreviations, and says a trailing `s` pluralises any that is longer than one letter
    /// (`hr` and `hrs` both mean hours).
    pub fn parse(n: u64, unit: &str) -> Option<Period> {
        let lower = unit.to_ascii_lowercase();
        let singular = match lower.strip_suffix('s') {
            Some(s) if s.len() > 1 => s,
            _ => lower.as_str(),
        };
        let unit = match singular {
            "ms" | "msec" | "millisecond" => Unit::Millisecond,
            "s" | "sec" | "second" => Unit::Second,
            "m" | "min" | "minute" => Unit::Minute,
            "h" | "hr" | "hour" => Unit::Hour,
            "d" | "day" => Unit::Day,
            "w" | "week" => Unit::Week,
            "mo" | "mon" | "month" => Unit::Month,
            "q" | "qtr" | "quarter" => Unit::Quarter,
            "y" | "yr" | "year" => Unit::Year,
            _ => return None,
        };
        (n > 0).then_some(Period { n, unit })
    }

    /// Length in milliseconds for the fixed-length units; months and longer vary.
    fn fixed_ms(&self) -> Option<i64> {
        let per: i64 = match self.unit {
            Unit::Millisecond => 1,
            Unit::Second => 1_000,
            Unit::Minute => 60_000,
            Unit::Hour => 3_600_000,
            Unit::Day => 86_400_000,
            Unit::Week => 7 * 86_400_000,
            Unit::Month | Unit::Quarter | Unit::Year => return None,
        };
        i64::try_from(self.n).ok()?.checked_mul(per)
    }

    fn months(&self) -> Option<i64> {
        let per = match self.unit {
            Unit::Month => 1,
            Unit::Quarter => 3,
            Unit::Year => 12,
            _ => return None,
        };
        i64::try_from(self.n).ok()?.checked_mul(per)
    }

    /// Where buckets start. Weeks start on Monday (1970-01-05), since the docs do not say and
    /// the epoch itself was a Thursday; every other fixed unit counts from the epoch, which puts
    /// days at midnight UTC.
    fn origin(&self) -> i64 {
        if self.unit == Unit::Week {
            4 * 86_400_000
        } else {
            0
        }
    }

    /// Start of the bucket holding `ms`. `None` when out of the representable range.
    pub fn floor(&self, ms: i64) -> Option<i64> {
        if let Some(len) = self.fixed_ms() {
            let origin = self.origin();
            let k = ms.checked_sub(origin)?.div_euclid(len);
            return k.checked_mul(len)?.checked_add(origin);
        }
        let months = self.months()?;
        let d = DateTime::from_timestamp_millis(ms)?.date_naive();
        let index = i64::from(d.year()) * 12 + i64::from(d.month0());
        month_start(index.div_euclid(months).checked_mul(months)?)
    }

    /// `ms` itself when it starts a bucket, else the start of the next bucket.
    pub fn ceil(&self, ms: i64) -> Option<i64> {
        let f = self.floor(ms)?;
        if f == ms {
            return Some(ms);
        }
        if let Some(len) = self.fixed_ms() {
            return f.checked_add(len);
        }
        let d = DateTime::from_timestamp_millis(f)?.date_naive();
        let index = i64::from(d.year()) * 12 + i64::from(d.month0());
        month_start(index.checked_add(self.months()?)?)
    }
}

/// Epoch milliseconds of the first instant of month `index` (`year * 12 + month0`).
fn month_start(index: i64) -> Option<i64> {
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
    let date = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Renders epoch milliseconds the way Insights shows timestamps: `2024-01-02 03:04:05.678`, UTC.
pub(crate) fn render(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap();
        Period::parse(s[..split].parse().unwrap(), &s[split..]).unwrap()
    }

    fn ms(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.3f")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn units_and_plurals_from_the_stats_page() {
        // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Stats.html
        for (s, unit) in [
            ("1ms", Unit::Millisecond),
            ("1msec", Unit::Millisecond),
            ("1msecs", Unit::Millisecond),
            ("1s", Unit::Second),
            ("1secs", Unit::Second),
            ("1m", Unit::Minute),
            ("1mins", Unit::Minute),
            ("1h", Unit::Hour),
            ("1hr", Unit::Hour),
            ("1hrs", Unit::Hour),
            ("1d", Unit::Day),
            ("1days", Unit::Day),
            ("1w", Unit::Week),
            ("1mo", Unit::Month),
            ("1mon", Unit::Month),
            ("1months", Unit::Month),
            ("1q", Unit::Quarter),
            ("1qtr", Unit::Quarter),
            ("1y", Unit::Year),
            ("1yrs", Unit::Year),
            ("1H", Unit::Hour),
        ] {
            assert_eq!(p(s).unit, unit, "{s}");
        }
        assert_eq!(Period::parse(5, "x"), None);
        assert_eq!(Period::parse(0, "m"), None);
        // One-letter units take no plural `s`.
        assert_eq!(Period::parse(1, "hs"), None);
    }

    #[test]
    fn floor_and_ceil() {
        let t = ms("2024-01-02 03:04:05.678");
        assert_eq!(render(p("5m").floor(t).unwrap()), "2024-01-02 03:00:00.000");
        assert_eq!(render(p("5m").ceil(t).unwrap()), "2024-01-02 03:05:00.000");
        assert_eq!(render(p("1h").floor(t).unwrap()), "2024-01-02 03:00:00.000");
        assert_eq!(render(p("1d").floor(t).unwrap()), "2024-01-02 00:00:00.000");
        // 2024-01-02 was a Tuesday.
        assert_eq!(render(p("1w").floor(t).unwrap()), "2024-01-01 00:00:00.000");
        assert_eq!(render(p("1mo").ceil(t).unwrap()), "2024-02-01 00:00:00.000");
        assert_eq!(
            render(p("1q").floor(ms("2024-05-09 00:00:00.000")).unwrap()),
            "2024-04-01 00:00:00.000"
        );
        assert_eq!(render(p("1y").ceil(t).unwrap()), "2025-01-01 00:00:00.000");
        let aligned = ms("2024-01-02 03:05:00.000");
        assert_eq!(p("5m").ceil(aligned), Some(aligned));
        // Before the epoch, buckets still start on the boundary below.
        assert_eq!(
            render(p("1h").floor(-1).unwrap()),
            "1969-12-31 23:00:00.000"
        );
    }

    #[test]
    fn extremes_do_not_overflow() {
        let huge = Period::parse(u64::MAX, "w").unwrap();
        assert_eq!(huge.floor(0), None);
        assert!(p("1mo").floor(i64::MAX).is_none());
        let _ = p("1h").floor(i64::MIN);
        let _ = p("1y").ceil(i64::MIN);
        assert_eq!(render(i64::MAX), i64::MAX.to_string());
    }
}
