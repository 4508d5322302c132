//! Subscribe, ConfirmSubscription, Unsubscribe, ListSubscriptions(ByTopic) and
//! Get/SetSubscriptionAttributes.
//!
//! SQS queues and Lambda functions are confirmed at once, as AWS confirms subscribers of the
//! same account. HTTP/S endpoints get a SubscriptionConfirmation POST (a delivery like any
//! other, so it is retried and survives a restart) and stay pending until ConfirmSubscription
//! or a GET of its SubscribeURL. Email, email-json and SMS endpoints are confirmed at once
//! (nobody can click a link in a local mailbox); what they receive is kept as records.

use crate::attributes::{check_sub_attribute, sub_attributes};
use crate::model::{
    DELIVERIES, Delivery, Kind, SUBSCRIPTIONS, SubRec, TOPICS, TopicRec, parse_subscription_arn,
    sub_key,
};
use crate::topics::{by_arn, encode, load, subscriptions};
use crate::{Sns, invalid, not_found, now_ms, required, str_of, token, untoken};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PAGE: usize = 100;
const PENDING: &str = "pending confirmation";

fn check_endpoint(protocol: &str, endpoint: &str) -> Result<(), AwsError> {
    let ok = match protocol {
        "sqs" => {
            return match crate::model::arn_parts(endpoint) {
                Some(("sqs", r, a, q)) if !r.is_empty() && !a.is_empty() && !q.is_empty() => Ok(()),
                _ => Err(invalid("SQS endpoint ARN")),
            };
        }
        "lambda" => {
            return match crate::model::arn_parts(endpoint) {
                Some(("lambda", r, a, f))
                    if !r.is_empty() && !a.is_empty() && f.starts_with("function:") =>
                {
                    Ok(())
                }
                _ => Err(invalid("Lambda endpoint ARN")),
            };
        }
        "http" => endpoint.len() > 7 && endpoint[..7].eq_ignore_ascii_case("http://"),
        "https" => endpoint.len() > 8 && endpoint[..8].eq_ignore_ascii_case("https://"),
        "email" | "email-json" => {
            let mut parts = endpoint.splitn(2, '@');
            matches!((parts.next(), parts.next()), (Some(l), Some(d)) if !l.is_empty() && d.contains('.') && !d.contains('@'))
        }
        "sms" => valid_phone(endpoint),
        "application" | "firehose" => {
            return Err(AwsError::new(
                501,
                "NotImplemented",
                format!(
                    "Subscriptions with protocol {protocol} are not implemented in Basalt yet."
                ),
            ));
        }
        other => {
            return Err(invalid(format!(
                "Amazon SNS does not support this protocol string: {other}"
            )));
        }
    };
    if ok {
        Ok(())
    } else if protocol.starts_with("email") {
        Err(invalid("Email address"))
    } else if protocol == "sms" {
        Err(invalid(format!("Invalid SMS endpoint: {endpoint}")))
    } else {
        Err(invalid("Endpoint must match the specified protocol"))
    }
}

/// E.164: `+` then up to 15 digits (separators allowed, as SNS allows them).
pub(crate) fn valid_phone(n: &str) -> bool {
    let digits: String = n
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let d = digits.strip_prefix('+').unwrap_or(&digits);
    (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
}

fn fresh_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 64];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks Subscribe's `Attributes`: the scope first, then everything else against it.
fn attributes_of(protocol: &str, input: &Value) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    let Some(given) = input.get("Attributes").and_then(Value::as_object) else {
        return Ok(out);
    };
    let mut names: Vec<&String> = given.keys().collect();
    names.sort_by_key(|n| *n != "FilterPolicyScope");
    for name in names {
        let value = given[name].as_str().unwrap_or_default();
        let v = check_sub_attribute(protocol, &out, name, value)?;
        if !v.is_empty() {
            out.insert(name.clone(), v);
        }
    }
    Ok(out)
}

fn confirmation(sns: &Sns, topic: &TopicRec, sub: &SubRec, token: &str) -> Delivery {
    let _ = sns;
    Delivery {
        kind: Kind::SubscriptionConfirmation,
        sub_arn: sub.arn(),
        topic_arn: topic.arn(),
        message_id: uuid::Uuid::new_v4().to_string(),
        message: format!(
            "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            topic.arn()
        ),
        subject: None,
        attrs: BTreeMap::new(),
        ms: now_ms(),
        signature_version: topic.signature_version(),
        group_id: None,
        dedup_id: None,
        seq: None,
        token: Some(token.to_owned()),
    }
}

