//! A parsed `cron(...)` and the search for its next fire time.
//!
//! The search walks the local calendar field by field (year, month, day, hour, minute), jumping
//! to the next allowed value of each field and carrying into the field above when one runs out,
//! so it never steps minute by minute. Local times are then mapped to instants in the
//! schedule's zone (see [`Zone::recurring_instant`] for daylight saving).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::tz::Zone;

/// First and last year a cron expression can name.
pub const MIN_YEAR: i32 = 1970;
pub const MAX_YEAR: i32 = 2199;

/// A set of small non-negative integers (0..256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ValueSet([u64; 4]);

impl ValueSet {
    pub(crate) fn insert(&mut self, v: u32) {
        self.0[(v / 64) as usize] |= 1u64 << (v % 64);
    }

    pub(crate) fn contains(&self, v: u32) -> bool {
        v < 256 && self.0[(v / 64) as usize] & (1u64 << (v % 64)) != 0
    }

    /// The smallest member >= `v`.
    pub(crate) fn next_from(&self, v: u32) -> Option<u32> {
        if v >= 256 {
            return None;
        }
        let mut word = (v / 64) as usize;
        let mut bits = self.0[word] & (u64::MAX << (v % 64));
        loop {
            if bits != 0 {
                return Some(word as u32 * 64 + bits.trailing_zeros());
            }
            word += 1;
            if word == 4 {
                return None;
            }
            bits = self.0[word];
        }
    }
}

/// The day-of-month field (when day-of-week is `?`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DomSpec {
    /// Plain days 1..=31.
    pub(crate) days: ValueSet,
    /// `L` (0) and `L-n` (n): the last day of the month minus n.
    pub(crate) last_minus: Vec<u32>,
    /// `LW`: the last weekday (Monday to Friday) of the month.
    pub(crate) last_weekday: bool,
    /// `nW`: the weekday nearest day n, within the same month.
    pub(crate) nearest_weekday: Vec<u32>,
}

/// The day-of-week field (when day-of-month is `?`); days are 1 = SUN .. 7 = SAT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DowSpec {
    /// Plain days (`L` alone is 7, Saturday, the last day of the week).
    pub(crate) days: ValueSet,
    /// `dL`: the last day d of the month.
    pub(crate) last_of: Vec<u32>,
    /// `d#n`: the nth day d of the month.
    pub(crate) nth: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DaySpec {
    Month(DomSpec),
    Week(DowSpec),
}

/// A parsed cron expression, evaluated in its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub(crate) minutes: ValueSet,
    pub(crate) hours: ValueSet,
    pub(crate) months: ValueSet,
    /// Years as offsets from [`MIN_YEAR`].
    pub(crate) years: ValueSet,
    pub(crate) days: DaySpec,
    pub(crate) fields: [String; 6],
    pub(crate) zone: Zone,
}

pub(crate) fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// 1 = Sunday .. 7 = Saturday (the AWS numbering).
fn weekday(y: i32, m: u32, d: u32) -> u32 {
    NaiveDate::from_ymd_opt(y, m, d)
        .map(|date| date.weekday().num_days_from_sunday() + 1)
        .unwrap_or(0)
}

/// The weekday nearest day `n` of the month, never leaving the month (Quartz `nW`).
fn nearest_weekday(y: i32, m: u32, n: u32, dim: u32) -> Option<u32> {
    if n > dim {
        return None;
    }
    Some(match weekday(y, m, n) {
        7 if n == 1 => 3,       // Saturday the 1st: Monday the 3rd
        7 => n - 1,             // Saturday: the Friday before
        1 if n == dim => n - 2, // Sunday the last: the Friday before
        1 => n + 1,             // Sunday: the Monday after
        _ => n,
    })
}

impl DaySpec {
    fn matches(&self, y: i32, m: u32, d: u32, dim: u32) -> bool {
        match self {
            DaySpec::Month(s) => {
                s.days.contains(d)
                    || s.last_minus.iter().any(|&n| n < dim && dim - n == d)
                    || (s.last_weekday && nearest_weekday(y, m, dim, dim) == Some(d))
                    || s.nearest_weekday
                        .iter()
                        .any(|&n| nearest_weekday(y, m, n, dim) == Some(d))
            }
            DaySpec::Week(s) => {
                let w = weekday(y, m, d);
                s.days.contains(w)
                    || (d + 7 > dim && s.last_of.contains(&w))
                    || s.nth.iter().any(|&(dw, n)| dw == w && (d - 1) / 7 + 1 == n)
            }
        }
    }
}

