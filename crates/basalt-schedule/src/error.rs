//! The one error type: what AWS answers (a ValidationException message) plus why, for logs.

/// Which request parameter an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ScheduleExpression` is malformed or out of range.
    Expression,
    /// `ScheduleExpressionTimezone` is not a known IANA time zone name.
    Timezone,
}

/// A schedule expression (or its time zone) that AWS would reject with a ValidationException.
///
/// `Display` (and [`ScheduleError::message`]) is the text AWS returns to the client;
/// [`ScheduleError::reason`] says what exactly was wrong, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    kind: ErrorKind,
    message: String,
    reason: String,
}

/// EventBridge `PutRule`'s message for every invalid `ScheduleExpression`.
pub const RULE_MESSAGE: &str = "Parameter ScheduleExpression is not valid.";

impl ScheduleError {
    pub(crate) fn rule(reason: impl Into<String>) -> Self {
        ScheduleError {
            kind: ErrorKind::Expression,
            message: RULE_MESSAGE.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn scheduler_expression(expr: &str, reason: impl Into<String>) -> Self {
        ScheduleError {
            kind: ErrorKind::Expression,
            message: format!("Invalid Schedule Expression {expr}"),
            reason: reason.into(),
        }
    }

    pub(crate) fn scheduler_timezone(tz: &str) -> Self {
        ScheduleError {
            kind: ErrorKind::Timezone,
            message: format!("Invalid ScheduleExpressionTimezone {tz}"),
            reason: format!("{tz:?} is not an IANA time zone name"),
        }
    }

    /// The AWS error code: always `ValidationException` (HTTP 400).
    pub fn code(&self) -> &'static str {
        "ValidationException"
    }

    /// The message AWS returns to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What exactly was wrong (not sent to clients by AWS; for logs and tests).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Which parameter the error is about.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}