pub fn subscribe(sns: &Sns, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let topic_arn = required(input, "TopicArn")?;
    let protocol = required(input, "Protocol")?.to_ascii_lowercase();
    let endpoint = str_of(input, "Endpoint").unwrap_or_default();
    let topic = by_arn(sns, topic_arn, "TopicArn")?;
    check_endpoint(&protocol, endpoint)?;
    let attributes = attributes_of(&protocol, input)?;
    let return_arn = input
        .get("ReturnSubscriptionArn")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let shown = |s: &SubRec| {
        if s.confirmed || return_arn {
            s.arn()
        } else {
            PENDING.to_owned()
        }
    };
    let existing = subscriptions(sns, &topic)?;
    if let Some(s) = existing
        .iter()
        .find(|s| s.protocol == protocol && s.endpoint == endpoint)
    {
        if input.get("Attributes").is_some() && attributes != s.attributes {
            return Err(invalid(
                "Attributes Reason: Subscription already exists with different attributes",
            ));
        }
        return Ok(json!({"SubscriptionArn": shown(s)}));
    }
    if existing.len() >= 12_500_000 {
        return Err(AwsError::new(
            403,
            "SubscriptionLimitExceededException",
            "Subscription limit exceeded",
        ));
    }
    let pending = matches!(protocol.as_str(), "http" | "https");
    let token = pending.then(fresh_token);
    let sub = SubRec {
        id: uuid::Uuid::new_v4().to_string(),
        topic: topic.name.clone(),
        account: topic.account.clone(),
        region: topic.region.clone(),
        protocol: protocol.clone(),
        endpoint: endpoint.to_owned(),
        owner: ctx.account_id.clone(),
        attributes,
        confirmed: !pending,
        token: token.clone(),
        created_ms: now_ms(),
    };
    let mut ops = vec![WriteOp::Put {
        table: SUBSCRIPTIONS.into(),
        key: sub.key(),
        value: encode(&sub),
    }];
    if let Some(token) = &token {
        let d = confirmation(sns, &topic, &sub, token);
        ops.push(WriteOp::Enqueue {
            queue: DELIVERIES.into(),
            id: format!("{}/{}", d.message_id, sub.id),
            payload: encode(&d),
            due_ms: sns.state.clock_ms()?,
        });
    }
    sns.state.batch(&ops)?;
    if token.is_some() {
        sns.wake.notify_one();
    }
    Ok(json!({"SubscriptionArn": shown(&sub)}))
}

pub fn confirm(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let arn = confirm_arn(sns, required(input, "TopicArn")?, required(input, "Token")?)?;
    Ok(json!({"SubscriptionArn": arn}))
}

/// Confirms the subscription of `topic_arn` that `token` was sent to; returns its ARN.
pub(crate) fn confirm_arn(sns: &Sns, topic_arn: &str, token: &str) -> Result<String, AwsError> {
    let topic = by_arn(sns, topic_arn, "TopicArn")?;
    let Some(mut sub) = subscriptions(sns, &topic)?
        .into_iter()
        .find(|s| s.token.as_deref() == Some(token))
    else {
        return Err(invalid("Token"));
    };
    if !sub.confirmed {
        sub.confirmed = true;
        sns.state.put(SUBSCRIPTIONS, &sub.key(), &encode(&sub))?;
    }
    Ok(sub.arn())
}

pub fn unsubscribe(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    unsubscribe_arn(sns, required(input, "SubscriptionArn")?)?;
    Ok(json!({}))
}

/// Removes a subscription; one that is already gone is not an error.
pub(crate) fn unsubscribe_arn(sns: &Sns, arn: &str) -> Result<(), AwsError> {
    let (region, account, topic, id) =
        parse_subscription_arn(arn).ok_or_else(|| invalid("SubscriptionArn"))?;
    let key = sub_key(account, region, topic, id);
    if sns.state.get(SUBSCRIPTIONS, &key)?.is_none() {
        return Ok(());
    }
    let mut ops = vec![WriteOp::Delete {
        table: SUBSCRIPTIONS.into(),
        key,
    }];
    if let Some((mut t, before)) = crate::topics::load_raw(sns, account, region, topic)? {
        t.deleted_subs += 1;
        let key = TopicRec::key(account, region, topic);
        ops.push(WriteOp::Check {
            table: TOPICS.into(),
            key: key.clone(),
            expected: Some(before),
        });
        ops.push(WriteOp::Put {
            table: TOPICS.into(),
            key,
            value: encode(&t),
        });
    }
    match sns.state.batch(&ops) {
        Err(basalt_store::StoreError::Conflict) => Err(crate::topics::concurrent()),
        other => Ok(other?),
    }
}

