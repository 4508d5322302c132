//! The delivery worker: claims deliveries from the store's leases and hands each to its
//! subscriber: SQS (SendMessage) and Lambda (an asynchronous Invoke with the SNS event) through
//! the in-process registry, HTTP endpoints by POST with AWS's headers. Failures are retried as
//! the protocol's delivery policy says (AWS's fixed schedule for SQS and Lambda, the
//! subscription's or topic's `healthyRetryPolicy` for HTTP/S); client errors (the queue or
//! function is gone, an endpoint answers 4xx) are not retried. What cannot be delivered goes
//! to the subscription's dead-letter queue, if it has one.

use crate::attributes::{http_content_type, http_retry_policy};
use crate::model::{Attr, DEDUP, DELIVERIES, DedupRec, Delivery, Kind, SubRec, arn_parts};
use crate::publish::FORGET_PREFIX;
use crate::sign::{confirmation_text, notification_text};
use crate::subscriptions::load_sub;
use crate::{Sns, URL_PATH, b64, iso_ms};
use basalt_core::{AwsError, RequestContext};
use basalt_outbound::Outcome;
use basalt_store::{Claim, WriteOp};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const BATCH: usize = 32;

pub(crate) fn start_worker(sns: Arc<Sns>) {
    basalt_store::Worker {
        state: sns.state.clone(),
        queue: DELIVERIES,
        lease_ms: sns.config.lease_ms,
        batch: BATCH,
        idle: Duration::from_millis(250),
        wake: sns.wake.clone(),
    }
    .spawn(move |claimed| {
        let sns = sns.clone();
        async move {
            let sends = claimed.into_iter().map(|c| handle(&sns, c));
            futures::future::join_all(sends).await;
        }
    });
}

/// Why a delivery failed.
pub(crate) enum Failure {
    /// Worth another try (the endpoint is down, throttled, failing).
    Retry(String, String),
    /// Will not succeed (the endpoint is gone or refused the message): no retries.
    Final(String, String),
}

async fn handle(sns: &Arc<Sns>, claim: Claim) {
    if claim.id.starts_with(FORGET_PREFIX) {
        forget(sns, &claim);
        return;
    }
    let Ok(d) = serde_json::from_slice::<Delivery>(&claim.payload) else {
        tracing::error!(id = %claim.id, "dropping an unreadable SNS delivery");
        let _ = sns.state.complete(&claim, &[]);
        return;
    };
    // Unsubscribed meanwhile (or the topic was deleted): nothing to deliver.
    let sub = match load_sub(sns, &d.sub_arn) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let _ = sns.state.complete(&claim, &[]);
            return;
        }
        Err(_) => {
            let _ = sns.state.release(&claim, crate::now_ms() + 1_000);
            return;
        }
    };
    if d.kind == Kind::SubscriptionConfirmation && sub.confirmed {
        let _ = sns.state.complete(&claim, &[]);
        return;
    }
    let outcome = send(sns, &sub, &d).await;
    let now = sns.state.clock_ms().unwrap_or_else(|_| crate::now_ms());
    let result = match outcome {
        Ok(()) => sns.state.complete(&claim, &[]),
        Err(Failure::Retry(code, why)) => match retry_delay_ms(sns, &sub, claim.attempt) {
            Some(delay) => {
                tracing::info!(
                    subscription = %d.sub_arn,
                    attempt = claim.attempt,
                    "SNS delivery failed, retrying in {delay} ms: {why}"
                );
                sns.state.release(&claim, now + delay)
            }
            None => {
                dead_letter(sns, &sub, &d, &code, &why).await;
                sns.state.complete(&claim, &[])
            }
        },
        Err(Failure::Final(code, why)) => {
            dead_letter(sns, &sub, &d, &code, &why).await;
            sns.state.complete(&claim, &[])
        }
    };
    if let Err(e) = result {
        tracing::debug!("finishing SNS delivery {}: {e}", claim.id);
    }
}

