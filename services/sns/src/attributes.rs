//! Topic and subscription attributes: which may be set, how each is checked, and what
//! Get*Attributes shows for those never set (the default policy, effective delivery policies).

use crate::invalid;
use crate::model::{SubRec, TopicRec};
use basalt_core::AwsError;
use basalt_eventpattern::{FilterPolicy, FilterPolicyScope};
use serde_json::{Map, Value, json};

/// Attributes a topic takes (CreateTopic and SetTopicAttributes); `FifoTopic` only at creation.
const TOPIC_SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "DisplayName",
    "Policy",
    "TracingConfig",
    "KmsMasterKeyId",
    "SignatureVersion",
    "ContentBasedDeduplication",
    "FifoThroughputScope",
    "ArchivePolicy",
    "DataProtectionPolicy",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
];

const SUB_SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

/// The HTTP/S retry policy AWS applies when none is set.
pub fn default_http_retry_policy() -> Value {
    json!({
        "minDelayTarget": 20,
        "maxDelayTarget": 20,
        "numRetries": 3,
        "numMaxDelayRetries": 0,
        "numNoDelayRetries": 0,
        "numMinDelayRetries": 0,
        "backoffFunction": "linear"
    })
}

pub fn default_policy(topic: &TopicRec) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic", "SNS:Publish"
            ],
            "Resource": topic.arn(),
            "Condition": {"StringEquals": {"AWS:SourceOwner": topic.account}}
        }]
    })
    .to_string()
}

