//! ReceiveMessage (with long polling), DeleteMessage(Batch) and
//! ChangeMessageVisibility(Batch): claims, completions and renewals of the queue's leases.

use crate::messages::{check_batch, failed, md5_of_attributes};
use crate::model::{Attr, FIRST_RECEIVES, Message, QueueRec};
use crate::{Sqs, error, fifo, int_param, invalid, missing, required, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, StoreError, WriteOp};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// How often a long poll looks again without being woken: for messages sent through another
/// node and delays running out.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// A receipt handle names the queue, the message and the claim:
/// base64url(`{queue id}/{message id}/{lease token}`).
fn receipt(q: &QueueRec, claim: &Claim) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}/{}/{}", q.id, claim.id, claim.token))
}

fn invalid_receipt(handle: &str) -> AwsError {
    error(
        "ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

/// What a receipt handle stands for.
enum Handle {
    Standard(Claim),
    Fifo(fifo::Received),
}

/// The claim(s) a receipt handle stands for, if it is one of `q`'s.
fn handle_of(q: &QueueRec, handle: &str) -> Result<Handle, AwsError> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_receipt(handle))?;
    if q.is_fifo() {
        return fifo::parse_receipt(q, &decoded)
            .map(Handle::Fifo)
            .ok_or_else(|| invalid_receipt(handle));
    }
    let mut parts = decoded.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(queue), Some(id), Some(token)) if queue == q.id && !id.is_empty() => {
            Ok(Handle::Standard(Claim {
                queue: q.lease_queue(),
                id: id.to_owned(),
                payload: Vec::new(),
                attempt: 0,
                token: token.to_owned(),
                expires_ms: 0,
            }))
        }
        _ => Err(invalid_receipt(handle)),
    }
}