/// Forgets a FIFO deduplication id whose five minutes are over (unless it was used again).
fn forget(sns: &Sns, claim: &Claim) {
    let payload: Value = serde_json::from_slice(&claim.payload).unwrap_or_default();
    let key = payload
        .get("forget")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut ops = Vec::new();
    if let Ok(Some(raw)) = sns.state.get(DEDUP, key) {
        let expired =
            serde_json::from_slice::<DedupRec>(&raw).is_ok_and(|d| d.expires_ms <= crate::now_ms());
        if expired {
            ops.push(WriteOp::Check {
                table: DEDUP.into(),
                key: key.to_owned(),
                expected: Some(raw),
            });
            ops.push(WriteOp::Delete {
                table: DEDUP.into(),
                key: key.to_owned(),
            });
        }
    }
    if sns.state.complete(claim, &ops).is_err() {
        let _ = sns.state.complete(claim, &[]);
    }
}

/// The delay before retry number `attempt` (the `attempt`-th try failed), scaled for tests;
/// `None` once the policy is used up.
fn retry_delay_ms(sns: &Sns, sub: &SubRec, attempt: u32) -> Option<i64> {
    let secs = match sub.protocol.as_str() {
        "http" | "https" => {
            let topic = crate::topics::load(sns, &sub.account, &sub.region, &sub.topic)
                .ok()
                .flatten();
            http_delay(&http_retry_policy(topic.as_ref(), sub), attempt)?
        }
        _ => managed_delay(attempt)?,
    };
    Some((secs * 1000.0 * sns.config.retry_scale).round() as i64)
}

/// AWS-managed endpoints (SQS, Lambda): 3 immediate retries, 2 one second apart, 10 with
/// exponential backoff from 1 to 20 seconds, then 100,000 twenty seconds apart.
fn managed_delay(attempt: u32) -> Option<f64> {
    match attempt {
        0..=3 => Some(0.0),
        4..=5 => Some(1.0),
        6..=15 => Some(20f64.powf(f64::from(attempt - 5) / 10.0)),
        16..=100_015 => Some(20.0),
        _ => None,
    }
}

/// An HTTP/S `healthyRetryPolicy`: immediate retries, retries at the minimum delay, the
/// backoff phase from minimum to maximum, then retries at the maximum.
pub(crate) fn http_delay(policy: &Value, attempt: u32) -> Option<f64> {
    let n = |k: &str, d: i64| policy.get(k).and_then(Value::as_i64).unwrap_or(d).max(0);
    let total = n("numRetries", 3);
    let no_delay = n("numNoDelayRetries", 0);
    let at_min = n("numMinDelayRetries", 0);
    let at_max = n("numMaxDelayRetries", 0);
    let min = n("minDelayTarget", 20) as f64;
    let max = (n("maxDelayTarget", 20) as f64).max(min);
    let r = i64::from(attempt);
    if r > total {
        return None;
    }
    if r <= no_delay {
        return Some(0.0);
    }
    if r <= no_delay + at_min {
        return Some(min);
    }
    let backoff = (total - no_delay - at_min - at_max).max(0);
    let i = r - no_delay - at_min;
    if i > backoff {
        return Some(max);
    }
    let f = i as f64 / backoff.max(1) as f64;
    let delay = match policy.get("backoffFunction").and_then(Value::as_str) {
        Some("exponential") if min > 0.0 => min * (max / min).powf(f),
        Some("geometric") => min + (max - min) * f * f,
        Some("arithmetic") => min + (max - min) * f * (f + 1.0) / 2.0,
        _ => min + (max - min) * f,
    };
    Some(delay)
}

fn classify(e: AwsError) -> Failure {
    let client = matches!(
        e.code.as_str(),
        "QueueDoesNotExist"
            | "ResourceNotFoundException"
            | "InvalidParameterValue"
            | "InvalidParameterValueException"
            | "InvalidMessageContents"
            | "UnsupportedOperation"
            | "KmsAccessDenied"
            | "AccessDeniedException"
            | "RequestTooLargeException"
    );
    let code = e.query_code.clone().unwrap_or(e.code);
    if client {
        Failure::Final(code, e.message)
    } else {
        Failure::Retry(code, e.message)
    }
}

pub(crate) fn attributes_json(attrs: &BTreeMap<String, Attr>) -> Value {
    let mut m = Map::new();
    for (name, a) in attrs {
        m.insert(name.clone(), json!({"Type": a.data_type, "Value": a.value}));
    }
    Value::Object(m)
}

