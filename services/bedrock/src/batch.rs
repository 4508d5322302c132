//! Batch inference: CreateModelInvocationJob, GetModelInvocationJob, ListModelInvocationJobs,
//! StopModelInvocationJob.
//!
//! A job reads JSONL records (`{"recordId": ..., "modelInput": <an InvokeModel body>}`) from a
//! file or every `.jsonl` file under a prefix in S3, runs each through the runtime's
//! InvokeModel, and writes, for each input file `F`, `{output}/{jobId}/F.out` (each line the
//! record with `modelOutput`, or `error` when it failed) and `{output}/{jobId}/manifest.json.out`
//! (record and token counts), as Bedrock's batch inference does. Jobs run on the store's leases
//! (queue [`QUEUE`]) on whichever node claims them, one record at a time, so that interactive
//! requests keep the engine's other sequences; progress is saved after every input file, and a
//! job taken over by another node starts again at the first unfinished file.

use basalt_core::{AwsError, RequestContext, ServiceRegistry};
use basalt_store::{Claim, StateStore, StoreError, WriteOp};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

pub const JOBS: &str = "bedrock.model-invocation-jobs";
pub const QUEUE: &str = "bedrock.batch";
const LEASE_MS: i64 = 120_000;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// S3 as batch inference sees it.
pub use basalt_core::objects::InProcessS3 as BatchObjects;

/// What the jobs share.
pub struct Batch {
    state: Arc<dyn StateStore>,
    objects: Arc<dyn BatchObjects>,
    registry: OnceLock<ServiceRegistry>,
    wake: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    id: String,
    arn: String,
    name: String,
    model_id: String,
    role_arn: String,
    token: Option<String>,
    status: String,
    message: Option<String>,
    input: Value,
    output: Value,
    timeout_hours: u32,
    submit_ms: i64,
    modified_ms: i64,
    end_ms: Option<i64>,
    account: String,
    region: String,
    /// Input files done (in key order).
    files_done: usize,
    /// Records done in the file in progress (counted into `processed` when the file is
    /// written; a job taken over redoes the file, so they start again from 0).
    #[serde(default)]
    file_progress: u64,
    total: u64,
    processed: u64,
    success: u64,
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
}

/// An hour of `timeoutDurationInHours`: `BASALT_BEDROCK_BATCH_HOUR_SECS` seconds (tests
/// shorten it to see a job expire), 3,600 otherwise.
fn hour_ms() -> i64 {
    basalt_store::ms_from_secs_env("BASALT_BEDROCK_BATCH_HOUR_SECS", 3_600_000)
}

/// How `work` says the job ran out of time (its outputs so far are written).
const EXPIRED: &str = "\u{0}expired";

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl Job {
    fn document(&self) -> Value {
        let mut v = json!({
            "jobArn": self.arn, "jobName": self.name, "modelId": self.model_id,
            "roleArn": self.role_arn, "status": self.status,
            "submitTime": secs(self.submit_ms), "lastModifiedTime": secs(self.modified_ms),
            "inputDataConfig": self.input, "outputDataConfig": self.output,
            "timeoutDurationInHours": self.timeout_hours,
            "jobExpirationTime": secs(self.expires_ms()),
            "totalRecordCount": self.total, "processedRecordCount": self.processed + self.file_progress,
            "successRecordCount": self.success, "errorRecordCount": self.errors,
        });
        if let Some(t) = &self.token {
            v["clientRequestToken"] = t.clone().into();
        }
        if let Some(m) = &self.message {
            v["message"] = m.clone().into();
        }
        if let Some(e) = self.end_ms {
            v["endTime"] = secs(e).into();
        }
        v
    }

    /// Counts a file's records (done, failed) and tokens (in, out) into the job's totals.
    fn count_file(&mut self, (ok, bad, tin, tout): (u64, u64, u64, u64)) {
        self.file_progress = 0;
        self.total += ok + bad;
        self.processed += ok + bad;
        self.success += ok;
        self.errors += bad;
        self.input_tokens += tin;
        self.output_tokens += tout;
    }

    /// When the job expires: `timeoutDurationInHours` after its submission.
    fn expires_ms(&self) -> i64 {
        self.submit_ms + i64::from(self.timeout_hours) * hour_ms()
    }

    fn running(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Submitted" | "Validating" | "Scheduled" | "InProgress"
        )
    }
}

