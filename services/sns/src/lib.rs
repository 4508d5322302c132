//! Amazon SNS (botocore service `sns`, the query protocol): standard and FIFO topics, their
//! attributes and tags; subscriptions of SQS queues, Lambda functions, HTTP/S endpoints, email
//! addresses and phone numbers, with filter policies, raw delivery and dead-letter queues;
//! Publish and PublishBatch.
//!
//! Publish stores one delivery per matching subscription (its filter policy evaluated with
//! [`basalt_eventpattern::FilterPolicy`]) in the transaction that acknowledges the message, as
//! work items of the store's leases; a worker on any node delivers them (`deliver`), retries
//! them as the protocol's delivery policy says and sends what still fails to the
//! subscription's dead-letter queue. Notifications are signed (SignatureVersion 1 and 2) with a
//! key and self-signed certificate Basalt generates once and keeps in the store (`sign`).
//! Email, email-json and SMS endpoints cannot be reached from a laptop: their subscriptions
//! are confirmed at once and every message they would get is kept as a record
//! ([`Sns::deliveries`], served at `/_basalt/sns/deliveries?endpoint=...`).

mod attributes;
mod deliver;
mod model;
mod publish;
mod sign;
mod subscriptions;
mod topics;

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

pub use basalt_outbound::TlsTrust;
pub use model::RECORDS;

/// The path prefix of Basalt's own SNS URLs (SubscribeURL, UnsubscribeURL, SigningCertURL,
/// the delivery records of email and SMS endpoints).
pub const URL_PATH: &str = "/_basalt/sns/";

pub struct Sns {
    state: Arc<dyn StateStore>,
    /// The services subscriptions live in; set once every service is registered.
    registry: OnceLock<ServiceRegistry>,
    /// Wakes the delivery worker when deliveries were queued.
    wake: Arc<tokio::sync::Notify>,
    /// The signing key and certificate, loaded (or made) on first use.
    signer: OnceLock<Arc<sign::Signer>>,
    http: basalt_outbound::Client,
    config: SnsConfig,
}

/// Tunables; tests shorten the delays from the environment.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// Base URL of this server, for the URLs in messages.
    pub endpoint: String,
    /// Multiplies every retry delay (`BASALT_SNS_RETRY_SCALE`, default 1.0): 0.01 turns
    /// HTTP's 20-second default into 200 ms.
    pub retry_scale: f64,
    /// How long a node holds a claimed delivery (`BASALT_SNS_LEASE_MS`).
    pub lease_ms: i64,
    /// HTTP/S request timeout (AWS: 15 s).
    pub http_timeout_ms: u64,
    /// Which certificates HTTPS endpoints may present (`BASALT_SNS_CA_BUNDLE`,
    /// `BASALT_SNS_TRUST_LOOPBACK_TLS`).
    pub tls: basalt_outbound::TlsTrust,
}

impl SnsConfig {
    pub fn new(endpoint: &str) -> SnsConfig {
        let env = |name: &str| std::env::var(name).ok();
        SnsConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            retry_scale: env("BASALT_SNS_RETRY_SCALE")
                .and_then(|v| v.parse().ok())
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .unwrap_or(1.0),
            lease_ms: env("BASALT_SNS_LEASE_MS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30_000i64)
                .max(1_000),
            http_timeout_ms: 15_000,
            tls: basalt_outbound::TlsTrust::from_env(),
        }
    }
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// `InvalidParameter`, worded as SNS words it (`Invalid parameter: ...`).
pub(crate) fn invalid(message: impl AsRef<str>) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterException",
        format!("Invalid parameter: {}", message.as_ref()),
    )
}

/// `ParameterValueInvalid` (message attributes).
pub(crate) fn invalid_value(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterValueException", message)
}

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "NotFoundException", message)
}

pub(crate) fn no_topic() -> AwsError {
    not_found("Topic does not exist")
}

