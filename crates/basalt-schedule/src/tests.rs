//! Tests through the public API: the AWS guides' examples with their next fire times,
//! special day forms, leap years, years running out, daylight saving, and errors.

use crate::test_util::{iso, ms};
use crate::{ErrorKind, RULE_MESSAGE, Schedule};

/// The next `n` fire times strictly after `after`, in UTC.
fn fires(s: &Schedule, after: &str, n: usize) -> Vec<String> {
    let mut t = ms(after);
    let mut out = Vec::new();
    for _ in 0..n {
        match s.next_after(t, 0) {
            Some(next) => {
                assert!(next > t);
                out.push(iso(next));
                t = next;
            }
            None => break,
        }
    }
    out
}

fn rule(expr: &str) -> Schedule {
    Schedule::parse_rule(expr).unwrap_or_else(|e| panic!("{expr}: {}", e.reason()))
}

fn zoned(expr: &str, tz: &str) -> Schedule {
    Schedule::parse_scheduler(expr, Some(tz))
        .unwrap_or_else(|e| panic!("{expr} {tz}: {}", e.reason()))
}

/// The cron examples of "Schedule expressions for rules" (also those of the Scheduler guide).
#[test]
fn rule_guide_cron_examples() {
    // 10:00 am (UTC) every day.
    assert_eq!(
        fires(&rule("cron(0 10 * * ? *)"), "2024-03-01T00:00:00Z", 3),
        [
            "2024-03-01T10:00:00Z",
            "2024-03-02T10:00:00Z",
            "2024-03-03T10:00:00Z"
        ]
    );
    // 12:15 pm every day; strictly after a fire time.
    assert_eq!(
        fires(&rule("cron(15 12 * * ? *)"), "2024-03-01T12:15:00Z", 3),
        [
            "2024-03-02T12:15:00Z",
            "2024-03-03T12:15:00Z",
            "2024-03-04T12:15:00Z"
        ]
    );
    // 6:00 pm Monday through Friday (2024-03-01 is a Friday).
    assert_eq!(
        fires(&rule("cron(0 18 ? * MON-FRI *)"), "2024-03-01T18:00:00Z", 3),
        [
            "2024-03-04T18:00:00Z",
            "2024-03-05T18:00:00Z",
            "2024-03-06T18:00:00Z"
        ]
    );
    // 8:00 am on the first day of every month.
    assert_eq!(
        fires(&rule("cron(0 8 1 * ? *)"), "2024-01-15T00:00:00Z", 3),
        [
            "2024-02-01T08:00:00Z",
            "2024-03-01T08:00:00Z",
            "2024-04-01T08:00:00Z"
        ]
    );
    // Every 15 minutes.
    assert_eq!(
        fires(&rule("cron(0/15 * * * ? *)"), "2024-03-01T00:07:30Z", 4),
        [
            "2024-03-01T00:15:00Z",
            "2024-03-01T00:30:00Z",
            "2024-03-01T00:45:00Z",
            "2024-03-01T01:00:00Z"
        ]
    );
    // Every 10 minutes Monday through Friday.
    assert_eq!(
        fires(
            &rule("cron(0/10 * ? * MON-FRI *)"),
            "2024-03-01T23:45:00Z",
            3
        ),
        [
            "2024-03-01T23:50:00Z",
            "2024-03-04T00:00:00Z",
            "2024-03-04T00:10:00Z"
        ]
    );
    // Every 5 minutes Monday through Friday between 8:00 am and 5:55 pm.
    assert_eq!(
        fires(
            &rule("cron(0/5 8-17 ? * MON-FRI *)"),
            "2024-03-01T17:52:00Z",
            3
        ),
        [
            "2024-03-01T17:55:00Z",
            "2024-03-04T08:00:00Z",
            "2024-03-04T08:05:00Z"
        ]
    );
    // Every 30 minutes Monday through Friday, 10:00 pm to 2:00 am: the hour range wraps, and
    // the early hours belong to the weekday they fall on (Saturday's are skipped, Monday's run).
    assert_eq!(
        fires(
            &rule("cron(0/30 20-2 ? * MON-FRI *)"),
            "2024-03-01T23:45:00Z",
            7
        ),
        [
            "2024-03-04T00:00:00Z",
            "2024-03-04T00:30:00Z",
            "2024-03-04T01:00:00Z",
            "2024-03-04T01:30:00Z",
            "2024-03-04T02:00:00Z",
            "2024-03-04T02:30:00Z",
            "2024-03-04T20:00:00Z",
        ]
    );
    // 9:00 am on the first Monday of each month.
    assert_eq!(
        fires(&rule("cron(0 9 ? * 2#1 *)"), "2024-01-01T10:00:00Z", 3),
        [
            "2024-02-05T09:00:00Z",
            "2024-03-04T09:00:00Z",
            "2024-04-01T09:00:00Z"
        ]
    );
}

