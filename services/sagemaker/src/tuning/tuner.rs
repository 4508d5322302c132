//! The tuner: the node holding a tuning job's lease looks at it every second, refreshes its
//! training jobs, starts the next ones the strategy proposes, and ends it.

use super::search::{Range, ranges, seed_of};
use super::{Trial, Tuning};
use crate::Core;
use crate::records::{self, TUNING_JOBS};
use basalt_core::RequestContext;
use basalt_store::{Claim, WriteOp};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn start_worker(core: Arc<Core>) {
    crate::spawn_each(
        &core,
        super::QUEUE,
        crate::job_lease_ms(),
        &core.wake_tuning,
        |core, claim| async move {
            Tuner {
                core,
                claim,
                cursors: Default::default(),
            }
            .run()
            .await
        },
    );
}

struct Tuner {
    core: Arc<Core>,
    claim: Claim,
    /// How far each training job's log was read, and the objective values read so far: each
    /// look reads only the lines logged since (a node taking the tuner over reads them anew).
    cursors: parking_lot::Mutex<std::collections::HashMap<String, LogCursor>>,
}

/// A position in a training job's log: the last timestamp read and how many lines of that
/// timestamp were read, with the objective's values up to there.
#[derive(Debug, Clone, Default)]
struct LogCursor {
    last_ms: i64,
    at_last: usize,
    values: Vec<f64>,
}

impl Tuner {
    /// The writes that replace the tuning job's record with `job` if it is still `raw`.
    fn replace(&self, raw: Vec<u8>, job: &Tuning) -> [WriteOp; 2] {
        [
            WriteOp::Check {
                table: TUNING_JOBS.into(),
                key: self.claim.id.clone(),
                expected: Some(raw),
            },
            WriteOp::Put {
                table: TUNING_JOBS.into(),
                key: self.claim.id.clone(),
                value: serde_json::to_vec(job).unwrap_or_default(),
            },
        ]
    }

    fn read(&self) -> Option<(Tuning, Vec<u8>)> {
        let raw = self.core.state.get(TUNING_JOBS, &self.claim.id).ok()??;
        Some((serde_json::from_slice(&raw).ok()?, raw))
    }

    fn ctx(&self, job: &Tuning) -> RequestContext {
        RequestContext::internal(&job.account, &job.region, "http://localhost")
    }

    /// Adds to the stored record the trials `job` has and it lacks (their training jobs were
    /// started by a step whose write lost to a concurrent change).
    fn keep_trials(&self, job: &Tuning) {
        for _ in 0..8 {
            let Some((mut stored, raw)) = self.read() else {
                return;
            };
            let known: std::collections::HashSet<String> =
                stored.trials.iter().map(|t| t.name.clone()).collect();
            let missing: Vec<Trial> = (job.trials.iter())
                .filter(|t| !known.contains(&t.name))
                .cloned()
                .collect();
            // What early stopping decided and read stays, whatever else changed.
            let mut changed = !missing.is_empty();
            for t in &mut stored.trials {
                if let Some(mine) = job.trials.iter().find(|m| m.name == t.name) {
                    let before = (t.early_stopped, t.rungs_passed, t.series_read);
                    t.early_stopped |= mine.early_stopped;
                    t.rungs_passed = t.rungs_passed.max(mine.rungs_passed);
                    t.series_read |= mine.series_read;
                    if t.series.len() < mine.series.len() {
                        t.series = mine.series.clone();
                        changed = true;
                    }
                    changed |= before != (t.early_stopped, t.rungs_passed, t.series_read);
                }
            }
            if !changed {
                return;
            }
            stored.trials.extend(missing);
            let written = self.core.state.batch(&self.replace(raw, &stored));
            if !matches!(written, Err(basalt_store::StoreError::Conflict)) {
                return;
            }
        }
    }

    /// The training job's state as DescribeTrainingJob gives it.
    fn refresh(&self, job: &Tuning, t: &mut Trial) {
        let Ok(d) = crate::training::describe(
            &self.core,
            &self.ctx(job),
            &json!({"TrainingJobName": t.name}),
        ) else {
            return;
        };
        t.status = d["TrainingJobStatus"]
            .as_str()
            .unwrap_or(&t.status)
            .to_owned();
        t.start_ms = d["TrainingStartTime"].as_f64().map(|s| (s * 1000.0) as i64);
        t.end_ms = d["TrainingEndTime"].as_f64().map(|s| (s * 1000.0) as i64);
        t.failure = d["FailureReason"].as_str().map(str::to_owned);
        let objective = job.objective_name();
        // The final metrics count once the job completed (they appear while it uploads).
        if t.status != "Completed" {
            t.objective = None;
            return;
        }
        t.objective = (d["FinalMetricDataList"].as_array().into_iter().flatten())
            .find(|m| m["MetricName"].as_str() == Some(objective))
            .and_then(|m| m["Value"].as_f64());
    }

