//! Amazon SQS (botocore service `sqs`, the JSON protocol of current SDKs): standard queues,
//! their attributes and tags, messages with attributes, delays, visibility timeouts, long
//! polling, redrive to dead-letter queues and message move tasks back.
//!
//! A queue's messages are the work items of one lease queue of the store
//! ([`basalt_store::leases`]): sending enqueues an item due after the message's delay,
//! receiving claims due items under a lease as long as the visibility timeout, deleting
//! completes the claim, changing the visibility renews or releases it. So every message that
//! SendMessage acknowledged is durable, a message whose receiver died becomes visible again
//! on its own, and several nodes sharing a store serve one queue. The receive count is the
//! claim's attempt number.

mod attributes;
mod fifo;
mod messages;
mod metrics;
mod model;
mod moves;
mod queues;
mod receive;

use basalt_core::{AwsError, Output, RequestContext, Service};
use basalt_store::StateStore;
use model::{QUEUES, QueueRec};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

pub use messages::{Outgoing, OutgoingAttr};

pub struct Sqs {
    state: Arc<dyn StateStore>,
    /// Long polls waiting on a queue (by lease queue), woken by sends on this node; polls
    /// also look again on their own, for sends on other nodes and delays running out.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// Wakes the message-move worker.
    wake_moves: Notify,
    /// `AWS/SQS` counts not yet written (see `metrics.rs`).
    counters: metrics::Counters,
    metrics: basalt_store::metrics::Metrics,
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// An error in the JSON protocol's form with the code the query protocol gave it, which
/// botocore reports as `Error.Code` (SQS's model carries no codes of its own).
pub(crate) fn error(code: &str, query_code: &str, message: impl Into<String>) -> AwsError {
    AwsError::new(400, code, message).with_query_code(query_code)
}

pub(crate) fn invalid(message: impl Into<String>) -> AwsError {
    error("InvalidParameterValue", "InvalidParameterValue", message)
}

pub(crate) fn missing(name: &str) -> AwsError {
    error(
        "MissingParameter",
        "MissingParameter",
        format!("The request must contain the parameter {name}."),
    )
}

pub(crate) fn no_queue() -> AwsError {
    error(
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
    )
}

pub(crate) fn invalid_attribute_name(name: &str) -> AwsError {
    error(
        "InvalidAttributeName",
        "InvalidAttributeName",
        format!("Unknown Attribute {name}."),
    )
}

pub(crate) fn invalid_attribute_value(name: &str) -> AwsError {
    error(
        "InvalidAttributeValue",
        "InvalidAttributeValue",
        format!("Invalid value for the parameter {name}."),
    )
}

pub(crate) fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    str_of(input, name).ok_or_else(|| missing(name))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An optional integer parameter within `lo..=hi`.
pub(crate) fn int_param(
    input: &Value,
    name: &str,
    lo: i64,
    hi: i64,
) -> Result<Option<i64>, AwsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!(
                "Value {v} for parameter {name} is invalid. Reason: must be between {lo} and {hi}, if provided."
            ))),
        },
    }
}

impl Sqs {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<Sqs> {
        Arc::new(Sqs {
            metrics: basalt_store::metrics::Metrics::new(state.clone()),
            state,
            waiters: Mutex::new(HashMap::new()),
            wake_moves: Notify::new(),
            counters: metrics::Counters::default(),
        })
    }

    /// Starts the worker that runs message move tasks (on the store's leases) and the
    /// `AWS/SQS` metrics writers; call [`Sqs::flush_metrics`] on shutdown.
    pub fn start_workers(self: &Arc<Self>) {
        moves::start_worker(self.clone());
        metrics::start(self.clone());
    }

    /// The store's clock (see [`StateStore::clock_ms`]): lease times must agree across nodes.
    pub(crate) fn clock(&self) -> Result<i64, AwsError> {
        Ok(self.state.clock_ms()?)
    }

    pub(crate) fn waiter(&self, lease_queue: &str) -> Arc<Notify> {
        self.waiters
            .lock()
            .entry(lease_queue.to_owned())
            .or_default()
            .clone()
    }

