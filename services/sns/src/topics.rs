//! CreateTopic, DeleteTopic, ListTopics, Get/SetTopicAttributes, Add/RemovePermission and
//! tags.

use crate::attributes::{check_topic_attribute, default_policy, topic_attributes};
use crate::model::{SUBSCRIPTIONS, SubRec, TOPICS, TopicRec, parse_topic_arn, topic_subs_prefix};
use crate::{Sns, invalid, no_topic, now_ms, required, str_of, token, untoken};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PAGE: usize = 100;
const MAX_TAGS: usize = 50;

fn valid_name(name: &str, fifo: bool) -> bool {
    let base = if fifo {
        match name.strip_suffix(".fifo") {
            Some(b) => b,
            None => return false,
        }
    } else {
        name
    };
    !base.is_empty()
        && name.len() <= 256
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

pub(crate) fn load(
    sns: &Sns,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<TopicRec>, AwsError> {
    Ok(load_raw(sns, account, region, name)?.map(|(t, _)| t))
}

/// The topic and its stored bytes (for a precondition).
pub(crate) fn load_raw(
    sns: &Sns,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<(TopicRec, Vec<u8>)>, AwsError> {
    let Some(raw) = sns
        .state
        .get(TOPICS, &TopicRec::key(account, region, name))?
    else {
        return Ok(None);
    };
    let t = serde_json::from_slice(&raw)
        .map_err(|e| AwsError::internal(format!("corrupt topic record: {e}")))?;
    Ok(Some((t, raw)))
}

/// The topic a `TopicArn` names: `InvalidParameter` for a malformed ARN, `NotFound` for a
/// missing topic.
pub(crate) fn by_arn(sns: &Sns, arn: &str, member: &str) -> Result<TopicRec, AwsError> {
    let (region, account, name) = parse_topic_arn(arn).ok_or_else(|| invalid(member))?;
    load(sns, account, region, name)?.ok_or_else(no_topic)
}

/// The topic and its stored bytes, for [`save`].
pub(crate) fn by_arn_raw(
    sns: &Sns,
    arn: &str,
    member: &str,
) -> Result<(TopicRec, Vec<u8>), AwsError> {
    let (region, account, name) = parse_topic_arn(arn).ok_or_else(|| invalid(member))?;
    load_raw(sns, account, region, name)?.ok_or_else(no_topic)
}

/// The error a lost read-modify-write race gives; `Sns::call` runs the operation again.
pub(crate) fn concurrent() -> AwsError {
    AwsError::new(
        400,
        "ConcurrentAccessException",
        "Can't perform multiple operations on a topic simultaneously.",
    )
}

/// Writes the topic only if it is still as read (`before`): FIFO publishers bump its sequence
/// number concurrently, and no update may undo another.
pub(crate) fn save(sns: &Sns, t: &TopicRec, before: Vec<u8>) -> Result<(), AwsError> {
    let key = TopicRec::key(&t.account, &t.region, &t.name);
    match sns.state.batch(&[
        WriteOp::Check {
            table: TOPICS.into(),
            key: key.clone(),
            expected: Some(before),
        },
        WriteOp::Put {
            table: TOPICS.into(),
            key,
            value: encode(t),
        },
    ]) {
        Ok(()) => Ok(()),
        Err(basalt_store::StoreError::Conflict) => Err(concurrent()),
        Err(e) => Err(e.into()),
    }
}

/// A topic's subscriptions.
pub(crate) fn subscriptions(sns: &Sns, t: &TopicRec) -> Result<Vec<SubRec>, AwsError> {
    let prefix = topic_subs_prefix(&t.account, &t.region, &t.name);
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sns
            .state
            .scan(SUBSCRIPTIONS, &prefix, after.as_deref(), 500)?;
        let n = page.len();
        for (k, v) in page {
            if let Ok(s) = serde_json::from_slice(&v) {
                out.push(s);
            }
            after = Some(k);
        }
        if n < 500 {
            return Ok(out);
        }
    }
}

fn tags_of(input: &Value) -> Result<Vec<(String, String)>, AwsError> {
    let mut out = Vec::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = str_of(t, "Key").unwrap_or_default();
        let value = str_of(t, "Value").unwrap_or_default();
        if key.is_empty() || key.len() > 128 {
            return Err(invalid(
                "Tags Reason: Tag key must be between 1 and 128 characters",
            ));
        }
        if value.len() > 256 {
            return Err(invalid(
                "Tags Reason: Tag value must be at most 256 characters",
            ));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

fn tag_limit() -> AwsError {
    AwsError::new(
        400,
        "TagLimitExceededException",
        "Could not complete request: tag quota of per resource exceeded",
    )
}

pub fn create(sns: &Sns, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = required(input, "Name")?;
    let empty = serde_json::Map::new();
    let given = input
        .get("Attributes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let fifo = given
        .get("FifoTopic")
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if fifo && !valid_name(name, true) {
        return Err(invalid(
            "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.",
        ));
    }
    if !fifo && !valid_name(name, false) {
        return Err(invalid("Topic Name"));
    }
    let mut attributes = BTreeMap::new();
    for (k, v) in given {
        let v = v.as_str().unwrap_or_default();
        let v = check_topic_attribute(fifo, k, v, true)?;
        if k != "FifoTopic" {
            attributes.insert(k.clone(), v);
        }
    }
    if let Some(p) = str_of(input, "DataProtectionPolicy") {
        attributes.insert("DataProtectionPolicy".into(), p.to_owned());
    }
    let tags = tags_of(input)?;
    if tags.len() > MAX_TAGS {
        return Err(tag_limit());
    }
    let key = TopicRec::key(&ctx.account_id, &ctx.region, name);
    if let Some(t) = load(sns, &ctx.account_id, &ctx.region, name)? {
        // Creating again is idempotent, unless it asks for other attributes or tags.
        let differs = attributes.iter().any(|(k, v)| {
            let current = match t.attr(k) {
                Some(c) => c.to_owned(),
                None if k == "Policy" => default_policy(&t),
                None => String::new(),
            };
            current != *v
        });
        if differs {
            return Err(invalid(
                "Attributes Reason: Topic already exists with different attributes",
            ));
        }
        if tags.iter().any(|(k, v)| t.tags.get(k) != Some(v)) {
            return Err(invalid(
                "Tags Reason: Topic already exists with different tags",
            ));
        }
        return Ok(json!({"TopicArn": t.arn()}));
    }
    let t = TopicRec {
        name: name.to_owned(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        created_ms: now_ms(),
        attributes,
        tags: tags.into_iter().collect(),
        seq: 0,
        deleted_subs: 0,
    };
    // Two concurrent creates of one name make one topic.
    match sns.state.batch(&[
        WriteOp::Check {
            table: TOPICS.into(),
            key: key.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: TOPICS.into(),
            key,
            value: encode(&t),
        },
    ]) {
        Ok(()) | Err(basalt_store::StoreError::Conflict) => Ok(json!({"TopicArn": t.arn()})),
        Err(e) => Err(e.into()),
    }
}

/// Deleting a topic deletes its subscriptions; a topic that does not exist is not an error.
pub fn delete(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = required(input, "TopicArn")?;
    let (region, account, name) = parse_topic_arn(arn).ok_or_else(|| invalid("TopicArn"))?;
    let Some(t) = load(sns, account, region, name)? else {
        return Ok(json!({}));
    };
    let mut ops: Vec<WriteOp> = subscriptions(sns, &t)?
        .iter()
        .map(|s| WriteOp::Delete {
            table: SUBSCRIPTIONS.into(),
            key: s.key(),
        })
        .collect();
    ops.push(WriteOp::Delete {
        table: TOPICS.into(),
        key: TopicRec::key(account, region, name),
    });
    sns.state.batch(&ops)?;
    Ok(json!({}))
}

pub fn list(sns: &Sns, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let after = match str_of(input, "NextToken") {
        Some(t) => Some(untoken(t)?),
        None => None,
    };
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    let page = sns
        .state
        .scan(TOPICS, &prefix, after.as_deref(), PAGE + 1)?;
    let more = page.len() > PAGE;
    let mut topics = Vec::new();
    let mut last = None;
    for (k, _) in page.into_iter().take(PAGE) {
        let name = k.rsplit('/').next().unwrap_or_default();
        topics
            .push(json!({"TopicArn": crate::model::topic_arn(&ctx.region, &ctx.account_id, name)}));
        last = Some(k);
    }
    let mut out = json!({"Topics": topics});
    if more && let Some(last) = last {
        out["NextToken"] = token(&last).into();
    }
    Ok(out)
}

pub fn get_attributes(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let t = by_arn(sns, required(input, "TopicArn")?, "TopicArn")?;
    let subs = subscriptions(sns, &t)?;
    let confirmed = subs.iter().filter(|s| s.confirmed).count();
    Ok(json!({"Attributes": topic_attributes(&t, confirmed, subs.len() - confirmed)}))
}

pub fn set_attribute(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (mut t, before) = by_arn_raw(sns, required(input, "TopicArn")?, "TopicArn")?;
    let name = required(input, "AttributeName")?;
    let value = str_of(input, "AttributeValue").unwrap_or_default();
    let v = check_topic_attribute(t.is_fifo(), name, value, false)?;
    if v.is_empty() && name != "DisplayName" {
        t.attributes.remove(name);
    } else {
        t.attributes.insert(name.to_owned(), v);
    }
    save(sns, &t, before)?;
    Ok(json!({}))
}

fn policy_of(t: &TopicRec) -> Value {
    t.attr("Policy")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| serde_json::from_str(&default_policy(t)).unwrap_or_default())
}

pub fn add_permission(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (mut t, before) = by_arn_raw(sns, required(input, "TopicArn")?, "TopicArn")?;
    let label = required(input, "Label")?;
    let accounts: Vec<Value> = input
        .get("AWSAccountId")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| Value::from(format!("arn:aws:iam::{a}:root")))
        .collect();
    let actions: Vec<Value> = input
        .get("ActionName")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| Value::from(format!("SNS:{a}")))
        .collect();
    if accounts.is_empty() {
        return Err(invalid("AWSAccountId"));
    }
    if actions.is_empty() {
        return Err(invalid("ActionName"));
    }
    let mut policy = policy_of(&t);
    let statements = policy["Statement"].as_array_mut();
    let Some(statements) = statements else {
        return Err(invalid("Policy"));
    };
    if statements
        .iter()
        .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label))
    {
        return Err(invalid("Statement already exists"));
    }
    statements.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": if accounts.len() == 1 { accounts[0].clone() } else { Value::Array(accounts) }},
        "Action": if actions.len() == 1 { actions[0].clone() } else { Value::Array(actions) },
        "Resource": t.arn(),
    }));
    t.attributes.insert("Policy".into(), policy.to_string());
    save(sns, &t, before)?;
    Ok(json!({}))
}