fn names(input: &Value, member: &str) -> Vec<String> {
    input
        .get(member)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a message attribute named `name` is asked for by `wanted` (`All`, `.*`, exact
/// names, and `prefix.*`).
fn attribute_wanted(wanted: &[String], name: &str) -> bool {
    wanted.iter().any(|w| {
        w == "All"
            || w == ".*"
            || w == name
            || w.strip_suffix(".*")
                .is_some_and(|p| name.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
    })
}

struct Asked {
    system: Vec<String>,
    user: Vec<String>,
    max: usize,
    visibility_ms: i64,
    wait: Duration,
}

fn asked(q: &QueueRec, input: &Value) -> Result<Asked, AwsError> {
    let max = int_param(input, "MaxNumberOfMessages", 1, 10).map_err(|_| {
        invalid("Value for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
    })?;
    let visibility = int_param(input, "VisibilityTimeout", 0, 43_200)?
        .unwrap_or_else(|| q.num("VisibilityTimeout"));
    let wait = int_param(input, "WaitTimeSeconds", 0, 20).map_err(|_| {
        invalid("Value for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
    })?
    .unwrap_or_else(|| q.num("ReceiveMessageWaitTimeSeconds"));
    let mut system = names(input, "AttributeNames");
    system.extend(names(input, "MessageSystemAttributeNames"));
    Ok(Asked {
        system,
        user: names(input, "MessageAttributeNames"),
        max: max.unwrap_or(1) as usize,
        visibility_ms: visibility * 1000,
        wait: Duration::from_secs(wait as u64),
    })
}

pub async fn receive(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let asked = asked(&q, input)?;
    let deadline = tokio::time::Instant::now() + asked.wait;
    let waiter = sqs.waiter(&q.lease_queue());
    loop {
        // Registered before looking, so that a send between the look and the wait wakes it.
        let woken = waiter.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let messages = take(sqs, &q, &asked)?;
        let now = tokio::time::Instant::now();
        if !messages.is_empty() || now >= deadline {
            sqs.counters.received(&q, messages.len());
            let mut out = Map::new();
            if !messages.is_empty() {
                out.insert("Messages".into(), Value::Array(messages));
            }
            return Ok(Value::Object(out));
        }
        let nap = POLL_EVERY.min(deadline - now);
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// One look at the queue: claims up to `max` messages. Messages past the retention period
/// are dropped, and those received more often than the redrive policy allows move to the
/// dead-letter queue, instead of being returned.
fn take(sqs: &Sqs, q: &QueueRec, asked: &Asked) -> Result<Vec<Value>, AwsError> {
    if q.is_fifo() {
        return take_fifo(sqs, q, asked);
    }
    let now = sqs.clock()?;
    let claims = sqs
        .state
        .claim(&q.lease_queue(), now, asked.visibility_ms, asked.max)?;
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let retention_ms = q.num("MessageRetentionPeriod") * 1000;
    let redrive = q.redrive();
    let mut first_receives = Vec::new();
    let mut out = Vec::new();
    for claim in claims {
        let Ok(mut m) = serde_json::from_slice::<Message>(&claim.payload) else {
            tracing::error!(queue = %q.name, id = %claim.id, "dropping an unreadable message");
            let _ = sqs.state.complete(&claim, &[]);
            continue;
        };
        if now - m.sent_ms > retention_ms {
            let _ = sqs
                .state
                .complete(&claim, &[delete_first_receive(&claim.id)]);
            continue;
        }
        if let Some((dlq_arn, max)) = &redrive
            && claim.attempt > *max
        {
            dead_letter(sqs, q, &claim, &mut m, dlq_arn);
            continue;
        }
        let first = first_receive(sqs, &claim.id, claim.attempt, now, &mut first_receives)?;
        out.push(render(&receipt(q, &claim), claim.attempt, &m, asked, first));
    }
    if !first_receives.is_empty()
        && let Err(e) = sqs.state.batch(&first_receives)
    {
        tracing::warn!(queue = %q.name, "recording first receive times: {e}");
    }
    Ok(out)
}

/// The FIFO look: whole groups in order (see `fifo.rs`).
fn take_fifo(sqs: &Sqs, q: &QueueRec, asked: &Asked) -> Result<Vec<Value>, AwsError> {
    let received = fifo::claim(sqs, q, asked.max, asked.visibility_ms)?;
    if received.is_empty() {
        return Ok(Vec::new());
    }
    let now = sqs.clock()?;
    let retention_ms = q.num("MessageRetentionPeriod") * 1000;
    let redrive = q.redrive();
    let mut first_receives = Vec::new();
    let mut out = Vec::new();
    // Once one message of a group is held back (moved or expired), the group's later
    // messages in this batch are given back rather than delivered past it.
    for (r, mut m) in received {
        if now - m.sent_ms > retention_ms {
            fifo::remove(sqs, q, &r, &[])?;
            continue;
        }
        if let Some((dlq_arn, max)) = &redrive
            && r.msg.attempt > *max
            && let Ok(Some(dlq)) = sqs.queue_by_arn(dlq_arn)
        {
            m.dlq_source = Some(q.arn());
            let mut moved = m.clone();
            moved.id = uuid::Uuid::new_v4().to_string();
            moved.seq = None;
            // "The original message's deduplication ID will be replaced with the original
            // message's ID", so that two messages sharing a deduplication id both land
            // (Developer Guide, configuring a dead-letter queue redrive).
            moved.dedup = Some(m.id.clone());
            // At least once: stored in the dead-letter queue, then removed here.
            fifo::send(sqs, &dlq, &mut moved, now)?;
            fifo::remove(sqs, q, &r, &[])?;
            sqs.notify(&dlq.lease_queue());
            continue;
        }
        let key = format!("{}/{}", q.id, r.msg.id);
        let first = first_receive(sqs, &key, r.msg.attempt, now, &mut first_receives)?;
        out.push(render(
            &fifo::receipt(q, &r),
            r.msg.attempt,
            &m,
            asked,
            first,
        ));
    }
    if !first_receives.is_empty()
        && let Err(e) = sqs.state.batch(&first_receives)
    {
        tracing::warn!(queue = %q.name, "recording first receive times: {e}");
    }
    Ok(out)
}

/// `ApproximateFirstReceiveTimestamp`: now on the first receive (recorded with `writes`),
/// else as recorded then.
fn first_receive(
    sqs: &Sqs,
    key: &str,
    attempt: u32,
    now: i64,
    writes: &mut Vec<WriteOp>,
) -> Result<i64, AwsError> {
    if attempt == 1 {
        writes.push(WriteOp::Put {
            table: FIRST_RECEIVES.into(),
            key: key.to_owned(),
            value: now.to_string().into_bytes(),
        });
        return Ok(now);
    }
    // The messages are claimed already: a store hiccup here must not swallow them.
    Ok(sqs
        .state
        .get(FIRST_RECEIVES, key)
        .ok()
        .flatten()
        .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(now))
}

fn delete_first_receive(id: &str) -> WriteOp {
    WriteOp::Delete {
        table: FIRST_RECEIVES.into(),
        key: id.to_owned(),
    }
}

/// Moves a message that was received too often to the dead-letter queue, in the transaction
/// that completes its claim here. Without a dead-letter queue (deleted since), it stays.
fn dead_letter(sqs: &Sqs, q: &QueueRec, claim: &Claim, m: &mut Message, dlq_arn: &str) {
    let dlq = match sqs.queue_by_arn(dlq_arn) {
        Ok(Some(dlq)) => dlq,
        _ => {
            let _ = sqs.state.release(claim, claim.expires_ms);
            return;
        }
    };
    m.dlq_source = Some(q.arn());
    let ops = [
        crate::messages::enqueue_op(&dlq, m, 0),
        delete_first_receive(&claim.id),
    ];
    match sqs.state.complete(claim, &ops) {
        Ok(()) => sqs.notify(&dlq.lease_queue()),
        Err(e) => tracing::warn!(queue = %q.name, "moving a message to its dead-letter queue: {e}"),
    }
}

fn render(receipt: &str, attempt: u32, m: &Message, asked: &Asked, first_ms: i64) -> Value {
    let mut msg = Map::new();
    msg.insert("MessageId".into(), m.id.clone().into());
    msg.insert("ReceiptHandle".into(), receipt.into());
    msg.insert("MD5OfBody".into(), m.md5_body.clone().into());
    msg.insert("Body".into(), m.body.clone().into());
    let all = asked.system.iter().any(|n| n == "All");
    let want = |n: &str| all || asked.system.iter().any(|x| x == n);
    let mut sys = Map::new();
    let mut put = |n: &str, v: Option<String>| {
        if want(n)
            && let Some(v) = v
        {
            sys.insert(n.into(), v.into());
        }
    };
    put("SenderId", Some(m.sender.clone()));
    put("SentTimestamp", Some(m.sent_ms.to_string()));
    put("ApproximateReceiveCount", Some(attempt.to_string()));
    put(
        "ApproximateFirstReceiveTimestamp",
        Some(first_ms.to_string()),
    );
    put("AWSTraceHeader", m.trace.clone());
    put("DeadLetterQueueSourceArn", m.dlq_source.clone());
    put("MessageGroupId", m.group.clone());
    put("MessageDeduplicationId", m.dedup.clone());
    put("SequenceNumber", m.seq.clone());
    if !sys.is_empty() {
        msg.insert("Attributes".into(), Value::Object(sys));
    }
    let chosen: BTreeMap<String, Attr> = m
        .attrs
        .iter()
        .filter(|(n, _)| attribute_wanted(&asked.user, n))
        .map(|(n, a)| (n.clone(), a.clone()))
        .collect();
    if !chosen.is_empty() {
        if let Some(md5) = md5_of_attributes(&chosen) {
            msg.insert("MD5OfMessageAttributes".into(), md5.into());
        }
        let attrs: Map<String, Value> = chosen
            .into_iter()
            .map(|(n, a)| {
                let mut v = Map::new();
                v.insert("DataType".into(), a.data_type.into());
                if let Some(s) = a.string {
                    v.insert("StringValue".into(), s.into());
                }
                if let Some(b) = a.binary {
                    v.insert("BinaryValue".into(), b.into());
                }
                (n, Value::Object(v))
            })
            .collect();
        msg.insert("MessageAttributes".into(), Value::Object(attrs));
    } else if let Some(md5) = &m.md5_attrs {
        msg.insert("MD5OfMessageAttributes".into(), md5.clone().into());
    }
    Value::Object(msg)
}

/// Deletes the message a handle's claim holds. A handle whose claim is no longer current (the
/// message was deleted, or received again since) deletes nothing and is not an error, as AWS
/// answers it.
fn delete_one(sqs: &Sqs, q: &QueueRec, handle: &str) -> Result<(), AwsError> {
    // Every deletion with a valid handle counts, repeated ones included (AWS's definition of
    // NumberOfMessagesDeleted).
    let counted = |r: Result<(), AwsError>| {
        if r.is_ok() {
            sqs.counters.deleted(q);
        }
        r
    };
    counted(match handle_of(q, handle)? {
        Handle::Standard(claim) => match sqs
            .state
            .complete(&claim, &[delete_first_receive(&claim.id)])
        {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        },
        Handle::Fifo(r) => fifo::remove(sqs, q, &r, &[]).map(|_| ()),
    })
}

pub fn delete(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    delete_one(sqs, &q, required(input, "ReceiptHandle")?)?;
    Ok(json!({}))
}

pub fn delete_batch(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let entries = check_batch(input)?;
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for e in entries {
        let id = str_of(e, "Id").unwrap_or_default();
        let result = str_of(e, "ReceiptHandle")
            .ok_or_else(|| missing("ReceiptHandle"))
            .and_then(|h| delete_one(sqs, &q, h));
        match result {
            Ok(()) => ok.push(json!({"Id": id})),
            Err(err) => bad.push(failed(id, &err)),
        }
    }
    Ok(json!({"Successful": ok, "Failed": bad}))
}

/// Sets a received message's remaining invisibility to `seconds` from now (0: visible now).
fn change_one(sqs: &Sqs, q: &QueueRec, handle: &str, seconds: Option<i64>) -> Result<(), AwsError> {
    let handle = handle_of(q, handle)?;
    let seconds = match seconds {
        Some(s) if (0..=43_200).contains(&s) => s,
        Some(s) => {
            return Err(invalid(format!(
                "Value {s} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided."
            )));
        }
        None => return Err(missing("VisibilityTimeout")),
    };
    let now = sqs.clock()?;
    let result = match &handle {
        Handle::Fifo(r) => fifo::change_visibility(sqs, q, r, seconds),
        Handle::Standard(claim) if seconds == 0 => sqs.state.release(claim, now).map(|_| ()),
        Handle::Standard(claim) => sqs.state.renew(claim, now, seconds * 1000).map(|_| ()),
    };
    match result {
        Ok(()) => {
            if seconds == 0 {
                sqs.notify(&q.lease_queue());
            }
            Ok(())
        }
        Err(StoreError::Conflict) => Err(error(
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            "Message does not exist or is not available for visibility timeout change.",
        )),
        Err(e) => Err(e.into()),
    }
}

pub fn change_visibility(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let seconds = input.get("VisibilityTimeout").and_then(Value::as_i64);
    change_one(sqs, &q, required(input, "ReceiptHandle")?, seconds)?;
    Ok(json!({}))
}

pub fn change_visibility_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let entries = check_batch(input)?;
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for e in entries {
        let id = str_of(e, "Id").unwrap_or_default();
        let seconds = e
            .get("VisibilityTimeout")
            .and_then(Value::as_i64)
            .or(Some(0));
        let result = str_of(e, "ReceiptHandle")
            .ok_or_else(|| missing("ReceiptHandle"))
            .and_then(|h| change_one(sqs, &q, h, seconds));
        match result {
            Ok(()) => ok.push(json!({"Id": id})),
            Err(err) => bad.push(failed(id, &err)),
        }
    }
    Ok(json!({"Successful": ok, "Failed": bad}))
}

#[cfg(test)]
mod tests {
    use super::attribute_wanted;

    #[test]
    fn message_attribute_selection() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(attribute_wanted(&w(&["All"]), "x"));
        assert!(attribute_wanted(&w(&[".*"]), "x"));
        assert!(attribute_wanted(&w(&["x"]), "x"));
        assert!(!attribute_wanted(&w(&["x"]), "y"));
        assert!(attribute_wanted(&w(&["bar.*"]), "bar.baz"));
        assert!(!attribute_wanted(&w(&["bar.*"]), "barbaz"));
        assert!(!attribute_wanted(&w(&[]), "x"));
    }
}
