//! CreateQueue, GetQueueUrl, ListQueues, DeleteQueue, Get/SetQueueAttributes, PurgeQueue,
//! tags, ListDeadLetterSourceQueues and the legacy Add/RemovePermission.

use crate::model::{QUEUES, QueueRec};
use crate::{Sqs, attributes, error, invalid, missing, no_queue, now_ms, required, str_of};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// At most this many tags per queue.
const MAX_TAGS: usize = 50;
/// PurgeQueue may run once per this many milliseconds per queue.
const PURGE_INTERVAL_MS: i64 = 60_000;

fn valid_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 80
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !base.is_empty()
}

fn encode(q: &QueueRec) -> Vec<u8> {
    serde_json::to_vec(q).unwrap_or_default()
}

/// Applies `f` to the queue a URL names and stores it under a precondition on the record as
/// read, retried on a concurrent change, so that no write undoes another or brings back a
/// queue deleted meanwhile.
fn edit(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: &Value,
    mut f: impl FnMut(&mut QueueRec) -> Result<(), AwsError>,
) -> Result<QueueRec, AwsError> {
    let url = required(input, "QueueUrl")?;
    for _ in 0..16 {
        let found = sqs.queue_by_url(ctx, url)?;
        let key = QueueRec::key(&found.account, &found.region, &found.name);
        let raw = sqs.state.get(QUEUES, &key)?;
        let mut q: QueueRec = raw
            .as_deref()
            .and_then(|r| serde_json::from_slice(r).ok())
            .ok_or_else(no_queue)?;
        f(&mut q)?;
        let ops = [
            WriteOp::Check {
                table: QUEUES.into(),
                key: key.clone(),
                expected: raw,
            },
            WriteOp::Put {
                table: QUEUES.into(),
                key,
                value: encode(&q),
            },
        ];
        match sqs.state.batch(&ops) {
            Ok(()) => return Ok(q),
            Err(basalt_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(error(
        "RequestThrottled",
        "RequestThrottled",
        "The queue is being changed concurrently; try again.",
    ))
}

fn tags_of(input: &Value, member: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut tags = BTreeMap::new();
    if let Some(map) = input.get(member).and_then(Value::as_object) {
        for (k, v) in map {
            if k.is_empty() || k.len() > 128 {
                return Err(invalid(format!("Tag key {k} is invalid.")));
            }
            let v = v.as_str().unwrap_or_default();
            if v.len() > 256 {
                return Err(invalid(format!("Tag value for key {k} is too long.")));
            }
            tags.insert(k.clone(), v.to_owned());
        }
    }
    Ok(tags)
}

fn too_many_tags() -> AwsError {
    invalid(format!(
        "Too many tags added for queue. A queue can have at most {MAX_TAGS} tags."
    ))
}

pub fn create(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "QueueName")?;
    if !valid_name(name) {
        return Err(invalid(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    let empty = Map::new();
    let given = input
        .get("Attributes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let fifo_attr = given.get("FifoQueue").and_then(Value::as_str) == Some("true");
    if fifo_attr != name.ends_with(".fifo") {
        return Err(invalid(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
        ));
    }
    let attrs = attributes::validate(sqs, (&ctx.account_id, &ctx.region), name, given)?;
    let tags = tags_of(input, "tags")?;
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    if let Some(existing) = sqs.load(&ctx.account_id, &ctx.region, name)? {
        // Creating an existing queue is idempotent when the attributes given agree with it.
        let differs = attrs
            .iter()
            .any(|(k, v)| existing.attr(k).as_deref() != Some(v.as_str()));
        if differs {
            return Err(error(
                "QueueNameExists",
                "QueueAlreadyExists",
                "A queue already exists with the same name and a different value for attribute(s) given.",
            ));
        }
        return Ok(json!({"QueueUrl": existing.url(&ctx.endpoint)}));
    }
    let now = now_ms() / 1000;
    let q = QueueRec {
        name: name.to_owned(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        id: uuid::Uuid::new_v4().simple().to_string(),
        created: now,
        modified: now,
        attributes: attrs,
        tags,
        purged_ms: None,
    };
    // Two concurrent creations of one name: the second finds the first's record.
    let key = QueueRec::key(&q.account, &q.region, &q.name);
    match sqs.state.batch(&[
        WriteOp::Check {
            table: QUEUES.into(),
            key: key.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: QUEUES.into(),
            key,
            value: encode(&q),
        },
    ]) {
        Ok(()) => Ok(json!({"QueueUrl": q.url(&ctx.endpoint)})),
        Err(basalt_store::StoreError::Conflict) => create(sqs, ctx, input),
        Err(e) => Err(e.into()),
    }
}

pub fn get_url(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "QueueName")?;
    let account = str_of(input, "QueueOwnerAWSAccountId").unwrap_or(&ctx.account_id);
    let q = sqs.load(account, &ctx.region, name)?.ok_or_else(no_queue)?;
    Ok(json!({"QueueUrl": q.url(&ctx.endpoint)}))
}

/// Queues of the caller's account and region whose name starts with `prefix`, in name order,
/// after `start_after`.
fn scan(
    sqs: &Sqs,
    ctx: &RequestContext,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> Result<Vec<QueueRec>, AwsError> {
    let scope = format!("{}/{}/", ctx.account_id, ctx.region);
    let after = start_after.map(|s| format!("{scope}{s}"));
    let rows = sqs
        .state
        .scan(QUEUES, &format!("{scope}{prefix}"), after.as_deref(), limit)?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

fn token(name: &str) -> String {
    basalt_core::page_token::encode(name)
}

fn untoken(token: &str) -> Result<String, AwsError> {
    basalt_core::page_token::decode(token).ok_or_else(|| invalid("Invalid NextToken value."))
}

/// One page of queue URLs: without MaxResults, up to 1000 and no token (as AWS).
fn page(
    ctx: &RequestContext,
    input: &Value,
    fetch: impl Fn(Option<&str>, usize) -> Result<Vec<QueueRec>, AwsError>,
    member: &str,
) -> Result<Value, AwsError> {
    let max = crate::int_param(input, "MaxResults", 1, 1000)?;
    if max.is_none() && input.get("NextToken").is_some() {
        return Err(invalid(
            "MaxResults is a mandatory parameter when you provide a value for NextToken.",
        ));
    }
    let after = str_of(input, "NextToken").map(untoken).transpose()?;
    let limit = max.unwrap_or(1000) as usize;
    let mut queues = fetch(after.as_deref(), limit + 1)?;
    let more = queues.len() > limit;
    queues.truncate(limit);
    let mut out = Map::new();
    if !queues.is_empty() {
        out.insert(
            member.into(),
            queues
                .iter()
                .map(|q| Value::from(q.url(&ctx.endpoint)))
                .collect(),
        );
    }
    if more
        && max.is_some()
        && let Some(last) = queues.last()
    {
        out.insert("NextToken".into(), token(&last.name).into());
    }
    Ok(Value::Object(out))
}

pub fn list(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let prefix = str_of(input, "QueueNamePrefix").unwrap_or("");
    page(
        ctx,
        input,
        |after, limit| scan(sqs, ctx, prefix, after, limit),
        "QueueUrls",
    )
}

pub fn dead_letter_sources(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let arn = q.arn();
    page(
        ctx,
        input,
        |after, limit| {
            // Sources are found by reading every queue of the scope: dead-letter queues are
            // few and this call is rare.
            let mut found = Vec::new();
            let mut cursor = after.map(str::to_owned);
            loop {
                let batch = scan(sqs, ctx, "", cursor.as_deref(), 500)?;
                let Some(last) = batch.last() else { break };
                cursor = Some(last.name.clone());
                found.extend(
                    batch
                        .into_iter()
                        .filter(|s| s.redrive().is_some_and(|(t, _)| t == arn)),
                );
                if found.len() >= limit {
                    break;
                }
            }
            found.truncate(limit);
            Ok(found)
        },
        "queueUrls",
    )
}

pub fn delete(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    sqs.state
        .delete(QUEUES, &QueueRec::key(&q.account, &q.region, &q.name))?;
    // The record is gone first: a crash between the two leaves unreachable items behind,
    // never a queue without its messages' home.
    purge_messages(sqs, &q)?;
    Ok(json!({}))
}

pub fn get_attributes(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    let names: Vec<String> = input
        .get("AttributeNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let attrs = attributes::report(sqs, &q, &names)?;
    if attrs.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Attributes": attrs}))
}

pub fn set_attributes(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let given = input
        .get("Attributes")
        .and_then(Value::as_object)
        .ok_or_else(|| missing("Attributes"))?;
    edit(sqs, ctx, input, |q| {
        let attrs = attributes::validate(sqs, (&q.account, &q.region), &q.name, given)?;
        if attrs
            .get("FifoQueue")
            .is_some_and(|v| q.attr("FifoQueue").as_ref() != Some(v))
        {
            return Err(crate::invalid_attribute_value("FifoQueue"));
        }
        for (k, v) in attrs {
            // An empty policy removes it.
            if v.is_empty()
                && matches!(
                    k.as_str(),
                    "Policy" | "RedrivePolicy" | "RedriveAllowPolicy"
                )
            {
                q.attributes.remove(&k);
            } else {
                q.attributes.insert(k, v);
            }
        }
        q.modified = now_ms() / 1000;
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn purge(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let now = now_ms();
    let q = edit(sqs, ctx, input, |q| {
        if q.purged_ms.is_some_and(|t| now - t < PURGE_INTERVAL_MS) {
            return Err(error(
                "PurgeQueueInProgress",
                "AWS.SimpleQueueService.PurgeQueueInProgress",
                format!(
                    "Only one PurgeQueue operation on {} is allowed every 60 seconds.",
                    q.name
                ),
            ));
        }
        q.purged_ms = Some(now);
        Ok(())
    })?;
    purge_messages(sqs, &q)?;
    Ok(json!({}))
}

fn purge_messages(sqs: &Sqs, q: &QueueRec) -> Result<(), AwsError> {
    if q.is_fifo() {
        return crate::fifo::purge(sqs, q);
    }
    sqs.state.purge(&q.lease_queue())?;
    Ok(())
}

pub fn tag(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let tags = tags_of(input, "Tags")?;
    if tags.is_empty() {
        return Err(missing("Tags"));
    }
    edit(sqs, ctx, input, |q| {
        q.tags.extend(tags.clone());
        if q.tags.len() > MAX_TAGS {
            return Err(too_many_tags());
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn untag(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let keys = input
        .get("TagKeys")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("TagKeys"))?;
    edit(sqs, ctx, input, |q| {
        for k in keys.iter().filter_map(Value::as_str) {
            q.tags.remove(k);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let q = sqs.queue_by_url(ctx, required(input, "QueueUrl")?)?;
    if q.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Tags": q.tags}))
}

/// The legacy permission API edits the queue's policy document, as AWS does.
pub fn add_permission(sqs: &Sqs, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let label = required(input, "Label")?;
    let accounts: Vec<String> = strings(input, "AWSAccountIds");
    let actions: Vec<String> = strings(input, "Actions");
    if accounts.is_empty() {
        return Err(missing("AWSAccountIds"));
    }
    if actions.is_empty() {
        return Err(missing("Actions"));
    }
    edit(sqs, ctx, input, |q| {
        let mut policy = policy_of(q);
        let statements = statements(&mut policy);
        if statements
            .iter()
            .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label))
        {
            return Err(invalid(format!(
                "Value {label} for parameter Label is invalid. Reason: Already exists."
            )));
        }
        let principals: Vec<String> = accounts
            .iter()
            .map(|a| format!("arn:aws:iam::{a}:root"))
            .collect();
        statements.push(json!({
            "Sid": label,
            "Effect": "Allow",
            "Principal": {"AWS": if principals.len() == 1 { Value::from(principals[0].clone()) } else { Value::from(principals.clone()) }},
            "Action": actions.iter().map(|a| format!("SQS:{a}")).collect::<Vec<_>>(),
            "Resource": q.arn(),
        }));
        q.attributes.insert("Policy".into(), policy.to_string());
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn remove_permission(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let label = required(input, "Label")?;
    edit(sqs, ctx, input, |q| {
        let mut policy = policy_of(q);
        let statements = statements(&mut policy);
        let before = statements.len();
        statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label));
        if statements.len() == before {
            return Err(invalid(format!(
                "Value {label} for parameter Label is invalid. Reason: can't find label on existing policy."
            )));
        }
        if statements.is_empty() {
            q.attributes.remove("Policy");
        } else {
            q.attributes.insert("Policy".into(), policy.to_string());
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn strings(input: &Value, name: &str) -> Vec<String> {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn policy_of(q: &QueueRec) -> Value {
    q.attributes
        .get("Policy")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Id": format!("{}/SQSDefaultPolicy", q.arn()), "Statement": []}))
}

fn statements(policy: &mut Value) -> &mut Vec<Value> {
    let obj = match policy {
        Value::Object(o) => o,
        other => {
            *other = json!({});
            other.as_object_mut().expect("just made an object")
        }
    };
    let st = obj.entry("Statement").or_insert_with(|| json!([]));
    if !st.is_array() {
        let single = st.take();
        *st = Value::Array(vec![single]);
    }
    st.as_array_mut().expect("just made an array")
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn queue_names() {
        assert!(valid_name("a"));
        assert!(valid_name("My_queue-1"));
        assert!(valid_name("jobs.fifo"));
        assert!(valid_name(&"q".repeat(80)));
        assert!(!valid_name(&"q".repeat(81)));
        assert!(!valid_name(""));
        assert!(!valid_name(".fifo"));
        assert!(!valid_name("has space"));
        assert!(!valid_name("dot.ted"));
    }
}
