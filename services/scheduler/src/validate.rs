//! Checks of CreateSchedule and UpdateSchedule beyond the model's constraints (which the
//! gateway checks): the expression and its time zone, the date range, the flexible window
//! and the target.

use crate::targets::{Route, route};
use crate::{str_of, validation};
use basalt_core::AwsError;
use basalt_schedule::Schedule;
use serde_json::Value;

/// How far in the past a recurring schedule's StartDate may lie.
const START_GRACE_MS: i64 = 5 * 60_000;

/// A timestamp member in epoch milliseconds (the canonical form is epoch seconds).
pub(crate) fn date_ms(input: &Value, name: &str) -> Option<i64> {
    input
        .get(name)
        .and_then(Value::as_f64)
        .map(|s| (s * 1000.0).round() as i64)
}

/// The parsed schedule, once the input passed.
pub(crate) fn check(input: &Value, now_ms: i64) -> Result<Schedule, AwsError> {
    let expr = str_of(input, "ScheduleExpression").unwrap_or_default();
    let tz = str_of(input, "ScheduleExpressionTimezone");
    let schedule = Schedule::parse_scheduler(expr, tz).map_err(|e| validation(e.message()))?;

    let start = date_ms(input, "StartDate");
    let end = date_ms(input, "EndDate");
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(validation("The EndDate must be after the StartDate."));
    }
    if let Some(e) = end
        && e <= now_ms
    {
        return Err(validation("The EndDate must be in the future."));
    }
    if let Some(s) = start
        && !schedule.is_one_time()
        && s < now_ms - START_GRACE_MS
    {
        return Err(validation(
            "The StartDate you specify cannot be earlier than 5 minutes ago.",
        ));
    }

    let window = input.get("FlexibleTimeWindow").unwrap_or(&Value::Null);
    let minutes = window.get("MaximumWindowInMinutes");
    match str_of(window, "Mode") {
        Some("FLEXIBLE") if minutes.is_none() => {
            return Err(validation(
                "MaximumWindowInMinutes must be provided when FlexibleTimeWindow Mode is FLEXIBLE.",
            ));
        }
        Some("OFF") if minutes.is_some() => {
            return Err(validation(
                "MaximumWindowInMinutes must not be provided when FlexibleTimeWindow Mode is OFF.",
            ));
        }
        _ => {}
    }

    let target = input.get("Target").unwrap_or(&Value::Null);
    let route = route(str_of(target, "Arn").unwrap_or_default()).map_err(validation)?;
    if matches!(route, Route::Universal { .. })
        && let Some(body) = str_of(target, "Input")
        && !serde_json::from_str::<Value>(body).is_ok_and(|v| v.is_object())
    {
        return Err(validation(
            "Invalid RequestJson provided. Reason: Input must be a JSON object.",
        ));
    }
    if matches!(route, Route::Bus { .. }) && target.get("EventBridgeParameters").is_none() {
        return Err(validation(
            "EventBridgeParameters must be provided for an EventBridge PutEvents target.",
        ));
    }
    Ok(schedule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_900_000_000_000;

    fn input(expr: &str) -> Value {
        json!({
            "ScheduleExpression": expr,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": "arn:aws:sqs:us-east-1:123456789012:q", "RoleArn": "arn:aws:iam::123456789012:role/r"},
        })
    }

    fn message(v: &Value) -> String {
        match check(v, NOW) {
            Ok(_) => String::new(),
            Err(e) => e.message,
        }
    }

    #[test]
    fn expressions_and_zones() {
        assert!(check(&input("rate(5 minutes)"), NOW).is_ok());
        assert!(check(&input("at(2031-01-01T00:00:00)"), NOW).is_ok());
        assert_eq!(
            message(&input("rate(5 minute)")),
            "Invalid Schedule Expression rate(5 minute)"
        );
        let mut v = input("cron(0 10 * * ? *)");
        v["ScheduleExpressionTimezone"] = "Mars/Olympus".into();
        assert_eq!(
            message(&v),
            "Invalid ScheduleExpressionTimezone Mars/Olympus"
        );
        v["ScheduleExpressionTimezone"] = "Europe/Paris".into();
        assert!(check(&v, NOW).is_ok());
    }

    #[test]
    fn dates() {
        let mut v = input("rate(1 hour)");
        v["StartDate"] = json!((NOW / 1000 + 100) as f64);
        v["EndDate"] = json!((NOW / 1000 + 50) as f64);
        assert_eq!(message(&v), "The EndDate must be after the StartDate.");
        let mut v = input("rate(1 hour)");
        v["StartDate"] = json!((NOW / 1000 - 3600) as f64);
        assert_eq!(
            message(&v),
            "The StartDate you specify cannot be earlier than 5 minutes ago."
        );
        v["StartDate"] = json!((NOW / 1000 - 60) as f64);
        assert!(check(&v, NOW).is_ok());
    }

    #[test]
    fn windows_and_targets() {
        let mut v = input("rate(1 hour)");
        v["FlexibleTimeWindow"] = json!({"Mode": "FLEXIBLE"});
        assert!(message(&v).starts_with("MaximumWindowInMinutes must be provided"));
        v["FlexibleTimeWindow"] = json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10});
        assert!(check(&v, NOW).is_ok());
        v["Target"]["Arn"] = "arn:aws:scheduler:::aws-sdk:sqs:createQueue".into();
        v["Target"]["Input"] = "[]".into();
        assert!(message(&v).starts_with("Invalid RequestJson provided."));
        v["Target"]["Input"] = "{\"QueueName\":\"q\"}".into();
        assert!(check(&v, NOW).is_ok());
        v["Target"]["Arn"] = "arn:aws:events:us-east-1:123456789012:event-bus/default".into();
        assert!(message(&v).starts_with("EventBridgeParameters must be provided"));
    }
}
