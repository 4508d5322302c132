//! Destinations and dead-letter queues of asynchronous invocations.
//!
//! When an asynchronous invocation ends (it succeeded, its retries ran out, or it grew older
//! than `MaximumEventAgeInSeconds`), what AWS would send is stored as a work item of
//! [`QUEUE`] in the transaction that completes the invocation's own item: the invocation
//! record for an `OnSuccess` / `OnFailure` destination (SQS, SNS, Lambda, EventBridge), or
//! the event with `RequestID` / `ErrorCode` / `ErrorMessage` attributes for the function's
//! `DeadLetterConfig` (SQS, SNS) when there is no `OnFailure` destination. So an accepted
//! event's outcome is never lost to a crash; a worker on the leases sends each item through
//! the in-process registry and retries what fails (the send itself is at least once: a node
//! that dies between sending and completing leaves the item to be sent again).

use crate::{Lambda, invalid_value};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, WriteOp};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The lease queue of destination and dead-letter sends.
pub const QUEUE: &str = "lambda.destinations";
/// A send that keeps failing is retried with doubling delays from this one...
const RETRY_BASE_MS: i64 = 1_000;
/// ...up to this one...
const RETRY_MAX_MS: i64 = 300_000;
/// ...this many times in all (about an hour and a half), then dropped with a log line.
const MAX_SENDS: u32 = 24;
/// `ErrorMessage` carries the first kilobyte of the error message.
const DLQ_MESSAGE_BYTES: usize = 1024;

/// Why an asynchronous invocation ended, as the record's `requestContext.condition` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// What the last attempt answered: the record's `responseContext` and `responsePayload`, and
/// a dead-letter message's `ErrorCode` / `ErrorMessage`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Response {
    pub status: u16,
    pub executed_version: String,
    /// `Unhandled` for an error of the function's.
    #[serde(default)]
    pub function_error: Option<String>,
    #[serde(default)]
    pub payload: Value,
}

impl Response {
    /// What the function returned (JSON as JSON, anything else as a string).
    pub fn of_body(executed_version: &str, body: &[u8], function_error: bool) -> Response {
        let payload = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        Response {
            status: 200,
            executed_version: executed_version.to_owned(),
            function_error: function_error.then(|| "Unhandled".to_owned()),
            payload,
        }
    }

    /// An invocation the platform refused (throttled, the runtime missing, ...).
    pub fn of_error(executed_version: &str, e: &AwsError) -> Response {
        Response {
            status: e.status,
            executed_version: executed_version.to_owned(),
            function_error: None,
            payload: json!({"errorType": e.code, "errorMessage": e.message}),
        }
    }

    fn error_message(&self) -> String {
        match &self.payload {
            Value::Object(o) => o
                .get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| self.payload.to_string()),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// One send waiting on [`QUEUE`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Send {
    /// The destination's or dead-letter queue's ARN.
    pub target: String,
    /// The message: the invocation record, or the event for a dead-letter queue.
    pub body: String,
    /// Set for a dead-letter message: its `RequestID`, `ErrorCode`, `ErrorMessage`.
    #[serde(default)]
    pub dead_letter: Option<(String, u16, String)>,
    /// For EventBridge's `DetailType` and `Resources`.
    pub success: bool,
    pub function_arn: String,
}

/// The invocation record AWS sends to a destination.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    function_arn: &str,
    executed_version: &str,
    request_id: &str,
    condition: Condition,
    invoke_count: u32,
    request_payload: &[u8],
    response: Option<&Response>,
    now_ms: i64,
) -> Value {
    let request_payload: Value = serde_json::from_slice(request_payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(request_payload).into_owned()));
    let timestamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let mut rec = json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("{function_arn}:{executed_version}"),
            "condition": condition.as_str(),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": request_payload,
    });
    if let Some(r) = response {
        let mut ctx = json!({"statusCode": r.status, "executedVersion": r.executed_version});
        if let Some(fe) = &r.function_error {
            ctx["functionError"] = json!(fe);
        }
        rec["responseContext"] = ctx;
        rec["responsePayload"] = r.payload.clone();
    }
    rec
}

