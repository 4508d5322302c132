//! Processing jobs: CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs,
//! StopProcessingJob.
//!
//! A job runs on the leases (queue [`QUEUE`]) as the container contract of SageMaker
//! Processing describes it, without the container: each ProcessingInput's S3 data is
//! downloaded to its `LocalPath` under `/opt/ml/processing`, `/opt/ml/config` holds
//! `processingjobconfig.json` and `resourceconfig.json`, and `ContainerEntrypoint` plus
//! `ContainerArguments` run as a local process (a `python`/`python3` entry point on the local
//! Python environment, `bash`/`sh` on the system's shell, anything else by path). The exit code
//! decides Completed or Failed; `/opt/ml/output/message` becomes ExitMessage (its first KB);
//! each ProcessingOutput's `LocalPath` is uploaded to its `S3Uri` at the end. Output goes to
//! `/aws/sagemaker/ProcessingJobs`, stream `{job}/algo-1-{epoch}`.
//!
//! There is no image to run: an AppSpecification without ContainerEntrypoint is refused at
//! creation, with the reason.

use crate::container::{self, Layout};
use crate::jobs::{self, Ended};
use crate::logs::LogSink;
use crate::records::{self, Listed, PROCESSING_JOBS, secs};
use crate::{Core, in_use};
use basalt_core::{AwsError, RequestContext};
use basalt_store::Claim;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const QUEUE: &str = "sagemaker.processing";
const LOG_GROUP: &str = "/aws/sagemaker/ProcessingJobs";
/// Where inputs and outputs must live, as SageMaker requires of their LocalPath.
const PROCESSING_ROOT: &str = "/opt/ml/processing";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    name: String,
    arn: String,
    account: String,
    region: String,
    /// The request's members as given (but Tags), echoed by Describe.
    request: Map<String, Value>,
    status: String,
    #[serde(default)]
    failure: Option<String>,
    #[serde(default)]
    exit_message: Option<String>,
    created_ms: i64,
    modified_ms: i64,
    #[serde(default)]
    start_ms: Option<i64>,
    #[serde(default)]
    end_ms: Option<i64>,
}

impl Job {
    fn describe(&self) -> Value {
        let mut v = Value::Object(self.request.clone());
        v["ProcessingJobName"] = self.name.clone().into();
        v["ProcessingJobArn"] = self.arn.clone().into();
        v["ProcessingJobStatus"] = self.status.clone().into();
        v["CreationTime"] = secs(self.created_ms).into();
        v["LastModifiedTime"] = secs(self.modified_ms).into();
        if let Some(f) = &self.failure {
            v["FailureReason"] = f.clone().into();
        }
        if let Some(m) = &self.exit_message {
            v["ExitMessage"] = m.clone().into();
        }
        if let Some(s) = self.start_ms {
            v["ProcessingStartTime"] = secs(s).into();
        }
        if let Some(e) = self.end_ms {
            v["ProcessingEndTime"] = secs(e).into();
        }
        v
    }

    fn running(&self) -> bool {
        matches!(self.status.as_str(), "InProgress" | "Stopping")
    }