/// The rate examples of both guides.
#[test]
fn guide_rate_examples() {
    let anchor = ms("2024-03-01T10:00:00Z");
    for (expr, first, second) in [
        (
            "rate(5 minutes)",
            "2024-03-01T10:05:00Z",
            "2024-03-01T10:10:00Z",
        ),
        (
            "rate(1 minute)",
            "2024-03-01T10:01:00Z",
            "2024-03-01T10:02:00Z",
        ),
        (
            "rate(1 hour)",
            "2024-03-01T11:00:00Z",
            "2024-03-01T12:00:00Z",
        ),
        (
            "rate(12 hours)",
            "2024-03-01T22:00:00Z",
            "2024-03-02T10:00:00Z",
        ),
        (
            "rate(1 day)",
            "2024-03-02T10:00:00Z",
            "2024-03-03T10:00:00Z",
        ),
        (
            "rate(7 days)",
            "2024-03-08T10:00:00Z",
            "2024-03-15T10:00:00Z",
        ),
    ] {
        for s in [rule(expr), zoned(expr, "America/New_York")] {
            let a = s.next_after(anchor, anchor).unwrap();
            assert_eq!(iso(a), first, "{expr}");
            assert_eq!(iso(s.next_after(a, anchor).unwrap()), second, "{expr}");
            // Before the anchor the anchor itself is next.
            assert_eq!(s.next_after(anchor - 1, anchor), Some(anchor));
        }
    }
}

#[test]
fn one_time_schedules() {
    let s = zoned("at(2022-11-20T13:00:00)", "America/Los_Angeles");
    assert!(s.is_one_time());
    assert_eq!(
        fires(&s, "2022-01-01T00:00:00Z", 3),
        ["2022-11-20T21:00:00Z"]
    );
    assert_eq!(fires(&s, "2022-11-20T21:00:00Z", 1), Vec::<String>::new());
    let utc = Schedule::parse_scheduler("at(2030-06-01T09:00:00)", None).unwrap();
    assert_eq!(
        fires(&utc, "2030-06-01T08:59:59Z", 2),
        ["2030-06-01T09:00:00Z"]
    );
    assert_eq!(utc.to_string(), "at(2030-06-01T09:00:00)");
}

#[test]
fn last_day_forms() {
    // L: the last day, leap February included.
    assert_eq!(
        fires(&rule("cron(15 8 L * ? *)"), "2024-01-31T09:00:00Z", 3),
        [
            "2024-02-29T08:15:00Z",
            "2024-03-31T08:15:00Z",
            "2024-04-30T08:15:00Z"
        ]
    );
    assert_eq!(
        fires(&rule("cron(15 8 L 2 ? *)"), "2023-01-01T00:00:00Z", 1),
        ["2023-02-28T08:15:00Z"]
    );
    // L-2: two days before the last.
    assert_eq!(
        fires(&rule("cron(0 0 L-2 * ? *)"), "2024-01-01T00:00:00Z", 3),
        [
            "2024-01-29T00:00:00Z",
            "2024-02-27T00:00:00Z",
            "2024-03-29T00:00:00Z"
        ]
    );
    // LW: the last weekday (March 31 2024 is a Sunday, June 30 a Sunday).
    assert_eq!(
        fires(&rule("cron(0 12 LW * ? *)"), "2024-02-01T00:00:00Z", 5),
        [
            "2024-02-29T12:00:00Z",
            "2024-03-29T12:00:00Z",
            "2024-04-30T12:00:00Z",
            "2024-05-31T12:00:00Z",
            "2024-06-28T12:00:00Z",
        ]
    );
    // Day-of-week L alone: Saturday, the last day of the week.
    assert_eq!(
        fires(&rule("cron(0 12 ? * L *)"), "2024-03-01T00:00:00Z", 3),
        [
            "2024-03-02T12:00:00Z",
            "2024-03-09T12:00:00Z",
            "2024-03-16T12:00:00Z"
        ]
    );
    // 5L: the last Thursday; 6L (FRIL): the last Friday.
    assert_eq!(
        fires(&rule("cron(0 12 ? * 5L *)"), "2024-01-01T00:00:00Z", 3),
        [
            "2024-01-25T12:00:00Z",
            "2024-02-29T12:00:00Z",
            "2024-03-28T12:00:00Z"
        ]
    );
    assert_eq!(
        fires(&rule("cron(0 12 ? * FRIL *)"), "2024-01-01T00:00:00Z", 3),
        [
            "2024-01-26T12:00:00Z",
            "2024-02-23T12:00:00Z",
            "2024-03-29T12:00:00Z"
        ]
    );
}