fn not_found(id: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("The specified job {id} could not be found."),
    )
}

fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ConflictException", message)
}

/// `s3://bucket/key` → (bucket, key).
fn s3_uri(uri: &str, field: &str) -> Result<(String, String), AwsError> {
    let (bucket, key) = basalt_core::objects::parse_s3_uri(uri)
        .ok_or_else(|| AwsError::validation(format!("{field} must be an s3:// URI.")))?;
    Ok((bucket.to_owned(), key.to_owned()))
}

fn new_id() -> String {
    basalt_core::ids::lower_alnum(12)
}

impl Batch {
    pub fn new(state: Arc<dyn StateStore>, objects: Arc<dyn BatchObjects>) -> Arc<Batch> {
        Arc::new(Batch {
            state,
            objects,
            registry: OnceLock::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    fn key(ctx: &RequestContext, id: &str) -> String {
        format!("{}/{}/{id}", ctx.account_id, ctx.region)
    }

    fn load(&self, ctx: &RequestContext, identifier: &str) -> Result<(String, Job), AwsError> {
        let id = identifier.rsplit('/').next().unwrap_or(identifier);
        let key = Self::key(ctx, id);
        let raw = self
            .state
            .get(JOBS, &key)?
            .ok_or_else(|| not_found(identifier))?;
        let job = serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?;
        Ok((key, job))
    }

    fn all(&self, ctx: &RequestContext) -> Result<Vec<Job>, AwsError> {
        let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
        Ok(self
            .state
            .scan(JOBS, &prefix, None, 100_000)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    pub fn create(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let name = input["jobName"].as_str().unwrap_or_default();
        let model_id = input["modelId"].as_str().unwrap_or_default();
        let token = input["clientRequestToken"].as_str();
        let jobs = self.all(ctx)?;
        if let Some(same) = jobs.iter().find(|j| j.name == name) {
            // The same request again (same idempotency token) gets the same job.
            if token.is_some() && same.token.as_deref() == token {
                return Ok(json!({"jobArn": same.arn}));
            }
            return Err(conflict(format!(
                "A batch inference job with the name {name} already exists."
            )));
        }
        let invalid = || AwsError::validation("The provided model identifier is invalid.");
        if !basalt_bedrock_runtime::catalog::is_known(model_id) {
            return Err(invalid());
        }
        let family = basalt_chat::providers::family_of(model_id).ok_or_else(invalid)?;
        if family.is_embedding() {
            return Err(AwsError::validation(format!(
                "The model {model_id} does not support batch inference in Basalt."
            )));
        }
        let in_uri = input["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
            .as_str()
            .ok_or_else(|| {
                AwsError::validation("inputDataConfig.s3InputDataConfig.s3Uri is required.")
            })?;
        let out_uri = input["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
            .as_str()
            .ok_or_else(|| {
                AwsError::validation("outputDataConfig.s3OutputDataConfig.s3Uri is required.")
            })?;
        s3_uri(in_uri, "inputDataConfig.s3InputDataConfig.s3Uri")?;
        s3_uri(out_uri, "outputDataConfig.s3OutputDataConfig.s3Uri")?;
        let id = new_id();
        let now = self.state.now_ms();
        // Bedrock's bounds (ModelInvocationJobTimeoutDurationInHours).
        let timeout_hours = match input.get("timeoutDurationInHours") {
            None | Some(Value::Null) => 24,
            Some(v) => match v.as_u64() {
                Some(h @ 24..=168) => h as u32,
                _ => {
                    return Err(AwsError::validation(
                        "timeoutDurationInHours must be between 24 and 168.",
                    ));
                }
            },
        };
        let job = Job {
            arn: format!(
                "arn:aws:bedrock:{}:{}:model-invocation-job/{id}",
                ctx.region, ctx.account_id
            ),
            id: id.clone(),
            name: name.to_owned(),
            model_id: model_id.to_owned(),
            role_arn: input["roleArn"].as_str().unwrap_or_default().to_owned(),
            token: token.map(str::to_owned),
            status: "Submitted".into(),
            message: None,
            input: input["inputDataConfig"].clone(),
            output: input["outputDataConfig"].clone(),
            timeout_hours,
            submit_ms: now,
            modified_ms: now,
            end_ms: None,
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            files_done: 0,
            file_progress: 0,
            total: 0,
            processed: 0,
            success: 0,
            errors: 0,
            input_tokens: 0,
            output_tokens: 0,
        };
        let key = Self::key(ctx, &id);
        let value = serde_json::to_vec(&job).map_err(|e| AwsError::internal(e.to_string()))?;
        self.state.batch(&[
            WriteOp::Put {
                table: JOBS.into(),
                key: key.clone(),
                value,
            },
            WriteOp::Enqueue {
                queue: QUEUE.into(),
                id: key,
                payload: Vec::new(),
                due_ms: now,
            },
        ])?;
        self.wake.notify_one();
        Ok(json!({"jobArn": job.arn}))
    }

    pub fn get(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let (_, job) = self.load(ctx, input["jobIdentifier"].as_str().unwrap_or_default())?;
        Ok(job.document())
    }

    pub fn list(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let mut jobs = self.all(ctx)?;
        let after = input["submitTimeAfter"].as_f64();
        let before = input["submitTimeBefore"].as_f64();
        jobs.retain(|j| {
            input["statusEquals"].as_str().is_none_or(|s| j.status == s)
                && input["nameContains"]
                    .as_str()
                    .is_none_or(|n| j.name.contains(n))
                && after.is_none_or(|t| secs(j.submit_ms) > t)
                && before.is_none_or(|t| secs(j.submit_ms) < t)
        });
        jobs.sort_by_key(|j| (j.submit_ms, j.id.clone()));
        if input["sortOrder"].as_str() != Some("Ascending") {
            jobs.reverse();
        }
        let max = input["maxResults"].as_u64().unwrap_or(1000).clamp(1, 1000) as usize;
        let (page, next) =
            basalt_store::paging::page_slice(&jobs, input["nextToken"].as_str(), max)?;
        let page: Vec<Value> = page.iter().map(Job::document).collect();
        let mut out = json!({"invocationJobSummaries": page});
        if let Some(next) = next {
            out["nextToken"] = next.into();
        }
        Ok(out)
    }

    pub fn stop(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let identifier = input["jobIdentifier"].as_str().unwrap_or_default();
        let (key, mut job) = self.load(ctx, identifier)?;
        if !job.running() {
            return Err(conflict(format!(
                "The job {} is {} and cannot be stopped.",
                job.id, job.status
            )));
        }
        job.status = "Stopping".into();
        job.modified_ms = self.state.now_ms();
        self.state.put(
            JOBS,
            &key,
            &serde_json::to_vec(&job).map_err(|e| AwsError::internal(e.to_string()))?,
        )?;
        Ok(json!({}))
    }

    pub fn start_worker(self: &Arc<Self>) {
        let this = self.clone();
        basalt_store::Worker {
            state: self.state.clone(),
            queue: QUEUE,
            lease_ms: LEASE_MS,
            batch: 1,
            idle: std::time::Duration::from_secs(2),
            wake: self.wake.clone(),
        }
        .spawn(move |claims| {
            let this = this.clone();
            async move {
                for claim in claims {
                    this.run(claim).await;
                }
            }
        });
    }

    /// Saves `job` unless it was asked to stop (then it becomes Stopped) or is gone; renews
    /// the lease. `Ok(false)`: stop working on it.
    fn save(&self, claim: &mut Claim, job: &mut Job) -> Result<bool, StoreError> {
        job.modified_ms = self.state.now_ms();
        let key = claim.id.clone();
        let saved = basalt_store::save_leased(
            self.state.as_ref(),
            claim,
            LEASE_MS,
            JOBS,
            &key,
            |raw| {
                serde_json::from_slice::<Job>(raw).is_ok_and(|stored| stored.status != "Stopping")
            },
            || serde_json::to_vec(job).unwrap_or_default(),
        )?;
        Ok(saved == basalt_store::Saved::Saved)
    }

    fn finish(&self, claim: &Claim, job: &mut Job, status: &str, message: Option<String>) {
        job.status = status.into();
        job.message = message;
        let now = self.state.now_ms();
        job.modified_ms = now;
        job.end_ms = Some(now);
        let ops = [WriteOp::Put {
            table: JOBS.into(),
            key: claim.id.clone(),
            value: serde_json::to_vec(job).unwrap_or_default(),
        }];
        if let Err(e) = self.state.complete(claim, &ops) {
            tracing::warn!(job = %job.id, "could not record the end of a batch job: {e}");
        }
    }

    async fn run(&self, mut claim: Claim) {
        let mut job: Job = match self.state.get(JOBS, &claim.id) {
            Ok(Some(raw)) => match serde_json::from_slice(&raw) {
                Ok(j) => j,
                Err(_) => return drop(self.state.complete(&claim, &[])),
            },
            Ok(None) => return drop(self.state.complete(&claim, &[])),
            Err(_) => return,
        };
        if job.status == "Stopping" {
            return self.finish(&claim, &mut job, "Stopped", None);
        }
        if !job.running() {
            return drop(self.state.complete(&claim, &[]));
        }
        match self.work(&mut claim, &mut job).await {
            Ok(true) => {
                let (status, message) = match (job.success, job.errors) {
                    (_, 0) => ("Completed", None),
                    (0, _) => (
                        "Failed",
                        Some(
                            "Every record failed; see the output files for each record's error."
                                .to_owned(),
                        ),
                    ),
                    _ => ("PartiallyCompleted", None),
                };
                self.finish(&claim, &mut job, status, message);
            }
            Ok(false) => {
                // Stopped, or gone: a stop leaves the job Stopped.
                if let Ok(Some(raw)) = self.state.get(JOBS, &claim.id)
                    && let Ok(mut stored) = serde_json::from_slice::<Job>(&raw)
                    && stored.status == "Stopping"
                {
                    stored.processed = job.processed;
                    stored.file_progress = 0;
                    stored.success = job.success;
                    stored.errors = job.errors;
                    return self.finish(&claim, &mut stored, "Stopped", None);
                }
                let _ = self.state.complete(&claim, &[]);
            }
            Err(message) if message == EXPIRED => {
                let message = format!(
                    "The job reached its timeout of {} hours before it finished; the output holds the records processed until then.",
                    job.timeout_hours
                );
                self.finish(&claim, &mut job, "Expired", Some(message))
            }
            Err(message) => self.finish(&claim, &mut job, "Failed", Some(message)),
        }
    }

    /// Runs the job's remaining input files. `Ok(true)` when all are done.
    async fn work(&self, claim: &mut Claim, job: &mut Job) -> Result<bool, String> {
        let registry = self
            .registry
            .get()
            .ok_or("the runtime is not wired to batch inference")?;
        let ctx = RequestContext::internal(&job.account, &job.region, "http://localhost");
        let in_uri = job.input["s3InputDataConfig"]["s3Uri"]
            .as_str()
            .unwrap_or_default();
        let out_uri = job.output["s3OutputDataConfig"]["s3Uri"]
            .as_str()
            .unwrap_or_default();
        let (in_bucket, in_key) = s3_uri(in_uri, "input").map_err(|e| e.message)?;
        let (out_bucket, out_prefix) = s3_uri(out_uri, "output").map_err(|e| e.message)?;
        // A file, or every .jsonl file under a prefix.
        let files: Vec<String> = if in_key.ends_with(".jsonl") {
            vec![in_key.clone()]
        } else {
            self.objects
                .list(&job.account, &in_bucket, &in_key)?
                .ok_or_else(|| format!("The input bucket {in_bucket} does not exist."))?
                .into_iter()
                .filter(|k| k.ends_with(".jsonl"))
                .collect()
        };
        if files.is_empty() {
            return Err(format!("No .jsonl input files were found at {in_uri}."));
        }
        let out_dir = format!(
            "{}{}{}",
            out_prefix,
            if out_prefix.is_empty() || out_prefix.ends_with('/') {
                ""
            } else {
                "/"
            },
            job.id
        );
        if job.status != "InProgress" {
            job.status = "InProgress".into();
            if !self.save(claim, job).map_err(|e| e.to_string())? {
                return Ok(false);
            }
        }
        for (i, file) in files.iter().enumerate().skip(job.files_done) {
            job.file_progress = 0;
            let raw = self
                .objects
                .read(&job.account, &in_bucket, file)?
                .ok_or_else(|| format!("The input file s3://{in_bucket}/{file} does not exist."))?;
            let text = String::from_utf8_lossy(&raw);
            let mut out = String::new();
            let (mut ok, mut bad, mut tin, mut tout) = (0u64, 0u64, 0u64, 0u64);
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                if self.state.now_ms() >= job.expires_ms() {
                    self.expire(job, &out_bucket, &out_dir, file, out, (ok, bad, tin, tout))
                        .await?;
                    return Err(EXPIRED.into());
                }
                let record: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                let record_id = record["recordId"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{:011}", n + 1));
                let mut result = json!({"recordId": record_id, "modelInput": record["modelInput"]});
                match self.invoke(registry, &ctx, &job.model_id, &record).await {
                    Ok((output, i_tokens, o_tokens)) => {
                        result["modelOutput"] = output;
                        ok += 1;
                        tin += i_tokens;
                        tout += o_tokens;
                    }
                    Err(e) => {
                        result["error"] = json!({"errorCode": 400, "errorMessage": e});
                        bad += 1;
                    }
                }
                out.push_str(&result.to_string());
                out.push('\n');
                if (ok + bad) % 10 == 0 {
                    // Keep the lease while a long file runs, and notice a stop.
                    let mut progress = job.clone();
                    progress.file_progress = ok + bad;
                    if !self.save(claim, &mut progress).map_err(|e| e.to_string())? {
                        job.processed += ok + bad;
                        job.success += ok;
                        job.errors += bad;
                        return Ok(false);
                    }
                }
            }
            self.write_output(job, &out_bucket, &out_dir, file, out)
                .await?;
            job.files_done = i + 1;
            job.count_file((ok, bad, tin, tout));
            if !self.save(claim, job).map_err(|e| e.to_string())? {
                return Ok(false);
            }
        }
        self.write_manifest(job, &out_bucket, &out_dir).await?;
        Ok(true)
    }

    /// Ends an expired job's work: the records of `file` done so far are its output, and the
    /// manifest counts what was processed.
    async fn expire(
        &self,
        job: &mut Job,
        out_bucket: &str,
        out_dir: &str,
        file: &str,
        out: String,
        (ok, bad, tin, tout): (u64, u64, u64, u64),
    ) -> Result<(), String> {
        if ok + bad > 0 {
            self.write_output(job, out_bucket, out_dir, file, out)
                .await?;
        }
        job.count_file((ok, bad, tin, tout));
        self.write_manifest(job, out_bucket, out_dir).await
    }

    /// `{out_dir}/{input file name}.out`.
    async fn write_output(
        &self,
        job: &Job,
        out_bucket: &str,
        out_dir: &str,
        file: &str,
        out: String,
    ) -> Result<(), String> {
        let name = file.rsplit('/').next().unwrap_or(file);
        let key = format!("{out_dir}/{name}.out");
        if !self
            .objects
            .write(&job.account, out_bucket, &key, out.into_bytes())
            .await?
        {
            return Err(format!("The output bucket {out_bucket} does not exist."));
        }
        Ok(())
    }

    async fn write_manifest(
        &self,
        job: &Job,
        out_bucket: &str,
        out_dir: &str,
    ) -> Result<(), String> {
        let manifest = json!({
            "totalRecordCount": job.total, "processedRecordCount": job.processed,
            "successRecordCount": job.success, "errorRecordCount": job.errors,
            "inputTokenCount": job.input_tokens, "outputTokenCount": job.output_tokens,
        });
        self.objects
            .write(
                &job.account,
                out_bucket,
                &format!("{out_dir}/manifest.json.out"),
                manifest.to_string().into_bytes(),
            )
            .await?;
        Ok(())
    }

    /// One record through InvokeModel: its output body and token counts, or the error.
    async fn invoke(
        &self,
        registry: &ServiceRegistry,
        ctx: &RequestContext,
        model_id: &str,
        record: &Value,
    ) -> Result<(Value, u64, u64), String> {
        let body = record
            .get("modelInput")
            .filter(|b| b.is_object())
            .ok_or("The record has no modelInput object.")?;
        let input = json!({
            "modelId": model_id,
            "contentType": "application/json",
            "accept": "application/json",
            "body": B64.encode(body.to_string()),
        });
        let out = registry
            .call(ctx, "bedrock-runtime", "InvokeModel", input)
            .await
            .map_err(|e| format!("{}: {}", e.code, e.message))?;
        let bytes = out.body["body"]
            .as_str()
            .and_then(|b| B64.decode(b).ok())
            .ok_or("The model returned no body.")?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let header = |name: &str| -> u64 {
            out.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            value,
            header("X-Amzn-Bedrock-Input-Token-Count"),
            header("X-Amzn-Bedrock-Output-Token-Count"),
        ))
    }
}