    fn inputs(&self) -> impl Iterator<Item = &Value> {
        self.request
            .get("ProcessingInputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }

    fn outputs(&self) -> impl Iterator<Item = &Value> {
        self.request
            .get("ProcessingOutputConfig")
            .and_then(|c| c.get("Outputs"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
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
            "ProcessingJobName": self.name, "ProcessingJobArn": self.arn,
            "CreationTime": secs(self.created_ms), "LastModifiedTime": secs(self.modified_ms),
            "ProcessingJobStatus": self.status,
        });
        if let Some(e) = self.end_ms {
            v["ProcessingEndTime"] = secs(e).into();
        }
        if let Some(f) = &self.failure {
            v["FailureReason"] = f.clone().into();
        }
        if let Some(m) = &self.exit_message {
            v["ExitMessage"] = m.clone().into();
        }
        v
    }
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFound",
        format!("Processing job {name} does not exist."),
    )
}

/// `LocalPath` relative to `/opt/ml` (`processing/...`), refused when it is not under
/// `/opt/ml/processing` or climbs out of it.
fn local_path(what: &str, path: &str) -> Result<String, AwsError> {
    let rel = path
        .strip_prefix(PROCESSING_ROOT)
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .filter(|r| !r.split('/').any(|c| c == ".."));
    match rel {
        Some(r) => Ok(format!("processing{}", r.trim_end_matches('/'))),
        None => Err(AwsError::validation(format!(
            "{what} LocalPath {path:?} must be a path under {PROCESSING_ROOT}."
        ))),
    }
}

fn check_s3(what: &str, uri: Option<&str>) -> Result<(), AwsError> {
    if uri.and_then(basalt_core::objects::parse_s3_uri).is_none() {
        return Err(AwsError::validation(format!(
            "{what} needs an S3Uri (s3://bucket/prefix)."
        )));
    }
    Ok(())
}

pub(crate) fn create(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["ProcessingJobName"].as_str().unwrap_or_default();
    records::check_name("processingJobName", name)?;
    let arn = records::arn(ctx, "processing-job", name);
    if records::load::<Job>(core.state.as_ref(), PROCESSING_JOBS, ctx, name)?.is_some() {
        return Err(in_use(format!(
            "Processing job names must be unique within an AWS account and region, and a processing job with this name already exists ({arn})"
        )));
    }
    let app = &input["AppSpecification"];
    if app["ImageUri"].as_str().is_none_or(str::is_empty) {
        return Err(AwsError::validation(
            "AppSpecification.ImageUri is required.",
        ));
    }
    if app["ContainerEntrypoint"]
        .as_array()
        .is_none_or(|e| e.is_empty() || e.iter().any(|x| !x.is_string()))
    {
        return Err(AwsError::validation(
            "Basalt runs no container images, so it cannot run an image's own ENTRYPOINT: give AppSpecification.ContainerEntrypoint (for example [\"python3\", \"/opt/ml/processing/input/code/script.py\"], as the SageMaker Python SDK's processors do).",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for i in input["ProcessingInputs"].as_array().into_iter().flatten() {
        let n = i["InputName"].as_str().unwrap_or_default();
        if !names.insert(n.to_owned()) {
            return Err(AwsError::validation(format!(
                "Input names must be unique; {n} appears twice."
            )));
        }
        let s3 = &i["S3Input"];
        if s3.is_null() {
            return Err(AwsError::validation(format!(
                "ProcessingInput {n}: Basalt reads S3Input; DatasetDefinition (Athena, Redshift) needs services it does not have."
            )));
        }
        check_s3(&format!("ProcessingInput {n}"), s3["S3Uri"].as_str())?;
        local_path(
            &format!("ProcessingInput {n}"),
            s3["LocalPath"].as_str().unwrap_or_default(),
        )?;
    }
    for o in input["ProcessingOutputConfig"]["Outputs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let n = o["OutputName"].as_str().unwrap_or_default();
        if !names.insert(n.to_owned()) {
            return Err(AwsError::validation(format!(
                "Input and output names must be unique; {n} appears twice."
            )));
        }
        let s3 = &o["S3Output"];
        if s3.is_null() {
            return Err(AwsError::validation(format!(
                "ProcessingOutput {n}: Basalt writes S3Output; FeatureStoreOutput needs a feature store it does not have."
            )));
        }
        check_s3(&format!("ProcessingOutput {n}"), s3["S3Uri"].as_str())?;
        local_path(
            &format!("ProcessingOutput {n}"),
            s3["LocalPath"].as_str().unwrap_or_default(),
        )?;
    }
    let mut request = input.as_object().cloned().unwrap_or_default();
    request.remove("Tags");
    request.remove("ProcessingJobName");
    let now = core.now_ms();
    let job = Job {
        name: name.to_owned(),
        arn: arn.clone(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        request,
        status: "InProgress".into(),
        failure: None,
        exit_message: None,
        created_ms: now,
        modified_ms: now,
        start_ms: None,
        end_ms: None,
    };
    records::create_job(
        core,
        ctx,
        PROCESSING_JOBS,
        QUEUE,
        name,
        &job,
        &arn,
        &input["Tags"],
        &core.wake_processing,
    )?;
    Ok(json!({"ProcessingJobArn": arn}))
}

pub(crate) fn describe(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = input["ProcessingJobName"].as_str().unwrap_or_default();
    records::load::<Job>(core.state.as_ref(), PROCESSING_JOBS, ctx, name)?
        .map(|j| j.describe())
        .ok_or_else(|| not_found(name))
}

pub(crate) fn list(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let jobs: Vec<Job> = records::all(core.state.as_ref(), PROCESSING_JOBS, ctx)?;
    records::list_page(jobs, input, "ProcessingJobSummaries")
}

pub(crate) fn stop(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["ProcessingJobName"].as_str().unwrap_or_default();
    let now = core.now_ms();
    records::update(
        core.state.as_ref(),
        PROCESSING_JOBS,
        ctx,
        name,
        |job: &mut Job| {
            if job.status != "InProgress" {
                return Err(AwsError::validation(format!(
                    "The processing job {name} is {} and cannot be stopped.",
                    job.status
                )));
            }
            job.status = "Stopping".into();
            job.modified_ms = now;
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
        &core.wake_processing,
        |core, claim| async move { Runner { core, claim }.run().await },
    );
}

/// One claimed job.
struct Runner {
    core: Arc<Core>,
    claim: Claim,
}

impl jobs::Watched for (&mut Runner, &Job) {
    fn line(&mut self, _line: (i64, String)) {}

    fn tick(&mut self) -> Option<Ended> {
        let mut progress = self.1.clone();
        progress.modified_ms = self.0.core.now_ms();
        (!self.0.save(&progress)).then(|| self.0.stopped_or_lost())
    }
}

impl Runner {
    fn read(&self) -> Option<Job> {
        jobs::read(&self.core, PROCESSING_JOBS, &self.claim)
    }

    /// Saves progress unless a stop came; renews the lease.
    fn save(&mut self, job: &Job) -> bool {
        jobs::save(&self.core, PROCESSING_JOBS, &mut self.claim, job)
    }

    /// Keeps the lease while data moves (a large input or output can take longer than it).
    fn keep_lease(&self) {
        let _ = (self.core.state).renew(&self.claim, self.core.now_ms(), crate::job_lease_ms());
    }

    fn stopped_or_lost(&self) -> Ended {
        jobs::stopped_or_lost(self.read().as_ref().map(|j| j.status.as_str()))
    }

    fn finish(&self, job: &mut Job, status: &str) {
        let now = self.core.now_ms();
        job.status = status.into();
        job.modified_ms = now;
        job.end_ms = Some(now);
        jobs::finish(&self.core, PROCESSING_JOBS, &self.claim, job, &job.name);
    }

    async fn run(mut self) {
        let Some(mut job) = self.read() else {
            return drop(self.core.state.complete(&self.claim, &[]));
        };
        if job.status == "Stopping" && job.start_ms.is_none() {
            return self.finish(&mut job, "Stopped");
        }
        if !job.running() {
            return drop(self.core.state.complete(&self.claim, &[]));
        }
        if self.claim.attempt > 1 && job.start_ms.is_some() {
            job.failure = Some(
                "InternalServerError: the node running the job stopped before it ended.".into(),
            );
            return self.finish(&mut job, "Failed");
        }
        let root = (self.core.config.work_dir.join("processing"))
            .join(&job.account)
            .join(&job.region)
            .join(&job.name);
        let _ = std::fs::remove_dir_all(&root);
        let layout = Layout::new(root.clone());
        let result = self.process(&mut job, &layout).await;
        if let Ok(m) = std::fs::read(layout.host("output/message"))
            && !m.is_empty()
        {
            // The first KB, cut at a character boundary.
            let text = String::from_utf8_lossy(&m[..m.len().min(1024)]).into_owned();
            job.exit_message = Some(text.trim_end_matches('\u{FFFD}').to_owned());
        }
        let _ = std::fs::remove_dir_all(&root);
        match result {
            Ok(Ended::Exited(_)) => self.finish(&mut job, "Completed"),
            Ok(Ended::Stopped) => self.finish(&mut job, "Stopped"),
            Ok(Ended::TimedOut) => {
                job.failure = Some(
                    "ClientError: the processing job ran past MaxRuntimeInSeconds and was stopped."
                        .into(),
                );
                self.finish(&mut job, "Failed");
            }
            // Interruptions are training jobs' (managed spot).
            Ok(Ended::Lost | Ended::Interrupted) => {}
            Err(reason) => {
                job.failure = Some(reason);
                self.finish(&mut job, "Failed");
            }
        }
    }

    /// Downloads, runs and uploads. `Err`: the FailureReason.
    async fn process(&mut self, job: &mut Job, layout: &Layout) -> Result<Ended, String> {
        let internal = |e: std::io::Error| format!("InternalServerError: {e}");
        job.start_ms = Some(self.core.now_ms());
        if !self.save(job) {
            return Ok(self.stopped_or_lost());
        }
        for dir in ["config", "output", "processing"] {
            std::fs::create_dir_all(layout.host(dir)).map_err(internal)?;
        }
        self.download(job, layout)?;
        for o in job.outputs() {
            let rel = local_path(
                "output",
                o["S3Output"]["LocalPath"].as_str().unwrap_or_default(),
            )
            .map_err(|e| format!("ClientError: {}", e.message))?;
            std::fs::create_dir_all(layout.host(&rel)).map_err(internal)?;
        }
        let mut config = Value::Object(job.request.clone());
        config["ProcessingJobName"] = job.name.clone().into();
        config["ProcessingJobArn"] = job.arn.clone().into();
        let instance = &job
            .request
            .get("ProcessingResources")
            .unwrap_or(&Value::Null)["ClusterConfig"]["InstanceType"];
        let resource = json!({"current_host": "algo-1", "hosts": ["algo-1"], "current_instance_type": instance, "current_group_name": "homogeneousCluster", "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance, "hosts": ["algo-1"]}], "network_interface_name": "eth0"});
        std::fs::write(
            layout.host("config/processingjobconfig.json"),
            config.to_string(),
        )
        .map_err(internal)?;
        std::fs::write(
            layout.host("config/resourceconfig.json"),
            resource.to_string(),
        )
        .map_err(internal)?;

        let app = &job.request.get("AppSpecification").unwrap_or(&Value::Null);
        let mut argv: Vec<String> = app["ContainerEntrypoint"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(app["ContainerArguments"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .map(|a| container::seen(layout, a))
            .collect();
        if argv.is_empty() {
            return Err("ClientError: AppSpecification.ContainerEntrypoint is empty".into());
        }
        let first = argv.remove(0);
        let program = container::entrypoint(&first, &self.core.config.environments)
            .map_err(|e| format!("ClientError: {e}"))?;
        let mut env: Vec<(String, String)> = vec![
            ("AWS_REGION".into(), job.region.clone()),
            ("AWS_DEFAULT_REGION".into(), job.region.clone()),
            ("PROCESSING_JOB_NAME".into(), job.name.clone()),
        ];
        for (k, v) in job
            .request
            .get("Environment")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            env.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
        }
        let mut read = self.core.config.environments.read_paths();
        read.push(layout.root.clone());
        let launch = container::Launch {
            layout,
            program,
            args: argv,
            cwd: "processing",
            env,
            read,
        };
        let mut child = launch
            .spawn(false)
            .map_err(|e| format!("ClientError: could not start {first}: {e}"))?;
        let max_runtime_ms =
            job.request.get("StoppingCondition").unwrap_or(&Value::Null)["MaxRuntimeInSeconds"]
                .as_i64()
                .unwrap_or(86_400)
                * 1000;
        let stream = format!("{}/algo-1-{}", job.name, self.core.now_ms() / 1000);
        let mut sink = LogSink::new(
            self.core.clone(),
            &job.account,
            &job.region,
            LOG_GROUP,
            stream,
        );
        let state = self.core.state.clone();
        let snapshot = job.clone();
        let mut watched = (&mut *self, &snapshot);
        let ended = jobs::watch(
            &mut watched,
            &mut child,
            &mut sink,
            move || state.now_ms(),
            max_runtime_ms,
        )
        .await;
        match ended {
            Ended::Exited(status) if !status.success() => {
                let code = status
                    .code()
                    .map_or_else(|| status.to_string(), |c| format!("exit code {c}"));
                Err(format!(
                    "AlgorithmError: the processing program ended with {code}; see the job's logs in {LOG_GROUP}"
                ))
            }
            Ended::Exited(status) => {
                self.upload(job, layout).await?;
                Ok(Ended::Exited(status))
            }
            other => Ok(other),
        }
    }

    fn download(&self, job: &Job, layout: &Layout) -> Result<(), String> {
        for i in job.inputs() {
            let s3 = &i["S3Input"];
            let uri = s3["S3Uri"].as_str().unwrap_or_default();
            let rel = local_path("input", s3["LocalPath"].as_str().unwrap_or_default())
                .map_err(|e| format!("ClientError: {}", e.message))?;
            let dir = layout.host(&rel);
            std::fs::create_dir_all(&dir).map_err(|e| format!("InternalServerError: {e}"))?;
            let data_type = s3["S3DataType"].as_str().unwrap_or("S3Prefix");
            let (bucket, objects) = crate::inputs::objects_of(
                &self.core,
                &job.account,
                data_type,
                uri,
                crate::inputs::Placement::BelowPrefix,
            )?;
            for (key, rel) in objects {
                let data = self
                    .core
                    .objects
                    .read(&job.account, &bucket, &key)?
                    .ok_or_else(|| {
                        format!("ClientError: s3://{bucket}/{key} disappeared while downloading")
                    })?;
                let path = dir.join(rel.trim_start_matches('/'));
                if path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    return Err(format!(
                        "ClientError: the key {key} would leave {}",
                        s3["LocalPath"].as_str().unwrap_or_default()
                    ));
                }
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("InternalServerError: {e}"))?;
                }
                std::fs::write(&path, data).map_err(|e| format!("InternalServerError: {e}"))?;
                self.keep_lease();
            }
        }
        Ok(())
    }

    /// Every file under each output's LocalPath, to `{S3Uri}/{path under LocalPath}`.
    async fn upload(&self, job: &Job, layout: &Layout) -> Result<(), String> {
        for o in job.outputs() {
            let s3 = &o["S3Output"];
            let uri = s3["S3Uri"].as_str().unwrap_or_default();
            let (bucket, prefix) = basalt_core::objects::parse_s3_uri(uri)
                .ok_or_else(|| format!("ClientError: {uri} is not an S3 URI"))?;
            let rel = local_path("output", s3["LocalPath"].as_str().unwrap_or_default())
                .map_err(|e| format!("ClientError: {}", e.message))?;
            let prefix = prefix.trim_end_matches('/');
            for (name, path) in container::files_under(&layout.host(&rel)) {
                let data = std::fs::read(&path).map_err(|e| format!("InternalServerError: {e}"))?;
                let key = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
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
                self.keep_lease();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_stay_under_opt_ml_processing() {
        assert_eq!(
            local_path("i", "/opt/ml/processing/input").unwrap(),
            "processing/input"
        );
        assert_eq!(
            local_path("i", "/opt/ml/processing/out/").unwrap(),
            "processing/out"
        );
        for bad in [
            "/opt/ml/model",
            "/opt/ml/processingx",
            "/opt/ml/processing/../x",
            "relative",
            "",
        ] {
            assert!(local_path("i", bad).is_err(), "{bad}");
        }
    }
}
