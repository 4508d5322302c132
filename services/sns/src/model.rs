//! Records and keys. A topic is `{account}/{region}/{name}` in [`TOPICS`]; its subscriptions are
//! `{account}/{region}/{topic}/{id}` in [`SUBSCRIPTIONS`], so one prefix scan lists a topic's
//! subscriptions and another an account's. Deliveries are work items of the lease queue
//! [`DELIVERIES`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const TOPICS: &str = "sns.topics";
pub const SUBSCRIPTIONS: &str = "sns.subscriptions";
/// FIFO deduplication ids seen in the last five minutes, by topic.
pub const DEDUP: &str = "sns.dedup";
/// What email, email-json and SMS endpoints received, by endpoint then time.
pub const RECORDS: &str = "sns.records";
/// The signing key and certificate.
pub const SIGNING: &str = "sns.signing";
/// The lease queue of deliveries (and of expired deduplication ids to forget).
pub const DELIVERIES: &str = "sns.deliveries";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicRec {
    pub name: String,
    pub account: String,
    pub region: String,
    pub created_ms: i64,
    /// Settable attributes as set; defaults are not stored.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The last FIFO sequence number given.
    #[serde(default)]
    pub seq: u64,
    /// Subscriptions removed since the topic was made (`SubscriptionsDeleted`).
    #[serde(default)]
    pub deleted_subs: u64,
}

impl TopicRec {
    pub fn key(account: &str, region: &str, name: &str) -> String {
        format!("{account}/{region}/{name}")
    }

    pub fn arn(&self) -> String {
        topic_arn(&self.region, &self.account, &self.name)
    }

    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn content_dedup(&self) -> bool {
        self.attr("ContentBasedDeduplication") == Some("true")
    }

    /// `SignatureVersion`: "1" (SHA1withRSA, the default) or "2" (SHA256withRSA).
    pub fn signature_version(&self) -> u8 {
        if self.attr("SignatureVersion") == Some("2") {
            2
        } else {
            1
        }
    }
}

pub fn topic_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:sns:{region}:{account}:{name}")
}

/// (region, account, topic name) of a topic ARN.
pub fn parse_topic_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut p = arn.splitn(6, ':');
    match (p.next(), p.next(), p.next(), p.next(), p.next(), p.next()) {
        (Some("arn"), Some(_), Some("sns"), Some(region), Some(account), Some(name))
            if !region.is_empty()
                && !account.is_empty()
                && !name.is_empty()
                && !name.contains(':') =>
        {
            Some((region, account, name))
        }
        _ => None,
    }
}

/// (region, account, topic name, subscription id) of a subscription ARN.
pub fn parse_subscription_arn(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut p = arn.splitn(7, ':');
    match (
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
    ) {
        (Some("arn"), Some(_), Some("sns"), Some(region), Some(account), Some(topic), Some(id))
            if !region.is_empty() && !account.is_empty() && !topic.is_empty() && !id.is_empty() =>
        {
            Some((region, account, topic, id))
        }
        _ => None,
    }
}

/// (service, region, account, resource) of any ARN.
pub fn arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut p = arn.splitn(6, ':');
    match (p.next(), p.next(), p.next(), p.next(), p.next(), p.next()) {
        (Some("arn"), Some(_), Some(service), Some(region), Some(account), Some(resource)) => {
            Some((service, region, account, resource))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubRec {
    pub id: String,
    pub topic: String,
    pub account: String,
    pub region: String,
    pub protocol: String,
    pub endpoint: String,
    /// The account that subscribed.
    pub owner: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub confirmed: bool,
    /// The confirmation token of a pending subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub created_ms: i64,
}

impl SubRec {
    pub fn key(&self) -> String {
        sub_key(&self.account, &self.region, &self.topic, &self.id)
    }

    pub fn topic_arn(&self) -> String {
        topic_arn(&self.region, &self.account, &self.topic)
    }

    pub fn arn(&self) -> String {
        format!("{}:{}", self.topic_arn(), self.id)
    }

    pub fn raw(&self) -> bool {
        self.attributes
            .get("RawMessageDelivery")
            .map(String::as_str)
            == Some("true")
    }

    /// The dead-letter queue's ARN (`RedrivePolicy.deadLetterTargetArn`).
    pub fn dead_letter_arn(&self) -> Option<String> {
        let p: serde_json::Value =
            serde_json::from_str(self.attributes.get("RedrivePolicy")?).ok()?;
        p.get("deadLetterTargetArn")?.as_str().map(str::to_owned)
    }
}

pub fn sub_key(account: &str, region: &str, topic: &str, id: &str) -> String {
    format!("{account}/{region}/{topic}/{id}")
}

pub fn topic_subs_prefix(account: &str, region: &str, topic: &str) -> String {
    format!("{account}/{region}/{topic}/")
}

pub fn record_prefix(endpoint: &str) -> String {
    format!("{endpoint}\u{1}")
}

pub fn record_key(endpoint: &str, ms: i64, message_id: &str) -> String {
    format!("{endpoint}\u{1}{ms:013}\u{1}{message_id}")
}

/// A message attribute as published. `Binary` values are base64, as the protocol gives them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attr {
    #[serde(rename = "t")]
    pub data_type: String,
    #[serde(rename = "v")]
    pub value: String,
}

impl Attr {
    pub fn is_binary(&self) -> bool {
        self.data_type.starts_with("Binary")
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Kind {
    Notification,
    SubscriptionConfirmation,
}

/// One message for one subscription: the payload of a work item of [`DELIVERIES`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub kind: Kind,
    pub sub_arn: String,
    pub topic_arn: String,
    pub message_id: String,
    /// The message for this subscription's protocol (MessageStructure `json` resolved).
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, Attr>,
    /// Epoch milliseconds of the publish.
    pub ms: i64,
    pub signature_version: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<String>,
    /// A confirmation's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A remembered FIFO deduplication id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DedupRec {
    pub message_id: String,
    pub seq: String,
    pub expires_ms: i64,
}
