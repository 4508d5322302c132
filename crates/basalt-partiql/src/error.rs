//! The one error type: DynamoDB's ValidationException message, word for word.

/// A statement DynamoDB refuses. The message is the exact text of the ValidationException
/// DynamoDB sends (the service wraps it as `ValidationException`, or `ValidationError` in a
/// BatchExecuteStatement response).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct PartiqlError(pub String);

impl PartiqlError {
    /// "Statement wasn't well formed, can't be processed: <detail>": what DynamoDB's parser
    /// says about text it cannot read (the detail is empty for a literal or character it
    /// cannot read at all).
    pub(crate) fn malformed(detail: &str) -> PartiqlError {
        PartiqlError(format!(
            "Statement wasn't well formed, can't be processed: {detail}"
        ))
    }

    /// "Unsupported operation: <what>".
    pub(crate) fn unsupported(what: &str) -> PartiqlError {
        PartiqlError(format!("Unsupported operation: {what}"))
    }

    pub(crate) fn msg(text: impl Into<String>) -> PartiqlError {
        PartiqlError(text.into())
    }
}

/// DynamoDB's wording for a `?` count that differs from the Parameters given.
pub(crate) const PARAMETER_COUNT: &str =
    "Number of parameters in request and statement don't match.";

/// UPDATE and DELETE name exactly one item: every key attribute with `=`.
pub(crate) const INCOMPLETE_KEY: &str =
    "Where clause does not contain a mandatory equality on all key attributes";