fn listing(s: &SubRec) -> Value {
    json!({
        "SubscriptionArn": if s.confirmed { s.arn() } else { "PendingConfirmation".to_owned() },
        "Owner": s.owner,
        "Protocol": s.protocol,
        "Endpoint": s.endpoint,
        "TopicArn": s.topic_arn(),
    })
}

fn page(sns: &Sns, prefix: &str, input: &Value) -> Result<Value, AwsError> {
    let after = match str_of(input, "NextToken") {
        Some(t) => Some(untoken(t)?),
        None => None,
    };
    let rows = sns
        .state
        .scan(SUBSCRIPTIONS, prefix, after.as_deref(), PAGE + 1)?;
    let more = rows.len() > PAGE;
    let mut subs = Vec::new();
    let mut last = None;
    for (k, v) in rows.into_iter().take(PAGE) {
        if let Ok(s) = serde_json::from_slice::<SubRec>(&v) {
            subs.push(listing(&s));
        }
        last = Some(k);
    }
    let mut out = json!({"Subscriptions": subs});
    if more && let Some(last) = last {
        out["NextToken"] = token(&last).into();
    }
    Ok(out)
}

pub fn list(sns: &Sns, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    page(sns, &format!("{}/{}/", ctx.account_id, ctx.region), input)
}

pub fn list_by_topic(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let t = by_arn(sns, required(input, "TopicArn")?, "TopicArn")?;
    page(
        sns,
        &crate::model::topic_subs_prefix(&t.account, &t.region, &t.name),
        input,
    )
}

/// The subscription an ARN names.
pub(crate) fn load_sub(sns: &Sns, arn: &str) -> Result<Option<SubRec>, AwsError> {
    let (region, account, topic, id) =
        parse_subscription_arn(arn).ok_or_else(|| invalid("SubscriptionArn"))?;
    let Some(raw) = sns
        .state
        .get(SUBSCRIPTIONS, &sub_key(account, region, topic, id))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| AwsError::internal(format!("corrupt subscription record: {e}")))
}

fn must_load_sub(sns: &Sns, input: &Value) -> Result<SubRec, AwsError> {
    load_sub(sns, required(input, "SubscriptionArn")?)?
        .ok_or_else(|| not_found("Subscription does not exist"))
}

pub fn get_attributes(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let sub = must_load_sub(sns, input)?;
    let topic = load(sns, &sub.account, &sub.region, &sub.topic)?;
    Ok(json!({"Attributes": sub_attributes(&sub, topic.as_ref())}))
}

pub fn set_attribute(sns: &Sns, _ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mut sub = must_load_sub(sns, input)?;
    let name = required(input, "AttributeName")?;
    let value = str_of(input, "AttributeValue").unwrap_or_default();
    let v = check_sub_attribute(&sub.protocol, &sub.attributes, name, value)?;
    if v.is_empty() {
        sub.attributes.remove(name);
    } else {
        sub.attributes.insert(name.to_owned(), v);
    }
    sns.state.put(SUBSCRIPTIONS, &sub.key(), &encode(&sub))?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_by_protocol() {
        assert!(check_endpoint("sqs", "arn:aws:sqs:us-east-1:000000000000:q").is_ok());
        assert!(check_endpoint("sqs", "https://queue").is_err());
        assert!(
            check_endpoint("lambda", "arn:aws:lambda:us-east-1:000000000000:function:f").is_ok()
        );
        assert!(check_endpoint("http", "http://127.0.0.1:8080/x").is_ok());
        assert!(check_endpoint("http", "https://x").is_err());
        assert!(check_endpoint("email", "a@example.com").is_ok());
        assert!(check_endpoint("email", "nobody").is_err());
        assert!(check_endpoint("sms", "+15555550100").is_ok());
        assert!(check_endpoint("sms", "call me").is_err());
        let e = check_endpoint("carrier-pigeon", "x").unwrap_err();
        assert_eq!(
            e.message,
            "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon"
        );
    }

    #[test]
    fn scope_is_checked_before_the_policy() {
        let input = json!({"Attributes": {
            "FilterPolicy": "{\"a\": {\"b\": [\"c\"]}}",
            "FilterPolicyScope": "MessageBody",
        }});
        let attrs = attributes_of("sqs", &input).unwrap();
        assert_eq!(attrs["FilterPolicyScope"], "MessageBody");
        let nested = json!({"Attributes": {"FilterPolicy": "{\"a\": {\"b\": [\"c\"]}}"}});
        assert!(attributes_of("sqs", &nested).is_err());
    }
}
