//! Records and keys. A queue is `{account}/{region}/{name}` in [`QUEUES`]; its messages are the
//! items of the lease queue `sqs/{id}`, where `id` is fresh for every queue created, so that a
//! queue deleted and created again under the same name never sees the old one's messages.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const QUEUES: &str = "sqs.queues";
/// When each message was first received (`ApproximateFirstReceiveTimestamp`), by message id,
/// written on the first receive and deleted with the message.
pub const FIRST_RECEIVES: &str = "sqs.first-receives";
/// Message move tasks by handle.
pub const MOVE_TASKS: &str = "sqs.move-tasks";

/// A queue's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueRec {
    pub name: String,
    pub account: String,
    pub region: String,
    /// Names the queue's lease queue.
    pub id: String,
    /// Epoch seconds.
    pub created: i64,
    pub modified: i64,
    /// The settable attributes as last set, in AWS's string form; defaults are not stored.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Epoch milliseconds of the last PurgeQueue (one per 60 seconds).
    #[serde(default)]
    pub purged_ms: Option<i64>,
}

impl QueueRec {
    pub fn key(account: &str, region: &str, name: &str) -> String {
        format!("{account}/{region}/{name}")
    }

    pub fn lease_queue(&self) -> String {
        lease_queue(&self.id)
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:sqs:{}:{}:{}", self.region, self.account, self.name)
    }

    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/{}",
            endpoint.trim_end_matches('/'),
            self.account,
            self.name
        )
    }

    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }

    /// A settable attribute's value: as set, else its default.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.attributes
            .get(name)
            .cloned()
            .or_else(|| crate::attributes::default_value(name, self.is_fifo()))
    }

    /// A numeric attribute (they are validated when set).
    pub fn num(&self, name: &str) -> i64 {
        self.attr(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    /// `RedrivePolicy` as (dead-letter queue ARN, maxReceiveCount).
    pub fn redrive(&self) -> Option<(String, u32)> {
        let policy: serde_json::Value =
            serde_json::from_str(self.attributes.get("RedrivePolicy")?).ok()?;
        let arn = policy.get("deadLetterTargetArn")?.as_str()?.to_owned();
        let max = crate::attributes::int_of(policy.get("maxReceiveCount")?)?;
        Some((arn, u32::try_from(max).ok()?))
    }
}

pub fn lease_queue(id: &str) -> String {
    format!("sqs/{id}")
}

/// A message attribute as sent (`DataType` `String`, `Number` or `Binary`, optionally with a
/// `.custom` suffix). Binary values are base64, as the protocol layer gives them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attr {
    #[serde(rename = "t")]
    pub data_type: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

/// A message, the payload of its work item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub md5_body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, Attr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_attrs: Option<String>,
    /// `AWSTraceHeader`, the one system attribute a sender may set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Epoch milliseconds.
    pub sent_ms: i64,
    pub sender: String,
    /// Set when the message was moved to a dead-letter queue: the queue it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlq_source: Option<String>,
    /// FIFO queues: the message group, deduplication id and sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<String>,
}