/// The destination configured for `success` (`OnSuccess`) or failure (`OnFailure`) in the
/// event invoke settings, if any.
pub(crate) fn destination(settings: &Value, success: bool) -> Option<String> {
    settings
        .get("DestinationConfig")?
        .get(if success { "OnSuccess" } else { "OnFailure" })?
        .get("Destination")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// What an ended invocation sends, if anything: the record to its destination, or for a
/// failure without an `OnFailure` destination the event to its dead-letter queue.
#[allow(clippy::too_many_arguments)]
pub(crate) fn send_for(
    settings: &Value,
    dead_letter: Option<&str>,
    function_arn: &str,
    request_id: &str,
    condition: Condition,
    invoke_count: u32,
    payload: &[u8],
    response: Option<&Response>,
    executed_version: &str,
    now_ms: i64,
) -> Option<Send> {
    let success = condition == Condition::Success;
    if let Some(target) = destination(settings, success) {
        let rec = record(
            function_arn,
            executed_version,
            request_id,
            condition,
            invoke_count,
            payload,
            response,
            now_ms,
        );
        return Some(Send {
            target,
            body: rec.to_string(),
            dead_letter: None,
            success,
            function_arn: format!("{function_arn}:{executed_version}"),
        });
    }
    let target = dead_letter.filter(|_| !success)?;
    let (code, message) = match response {
        Some(r) => (r.status, r.error_message()),
        None => (
            200,
            format!(
                "Event age exceeded the function's MaximumEventAgeInSeconds ({})",
                condition.as_str()
            ),
        ),
    };
    Some(Send {
        target: target.to_owned(),
        body: String::from_utf8_lossy(payload).into_owned(),
        dead_letter: Some((
            request_id.to_owned(),
            code,
            truncate(&message, DLQ_MESSAGE_BYTES),
        )),
        success,
        function_arn: format!("{function_arn}:{executed_version}"),
    })
}

/// The work item that sends `s`, for the batch that completes the invocation.
pub(crate) fn enqueue_op(s: &Send, request_id: &str, now_ms: i64) -> Option<WriteOp> {
    Some(WriteOp::Enqueue {
        queue: QUEUE.into(),
        id: format!(
            "{request_id}#{}",
            if s.dead_letter.is_some() {
                "dlq"
            } else {
                "dest"
            }
        ),
        payload: serde_json::to_vec(s).ok()?,
        due_ms: now_ms,
    })
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// (service, region, account, resource) of an ARN.
fn arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut p = arn.splitn(6, ':');
    match (p.next(), p.next(), p.next(), p.next(), p.next(), p.next()) {
        (Some("arn"), Some(_), Some(service), Some(region), Some(account), Some(resource))
            if !region.is_empty() && !account.is_empty() && !resource.is_empty() =>
        {
            Some((service, region, account, resource))
        }
        _ => None,
    }
}

/// A destination must be an SQS queue, an SNS topic, a Lambda function or an EventBridge bus.
pub(crate) fn check_destination(arn: &str) -> Result<(), AwsError> {
    let ok = match arn_parts(arn) {
        Some(("sqs" | "sns", _, _, r)) => !r.contains(':') && !r.contains('/'),
        Some(("lambda", _, _, r)) => r.starts_with("function:") && r.len() > "function:".len(),
        Some(("events", _, _, r)) => r.starts_with("event-bus/") && r.len() > "event-bus/".len(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid_value(format!(
            "The destination ARN {arn} is invalid."
        )))
    }
}

/// A dead-letter queue must be an SQS queue or an SNS topic.
pub(crate) fn check_dead_letter(arn: &str) -> Result<(), AwsError> {
    match arn_parts(arn) {
        Some(("sqs" | "sns", _, _, r)) if !r.contains(':') && !r.contains('/') => Ok(()),
        _ => Err(invalid_value(format!(
            "The provided target arn {arn} is invalid. DeadLetterConfig's TargetArn must be an Amazon SQS queue or Amazon SNS topic ARN."
        ))),
    }
}

/// The in-process call that delivers `s`: (region, account, service, operation, input).
pub(crate) fn request(
    s: &Send,
) -> Result<(String, String, &'static str, &'static str, Value), AwsError> {
    let Some((service, region, account, resource)) = arn_parts(&s.target) else {
        return Err(invalid_value(format!(
            "The destination ARN {} is invalid.",
            s.target
        )));
    };
    let attrs = s.dead_letter.as_ref().map(|(id, code, message)| {
        json!({
            "RequestID": {"DataType": "String", "StringValue": id},
            "ErrorCode": {"DataType": "Number", "StringValue": code.to_string()},
            "ErrorMessage": {"DataType": "String", "StringValue": message},
        })
    });
    let (svc, op, input) = match service {
        "sqs" => {
            let mut input = json!({
                "QueueUrl": format!("internal/{account}/{resource}"),
                "MessageBody": s.body,
            });
            if let Some(a) = attrs {
                input["MessageAttributes"] = a;
            }
            ("sqs", "SendMessage", input)
        }
        "sns" => {
            let mut input = json!({"TopicArn": s.target, "Message": s.body});
            if let Some(a) = attrs {
                input["MessageAttributes"] = a;
            }
            ("sns", "Publish", input)
        }
        "lambda" => (
            "lambda",
            "Invoke",
            json!({
                "FunctionName": s.target,
                "InvocationType": "Event",
                "Payload": B64.encode(s.body.as_bytes()),
            }),
        ),
        "events" => (
            "events",
            "PutEvents",
            json!({"Entries": [{
                "Source": "lambda",
                "DetailType": if s.success {
                    "Lambda Function Invocation Result - Success"
                } else {
                    "Lambda Function Invocation Result - Failure"
                },
                "Detail": s.body,
                "Resources": [s.function_arn],
                "EventBusName": s.target,
            }]}),
        ),
        other => {
            return Err(invalid_value(format!(
                "Destinations of service {other} are not supported."
            )));
        }
    };
    Ok((region.to_owned(), account.to_owned(), svc, op, input))
}

/// Errors that no retry cures: the destination does not exist, or cannot be one.
fn is_final(e: &AwsError) -> bool {
    matches!(
        e.code.as_str(),
        "ResourceNotFoundException"
            | "QueueDoesNotExist"
            | "AWS.SimpleQueueService.NonExistentQueue"
            | "NotFound"
            | "NotFoundException"
            | "InvalidParameterValueException"
    )
}

/// Sends `s` through the registry; an EventBridge entry it refused is an error too.
async fn deliver(l: &Lambda, s: &Send) -> Result<(), AwsError> {
    let (region, account, svc, op, input) = request(s)?;
    let registry = l
        .registry
        .get()
        .ok_or_else(|| AwsError::internal("services are starting"))?;
    let ctx = RequestContext::internal(&account, &region, &l.config.endpoint);
    let out = registry.call(&ctx, svc, op, input).await?;
    if svc == "events"
        && out.body["FailedEntryCount"].as_u64().unwrap_or(0) > 0
        && let Some(entry) = out.body["Entries"].get(0)
    {
        let code = entry["ErrorCode"].as_str().unwrap_or("InternalException");
        return Err(AwsError::new(
            400,
            code,
            entry["ErrorMessage"].as_str().unwrap_or_default(),
        ));
    }
    Ok(())
}

/// Sends one claimed item and records the outcome: completed when sent (or when it can never
/// be), released for a later try otherwise.
pub(crate) async fn run_claim(l: &Arc<Lambda>, claim: Claim) {
    let Ok(s) = serde_json::from_slice::<Send>(&claim.payload) else {
        tracing::warn!("dropping an unreadable destination send {}", claim.id);
        let _ = l.state.complete(&claim, &[]);
        return;
    };
    let result = deliver(l, &s).await;
    let state = l.state.clone();
    let done = match result {
        Ok(()) => state.complete(&claim, &[]),
        Err(e) if is_final(&e) || claim.attempt >= MAX_SENDS => {
            tracing::warn!(
                target_arn = %s.target,
                id = %claim.id,
                "dropping an asynchronous invocation's {} after {} tries: {}",
                if s.dead_letter.is_some() { "dead-letter message" } else { "destination record" },
                claim.attempt,
                e.message
            );
            state.complete(&claim, &[])
        }
        Err(e) => {
            let delay = RETRY_BASE_MS
                .saturating_mul(1i64 << claim.attempt.saturating_sub(1).min(20))
                .min(RETRY_MAX_MS);
            tracing::info!(target_arn = %s.target, attempt = claim.attempt, "sending to a destination failed, retrying: {}", e.message);
            let now = state
                .clock_ms()
                .unwrap_or_else(|_| chrono::Utc::now().timestamp_millis());
            state.release(&claim, now + delay)
        }
    };
    if let Err(e) = done {
        tracing::debug!("finishing destination send {}: {e}", claim.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

    fn settings() -> Value {
        json!({"DestinationConfig": {
            "OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:ok"},
            "OnFailure": {"Destination": "arn:aws:events:eu-west-1:111111111111:event-bus/b"},
        }})
    }

    #[test]
    fn the_record_is_the_one_aws_sends() {
        let r = Response::of_body(
            "$LATEST",
            br#"{"errorMessage":"boom","errorType":"E"}"#,
            true,
        );
        let rec = record(
            ARN,
            "$LATEST",
            "rid",
            Condition::RetriesExhausted,
            3,
            br#"{"a":1}"#,
            Some(&r),
            1_700_000_000_123,
        );
        assert_eq!(rec["version"], "1.0");
        assert_eq!(rec["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(
            rec["requestContext"],
            json!({"requestId": "rid", "functionArn": format!("{ARN}:$LATEST"),
                   "condition": "RetriesExhausted", "approximateInvokeCount": 3})
        );
        assert_eq!(rec["requestPayload"], json!({"a": 1}));
        assert_eq!(
            rec["responseContext"],
            json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        );
        assert_eq!(rec["responsePayload"]["errorMessage"], "boom");
        let ok = Response::of_body("3", b"\"done\"", false);
        let rec = record(ARN, "3", "rid", Condition::Success, 1, b"{}", Some(&ok), 0);
        assert_eq!(
            rec["responseContext"],
            json!({"statusCode": 200, "executedVersion": "3"})
        );
        assert_eq!(rec["responsePayload"], "done");
        assert_eq!(rec["requestContext"]["functionArn"], format!("{ARN}:3"));
        let rec = record(
            ARN,
            "$LATEST",
            "rid",
            Condition::EventAgeExceeded,
            0,
            b"{}",
            None,
            0,
        );
        assert!(rec.get("responseContext").is_none() && rec.get("responsePayload").is_none());
    }

    #[test]
    fn destinations_come_before_the_dead_letter_queue() {
        let dlq = Some("arn:aws:sqs:us-east-1:000000000000:dlq");
        let fail = Response::of_body("$LATEST", br#"{"errorMessage":"boom"}"#, true);
        let s = send_for(
            &settings(),
            dlq,
            ARN,
            "r",
            Condition::RetriesExhausted,
            1,
            b"{}",
            Some(&fail),
            "$LATEST",
            0,
        )
        .unwrap();
        assert_eq!(
            s.target,
            "arn:aws:events:eu-west-1:111111111111:event-bus/b"
        );
        assert!(s.dead_letter.is_none() && !s.success);
        // No OnFailure: the event itself goes to the dead-letter queue.
        let only_success = json!({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:0:ok"}}});
        let s = send_for(
            &only_success,
            dlq,
            ARN,
            "r",
            Condition::RetriesExhausted,
            3,
            br#"{"x":1}"#,
            Some(&fail),
            "$LATEST",
            0,
        )
        .unwrap();
        assert_eq!(s.body, r#"{"x":1}"#);
        assert_eq!(s.dead_letter, Some(("r".into(), 200, "boom".into())));
        // Success never goes to the dead-letter queue.
        let ok = Response::of_body("$LATEST", b"1", false);
        assert!(
            send_for(
                &Value::Null,
                dlq,
                ARN,
                "r",
                Condition::Success,
                1,
                b"{}",
                Some(&ok),
                "$LATEST",
                0
            )
            .is_none()
        );
        assert!(
            send_for(
                &Value::Null,
                None,
                ARN,
                "r",
                Condition::RetriesExhausted,
                1,
                b"{}",
                Some(&fail),
                "$LATEST",
                0
            )
            .is_none()
        );
        let s = send_for(
            &settings(),
            dlq,
            ARN,
            "r",
            Condition::Success,
            1,
            b"{}",
            Some(&ok),
            "$LATEST",
            0,
        )
        .unwrap();
        assert_eq!(s.target, "arn:aws:sqs:us-east-1:000000000000:ok");
        let op = enqueue_op(&s, "r", 5).unwrap();
        assert!(
            matches!(op, WriteOp::Enqueue { ref queue, ref id, due_ms: 5, .. } if queue == QUEUE && id == "r#dest")
        );
    }

    #[test]
    fn requests_for_each_kind_of_destination() {
        let mut s = Send {
            target: "arn:aws:sqs:eu-west-1:111111111111:q".into(),
            body: "{}".into(),
            dead_letter: Some(("r".into(), 200, "boom".into())),
            success: false,
            function_arn: format!("{ARN}:$LATEST"),
        };
        let (region, account, svc, op, input) = request(&s).unwrap();
        assert_eq!(
            (region.as_str(), account.as_str(), svc, op),
            ("eu-west-1", "111111111111", "sqs", "SendMessage")
        );
        assert_eq!(input["QueueUrl"], "internal/111111111111/q");
        assert_eq!(
            input["MessageAttributes"]["ErrorCode"],
            json!({"DataType": "Number", "StringValue": "200"})
        );
        assert_eq!(input["MessageAttributes"]["RequestID"]["StringValue"], "r");
        s.dead_letter = None;
        s.target = "arn:aws:sns:us-east-1:0:t".into();
        let (_, _, svc, op, input) = request(&s).unwrap();
        assert_eq!((svc, op), ("sns", "Publish"));
        assert_eq!(
            input,
            json!({"TopicArn": "arn:aws:sns:us-east-1:0:t", "Message": "{}"})
        );
        s.target = "arn:aws:lambda:us-east-1:0:function:g".into();
        let (_, _, svc, op, input) = request(&s).unwrap();
        assert_eq!(
            (svc, op, input["InvocationType"].as_str()),
            ("lambda", "Invoke", Some("Event"))
        );
        assert_eq!(input["Payload"], B64.encode("{}"));
        s.target = "arn:aws:events:us-east-1:0:event-bus/default".into();
        let (_, _, svc, op, input) = request(&s).unwrap();
        assert_eq!((svc, op), ("events", "PutEvents"));
        let e = &input["Entries"][0];
        assert_eq!(e["Source"], "lambda");
        assert_eq!(
            e["DetailType"],
            "Lambda Function Invocation Result - Failure"
        );
        assert_eq!(
            e["EventBusName"],
            "arn:aws:events:us-east-1:0:event-bus/default"
        );
    }

    #[test]
    fn only_supported_services_are_destinations() {
        for ok in [
            "arn:aws:sqs:us-east-1:000000000000:q",
            "arn:aws:sns:us-east-1:000000000000:t",
            "arn:aws:lambda:us-east-1:000000000000:function:f",
            "arn:aws:lambda:us-east-1:000000000000:function:f:live",
            "arn:aws:events:us-east-1:000000000000:event-bus/default",
        ] {
            check_destination(ok).unwrap();
        }
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws:dynamodb:us-east-1:000000000000:table/t",
            "arn:aws:lambda:us-east-1:000000000000:layer:l",
            "arn:aws:events:us-east-1:000000000000:rule/r",
            "not-an-arn",
        ] {
            let e = check_destination(bad).unwrap_err();
            assert_eq!(e.code, "InvalidParameterValueException", "{bad}");
        }
        check_dead_letter("arn:aws:sqs:us-east-1:000000000000:q").unwrap();
        check_dead_letter("arn:aws:sns:us-east-1:000000000000:t").unwrap();
        assert!(check_dead_letter("arn:aws:lambda:us-east-1:000000000000:function:f").is_err());
    }
}