    pub(crate) fn notify(&self, lease_queue: &str) {
        if let Some(n) = self.waiters.lock().get(lease_queue) {
            n.notify_waiters();
        }
    }

    pub(crate) fn load(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<QueueRec>, AwsError> {
        let Some(raw) = self
            .state
            .get(QUEUES, &QueueRec::key(account, region, name))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| AwsError::internal(format!("corrupt queue record: {e}")))
    }

    /// The queue a `QueueUrl` names: its last two path segments are the owner's account and
    /// the queue's name, whatever the host (clients build URLs from other endpoints too).
    pub(crate) fn queue_by_url(
        &self,
        ctx: &RequestContext,
        url: &str,
    ) -> Result<QueueRec, AwsError> {
        let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
        let mut parts = path.rsplit('/');
        let (name, account) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if name.is_empty() || account.is_empty() {
            return Err(no_queue());
        }
        self.load(account, &ctx.region, name)?.ok_or_else(no_queue)
    }

    /// The queue an ARN (`arn:aws:sqs:region:account:name`) names, if it exists.
    pub fn queue_by_arn(&self, arn: &str) -> Result<Option<QueueRec>, AwsError> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "sqs", region, account, name] => self.load(account, region, name),
            _ => Ok(None),
        }
    }

    /// Sends a message from another service (EventBridge and SNS targets, S3 notifications):
    /// the queue is named by ARN. Returns the message id.
    pub fn send_internal(&self, queue_arn: &str, message: Outgoing) -> Result<String, AwsError> {
        let q = self.queue_by_arn(queue_arn)?.ok_or_else(no_queue)?;
        messages::send_one(self, &q, message, "AIDAINTERNALSERVICE").map(|sent| sent.id)
    }

    /// Whether the queue an ARN names exists.
    pub fn queue_exists(&self, queue_arn: &str) -> Result<bool, AwsError> {
        Ok(self.queue_by_arn(queue_arn)?.is_some())
    }
}

#[async_trait::async_trait]
impl Service for Sqs {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        if operation == "ReceiveMessage" {
            return receive::receive(self, ctx, &input).await.map(Output::new);
        }
        let out = match operation {
            "CreateQueue" => queues::create(self, ctx, &input),
            "GetQueueUrl" => queues::get_url(self, ctx, &input),
            "ListQueues" => queues::list(self, ctx, &input),
            "DeleteQueue" => queues::delete(self, ctx, &input),
            "GetQueueAttributes" => queues::get_attributes(self, ctx, &input),
            "SetQueueAttributes" => queues::set_attributes(self, ctx, &input),
            "PurgeQueue" => queues::purge(self, ctx, &input),
            "TagQueue" => queues::tag(self, ctx, &input),
            "UntagQueue" => queues::untag(self, ctx, &input),
            "ListQueueTags" => queues::list_tags(self, ctx, &input),
            "ListDeadLetterSourceQueues" => queues::dead_letter_sources(self, ctx, &input),
            "AddPermission" => queues::add_permission(self, ctx, &input),
            "RemovePermission" => queues::remove_permission(self, ctx, &input),
            "SendMessage" => messages::send(self, ctx, &input),
            "SendMessageBatch" => messages::send_batch(self, ctx, &input),
            "DeleteMessage" => receive::delete(self, ctx, &input),
            "DeleteMessageBatch" => receive::delete_batch(self, ctx, &input),
            "ChangeMessageVisibility" => receive::change_visibility(self, ctx, &input),
            "ChangeMessageVisibilityBatch" => receive::change_visibility_batch(self, ctx, &input),
            "StartMessageMoveTask" => moves::start(self, ctx, &input),
            "ListMessageMoveTasks" => moves::list(self, ctx, &input),
            "CancelMessageMoveTask" => moves::cancel(self, ctx, &input),
            _ => return Err(AwsError::not_implemented("sqs", operation)),
        }?;
        Ok(Output::new(out))
    }
}
