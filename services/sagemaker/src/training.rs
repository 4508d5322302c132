//! Training jobs: CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob.
//!
//! A job is a record and an item on the leases (queue [`QUEUE`]); the node that claims it
//! lays out `/opt/ml` (`container.rs`), downloads the channels from S3, runs the algorithm,
//! uploads `/opt/ml/model` as `{S3OutputPath}/{job}/output/model.tar.gz` (and
//! `/opt/ml/output/data` as `output.tar.gz`), and records the statuses, secondary statuses
//! and final metrics AWS reports. The job's output goes to CloudWatch Logs
//! (`/aws/sagemaker/TrainingJobs`, stream `{job}/algo-1-{epoch}`).
//!
//! What runs:
//! * the built-in XGBoost algorithm (an image named `sagemaker-xgboost`/`xgboost` without a
//!   `sagemaker_program` hyperparameter): `python/xgboost_algorithm.py` on the xgboost library,
//!   with the container's hyperparameters, CSV and libsvm channels and log format;
//! * script mode on any framework image: the `sagemaker_submit_directory` tarball unpacked
//!   into `/opt/ml/code` and `sagemaker_program` run with the other hyperparameters as
//!   `--name value` arguments, as SageMaker's training toolkit runs it.
//!
//! One host runs each job (`algo-1`): InstanceCount is recorded, not spread over processes.
//! A job whose node died is failed when another node takes its lease, as AWS fails a job whose
//! instance was lost.

