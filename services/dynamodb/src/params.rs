//! Request members as DynamoDB reads and validates them.

use basalt_core::AwsError;
use basalt_dynamodb_expr::{ExprError, Item, ValueError, item_from_json};
use serde_json::Value;

pub fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

pub fn value_error(e: ValueError) -> AwsError {
    AwsError::validation(e.0)
}

pub fn expr_error(e: ExprError) -> AwsError {
    AwsError::validation(e.0)
}

/// A table name member: 3 to 255 of `[a-zA-Z0-9_.-]` (or an ARN, up to 1024).
pub fn table_name<'a>(input: &'a Value, member: &str) -> Result<&'a str, AwsError> {
    let Some(name) = str_of(input, member) else {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(member)
        )));
    };
    if name.starts_with("arn:") {
        return Ok(name);
    }
    check_name(name, member)?;
    Ok(name)
}

/// DynamoDB's rule for table and index names.
pub fn check_name(name: &str, member: &str) -> Result<(), AwsError> {
    let member = lower_first(member);
    if name.len() < 3 || name.len() > 255 {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must have length {}",
            if name.len() < 3 {
                "greater than or equal to 3"
            } else {
                "less than or equal to 255"
            }
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )));
    }
    Ok(())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A map of attribute values (`Item`, `Key`, `ExclusiveStartKey`).
pub fn item(input: &Value, member: &str) -> Result<Option<Item>, AwsError> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => item_from_json(v).map(Some).map_err(value_error),
    }
}

pub fn required_item(input: &Value, member: &str) -> Result<Item, AwsError> {
    item(input, member)?.ok_or_else(|| {
        AwsError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(member)
        ))
    })
}

/// ReturnValues of the single-item writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

pub fn return_values(input: &Value, allowed: &[&str]) -> Result<ReturnValues, AwsError> {
    let v = str_of(input, "ReturnValues").unwrap_or("NONE");
    if !allowed.contains(&v) {
        return Err(AwsError::validation(
            "ReturnValues can only be ALL_OLD or NONE",
        ));
    }
    Ok(match v {
        "ALL_OLD" => ReturnValues::AllOld,
        "UPDATED_OLD" => ReturnValues::UpdatedOld,
        "ALL_NEW" => ReturnValues::AllNew,
        "UPDATED_NEW" => ReturnValues::UpdatedNew,
        _ => ReturnValues::None,
    })
}

/// Rejects the legacy parameters that have an expression form, when given together with it
/// (DynamoDB's wording), and legacy parameters on their own, which Basalt does not take.
pub fn no_legacy(input: &Value, pairs: &[(&str, &str)]) -> Result<(), AwsError> {
    for (legacy, modern) in pairs {
        if input.get(*legacy).is_some_and(|v| !v.is_null()) {
            if input.get(*modern).is_some_and(|v| !v.is_null()) {
                return Err(AwsError::validation(format!(
                    "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{legacy}}} Expression parameters: {{{modern}}}"
                )));
            }
            return Err(AwsError::validation(format!(
                "The legacy parameter {legacy} is not supported by Basalt; use {modern}"
            )));
        }
    }
    Ok(())
}

pub fn int_of(input: &Value, name: &str) -> Option<i64> {
    input.get(name).and_then(Value::as_i64)
}