fn urls(sns: &Sns, d: &Delivery) -> Result<(String, String), AwsError> {
    let base = format!("{}{}", sns.config.endpoint, URL_PATH);
    let cert = format!("{base}{}", sns.signing_cert_name()?);
    let unsubscribe = format!("{base}?Action=Unsubscribe&SubscriptionArn={}", d.sub_arn);
    Ok((cert, unsubscribe))
}

/// The JSON document AWS delivers (to SQS and HTTP/S without raw delivery, to email-json),
/// in AWS's member order.
pub(crate) fn envelope(sns: &Sns, d: &Delivery) -> Result<Vec<(&'static str, Value)>, AwsError> {
    let signer = sns.signer()?;
    let (cert, unsubscribe) = urls(sns, d)?;
    let timestamp = iso_ms(d.ms);
    let mut f: Vec<(&'static str, Value)> = Vec::new();
    match d.kind {
        Kind::SubscriptionConfirmation => {
            let token = d.token.clone().unwrap_or_default();
            let subscribe = format!(
                "{}{}?Action=ConfirmSubscription&TopicArn={}&Token={}",
                sns.config.endpoint, URL_PATH, d.topic_arn, token
            );
            let text = confirmation_text(
                "SubscriptionConfirmation",
                &d.message,
                &d.message_id,
                &subscribe,
                &timestamp,
                &token,
                &d.topic_arn,
            );
            f.push(("Type", "SubscriptionConfirmation".into()));
            f.push(("MessageId", d.message_id.clone().into()));
            f.push(("Token", token.into()));
            f.push(("TopicArn", d.topic_arn.clone().into()));
            f.push(("Message", d.message.clone().into()));
            f.push(("SubscribeURL", subscribe.into()));
            f.push(("Timestamp", timestamp.into()));
            f.push(("SignatureVersion", d.signature_version.to_string().into()));
            f.push(("Signature", signer.sign(d.signature_version, &text)?.into()));
            f.push(("SigningCertURL", cert.into()));
        }
        Kind::Notification => {
            let text = notification_text(
                &d.message,
                &d.message_id,
                d.subject.as_deref(),
                &timestamp,
                &d.topic_arn,
            );
            f.push(("Type", "Notification".into()));
            f.push(("MessageId", d.message_id.clone().into()));
            if let Some(seq) = &d.seq {
                f.push(("SequenceNumber", seq.clone().into()));
            }
            f.push(("TopicArn", d.topic_arn.clone().into()));
            if let Some(s) = &d.subject {
                f.push(("Subject", s.clone().into()));
            }
            f.push(("Message", d.message.clone().into()));
            f.push(("Timestamp", timestamp.into()));
            f.push(("SignatureVersion", d.signature_version.to_string().into()));
            f.push(("Signature", signer.sign(d.signature_version, &text)?.into()));
            f.push(("SigningCertURL", cert.into()));
            f.push(("UnsubscribeURL", unsubscribe.into()));
            if !d.attrs.is_empty() {
                f.push(("MessageAttributes", attributes_json(&d.attrs)));
            }
        }
    }
    Ok(f)
}

/// The envelope as AWS writes it: one member per line, `"Name" : value`.
pub(crate) fn envelope_text(sns: &Sns, d: &Delivery) -> Result<String, AwsError> {
    let fields = envelope(sns, d)?;
    let mut out = String::from("{\n");
    for (i, (k, v)) in fields.iter().enumerate() {
        out.push_str(&format!("  \"{k}\" : {v}"));
        out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
    }
    out.push('}');
    Ok(out)
}

/// The event Lambda functions get (`Records[0].Sns`), with Lambda's own spelling of the URLs.
fn lambda_event(sns: &Sns, sub: &SubRec, d: &Delivery) -> Result<Value, AwsError> {
    let signer = sns.signer()?;
    let (cert, unsubscribe) = urls(sns, d)?;
    let timestamp = iso_ms(d.ms);
    let text = notification_text(
        &d.message,
        &d.message_id,
        d.subject.as_deref(),
        &timestamp,
        &d.topic_arn,
    );
    let mut record = json!({
        "Type": "Notification",
        "MessageId": d.message_id,
        "TopicArn": d.topic_arn,
        "Subject": d.subject,
        "Message": d.message,
        "Timestamp": timestamp,
        "SignatureVersion": d.signature_version.to_string(),
        "Signature": signer.sign(d.signature_version, &text)?,
        "SigningCertUrl": cert,
        "UnsubscribeUrl": unsubscribe,
        "MessageAttributes": attributes_json(&d.attrs),
    });
    if let Some(seq) = &d.seq {
        record["SequenceNumber"] = seq.clone().into();
    }
    Ok(json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": sub.arn(),
        "Sns": record,
    }]}))
}

