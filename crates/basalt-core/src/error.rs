//! The one error type every service returns. Protocols decide how it looks on the wire;
//! services decide only its code, message, status and extra members.

use serde_json::{Map, Value};
use std::fmt;

/// Who is to blame, as AWS reports it (`<Type>Sender</Type>`, `x-amzn-query-error: Code;Sender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

/// An AWS error: `code` is the shape name of the modeled error (e.g. `ValidationException`)
/// or a well-known unmodeled code (`UnknownOperationException`, `SignatureDoesNotMatch`).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub code: String,
    pub message: String,
    pub status: u16,
    pub fault: Fault,
    /// Extra members of the error shape, in canonical form (e.g. `BucketName`).
    pub fields: Map<String, Value>,
    /// The code the service's former query protocol gave this error, where the model does not
    /// say it (SQS: `AWS.SimpleQueueService.NonExistentQueue` for `QueueDoesNotExist`). Sent
    /// as the query protocol's `<Code>` and in JSON's `x-amzn-query-error` header.
    pub query_code: Option<String>,
}

impl AwsError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        let fault = if status >= 500 {
            Fault::Receiver
        } else {
            Fault::Sender
        };
        AwsError {
            code: code.into(),
            message: message.into(),
            status,
            fault,
            fields: Map::new(),
            query_code: None,
        }
    }

    pub fn with_field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    pub fn with_query_code(mut self, code: impl Into<String>) -> Self {
        self.query_code = Some(code.into());
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    /// The query-protocol name for bad parameters (`InvalidParameterValue`).
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterValue", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }

    pub fn unknown_operation(op: &str) -> Self {
        Self::new(
            400,
            "UnknownOperationException",
            format!("Operation {op} is not supported."),
        )
    }

    pub fn not_implemented(service: &str, op: &str) -> Self {
        Self::new(
            501,
            "NotImplemented",
            format!("The {op} operation of service {service} is not implemented in Basalt yet."),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalFailure", message)
    }

    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(400, "ResourceNotFoundException", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(403, "AccessDeniedException", message)
    }

    pub fn throttling(message: impl Into<String>) -> Self {
        Self::new(429, "ThrottlingException", message)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

pub type AwsResult<T> = Result<T, AwsError>;