impl Cron {
    /// The zone the expression is evaluated in.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The six fields as written (Minutes Hours Day-of-month Month Day-of-week Year).
    pub fn fields(&self) -> &[String; 6] {
        &self.fields
    }

    /// The first day >= `d` of month `m` that the day fields allow.
    fn next_day(&self, y: i32, m: u32, d: u32) -> Option<u32> {
        let dim = days_in_month(y, m);
        (d..=dim).find(|&dd| self.days.matches(y, m, dd, dim))
    }

    /// The first local minute >= `from` (whole minutes) that matches every field.
    pub(crate) fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let (mut y, mut mo, mut d) = (from.year(), from.month(), from.day());
        let (mut h, mut mi) = (from.hour(), from.minute());
        if y < MIN_YEAR {
            (y, mo, d, h, mi) = (MIN_YEAR, 1, 1, 0, 0);
        }
        loop {
            if y > MAX_YEAR {
                return None;
            }
            let ny = MIN_YEAR + self.years.next_from((y - MIN_YEAR) as u32)? as i32;
            if ny != y {
                (y, mo, d, h, mi) = (ny, 1, 1, 0, 0);
            }
            match self.months.next_from(mo).filter(|&m| m <= 12) {
                None => {
                    (y, mo, d, h, mi) = (y + 1, 1, 1, 0, 0);
                    continue;
                }
                Some(m) if m != mo => (mo, d, h, mi) = (m, 1, 0, 0),
                Some(_) => {}
            }
            match self.next_day(y, mo, d) {
                None => {
                    (mo, d, h, mi) = (mo + 1, 1, 0, 0);
                    if mo > 12 {
                        (y, mo) = (y + 1, 1);
                    }
                    continue;
                }
                Some(nd) if nd != d => (d, h, mi) = (nd, 0, 0),
                Some(_) => {}
            }
            match self.hours.next_from(h).filter(|&hh| hh < 24) {
                None => {
                    (d, h, mi) = (d + 1, 0, 0);
                    continue;
                }
                Some(nh) if nh != h => (h, mi) = (nh, 0),
                Some(_) => {}
            }
            match self.minutes.next_from(mi).filter(|&m| m < 60) {
                None => {
                    (h, mi) = (h + 1, 0);
                    continue;
                }
                Some(m) => {
                    return NaiveDate::from_ymd_opt(y, mo, d)
                        .and_then(|date| date.and_hms_opt(h, m, 0));
                }
            }
        }
    }

    /// The first fire instant strictly after `after_ms`.
    pub(crate) fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = match self.zone.local_at(after_ms) {
            Some(local) => local.with_second(0)?.with_nanosecond(0)?,
            None if after_ms < 0 => {
                NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1)?.and_hms_opt(0, 0, 0)?
            }
            None => return None,
        };
        let mut from = start;
        loop {
            let local = self.next_local(from)?;
            match self.zone.recurring_instant(local) {
                Some(ms) if ms > after_ms => return Some(ms),
                // Skipped by a spring-forward gap, or (inside a repeated hour) already passed.
                _ => from = local + chrono::Duration::minutes(1),
            }
        }
    }
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cron({})", self.fields.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_set_next_from() {
        let mut s = ValueSet::default();
        for v in [0, 5, 63, 64, 200] {
            s.insert(v);
        }
        assert_eq!(s.next_from(0), Some(0));
        assert_eq!(s.next_from(1), Some(5));
        assert_eq!(s.next_from(6), Some(63));
        assert_eq!(s.next_from(64), Some(64));
        assert_eq!(s.next_from(65), Some(200));
        assert_eq!(s.next_from(201), None);
        assert_eq!(s.next_from(300), None);
        assert!(s.contains(200) && !s.contains(199) && !s.contains(999));
        assert_eq!(ValueSet::default().next_from(0), None);
    }

    #[test]
    fn month_lengths_and_leap_years() {
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2024, 4), 30);
        assert_eq!(days_in_month(2024, 12), 31);
    }

    #[test]
    fn nearest_weekday_stays_in_month() {
        // June 2024: the 1st and 15th are Saturdays, the 30th a Sunday.
        assert_eq!(nearest_weekday(2024, 6, 1, 30), Some(3));
        assert_eq!(nearest_weekday(2024, 6, 15, 30), Some(14));
        assert_eq!(nearest_weekday(2024, 6, 30, 30), Some(28));
        // September 2024: the 15th is a Sunday.
        assert_eq!(nearest_weekday(2024, 9, 15, 30), Some(16));
        // A weekday is itself; a day past the month's end never matches.
        assert_eq!(nearest_weekday(2024, 6, 12, 30), Some(12));
        assert_eq!(nearest_weekday(2024, 6, 31, 30), None);
    }
}
