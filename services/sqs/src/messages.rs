//! SendMessage and SendMessageBatch: validation, the MD5 digests the SDKs verify, and the
//! durable enqueue.

use crate::model::{Attr, Message, QueueRec};
use crate::{Sqs, error, int_param, invalid, missing, required, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

/// At most this many message attributes per message.
const MAX_ATTRIBUTES: usize = 10;
/// At most this many entries in a batch.
pub(crate) const MAX_BATCH: usize = 10;

/// A message another service sends (EventBridge and SNS targets, S3 notifications).
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub body: String,
    pub attributes: BTreeMap<String, OutgoingAttr>,
    pub delay_seconds: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct OutgoingAttr {
    pub data_type: String,
    pub string: Option<String>,
    /// Base64.
    pub binary: Option<String>,
}

/// What a send answers.
pub(crate) struct Sent {
    pub id: String,
    pub md5_body: String,
    pub md5_attrs: Option<String>,
    pub md5_sys: Option<String>,
    /// FIFO queues: the sequence number.
    pub seq: Option<String>,
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// `MD5OfMessageAttributes` as SQS computes it and the SDKs check it: for each attribute in
/// name order, the name, the data type (each as a 4-byte big-endian length and the bytes),
/// a transport byte (1 string, 2 binary) and the value the same way.
pub(crate) fn md5_of_attributes(attrs: &BTreeMap<String, Attr>) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    let field = |b: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    for (name, a) in attrs {
        field(name.as_bytes(), &mut buf);
        field(a.data_type.as_bytes(), &mut buf);
        match (&a.string, &a.binary) {
            (Some(s), _) => {
                buf.push(1);
                field(s.as_bytes(), &mut buf);
            }
            (None, Some(b)) => {
                buf.push(2);
                field(&decode_b64(b), &mut buf);
            }
            (None, None) => {}
        }
    }
    Some(md5_hex(&buf))
}

fn decode_b64(b: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b)
        .unwrap_or_default()
}