pub(crate) fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    match str_of(input, name) {
        Some(v) => Ok(v),
        None => Err(invalid(name)),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// AWS's timestamp form in messages: `2012-04-25T21:49:25.719Z`.
pub(crate) fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn token(value: &str) -> String {
    basalt_core::page_token::encode(value)
}

pub(crate) fn untoken(token: &str) -> Result<String, AwsError> {
    basalt_core::page_token::decode(token).ok_or_else(|| invalid("NextToken"))
}

impl Sns {
    pub fn new(state: Arc<dyn StateStore>, config: SnsConfig) -> Arc<Sns> {
        Arc::new(Sns {
            state,
            registry: OnceLock::new(),
            wake: Arc::default(),
            signer: OnceLock::new(),
            http: basalt_outbound::Client::new(&config.tls),
            config,
        })
    }

    /// Gives SNS the registry its subscribers are reached through.
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Starts the delivery worker (on the store's leases).
    pub fn start_workers(self: &Arc<Self>) {
        deliver::start_worker(self.clone());
    }

    /// The signing certificate (PEM) served at `SigningCertURL`, made on first use.
    pub fn signing_cert_pem(&self) -> Result<String, AwsError> {
        Ok(self.signer()?.cert_pem.clone())
    }

    /// The file name of the certificate under [`URL_PATH`].
    pub fn signing_cert_name(&self) -> Result<String, AwsError> {
        Ok(self.signer()?.cert_name.clone())
    }

    pub(crate) fn signer(&self) -> Result<Arc<sign::Signer>, AwsError> {
        if let Some(s) = self.signer.get() {
            return Ok(s.clone());
        }
        let s = Arc::new(sign::Signer::load_or_create(self.state.as_ref())?);
        Ok(self.signer.get_or_init(|| s).clone())
    }

    /// `SubscribeURL`: GET confirms the subscription (`/_basalt/sns/?Action=ConfirmSubscription`).
    pub fn confirm_by_url(&self, topic_arn: &str, token: &str) -> Result<String, AwsError> {
        subscriptions::confirm_arn(self, topic_arn, token)
    }

    /// `UnsubscribeURL`: GET removes the subscription.
    pub fn unsubscribe_by_url(&self, subscription_arn: &str) -> Result<(), AwsError> {
        subscriptions::unsubscribe_arn(self, subscription_arn)
    }

    /// Every message delivered to an email, email-json or SMS endpoint (and SMS published to
    /// a phone number), oldest first.
    pub fn deliveries(&self, endpoint: &str) -> Result<Vec<Value>, AwsError> {
        let prefix = model::record_prefix(endpoint);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.state.scan(RECORDS, &prefix, after.as_deref(), 500)?;
            let n = page.len();
            for (k, v) in page {
                if let Ok(rec) = serde_json::from_slice(&v) {
                    out.push(rec);
                }
                after = Some(k);
            }
            if n < 500 {
                return Ok(out);
            }
        }
    }
}

#[async_trait::async_trait]
impl Service for Sns {
    fn name(&self) -> &'static str {
        "sns"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        // A read-modify-write of a topic that lost a race with another writer runs again.
        let mut tries = 0;
        loop {
            match self.dispatch(ctx, operation, &input) {
                Err(e) if e.code == "ConcurrentAccessException" && tries < 10 => tries += 1,
                other => return other.map(Output::new),
            }
        }
    }
}

