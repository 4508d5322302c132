//! IANA time zones (chrono-tz) and the mapping between local wall-clock times and instants,
//! with EventBridge Scheduler's daylight-saving rules.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// The time zone a schedule is evaluated in (UTC for EventBridge rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

impl Zone {
    /// UTC, the zone of every EventBridge rule and of a schedule without a time zone.
    pub const UTC: Zone = Zone(Tz::UTC);

    /// An IANA time zone by its exact (case-sensitive) name, e.g. `America/New_York`, `UTC`.
    pub fn parse(name: &str) -> Option<Zone> {
        name.parse::<Tz>().ok().map(Zone)
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The local wall-clock time at instant `ms` (epoch milliseconds); None beyond chrono's range.
    pub(crate) fn local_at(&self, ms: i64) -> Option<NaiveDateTime> {
        let utc = DateTime::from_timestamp_millis(ms)?;
        Some(utc.with_timezone(&self.0).naive_local())
    }

    /// When a recurring schedule whose local fire time is `local` fires, per EventBridge
    /// Scheduler: a local time that does not exist (skipped when clocks spring forward) does
    /// not fire at all; a local time that occurs twice (clocks fall back) fires once, at its
    /// first occurrence.
    pub(crate) fn recurring_instant(&self, local: NaiveDateTime) -> Option<i64> {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.timestamp_millis()),
            LocalResult::Ambiguous(first, second) => {
                Some(first.timestamp_millis().min(second.timestamp_millis()))
            }
            LocalResult::None => None,
        }
    }

    /// The instant of a one-time local time. Ambiguous: the first occurrence. Skipped (inside
    /// a spring-forward gap): moved later by the length of the gap, i.e. read with the offset
    /// in force before the transition (02:30 on a New York spring-forward day is 03:30 EDT).
    pub(crate) fn one_time_instant(&self, local: NaiveDateTime) -> i64 {
        if let Some(ms) = self.recurring_instant(local) {
            return ms;
        }
        let naive_ms = local.and_utc().timestamp_millis();
        // An instant a day before the wall-clock reading lies before the transition.
        let before = DateTime::from_timestamp_millis(naive_ms - 86_400_000)
            .map(|t| {
                self.0
                    .offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc()
            })
            .unwrap_or(0);
        naive_ms - i64::from(before) * 1000
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{iso, naive};

    #[test]
    fn parses_iana_names_exactly() {
        assert_eq!(
            Zone::parse("America/New_York").unwrap().name(),
            "America/New_York"
        );
        assert_eq!(Zone::parse("UTC"), Some(Zone::UTC));
        assert!(Zone::parse("Etc/UTC").is_some());
        assert!(Zone::parse("Asia/Kolkata").is_some());
        assert!(Zone::parse("america/new_york").is_none());
        assert!(Zone::parse("Mars/Olympus_Mons").is_none());
        assert!(Zone::parse("").is_none());
    }

    #[test]
    fn spring_forward_gap_is_skipped_for_recurring_and_shifted_for_one_time() {
        let ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(ny.recurring_instant(naive("2024-03-10T02:30:00")), None);
        assert_eq!(
            iso(ny.one_time_instant(naive("2024-03-10T02:30:00"))),
            "2024-03-10T07:30:00Z"
        );
        assert_eq!(
            iso(ny.recurring_instant(naive("2024-03-10T03:00:00")).unwrap()),
            "2024-03-10T07:00:00Z"
        );
    }

    #[test]
    fn fall_back_overlap_resolves_to_first_occurrence() {
        let ny = Zone::parse("America/New_York").unwrap();
        let t = naive("2024-11-03T01:30:00");
        assert_eq!(
            iso(ny.recurring_instant(t).unwrap()),
            "2024-11-03T05:30:00Z"
        );
        assert_eq!(iso(ny.one_time_instant(t)), "2024-11-03T05:30:00Z");
    }

    #[test]
    fn local_at_follows_offsets() {
        let ny = Zone::parse("America/New_York").unwrap();
        let ms = crate::test_util::ms("2024-11-03T06:10:00Z");
        assert_eq!(ny.local_at(ms).unwrap(), naive("2024-11-03T01:10:00"));
        let kolkata = Zone::parse("Asia/Kolkata").unwrap();
        let ms = crate::test_util::ms("2024-01-01T00:00:00Z");
        assert_eq!(kolkata.local_at(ms).unwrap(), naive("2024-01-01T05:30:00"));
    }
}