    /// Starts the next training job; `Ok(false)` when the strategy has none left.
    fn launch(&self, job: &mut Tuning, ranges: &[Range]) -> Result<bool, String> {
        let Some((unit, tuned)) = job.propose(ranges) else {
            return Ok(false);
        };
        let index = job.trials.len() + 1;
        let hash = format!("{:08x}", seed_of(&job.arn, index) as u32);
        let name = format!("{}-{index:03}-{hash}", job.name);
        let def = job
            .request
            .get("TrainingJobDefinition")
            .cloned()
            .unwrap_or_default();
        let mut hyper = def["StaticHyperParameters"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        hyper.extend(tuned.clone());
        let mut input = json!({
            "TrainingJobName": name, "HyperParameters": hyper, "TuningJobArn": job.arn,
        });
        for k in [
            "AlgorithmSpecification",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
            "VpcConfig",
            "EnableNetworkIsolation",
            "EnableInterContainerTrafficEncryption",
            "EnableManagedSpotTraining",
            "CheckpointConfig",
            "Environment",
        ] {
            if let Some(v) = def.get(k) {
                input[k] = v.clone();
            }
        }
        let arn = match crate::training::create(&self.core, &self.ctx(job), &input) {
            Ok(out) => out["TrainingJobArn"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            // Started already, by a node that died before recording it.
            Err(e) if e.code == "ResourceInUse" => {
                records::arn(&self.ctx(job), "training-job", &name)
            }
            Err(e) => return Err(e.message),
        };
        job.trials.push(Trial {
            name,
            arn,
            tuned,
            unit,
            status: "InProgress".into(),
            created_ms: self.core.now_ms(),
            start_ms: None,
            end_ms: None,
            objective: None,
            failure: None,
            series: Vec::new(),
            early_stopped: false,
            rungs_passed: 0,
            series_read: false,
        });
        Ok(true)
    }

    /// One look at the job: refresh its training jobs, start more or end it. `false` when
    /// it ended.
    fn step(&self, job: &mut Tuning) -> bool {
        let snapshot = job.clone();
        for t in job.trials.iter_mut().filter(|t| !t.ended()) {
            self.refresh(&snapshot, t);
        }
        let running = job.trials.iter().filter(|t| !t.ended()).count();
        let now = self.core.now_ms();
        let limit_s = job.config()["ResourceLimits"]["MaxRuntimeInSeconds"].as_i64();
        let target =
            job.config()["TuningJobCompletionCriteria"]["TargetObjectiveMetricValue"].as_f64();
        let reached = target
            .zip(job.best().and_then(|b| b.objective))
            .is_some_and(|(t, v)| if job.maximize() { v >= t } else { v <= t });
        let timed_out = limit_s.is_some_and(|s| now - job.created_ms >= s * 1000);
        if job.status == "Stopping" || reached || timed_out {
            for t in job.trials.iter().filter(|t| !t.ended()) {
                let _ = crate::training::stop(
                    &self.core,
                    &self.ctx(&snapshot),
                    &json!({"TrainingJobName": t.name}),
                );
            }
            if running == 0 {
                job.status = if job.status == "Stopping" {
                    "Stopped".into()
                } else {
                    "Completed".into()
                };
                return false;
            }
            return true;
        }
        let ranges = ranges(job.config()).unwrap_or_default();
        let (parallel, total) = job.limits();
        let mut running = running;
        let mut exhausted = false;
        while running < parallel && job.trials.len() < total {
            match self.launch(job, &ranges) {
                Ok(true) => running += 1,
                Ok(false) => {
                    exhausted = true;
                    break;
                }
                Err(reason) => {
                    job.failure = Some(format!("A training job could not be created: {reason}"));
                    job.status = "Failed".into();
                    return false;
                }
            }
        }
        if running == 0 && (exhausted || job.trials.len() >= total) {
            if job.best().is_some() {
                job.status = "Completed".into();
            } else {
                job.status = "Failed".into();
                job.failure = Some(
                    "No training job completed with the objective metric; see the training jobs' FailureReason."
                        .into(),
                );
            }
            return false;
        }
        true
    }

    /// The lines a training job logged so far (CloudWatch Logs, `/aws/sagemaker/TrainingJobs`).
    async fn log_lines(&self, job: &Tuning, training: &str, from_ms: i64) -> Vec<(i64, String)> {
        let Some(registry) = self.core.registry() else {
            return Vec::new();
        };
        let ctx = self.ctx(job);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({
                "logGroupName": "/aws/sagemaker/TrainingJobs",
                "logStreamNamePrefix": format!("{training}/"),
            });
            if from_ms > 0 {
                input["startTime"] = from_ms.into();
            }
            if let Some(t) = &token {
                input["nextToken"] = t.clone().into();
            }
            let Ok(page) = registry.call(&ctx, "logs", "FilterLogEvents", input).await else {
                break;
            };
            for e in page.body["events"].as_array().into_iter().flatten() {
                out.push((
                    e["timestamp"].as_i64().unwrap_or(0),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            match page.body["nextToken"].as_str() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_owned())
                }
                _ => break,
            }
        }
        out
    }

    /// The objective at each epoch of a training job, from its log.
    async fn series(&self, job: &Tuning, training: &str) -> Vec<f64> {
        let mut cursor = self
            .cursors
            .lock()
            .get(training)
            .cloned()
            .unwrap_or_default();
        let lines = self.log_lines(job, training, cursor.last_ms).await;
        // Lines of the last timestamp read were read then (`startTime` includes it).
        let mut seen = cursor.at_last;
        let fresh: Vec<(i64, String)> = lines
            .into_iter()
            .filter(|(ms, _)| {
                let old = *ms < cursor.last_ms || (*ms == cursor.last_ms && seen > 0);
                if *ms == cursor.last_ms && seen > 0 {
                    seen -= 1;
                }
                !old
            })
            .collect();
        for (ms, _) in &fresh {
            if *ms == cursor.last_ms {
                cursor.at_last += 1;
            } else {
                cursor.last_ms = *ms;
                cursor.at_last = 1;
            }
        }
        cursor.values.extend(crate::training::metric_series(
            &self.core,
            &self.ctx(job),
            training,
            job.objective_name(),
            &fresh,
        ));
        let values = cursor.values.clone();
        self.cursors.lock().insert(training.to_owned(), cursor);
        values
    }

    /// Stops the running training jobs that the median stopping rule (early stopping `Auto`)
    /// or successive halving (Hyperband) gives up on.
    async fn stop_early(&self, job: &mut Tuning) {
        // Every job's objective per epoch: running jobs' as far as they got, ended jobs' once.
        for i in 0..job.trials.len() {
            let t = &job.trials[i];
            let running = t.status == "InProgress" || t.status == "Stopping";
            if running || (t.ended() && !t.series_read) {
                let series = self.series(job, &t.name).await;
                let t = &mut job.trials[i];
                t.series = series;
                // An ended job's log is read once (its series may well be empty).
                t.series_read = t.ended();
            }
        }
        let maximize = job.maximize();
        let hyperband = job.strategy() == "Hyperband";
        let rungs: Vec<usize> = job.rungs().collect();
        let snapshot = job.clone();
        let completed: Vec<&[f64]> = snapshot
            .trials
            .iter()
            .filter(|t| t.status == "Completed")
            .map(|t| t.series.as_slice())
            .collect();
        for i in 0..job.trials.len() {
            if job.trials[i].status != "InProgress" || job.trials[i].early_stopped {
                continue;
            }
            let name = job.trials[i].name.clone();
            let series = &snapshot.trials[i].series;
            let Some(&current) = series.last() else {
                continue;
            };
            let stop = if hyperband {
                // Each rung the job reached since the last look, judged once, in order.
                let mut stop = false;
                while let Some(&r) = rungs.get(job.trials[i].rungs_passed) {
                    if r > series.len() {
                        break;
                    }
                    let others: Vec<f64> = snapshot
                        .trials
                        .iter()
                        .enumerate()
                        .filter(|(j, t)| *j != i && t.series.len() >= r)
                        .map(|(_, t)| t.series[r - 1])
                        .collect();
                    if !super::promoted(&others, series[r - 1], maximize) {
                        stop = true;
                        break;
                    }
                    job.trials[i].rungs_passed += 1;
                }
                stop
            } else {
                super::worse_than_median(&completed, series.len(), current, maximize) == Some(true)
            };
            if stop {
                tracing::info!(tuning_job = %job.name, training_job = %name, epoch = series.len(), "early stopping");
                let _ = crate::training::stop(
                    &self.core,
                    &self.ctx(&snapshot),
                    &json!({"TrainingJobName": name}),
                );
                job.trials[i].early_stopped = true;
            }
        }
    }

    async fn run(self) {
        loop {
            let Some((mut job, raw)) = self.read() else {
                return drop(self.core.state.complete(&self.claim, &[]));
            };
            if !matches!(job.status.as_str(), "InProgress" | "Stopping") {
                return drop(self.core.state.complete(&self.claim, &[]));
            }
            let going = self.step(&mut job);
            if going && (job.early_stopping() || job.strategy() == "Hyperband") {
                self.stop_early(&mut job).await;
            }
            job.modified_ms = self.core.now_ms();
            if !going {
                job.end_ms = Some(job.modified_ms);
            }
            let ops = self.replace(raw, &job);
            let written = if going {
                self.core.state.batch(&ops)
            } else {
                self.core.state.complete(&self.claim, &ops)
            };
            match written {
                // A stop came meanwhile: keep the training jobs this step started (they
                // run) in the record as it is now, then look again.
                Err(basalt_store::StoreError::Conflict) => {
                    self.keep_trials(&job);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(job = %job.name, "tuning job: {e}");
                    return;
                }
                Ok(()) if !going => return,
                Ok(()) => {}
            }
            let now = self.core.now_ms();
            if self
                .core
                .state
                .renew(&self.claim, now, crate::job_lease_ms())
                .is_err()
            {
                return; // another node holds it now
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.core.wake_tuning.notified() => {}
            }
        }
    }
}