/// Whether every character is one SQS accepts: `#x9 | #xA | #xD | #x20-#xD7FF |
/// #xE000-#xFFFD | #x10000-#x10FFFF` (Rust strings cannot hold surrogates).
fn valid_text(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

fn invalid_contents() -> AwsError {
    error(
        "InvalidMessageContents",
        "InvalidMessageContents",
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
    )
}

fn attr_name_ok(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

/// Parses and checks `MessageAttributes`.
fn parse_attributes(input: &Value) -> Result<BTreeMap<String, Attr>, AwsError> {
    let mut out = BTreeMap::new();
    let Some(map) = input.get("MessageAttributes").and_then(Value::as_object) else {
        return Ok(out);
    };
    if map.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].",
            map.len()
        )));
    }
    for (name, v) in map {
        if !attr_name_ok(name) {
            return Err(invalid(format!(
                "Message (user) attribute name '{name}' is invalid."
            )));
        }
        let data_type = str_of(v, "DataType").ok_or_else(|| {
            invalid(format!(
                "The message attribute '{name}' must contain non-empty message attribute type."
            ))
        })?;
        let base = data_type.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") || data_type.len() > 256 {
            return Err(invalid(format!(
                "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )));
        }
        let string = str_of(v, "StringValue").map(str::to_owned);
        let binary = str_of(v, "BinaryValue").map(str::to_owned);
        match base {
            "Binary" if binary.is_none() => {
                return Err(invalid(format!(
                    "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                )));
            }
            "String" | "Number" if string.as_deref().is_none_or(str::is_empty) => {
                return Err(invalid(format!(
                    "The message attribute '{name}' with type '{base}' must use field 'String'."
                )));
            }
            "Number" => {
                let s = string.as_deref().unwrap_or("");
                if s.trim().parse::<f64>().is_err() {
                    return Err(invalid(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
            }
            _ => {}
        }
        if string.as_deref().is_some_and(|s| !valid_text(s)) {
            return Err(invalid_contents());
        }
        out.insert(
            name.clone(),
            Attr {
                data_type: data_type.to_owned(),
                string: if base == "Binary" { None } else { string },
                binary: if base == "Binary" { binary } else { None },
            },
        );
    }
    Ok(out)
}

/// The size SQS counts against MaximumMessageSize: the body plus each attribute's name, type
/// and value.
fn size_of(body: &str, attrs: &BTreeMap<String, Attr>) -> usize {
    body.len()
        + attrs
            .iter()
            .map(|(n, a)| {
                n.len()
                    + a.data_type.len()
                    + a.string.as_ref().map_or(0, String::len)
                    + a.binary.as_ref().map_or(0, |b| decode_b64(b).len())
            })
            .sum::<usize>()
}

/// One message, checked against its queue, ready to enqueue.
fn prepare(
    q: &QueueRec,
    entry: &Value,
    sender: &str,
    now: i64,
) -> Result<(Message, i64, Sent), AwsError> {
    let body = match entry.get("MessageBody") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(missing("MessageBody")),
    };
    if !valid_text(body) {
        return Err(invalid_contents());
    }
    let attrs = parse_attributes(entry)?;
    let max = q.num("MaximumMessageSize") as usize;
    if size_of(body, &attrs) > max {
        return Err(invalid(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
        )));
    }
    // Standard queues accept a MessageGroupId (fair queues) and order nothing by it.
    let trace = entry
        .get("MessageSystemAttributes")
        .and_then(|m| m.get("AWSTraceHeader"))
        .and_then(|a| str_of(a, "StringValue"))
        .map(str::to_owned);
    let delay = if q.is_fifo() {
        // Per-message delays are refused for FIFO queues (`fifo::prepare`).
        q.num("DelaySeconds")
    } else {
        int_param(entry, "DelaySeconds", 0, 900)?.unwrap_or_else(|| q.num("DelaySeconds"))
    };
    let md5_attrs = md5_of_attributes(&attrs);
    let md5_sys = trace.as_ref().map(|t| {
        let mut sys = BTreeMap::new();
        sys.insert(
            "AWSTraceHeader".to_owned(),
            Attr {
                data_type: "String".into(),
                string: Some(t.clone()),
                binary: None,
            },
        );
        md5_of_attributes(&sys).unwrap_or_default()
    });
    let mut m = Message {
        id: uuid::Uuid::new_v4().to_string(),
        md5_body: md5_hex(body.as_bytes()),
        body: body.to_owned(),
        attrs,
        md5_attrs: md5_attrs.clone(),
        trace,
        sent_ms: now,
        sender: sender.to_owned(),
        dlq_source: None,
        group: None,
        dedup: None,
        seq: None,
    };
    if q.is_fifo() {
        crate::fifo::prepare(q, entry, &mut m)?;
    }
    let sent = Sent {
        id: m.id.clone(),
        md5_body: m.md5_body.clone(),
        md5_attrs,
        md5_sys,
        seq: None,
    };
    Ok((m, now + delay * 1000, sent))
}

pub(crate) fn enqueue_op(q: &QueueRec, m: &Message, due_ms: i64) -> WriteOp {
    WriteOp::Enqueue {
        queue: q.lease_queue(),
        id: m.id.clone(),
        payload: serde_json::to_vec(m).unwrap_or_default(),
        due_ms,
    }
}

fn sent_json(sent: &Sent) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("MessageId".into(), sent.id.clone().into());
    out.insert("MD5OfMessageBody".into(), sent.md5_body.clone().into());
    if let Some(m) = &sent.md5_attrs {
        out.insert("MD5OfMessageAttributes".into(), m.clone().into());
    }
    if let Some(m) = &sent.md5_sys {
        out.insert("MD5OfMessageSystemAttributes".into(), m.clone().into());
    }
    if let Some(seq) = &sent.seq {
        out.insert("SequenceNumber".into(), seq.clone().into());
    }
    out
}

/// Stores prepared messages: one batch for a standard queue; one by one, in order, through
/// the sequence and deduplication records for a FIFO queue. Returns each one's answer.
fn store(
    sqs: &Sqs,
    q: &QueueRec,
    prepared: Vec<(Message, i64, Sent)>,
) -> Result<Vec<Result<Sent, AwsError>>, AwsError> {
    if !q.is_fifo() {
        let ops: Vec<WriteOp> = prepared
            .iter()
            .map(|(m, due, _)| enqueue_op(q, m, *due))
            .collect();
        if !ops.is_empty() {
            sqs.state.batch(&ops)?;
        }
        for (m, _, _) in &prepared {
            sqs.counters.sent(q, size_of(&m.body, &m.attrs));
        }
        return Ok(prepared.into_iter().map(|(_, _, sent)| Ok(sent)).collect());
    }
    let mut out = Vec::with_capacity(prepared.len());
    for (mut m, due, mut sent) in prepared {
        let size = size_of(&m.body, &m.attrs);
        out.push(crate::fifo::send(sqs, q, &mut m, due).map(|f| {
            sqs.counters.sent(q, size);
            // A duplicate answers with the first message's id and sequence number.
            sent.id = f.id;
            sent.seq = Some(f.seq);
            sent
        }));
    }
    Ok(out)
}

/// The sender a message records (`SenderId`): the caller's user id.
fn sender_of(ctx: &RequestContext) -> &str {
    &ctx.caller.user_id
}

pub fn send(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let now = sqs.clock()?;
    let prepared = prepare(&q, input, sender_of(ctx), now)?;
    let sent = store(sqs, &q, vec![prepared])?.remove(0)?;
    sqs.notify(&q.lease_queue());
    Ok(Value::Object(sent_json(&sent)))
}

/// Sends one message on behalf of another service.
pub(crate) fn send_one(
    sqs: &Sqs,
    q: &QueueRec,
    out: Outgoing,
    sender: &str,
) -> Result<Sent, AwsError> {
    let mut entry = json!({"MessageBody": out.body});
    if !out.attributes.is_empty() {
        let attrs: Map<String, Value> = out
            .attributes
            .into_iter()
            .map(|(k, a)| {
                let mut v = json!({"DataType": a.data_type});
                if let Some(s) = a.string {
                    v["StringValue"] = s.into();
                }
                if let Some(b) = a.binary {
                    v["BinaryValue"] = b.into();
                }
                (k, v)
            })
            .collect();
        entry["MessageAttributes"] = Value::Object(attrs);
    }
    if let Some(d) = out.delay_seconds {
        entry["DelaySeconds"] = d.into();
    }
    let now = sqs.clock()?;
    let prepared = prepare(q, &entry, sender, now)?;
    let sent = store(sqs, q, vec![prepared])?.remove(0)?;
    sqs.notify(&q.lease_queue());
    Ok(sent)
}

/// Checks a batch's entries: 1 to 10, ids well formed and distinct.
pub(crate) fn check_batch(input: &Value) -> Result<&Vec<Value>, AwsError> {
    let entries = input
        .get("Entries")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("Entries"))?;
    if entries.is_empty() {
        return Err(error(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        ));
    }
    if entries.len() > MAX_BATCH {
        return Err(error(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are {MAX_BATCH}. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for e in entries {
        let id = str_of(e, "Id").unwrap_or("");
        let ok = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(error(
                "InvalidBatchEntryId",
                "AWS.SimpleQueueService.InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(error(
                "BatchEntryIdsNotDistinct",
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(entries)
}

pub(crate) fn failed(id: &str, e: &AwsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": e.status < 500,
        "Code": e.query_code.clone().unwrap_or_else(|| e.code.clone()),
        "Message": e.message,
    })
}

pub fn send_batch(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let entries = check_batch(input)?;
    let max = q.num("MaximumMessageSize") as usize;
    let total: usize = entries
        .iter()
        .map(|e| str_of(e, "MessageBody").map_or(0, str::len))
        .sum();
    if total > max {
        return Err(error(
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            format!(
                "Batch requests cannot be longer than {max} bytes. You have sent {total} bytes."
            ),
        ));
    }
    let now = sqs.clock()?;
    let mut prepared = Vec::new();
    let mut ids = Vec::new();
    let mut ok = Vec::new();
    let mut failed_entries = Vec::new();
    for e in entries {
        let id = str_of(e, "Id").unwrap_or_default();
        match prepare(&q, e, sender_of(ctx), now) {
            Ok(p) => {
                prepared.push(p);
                ids.push(id);
            }
            Err(err) => failed_entries.push(failed(id, &err)),
        }
    }
    if !prepared.is_empty() {
        for (id, result) in ids.into_iter().zip(store(sqs, &q, prepared)?) {
            match result {
                Ok(sent) => {
                    let mut out = sent_json(&sent);
                    out.insert("Id".into(), id.into());
                    ok.push(Value::Object(out));
                }
                Err(err) => failed_entries.push(failed(id, &err)),
            }
        }
        sqs.notify(&q.lease_queue());
    }
    Ok(json!({"Successful": ok, "Failed": failed_entries}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(t: &str, s: Option<&str>, b: Option<&str>) -> Attr {
        Attr {
            data_type: t.into(),
            string: s.map(Into::into),
            binary: b.map(Into::into),
        }
    }

    #[test]
    fn md5_of_body_and_attributes_match_aws() {
        // Values from the SQS developer guide's MD5 example and botocore's test suite.
        assert_eq!(md5_hex(b"Hello world"), "3e25960a79dbc69b674cd4ec67a72c62");
        let mut attrs = BTreeMap::new();
        assert_eq!(md5_of_attributes(&attrs), None);
        attrs.insert("foo".into(), attr("String", Some("bar"), None));
        // name "foo", type "String", transport 1, value "bar", each length-prefixed.
        let mut buf = Vec::new();
        for part in [&b"foo"[..], b"String"] {
            buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
            buf.extend_from_slice(part);
        }
        buf.push(1);
        buf.extend_from_slice(&3u32.to_be_bytes());
        buf.extend_from_slice(b"bar");
        assert_eq!(md5_of_attributes(&attrs), Some(md5_hex(&buf)));
        // Order is by name whatever the insertion order, binary values are decoded.
        attrs.insert("a".into(), attr("Binary", None, Some("AAEC")));
        let digest = md5_of_attributes(&attrs).unwrap();
        assert_ne!(digest, md5_hex(&buf));
        assert_eq!(digest.len(), 32);
    }

    #[test]
    fn message_text() {
        assert!(valid_text("plain \t\n\r text é ✓ 𝄞"));
        assert!(!valid_text("bell \u{7}"));
        assert!(!valid_text("\u{FFFF}"));
    }

    #[test]
    fn attribute_names() {
        assert!(attr_name_ok("user.name-1_x"));
        assert!(!attr_name_ok("AWS.reserved"));
        assert!(!attr_name_ok("amazon.x"));
        assert!(!attr_name_ok(".lead"));
        assert!(!attr_name_ok("trail."));
        assert!(!attr_name_ok("two..dots"));
        assert!(!attr_name_ok("sp ace"));
    }
}
