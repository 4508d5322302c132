//! Amazon SageMaker without Docker.
//!
//! * `sagemaker` ([`SageMaker`]): training jobs (`training.rs`), which run as local processes
//!   under SageMaker's container contract (`container.rs`: `/opt/ml/...`, the `SM_*`
//!   variables, channels downloaded from S3, the model uploaded as `model.tar.gz`): the
//!   built-in XGBoost algorithm on the xgboost library (`python/xgboost_algorithm.py`), and
//!   framework images in script mode (`sagemaker_program`, `sagemaker_submit_directory`) on
//!   the local Python environment (`environments.rs`); models (`models.rs`), endpoint
//!   configurations (`endpoint_configs.rs`), endpoints (`endpoints.rs`) and batch transform
//!   jobs (`transform.rs`); the model registry (`registry.rs`).
//! * `sagemaker-runtime` ([`SageMakerRuntime`]): InvokeEndpoint (`invoke.rs`) on the models an
//!   endpoint serves (`serving.rs`): XGBoost natively ([`basalt_xgboost`]), models with an
//!   inference script in warm Python workers that run `model_fn`, `input_fn`, `predict_fn`
//!   and `output_fn` as SageMaker's inference toolkit does (`python/serve.py`).
//!
//! Every record lives in the state store (`records.rs` names the tables); jobs and endpoint
//! deployments run on the store's leases, on whichever node claims them. A node loads an
//! endpoint's model on first use from its records and its artifacts in S3, so that every
//! node serves every endpoint.

mod asynchronous;
mod capture;
mod checkpoints;
mod container;
mod endpoint_configs;
mod endpoints;
pub mod environments;
mod inputs;
mod invoke;
mod jobs;
mod logs;
mod metrics;
mod models;
mod pipes;
mod processing;
mod records;
mod registry;
mod serving;
mod tags;
mod training;
mod transform;
mod tuning;

use basalt_core::objects::InProcessS3;
use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Where the service runs its processes.
#[derive(Debug, Clone)]
pub struct SageMakerConfig {
    /// Job and endpoint directories (out of the processes' reach but for their own part).
    pub work_dir: PathBuf,
    /// The local Python environments (`basalt runtimes pull`).
    pub environments: environments::Environments,
}

/// What both services share.
pub struct Core {
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) objects: Arc<dyn InProcessS3>,
    pub(crate) config: SageMakerConfig,
    pub(crate) serving: serving::Serving,
    registry: OnceLock<ServiceRegistry>,
    wake_training: Arc<tokio::sync::Notify>,
    wake_endpoints: Arc<tokio::sync::Notify>,
    wake_transform: Arc<tokio::sync::Notify>,
    wake_processing: Arc<tokio::sync::Notify>,
    wake_tuning: Arc<tokio::sync::Notify>,
    wake_async: Arc<tokio::sync::Notify>,
    /// How many asynchronous invocations of each endpoint may run at once on this node.
    async_gates: parking_lot::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// `AWS/SageMaker` counts of this node, written by the flusher.
    invocations: metrics::Recorder,
    /// Data captured from InvokeEndpoint, written by the same flusher.
    captures: capture::Captures,
    metrics: basalt_store::metrics::Metrics,
}

impl Core {
    pub fn new(
        state: Arc<dyn StateStore>,
        objects: Arc<dyn InProcessS3>,
        config: SageMakerConfig,
    ) -> Arc<Core> {
        let metrics = basalt_store::metrics::Metrics::new(state.clone());
        Arc::new(Core {
            state,
            objects,
            config,
            serving: serving::Serving::default(),
            registry: OnceLock::new(),
            wake_training: Arc::new(tokio::sync::Notify::new()),
            wake_endpoints: Arc::new(tokio::sync::Notify::new()),
            wake_transform: Arc::new(tokio::sync::Notify::new()),
            wake_processing: Arc::new(tokio::sync::Notify::new()),
            wake_tuning: Arc::new(tokio::sync::Notify::new()),
            wake_async: Arc::new(tokio::sync::Notify::new()),
            async_gates: Default::default(),
            invocations: Default::default(),
            captures: Default::default(),
            metrics,
        })
    }

