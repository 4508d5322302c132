//! Date/time functions: `$now`, `$millis`, `$fromMillis`, `$toMillis`.

use super::{Focus, arg};
use crate::error::JsonataError;
use crate::value::Value;
use chrono::{DateTime, SecondsFormat, Utc};

type R = Result<Value, JsonataError>;

pub(crate) fn millis(f: &Focus, _: Vec<Value>) -> R {
    Ok(Value::Number(f.ctx.timestamp as f64))
}

pub(crate) fn now(f: &Focus, args: Vec<Value>) -> R {
    let mut a = vec![Value::Number(f.ctx.timestamp as f64)];
    a.extend(args);
    from_millis(f, a)
}

pub(crate) fn iso(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub(crate) fn from_millis(_: &Focus, args: Vec<Value>) -> R {
    let Value::Number(ms) = arg(&args, 0) else { return Ok(Value::Undefined) };
    if arg(&args, 1).is_undefined() && arg(&args, 2).is_undefined() {
        return Ok(iso(ms.floor() as i64).map(|s| Value::string(&s)).unwrap_or_default());
    }
    Err(JsonataError::custom("D3132", "date/time pictures are not implemented yet"))
}

pub(crate) fn to_millis(_: &Focus, args: Vec<Value>) -> R {
    let Value::String(s) = arg(&args, 0) else { return Ok(Value::Undefined) };
    if !arg(&args, 1).is_undefined() {
        return Err(JsonataError::custom("D3132", "date/time pictures are not implemented yet"));
    }
    match DateTime::parse_from_rfc3339(&s) {
        Ok(d) => Ok(Value::Number(d.timestamp_millis() as f64)),
        Err(_) => Err(JsonataError::value("D3110", None, serde_json::Value::String(s.to_string()).to_string())),
    }
}

pub(crate) fn format_duration_unsupported(_: &Focus, _: Vec<Value>) -> R {
    Ok(Value::Undefined)
}
