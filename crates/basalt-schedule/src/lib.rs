//! AWS schedule expressions, as EventBridge rules (`PutRule`'s `ScheduleExpression`) and
//! EventBridge Scheduler (`CreateSchedule`'s `ScheduleExpression` and
//! `ScheduleExpressionTimezone`) accept them: parsing, validation with AWS's error text, and
//! the next fire time. Pure: no I/O, no clock.
//!
//! * `rate(value unit)`: value a positive integer; unit `minute`/`minutes`, `hour`/`hours`,
//!   `day`/`days`, singular exactly when the value is 1. Fires at `anchor + k * period`.
//! * `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: see [`cron_parse`] for the
//!   field syntax (`, - * / ? L W #`, JAN-DEC, SUN-SAT with 1 = SUN, years 1970-2199).
//! * `at(yyyy-mm-ddThh:mm:ss)` (Scheduler only): fires once.
//!
//! Scheduler evaluates cron and at in an IANA time zone. Daylight saving, as the Scheduler
//! guide describes it: a cron time that falls in the hour skipped when clocks spring forward
//! does not fire that day; a cron time in the hour repeated when clocks fall back fires once
//! (at its first occurrence); a `rate` counts elapsed time (a day is 24 hours). A one-time `at`
//! inside a skipped hour fires the length of the gap later (02:30 becomes 03:30).

mod at;
mod cron;
pub mod cron_parse;
mod error;
mod rate;
mod tz;

pub use at::At;
pub use cron::{Cron, MAX_YEAR, MIN_YEAR};
pub use error::{ErrorKind, RULE_MESSAGE, ScheduleError};
pub use rate::{Rate, RateUnit};
pub use tz::Zone;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate(value unit)`.
    Rate(Rate),
    /// `cron(...)`, with the zone it is evaluated in (boxed: it is much larger than the others).
    Cron(Box<Cron>),
    /// `at(...)`, with the zone it was read in (Scheduler only).
    At(At),
}

enum Dialect {
    Rule,
    Scheduler,
}

/// Splits `name(body)` into its kind and body.
fn split_call(expr: &str) -> Option<(&str, &str)> {
    let body = expr.strip_suffix(')')?;
    let (name, body) = body.split_once('(')?;
    if body.contains(['(', ')']) {
        return None;
    }
    Some((name, body))
}

fn parse(expr: &str, zone: Zone, dialect: Dialect) -> Result<Schedule, String> {
    let Some((name, body)) = split_call(expr) else {
        return Err(format!("{expr:?} is not rate(...), cron(...) or at(...)"));
    };
    match (name, dialect) {
        ("rate", _) => Rate::parse_body(body).map(Schedule::Rate),
        ("cron", _) => cron_parse::parse_cron_body(body, zone).map(|c| Schedule::Cron(Box::new(c))),
        ("at", Dialect::Scheduler) => At::parse_body(body, zone).map(Schedule::At),
        ("at", Dialect::Rule) => Err("at(...) is for EventBridge Scheduler, not rules".to_string()),
        _ => Err(format!("unknown schedule type {name:?}")),
    }
}

impl Schedule {
    /// EventBridge rule dialect: `rate(...)` and `cron(...)` only, evaluated in UTC. Every
    /// error reads "Parameter ScheduleExpression is not valid." (a ValidationException).
    pub fn parse_rule(expr: &str) -> Result<Schedule, ScheduleError> {
        parse(expr, Zone::UTC, Dialect::Rule).map_err(ScheduleError::rule)
    }

    /// EventBridge Scheduler dialect: `at(yyyy-mm-ddThh:mm:ss)`, `rate(...)` and `cron(...)`,
    /// evaluated in `timezone` (an IANA name such as "America/New_York"; None means UTC).
    /// Errors are ValidationExceptions: `Invalid Schedule Expression {expr}` or, for an unknown
    /// zone, `Invalid ScheduleExpressionTimezone {tz}`.
    pub fn parse_scheduler(expr: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let zone = match timezone {
            None => Zone::UTC,
            Some(name) => {
                Zone::parse(name).ok_or_else(|| ScheduleError::scheduler_timezone(name))?
            }
        };
        parse(expr, zone, Dialect::Scheduler)
            .map_err(|reason| ScheduleError::scheduler_expression(expr, reason))
    }

    /// The first fire time strictly after `after_ms` (epoch milliseconds, UTC), or None when
    /// there is none (an `at` already passed, a cron whose years have passed). For `rate` the
    /// fire times are `anchor_ms + k * period` for k >= 0 (so the anchor itself fires when
    /// `after_ms < anchor_ms`); `anchor_ms` is ignored by cron and at.
    pub fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate(r) => r.next_after(after_ms, anchor_ms),
            Schedule::Cron(c) => c.next_after(after_ms),
            Schedule::At(a) => a.next_after(after_ms),
        }
    }

    /// The time zone the schedule is evaluated in (UTC for rules and rates without one).
    pub fn zone(&self) -> Zone {
        match self {
            Schedule::Rate(_) => Zone::UTC,
            Schedule::Cron(c) => c.zone(),
            Schedule::At(a) => a.zone(),
        }
    }

    /// True for `at(...)`, which fires at most once.
    pub fn is_one_time(&self) -> bool {
        matches!(self, Schedule::At(_))
    }
}

/// The expression in canonical form (`rate(5 minutes)`, `cron(0 10 * * ? *)`,
/// `at(2030-01-01T00:00:00)`); the zone is not part of it.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Rate(r) => r.fmt(f),
            Schedule::Cron(c) => c.fmt(f),
            Schedule::At(a) => a.fmt(f),
        }
    }
}

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