#[test]
fn nearest_weekday_forms() {
    // 15W: June 15 2024 is a Saturday (-> Friday 14), September 15 a Sunday (-> Monday 16).
    assert_eq!(
        fires(&rule("cron(0 9 15W * ? *)"), "2024-05-31T00:00:00Z", 4),
        [
            "2024-06-14T09:00:00Z",
            "2024-07-15T09:00:00Z",
            "2024-08-15T09:00:00Z",
            "2024-09-16T09:00:00Z"
        ]
    );
    // 1W never moves into the previous month: June 1 2024 (Saturday) -> Monday 3.
    assert_eq!(
        fires(&rule("cron(0 9 1W * ? *)"), "2024-05-31T00:00:00Z", 1),
        ["2024-06-03T09:00:00Z"]
    );
    // 31W fires only in 31-day months, never in the next one: March 31 2024 is a Sunday.
    assert_eq!(
        fires(&rule("cron(0 9 31W * ? *)"), "2024-03-01T00:00:00Z", 3),
        [
            "2024-03-29T09:00:00Z",
            "2024-05-31T09:00:00Z",
            "2024-07-31T09:00:00Z"
        ]
    );
}

#[test]
fn nth_weekday_forms() {
    // 3#2: the second Tuesday.
    assert_eq!(
        fires(&rule("cron(0 12 ? * 3#2 *)"), "2024-01-01T00:00:00Z", 3),
        [
            "2024-01-09T12:00:00Z",
            "2024-02-13T12:00:00Z",
            "2024-03-12T12:00:00Z"
        ]
    );
    // 2#5: the fifth Monday, only in months that have one.
    assert_eq!(
        fires(&rule("cron(0 12 ? * 2#5 *)"), "2024-01-01T00:00:00Z", 3),
        [
            "2024-01-29T12:00:00Z",
            "2024-04-29T12:00:00Z",
            "2024-07-29T12:00:00Z"
        ]
    );
    assert_eq!(
        fires(&rule("cron(0 12 ? * SUN#1 *)"), "2024-01-01T00:00:00Z", 3),
        [
            "2024-01-07T12:00:00Z",
            "2024-02-04T12:00:00Z",
            "2024-03-03T12:00:00Z"
        ]
    );
}

#[test]
fn leap_years_and_years_running_out() {
    assert_eq!(
        fires(&rule("cron(0 12 29 2 ? *)"), "2024-03-01T00:00:00Z", 2),
        ["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"]
    );
    // 2100 is not a leap year.
    assert_eq!(
        fires(
            &rule("cron(0 0 29 2 ? 2100-2104)"),
            "2099-01-01T00:00:00Z",
            2
        ),
        ["2104-02-29T00:00:00Z"]
    );
    // A year that has passed.
    let s = rule("cron(0 0 1 1 ? 2020)");
    assert_eq!(
        fires(&s, "2019-06-01T00:00:00Z", 2),
        ["2020-01-01T00:00:00Z"]
    );
    assert_eq!(s.next_after(ms("2021-01-01T00:00:00Z"), 0), None);
    // The last possible minute.
    let s = rule("cron(59 23 31 12 ? 2199)");
    assert_eq!(
        fires(&s, "2199-01-01T00:00:00Z", 2),
        ["2199-12-31T23:59:00Z"]
    );
    // A date that never exists (found to be None without looping minute by minute).
    assert_eq!(rule("cron(0 0 30 2 ? *)").next_after(0, 0), None);
    // Before 1970 the search starts in 1970.
    assert_eq!(
        fires(&rule("cron(0 0 1 1 ? *)"), "1960-01-01T00:00:00Z", 1),
        ["1970-01-01T00:00:00Z"]
    );
    assert_eq!(rule("cron(0 0 * * ? *)").next_after(i64::MAX, 0), None);
    assert_eq!(
        iso(rule("cron(0 0 * * ? *)").next_after(i64::MIN, 0).unwrap()),
        "1970-01-01T00:00:00Z"
    );
}

