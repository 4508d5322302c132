//! One error type for both dialects. The message is what AWS puts in the response body, so a
//! service can hand `to_string()` straight to its error shape; `kind` tells it which AWS error
//! code to pick.

/// Which AWS error the failure becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// EventBridge `InvalidEventPatternException` (PutRule, TestEventPattern, pipes filters).
    InvalidEventPattern,
    /// EventBridge `ValidationException` on TestEventPattern: the event is not JSON.
    InvalidEvent,
    /// SNS `InvalidParameter` on Subscribe / SetSubscriptionAttributes.
    InvalidFilterPolicy,
}

/// A pattern or filter policy that AWS would refuse, or an event that is not JSON.
///
/// `Display` is the full AWS message, e.g.
/// `Event pattern is not valid. Reason: Empty arrays are not allowed` or
/// `Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    kind: ErrorKind,
    reason: String,
    message: String,
}

impl PatternError {
    pub(crate) fn pattern(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        // EventBridge appends Jackson's source location (`at [Source: ...; line: 1, column: 9]`);
        // that suffix depends on the Java tokenizer's cursor and no client parses it, so the
        // message stops after the reason.
        let message = format!("Event pattern is not valid. Reason: {reason}");
        Self {
            kind: ErrorKind::InvalidEventPattern,
            reason,
            message,
        }
    }

    pub(crate) fn policy(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let message = format!("Invalid parameter: FilterPolicy: {reason}");
        Self {
            kind: ErrorKind::InvalidFilterPolicy,
            reason,
            message,
        }
    }

    /// SNS words a few errors without the `FilterPolicy:` part.
    pub(crate) fn policy_bare(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let message = format!("Invalid parameter: {reason}");
        Self {
            kind: ErrorKind::InvalidFilterPolicy,
            reason,
            message,
        }
    }

    pub(crate) fn event() -> Self {
        Self {
            kind: ErrorKind::InvalidEvent,
            reason: "Parameter Event is not valid.".into(),
            message: "Parameter Event is not valid.".into(),
        }
    }

    /// Which AWS error code this becomes.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The reason alone, without the service's prefix.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