/// The topic's delivery policy as AWS shows it in `EffectiveDeliveryPolicy`.
pub fn effective_topic_delivery_policy(topic: &TopicRec) -> Value {
    let mut http = json!({
        "defaultHealthyRetryPolicy": default_http_retry_policy(),
        "disableSubscriptionOverrides": false,
        "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"}
    });
    if let Some(set) = topic
        .attr("DeliveryPolicy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        && let Some(h) = set.get("http").and_then(Value::as_object)
    {
        for (k, v) in h {
            if k == "defaultHealthyRetryPolicy" {
                merge(&mut http[k], v);
            } else {
                http[k] = v.clone();
            }
        }
    }
    json!({ "http": http })
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// The retry policy a subscription's HTTP/S deliveries follow: its own `healthyRetryPolicy`,
/// else the topic's `http.defaultHealthyRetryPolicy`, else AWS's default.
pub fn http_retry_policy(topic: Option<&TopicRec>, sub: &SubRec) -> Value {
    let mut policy = match topic {
        Some(t) => effective_topic_delivery_policy(t)["http"]["defaultHealthyRetryPolicy"].clone(),
        None => default_http_retry_policy(),
    };
    if let Some(own) = sub
        .attributes
        .get("DeliveryPolicy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        && let Some(h) = own.get("healthyRetryPolicy")
    {
        merge(&mut policy, h);
    }
    policy
}

/// `headerContentType` of the HTTP/S request policy (subscription's, else topic's).
pub fn http_content_type(topic: Option<&TopicRec>, sub: &SubRec) -> String {
    let own = sub
        .attributes
        .get("DeliveryPolicy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| {
            p.pointer("/requestPolicy/headerContentType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    own.or_else(|| {
        topic.and_then(|t| {
            effective_topic_delivery_policy(t)
                .pointer("/http/defaultRequestPolicy/headerContentType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    })
    .unwrap_or_else(|| "text/plain; charset=UTF-8".into())
}

fn is_json(v: &str) -> bool {
    serde_json::from_str::<Value>(v).is_ok_and(|v| v.is_object())
}

fn bool_str(name: &str, value: &str) -> Result<String, AwsError> {
    match value.to_ascii_lowercase().as_str() {
        v @ ("true" | "false") => Ok(v.to_owned()),
        _ => Err(invalid(format!(
            "Attributes Reason: {name}: Invalid value [{value}]. Must be true or false."
        ))),
    }
}

/// Checks one topic attribute and returns the value to store.
pub fn check_topic_attribute(
    fifo: bool,
    name: &str,
    value: &str,
    creating: bool,
) -> Result<String, AwsError> {
    if name == "FifoTopic" && creating {
        return bool_str(name, value);
    }
    if !TOPIC_SETTABLE.contains(&name) {
        return Err(invalid("AttributeName"));
    }
    match name {
        "Policy" if !is_json(value) => Err(invalid("Policy Error: null")),
        "DeliveryPolicy" if !value.is_empty() && !is_json(value) => {
            Err(invalid("DeliveryPolicy: failed to parse JSON."))
        }
        "SignatureVersion" if !matches!(value, "1" | "2") => Err(invalid(format!(
            "Attributes Reason: SignatureVersion: Invalid value [{value}]. Must be 1 or 2."
        ))),
        "TracingConfig" if !matches!(value, "PassThrough" | "Active") => {
            Err(invalid("TracingConfig: Invalid value"))
        }
        "ContentBasedDeduplication" | "FifoThroughputScope" | "ArchivePolicy" if !fifo => {
            Err(invalid(format!(
                "Attributes Reason: {name} can only be set for FIFO topics"
            )))
        }
        "ContentBasedDeduplication" => bool_str(name, value),
        "FifoThroughputScope" if !matches!(value, "Topic" | "MessageGroup") => Err(invalid(
            format!("Attributes Reason: FifoThroughputScope: Invalid value [{value}]"),
        )),
        "DisplayName" if value.chars().count() > 100 => Err(invalid("DisplayName")),
        _ => Ok(value.to_owned()),
    }
}

/// GetTopicAttributes' map.
pub fn topic_attributes(topic: &TopicRec, confirmed: usize, pending: usize) -> Map<String, Value> {
    let mut m = Map::new();
    let s = |v: &str| Value::from(v.to_owned());
    m.insert(
        "Policy".into(),
        s(topic
            .attr("Policy")
            .map_or_else(|| default_policy(topic), str::to_owned)
            .as_str()),
    );
    m.insert("Owner".into(), s(&topic.account));
    m.insert("SubscriptionsPending".into(), s(&pending.to_string()));
    m.insert("TopicArn".into(), s(&topic.arn()));
    m.insert(
        "EffectiveDeliveryPolicy".into(),
        s(&effective_topic_delivery_policy(topic).to_string()),
    );
    m.insert("SubscriptionsConfirmed".into(), s(&confirmed.to_string()));
    m.insert(
        "DisplayName".into(),
        s(topic.attr("DisplayName").unwrap_or("")),
    );
    m.insert(
        "SubscriptionsDeleted".into(),
        s(&topic.deleted_subs.to_string()),
    );
    if topic.is_fifo() {
        m.insert("FifoTopic".into(), s("true"));
        m.insert(
            "ContentBasedDeduplication".into(),
            s(topic.attr("ContentBasedDeduplication").unwrap_or("false")),
        );
    }
    for (k, v) in &topic.attributes {
        if !m.contains_key(k) && k != "FifoTopic" {
            m.insert(k.clone(), s(v));
        }
    }
    m
}

fn raw_capable(protocol: &str) -> bool {
    matches!(protocol, "sqs" | "http" | "https" | "firehose")
}

/// Checks one subscription attribute against the subscription (its protocol, its current
/// scope) and returns the value to store.
pub fn check_sub_attribute(
    protocol: &str,
    current: &std::collections::BTreeMap<String, String>,
    name: &str,
    value: &str,
) -> Result<String, AwsError> {
    if !SUB_SETTABLE.contains(&name) {
        return Err(invalid("AttributeName"));
    }
    match name {
        "RawMessageDelivery" => {
            let v = bool_str(name, value)?;
            if !raw_capable(protocol) {
                return Err(invalid(format!(
                    "Delivery protocol [{protocol}] does not support raw message delivery."
                )));
            }
            Ok(v)
        }
        "FilterPolicyScope" => {
            let scope = parse_scope(value)?;
            if let Some(policy) = current.get("FilterPolicy") {
                compile_policy(policy, scope)?;
            }
            Ok(value.to_owned())
        }
        "FilterPolicy" => {
            if value.is_empty() {
                return Ok(String::new());
            }
            let scope = current
                .get("FilterPolicyScope")
                .map_or(Ok(FilterPolicyScope::MessageAttributes), |s| parse_scope(s))?;
            compile_policy(value, scope)?;
            Ok(value.to_owned())
        }
        "RedrivePolicy" => {
            if value.is_empty() {
                return Ok(String::new());
            }
            let p: Value = serde_json::from_str(value)
                .map_err(|_| invalid("RedrivePolicy: failed to parse JSON."))?;
            let arn = p
                .get("deadLetterTargetArn")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("RedrivePolicy: deadLetterTargetArn is missing"))?;
            match crate::model::arn_parts(arn) {
                Some(("sqs", r, a, q)) if !r.is_empty() && !a.is_empty() && !q.is_empty() => {}
                _ => {
                    return Err(invalid(
                        "RedrivePolicy: deadLetterTargetArn is an invalid arn",
                    ));
                }
            }
            Ok(value.to_owned())
        }
        "DeliveryPolicy" => {
            if !matches!(protocol, "http" | "https") && !value.is_empty() {
                return Err(invalid(format!(
                    "DeliveryPolicy: Delivery protocol [{protocol}] does not support delivery policies"
                )));
            }
            if !value.is_empty() && !is_json(value) {
                return Err(invalid("DeliveryPolicy: failed to parse JSON."));
            }
            Ok(value.to_owned())
        }
        _ => Ok(value.to_owned()),
    }
}

pub fn parse_scope(value: &str) -> Result<FilterPolicyScope, AwsError> {
    match value {
        "MessageAttributes" => Ok(FilterPolicyScope::MessageAttributes),
        "MessageBody" => Ok(FilterPolicyScope::MessageBody),
        _ => Err(invalid(format!(
            "Attributes Reason: FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or MessageAttributes"
        ))),
    }
}

/// Compiles a policy; errors are SNS's `InvalidParameter` words.
pub fn compile_policy(policy: &str, scope: FilterPolicyScope) -> Result<FilterPolicy, AwsError> {
    FilterPolicy::parse_scoped(policy, scope)
        .map_err(|e| AwsError::new(400, "InvalidParameterException", e.to_string()))
}

/// GetSubscriptionAttributes' map.
pub fn sub_attributes(sub: &SubRec, topic: Option<&TopicRec>) -> Map<String, Value> {
    let mut m = Map::new();
    let s = |v: &str| Value::from(v.to_owned());
    m.insert(
        "ConfirmationWasAuthenticated".into(),
        s(if sub.confirmed { "true" } else { "false" }),
    );
    m.insert(
        "PendingConfirmation".into(),
        s(if sub.confirmed { "false" } else { "true" }),
    );
    m.insert("Owner".into(), s(&sub.owner));
    m.insert(
        "RawMessageDelivery".into(),
        s(sub
            .attributes
            .get("RawMessageDelivery")
            .map_or("false", String::as_str)),
    );
    m.insert("TopicArn".into(), s(&sub.topic_arn()));
    m.insert("Endpoint".into(), s(&sub.endpoint));
    m.insert("Protocol".into(), s(&sub.protocol));
    m.insert("SubscriptionArn".into(), s(&sub.arn()));
    m.insert(
        "SubscriptionPrincipal".into(),
        s(&format!("arn:aws:iam::{}:root", sub.owner)),
    );
    if matches!(sub.protocol.as_str(), "http" | "https") {
        m.insert(
            "EffectiveDeliveryPolicy".into(),
            s(&json!({
                "healthyRetryPolicy": http_retry_policy(topic, sub),
                "sicklyRetryPolicy": null,
                "throttlePolicy": null,
                "guaranteed": false
            })
            .to_string()),
        );
    }
    for (k, v) in &sub.attributes {
        if k != "RawMessageDelivery" && !v.is_empty() {
            m.insert(k.clone(), s(v));
        }
    }
    if sub
        .attributes
        .get("FilterPolicy")
        .is_some_and(|p| !p.is_empty())
        && !m.contains_key("FilterPolicyScope")
    {
        m.insert("FilterPolicyScope".into(), s("MessageAttributes"));
    }
    m
}