    /// The in-process client, for CloudWatch Logs.
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    pub(crate) fn registry(&self) -> Option<&ServiceRegistry> {
        self.registry.get()
    }

    /// Starts this node's training and deployment workers.
    pub fn start_workers(self: &Arc<Self>) {
        training::start_worker(self.clone());
        endpoints::start_worker(self.clone());
        transform::start_worker(self.clone());
        processing::start_worker(self.clone());
        tuning::start_worker(self.clone());
        asynchronous::start_worker(self.clone());
        metrics::start_flusher(self.clone());
        let core = self.clone();
        tokio::spawn(async move {
            let idle = serving::serverless_idle_ms();
            let every = std::time::Duration::from_millis((idle / 4).clamp(250, 60_000) as u64);
            loop {
                tokio::time::sleep(every).await;
                core.serving.scale_to_zero(core.now_ms(), idle);
            }
        });
    }

    /// The gate of an endpoint's asynchronous invocations (`permits` as its configuration
    /// allows; a changed configuration takes effect for a new gate).
    pub(crate) fn async_gate(
        &self,
        account: &str,
        region: &str,
        endpoint: &str,
        permits: usize,
    ) -> Arc<tokio::sync::Semaphore> {
        let key = format!("{account}/{region}/{endpoint}/{permits}");
        self.async_gates
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(permits)))
            .clone()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }
}

/// `sagemaker`: the control plane.
#[derive(Clone)]
pub struct SageMaker(pub Arc<Core>);

#[async_trait::async_trait]
impl Service for SageMaker {
    fn name(&self) -> &'static str {
        "sagemaker"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let c = &self.0;
        let out = match operation {
            "CreateTrainingJob" => training::create(c, ctx, &input)?,
            "DescribeTrainingJob" => training::describe(c, ctx, &input)?,
            "ListTrainingJobs" => training::list(c, ctx, &input)?,
            "StopTrainingJob" => training::stop(c, ctx, &input)?,
            "CreateHyperParameterTuningJob" => tuning::create(c, ctx, &input)?,
            "DescribeHyperParameterTuningJob" => tuning::describe(c, ctx, &input)?,
            "ListHyperParameterTuningJobs" => tuning::list(c, ctx, &input)?,
            "StopHyperParameterTuningJob" => tuning::stop(c, ctx, &input)?,
            "ListTrainingJobsForHyperParameterTuningJob" => {
                tuning::list_training_jobs(c, ctx, &input)?
            }
            "CreateProcessingJob" => processing::create(c, ctx, &input)?,
            "DescribeProcessingJob" => processing::describe(c, ctx, &input)?,
            "ListProcessingJobs" => processing::list(c, ctx, &input)?,
            "StopProcessingJob" => processing::stop(c, ctx, &input)?,
            "CreateTransformJob" => transform::create(c, ctx, &input)?,
            "DescribeTransformJob" => transform::describe(c, ctx, &input)?,
            "ListTransformJobs" => transform::list(c, ctx, &input)?,
            "StopTransformJob" => transform::stop(c, ctx, &input)?,
            "CreateModel" => models::create(c, ctx, &input)?,
            "DescribeModel" => models::describe(c, ctx, &input)?,
            "ListModels" => models::list(c, ctx, &input)?,
            "DeleteModel" => models::delete(c, ctx, &input)?,
            "CreateEndpointConfig" => endpoint_configs::create(c, ctx, &input)?,
            "DescribeEndpointConfig" => endpoint_configs::describe(c, ctx, &input)?,
            "ListEndpointConfigs" => endpoint_configs::list(c, ctx, &input)?,
            "DeleteEndpointConfig" => endpoint_configs::delete(c, ctx, &input)?,
            "CreateEndpoint" => endpoints::create(c, ctx, &input)?,
            "DescribeEndpoint" => endpoints::describe(c, ctx, &input)?,
            "ListEndpoints" => endpoints::list(c, ctx, &input)?,
            "UpdateEndpoint" => endpoints::update(c, ctx, &input)?,
            "UpdateEndpointWeightsAndCapacities" => endpoints::update_weights(c, ctx, &input)?,
            "DeleteEndpoint" => endpoints::delete(c, ctx, &input)?,
            "CreateModelPackageGroup" => registry::create_group(c, ctx, &input)?,
            "DescribeModelPackageGroup" => registry::describe_group(c, ctx, &input)?,
            "ListModelPackageGroups" => registry::list_groups(c, ctx, &input)?,
            "DeleteModelPackageGroup" => registry::delete_group(c, ctx, &input)?,
            "CreateModelPackage" => registry::create_package(c, ctx, &input)?,
            "DescribeModelPackage" => registry::describe_package(c, ctx, &input)?,
            "ListModelPackages" => registry::list_packages(c, ctx, &input)?,
            "UpdateModelPackage" => registry::update_package(c, ctx, &input)?,
            "DeleteModelPackage" => registry::delete_package(c, ctx, &input)?,
            "AddTags" => tags::add(c, ctx, &input)?,
            "ListTags" => tags::list(c, ctx, &input)?,
            "DeleteTags" => tags::delete(c, ctx, &input)?,
            other => return Err(AwsError::not_implemented("sagemaker", other)),
        };
        Ok(Output::new(out))
    }
}