use crate::checkpoints::Checkpoints;
use crate::container::{self, Layout};
use crate::jobs::{self, Ended};
use crate::logs::LogSink;
use crate::records::{self, Listed, TRAINING_JOBS, secs};
use crate::{Core, in_use};
use basalt_core::{AwsError, RequestContext};
use basalt_store::Claim;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const QUEUE: &str = "sagemaker.training";
const XGBOOST_ALGORITHM: &str = include_str!("../python/xgboost_algorithm.py");
const LOG_GROUP: &str = "/aws/sagemaker/TrainingJobs";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Transition {
    status: String,
    start_ms: i64,
    end_ms: Option<i64>,
    message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Metric {
    name: String,
    value: f64,
    ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    name: String,
    arn: String,
    account: String,
    region: String,
    /// The request's members as given (but Tags), echoed by Describe.
    request: Map<String, Value>,
    status: String,
    secondary: String,
    failure: Option<String>,
    transitions: Vec<Transition>,
    created_ms: i64,
    modified_ms: i64,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    artifacts: Option<String>,
    metrics: Vec<Metric>,
    /// Spot interruptions the job went through (simulated: `BASALT_SAGEMAKER_SPOT_INTERRUPT_SECS`,
    /// or the node that ran it stopped).
    #[serde(default)]
    interruptions: u32,
}

impl Job {
    fn describe(&self) -> Value {
        let mut v = Value::Object(self.request.clone());
        v["TrainingJobName"] = self.name.clone().into();
        v["TrainingJobArn"] = self.arn.clone().into();
        v["TrainingJobStatus"] = self.status.clone().into();
        v["SecondaryStatus"] = self.secondary.clone().into();
        v["CreationTime"] = secs(self.created_ms).into();
        v["LastModifiedTime"] = secs(self.modified_ms).into();
        v["ModelArtifacts"] =
            json!({"S3ModelArtifacts": self.artifacts.clone().unwrap_or_default()});
        if v["StoppingCondition"].is_null() {
            v["StoppingCondition"] = json!({"MaxRuntimeInSeconds": 86400});
        }
        v["EnableNetworkIsolation"] = v["EnableNetworkIsolation"]
            .as_bool()
            .unwrap_or(false)
            .into();
        v["EnableInterContainerTrafficEncryption"] = v["EnableInterContainerTrafficEncryption"]
            .as_bool()
            .unwrap_or(false)
            .into();
        v["EnableManagedSpotTraining"] = v["EnableManagedSpotTraining"]
            .as_bool()
            .unwrap_or(false)
            .into();
        if let Some(f) = &self.failure {
            v["FailureReason"] = f.clone().into();
        }
        if let Some(s) = self.start_ms {
            v["TrainingStartTime"] = secs(s).into();
        }
        if let Some(e) = self.end_ms {
            v["TrainingEndTime"] = secs(e).into();
            let seconds = ((e - self.start_ms.unwrap_or(e)) / 1000).max(1);
            v["TrainingTimeInSeconds"] = seconds.into();
            v["BillableTimeInSeconds"] = seconds.into();
        }
        v["SecondaryStatusTransitions"] = self
            .transitions
            .iter()
            .map(|t| {
                let mut o = json!({"Status": t.status, "StartTime": secs(t.start_ms), "StatusMessage": t.message});
                if let Some(e) = t.end_ms {
                    o["EndTime"] = secs(e).into();
                }
                o
            })
            .collect();
        if !self.metrics.is_empty() {
            v["FinalMetricDataList"] = self
                .metrics
                .iter()
                .map(|m| json!({"MetricName": m.name, "Value": m.value, "Timestamp": secs(m.ms)}))
                .collect();
        }
        v
    }

    fn spot(&self) -> bool {
        self.request
            .get("EnableManagedSpotTraining")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn running(&self) -> bool {
        matches!(self.status.as_str(), "InProgress" | "Stopping")
    }

    /// Moves to a new secondary status, closing the previous one.
    fn advance(&mut self, now: i64, status: &str, message: &str) {
        if let Some(last) = self.transitions.last_mut()
            && last.end_ms.is_none()
        {
            last.end_ms = Some(now);
        }
        self.secondary = status.into();
        self.transitions.push(Transition {
            status: status.into(),
            start_ms: now,
            end_ms: None,
            message: message.into(),
        });
        self.modified_ms = now;
    }

    fn hyperparameters(&self) -> Map<String, Value> {
        self.request
            .get("HyperParameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

impl Listed for Job {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn modified_ms(&self) -> i64 {
        self.modified_ms
    }
    fn status(&self) -> Option<&str> {
        Some(&self.status)
    }
    fn summary(&self) -> Value {
        let mut v = json!({
            "TrainingJobName": self.name, "TrainingJobArn": self.arn,
            "CreationTime": secs(self.created_ms), "LastModifiedTime": secs(self.modified_ms),
            "TrainingJobStatus": self.status, "SecondaryStatus": self.secondary,
        });
        if let Some(e) = self.end_ms {
            v["TrainingEndTime"] = secs(e).into();
        }
        v
    }
}

/// What a job's image runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Algorithm {
    Xgboost,
    /// `AlgorithmSpecification.ContainerEntrypoint` (and `ContainerArguments`), which replace
    /// the image's own entry point: the SageMaker Python SDK 3's ModelTrainer runs its
    /// `sm_train.sh` driver so (`/bin/bash -c ...`).
    Entrypoint(Vec<String>),
    Script {
        program: String,
        submit: Option<String>,
    },
}

/// A hyperparameter as the SageMaker Python SDK writes it: JSON-encoded (`"\"train.py\""`),
/// or plain.
fn decoded(v: &Value) -> String {
    let s = v.as_str().unwrap_or_default();
    match serde_json::from_str::<Value>(s) {
        Ok(Value::String(inner)) => inner,
        _ => s.to_owned(),
    }
}

/// The algorithm an `AlgorithmSpecification` runs: its ContainerEntrypoint when it has one,
/// otherwise what its image and hyperparameters name.
fn algorithm_of_spec(spec: &Value, hyper: &Map<String, Value>) -> Result<Algorithm, AwsError> {
    let words = |member: &str| -> Result<Option<Vec<String>>, AwsError> {
        let Some(v) = spec.get(member).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let list = v
            .as_array()
            .filter(|a| (1..=100).contains(&a.len()))
            .ok_or_else(|| {
                AwsError::validation(format!(
                    "AlgorithmSpecification.{member} must hold 1 to 100 strings."
                ))
            })?;
        list.iter()
            .map(|w| match w.as_str() {
                Some(s) if s.len() <= 256 => Ok(s.to_owned()),
                _ => Err(AwsError::validation(format!(
                    "AlgorithmSpecification.{member} must hold strings of at most 256 characters."
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    let (entrypoint, arguments) = (words("ContainerEntrypoint")?, words("ContainerArguments")?);
    if let Some(mut argv) = entrypoint {
        if !crate::container::namespaces() {
            return Err(AwsError::validation(
                "A ContainerEntrypoint needs /opt/ml at its place, which takes a mount namespace this host does not give Basalt's processes.",
            ));
        }
        argv.extend(arguments.unwrap_or_default());
        return Ok(Algorithm::Entrypoint(argv));
    }
    if arguments.is_some() {
        return Err(AwsError::validation(
            "AlgorithmSpecification.ContainerArguments needs a ContainerEntrypoint: Basalt runs no image's own entry point.",
        ));
    }
    let image = spec["TrainingImage"]
        .as_str()
        .or(spec["AlgorithmName"].as_str())
        .unwrap_or_default();
    algorithm_of(image, hyper)
}

fn algorithm_of(image: &str, hyper: &Map<String, Value>) -> Result<Algorithm, AwsError> {
    if let Some(program) = hyper.get("sagemaker_program") {
        return Ok(Algorithm::Script {
            program: decoded(program),
            submit: hyper.get("sagemaker_submit_directory").map(decoded),
        });
    }
    let repo = image.rsplit('/').next().unwrap_or(image);
    let repo = repo.split([':', '@']).next().unwrap_or(repo);
    if repo == "sagemaker-xgboost" || repo == "xgboost" || image.eq_ignore_ascii_case("xgboost") {
        return Ok(Algorithm::Xgboost);
    }
    Err(AwsError::validation(format!(
        "Basalt runs the built-in XGBoost algorithm, framework images in script mode (the sagemaker_program hyperparameter) and a ContainerEntrypoint; the image {image} without either of the last two is none of them, and Basalt runs no containers."
    )))
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFound",
        format!("Requested resource not found: training job {name} does not exist."),
    )
}

fn load(core: &Core, ctx: &RequestContext, name: &str) -> Result<Job, AwsError> {
    records::load(core.state.as_ref(), TRAINING_JOBS, ctx, name)?.ok_or_else(|| not_found(name))
}

pub(crate) fn create(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["TrainingJobName"].as_str().unwrap_or_default();
    records::check_name("trainingJobName", name)?;
    let arn = records::arn(ctx, "training-job", name);
    if records::load::<Job>(core.state.as_ref(), TRAINING_JOBS, ctx, name)?.is_some() {
        return Err(in_use(format!(
            "Training job names must be unique within an AWS account and region, and a training job with this name already exists ({arn})"
        )));
    }
    let spec = &input["AlgorithmSpecification"];
    spec["TrainingImage"]
        .as_str()
        .or(spec["AlgorithmName"].as_str())
        .ok_or_else(|| {
            AwsError::validation(
                "AlgorithmSpecification needs a TrainingImage or an AlgorithmName.",
            )
        })?;
    let hyper = input["HyperParameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    algorithm_of_spec(spec, &hyper)?;
    let out = input["OutputDataConfig"]["S3OutputPath"]
        .as_str()
        .unwrap_or_default();
    if basalt_core::objects::parse_s3_uri(out).is_none() {
        return Err(AwsError::validation(format!(
            "OutputDataConfig.S3OutputPath {out:?} is not an S3 URI (s3://bucket/prefix)."
        )));
    }
    let mut names = std::collections::HashSet::new();
    for ch in input["InputDataConfig"].as_array().into_iter().flatten() {
        let ch_name = ch["ChannelName"].as_str().unwrap_or_default();
        if !names.insert(ch_name) {
            return Err(AwsError::validation(format!(
                "Channel names must be unique; {ch_name} appears twice."
            )));
        }
        let uri = ch["DataSource"]["S3DataSource"]["S3Uri"].as_str();
        if uri.is_none_or(|u| basalt_core::objects::parse_s3_uri(u).is_none()) {
            return Err(AwsError::validation(format!(
                "Channel {ch_name} needs DataSource.S3DataSource.S3Uri, an S3 URI (file system data sources need a VPC Basalt does not have)."
            )));
        }
        if ch["DataSource"]["S3DataSource"]["S3DataType"].as_str() == Some("AugmentedManifestFile")
        {
            let mode = ch["InputMode"].as_str().unwrap_or_else(|| {
                input["AlgorithmSpecification"]["TrainingInputMode"]
                    .as_str()
                    .unwrap_or("File")
            });
            if mode != "Pipe" {
                return Err(AwsError::validation(format!(
                    "Channel {ch_name}: AugmentedManifestFile can only be used if the channel's input mode is Pipe (it is {mode})."
                )));
            }
            if ch["DataSource"]["S3DataSource"]["AttributeNames"]
                .as_array()
                .is_none_or(Vec::is_empty)
            {
                return Err(AwsError::validation(format!(
                    "Channel {ch_name}: an AugmentedManifestFile data source needs AttributeNames."
                )));
            }
        }
    }
    if input["EnableManagedSpotTraining"].as_bool() == Some(true) {
        let stopping = &input["StoppingCondition"];
        let runtime = stopping["MaxRuntimeInSeconds"].as_i64().unwrap_or(86_400);
        match stopping["MaxWaitTimeInSeconds"].as_i64() {
            Some(wait) if wait >= runtime => {}
            _ => {
                return Err(AwsError::validation(
                    "Managed spot training needs StoppingCondition.MaxWaitTimeInSeconds, at least MaxRuntimeInSeconds.",
                ));
            }
        }
    } else if !input["StoppingCondition"]["MaxWaitTimeInSeconds"].is_null() {
        return Err(AwsError::validation(
            "MaxWaitTimeInSeconds is only for managed spot training (EnableManagedSpotTraining).",
        ));
    }
    if let Some(uri) = input["CheckpointConfig"]["S3Uri"].as_str()
        && basalt_core::objects::parse_s3_uri(uri).is_none()
    {
        return Err(AwsError::validation(format!(
            "CheckpointConfig.S3Uri {uri} is not an S3 URI."
        )));
    }
    let mut request = input.as_object().cloned().unwrap_or_default();
    request.remove("Tags");
    request.remove("TrainingJobName");
    let now = core.now_ms();
    let mut job = Job {
        name: name.to_owned(),
        arn: arn.clone(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        request,
        status: "InProgress".into(),
        secondary: "Starting".into(),
        failure: None,
        transitions: Vec::new(),
        interruptions: 0,
        created_ms: now,
        modified_ms: now,
        start_ms: None,
        end_ms: None,
        artifacts: None,
        metrics: Vec::new(),
    };
    job.advance(now, "Starting", "Launching requested ML instances");
    records::create_job(
        core,
        ctx,
        TRAINING_JOBS,
        QUEUE,
        name,
        &job,
        &arn,
        &input["Tags"],
        &core.wake_training,
    )?;
    Ok(json!({"TrainingJobArn": arn}))
}

pub(crate) fn describe(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = input["TrainingJobName"].as_str().unwrap_or_default();
    Ok(load(core, ctx, name)?.describe())
}

pub(crate) fn list(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let jobs: Vec<Job> = records::all(core.state.as_ref(), TRAINING_JOBS, ctx)?;
    records::list_page(jobs, input, "TrainingJobSummaries")
}

pub(crate) fn stop(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["TrainingJobName"].as_str().unwrap_or_default();
    let now = core.now_ms();
    records::update(
        core.state.as_ref(),
        TRAINING_JOBS,
        ctx,
        name,
        |job: &mut Job| {
            if job.status != "InProgress" {
                return Err(AwsError::validation(format!(
                    "The training job {name} is {} and cannot be stopped.",
                    job.status
                )));
            }
            job.status = "Stopping".into();
            job.advance(now, "Stopping", "Stopping the training job");
            Ok(true)
        },
    )?
    .ok_or_else(|| not_found(name))?;
    Ok(json!({}))
}

pub(crate) fn start_worker(core: Arc<Core>) {
    crate::spawn_each(
        &core,
        QUEUE,
        crate::job_lease_ms(),
        &core.wake_training,
        |core, claim| async move {
            Runner {
                core,
                claim,
                logs: Vec::new(),
                trained_ms: 0,
            }
            .run()
            .await
        },
    );
}

/// One claimed job.
struct Runner {
    core: Arc<Core>,
    claim: Claim,
    /// The algorithm's output lines, for the final metrics and the failure reason (the
    /// latest [`KEPT_LINES`]: a chatty job must not grow without bound).
    logs: Vec<(i64, String)>,
    /// Training time of the runs a spot interruption ended: MaxRuntimeInSeconds counts them.
    trained_ms: i64,
}

const KEPT_LINES: usize = 100_000;

impl Runner {
    fn keep(&mut self, line: (i64, String)) {
        if self.logs.len() >= KEPT_LINES {
            self.logs.drain(..KEPT_LINES / 2);
        }
        self.logs.push(line);
    }
}

/// A running job as [`jobs::watch`] sees it.
struct Watching<'a> {
    runner: &'a mut Runner,
    job: &'a Job,
    /// When a simulated spot interruption ends this run.
    interrupt_at_ms: Option<i64>,
}

/// `BASALT_SAGEMAKER_SPOT_INTERRUPT_SECS`: a managed spot job is interrupted once, that long
/// into its training, to exercise its checkpoints (off by default).
fn spot_interrupt_ms() -> Option<i64> {
    Some(basalt_store::ms_from_secs_env(
        "BASALT_SAGEMAKER_SPOT_INTERRUPT_SECS",
        0,
    ))
    .filter(|ms| *ms > 0)
}

/// Copies the checkpoints to S3 every two seconds until told to stop, then once more.
fn sync_while_running(
    core: Arc<Core>,
    mut checkpoints: Checkpoints,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {
                    // A failed copy is tried again at the next one.
                    if let Err(e) = checkpoints.sync(&core).await {
                        tracing::warn!("checkpoints: {e}");
                    }
                }
                _ = &mut stopped => break,
            }
        }
        checkpoints.sync(&core).await.map(|_| ())
    });
    (stop, task)
}

impl jobs::Watched for Watching<'_> {
    fn line(&mut self, line: (i64, String)) {
        self.runner.keep(line);
    }

    fn tick(&mut self) -> Option<Ended> {
        if self
            .interrupt_at_ms
            .is_some_and(|at| self.runner.core.now_ms() >= at)
        {
            return Some(Ended::Interrupted);
        }
        let mut progress = self.job.clone();
        progress.modified_ms = self.runner.core.now_ms();
        (!self.runner.save(&progress)).then(|| self.runner.stopped_or_lost())
    }
}

impl Runner {
    fn read(&self) -> Option<Job> {
        jobs::read(&self.core, TRAINING_JOBS, &self.claim)
    }

    /// Saves progress unless a stop came (then `false`); renews the lease.
    fn save(&mut self, job: &Job) -> bool {
        jobs::save(&self.core, TRAINING_JOBS, &mut self.claim, job)
    }

    fn finish(&self, job: &mut Job, status: &str, secondary: &str, message: &str) {
        let now = self.core.now_ms();
        job.status = status.into();
        job.advance(now, secondary, message);
        if let Some(last) = job.transitions.last_mut() {
            last.end_ms = Some(now);
        }
        job.end_ms = Some(now);
        jobs::finish(&self.core, TRAINING_JOBS, &self.claim, job, &job.name);
    }

    async fn run(mut self) {
        let Some(mut job) = self.read() else {
            return drop(self.core.state.complete(&self.claim, &[]));
        };
        if job.status == "Stopping" && job.start_ms.is_none() {
            return self.finish(
                &mut job,
                "Stopped",
                "Stopped",
                "The job was stopped before it started.",
            );
        }
        if !job.running() {
            return drop(self.core.state.complete(&self.claim, &[]));
        }
        if self.claim.attempt > 1 && job.start_ms.is_some() {
            if !(job.spot() && job.request.get("CheckpointConfig").is_some()) {
                job.failure = Some(
                    "InternalServerError: the node running the job stopped before it ended.".into(),
                );
                return self.finish(&mut job, "Failed", "Failed", "Training job failed");
            }
            // A spot job resumes from its checkpoints, as after an interruption.
            job.interruptions += 1;
            job.advance(
                self.core.now_ms(),
                "Interrupted",
                "The instance running the training job stopped; resuming from the last checkpoint",
            );
        }
        let root = self
            .core
            .config
            .work_dir
            .join("training")
            .join(&job.account)
            .join(&job.region)
            .join(&job.name);
        let _ = std::fs::remove_dir_all(&root);
        let layout = Layout::new(root.clone());
        let result = self.train(&mut job, &layout).await;
        let _ = std::fs::remove_dir_all(&root);
        match result {
            Ok(Ended::Exited(_)) => {
                self.finish(&mut job, "Completed", "Completed", "Training job completed")
            }
            Ok(Ended::Stopped) => {
                self.finish(&mut job, "Stopped", "Stopped", "Training job stopped")
            }
            Ok(Ended::TimedOut) if job.spot() && self.waited_too_long(&job) => self.finish(
                &mut job,
                "Stopped",
                "MaxWaitTimeExceeded",
                "Training job stopped: it ran past MaxWaitTimeInSeconds",
            ),
            Ok(Ended::TimedOut) => self.finish(
                &mut job,
                "Stopped",
                "MaxRuntimeExceeded",
                "Training job stopped: it ran past MaxRuntimeInSeconds",
            ),
            // `train` restarts an interrupted run itself.
            Ok(Ended::Lost | Ended::Interrupted) => {}
            Err(reason) => {
                job.failure = Some(reason);
                self.finish(&mut job, "Failed", "Failed", "Training job failed");
            }
        }
    }

    /// Downloads, runs and uploads. `Err`: the FailureReason.
    async fn train(&mut self, job: &mut Job, layout: &Layout) -> Result<Ended, String> {
        let now = self.core.now_ms();
        job.start_ms = Some(now);
        job.advance(now, "Downloading", "Downloading input data");
        if !self.save(job) {
            return Ok(self.stopped_or_lost());
        }
        for dir in [
            "input/config",
            "input/data",
            "model",
            "output/data",
            "output/intermediate",
            "checkpoints",
            "code",
        ] {
            std::fs::create_dir_all(layout.host(dir))
                .map_err(|e| format!("InternalServerError: {e}"))?;
        }
        let hyper = job.hyperparameters();
        let algorithm = algorithm_of_spec(
            job.request
                .get("AlgorithmSpecification")
                .unwrap_or(&Value::Null),
            &hyper,
        )
        .map_err(|e| format!("ClientError: {}", e.message))?;
        self.write_config(job, layout, &hyper)?;
        let environments = &self.core.config.environments;
        let python = || {
            environments
                .python()
                .map_err(|e| format!("AlgorithmError: {e}"))
        };
        let mut env = sm_env(job, layout, &hyper);
        env.push(("SAGEMAKER_TRAINING_MODULE".into(), "basalt".into()));
        if let Algorithm::Entrypoint(_) = algorithm {
            // `python3` on the PATH is the local environment's, as in a framework image; a
            // PATH of the job's Environment (pushed later) wins.
            python()?;
            env.insert(
                0,
                (
                    "PATH".into(),
                    format!(
                        "{}:/usr/local/bin:/usr/bin:/bin",
                        environments.dir.join("bin").display()
                    ),
                ),
            );
        }
        let mut read = environments.read_paths();
        read.push(layout.root.clone());
        let (exe, args) = match &algorithm {
            Algorithm::Xgboost => {
                std::fs::write(
                    layout.host("code/.basalt-xgboost-algorithm.py"),
                    XGBOOST_ALGORITHM,
                )
                .map_err(|e| format!("InternalServerError: {e}"))?;
                (
                    python()?,
                    vec![layout.seen("code/.basalt-xgboost-algorithm.py")],
                )
            }
            Algorithm::Entrypoint(argv) => {
                let argv: Vec<String> = argv.iter().map(|a| container::seen(layout, a)).collect();
                let Some((first, rest)) = argv.split_first() else {
                    return Err(
                        "ClientError: AlgorithmSpecification.ContainerEntrypoint is empty".into(),
                    );
                };
                (
                    container::entrypoint(first, environments)
                        .map_err(|e| format!("ClientError: {e}"))?,
                    rest.to_vec(),
                )
            }
            Algorithm::Script { program, submit } => {
                if let Some(uri) = submit.as_deref().filter(|u| u.starts_with("s3://")) {
                    let data = self.read_s3(&job.account, uri)?;
                    container::untar_gz(&data, &layout.host("code")).map_err(|e| {
                        format!("ClientError: sagemaker_submit_directory {uri}: {e}")
                    })?;
                }
                if !layout.host("code").join(program).is_file() {
                    return Err(format!(
                        "AlgorithmError: ExecuteUserScriptError: the entry point {program} is not in sagemaker_submit_directory"
                    ));
                }
                let args = std::iter::once(layout.seen(&format!("code/{program}")))
                    .chain(
                        hyper
                            .iter()
                            .filter(|(k, _)| !k.starts_with("sagemaker_") && !k.starts_with("_"))
                            .flat_map(|(k, v)| [format!("--{k}"), decoded(v)]),
                    )
                    .collect();
                (python()?, args)
            }
        };
        let launch = |env: Vec<(String, String)>| container::Launch {
            layout,
            program: exe.clone(),
            args: args.clone(),
            cwd: "code",
            env,
            read: read.clone(),
        };
        // The built-in algorithm's process starts while the channels download: Python and
        // its imports (numpy, xgboost) take a third of a second, which a download of more
        // than a few megabytes hides. It waits on its stdin until its data is in place
        // (`go`); dropped (the job failed or stopped meanwhile), it is killed.
        let mut early = match &algorithm {
            Algorithm::Xgboost => {
                let mut env = env.clone();
                env.push(("BASALT_START".into(), "stdin".into()));
                Some(launch(env).spawn(true).map_err(|e| {
                    format!("InternalServerError: could not start the algorithm: {e}")
                })?)
            }
            Algorithm::Script { .. } | Algorithm::Entrypoint(_) => None,
        };
        let feeds = self.download_channels(job, layout)?;
        // Fed while the algorithm runs, ended when this function returns.
        let mut pipes = crate::pipes::Pipes::start(&self.core.objects, feeds.clone())?;
        if !self.start_training(job) {
            return Ok(self.stopped_or_lost());
        }
        let ended = loop {
            let mut checkpoints = Checkpoints::of(&job.request, &job.account, layout)?;
            if let Some(c) = checkpoints.as_mut() {
                // A fresh instance: only what S3 holds.
                let _ = std::fs::remove_dir_all(c.dir());
                c.restore(&self.core)?;
            }
            let mut child = match early.take() {
                Some(mut child) => {
                    if let Some(mut stdin) = child.stdin.take() {
                        // A process that already ended (its imports failed) reports it below.
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut stdin, b"go\n").await;
                    }
                    child
                }
                None => launch(env.clone())
                    .spawn(false)
                    .map_err(|e| match &algorithm {
                        Algorithm::Entrypoint(argv) => {
                            format!("ClientError: ContainerEntrypoint {}: {e}", argv[0])
                        }
                        _ => format!("InternalServerError: could not start the algorithm: {e}"),
                    })?,
            };
            let syncing = checkpoints.map(|c| sync_while_running(self.core.clone(), c));
            let run_started = self.core.now_ms();
            let ended = self.watch(job, &mut child).await;
            self.trained_ms += self.core.now_ms() - run_started;
            if let Some((stop, task)) = syncing {
                let _ = stop.send(());
                if let Ok(Err(e)) = task.await {
                    tracing::warn!(job = %job.name, "checkpoints: {e}");
                }
            }
            if !matches!(ended, Ended::Interrupted) {
                break ended;
            }
            job.interruptions += 1;
            let now = self.core.now_ms();
            job.advance(
                now,
                "Interrupted",
                "The spot instance was reclaimed (a simulated interruption); the job restarts from its last checkpoint",
            );
            job.advance(now, "Starting", "Preparing the instances for training");
            // A fresh instance reads its Pipe channels from their first epoch again: the old
            // feeds end (their reader is gone) before the new ones make `<channel>_0`.
            pipes.end();
            pipes = crate::pipes::Pipes::start(&self.core.objects, feeds.clone())?;
            if !self.start_training(job) {
                return Ok(self.stopped_or_lost());
            }
        };
        let log = std::mem::take(&mut self.logs);
        if let Ended::Lost = ended {
            return Ok(Ended::Lost);
        }
        job.metrics = final_metrics(&job.request, matches!(algorithm, Algorithm::Xgboost), &log);
        // A stopped or timed-out job is that, whatever its feeds met on the way.
        if let (Ended::Exited(_), Some(why)) = (&ended, pipes.failure()) {
            return Err(why);
        }
        if let Ended::Exited(status) = ended
            && !status.success()
        {
            let failure =
                std::fs::read_to_string(layout.host("output/failure")).unwrap_or_default();
            let reason = if failure.trim().is_empty() {
                let tail: Vec<&str> = log.iter().rev().take(5).map(|(_, l)| l.as_str()).collect();
                format!(
                    "AlgorithmError: ExecuteUserScriptError: the algorithm exited with {status}; last output: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )
            } else if matches!(algorithm, Algorithm::Xgboost)
                && ["ClientError:", "AlgorithmError:"]
                    .iter()
                    .any(|p| failure.trim_start().starts_with(p))
            {
                // A built-in algorithm classifies its own failures ("ClientError: No data in
                // the train channel."), and SageMaker reports them as written; a user's
                // script's failure is an AlgorithmError.
                failure.trim().to_owned()
            } else {
                format!("AlgorithmError: {}", failure.trim())
            };
            return Err(reason);
        }
        let now = self.core.now_ms();
        job.advance(now, "Uploading", "Uploading generated training model");
        if !self.save(job) && matches!(self.stopped_or_lost(), Ended::Lost) {
            return Ok(Ended::Lost);
        }
        self.upload(job, layout).await?;
        Ok(ended)
    }

    /// Whether a spot job has run (interruptions included) for its MaxWaitTimeInSeconds.
    fn waited_too_long(&self, job: &Job) -> bool {
        let wait =
            job.request.get("StoppingCondition").unwrap_or(&Value::Null)["MaxWaitTimeInSeconds"]
                .as_i64();
        match (wait, job.start_ms) {
            (Some(w), Some(start)) => self.core.now_ms() - start >= w * 1000,
            _ => false,
        }
    }

    /// Enters the Training secondary status; `false` when a stop came or the job was lost.
    fn start_training(&mut self, job: &mut Job) -> bool {
        job.advance(
            self.core.now_ms(),
            "Training",
            "Training image download completed. Training in progress.",
        );
        self.save(job)
    }

    fn stopped_or_lost(&self) -> Ended {
        jobs::stopped_or_lost(self.read().as_ref().map(|j| j.status.as_str()))
    }

    fn read_s3(&self, account: &str, uri: &str) -> Result<Vec<u8>, String> {
        let (bucket, key) = basalt_core::objects::parse_s3_uri(uri)
            .ok_or_else(|| format!("ClientError: {uri} is not an S3 URI"))?;
        self.core
            .objects
            .read(account, bucket, key)?
            .ok_or_else(|| format!("ClientError: {uri} does not exist"))
    }

    /// Downloads the File channels; returns the Pipe channels' feeds ([`crate::pipes`]).
    fn download_channels(
        &self,
        job: &Job,
        layout: &Layout,
    ) -> Result<Vec<crate::pipes::Feed>, String> {
        let mut feeds = Vec::new();
        for ch in channels_of(job) {
            let name = ch["ChannelName"].as_str().unwrap_or_default();
            let src = &ch["DataSource"]["S3DataSource"];
            let uri = src["S3Uri"].as_str().unwrap_or_default();
            let dir = layout.host(&format!("input/data/{name}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("InternalServerError: {e}"))?;
            let data_type = src["S3DataType"].as_str().unwrap_or("S3Prefix");
            let pipe = |items| crate::pipes::Feed {
                dir: layout.host("input/data"),
                channel: name.to_owned(),
                account: job.account.clone(),
                items,
                gzip: ch["CompressionType"].as_str() == Some("Gzip"),
                recordio: ch["RecordWrapperType"].as_str() == Some("RecordIO"),
            };
            if data_type == "AugmentedManifestFile" {
                // Pipe mode only (checked when the job was created).
                let manifest = self.read_s3(&job.account, uri)?;
                let names: Vec<&str> = src["AttributeNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                feeds.push(pipe(crate::pipes::augmented_items(&manifest, uri, &names)?));
                continue;
            }
            let (bucket, objects) = crate::inputs::objects_of(
                &self.core,
                &job.account,
                data_type,
                uri,
                crate::inputs::Placement::BelowPrefix,
            )?;
            if input_mode(job, ch) == "Pipe" {
                feeds.push(pipe(
                    objects
                        .into_iter()
                        .map(|(key, _)| crate::pipes::Item::Object {
                            bucket: bucket.clone(),
                            key,
                        })
                        .collect(),
                ));
                continue;
            }
            let bucket = bucket.as_str();
            for (key, rel) in objects {
                let data = self
                    .core
                    .objects
                    .read(&job.account, bucket, &key)?
                    .ok_or_else(|| {
                        format!("ClientError: s3://{bucket}/{key} disappeared while downloading")
                    })?;
                let path = dir.join(rel.trim_start_matches('/'));
                if path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    return Err(format!(
                        "ClientError: the key {key} would leave the channel directory"
                    ));
                }
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("InternalServerError: {e}"))?;
                }
                std::fs::write(&path, data).map_err(|e| format!("InternalServerError: {e}"))?;
            }
        }
        Ok(feeds)
    }

    fn write_config(
        &self,
        job: &Job,
        layout: &Layout,
        hyper: &Map<String, Value>,
    ) -> Result<(), String> {
        let mut channels = Map::new();
        for ch in channels_of(job) {
            let mut c = json!({
                "TrainingInputMode": input_mode(job, ch),
                "S3DistributionType": ch["DataSource"]["S3DataSource"]["S3DataDistributionType"].as_str().unwrap_or("FullyReplicated"),
                "RecordWrapperType": ch["RecordWrapperType"].as_str().unwrap_or("None"),
            });
            if let Some(ct) = ch["ContentType"].as_str() {
                c["ContentType"] = ct.into();
            }
            if let Some(ct) = ch["CompressionType"].as_str() {
                c["CompressionType"] = ct.into();
            }
            channels.insert(ch["ChannelName"].as_str().unwrap_or_default().to_owned(), c);
        }
        let resource = json!({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0", "current_instance_type": job.request.get("ResourceConfig").unwrap_or(&Value::Null)["InstanceType"], "current_group_name": "homogeneousCluster", "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": job.request.get("ResourceConfig").unwrap_or(&Value::Null)["InstanceType"], "hosts": ["algo-1"]}]});
        let write = |name: &str, v: &Value| {
            std::fs::write(layout.host(&format!("input/config/{name}")), v.to_string())
                .map_err(|e| format!("InternalServerError: {e}"))
        };
        write("hyperparameters.json", &Value::Object(hyper.clone()))?;
        write("inputdataconfig.json", &Value::Object(channels))?;
        write("resourceconfig.json", &resource)?;
        Ok(())
    }

    /// Runs the process to its end, a stop, MaxRuntimeInSeconds or a lost lease, collecting
    /// its output lines and sending them to CloudWatch Logs.
    async fn watch(&mut self, job: &Job, child: &mut tokio::process::Child) -> Ended {
        let stopping = job.request.get("StoppingCondition").unwrap_or(&Value::Null);
        let mut max_runtime_ms =
            stopping["MaxRuntimeInSeconds"].as_i64().unwrap_or(86_400) * 1000 - self.trained_ms;
        // A spot job also ends MaxWaitTimeInSeconds after it started, interruptions included.
        if let (true, Some(wait), Some(start)) = (
            job.spot(),
            stopping["MaxWaitTimeInSeconds"].as_i64(),
            job.start_ms,
        ) {
            max_runtime_ms = max_runtime_ms.min(wait * 1000 - (self.core.now_ms() - start));
        }
        let stream = format!("{}/algo-1-{}", job.name, self.core.now_ms() / 1000);
        let mut sink = LogSink::new(
            self.core.clone(),
            &job.account,
            &job.region,
            LOG_GROUP,
            stream,
        );
        let state = self.core.state.clone();
        let interrupt_at_ms = (job.spot() && job.interruptions == 0)
            .then(spot_interrupt_ms)
            .flatten()
            .map(|ms| self.core.now_ms() + ms);
        let mut watched = Watching {
            runner: self,
            job,
            interrupt_at_ms,
        };
        jobs::watch(
            &mut watched,
            child,
            &mut sink,
            move || state.now_ms(),
            max_runtime_ms,
        )
        .await
    }

    async fn upload(&self, job: &mut Job, layout: &Layout) -> Result<(), String> {
        let out = job.request.get("OutputDataConfig").unwrap_or(&Value::Null)["S3OutputPath"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (bucket, prefix) = basalt_core::objects::parse_s3_uri(&out)
            .ok_or("ClientError: S3OutputPath is not an S3 URI")?;
        let base = format!(
            "{}{}{}/output",
            prefix,
            if prefix.is_empty() || prefix.ends_with('/') {
                ""
            } else {
                "/"
            },
            job.name
        );
        for (dir, file) in [("model", "model.tar.gz"), ("output/data", "output.tar.gz")] {
            let Some(data) = container::tar_gz(&layout.host(dir))
                .map_err(|e| format!("InternalServerError: {e}"))?
            else {
                continue;
            };
            let key = format!("{base}/{file}");
            if !self
                .core
                .objects
                .write(&job.account, bucket, &key, data)
                .await?
            {
                return Err(format!(
                    "ClientError: the output bucket {bucket} does not exist"
                ));
            }
            if file == "model.tar.gz" {
                job.artifacts = Some(format!("s3://{bucket}/{key}"));
            }
        }
        if job.artifacts.is_none() {
            // AWS reports where the model would be even when the algorithm saved nothing.
            job.artifacts = Some(format!("s3://{bucket}/{base}/model.tar.gz"));
        }
        Ok(())
    }
}

/// The `SM_*` variables of SageMaker's training toolkit, and the job's Environment.
fn sm_env(job: &Job, layout: &Layout, hyper: &Map<String, Value>) -> Vec<(String, String)> {
    let channels: Vec<String> = job
        .request
        .get("InputDataConfig")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["ChannelName"].as_str().map(str::to_owned))
        .collect();
    let user_hps: Map<String, Value> = hyper
        .iter()
        .filter(|(k, _)| !k.starts_with("sagemaker_"))
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str(v.as_str().unwrap_or_default()).unwrap_or_else(|_| v.clone()),
            )
        })
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut env: Vec<(String, String)> = vec![
        ("SM_MODEL_DIR".into(), layout.seen("model")),
        ("SM_INPUT_DIR".into(), layout.seen("input")),
        ("SM_INPUT_CONFIG_DIR".into(), layout.seen("input/config")),
        ("SM_INPUT_DATA_CONFIG".into(), std::fs::read_to_string(layout.host("input/config/inputdataconfig.json")).unwrap_or_default()),
        ("SM_OUTPUT_DIR".into(), layout.seen("output")),
        ("SM_OUTPUT_DATA_DIR".into(), layout.seen("output/data")),
        ("SM_OUTPUT_INTERMEDIATE_DIR".into(), layout.seen("output/intermediate")),
        ("SM_CHECKPOINT_DIR".into(), layout.seen("checkpoints")),
        ("SM_MODULE_DIR".into(), layout.seen("code")),
        ("SM_HPS".into(), Value::Object(user_hps.clone()).to_string()),
        ("SM_HOSTS".into(), "[\"algo-1\"]".into()),
        ("SM_CURRENT_HOST".into(), "algo-1".into()),
        ("SM_NUM_CPUS".into(), cpus.to_string()),
        ("SM_NUM_GPUS".into(), "0".into()),
        ("SM_NUM_NEURONS".into(), "0".into()),
        ("SM_CHANNELS".into(), serde_json::to_string(&channels).unwrap_or_default()),
        ("SM_RESOURCE_CONFIG".into(), std::fs::read_to_string(layout.host("input/config/resourceconfig.json")).unwrap_or_default()),
        ("SM_NETWORK_INTERFACE_NAME".into(), "eth0".into()),
        ("SM_LOG_LEVEL".into(), "20".into()),
        ("SM_TRAINING_ENV".into(), json!({"job_name": job.name, "hosts": ["algo-1"], "current_host": "algo-1", "model_dir": layout.seen("model"), "hyperparameters": user_hps, "channel_input_dirs": channels.iter().map(|c| (c.clone(), Value::from(layout.seen(&format!("input/data/{c}"))))).collect::<Map<_, _>>()}).to_string()),
        ("TRAINING_JOB_NAME".into(), job.name.clone()),
        ("TRAINING_JOB_ARN".into(), job.arn.clone()),
        ("AWS_REGION".into(), job.region.clone()),
        ("AWS_DEFAULT_REGION".into(), job.region.clone()),
    ];
    if let Some(p) = hyper.get("sagemaker_program") {
        env.push(("SM_USER_ENTRY_POINT".into(), decoded(p)));
    }
    for c in &channels {
        env.push((
            format!("SM_CHANNEL_{}", c.to_uppercase()),
            layout.seen(&format!("input/data/{c}")),
        ));
    }
    for (k, v) in &user_hps {
        let s = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.push((format!("SM_HP_{}", k.to_uppercase().replace('-', "_")), s));
    }
    for (k, v) in job
        .request
        .get("Environment")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        env.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
    }
    env
}

/// FinalMetricDataList: the last value each metric definition matched in the log (the
/// built-in XGBoost algorithm defines `{channel}:{metric}` for every evaluation it prints).
fn final_metrics(
    request: &Map<String, Value>,
    builtin: bool,
    log: &[(i64, String)],
) -> Vec<Metric> {
    let mut found: Vec<Metric> = Vec::new();
    each_metric(request, builtin, log, |name, value, ms| {
        match found.iter_mut().find(|m| m.name == name) {
            Some(m) => {
                m.value = value;
                m.ms = ms;
            }
            None => found.push(Metric { name, value, ms }),
        }
    });
    found
}

/// Every value of the metric `name` in a training job's log lines, in order: one per epoch
/// (a round of the built-in XGBoost), as tuning's early stopping reads them.
pub(crate) fn metric_series(
    core: &Core,
    ctx: &RequestContext,
    job: &str,
    name: &str,
    log: &[(i64, String)],
) -> Vec<f64> {
    let Ok(job) = load(core, ctx, job) else {
        return Vec::new();
    };
    let builtin = matches!(
        algorithm_of_spec(
            job.request
                .get("AlgorithmSpecification")
                .unwrap_or(&Value::Null),
            &job.hyperparameters()
        ),
        Ok(Algorithm::Xgboost)
    );
    let mut out = Vec::new();
    each_metric(&job.request, builtin, log, |metric, value, _| {
        if metric == name {
            out.push(value);
        }
    });
    out
}

/// Calls `record` with each metric value the log shows: the built-in algorithm's evaluations
/// and the request's MetricDefinitions, line by line.
fn each_metric(
    request: &Map<String, Value>,
    builtin: bool,
    log: &[(i64, String)],
    mut record: impl FnMut(String, f64, i64),
) {
    if builtin {
        let re = regex::Regex::new(r"(?:#011|\t)([A-Za-z0-9_]+)-([A-Za-z0-9@_\-]+):([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)").expect("static regex");
        for (ms, line) in log {
            if !line.starts_with('[') {
                continue;
            }
            for c in re.captures_iter(line) {
                if let Ok(v) = c[3].parse::<f64>() {
                    record(format!("{}:{}", &c[1], &c[2]), v, *ms);
                }
            }
        }
    }
    for def in request
        .get("AlgorithmSpecification")
        .and_then(|a| a["MetricDefinitions"].as_array())
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(re)) = (def["Name"].as_str(), def["Regex"].as_str()) else {
            continue;
        };
        let Ok(re) = regex::Regex::new(re) else {
            continue;
        };
        for (ms, line) in log {
            if let Some(v) = re
                .captures(line)
                .and_then(|c| c.get(1))
                .and_then(|m| m.as_str().parse::<f64>().ok())
            {
                record(name.to_owned(), v, *ms);
            }
        }
    }
}

/// The job's input channels (`InputDataConfig`).
fn channels_of(job: &Job) -> impl Iterator<Item = &Value> {
    job.request
        .get("InputDataConfig")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A channel's input mode: its own `InputMode`, else the algorithm's `TrainingInputMode`.
fn input_mode<'a>(job: &'a Job, ch: &'a Value) -> &'a str {
    ch["InputMode"].as_str().unwrap_or_else(|| {
        job.request
            .get("AlgorithmSpecification")
            .unwrap_or(&Value::Null)["TrainingInputMode"]
            .as_str()
            .unwrap_or("File")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_resolve_to_what_runs_them() {
        let none = Map::new();
        assert_eq!(
            algorithm_of(
                "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1",
                &none
            )
            .unwrap(),
            Algorithm::Xgboost
        );
        assert_eq!(
            algorithm_of(
                "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest",
                &none
            )
            .unwrap(),
            Algorithm::Xgboost
        );
        let mut script = Map::new();
        script.insert("sagemaker_program".into(), json!("\"train.py\""));
        script.insert(
            "sagemaker_submit_directory".into(),
            json!("\"s3://b/src.tar.gz\""),
        );
        assert_eq!(
            algorithm_of(
                "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.0.1-gpu-py310",
                &script
            )
            .unwrap(),
            Algorithm::Script {
                program: "train.py".into(),
                submit: Some("s3://b/src.tar.gz".into())
            }
        );
        let e = algorithm_of("123.dkr.ecr.us-east-1.amazonaws.com/my-own:1", &none).unwrap_err();
        assert_eq!(e.code, "ValidationException");
    }

    #[test]
    fn builtin_metrics_are_the_last_of_each_evaluation() {
        let log = vec![
            (
                1,
                "[0]#011train-logloss:0.52#011validation-logloss:0.55".to_owned(),
            ),
            (2, "some other line with #011x-y:1".to_owned()),
            (
                3,
                "[1]#011train-logloss:0.31#011validation-logloss:0.4e-1".to_owned(),
            ),
        ];
        let m = final_metrics(&Map::new(), true, &log);
        let got: Vec<(String, f64)> = m.iter().map(|m| (m.name.clone(), m.value)).collect();
        assert_eq!(
            got,
            [
                ("train:logloss".to_owned(), 0.31),
                ("validation:logloss".to_owned(), 0.04)
            ]
        );
        let mut request = Map::new();
        request.insert("AlgorithmSpecification".into(), json!({"MetricDefinitions": [{"Name": "accuracy", "Regex": "validation accuracy: ([0-9.]+)"}]}));
        let m = final_metrics(
            &request,
            false,
            &[(5, "validation accuracy: 0.9750".into())],
        );
        assert_eq!(
            (m[0].name.as_str(), m[0].value, m[0].ms),
            ("accuracy", 0.975, 5)
        );
    }
}