#[test]
fn dst_spring_forward_skips_the_missing_local_time() {
    // New York: 2024-03-10 02:00 EST becomes 03:00 EDT; 02:30 does not exist that day.
    assert_eq!(
        fires(
            &zoned("cron(30 2 * * ? *)", "America/New_York"),
            "2024-03-09T00:00:00Z",
            3
        ),
        [
            "2024-03-09T07:30:00Z",
            "2024-03-11T06:30:00Z",
            "2024-03-12T06:30:00Z"
        ]
    );
    assert_eq!(
        fires(
            &zoned("cron(0/30 * * * ? *)", "America/New_York"),
            "2024-03-10T06:10:00Z",
            3
        ),
        [
            "2024-03-10T06:30:00Z",
            "2024-03-10T07:00:00Z",
            "2024-03-10T07:30:00Z"
        ]
    );
    // The wall-clock time is kept across the change: 09:00 is 14:00Z in EST, 13:00Z in EDT.
    assert_eq!(
        fires(
            &zoned("cron(0 9 * * ? *)", "America/New_York"),
            "2024-03-08T00:00:00Z",
            4
        ),
        [
            "2024-03-08T14:00:00Z",
            "2024-03-09T14:00:00Z",
            "2024-03-10T13:00:00Z",
            "2024-03-11T13:00:00Z"
        ]
    );
    // London: 2024-03-31 01:00 GMT becomes 02:00 BST.
    assert_eq!(
        fires(
            &zoned("cron(30 1 * * ? *)", "Europe/London"),
            "2024-03-30T00:00:00Z",
            2
        ),
        ["2024-03-30T01:30:00Z", "2024-04-01T00:30:00Z"]
    );
}

#[test]
fn dst_fall_back_fires_repeated_local_time_once() {
    // New York: 2024-11-03 02:00 EDT becomes 01:00 EST; 01:30 happens twice, fires once.
    assert_eq!(
        fires(
            &zoned("cron(30 1 * * ? *)", "America/New_York"),
            "2024-11-02T00:00:00Z",
            3
        ),
        [
            "2024-11-02T05:30:00Z",
            "2024-11-03T05:30:00Z",
            "2024-11-04T06:30:00Z"
        ]
    );
    let every_half_hour = zoned("cron(0/30 * * * ? *)", "America/New_York");
    assert_eq!(
        fires(&every_half_hour, "2024-11-03T04:10:00Z", 5),
        [
            "2024-11-03T04:30:00Z",
            "2024-11-03T05:00:00Z",
            "2024-11-03T05:30:00Z",
            "2024-11-03T07:00:00Z",
            "2024-11-03T07:30:00Z",
        ]
    );
    // From inside the repeated hour's second pass (01:10 EST): the next new local time.
    assert_eq!(
        fires(&every_half_hour, "2024-11-03T06:10:00Z", 1),
        ["2024-11-03T07:00:00Z"]
    );
    // Sydney (southern hemisphere): 2024-04-07 03:00 AEDT becomes 02:00 AEST.
    assert_eq!(
        fires(
            &zoned("cron(30 2 * * ? *)", "Australia/Sydney"),
            "2024-04-05T00:00:00Z",
            3
        ),
        [
            "2024-04-05T15:30:00Z",
            "2024-04-06T15:30:00Z",
            "2024-04-07T16:30:00Z"
        ]
    );
}

#[test]
fn zones_without_dst_and_zone_dates() {
    assert_eq!(
        fires(
            &zoned("cron(0 9 * * ? *)", "Asia/Kolkata"),
            "2024-01-01T00:00:00Z",
            2
        ),
        ["2024-01-01T03:30:00Z", "2024-01-02T03:30:00Z"]
    );
    // Day, month and year fields are read in the zone: Tokyo's new year is 15:00Z.
    assert_eq!(
        fires(
            &zoned("cron(0 0 1 1 ? 2025)", "Asia/Tokyo"),
            "2024-06-01T00:00:00Z",
            2
        ),
        ["2024-12-31T15:00:00Z"]
    );
    // Day of week in the zone: Monday 00:30 in Auckland is still Sunday in UTC.
    assert_eq!(
        fires(
            &zoned("cron(30 0 ? * MON *)", "Pacific/Auckland"),
            "2024-07-01T00:00:00Z",
            1
        ),
        ["2024-07-07T12:30:00Z"]
    );
    assert_eq!(
        zoned("cron(30 0 ? * MON *)", "Pacific/Auckland")
            .zone()
            .name(),
        "Pacific/Auckland"
    );
}

