//! Shared vocabulary: dimensions, timestamps, pagination tokens, units, region names, and
//! the tables this service keeps (data points live in `basalt_store::metrics`).

use crate::error::{invalid_token, invalid_value};
use basalt_core::AwsError;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Alarms: key `{account}/{region}/{name}`, value [`crate::alarms::AlarmRec`].
pub(crate) const ALARMS: &str = "cloudwatch.alarms";
/// Alarm history: key `{account}/{region}/{name}\u{1}{timestamp:014}-{n}`.
pub(crate) const HISTORY: &str = "cloudwatch.history";
/// Dashboards: key `{account}/{region}/{name}`.
pub(crate) const DASHBOARDS: &str = "cloudwatch.dashboards";

pub(crate) const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

pub(crate) fn list_of<'a>(input: &'a Value, name: &str) -> &'a [Value] {
    input
        .get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn strings_of(input: &Value, name: &str) -> Vec<String> {
    list_of(input, name)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// A number member (the canonical document may carry `"NaN"`/`"Infinity"` strings).
pub(crate) fn f64_of(input: &Value, name: &str) -> Option<f64> {
    match input.get(name)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn i64_of(input: &Value, name: &str) -> Option<i64> {
    input.get(name).and_then(Value::as_i64)
}

/// A timestamp member (epoch seconds in the canonical document) in milliseconds.
pub(crate) fn time_ms(input: &Value, name: &str) -> Option<i64> {
    let secs = match input.get(name)? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.parse::<f64>().ok()?,
        _ => return None,
    };
    secs.is_finite().then(|| (secs * 1000.0).round() as i64)
}

/// Milliseconds as a canonical timestamp (epoch seconds).
pub(crate) fn ts(ms: i64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// `2024-05-01T12:00:00.000+0000`, as CloudWatch writes times in alarm messages and history.
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// `01/05/24 12:00:00`, the point times of a state reason.
pub(crate) fn short_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%d/%m/%y %H:%M:%S")
        .to_string()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A `Dimensions` list as a name → value map; `what` names the parameter in errors.
pub(crate) fn dimensions(list: &[Value], what: &str) -> Result<BTreeMap<String, String>, AwsError> {
    if list.len() > 30 {
        return Err(invalid_value(format!(
            "The collection {what} must not have a size greater than 30."
        )));
    }
    let mut out = BTreeMap::new();
    for (i, d) in list.iter().enumerate() {
        let name = str_of(d, "Name").unwrap_or_default();
        let value = str_of(d, "Value").unwrap_or_default();
        if name.is_empty() {
            return Err(crate::error::missing(format!(
                "The parameter {what}.member.{}.Name is required.",
                i + 1
            )));
        }
        if value.is_empty() {
            return Err(crate::error::missing(format!(
                "The parameter {what}.member.{}.Value is required.",
                i + 1
            )));
        }
        if out.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(invalid_value(format!(
                "No Metric may specify the same dimension name twice; {what} repeats {name}."
            )));
        }
    }
    Ok(out)
}

/// Dimensions as the wire lists them.
pub(crate) fn dimensions_json(dims: &BTreeMap<String, String>) -> Value {
    json!(
        dims.iter()
            .map(|(n, v)| json!({"Name": n, "Value": v}))
            .collect::<Vec<_>>()
    )
}

pub(crate) fn check_unit(unit: Option<&str>, what: &str) -> Result<(), AwsError> {
    match unit {
        Some(u) if !UNITS.contains(&u) => Err(invalid_value(format!(
            "The parameter {what} must be a value in the set [ {} ].",
            UNITS.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// An opaque pagination token for `value`.
pub(crate) fn token(value: &str) -> String {
    basalt_core::page_token::encode(value)
}

pub(crate) fn untoken(token: &str) -> Result<String, AwsError> {
    basalt_core::page_token::decode(token).ok_or_else(invalid_token)
}

/// The region's name as CloudWatch writes it in alarm notifications.
pub(crate) fn region_name(region: &str) -> String {
    let name = match region {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "af-south-1" => "Africa (Cape Town)",
        "ap-east-1" => "Asia Pacific (Hong Kong)",
        "ap-south-1" => "Asia Pacific (Mumbai)",
        "ap-northeast-1" => "Asia Pacific (Tokyo)",
        "ap-northeast-2" => "Asia Pacific (Seoul)",
        "ap-northeast-3" => "Asia Pacific (Osaka)",
        "ap-southeast-1" => "Asia Pacific (Singapore)",
        "ap-southeast-2" => "Asia Pacific (Sydney)",
        "ca-central-1" => "Canada (Central)",
        "eu-central-1" => "EU (Frankfurt)",
        "eu-west-1" => "EU (Ireland)",
        "eu-west-2" => "EU (London)",
        "eu-west-3" => "EU (Paris)",
        "eu-north-1" => "EU (Stockholm)",
        "eu-south-1" => "EU (Milan)",
        "me-south-1" => "Middle East (Bahrain)",
        "sa-east-1" => "South America (Sao Paulo)",
        other => return other.to_owned(),
    };
    name.to_owned()
}