impl Sns {
    fn dispatch(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Value,
    ) -> Result<Value, AwsError> {
        match operation {
            "CreateTopic" => topics::create(self, ctx, input),
            "DeleteTopic" => topics::delete(self, ctx, input),
            "ListTopics" => topics::list(self, ctx, input),
            "GetTopicAttributes" => topics::get_attributes(self, ctx, input),
            "SetTopicAttributes" => topics::set_attribute(self, ctx, input),
            "AddPermission" => topics::add_permission(self, ctx, input),
            "RemovePermission" => topics::remove_permission(self, ctx, input),
            "TagResource" => topics::tag(self, ctx, input),
            "UntagResource" => topics::untag(self, ctx, input),
            "ListTagsForResource" => topics::list_tags(self, ctx, input),
            "Subscribe" => subscriptions::subscribe(self, ctx, input),
            "ConfirmSubscription" => subscriptions::confirm(self, ctx, input),
            "Unsubscribe" => subscriptions::unsubscribe(self, ctx, input),
            "ListSubscriptions" => subscriptions::list(self, ctx, input),
            "ListSubscriptionsByTopic" => subscriptions::list_by_topic(self, ctx, input),
            "GetSubscriptionAttributes" => subscriptions::get_attributes(self, ctx, input),
            "SetSubscriptionAttributes" => subscriptions::set_attribute(self, ctx, input),
            "Publish" => publish::publish(self, ctx, input),
            "PublishBatch" => publish::publish_batch(self, ctx, input),
            _ => Err(AwsError::not_implemented("sns", operation)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sns() -> Arc<Sns> {
        Sns::new(
            Arc::new(basalt_store::MemoryState::default()),
            SnsConfig::new("http://127.0.0.1:4566"),
        )
    }

    async fn call(sns: &Sns, op: &str, input: Value) -> Result<Value, AwsError> {
        let ctx = RequestContext::internal("000000000000", "us-east-1", "");
        sns.call(&ctx, op, input).await.map(|o| o.body)
    }

    #[tokio::test]
    async fn publish_queues_one_delivery_per_matching_subscription() {
        let sns = sns();
        let arn = call(&sns, "CreateTopic", json!({"Name": "t"}))
            .await
            .unwrap()["TopicArn"]
            .as_str()
            .unwrap()
            .to_owned();
        for (q, policy) in [("a", None), ("b", Some(r#"{"k": ["no"]}"#))] {
            let mut input = json!({"TopicArn": arn, "Protocol": "sqs",
                                   "Endpoint": format!("arn:aws:sqs:us-east-1:000000000000:{q}")});
            if let Some(p) = policy {
                input["Attributes"] = json!({"FilterPolicy": p});
            }
            call(&sns, "Subscribe", input).await.unwrap();
        }
        call(
            &sns,
            "Subscribe",
            json!({"TopicArn": arn, "Protocol": "email", "Endpoint": "a@b.co"}),
        )
        .await
        .unwrap();
        let out = call(
            &sns,
            "Publish",
            json!({"TopicArn": arn, "Message": "m",
            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "yes"}}}),
        )
        .await
        .unwrap();
        assert!(out["MessageId"].is_string());
        assert_eq!(sns.state.pending(model::DELIVERIES).unwrap(), 1);
        let records = sns.deliveries("a@b.co").unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["Body"], "m");
    }

    #[tokio::test]
    async fn fifo_sequence_numbers_and_deduplication() {
        let sns = sns();
        let arn = call(
            &sns,
            "CreateTopic",
            json!({"Name": "t.fifo",
            "Attributes": {"FifoTopic": "true", "ContentBasedDeduplication": "true"}}),
        )
        .await
        .unwrap()["TopicArn"]
            .as_str()
            .unwrap()
            .to_owned();
        let publish = |m: &'static str| {
            call(
                &sns,
                "Publish",
                json!({"TopicArn": arn, "Message": m, "MessageGroupId": "g"}),
            )
        };
        let a = publish("one").await.unwrap();
        let b = publish("one").await.unwrap();
        let c = publish("two").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a["SequenceNumber"], "10000000000000000001");
        assert_eq!(c["SequenceNumber"], "10000000000000000002");
        // Topic updates keep the sequence (they write under a precondition).
        call(
            &sns,
            "SetTopicAttributes",
            json!({"TopicArn": arn,
            "AttributeName": "DisplayName", "AttributeValue": "x"}),
        )
        .await
        .unwrap();
        let d = publish("three").await.unwrap();
        assert_eq!(d["SequenceNumber"], "10000000000000000003");
        let batch = call(
            &sns,
            "PublishBatch",
            json!({"TopicArn": arn, "PublishBatchRequestEntries": [
                {"Id": "x", "Message": "four", "MessageGroupId": "g"},
                {"Id": "y", "Message": "four", "MessageGroupId": "g"},
                {"Id": "z", "Message": "five"},
            ]}),
        )
        .await
        .unwrap();
        let ok = batch["Successful"].as_array().unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0]["MessageId"], ok[1]["MessageId"]);
        assert_eq!(batch["Failed"][0]["Id"], "z");
        assert_eq!(batch["Failed"][0]["Code"], "InvalidParameter");
    }
}
