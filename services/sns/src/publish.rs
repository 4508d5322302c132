//! Publish and PublishBatch: checks the message as SNS does, evaluates each confirmed
//! subscription's filter policy and stores one delivery per match in the transaction that
//! acknowledges the message (FIFO topics: with the topic's next sequence number and the
//! deduplication id, under a precondition on the topic so concurrent publishers never share a
//! number). Email, email-json and SMS endpoints get their record in that same transaction.

use crate::attributes::{compile_policy, parse_scope};
use crate::model::{
    Attr, DEDUP, DELIVERIES, DedupRec, Delivery, Kind, RECORDS, SubRec, TOPICS, TopicRec,
    parse_topic_arn, record_key,
};
use crate::topics::{encode, load_raw, subscriptions};
use crate::{Sns, invalid, invalid_value, iso_ms, no_topic, now_ms, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_eventpattern::FilterPolicyScope;
use basalt_store::{StoreError, WriteOp};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// 256 KiB: the message and its attributes together.
pub const MAX_MESSAGE: usize = 262_144;
const MAX_BATCH: usize = 10;
/// FIFO deduplication interval.
const DEDUP_MS: i64 = 5 * 60 * 1000;
/// Work items of [`DELIVERIES`] with this prefix forget a deduplication id.
pub const FORGET_PREFIX: &str = "dedup/";

/// A checked message, not yet stored.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub message_id: String,
    pub message: String,
    /// MessageStructure `json`: the message per protocol (`default` included).
    pub structure: Option<Map<String, Value>>,
    pub subject: Option<String>,
    pub attrs: BTreeMap<String, Attr>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

impl Prepared {
    fn message_for(&self, protocol: &str) -> String {
        match &self.structure {
            Some(s) => s
                .get(protocol)
                .or_else(|| s.get("default"))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default(),
            None => self.message.clone(),
        }
    }
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

fn parse_attributes(entry: &Value) -> Result<BTreeMap<String, Attr>, AwsError> {
    let mut out = BTreeMap::new();
    let Some(map) = entry.get("MessageAttributes").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (name, v) in map {
        if !attr_name_ok(name) {
            return Err(invalid_value(format!(
                "The message attribute name '{name}' is invalid."
            )));
        }
        let data_type = str_of(v, "DataType").unwrap_or_default();
        let base = data_type.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") {
            return Err(invalid_value(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        let value = if base == "Binary" {
            str_of(v, "BinaryValue")
        } else {
            str_of(v, "StringValue")
        };
        let Some(value) = value.filter(|s| !s.is_empty()) else {
            return Err(invalid_value(format!(
                "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{base}'."
            )));
        };
        if base == "Number" && value.trim().parse::<f64>().is_err() {
            return Err(invalid_value(format!(
                "Could not cast message attribute '{name}' value to number."
            )));
        }
        if data_type == "String.Array"
            && !serde_json::from_str::<Value>(value).is_ok_and(|v| {
                v.as_array()
                    .is_some_and(|a| a.iter().all(|x| !x.is_array() && !x.is_object()))
            })
        {
            return Err(invalid(format!(
                "Message attribute '{name}' with type 'String.Array' must have a value that is an array of strings, numbers, booleans or null."
            )));
        }
        out.insert(
            name.clone(),
            Attr {
                data_type: data_type.to_owned(),
                value: value.to_owned(),
            },
        );
    }
    Ok(out)
}

fn attrs_size(attrs: &BTreeMap<String, Attr>) -> usize {
    attrs
        .iter()
        .map(|(n, a)| n.len() + a.data_type.len() + a.value.len())
        .sum()
}

fn subject_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() < 100
        && s.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
        && !s.starts_with(' ')
}

/// Checks one message (Publish's input or one batch entry) against its topic.
pub(crate) fn prepare(topic: &TopicRec, entry: &Value) -> Result<Prepared, AwsError> {
    let message = match entry.get("Message") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("Empty message")),
    };
    let attrs = parse_attributes(entry)?;
    if message.len() + attrs_size(&attrs) > MAX_MESSAGE {
        return Err(invalid("Message too long"));
    }
    let subject = match str_of(entry, "Subject") {
        Some(s) if !subject_ok(s) => return Err(invalid("Subject")),
        s => s.map(str::to_owned),
    };
    let structure = match str_of(entry, "MessageStructure") {
        None => None,
        Some("json") => {
            let v: Value = serde_json::from_str(&message)
                .map_err(|_| invalid("Message Structure - JSON message body failed to parse"))?;
            let Value::Object(m) = v else {
                return Err(invalid(
                    "Message Structure - JSON message body failed to parse",
                ));
            };
            if !m.get("default").is_some_and(Value::is_string) {
                return Err(invalid(
                    "Message Structure - No default entry in JSON message body",
                ));
            }
            Some(m)
        }
        Some(_) => return Err(invalid("MessageStructure")),
    };
    let group_id = str_of(entry, "MessageGroupId").map(str::to_owned);
    let mut dedup_id = str_of(entry, "MessageDeduplicationId").map(str::to_owned);
    let id_ok =
        |s: &str| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
    if let Some(g) = &group_id
        && !id_ok(g)
    {
        return Err(invalid(
            "MessageGroupId Reason: MessageGroupId can contain only alphanumeric characters and punctuation, and be at most 128 characters long",
        ));
    }
    if let Some(d) = &dedup_id
        && !id_ok(d)
    {
        return Err(invalid(
            "MessageDeduplicationId Reason: MessageDeduplicationId can contain only alphanumeric characters and punctuation, and be at most 128 characters long",
        ));
    }
    if topic.is_fifo() {
        if group_id.is_none() {
            return Err(invalid(
                "The MessageGroupId parameter is required for FIFO topics",
            ));
        }
        if dedup_id.is_none() {
            if !topic.content_dedup() {
                return Err(invalid(
                    "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
            use sha2::Digest;
            dedup_id = Some(hex(&sha2::Sha256::digest(message.as_bytes())));
        }
    } else if dedup_id.is_some() {
        return Err(invalid(
            "MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
        ));
    }
    Ok(Prepared {
        message_id: uuid::Uuid::new_v4().to_string(),
        message,
        structure,
        subject,
        attrs,
        group_id,
        dedup_id,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The object a `MessageAttributes`-scoped policy is matched against.
pub(crate) fn attributes_doc(attrs: &BTreeMap<String, Attr>) -> Value {
    let mut m = Map::new();
    for (name, a) in attrs {
        let v = if a.data_type == "String.Array" {
            serde_json::from_str(&a.value).unwrap_or(Value::Null)
        } else if a.data_type.starts_with("Number") {
            let t = a.value.trim();
            t.parse::<i64>()
                .map(Value::from)
                .or_else(|_| t.parse::<f64>().map(Value::from))
                .unwrap_or(Value::Null)
        } else if a.is_binary() {
            continue;
        } else {
            Value::from(a.value.clone())
        };
        m.insert(name.clone(), v);
    }
    Value::Object(m)
}

/// Whether a subscription takes the message.
pub(crate) fn matches(sub: &SubRec, p: &Prepared) -> bool {
    let Some(policy) = sub.attributes.get("FilterPolicy").filter(|p| !p.is_empty()) else {
        return true;
    };
    let scope = sub
        .attributes
        .get("FilterPolicyScope")
        .map_or(Ok(FilterPolicyScope::MessageAttributes), |s| parse_scope(s))
        .unwrap_or_default();
    let Ok(policy) = compile_policy(policy, scope) else {
        return false;
    };
    match scope {
        FilterPolicyScope::MessageAttributes => policy.matches(&attributes_doc(&p.attrs)),
        FilterPolicyScope::MessageBody => {
            serde_json::from_str::<Value>(&p.message_for(&sub.protocol))
                .is_ok_and(|body| policy.matches(&body))
        }
    }
}

fn delivery(topic: &TopicRec, sub: &SubRec, p: &Prepared, ms: i64, seq: Option<&str>) -> Delivery {
    Delivery {
        kind: Kind::Notification,
        sub_arn: sub.arn(),
        topic_arn: topic.arn(),
        message_id: p.message_id.clone(),
        message: p.message_for(&sub.protocol),
        subject: p.subject.clone(),
        attrs: p.attrs.clone(),
        ms,
        signature_version: topic.signature_version(),
        group_id: p.group_id.clone(),
        dedup_id: p.dedup_id.clone(),
        seq: seq.map(str::to_owned),
        token: None,
    }
}

/// What an email, email-json or SMS endpoint receives, kept as a record.
fn record(sns: &Sns, sub: &SubRec, d: &Delivery) -> Result<WriteOp, AwsError> {
    let body = match sub.protocol.as_str() {
        "email-json" => crate::deliver::envelope_text(sns, d)?,
        _ => d.message.clone(),
    };
    let rec = json!({
        "Protocol": sub.protocol,
        "Endpoint": sub.endpoint,
        "SubscriptionArn": sub.arn(),
        "TopicArn": d.topic_arn,
        "MessageId": d.message_id,
        "Subject": d.subject,
        "Message": d.message,
        "Body": body,
        "Timestamp": iso_ms(d.ms),
        "MessageAttributes": crate::deliver::attributes_json(&d.attrs),
    });
    Ok(WriteOp::Put {
        table: RECORDS.into(),
        key: record_key(&sub.endpoint, d.ms, &d.message_id),
        value: encode(&rec),
    })
}

/// The outcome of one message: its id and, on FIFO topics, its sequence number.
type Published = Result<(String, Option<String>), AwsError>;

/// Stores the messages and their deliveries in one transaction; FIFO topics take their
/// sequence numbers and deduplication ids under a precondition on the topic, retried on
/// conflict.
fn commit(sns: &Sns, topic: &TopicRec, prepared: &[Prepared]) -> Result<Vec<Published>, AwsError> {
    let subs: Vec<SubRec> = subscriptions(sns, topic)?
        .into_iter()
        .filter(|s| s.confirmed)
        .collect();
    for _ in 0..20 {
        let now = sns.state.clock_ms()?;
        let ms = now_ms();
        let mut ops = Vec::new();
        let mut out = Vec::with_capacity(prepared.len());
        let mut topic_now = topic.clone();
        if topic.is_fifo() {
            let Some((t, raw)) = load_raw(sns, &topic.account, &topic.region, &topic.name)? else {
                return Err(no_topic());
            };
            ops.push(WriteOp::Check {
                table: TOPICS.into(),
                key: TopicRec::key(&t.account, &t.region, &t.name),
                expected: Some(raw),
            });
            topic_now = t;
        }
        let mut seen: HashMap<String, (String, String)> = HashMap::new();
        let mut delivered = false;
        for p in prepared {
            let mut seq = None;
            if topic_now.is_fifo() {
                let dedup = p.dedup_id.clone().unwrap_or_default();
                let dkey = format!(
                    "{}/{}",
                    TopicRec::key(&topic_now.account, &topic_now.region, &topic_now.name),
                    dedup
                );
                if let Some((id, s)) = seen.get(&dkey) {
                    out.push(Ok((id.clone(), Some(s.clone()))));
                    continue;
                }
                let prior = sns
                    .state
                    .get(DEDUP, &dkey)?
                    .and_then(|raw| serde_json::from_slice::<DedupRec>(&raw).ok())
                    .filter(|d| d.expires_ms > now);
                if let Some(d) = prior {
                    out.push(Ok((d.message_id, Some(d.seq))));
                    continue;
                }
                topic_now.seq += 1;
                let s = format!("{}", 10_000_000_000_000_000_000u64 + topic_now.seq);
                let rec = DedupRec {
                    message_id: p.message_id.clone(),
                    seq: s.clone(),
                    expires_ms: now + DEDUP_MS,
                };
                ops.push(WriteOp::Put {
                    table: DEDUP.into(),
                    key: dkey.clone(),
                    value: encode(&rec),
                });
                ops.push(WriteOp::Enqueue {
                    queue: DELIVERIES.into(),
                    id: format!("{FORGET_PREFIX}{dkey}"),
                    payload: encode(&json!({"forget": dkey, "expires_ms": rec.expires_ms})),
                    due_ms: rec.expires_ms,
                });
                seen.insert(dkey, (p.message_id.clone(), s.clone()));
                seq = Some(s);
            }
            for sub in subs.iter().filter(|s| matches(s, p)) {
                let d = delivery(&topic_now, sub, p, ms, seq.as_deref());
                if matches!(sub.protocol.as_str(), "email" | "email-json" | "sms") {
                    ops.push(record(sns, sub, &d)?);
                } else {
                    ops.push(WriteOp::Enqueue {
                        queue: DELIVERIES.into(),
                        id: format!("{}/{}", d.message_id, sub.id),
                        payload: encode(&d),
                        due_ms: now,
                    });
                    delivered = true;
                }
            }
            out.push(Ok((p.message_id.clone(), seq)));
        }
        if topic_now.is_fifo() {
            ops.push(WriteOp::Put {
                table: TOPICS.into(),
                key: TopicRec::key(&topic_now.account, &topic_now.region, &topic_now.name),
                value: encode(&topic_now),
            });
        }
        if !ops.is_empty() {
            match sns.state.batch(&ops) {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if delivered {
            sns.wake.notify_one();
        }
        return Ok(out);
    }
    Err(AwsError::new(
        500,
        "InternalErrorException",
        "Too many concurrent publishers on this FIFO topic; try again.",
    ))
}

/// The topic `TopicArn` (or a topic's `TargetArn`) names.
fn target_topic(sns: &Sns, input: &Value) -> Result<TopicRec, AwsError> {
    let (arn, member) = match (str_of(input, "TopicArn"), str_of(input, "TargetArn")) {
        (Some(a), None) => (a, "TopicArn"),
        (None, Some(a)) => (a, "TargetArn"),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Only one of TopicArn, TargetArn or PhoneNumber may be given",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "TopicArn or TargetArn Reason: no value for required parameter",
            ));
        }
    };
    if member == "TargetArn" && arn.contains(":endpoint/") {
        return Err(AwsError::new(
            501,
            "NotImplemented",
            "Publishing to platform application endpoints is not implemented in Basalt yet.",
        ));
    }
    let (region, account, name) = parse_topic_arn(arn).ok_or_else(|| invalid(member))?;
    Ok(load_raw(sns, account, region, name)?
        .ok_or_else(no_topic)?
        .0)
}

pub fn publish(sns: &Sns, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    if let Some(phone) = str_of(input, "PhoneNumber") {
        if input.get("TopicArn").is_some() || input.get("TargetArn").is_some() {
            return Err(invalid(
                "Only one of TopicArn, TargetArn or PhoneNumber may be given",
            ));
        }
        return publish_sms(sns, ctx, phone, input);
    }
    let topic = target_topic(sns, input)?;
    let p = prepare(&topic, input)?;
    let (id, seq) = commit(sns, &topic, std::slice::from_ref(&p))?
        .pop()
        .unwrap_or_else(|| Err(AwsError::internal("no outcome")))?;
    let mut out = json!({"MessageId": id});
    if let Some(seq) = seq {
        out["SequenceNumber"] = seq.into();
    }
    Ok(out)
}

/// A text message straight to a phone number: kept as a record of that number.
fn publish_sms(
    sns: &Sns,
    ctx: &RequestContext,
    phone: &str,
    input: &Value,
) -> Result<Value, AwsError> {
    if !crate::subscriptions::valid_phone(phone) {
        return Err(invalid("PhoneNumber Reason: input incorrectly formatted"));
    }
    let message = match input.get("Message") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("Empty message")),
    };
    if message.len() > 1600 {
        return Err(invalid("Message too long"));
    }
    let attrs = parse_attributes(input)?;
    let id = uuid::Uuid::new_v4().to_string();
    let ms = now_ms();
    let rec = json!({
        "Protocol": "sms",
        "Endpoint": phone,
        "PhoneNumber": phone,
        "MessageId": id,
        "Message": message,
        "Body": message,
        "Timestamp": iso_ms(ms),
        "Account": ctx.account_id,
        "Region": ctx.region,
        "MessageAttributes": crate::deliver::attributes_json(&attrs),
    });
    sns.state
        .put(RECORDS, &record_key(phone, ms, &id), &encode(&rec))?;
    Ok(json!({"MessageId": id}))
}

fn batch_error(code: &str, message: &str) -> AwsError {
    AwsError::new(400, code, message)
}

fn valid_entry_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The code an error has on the wire (the model's query code).
fn wire_code(e: &AwsError) -> &str {
    match e.code.as_str() {
        "InvalidParameterException" => "InvalidParameter",
        "InvalidParameterValueException" => "ParameterValueInvalid",
        "NotFoundException" => "NotFound",
        "InternalErrorException" => "InternalError",
        other => other,
    }
}

pub fn publish_batch(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let entries: Vec<&Value> = input
        .get("PublishBatchRequestEntries")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(batch_error(
            "EmptyBatchRequestException",
            "The batch request doesn't contain any entries.",
        ));
    }
    if entries.len() > MAX_BATCH {
        return Err(batch_error(
            "TooManyEntriesInBatchRequestException",
            "The batch request contains more entries than permissible.",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for e in &entries {
        let id = str_of(e, "Id").unwrap_or_default();
        if !valid_entry_id(id) {
            return Err(batch_error(
                "InvalidBatchEntryIdException",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !ids.insert(id) {
            return Err(batch_error(
                "BatchEntryIdsNotDistinctException",
                "Two or more batch entries in the request have the same Id.",
            ));
        }
    }
    let total: usize = entries
        .iter()
        .map(|e| {
            str_of(e, "Message").map_or(0, str::len)
                + parse_attributes(e).map_or(0, |a| attrs_size(&a))
        })
        .sum();
    if total > MAX_MESSAGE {
        return Err(batch_error(
            "BatchRequestTooLongException",
            "The length of all the messages put together is more than the limit.",
        ));
    }
    let arn = crate::required(input, "TopicArn")?;
    let (region, account, name) = parse_topic_arn(arn).ok_or_else(|| invalid("TopicArn"))?;
    let topic = load_raw(sns, account, region, name)?
        .ok_or_else(no_topic)?
        .0;
    let mut failed = Vec::new();
    let mut accepted = Vec::new();
    let mut accepted_ids = Vec::new();
    for e in &entries {
        let id = str_of(e, "Id").unwrap_or_default();
        match prepare(&topic, e) {
            Ok(p) => {
                accepted.push(p);
                accepted_ids.push(id);
            }
            Err(err) => failed.push(json!({
                "Id": id,
                "Code": wire_code(&err),
                "Message": err.message,
                "SenderFault": true,
            })),
        }
    }
    let mut successful = Vec::new();
    if !accepted.is_empty() {
        for (id, outcome) in accepted_ids.iter().zip(commit(sns, &topic, &accepted)?) {
            match outcome {
                Ok((message_id, seq)) => {
                    let mut s = json!({"Id": id, "MessageId": message_id});
                    if let Some(seq) = seq {
                        s["SequenceNumber"] = seq.into();
                    }
                    successful.push(s);
                }
                Err(err) => failed.push(json!({
                    "Id": id,
                    "Code": wire_code(&err),
                    "Message": err.message,
                    "SenderFault": err.status < 500,
                })),
            }
        }
    }
    Ok(json!({"Successful": successful, "Failed": failed}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> TopicRec {
        TopicRec {
            name: name.into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            created_ms: 0,
            attributes: BTreeMap::new(),
            tags: BTreeMap::new(),
            seq: 0,
            deleted_subs: 0,
        }
    }

    fn sub(attrs: &[(&str, &str)]) -> SubRec {
        SubRec {
            id: "s".into(),
            topic: "t".into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            protocol: "sqs".into(),
            endpoint: "arn:aws:sqs:us-east-1:000000000000:q".into(),
            owner: "000000000000".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            confirmed: true,
            token: None,
            created_ms: 0,
        }
    }

    #[test]
    fn message_checks() {
        let t = topic("t");
        assert_eq!(
            prepare(&t, &json!({"Message": ""})).unwrap_err().message,
            "Invalid parameter: Empty message"
        );
        let big = "x".repeat(MAX_MESSAGE + 1);
        assert_eq!(
            prepare(&t, &json!({"Message": big})).unwrap_err().message,
            "Invalid parameter: Message too long"
        );
        assert!(prepare(&t, &json!({"Message": "x".repeat(MAX_MESSAGE)})).is_ok());
        let e = prepare(
            &t,
            &json!({"Message": "{\"sqs\": \"x\"}", "MessageStructure": "json"}),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Invalid parameter: Message Structure - No default entry in JSON message body"
        );
        let p = prepare(
            &t,
            &json!({"Message": "{\"default\": \"d\", \"sqs\": \"q\"}", "MessageStructure": "json"}),
        )
        .unwrap();
        assert_eq!(p.message_for("sqs"), "q");
        assert_eq!(p.message_for("lambda"), "d");
        assert!(prepare(&t, &json!({"Message": "m", "Subject": "line\nbreak"})).is_err());
        let e = prepare(
            &t,
            &json!({"Message": "m", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "x"}}}),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValueException");
    }

    #[test]
    fn fifo_rules() {
        let mut t = topic("t.fifo");
        let e = prepare(&t, &json!({"Message": "m"})).unwrap_err();
        assert!(e.message.contains("MessageGroupId parameter is required"));
        let e = prepare(&t, &json!({"Message": "m", "MessageGroupId": "g"})).unwrap_err();
        assert!(e.message.contains("ContentBasedDeduplication"));
        t.attributes
            .insert("ContentBasedDeduplication".into(), "true".into());
        let p = prepare(&t, &json!({"Message": "m", "MessageGroupId": "g"})).unwrap();
        assert_eq!(p.dedup_id.as_deref().map(str::len), Some(64));
        let std = topic("t");
        assert!(
            prepare(
                &std,
                &json!({"Message": "m", "MessageDeduplicationId": "d"})
            )
            .is_err()
        );
    }

    #[test]
    fn filter_policies_on_attributes_and_body() {
        let t = topic("t");
        let p = prepare(
            &t,
            &json!({"Message": "{\"kind\": \"order\", \"n\": 5}", "MessageAttributes": {
                "color": {"DataType": "String", "StringValue": "red"},
                "size": {"DataType": "Number", "StringValue": "12"},
                "tags": {"DataType": "String.Array", "StringValue": "[\"a\", \"b\"]"},
            }}),
        )
        .unwrap();
        assert!(matches(&sub(&[]), &p));
        assert!(matches(
            &sub(&[("FilterPolicy", r#"{"color": ["red"]}"#)]),
            &p
        ));
        assert!(!matches(
            &sub(&[("FilterPolicy", r#"{"color": ["blue"]}"#)]),
            &p
        ));
        assert!(matches(
            &sub(&[("FilterPolicy", r#"{"size": [{"numeric": [">", 10]}]}"#)]),
            &p
        ));
        assert!(matches(&sub(&[("FilterPolicy", r#"{"tags": ["b"]}"#)]), &p));
        assert!(!matches(
            &sub(&[("FilterPolicy", r#"{"missing": [{"exists": true}]}"#)]),
            &p
        ));
        let body = |policy: &str| {
            sub(&[
                ("FilterPolicy", policy),
                ("FilterPolicyScope", "MessageBody"),
            ])
        };
        assert!(matches(&body(r#"{"kind": ["order"]}"#), &p));
        assert!(!matches(&body(r#"{"kind": ["refund"]}"#), &p));
        assert!(matches(&body(r#"{"n": [{"numeric": ["<", 6]}]}"#), &p));
    }
}
