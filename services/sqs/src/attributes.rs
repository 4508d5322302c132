//! Queue attributes: which exist, their defaults and ranges, and how they are validated and
//! reported (GetQueueAttributes), as the SQS API reference gives them.

use crate::model::QueueRec;
use crate::{Sqs, invalid_attribute_name, invalid_attribute_value};
use basalt_core::AwsError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Settable attributes with an integer range, and their defaults.
const RANGES: &[(&str, i64, i64, i64)] = &[
    ("DelaySeconds", 0, 900, 0),
    // 1 MiB since August 2025 (botocore's model: "Default: 1,048,576 bytes (1 MiB)").
    ("MaximumMessageSize", 1024, 1_048_576, 1_048_576),
    ("MessageRetentionPeriod", 60, 1_209_600, 345_600),
    ("ReceiveMessageWaitTimeSeconds", 0, 20, 0),
    ("VisibilityTimeout", 0, 43_200, 30),
    ("KmsDataKeyReusePeriodSeconds", 60, 86_400, 300),
];

/// Settable attributes whose value is free-form (policies) or an enumeration.
const OTHERS: &[&str] = &[
    "Policy",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Attributes only SQS sets.
const READ_ONLY: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// Attributes that only FIFO queues have.
const FIFO_ONLY: &[&str] = &[
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// The default of a settable attribute, as GetQueueAttributes reports it.
pub fn default_value(name: &str, fifo: bool) -> Option<String> {
    if let Some((_, _, _, d)) = RANGES.iter().find(|(n, ..)| *n == name) {
        return Some(d.to_string());
    }
    Some(
        match name {
            "SqsManagedSseEnabled" => "true",
            "FifoQueue" if fifo => "true",
            "ContentBasedDeduplication" if fifo => "false",
            "DeduplicationScope" if fifo => "queue",
            "FifoThroughputLimit" if fifo => "perQueue",
            _ => return None,
        }
        .to_owned(),
    )
}

/// An integer given as a JSON number or a string of digits (redrive policies carry both).
pub fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Checks attributes given to CreateQueue or SetQueueAttributes for a queue named `name`;
/// returns them as they will be stored.
pub fn validate(
    sqs: &Sqs,
    scope: (&str, &str),
    name: &str,
    given: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, AwsError> {
    let fifo = name.ends_with(".fifo");
    let mut out = BTreeMap::new();
    for (k, v) in given {
        let Some(value) = v.as_str() else {
            return Err(invalid_attribute_value(k));
        };
        if READ_ONLY.contains(&k.as_str()) {
            return Err(invalid_attribute_name(k));
        }
        if let Some((_, lo, hi, _)) = RANGES.iter().find(|(n, ..)| n == k) {
            match value.trim().parse::<i64>() {
                Ok(n) if (*lo..=*hi).contains(&n) => {}
                _ => return Err(invalid_attribute_value(k)),
            }
        } else if !OTHERS.contains(&k.as_str()) {
            return Err(invalid_attribute_name(k));
        }
        if FIFO_ONLY.contains(&k.as_str()) && !fifo && !(k == "FifoQueue" && value == "false") {
            return Err(invalid_attribute_name(k));
        }
        match k.as_str() {
            "FifoQueue" | "ContentBasedDeduplication" | "SqsManagedSseEnabled"
                if value != "true" && value != "false" =>
            {
                return Err(invalid_attribute_value(k));
            }
            "DeduplicationScope" if value != "queue" && value != "messageGroup" => {
                return Err(invalid_attribute_value(k));
            }
            "FifoThroughputLimit" if value != "perQueue" && value != "perMessageGroupId" => {
                return Err(invalid_attribute_value(k));
            }
            "RedrivePolicy" if !value.is_empty() => check_redrive(sqs, scope, fifo, value)?,
            "RedriveAllowPolicy" if !value.is_empty() => check_redrive_allow(value)?,
            "Policy"
                if !value.is_empty()
                    && serde_json::from_str::<Map<String, Value>>(value).is_err() =>
            {
                return Err(invalid_attribute_value(k));
            }
            _ => {}
        }
        out.insert(k.clone(), value.to_owned());
    }
    if fifo && out.get("FifoQueue").map(String::as_str) == Some("false") {
        return Err(invalid_attribute_value("FifoQueue"));
    }
    Ok(out)
}

fn check_redrive(sqs: &Sqs, scope: (&str, &str), fifo: bool, value: &str) -> Result<(), AwsError> {
    let bad = |why: &str| {
        AwsError::new(
            400,
            "InvalidParameterValue",
            format!("Value {value} for parameter RedrivePolicy is invalid. Reason: {why}"),
        )
        .with_query_code("InvalidParameterValue")
    };
    let policy: Map<String, Value> =
        serde_json::from_str(value).map_err(|_| bad("Redrive policy is not a valid JSON map."))?;
    let arn = policy
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
        })?;
    let max = policy.get("maxReceiveCount").ok_or_else(|| {
        bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.")
    })?;
    match int_of(max) {
        Some(n) if (1..=1000).contains(&n) => {}
        _ => {
            return Err(bad(
                "Invalid value for maxReceiveCount: should be between 1 and 1000",
            ));
        }
    }
    let target = sqs
        .queue_by_arn(arn)?
        .filter(|q| q.region == scope.1)
        .ok_or_else(|| bad("Dead-letter target does not exist."))?;
    if target.is_fifo() != fifo {
        return Err(bad(
            "Dead-letter queue must be same type of queue as the source.",
        ));
    }
    Ok(())
}

fn check_redrive_allow(value: &str) -> Result<(), AwsError> {
    let bad = || invalid_attribute_value("RedriveAllowPolicy");
    let policy: Map<String, Value> = serde_json::from_str(value).map_err(|_| bad())?;
    match policy.get("redrivePermission").and_then(Value::as_str) {
        Some("allowAll" | "denyAll") => Ok(()),
        Some("byQueue") => match policy.get("sourceQueueArns").and_then(Value::as_array) {
            Some(arns) if !arns.is_empty() && arns.len() <= 10 => Ok(()),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// GetQueueAttributes's answer for `names` (`All` for every one).
pub fn report(sqs: &Sqs, q: &QueueRec, names: &[String]) -> Result<Map<String, Value>, AwsError> {
    let all = names.iter().any(|n| n == "All");
    for n in names {
        let known = n == "All"
            || READ_ONLY.contains(&n.as_str())
            || OTHERS.contains(&n.as_str())
            || RANGES.iter().any(|(r, ..)| r == n);
        if !known {
            return Err(invalid_attribute_name(n));
        }
    }
    let wanted = |n: &str| all || names.iter().any(|x| x == n);
    let mut out = Map::new();
    if wanted("ApproximateNumberOfMessages")
        || wanted("ApproximateNumberOfMessagesNotVisible")
        || wanted("ApproximateNumberOfMessagesDelayed")
    {
        let now = sqs.clock()?;
        let counts = if q.is_fifo() {
            crate::fifo::counts(sqs, q, now)?
        } else {
            sqs.state.counts(&q.lease_queue(), now)?
        };
        for (n, v) in [
            ("ApproximateNumberOfMessages", counts.ready),
            ("ApproximateNumberOfMessagesNotVisible", counts.leased),
            ("ApproximateNumberOfMessagesDelayed", counts.delayed),
        ] {
            if wanted(n) {
                out.insert(n.into(), v.to_string().into());
            }
        }
    }
    for (n, v) in [
        ("CreatedTimestamp", Some(q.created.to_string())),
        ("LastModifiedTimestamp", Some(q.modified.to_string())),
        ("QueueArn", Some(q.arn())),
    ] {
        if wanted(n)
            && let Some(v) = v
        {
            out.insert(n.into(), v.into());
        }
    }
    let settable = RANGES
        .iter()
        .map(|(n, ..)| *n)
        .chain(OTHERS.iter().copied());
    for n in settable {
        if wanted(n)
            && let Some(v) = q.attr(n)
            && !(n == "KmsDataKeyReusePeriodSeconds"
                && !q.attributes.contains_key("KmsMasterKeyId")
                && !q.attributes.contains_key(n))
        {
            out.insert(n.into(), v.into());
        }
    }
    Ok(out)
}
