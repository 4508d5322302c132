//! Amazon CloudWatch Logs (botocore service `logs`): log groups and streams, PutLogEvents,
//! GetLogEvents, FilterLogEvents with the filter pattern syntax, Logs Insights queries,
//! retention and tags.
//!
//! Lambda writes its functions' output here through [`Logs::append`], as AWS's Lambda service
//! does, creating the group and stream on first use.
//!
//! Metric filters turn ingested events into CloudWatch data points, written in the
//! transaction that stores the events.
//!
//! Retention is enforced on read: an event older than its group's retention is never
//! returned.

mod events;
mod groups;
mod insights;
mod metric_filters;
mod model;
mod streams;
mod subscriptions;

use basalt_core::{AwsError, Output, RequestContext, Service};
use basalt_store::StateStore;
use serde_json::Value;
use std::sync::Arc;

pub use events::Append;

pub struct Logs {
    state: Arc<dyn StateStore>,
    /// Lambda, for subscription filters; set once every service is registered.
    registry: std::sync::OnceLock<basalt_core::ServiceRegistry>,
    /// Wakes the delivery worker when a write queued deliveries.
    wake: Arc<tokio::sync::Notify>,
    /// Writes the data points of metric filters.
    metrics: basalt_store::metrics::Metrics,
}

pub(crate) fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", message)
}

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceNotFoundException", message)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// An opaque pagination token for `value`.
pub(crate) fn token(value: &str) -> String {
    basalt_core::page_token::encode(value)
}

pub(crate) fn untoken(token: &str) -> Result<String, AwsError> {
    basalt_core::page_token::decode(token)
        .ok_or_else(|| invalid("The specified nextToken is invalid."))
}

/// The log group named by `logGroupName` or `logGroupIdentifier` (a name or an ARN).
pub(crate) fn group_name(input: &Value) -> Result<String, AwsError> {
    match (
        str_of(input, "logGroupName"),
        str_of(input, "logGroupIdentifier"),
    ) {
        (Some(_), Some(_)) => Err(invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (Some(n), None) => Ok(n.to_owned()),
        (None, Some(id)) => Ok(match id.split_once(":log-group:") {
            Some((_, rest)) => rest.trim_end_matches(":*").to_owned(),
            None => id.to_owned(),
        }),
        (None, None) => Err(invalid(
            "Either logGroupName or logGroupIdentifier must be specified.",
        )),
    }
}

impl Logs {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<Logs> {
        Arc::new(Logs {
            registry: std::sync::OnceLock::new(),
            wake: Arc::default(),
            metrics: basalt_store::metrics::Metrics::new(state.clone()),
            state,
        })
    }

    /// Gives Logs the registry it reaches Lambda through (subscription filters).
    pub fn set_registry(&self, registry: basalt_core::ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Starts the worker that delivers subscription filters' events (on the store's leases).
    pub fn start_workers(self: &Arc<Self>) {
        subscriptions::start_worker(self.clone());
    }

    /// Appends service-written events (Lambda's function output) to their streams,
    /// creating groups and streams on first use, in one transaction together with `extra`
    /// writes (data points).
    pub fn append(
        &self,
        items: &[Append],
        extra: &[basalt_store::WriteOp],
    ) -> Result<(), AwsError> {
        events::append_batch(self, items, extra)
    }
}

#[async_trait::async_trait]
impl Service for Logs {
    fn name(&self) -> &'static str {
        "logs"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        if operation == "PutSubscriptionFilter" {
            return subscriptions::put(self, ctx, &input).await.map(Output::new);
        }
        let out = match operation {
            "DescribeSubscriptionFilters" => subscriptions::describe(self, ctx, &input),
            "DeleteSubscriptionFilter" => subscriptions::delete(self, ctx, &input),
            "PutMetricFilter" => metric_filters::put(self, ctx, &input),
            "DescribeMetricFilters" => metric_filters::describe(self, ctx, &input),
            "DeleteMetricFilter" => metric_filters::delete(self, ctx, &input),
            "TestMetricFilter" => metric_filters::test(&input),
            "CreateLogGroup" => groups::create(self, ctx, &input),
            "DeleteLogGroup" => groups::delete(self, ctx, &input),
            "DescribeLogGroups" => groups::describe(self, ctx, &input),
            "PutRetentionPolicy" => groups::put_retention(self, ctx, &input),
            "DeleteRetentionPolicy" => groups::delete_retention(self, ctx, &input),
            "TagResource" | "TagLogGroup" => groups::tag(self, ctx, &input),
            "UntagResource" | "UntagLogGroup" => groups::untag(self, ctx, &input),
            "ListTagsForResource" | "ListTagsLogGroup" => {
                groups::list_tags(self, ctx, operation, &input)
            }
            "CreateLogStream" => streams::create(self, ctx, &input),
            "DeleteLogStream" => streams::delete(self, ctx, &input),
            "DescribeLogStreams" => streams::describe(self, ctx, &input),
            "PutLogEvents" => events::put_events(self, ctx, &input),
            "GetLogEvents" => events::get_events(self, ctx, &input),
            "FilterLogEvents" => events::filter_events(self, ctx, &input),
            "StartQuery" => insights::start(self, ctx, &input),
            "GetQueryResults" => insights::results(self, ctx, &input),
            "StopQuery" => insights::stop(self, ctx, &input),
            "DescribeQueries" => insights::describe(self, ctx, &input),
            _ => return Err(AwsError::not_implemented("logs", operation)),
        }?;
        Ok(Output::new(out))
    }
}
