//! CloudWatch's errors, in one place: each constructor names the model's error shape (the
//! gateway writes its wire code, e.g. `InvalidParameterValue`, and the query-compatible
//! `x-amzn-query-error` header from the model).

use basalt_core::AwsError;
use serde_json::{Value, json};

/// `InvalidParameterValue` (400).
pub(crate) fn invalid_value(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterValueException", message)
}

/// `MissingParameter` (400).
pub(crate) fn missing(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "MissingRequiredParameterException", message)
}

/// `InvalidParameterCombination` (400).
pub(crate) fn combination(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterCombinationException", message)
}

/// `ResourceNotFound` (404), the alarm operations' not-found.
pub(crate) fn alarm_not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "ResourceNotFound", message)
}

/// `ResourceNotFound` (404) of the dashboard operations.
pub(crate) fn dashboard_not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "DashboardNotFoundError", message)
}

/// `InvalidParameterInput` (400) with the validation messages of a refused dashboard body.
pub(crate) fn dashboard_invalid(message: impl Into<String>, messages: Vec<Value>) -> AwsError {
    AwsError::new(400, "DashboardInvalidInputError", message)
        .with_field("dashboardValidationMessages", json!(messages))
}

/// `InvalidNextToken` (400).
pub(crate) fn invalid_token() -> AwsError {
    AwsError::new(
        400,
        "InvalidNextToken",
        "The service cannot parse the NextToken.",
    )
}

/// `InvalidFormat` (400), SetAlarmState's refusal of a StateReasonData that is not JSON.
pub(crate) fn invalid_format(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidFormatFault", message)
}

/// A stored record that does not decode: a bug or a damaged store, never the caller's fault.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> AwsError {
    tracing::error!(what, error = %e, "undecodable cloudwatch record");
    AwsError::internal(format!("undecodable {what} record"))
}
