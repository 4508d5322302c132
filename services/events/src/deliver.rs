//! The delivery worker: claims deliveries from the store's leases, sends each to its target
//! (Lambda, SQS, SNS, another bus, a Logs group, Step Functions, Kinesis) through the
//! in-process registry, retries failures with exponential backoff within the target's
//! RetryPolicy, and sends what still fails to the target's dead-letter queue with the
//! attributes AWS sets (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE).

use crate::model::Delivery;
use crate::transform::{Context, render};
use crate::{Events, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::Claim;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The lease queue of deliveries.
pub const QUEUE: &str = "events.deliveries";
const BATCH: usize = 32;
/// AWS's defaults: 185 retries within 24 hours.
const DEFAULT_ATTEMPTS: i64 = 185;
const DEFAULT_AGE_S: i64 = 86_400;

pub(crate) fn start_worker(events: Arc<Events>) {
    basalt_store::Worker {
        state: events.state.clone(),
        queue: QUEUE,
        lease_ms: events.config.lease_ms,
        batch: BATCH,
        idle: Duration::from_millis(500),
        wake: events.wake.clone(),
    }
    .spawn(move |claimed| {
        let events = events.clone();
        async move {
            let sends = claimed.into_iter().map(|c| deliver(&events, c));
            futures::future::join_all(sends).await;
        }
    });
}

/// What a failed send says about retrying.
enum Failure {
    /// Try again later.
    Retry(AwsError),
    /// The target cannot take it (it does not exist): to the dead-letter queue now.
    Final(AwsError),
}

async fn deliver(events: &Arc<Events>, claim: Claim) {
    let Ok(d) = serde_json::from_slice::<Delivery>(&claim.payload) else {
        tracing::error!(id = %claim.id, "dropping an unreadable delivery");
        let _ = events.state.complete(&claim, &[]);
        return;
    };
    let outcome = send(events, &d).await;
    let state = events.state.clone();
    let now = state.clock_ms().unwrap_or_else(|_| crate::now_ms());
    let result = match outcome {
        Ok(ops) => {
            let forwarded = !ops.is_empty();
            let done = state.complete(&claim, &ops);
            if forwarded && done.is_ok() {
                events.wake.notify_one();
            }
            done
        }
        Err(failure) => {
            let (err, final_) = match failure {
                Failure::Retry(e) => (e, false),
                Failure::Final(e) => (e, true),
            };
            let policy = d.target.get("RetryPolicy");
            let max_attempts = policy
                .and_then(|p| p.get("MaximumRetryAttempts"))
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_ATTEMPTS);
            let max_age_ms = policy
                .and_then(|p| p.get("MaximumEventAgeInSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_AGE_S)
                * 1000;
            let retries_done = i64::from(claim.attempt) - 1;
            let delay = backoff(events, claim.attempt);
            let exhausted = if final_ {
                None
            } else if retries_done >= max_attempts {
                Some("MaximumRetryAttempts")
            } else if now + delay - d.accepted_ms > max_age_ms {
                Some("MaximumEventAgeInSeconds")
            } else {
                return retry_later(events, &claim, &d, &err, now + delay);
            };
            dead_letter(events, &d, &err, exhausted).await;
            state.complete(&claim, &[])
        }
    };
    if let Err(e) = result {
        tracing::debug!("finishing delivery {}: {e}", claim.id);
    }
}

fn retry_later(events: &Events, claim: &Claim, d: &Delivery, err: &AwsError, due: i64) {
    tracing::info!(
        rule = %d.rule_arn,
        target = str_of(&d.target, "Arn").unwrap_or(""),
        attempt = claim.attempt,
        "delivery failed, retrying: {}",
        err.message
    );
    if let Err(e) = events.state.release(claim, due) {
        tracing::debug!("releasing delivery {}: {e}", claim.id);
    }
}

/// Exponential backoff with full jitter: up to base·2^(attempt-1), capped.
fn backoff(events: &Events, attempt: u32) -> i64 {
    use rand::Rng;
    let cap = events
        .config
        .retry_base_ms
        .saturating_mul(1i64 << attempt.saturating_sub(1).min(20))
        .min(events.config.retry_max_ms)
        .max(1);
    rand::thread_rng().gen_range(cap / 2..=cap)
}

/// Sends what failed to the target's dead-letter queue, if it has one; otherwise the event
/// is dropped, as AWS drops it, with a log line.
async fn dead_letter(events: &Events, d: &Delivery, err: &AwsError, exhausted: Option<&str>) {
    let target_arn = str_of(&d.target, "Arn").unwrap_or("");
    let Some(dlq) = d
        .target
        .get("DeadLetterConfig")
        .and_then(|c| str_of(c, "Arn"))
    else {
        tracing::warn!(rule = %d.rule_arn, target = target_arn, "dropping an event its target refused: {}", err.message);
        return;
    };
    let Some(registry) = events.registry.get() else {
        return;
    };
    let (region, account, name) = match arn_parts(dlq) {
        Some((_, region, account, resource)) => (region, account, resource),
        None => return,
    };
    let ctx = RequestContext::internal(account, region, "");
    let mut attrs = json!({
        "RULE_ARN": {"DataType": "String", "StringValue": d.rule_arn},
        "TARGET_ARN": {"DataType": "String", "StringValue": target_arn},
        "ERROR_CODE": {"DataType": "String", "StringValue": err.code},
        "ERROR_MESSAGE": {"DataType": "String", "StringValue": truncate(&err.message, 256)},
    });
    if let Some(why) = exhausted {
        attrs["EXHAUSTED_RETRY_CONDITION"] = json!({"DataType": "String", "StringValue": why});
    }
    let sent = registry
        .call(
            &ctx,
            "sqs",
            "SendMessage",
            json!({
                "QueueUrl": format!("internal/{account}/{name}"),
                "MessageBody": d.event.to_string(),
                "MessageAttributes": attrs,
            }),
        )
        .await;
    if let Err(e) = sent {
        tracing::warn!(
            dlq,
            "sending a failed event to its dead-letter queue: {}",
            e.message
        );
    }
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
        (Some("arn"), Some(_), Some(service), Some(region), Some(account), Some(resource)) => {
            Some((service, region, account, resource))
        }
        _ => None,
    }
}

/// AWS retries a delivery only when the target failed or throttled (5xx, 429, throttling
/// codes); any other 4xx is final, as is a target that does not exist.
fn classify(e: AwsError) -> Failure {
    let throttled =
        e.status == 429 || e.code.contains("Throttl") || e.code == "TooManyRequestsException";
    if e.status >= 500 || throttled {
        Failure::Retry(e)
    } else {
        Failure::Final(e)
    }
}

/// What a successful send leaves to commit with the delivery's completion (a forward to
/// another bus stores that bus's deliveries there, exactly once).
type Sent = Vec<basalt_store::WriteOp>;

async fn send(events: &Events, d: &Delivery) -> Result<Sent, Failure> {
    let arn = str_of(&d.target, "Arn").unwrap_or("");
    let Some((service, region, account, resource)) = arn_parts(arn) else {
        return Err(Failure::Final(AwsError::validation(format!(
            "Target ARN {arn} is not valid."
        ))));
    };
    let ingestion = d
        .event
        .get("time")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let body = render(
        &d.target,
        &d.event,
        &Context {
            rule_arn: &d.rule_arn,
            rule_name: &d.rule_name,
            ingestion_time: &ingestion,
        },
    );
    if service == "events" {
        return to_bus(events, d, region, account, resource).map_err(classify);
    }
    let Some(registry) = events.registry.get() else {
        return Err(Failure::Retry(AwsError::internal("services are starting")));
    };
    let ctx = RequestContext::internal(account, region, "");
    let (svc, op, input) = match service {
        "lambda" => (
            "lambda",
            "Invoke",
            json!({
                "FunctionName": arn,
                "InvocationType": "Event",
                "Payload": b64(body.as_bytes()),
            }),
        ),
        "sqs" => {
            let mut input = json!({
                "QueueUrl": format!("internal/{account}/{resource}"),
                "MessageBody": body,
            });
            if let Some(group) = d
                .target
                .get("SqsParameters")
                .and_then(|p| str_of(p, "MessageGroupId"))
            {
                input["MessageGroupId"] = group.into();
                input["MessageDeduplicationId"] = d
                    .event
                    .get("id")
                    .cloned()
                    .unwrap_or_else(|| Value::from(uuid::Uuid::new_v4().to_string()));
            }
            ("sqs", "SendMessage", input)
        }
        "sns" => ("sns", "Publish", json!({"TopicArn": arn, "Message": body})),
        "states" => (
            "stepfunctions",
            "StartExecution",
            json!({"stateMachineArn": arn, "input": body}),
        ),
        "kinesis" => {
            let stream = resource.strip_prefix("stream/").unwrap_or(resource);
            let key = d
                .target
                .get("KinesisParameters")
                .and_then(|p| str_of(p, "PartitionKeyPath"))
                .and_then(crate::transform::JsonPath::parse)
                .and_then(|p| {
                    p.get(&d.event)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                })
                .unwrap_or_else(|| {
                    d.event
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("0")
                        .to_owned()
                });
            (
                "kinesis",
                "PutRecord",
                json!({"StreamName": stream, "Data": b64(body.as_bytes()), "PartitionKey": key}),
            )
        }
        "logs" => {
            return to_logs(registry, &ctx, d, resource, &body)
                .await
                .map(|()| Vec::new())
                .map_err(classify);
        }
        other => {
            return Err(Failure::Final(AwsError::validation(format!(
                "Targets of service {other} are not supported by Basalt."
            ))));
        }
    };
    registry
        .call(&ctx, svc, op, input)
        .await
        .map(|_| Vec::new())
        .map_err(|e| match e.code.as_str() {
            // A service Basalt does not have yet: kept and retried, not lost.
            "NotImplemented" => Failure::Retry(e),
            _ => classify(e),
        })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Another bus: the same event (same id) is matched against that bus's rules; its
/// deliveries are committed with this delivery's completion.
fn to_bus(
    events: &Events,
    d: &Delivery,
    region: &str,
    account: &str,
    resource: &str,
) -> Result<Sent, AwsError> {
    let name = resource.strip_prefix("event-bus/").unwrap_or(resource);
    let ctx = RequestContext::internal(account, region, "");
    let rec = crate::buses::must_load(events, &ctx, name)?;
    crate::ingest::route(events, &ctx, &rec, &d.event, crate::now_ms())
}

/// A Logs group: the event as one log event, in a stream named after the rule's delivery.
async fn to_logs(
    registry: &basalt_core::ServiceRegistry,
    ctx: &RequestContext,
    d: &Delivery,
    resource: &str,
    body: &str,
) -> Result<(), AwsError> {
    let group = resource
        .strip_prefix("log-group:")
        .unwrap_or(resource)
        .trim_end_matches(":*");
    let stream = d
        .event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("events")
        .to_owned();
    match registry
        .call(
            ctx,
            "logs",
            "CreateLogStream",
            json!({"logGroupName": group, "logStreamName": stream}),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.code == "ResourceAlreadyExistsException" => {}
        Err(e) => return Err(e),
    }
    let timestamp = d
        .event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(crate::now_ms, |t| t.timestamp_millis());
    registry
        .call(
            ctx,
            "logs",
            "PutLogEvents",
            json!({
                "logGroupName": group,
                "logStreamName": stream,
                "logEvents": [{"timestamp": timestamp, "message": body}],
            }),
        )
        .await
        .map(|_| ())
}
