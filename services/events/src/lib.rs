//! Amazon EventBridge (botocore service `events`): event buses, rules with event patterns or
//! schedules, targets with input transformation, PutEvents, TestEventPattern, and the events
//! AWS services emit (S3's `Object Created`/`Object Deleted` on the default bus).
//!
//! PutEvents matches each event against its bus's rules (compiled into one
//! [`basalt_eventpattern::Matcher`] per bus) and stores one delivery per matching target in
//! the transaction that acknowledges the event; a worker on the store's leases delivers them,
//! retries them with backoff as the target's RetryPolicy allows and sends what still fails to
//! the target's dead-letter queue. Nothing acknowledged is lost to a crash, and any node
//! delivers.
//!
//! Archives are managed rules whose matches are stored with the event's acceptance;
//! replays run page by page on the leases, from a checkpoint committed with each page's
//! deliveries (`archives.rs`, `replay.rs`).

mod archives;
mod buses;
mod connections;
mod deliver;
mod ingest;
mod model;
mod replay;
mod rules;
mod schedules;
mod targets;
mod transform;

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
pub use connections::EventsConnections;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

pub struct Events {
    state: Arc<dyn StateStore>,
    /// The services targets live in; set once every service is registered.
    registry: OnceLock<ServiceRegistry>,
    /// Compiled rules per bus.
    matchers: ingest::Matchers,
    /// Wakes the delivery worker when deliveries were queued.
    wake: Arc<tokio::sync::Notify>,
    /// Wakes the schedule worker when a scheduled rule changed.
    wake_schedules: Arc<tokio::sync::Notify>,
    /// Wakes the worker of the events AWS services stored.
    wake_service_events: tokio::sync::Notify,
    /// Wakes the replay worker when a replay started or was cancelled.
    wake_replays: tokio::sync::Notify,
    config: EventsConfig,
}

/// Tunables, from the environment (tests shorten the retry backoff).
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// First retry delay; doubles per attempt up to `retry_max_ms`.
    pub retry_base_ms: i64,
    pub retry_max_ms: i64,
    /// How long a node holds a claimed delivery: a node that dies holding one delays it
    /// this long.
    pub lease_ms: i64,
    /// How often an archive with a retention period drops its expired events.
    pub retention_every_ms: i64,
    /// Archived events a replay sends per step (one transaction, one checkpoint).
    pub replay_page: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        let env = |name: &str, default: i64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        EventsConfig {
            retry_base_ms: env("BASALT_EVENTS_RETRY_BASE_MS", 1_000),
            retry_max_ms: env("BASALT_EVENTS_RETRY_MAX_MS", 300_000),
            lease_ms: env("BASALT_EVENTS_LEASE_MS", 15_000).max(1_000),
            retention_every_ms: env("BASALT_EVENTS_RETENTION_EVERY_MS", 3_600_000).max(100),
            replay_page: env("BASALT_EVENTS_REPLAY_PAGE", 100).clamp(1, 1_000) as usize,
        }
    }
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

pub(crate) fn validation(message: impl Into<String>) -> AwsError {
    AwsError::validation(message)
}

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceNotFoundException", message)
}

pub(crate) fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    match str_of(input, name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(name)
        ))),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn token(value: &str) -> String {
    basalt_core::page_token::encode(value)
}

pub(crate) fn untoken(token: &str) -> Result<String, AwsError> {
    basalt_core::page_token::decode(token)
        .ok_or_else(|| validation("The nextToken provided is invalid."))
}

/// `Limit` of the List operations (1-100).
pub(crate) fn limit(input: &Value, default: usize) -> Result<usize, AwsError> {
    match input.get("Limit").and_then(Value::as_i64) {
        None => Ok(default),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100"
        ))),
    }
}

impl Events {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<Events> {
        Arc::new(Events {
            state,
            registry: OnceLock::new(),
            matchers: ingest::Matchers::default(),
            wake: Arc::default(),
            wake_schedules: Arc::default(),
            wake_service_events: tokio::sync::Notify::new(),
            wake_replays: tokio::sync::Notify::new(),
            config: EventsConfig::default(),
        })
    }

    /// Gives EventBridge the registry its targets are reached through.
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Starts the delivery, schedule and service-event workers (on the store's leases); the
    /// internal bus, when given, wakes the last one as soon as a service stored an event.
    pub fn start_workers(self: &Arc<Self>, internal: Option<basalt_core::events::EventBus>) {
        deliver::start_worker(self.clone());
        schedules::start_worker(self.clone());
        ingest::start_service_events(self.clone(), internal);
        replay::start_worker(self.clone());
        archives::start_upkeep(self.clone());
    }
}

#[async_trait::async_trait]
impl Service for Events {
    fn name(&self) -> &'static str {
        "events"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let out = match operation {
            "PutEvents" => ingest::put_events(self, ctx, &input),
            "TestEventPattern" => ingest::test_event_pattern(&input),
            "CreateEventBus" => buses::create(self, ctx, &input),
            "DescribeEventBus" => buses::describe(self, ctx, &input),
            "ListEventBuses" => buses::list(self, ctx, &input),
            "DeleteEventBus" => buses::delete(self, ctx, &input),
            "UpdateEventBus" => buses::update(self, ctx, &input),
            "PutPermission" => buses::put_permission(self, ctx, &input),
            "RemovePermission" => buses::remove_permission(self, ctx, &input),
            "CreateConnection" => connections::create(self, ctx, &input),
            "DescribeConnection" => connections::describe(self, ctx, &input),
            "ListConnections" => connections::list(self, ctx, &input),
            "UpdateConnection" => connections::update(self, ctx, &input),
            "DeleteConnection" => connections::delete(self, ctx, &input),
            "DeauthorizeConnection" => connections::deauthorize(self, ctx, &input),
            "PutRule" => rules::put(self, ctx, &input),
            "DescribeRule" => rules::describe(self, ctx, &input),
            "ListRules" => rules::list(self, ctx, &input),
            "EnableRule" => rules::set_state(self, ctx, &input, "ENABLED"),
            "DisableRule" => rules::set_state(self, ctx, &input, "DISABLED"),
            "DeleteRule" => rules::delete(self, ctx, &input),
            "ListRuleNamesByTarget" => rules::names_by_target(self, ctx, &input),
            "TagResource" => rules::tag(self, ctx, &input),
            "UntagResource" => rules::untag(self, ctx, &input),
            "ListTagsForResource" => rules::list_tags(self, ctx, &input),
            "PutTargets" => targets::put(self, ctx, &input),
            "RemoveTargets" => targets::remove(self, ctx, &input),
            "ListTargetsByRule" => targets::list(self, ctx, &input),
            "CreateArchive" => archives::create(self, ctx, &input),
            "DescribeArchive" => archives::describe(self, ctx, &input),
            "ListArchives" => archives::list(self, ctx, &input),
            "UpdateArchive" => archives::update(self, ctx, &input),
            "DeleteArchive" => archives::delete(self, ctx, &input),
            "StartReplay" => replay::start(self, ctx, &input),
            "DescribeReplay" => replay::describe(self, ctx, &input),
            "ListReplays" => replay::list(self, ctx, &input),
            "CancelReplay" => replay::cancel(self, ctx, &input),
            _ => return Err(AwsError::not_implemented("events", operation)),
        }?;
        Ok(Output::new(out))
    }
}
