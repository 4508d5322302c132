//! Expression errors and the expression kinds that prefix their messages.

/// Which request member an expression came from; it picks the prefix of DynamoDB's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprKind {
    Condition,
    Filter,
    KeyCondition,
    Update,
    Projection,
}

impl ExprKind {
    /// The member name, as it appears in messages (`ConditionExpression`, ...).
    pub fn member(self) -> &'static str {
        match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
            ExprKind::Update => "UpdateExpression",
            ExprKind::Projection => "ProjectionExpression",
        }
    }

    /// `Invalid <Member>: <detail>`, DynamoDB's shape for every parse-time expression error.
    pub fn error(self, detail: impl std::fmt::Display) -> ExprError {
        ExprError(format!("Invalid {}: {detail}", self.member()))
    }
}

/// An expression failure; the message is the exact `ValidationException` message DynamoDB sends.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct ExprError(pub String);

impl ExprError {
    pub(crate) fn new(msg: impl Into<String>) -> ExprError {
        ExprError(msg.into())
    }
}