fn sqs_attributes(attrs: &BTreeMap<String, Attr>) -> Value {
    let mut m = Map::new();
    for (name, a) in attrs {
        let value = if a.is_binary() {
            json!({"DataType": a.data_type, "BinaryValue": a.value})
        } else {
            json!({"DataType": a.data_type, "StringValue": a.value})
        };
        m.insert(name.clone(), value);
    }
    Value::Object(m)
}

async fn send(sns: &Sns, sub: &SubRec, d: &Delivery) -> Result<(), Failure> {
    let internal = |e: AwsError| Failure::Retry(e.code.clone(), e.message);
    match sub.protocol.as_str() {
        "sqs" => {
            let mut input = if sub.raw() {
                json!({"MessageBody": d.message, "MessageAttributes": sqs_attributes(&d.attrs)})
            } else {
                json!({"MessageBody": envelope_text(sns, d).map_err(internal)?})
            };
            to_queue(sns, &sub.endpoint, &mut input, d)
                .await
                .map_err(classify)
        }
        "lambda" => {
            let Some(registry) = sns.registry.get() else {
                return Err(Failure::Retry(
                    "ServiceUnavailable".into(),
                    "services are starting".into(),
                ));
            };
            let (_, region, account, _) = arn_parts(&sub.endpoint).unwrap_or_default();
            let ctx = RequestContext::internal(account, region, "");
            let event = lambda_event(sns, sub, d).map_err(internal)?;
            registry
                .call(
                    &ctx,
                    "lambda",
                    "Invoke",
                    json!({
                        "FunctionName": sub.endpoint,
                        "InvocationType": "Event",
                        "Payload": b64(event.to_string().as_bytes()),
                    }),
                )
                .await
                .map(|_| ())
                .map_err(classify)
        }
        "http" | "https" => {
            let topic = crate::topics::load(sns, &sub.account, &sub.region, &sub.topic)
                .ok()
                .flatten();
            let kind = match d.kind {
                Kind::Notification => "Notification",
                Kind::SubscriptionConfirmation => "SubscriptionConfirmation",
            };
            let mut headers = vec![
                ("x-amz-sns-message-type", kind.to_owned()),
                ("x-amz-sns-message-id", d.message_id.clone()),
                ("x-amz-sns-topic-arn", d.topic_arn.clone()),
                ("content-type", http_content_type(topic.as_ref(), sub)),
                (
                    "user-agent",
                    "Amazon Simple Notification Service Agent".to_owned(),
                ),
            ];
            let raw = d.kind == Kind::Notification && sub.raw();
            if d.kind == Kind::Notification {
                headers.push(("x-amz-sns-subscription-arn", sub.arn()));
            }
            if raw {
                headers.push(("x-amz-sns-rawdelivery", "true".to_owned()));
            }
            let body = if raw {
                d.message.clone()
            } else {
                envelope_text(sns, d).map_err(internal)?
            };
            match sns
                .http
                .post(&sub.endpoint, &headers, body, sns.config.http_timeout_ms)
                .await
            {
                Outcome::Status(s) if (200..300).contains(&s) => Ok(()),
                Outcome::Status(429) => Err(Failure::Retry("429".into(), "throttled".into())),
                Outcome::Status(s) if (400..500).contains(&s) => Err(Failure::Final(
                    s.to_string(),
                    format!("the endpoint answered {s}"),
                )),
                Outcome::Status(s) => Err(Failure::Retry(
                    s.to_string(),
                    format!("the endpoint answered {s}"),
                )),
                Outcome::Unreachable(why) => Err(Failure::Retry("ConnectionError".into(), why)),
            }
        }
        other => Err(Failure::Final(
            "UnsupportedProtocol".into(),
            format!("deliveries to {other} are not supported by Basalt"),
        )),
    }
}