pub fn remove_permission(
    sns: &Sns,
    _ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let (mut t, before) = by_arn_raw(sns, required(input, "TopicArn")?, "TopicArn")?;
    let label = required(input, "Label")?;
    let mut policy = policy_of(&t);
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label));
    }
    t.attributes.insert("Policy".into(), policy.to_string());
    save(sns, &t, before)?;
    Ok(json!({}))
}

fn resource(sns: &Sns, input: &Value) -> Result<(TopicRec, Vec<u8>), AwsError> {
    let arn = required(input, "ResourceArn")?;
    let (region, account, name) = parse_topic_arn(arn).ok_or_else(|| invalid("ResourceArn"))?;
    load_raw(sns, account, region, name)?
        .ok_or_else(|| AwsError::new(404, "ResourceNotFoundException", "Resource does not exist"))
}

pub fn tag(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (mut t, before) = resource(sns, input)?;
    for (k, v) in tags_of(input)? {
        t.tags.insert(k, v);
    }
    if t.tags.len() > MAX_TAGS {
        return Err(tag_limit());
    }
    save(sns, &t, before)?;
    Ok(json!({}))
}

pub fn untag(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (mut t, before) = resource(sns, input)?;
    for k in input
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(k) = k.as_str() {
            t.tags.remove(k);
        }
    }
    save(sns, &t, before)?;
    Ok(json!({}))
}

pub fn list_tags(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let (t, _) = resource(sns, input)?;
    let tags: Vec<Value> = t
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": tags}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(valid_name("alerts-1_x", false));
        assert!(!valid_name("has space", false));
        assert!(!valid_name("x.fifo", false));
        assert!(valid_name("x.fifo", true));
        assert!(!valid_name(".fifo", true));
        assert!(!valid_name("x", true));
        assert!(!valid_name(&"a".repeat(257), false));
    }
}
