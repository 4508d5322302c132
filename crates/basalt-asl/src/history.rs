//! History events as GetExecutionHistory returns them: the type, and the details member AWS
//! uses for that type (shapes from botocore's `stepfunctions` model).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One history event. `previous_event_id` links it to the event before it on the same
/// branch (0 for the first), as AWS links events of parallel branches and map iterations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp_ms: i64,
    /// `type`, e.g. `PassStateEntered`.
    pub kind: String,
    /// The details member and its value, e.g. (`stateEnteredEventDetails`, {...}).
    pub details: Option<(String, Value)>,
}

impl HistoryEvent {
    /// The event as the GetExecutionHistory JSON member (timestamp in epoch seconds).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("timestamp".into(), json!(self.timestamp_ms as f64 / 1000.0));
        m.insert("type".into(), json!(self.kind));
        m.insert("id".into(), json!(self.id));
        m.insert("previousEventId".into(), json!(self.previous_event_id));
        if let Some((k, v)) = &self.details {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

pub(crate) fn data(key: &str, v: &Value) -> Value {
    json!({ key: v.to_string(), format!("{key}Details"): {"truncated": false} })
}

/// How a Task's resource shows in history: Lambda functions and activities have events
/// of their own; every other resource is a `Task*` event with a resourceType/resource pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskFamily {
    Lambda,
    Activity,
    Service,
}

pub(crate) fn family(resource: &str) -> TaskFamily {
    if resource.starts_with("arn:aws:lambda:")
        || resource.starts_with("arn:aws-us-gov:lambda:")
        || resource.starts_with("arn:aws-cn:lambda:")
    {
        TaskFamily::Lambda
    } else if resource.contains(":activity:") {
        TaskFamily::Activity
    } else {
        TaskFamily::Service
    }
}

/// `arn:aws:states:::dynamodb:putItem` → (`dynamodb`, `putItem`);
/// `arn:aws:states:::aws-sdk:s3:getObject` → (`aws-sdk:s3`, `getObject`).
pub(crate) fn resource_type(resource: &str) -> (String, String) {
    let tail = resource.splitn(6, ':').nth(5).unwrap_or(resource);
    match tail.rsplit_once(':') {
        Some((t, r)) => (t.to_string(), r.to_string()),
        None => (tail.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types() {
        assert_eq!(
            resource_type("arn:aws:states:::lambda:invoke"),
            ("lambda".into(), "invoke".into())
        );
        assert_eq!(
            resource_type("arn:aws:states:::aws-sdk:s3:getObject"),
            ("aws-sdk:s3".into(), "getObject".into())
        );
        assert_eq!(
            resource_type("arn:aws:states:::sqs:sendMessage.waitForTaskToken"),
            ("sqs".into(), "sendMessage.waitForTaskToken".into())
        );
        assert_eq!(
            family("arn:aws:lambda:us-east-1:1:function:f"),
            TaskFamily::Lambda
        );
        assert_eq!(
            family("arn:aws:states:us-east-1:1:activity:a"),
            TaskFamily::Activity
        );
    }
}
