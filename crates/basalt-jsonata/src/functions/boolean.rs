//! `$boolean`, `$not`, `$exists` and JSONata's truthiness rules.

use super::{Focus, arg};
use crate::error::JsonataError;
use crate::value::Value;

/// JSONata's boolean cast; `None` for undefined.
pub(crate) fn truthy(v: &Value) -> Option<bool> {
    Some(match v {
        Value::Undefined => return None,
        Value::Array(items, _) => match items.len() {
            0 => false,
            1 => truthy(&items[0]).unwrap_or(false),
            _ => items.iter().any(|i| truthy(i) == Some(true)),
        },
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => *n != 0.0 && !n.is_nan(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(b) => *b,
        Value::Null | Value::Function(_) => false,
    })
}

pub(crate) fn boolean(_: &Focus, args: Vec<Value>) -> Result<Value, JsonataError> {
    Ok(truthy(&arg(&args, 0)).map(Value::Bool).unwrap_or_default())
}

pub(crate) fn not(_: &Focus, args: Vec<Value>) -> Result<Value, JsonataError> {
    Ok(truthy(&arg(&args, 0))
        .map(|b| Value::Bool(!b))
        .unwrap_or_default())
}

pub(crate) fn exists(_: &Focus, args: Vec<Value>) -> Result<Value, JsonataError> {
    Ok(Value::Bool(!arg(&args, 0).is_undefined()))
}