#[test]
fn step_by_fields_matches_minute_by_minute_search() {
    let cases = [
        ("cron(0/7 */5 * * ? *)", "UTC"),
        ("cron(13 1,2,3 ? * 2#2,L *)", "America/New_York"),
        ("cron(0/30 20-2 ? * MON-FRI *)", "Europe/London"),
        ("cron(* 1-2 * * ? *)", "America/New_York"),
        ("cron(45 23 L-1,LW,10W * ? *)", "Australia/Sydney"),
        ("cron(5 0 ? * 1L,3#5 *)", "UTC"),
        ("cron(0 0 29 * ? *)", "UTC"),
    ];
    for (expr, tz) in cases {
        let s = zoned(expr, tz);
        let Schedule::Cron(c) = &s else { panic!() };
        let zone = c.zone();
        // Brute force: the first whole UTC minute after `after` whose local time matches and
        // is that local time's first occurrence.
        let brute = |after: i64| -> Option<i64> {
            let mut t = after.div_euclid(60_000) * 60_000 + 60_000;
            for _ in 0..(70 * 24 * 60) {
                let local = zone.local_at(t).unwrap();
                if c.next_local(local) == Some(local) && zone.recurring_instant(local) == Some(t) {
                    return Some(t);
                }
                t += 60_000;
            }
            None
        };
        for start in [
            "2024-03-09T18:17:00Z",
            "2024-11-02T22:59:30Z",
            "2024-03-30T23:00:00Z",
            "2024-04-06T10:00:00Z",
        ] {
            let mut t = ms(start);
            for _ in 0..40 {
                let want = brute(t);
                assert_eq!(s.next_after(t, 0), want, "{expr} {tz} after {}", iso(t));
                let Some(next) = want else { break };
                t = next;
            }
        }
    }
}

#[test]
fn rule_errors_use_eventbridge_text() {
    for bad in [
        "at(2030-01-01T00:00:00)",
        "rate(0 minutes)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(5 seconds)",
        "rate(5 minutes",
        "rate 5 minutes",
        "Rate(5 minutes)",
        " rate(5 minutes)",
        "rate(5 minutes) ",
        "cron(0 10 * * ? *))",
        "cron(*/1 * * * *)",
        "cron(7 20 * * 1-7 *)",
        "cron(15 12 ? * -1 *)",
        "cron(*/60 * * * ? *)",
        "cron (0 10 * * ? *)",
        "every(5 minutes)",
        "",
    ] {
        let e = Schedule::parse_rule(bad).expect_err(bad);
        assert_eq!(e.to_string(), RULE_MESSAGE, "{bad}");
        assert_eq!(e.message(), "Parameter ScheduleExpression is not valid.");
        assert_eq!(e.code(), "ValidationException");
        assert_eq!(e.kind(), ErrorKind::Expression);
        assert!(!e.reason().is_empty());
    }
    // Real-world expressions AWS accepts.
    for good in [
        "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
        "cron(30-30 13-13 ? * 2,4,6 *)",
        "cron(1-31/30 1-1 ? * 1,7 *)",
        "cron( 0 10 * * ? * )",
        "rate(1 minute)",
    ] {
        assert!(Schedule::parse_rule(good).is_ok(), "{good}");
    }
}

#[test]
fn scheduler_errors() {
    let e = Schedule::parse_scheduler("rate(0 minutes)", None).unwrap_err();
    assert_eq!(e.message(), "Invalid Schedule Expression rate(0 minutes)");
    assert_eq!(e.kind(), ErrorKind::Expression);
    let e = Schedule::parse_scheduler("at(2024-02-30T00:00:00)", Some("UTC")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Expression);
    let e = Schedule::parse_scheduler("rate(5 minutes)", Some("Mars/Olympus_Mons")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timezone);
    assert_eq!(
        e.message(),
        "Invalid ScheduleExpressionTimezone Mars/Olympus_Mons"
    );
    assert!(Schedule::parse_scheduler("cron(0 10 * * ? *)", Some("")).is_err());
    assert!(Schedule::parse_scheduler("cron(0 10 * * ? *)", Some("UTC")).is_ok());
}

#[test]
fn display_is_canonical() {
    assert_eq!(rule("rate(5 minutes)").to_string(), "rate(5 minutes)");
    assert_eq!(
        rule("cron( 0  10 * * ? * )").to_string(),
        "cron(0 10 * * ? *)"
    );
    assert_eq!(rule("cron(0 10 * * ? *)").zone().name(), "UTC");
    assert!(!rule("cron(0 10 * * ? *)").is_one_time());
}
