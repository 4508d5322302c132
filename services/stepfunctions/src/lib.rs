//! AWS Step Functions (botocore service `stepfunctions`).
//!
//! The Amazon States Language runs in `basalt-asl`, a pure interpreter; this service hosts
//! it durably. An execution's record holds the interpreter's state; every event that moves
//! it (its start, a task's result, a timer) is a work item of the store's leases, and the
//! driver ([`driver`]) applies one event per step and commits, in one batch under a
//! precondition on the record as read: the new state, the history events, and the work the
//! step asks for (tasks to perform, timers due later). So after `kill -9` an execution goes
//! on from its last step on any node, a Wait still ends when it should, and a task whose
//! result was recorded never runs again. Tasks ([`tasks`]) call Lambda, Bedrock, DynamoDB,
//! SQS, SNS, EventBridge, Step Functions itself and any Basalt operation (`aws-sdk:`)
//! through the in-process client.

mod activities;
mod children;
mod driver;
mod executions;
mod http;
mod logging;
mod machines;
mod map_runs;
mod mocks;
mod model;
mod objects;
mod retention;
mod sagemaker;
mod tasks;
mod testing;

pub use mocks::MockConfig;

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;

pub struct StepFunctions {
    state: Arc<dyn StateStore>,
    registry: OnceLock<ServiceRegistry>,
    /// Wakes this node's driver (new events were committed).
    wake_events: Notify,
    /// Wakes this node's task workers.
    wake_tasks: Notify,
    /// Wakes long polls of GetActivityTask.
    wake_activities: Notify,
    /// `AWS/States` data points, committed with the steps they describe.
    metrics: basalt_store::metrics::Metrics,
    /// Mocked service integrations (`SFN_MOCK_CONFIG`), when given.
    mocks: OnceLock<Arc<MockConfig>>,
    /// S3 in-process: distributed Map readers, Bedrock's S3 input.
    objects: OnceLock<Arc<dyn basalt_core::objects::InProcessS3>>,
    /// EventBridge connections in-process: HTTP tasks.
    connections: OnceLock<Arc<dyn basalt_core::connections::InProcessConnections>>,
    /// The HTTP tasks' client, made on first use.
    outbound: OnceLock<basalt_outbound::Client>,
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

pub(crate) fn error(code: &str, message: impl Into<String>) -> AwsError {
    AwsError::new(400, code, message)
}

pub(crate) fn invalid_arn(arn: &str) -> AwsError {
    error("InvalidArn", format!("Invalid Arn: '{arn}'"))
}

pub(crate) fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    str_of(input, name).ok_or_else(|| {
        AwsError::validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::internal(format!("corrupt {what} record: {e}"))
}

impl StepFunctions {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<StepFunctions> {
        Arc::new(StepFunctions {
            registry: OnceLock::new(),
            wake_events: Notify::new(),
            wake_tasks: Notify::new(),
            wake_activities: Notify::new(),
            metrics: basalt_store::metrics::Metrics::new(state.clone()),
            mocks: OnceLock::new(),
            objects: OnceLock::new(),
            connections: OnceLock::new(),
            outbound: OnceLock::new(),
            state,
        })
    }

    pub fn set_mock_config(&self, cfg: MockConfig) {
        let _ = self.mocks.set(Arc::new(cfg));
    }

    pub(crate) fn mocks(&self) -> Option<&MockConfig> {
        self.mocks.get().map(|m| m.as_ref())
    }

    /// Gives Step Functions S3, as the account that owns each execution reads it.
    pub fn set_objects(&self, objects: Arc<dyn basalt_core::objects::InProcessS3>) {
        let _ = self.objects.set(objects);
    }

    pub(crate) fn objects(&self) -> Option<&Arc<dyn basalt_core::objects::InProcessS3>> {
        self.objects.get()
    }

    pub fn set_connections(
        &self,
        connections: Arc<dyn basalt_core::connections::InProcessConnections>,
    ) {
        let _ = self.connections.set(connections);
    }

    pub(crate) fn connections(
        &self,
    ) -> Option<&Arc<dyn basalt_core::connections::InProcessConnections>> {
        self.connections.get()
    }

    pub(crate) fn outbound(&self) -> &basalt_outbound::Client {
        self.outbound
            .get_or_init(|| basalt_outbound::Client::new(&basalt_outbound::TlsTrust::from_env()))
    }

    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Starts the driver and the task workers on the store's leases.
    pub fn start_workers(self: &Arc<Self>) {
        driver::start_worker(self.clone());
        tasks::start_workers(self.clone());
        retention::start_worker(self.clone());
    }

    pub(crate) fn registry(&self) -> Result<&ServiceRegistry, AwsError> {
        self.registry
            .get()
            .ok_or_else(|| AwsError::internal("services are starting"))
    }

    pub(crate) fn load<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<(T, Vec<u8>)>, AwsError> {
        let Some(raw) = self.state.get(table, key)? else {
            return Ok(None);
        };
        let v = serde_json::from_slice(&raw).map_err(|e| corrupt(table, e))?;
        Ok(Some((v, raw)))
    }
}

#[async_trait::async_trait]
impl Service for StepFunctions {
    fn name(&self) -> &'static str {
        "stepfunctions"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let out = match operation {
            "CreateStateMachine" => machines::create(self, ctx, &input),
            "DescribeStateMachine" => machines::describe(self, ctx, &input),
            "ListStateMachines" => machines::list(self, ctx, &input),
            "UpdateStateMachine" => machines::update(self, ctx, &input),
            "DeleteStateMachine" => machines::delete(self, ctx, &input),
            "ValidateStateMachineDefinition" => Ok(machines::validate(&input)),
            "PublishStateMachineVersion" => machines::publish(self, ctx, &input),
            "ListStateMachineVersions" => machines::list_versions(self, ctx, &input),
            "DeleteStateMachineVersion" => machines::delete_version(self, ctx, &input),
            "CreateStateMachineAlias" => machines::create_alias(self, ctx, &input),
            "DescribeStateMachineAlias" => machines::describe_alias(self, ctx, &input),
            "UpdateStateMachineAlias" => machines::update_alias(self, ctx, &input),
            "DeleteStateMachineAlias" => machines::delete_alias(self, ctx, &input),
            "ListStateMachineAliases" => machines::list_aliases(self, ctx, &input),
            "TagResource" => machines::tag(self, ctx, &input),
            "UntagResource" => machines::untag(self, ctx, &input),
            "ListTagsForResource" => machines::list_tags(self, ctx, &input),
            "StartExecution" => executions::start(self, ctx, &input, None),
            "StartSyncExecution" => executions::start_sync(self, ctx, &input).await,
            "DescribeExecution" => executions::describe(self, ctx, &input),
            "ListExecutions" => executions::list(self, ctx, &input),
            "StopExecution" => executions::stop(self, ctx, &input),
            "RedriveExecution" => executions::redrive(self, ctx, &input),
            "GetExecutionHistory" => executions::history(self, ctx, &input),
            "DescribeMapRun" => map_runs::describe(self, ctx, &input),
            "ListMapRuns" => map_runs::list(self, ctx, &input),
            "UpdateMapRun" => map_runs::update(self, ctx, &input),
            "DescribeStateMachineForExecution" => executions::machine_for(self, ctx, &input),
            "SendTaskSuccess" => activities::send_success(self, ctx, &input),
            "SendTaskFailure" => activities::send_failure(self, ctx, &input),
            "SendTaskHeartbeat" => activities::send_heartbeat(self, ctx, &input),
            "CreateActivity" => activities::create(self, ctx, &input),
            "DescribeActivity" => activities::describe(self, ctx, &input),
            "ListActivities" => activities::list(self, ctx, &input),
            "DeleteActivity" => activities::delete(self, ctx, &input),
            "GetActivityTask" => activities::get_task(self, ctx, &input).await,
            "TestState" => testing::test_state(self, ctx, &input).await,
            _ => return Err(AwsError::not_implemented("stepfunctions", operation)),
        }?;
        Ok(Output::new(out))
    }
}
