//! Amazon EventBridge Scheduler (botocore service `scheduler`): schedules and schedule groups.
//!
//! A schedule's expression (`at(...)`, `rate(...)`, `cron(...)` in an IANA time zone, parsed
//! by [`basalt_schedule`]) gives its fire times, bounded by StartDate and EndDate and moved
//! by a random offset within its flexible time window. Each enabled schedule has one work
//! item on the store's leases ([`fire::QUEUE`]), due at its next fire; firing stores one
//! invocation ([`invoke::QUEUE`]) and arms the next fire in one transaction, so a fire is
//! neither lost nor doubled by a crash and any node fires it. The invocation worker calls the
//! target through the in-process registry (templated targets: Lambda, SQS, SNS, EventBridge,
//! Step Functions, Kinesis; universal targets `arn:aws:scheduler:::aws-sdk:<service>:<action>`
//! call any operation Basalt implements), retries failures with backoff within the target's
//! RetryPolicy and sends what still fails to its dead-letter queue.

mod fire;
mod groups;
mod invoke;
mod model;
mod schedules;
mod targets;
#[cfg(test)]
mod tests;
mod validate;

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

pub struct Scheduler {
    state: Arc<dyn StateStore>,
    /// The services targets live in; set once every service is registered.
    registry: OnceLock<ServiceRegistry>,
    /// Wakes the fire worker when a schedule was armed.
    wake_fires: Arc<tokio::sync::Notify>,
    /// Wakes the invocation worker when a fire stored an invocation.
    wake_invocations: Arc<tokio::sync::Notify>,
    config: SchedulerConfig,
}

/// Tunables, from the environment.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// First retry delay of a failed invocation; doubles per attempt up to `retry_max_ms`.
    pub retry_base_ms: i64,
    pub retry_max_ms: i64,
    /// How long a node holds a claimed invocation: a node that dies holding one delays it
    /// this long.
    pub lease_ms: i64,
    /// The length of a minute in `rate()` expressions and flexible time windows. For tests
    /// only (`BASALT_SCHEDULER_MINUTE_MS`): AWS's smallest rate is one minute, too slow for a
    /// test to wait for several fires.
    pub minute_ms: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let env = |name: &str, default: i64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        SchedulerConfig {
            retry_base_ms: env("BASALT_SCHEDULER_RETRY_BASE_MS", 1_000).max(1),
            retry_max_ms: env("BASALT_SCHEDULER_RETRY_MAX_MS", 300_000).max(1),
            lease_ms: env("BASALT_SCHEDULER_LEASE_MS", 15_000).max(1_000),
            minute_ms: env("BASALT_SCHEDULER_MINUTE_MS", 60_000).max(1),
        }
    }
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

pub(crate) fn validation(message: impl Into<String>) -> AwsError {
    AwsError::validation(message)
}

/// Scheduler's not-found errors are 404s (the model's ResourceNotFoundException).
pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "ResourceNotFoundException", message)
}

pub(crate) fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "ConflictException", message)
}

pub(crate) fn corrupt(what: &str, e: serde_json::Error) -> AwsError {
    AwsError::internal(format!("corrupt {what} record: {e}"))
}

pub(crate) fn now_ms(state: &dyn StateStore) -> i64 {
    state.clock_ms().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// Epoch seconds as the canonical timestamp form (milliseconds kept).
pub(crate) fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub(crate) fn token(value: &str) -> String {
    basalt_core::page_token::encode(value)
}

pub(crate) fn untoken(token: &str) -> Result<String, AwsError> {
    basalt_core::page_token::decode(token)
        .ok_or_else(|| validation("The NextToken provided is invalid."))
}

/// `MaxResults` of the List operations (the model bounds it to 1-100).
pub(crate) fn max_results(input: &Value) -> usize {
    input
        .get("MaxResults")
        .and_then(Value::as_u64)
        .map_or(100, |n| n.clamp(1, 100) as usize)
}

impl Scheduler {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<Scheduler> {
        Self::with_config(state, SchedulerConfig::default())
    }

    pub fn with_config(state: Arc<dyn StateStore>, config: SchedulerConfig) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            state,
            registry: OnceLock::new(),
            wake_fires: Arc::default(),
            wake_invocations: Arc::default(),
            config,
        })
    }

    /// Gives the scheduler the registry its targets are reached through.
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Starts the fire and invocation workers (on the store's leases).
    pub fn start_workers(self: &Arc<Self>) {
        fire::start_worker(self.clone());
        invoke::start_worker(self.clone());
    }
}

#[async_trait::async_trait]
impl Service for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let out = match operation {
            "CreateSchedule" => schedules::create(self, ctx, &input),
            "GetSchedule" => schedules::get(self, ctx, &input),
            "UpdateSchedule" => schedules::update(self, ctx, &input),
            "DeleteSchedule" => schedules::delete(self, ctx, &input),
            "ListSchedules" => schedules::list(self, ctx, &input),
            "CreateScheduleGroup" => groups::create(self, ctx, &input),
            "GetScheduleGroup" => groups::get(self, ctx, &input),
            "ListScheduleGroups" => groups::list(self, ctx, &input),
            "DeleteScheduleGroup" => groups::delete(self, ctx, &input),
            "TagResource" => groups::tag(self, ctx, &input),
            "UntagResource" => groups::untag(self, ctx, &input),
            "ListTagsForResource" => groups::list_tags(self, ctx, &input),
            _ => return Err(AwsError::not_implemented("scheduler", operation)),
        }?;
        Ok(Output::new(out))
    }
}
