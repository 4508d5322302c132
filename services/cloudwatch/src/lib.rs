//! Amazon CloudWatch (botocore service `cloudwatch`): metrics, dashboards and alarms.
//!
//! * Metrics: PutMetricData (values, statistic sets, values with counts, storage resolution)
//!   and GetMetricStatistics, GetMetricData with metric math, ListMetrics. Points live in
//!   `basalt_store::metrics` next to the ones Lambda and Bedrock publish, and every write
//!   keeps an index of series identities that ListMetrics reads.
//! * Dashboards: Put (with CloudWatch's body checks), Get, List, Delete.
//! * Alarms: metric, metric-math and composite alarms, their history, SetAlarmState, and
//!   their evaluation on the store's leases (`evaluate.rs`), with SNS and Lambda actions sent
//!   through the in-process registry.
//!
//! Operations not listed answer `NotImplemented`.

mod alarms;
mod composite;
mod dashboards;
mod data;
mod error;
mod evaluate;
mod history;
mod list;
mod math;
mod metrics;
mod model;
mod search;
mod stats;

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

pub use evaluate::{ACTIONS as ACTION_QUEUE, QUEUE as EVALUATION_QUEUE};

pub struct CloudWatch {
    state: Arc<dyn StateStore>,
    metrics: basalt_store::metrics::Metrics,
    /// SNS and Lambda, for alarm actions; set once every service is registered.
    registry: OnceLock<ServiceRegistry>,
    /// Wakes the alarm worker when an alarm was put or its state set.
    wake: tokio::sync::Notify,
    /// How often each alarm is evaluated.
    interval_ms: i64,
}

impl CloudWatch {
    /// CloudWatch over `state`, evaluating alarms every `BASALT_CLOUDWATCH_EVALUATION_SECS`
    /// (10 s by default).
    pub fn new(state: Arc<dyn StateStore>) -> Arc<CloudWatch> {
        CloudWatch::with_interval(state, evaluate::interval_from_env())
    }

    /// CloudWatch evaluating alarms every `interval_ms`.
    pub fn with_interval(state: Arc<dyn StateStore>, interval_ms: i64) -> Arc<CloudWatch> {
        Arc::new(CloudWatch {
            metrics: basalt_store::metrics::Metrics::new(state.clone()),
            state,
            registry: OnceLock::new(),
            wake: tokio::sync::Notify::new(),
            interval_ms: interval_ms.max(1),
        })
    }

    /// Gives CloudWatch the registry it reaches SNS and Lambda through (alarm actions).
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Starts the worker that evaluates alarms and sends their actions (on the leases).
    pub fn start_workers(self: &Arc<Self>) {
        evaluate::start_worker(self.clone());
    }

    /// Runs the alarm evaluations and actions due at `now_ms` (the worker's step; tests drive
    /// the clock with it). Returns how many work items ran.
    pub async fn run_due(self: &Arc<Self>, now_ms: i64) -> usize {
        evaluate::run_due(self, now_ms).await
    }
}

#[async_trait::async_trait]
impl Service for CloudWatch {
    fn name(&self) -> &'static str {
        "cloudwatch"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let input = &input;
        let out = match operation {
            "PutMetricData" => metrics::put_metric_data(self, ctx, input),
            "GetMetricStatistics" => metrics::get_metric_statistics(self, ctx, input),
            "GetMetricData" => data::get_metric_data(self, ctx, input),
            "ListMetrics" => list::list_metrics(self, ctx, input),
            "PutDashboard" => dashboards::put(self, ctx, input),
            "GetDashboard" => dashboards::get(self, ctx, input),
            "ListDashboards" => dashboards::list(self, ctx, input),
            "DeleteDashboards" => dashboards::delete(self, ctx, input),
            "PutMetricAlarm" => alarms::put_metric_alarm(self, ctx, input),
            "PutCompositeAlarm" => alarms::put_composite_alarm(self, ctx, input),
            "DescribeAlarms" => alarms::describe(self, ctx, input),
            "DescribeAlarmsForMetric" => alarms::describe_for_metric(self, ctx, input),
            "DeleteAlarms" => alarms::delete(self, ctx, input),
            "SetAlarmState" => alarms::set_state(self, ctx, input),
            "EnableAlarmActions" => alarms::set_actions(self, ctx, input, true),
            "DisableAlarmActions" => alarms::set_actions(self, ctx, input, false),
            "DescribeAlarmHistory" => history::describe(self, ctx, input),
            _ => return Err(AwsError::not_implemented("cloudwatch", operation)),
        }?;
        Ok(Output::new(out))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_search;