/// `sagemaker-runtime`: InvokeEndpoint.
#[derive(Clone)]
pub struct SageMakerRuntime(pub Arc<Core>);

#[async_trait::async_trait]
impl Service for SageMakerRuntime {
    fn name(&self) -> &'static str {
        "sagemaker-runtime"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        match operation {
            "InvokeEndpoint" => invoke::invoke(&self.0, ctx, &input).await,
            "InvokeEndpointWithResponseStream" => invoke::invoke_stream(&self.0, ctx, &input).await,
            "InvokeEndpointAsync" => asynchronous::invoke_async(&self.0, ctx, &input),
            other => Err(AwsError::not_implemented("sagemaker-runtime", other)),
        }
    }
}

/// How long a node holds a training or transform job between renewals (every second while
/// it runs, at each phase otherwise); `BASALT_SAGEMAKER_LEASE_MS` shortens it for tests of a
/// takeover after a crash.
pub(crate) fn job_lease_ms() -> i64 {
    static MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MS.get_or_init(|| basalt_store::lease_ms_from_env("BASALT_SAGEMAKER_LEASE_MS", 60_000))
}

/// Runs each claimed item of `queue` on a task of its own: jobs run side by side, so that a
/// long one does not hold the others back.
pub(crate) fn spawn_each<F, Fut>(
    core: &Arc<Core>,
    queue: &'static str,
    lease_ms: i64,
    wake: &Arc<tokio::sync::Notify>,
    run: F,
) where
    F: Fn(Arc<Core>, basalt_store::Claim) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let this = core.clone();
    basalt_store::Worker {
        state: core.state.clone(),
        queue,
        lease_ms,
        batch: 1,
        idle: std::time::Duration::from_secs(2),
        wake: wake.clone(),
    }
    .spawn(move |claims| {
        let (core, run) = (this.clone(), run.clone());
        async move {
            for claim in claims {
                tokio::spawn(run(core.clone(), claim));
            }
        }
    });
}

/// SageMaker's error for a name that is already taken.
pub(crate) fn in_use(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceInUse", message)
}

/// SageMaker's answer for a missing resource: a ValidationException naming its ARN.
pub(crate) fn could_not_find(what: &str, arn: &str) -> AwsError {
    AwsError::validation(format!("Could not find {what} \"{arn}\"."))
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceLimitExceeded", message)
}
