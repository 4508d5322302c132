//! The internal event stream: services publish AWS-format events (EventBridge envelope)
//! that other services consume (S3 → EventBridge, Lambda triggers, knowledge-base sync).
//!
//! The stream is in memory and lossy: an event that must not be lost (an acknowledged S3
//! write's EventBridge event) is also stored as a work item of [`SERVICE_EVENTS_QUEUE`] in
//! the producer's own transaction, and the stream only wakes the consumer.

/// The lease queue of AWS-service events for the default EventBridge bus: items are the
/// event's envelope as JSON, enqueued by the producing service with its own writes.
pub const SERVICE_EVENTS_QUEUE: &str = "events.service-events";

use serde_json::Value;
use tokio::sync::broadcast;

/// An event in EventBridge's envelope (`version`, `id`, `detail-type`, `source`, `account`,
/// `time`, `region`, `resources`, `detail`).
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent(pub Value);

/// A fan-out channel; slow consumers lose the oldest events rather than blocking producers
/// (consumers that must not lose events persist their own cursor from the source service).
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<BusEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        EventBus { tx }
    }

    pub fn publish(&self, event: BusEvent) {
        // No subscriber is not an error: nothing consumes events until a consumer exists.
        let _ = self.tx.send(event);
    }

    /// Whether anything listens; producers skip building events nobody receives.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
}

/// Builds an EventBridge envelope for an event emitted by an AWS service.
pub fn envelope(
    source: &str,
    detail_type: &str,
    account: &str,
    region: &str,
    resources: Vec<String>,
    detail: Value,
) -> BusEvent {
    BusEvent(serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": resources,
        "detail": detail,
    }))
}