/// SendMessage to the queue an ARN names.
async fn to_queue(
    sns: &Sns,
    queue_arn: &str,
    input: &mut Value,
    d: &Delivery,
) -> Result<(), AwsError> {
    let Some(registry) = sns.registry.get() else {
        return Err(AwsError::new(
            503,
            "ServiceUnavailable",
            "services are starting",
        ));
    };
    let Some(("sqs", region, account, name)) = arn_parts(queue_arn) else {
        return Err(AwsError::new(
            400,
            "QueueDoesNotExist",
            format!("{queue_arn} is not a queue ARN"),
        ));
    };
    input["QueueUrl"] = format!("internal/{account}/{name}").into();
    if name.ends_with(".fifo") {
        input["MessageGroupId"] = d
            .group_id
            .clone()
            .unwrap_or_else(|| "default".into())
            .into();
        input["MessageDeduplicationId"] = d
            .dedup_id
            .clone()
            .unwrap_or_else(|| d.message_id.clone())
            .into();
    }
    let ctx = RequestContext::internal(account, region, "");
    registry
        .call(&ctx, "sqs", "SendMessage", input.take())
        .await
        .map(|_| ())
}

/// Sends what could not be delivered to the subscription's dead-letter queue, with the
/// attributes SNS adds (`ErrorCode`, `ErrorMessage`, `RequestID`) where the queue has room;
/// without one the message is dropped, with a log line, as AWS drops it.
async fn dead_letter(sns: &Sns, sub: &SubRec, d: &Delivery, code: &str, why: &str) {
    let Some(dlq) = sub.dead_letter_arn() else {
        tracing::warn!(subscription = %d.sub_arn, "dropping an SNS message that could not be delivered: {why}");
        return;
    };
    if d.kind != Kind::Notification {
        return;
    }
    let mut input = if sub.raw() {
        json!({"MessageBody": d.message, "MessageAttributes": sqs_attributes(&d.attrs)})
    } else {
        match envelope_text(sns, d) {
            Ok(body) => json!({"MessageBody": body, "MessageAttributes": {}}),
            Err(e) => {
                tracing::warn!("building a dead-letter message: {}", e.message);
                return;
            }
        }
    };
    if let Some(attrs) = input["MessageAttributes"].as_object_mut()
        && attrs.len() + 3 <= 10
    {
        let s = |v: &str| json!({"DataType": "String", "StringValue": v});
        attrs.insert("ErrorCode".into(), s(code));
        attrs.insert(
            "ErrorMessage".into(),
            s(&why.chars().take(256).collect::<String>()),
        );
        attrs.insert("RequestID".into(), s(&uuid::Uuid::new_v4().to_string()));
    }
    if let Err(e) = to_queue(sns, &dlq, &mut input, d).await {
        tracing::warn!(
            dlq,
            "sending an SNS message to its dead-letter queue: {}",
            e.message
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_schedule() {
        assert_eq!(managed_delay(1), Some(0.0));
        assert_eq!(managed_delay(3), Some(0.0));
        assert_eq!(managed_delay(4), Some(1.0));
        assert!((managed_delay(15).unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(managed_delay(100_015), Some(20.0));
        assert_eq!(managed_delay(100_016), None);
    }

    #[test]
    fn http_default_is_three_retries_twenty_seconds_apart() {
        let p = crate::attributes::default_http_retry_policy();
        assert_eq!(http_delay(&p, 1), Some(20.0));
        assert_eq!(http_delay(&p, 3), Some(20.0));
        assert_eq!(http_delay(&p, 4), None);
    }

    #[test]
    fn http_phases() {
        let p = json!({"minDelayTarget": 1, "maxDelayTarget": 9, "numRetries": 6,
                       "numNoDelayRetries": 1, "numMinDelayRetries": 1, "numMaxDelayRetries": 1,
                       "backoffFunction": "linear"});
        let d: Vec<_> = (1..=7).map(|a| http_delay(&p, a)).collect();
        assert_eq!(d[0], Some(0.0));
        assert_eq!(d[1], Some(1.0));
        assert_eq!(d[4], Some(9.0));
        assert_eq!(d[5], Some(9.0));
        assert_eq!(d[6], None);
        assert!(d[2].unwrap() > 1.0 && d[2].unwrap() < 9.0);
    }
}
