//! Hyperparameter tuning jobs: CreateHyperParameterTuningJob, Describe, List, Stop and
//! ListTrainingJobsForHyperParameterTuningJob.
//!
//! A tuning job is a record and an item on the leases (queue [`QUEUE`]); the node that holds
//! it runs the tuner: every second it reads its training jobs (real training jobs, made from
//! TrainingJobDefinition with the static hyperparameters and the tuned ones, named
//! `{tuning job}-{NNN}-{8 hex}` as SageMaker names them), keeps the best by the objective
//! metric of their FinalMetricDataList, and starts new ones up to MaxParallelTrainingJobs and
//! MaxNumberOfTrainingJobs. Strategies:
//! * **Random**: every parameter drawn on its scale (Linear, Logarithmic, ReverseLogarithmic);
//! * **Grid**: every combination of the categorical ranges, in order;
//! * **Bayesian**: a Gaussian process (RBF kernel over the parameters' unit scale) fitted to
//!   the completed jobs' objective, the next job where expected improvement is highest over
//!   random candidates; the first jobs are random.
//!
//! Draws come from a generator seeded by RandomSeed (or the job's name) and the job's index,
//! so a tuner taken over by another node proposes what the first would have.
//!
//! * **Hyperband**: random configurations, each stopped early by asynchronous successive
//!   halving: rungs at MinResource × 3^k epochs (up to MaxResource); a job that reaches a
//!   rung goes on only if its objective there is among the best third of every job's that
//!   reached it (the first to reach a rung always goes on).
//!
//! TrainingJobEarlyStoppingType `Auto` applies SageMaker's median stopping rule: after each
//! epoch a running job reports (each value of the objective metric its log shows so far,
//! read from CloudWatch Logs), its value is compared with the median of the completed jobs'
//! running averages of the objective up to the same epoch; a job doing worse is stopped
//! (status Stopped). The rule waits for [`MIN_COMPLETED`] completed jobs to compare with.

use crate::records::{self, Listed, TUNING_JOBS, secs};
use crate::{Core, in_use};
use basalt_core::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

mod search;
mod tuner;

use search::{Range, Rng, expected_improvement, grid_point, grid_size, ranges, seed_of};
pub(crate) use tuner::start_worker;

pub const QUEUE: &str = "sagemaker.tuning";
/// The most combinations a Grid search may try (each one a training job).
const MAX_GRID: usize = 10_000;
/// Completed jobs early stopping needs before it stops anything: a median of fewer is noise.
const MIN_COMPLETED: usize = 3;
/// Hyperband's reduction factor: a third of the jobs at a rung go on to the next.
const ETA: usize = 3;

/// Successive halving at a rung: whether a job whose objective at the rung is `current` is
/// among the best `1/ETA` of `others` (every other job's objective at the same rung).
fn promoted(others: &[f64], current: f64, maximize: bool) -> bool {
    let better = others
        .iter()
        .filter(|v| {
            if maximize {
                **v > current
            } else {
                **v < current
            }
        })
        .count();
    let reached = others.len() + 1;
    better < (reached / ETA).max(1)
}

/// The median stopping rule: whether a job whose objective reads `current` after epoch `n`
/// (1-based) does worse than the median of the completed jobs' running averages up to epoch
/// `n`. `None` while too few completed jobs reached epoch `n`.
fn worse_than_median(completed: &[&[f64]], n: usize, current: f64, maximize: bool) -> Option<bool> {
    let mut averages: Vec<f64> = completed
        .iter()
        .filter(|s| s.len() >= n && n > 0)
        .map(|s| s[..n].iter().sum::<f64>() / n as f64)
        .collect();
    if averages.len() < MIN_COMPLETED {
        return None;
    }
    averages.sort_by(f64::total_cmp);
    let mid = averages.len() / 2;
    let median = if averages.len().is_multiple_of(2) {
        (averages[mid - 1] + averages[mid]) / 2.0
    } else {
        averages[mid]
    };
    Some(if maximize {
        current < median
    } else {
        current > median
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trial {
    name: String,
    arn: String,
    /// The tuned hyperparameters, as strings.
    tuned: Map<String, Value>,
    /// Where the draw sits on each parameter's unit scale (what the Gaussian process sees).
    unit: Vec<f64>,
    status: String,
    created_ms: i64,
    #[serde(default)]
    start_ms: Option<i64>,
    #[serde(default)]
    end_ms: Option<i64>,
    #[serde(default)]
    objective: Option<f64>,
    #[serde(default)]
    failure: Option<String>,
    /// The objective metric at each epoch of a completed job, as its log showed it (what
    /// early stopping compares running jobs with).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    series: Vec<f64>,
    /// Stopped by early stopping (TrainingJobEarlyStoppingType `Auto`) or by Hyperband.
    #[serde(default)]
    early_stopped: bool,
    /// Hyperband: the rungs the job was promoted past (each judged once, when reached).
    #[serde(default)]
    rungs_passed: usize,
    /// The ended job's log was read into `series` (which may be empty).
    #[serde(default)]
    series_read: bool,
}

impl Trial {
    fn ended(&self) -> bool {
        matches!(self.status.as_str(), "Completed" | "Failed" | "Stopped")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tuning {
    name: String,
    arn: String,
    account: String,
    region: String,
    /// The request's members as given (but Tags and the name), echoed by Describe.
    request: Map<String, Value>,
    status: String,
    #[serde(default)]
    failure: Option<String>,
    created_ms: i64,
    modified_ms: i64,
    #[serde(default)]
    end_ms: Option<i64>,
    #[serde(default)]
    trials: Vec<Trial>,
}

impl Tuning {
    fn config(&self) -> &Value {
        self.request
            .get("HyperParameterTuningJobConfig")
            .unwrap_or(&Value::Null)
    }

    fn strategy(&self) -> &str {
        self.config()["Strategy"].as_str().unwrap_or("Bayesian")
    }

    /// TrainingJobEarlyStoppingType `Auto`: training jobs that do worse than the median of
    /// the others at the same epoch are stopped.
    fn early_stopping(&self) -> bool {
        self.config()["TrainingJobEarlyStoppingType"].as_str() == Some("Auto")
    }

    /// Hyperband's rungs, in epochs: MinResource × 3^k, up to MaxResource.
    fn rungs(&self) -> impl Iterator<Item = usize> + '_ {
        let h = &self.config()["StrategyConfig"]["HyperbandStrategyConfig"];
        let min = h["MinResource"].as_u64().unwrap_or(1).max(1) as usize;
        let max = h["MaxResource"].as_u64().map_or(usize::MAX, |m| m as usize);
        std::iter::successors(Some(min), |r| r.checked_mul(ETA)).take_while(move |r| *r <= max)
    }

    fn maximize(&self) -> bool {
        self.config()["HyperParameterTuningJobObjective"]["Type"].as_str() != Some("Minimize")
    }

    fn objective_name(&self) -> &str {
        self.config()["HyperParameterTuningJobObjective"]["MetricName"]
            .as_str()
            .unwrap_or_default()
    }

    fn limits(&self) -> (usize, usize) {
        let l = &self.config()["ResourceLimits"];
        let parallel = l["MaxParallelTrainingJobs"].as_u64().unwrap_or(1).max(1) as usize;
        let total = match l["MaxNumberOfTrainingJobs"].as_u64() {
            Some(n) => n as usize,
            None if self.strategy() == "Grid" => usize::MAX,
            None => 500,
        };
        (parallel, total)
    }

    fn best(&self) -> Option<&Trial> {
        let better = |a: f64, b: f64| if self.maximize() { a > b } else { a < b };
        self.trials
            .iter()
            .filter(|t| t.status == "Completed")
            .filter(|t| t.objective.is_some())
            .fold(None, |best: Option<&Trial>, t| match best {
                Some(b) if !better(t.objective.unwrap_or(0.0), b.objective.unwrap_or(0.0)) => {
                    Some(b)
                }
                _ => Some(t),
            })
    }

    fn counters(&self) -> (Value, Value) {
        let count = |s: &str| self.trials.iter().filter(|t| t.status == s).count();
        let training = json!({
            "Completed": count("Completed"), "InProgress": count("InProgress") + count("Stopping"),
            "RetryableError": 0, "NonRetryableError": count("Failed"), "Stopped": count("Stopped"),
        });
        let succeeded = self.trials.iter().filter(|t| t.objective.is_some()).count();
        let pending = self.trials.iter().filter(|t| !t.ended()).count();
        let objective = json!({
            "Succeeded": succeeded, "Pending": pending,
            "Failed": self.trials.len().saturating_sub(succeeded + pending),
        });
        (training, objective)
    }

    fn trial_summary(&self, t: &Trial) -> Value {
        let mut v = json!({
            "TrainingJobName": t.name, "TrainingJobArn": t.arn, "TuningJobName": self.name,
            "CreationTime": secs(t.created_ms), "TrainingJobStatus": t.status,
            "TunedHyperParameters": t.tuned,
            "ObjectiveStatus": match (t.objective, t.ended()) {
                (Some(_), _) => "Succeeded",
                (None, true) => "Failed",
                (None, false) => "Pending",
            },
        });
        if let Some(s) = t.start_ms {
            v["TrainingStartTime"] = secs(s).into();
        }
        if let Some(e) = t.end_ms {
            v["TrainingEndTime"] = secs(e).into();
        }
        if let Some(f) = &t.failure {
            v["FailureReason"] = f.clone().into();
        }
        if let Some(o) = t.objective {
            v["FinalHyperParameterTuningJobObjectiveMetric"] = json!({
                "Type": if self.maximize() { "Maximize" } else { "Minimize" },
                "MetricName": self.objective_name(), "Value": o,
            });
        }
        v
    }

    fn describe(&self) -> Value {
        let mut v = Value::Object(self.request.clone());
        v["HyperParameterTuningJobName"] = self.name.clone().into();
        v["HyperParameterTuningJobArn"] = self.arn.clone().into();
        v["HyperParameterTuningJobStatus"] = self.status.clone().into();
        v["CreationTime"] = secs(self.created_ms).into();
        v["LastModifiedTime"] = secs(self.modified_ms).into();
        let (training, objective) = self.counters();
        v["TrainingJobStatusCounters"] = training;
        v["ObjectiveStatusCounters"] = objective;
        if let Some(b) = self.best() {
            v["BestTrainingJob"] = self.trial_summary(b);
        }
        if let Some(e) = self.end_ms {
            v["HyperParameterTuningEndTime"] = secs(e).into();
            v["ConsumedResources"] = json!({"RuntimeInSeconds": (e - self.created_ms) / 1000});
        }
        if let Some(f) = &self.failure {
            v["FailureReason"] = f.clone().into();
        }
        v
    }

    /// The next training job's (unit coordinates, tuned values), or `None` when the
    /// strategy has nothing left (Grid).
    fn propose(&self, ranges: &[Range]) -> Option<(Vec<f64>, Map<String, Value>)> {
        let index = self.trials.len();
        let seed = match self.config()["RandomSeed"].as_i64() {
            Some(s) => seed_of(&s.to_string(), index),
            None => seed_of(&self.name, index),
        };
        let mut rng = Rng(seed);
        let unit: Vec<f64> = match self.strategy() {
            "Grid" => grid_point(ranges, index)?,
            "Bayesian" => {
                let done: Vec<&Trial> = self
                    .trials
                    .iter()
                    .filter(|t| t.objective.is_some())
                    .collect();
                let mut random = || (0..ranges.len()).map(|_| rng.next()).collect::<Vec<f64>>();
                if done.len() < 3 || ranges.is_empty() {
                    random()
                } else {
                    let sign = if self.maximize() { 1.0 } else { -1.0 };
                    let xs: Vec<Vec<f64>> = done.iter().map(|t| t.unit.clone()).collect();
                    let ys: Vec<f64> = done
                        .iter()
                        .map(|t| sign * t.objective.unwrap_or(0.0))
                        .collect();
                    let mut candidates: Vec<Vec<f64>> = Vec::with_capacity(512);
                    let mut draw = Rng(seed ^ 0x5555);
                    for _ in 0..512 {
                        candidates.push((0..ranges.len()).map(|_| draw.next()).collect());
                    }
                    let ei = expected_improvement(&xs, &ys, &candidates);
                    let best = (0..candidates.len())
                        .max_by(|a, b| ei[*a].total_cmp(&ei[*b]))
                        .unwrap_or(0);
                    candidates.swap_remove(best)
                }
            }
            _ => (0..ranges.len()).map(|_| rng.next()).collect(),
        };
        let tuned = ranges
            .iter()
            .zip(&unit)
            .map(|(r, u)| (r.name().to_owned(), Value::String(r.at(*u))))
            .collect();
        Some((unit, tuned))
    }
}

impl Listed for Tuning {
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
        let (training, objective) = self.counters();
        let mut v = json!({
            "HyperParameterTuningJobName": self.name, "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobStatus": self.status, "Strategy": self.strategy(),
            "CreationTime": secs(self.created_ms), "LastModifiedTime": secs(self.modified_ms),
            "TrainingJobStatusCounters": training, "ObjectiveStatusCounters": objective,
            "ResourceLimits": self.config()["ResourceLimits"],
        });
        if let Some(e) = self.end_ms {
            v["HyperParameterTuningEndTime"] = secs(e).into();
        }
        v
    }
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFound",
        format!("Amazon SageMaker can't find a tuning job with name {name}"),
    )
}

pub(crate) fn create(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["HyperParameterTuningJobName"]
        .as_str()
        .unwrap_or_default();
    records::check_name("hyperParameterTuningJobName", name)?;
    if name.len() > 32 {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{name}' at 'hyperParameterTuningJobName' failed to satisfy constraint: Member must have length less than or equal to 32"
        )));
    }
    let arn = records::arn(ctx, "hyper-parameter-tuning-job", name);
    if records::load::<Tuning>(core.state.as_ref(), TUNING_JOBS, ctx, name)?.is_some() {
        return Err(in_use(format!(
            "A tuning job with name {name} already exists ({arn})."
        )));
    }
    let config = &input["HyperParameterTuningJobConfig"];
    let strategy = config["Strategy"].as_str().unwrap_or_default();
    let ranges = ranges(config)?;
    match strategy {
        "Bayesian" | "Random" => {}
        "Grid" => {
            if ranges
                .iter()
                .any(|r| !matches!(r, Range::Categorical { .. }))
            {
                return Err(AwsError::validation(
                    "The Grid strategy takes CategoricalParameterRanges only.",
                ));
            }
            if grid_size(&ranges) > MAX_GRID {
                return Err(AwsError::validation(format!(
                    "The categorical ranges make more than {MAX_GRID} combinations for the Grid strategy."
                )));
            }
        }
        "Hyperband" => {
            if config["TrainingJobEarlyStoppingType"].as_str() == Some("Auto") {
                return Err(AwsError::validation(
                    "The Hyperband strategy stops training jobs itself: TrainingJobEarlyStoppingType must be Off.",
                ));
            }
            let h = &config["StrategyConfig"]["HyperbandStrategyConfig"];
            let min = h["MinResource"].as_i64().unwrap_or(1);
            let max = h["MaxResource"].as_i64();
            if min < 1 || max.is_some_and(|m| m < min) {
                return Err(AwsError::validation(
                    "HyperbandStrategyConfig: MinResource must be at least 1 and at most MaxResource.",
                ));
            }
        }
        other => {
            return Err(AwsError::validation(format!(
                "Strategy {other} is not one of Bayesian, Random, Hyperband, Grid."
            )));
        }
    }
    if strategy != "Grid" && config["HyperParameterTuningJobObjective"]["MetricName"].is_null() {
        return Err(AwsError::validation(
            "HyperParameterTuningJobObjective is required by the Bayesian and Random strategies.",
        ));
    }
    let def = &input["TrainingJobDefinition"];
    if def.is_null() {
        return Err(AwsError::validation(
            if input["TrainingJobDefinitions"].is_null() {
                "TrainingJobDefinition is required."
            } else {
                "Basalt tunes one TrainingJobDefinition; TrainingJobDefinitions (several algorithms at once) is not supported yet."
            },
        ));
    }
    for r in &ranges {
        if def["StaticHyperParameters"].get(r.name()).is_some() {
            return Err(AwsError::validation(format!(
                "The hyperparameter {} is both static and tuned.",
                r.name()
            )));
        }
    }
    let mut request = input.as_object().cloned().unwrap_or_default();
    request.remove("Tags");
    request.remove("HyperParameterTuningJobName");
    let now = core.now_ms();
    let job = Tuning {
        name: name.to_owned(),
        arn: arn.clone(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        request,
        status: "InProgress".into(),
        failure: None,
        created_ms: now,
        modified_ms: now,
        end_ms: None,
        trials: Vec::new(),
    };
    records::create_job(
        core,
        ctx,
        TUNING_JOBS,
        QUEUE,
        name,
        &job,
        &arn,
        &input["Tags"],
        &core.wake_tuning,
    )?;
    Ok(json!({"HyperParameterTuningJobArn": arn}))
}

fn load(core: &Core, ctx: &RequestContext, name: &str) -> Result<Tuning, AwsError> {
    records::load(core.state.as_ref(), TUNING_JOBS, ctx, name)?.ok_or_else(|| not_found(name))
}

pub(crate) fn describe(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = input["HyperParameterTuningJobName"]
        .as_str()
        .unwrap_or_default();
    Ok(load(core, ctx, name)?.describe())
}

pub(crate) fn list(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let jobs: Vec<Tuning> = records::all(core.state.as_ref(), TUNING_JOBS, ctx)?;
    records::list_page(jobs, input, "HyperParameterTuningJobSummaries")
}

pub(crate) fn list_training_jobs(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = input["HyperParameterTuningJobName"]
        .as_str()
        .unwrap_or_default();
    let job = load(core, ctx, name)?;
    let mut trials: Vec<&Trial> = job
        .trials
        .iter()
        .filter(|t| input["StatusEquals"].as_str().is_none_or(|s| t.status == s))
        .collect();
    match input["SortBy"].as_str() {
        Some("Name") => trials.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("Status") => trials.sort_by(|a, b| a.status.cmp(&b.status)),
        Some("FinalObjectiveMetricValue") => {
            // Jobs without a value sort last whatever the order, as SageMaker lists them.
            trials.retain(|t| t.objective.is_some());
            trials.sort_by(|a, b| {
                a.objective
                    .unwrap_or(0.0)
                    .total_cmp(&b.objective.unwrap_or(0.0))
            });
        }
        _ => trials.sort_by_key(|t| (t.created_ms, t.name.clone())),
    }
    if input["SortOrder"].as_str() != Some("Ascending") {
        trials.reverse();
    }
    let max = input["MaxResults"].as_u64().unwrap_or(10).clamp(1, 100) as usize;
    let (page, next) = basalt_store::paging::page_slice(&trials, input["NextToken"].as_str(), max)?;
    let mut out = json!({
        "TrainingJobSummaries": page.iter().map(|t| job.trial_summary(t)).collect::<Vec<_>>(),
    });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(out)
}

pub(crate) fn stop(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["HyperParameterTuningJobName"]
        .as_str()
        .unwrap_or_default();
    let now = core.now_ms();
    records::update(
        core.state.as_ref(),
        TUNING_JOBS,
        ctx,
        name,
        |job: &mut Tuning| {
            if job.status != "InProgress" {
                return Err(AwsError::validation(format!(
                    "The hyperparameter tuning job {name} is {} and cannot be stopped.",
                    job.status
                )));
            }
            job.status = "Stopping".into();
            job.modified_ms = now;
            Ok(true)
        },
    )?
    .ok_or_else(|| not_found(name))?;
    core.wake_tuning.notify_one();
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A running tuning job with this `HyperParameterTuningJobConfig`.
    fn tuning(config: Value) -> Tuning {
        Tuning {
            name: "t".into(),
            arn: "arn".into(),
            account: "a".into(),
            region: "r".into(),
            request: json!({ "HyperParameterTuningJobConfig": config })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            status: "InProgress".into(),
            failure: None,
            created_ms: 0,
            modified_ms: 0,
            end_ms: None,
            trials: Vec::new(),
        }
    }

    #[test]
    fn the_median_rule_stops_what_does_worse_than_the_others_did() {
        let a = [0.9, 0.5, 0.3];
        let b = [0.8, 0.4, 0.2];
        let c = [1.0, 0.6, 0.4];
        let done: Vec<&[f64]> = vec![&a, &b, &c];
        // Minimizing: running averages after 2 epochs are 0.7, 0.6, 0.8; median 0.7.
        assert_eq!(worse_than_median(&done, 2, 0.75, false), Some(true));
        assert_eq!(worse_than_median(&done, 2, 0.65, false), Some(false));
        // Maximizing reverses it.
        assert_eq!(worse_than_median(&done, 2, 0.65, true), Some(true));
        // Past the epochs the completed jobs reached, or with too few of them: no verdict.
        assert_eq!(worse_than_median(&done, 4, 9.0, false), None);
        assert_eq!(worse_than_median(&done[..2], 1, 9.0, false), None);
    }

    #[test]
    fn successive_halving_keeps_the_best_third() {
        // The first job at a rung always goes on.
        assert!(promoted(&[], 9.0, false));
        // Two before it, both better: of three, one goes on, and it is not this one.
        assert!(!promoted(&[0.5, 0.6], 0.9, false));
        assert!(promoted(&[0.5, 0.6], 0.4, false));
        // Six before it: the best two of seven go on.
        let six = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        assert!(promoted(&six, 0.15, false));
        assert!(!promoted(&six, 0.25, false));
        assert!(promoted(&six, 0.65, true));
    }

    #[test]
    fn rungs_grow_by_three_up_to_max_resource() {
        let job = |h: Value| {
            tuning(json!({"Strategy": "Hyperband",
                "StrategyConfig": {"HyperbandStrategyConfig": h}}))
        };
        let rungs = |h| job(h).rungs().collect::<Vec<_>>();
        assert_eq!(
            rungs(json!({"MinResource": 1, "MaxResource": 30})),
            [1, 3, 9, 27]
        );
        assert_eq!(
            rungs(json!({"MinResource": 2, "MaxResource": 18})),
            [2, 6, 18]
        );
        assert_eq!(
            rungs(json!({"MinResource": 5, "MaxResource": 4})),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn proposals_repeat_for_the_same_job_and_seed() {
        let job = |seed: Option<i64>| {
            let mut config = json!({"Strategy": "Random", "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0", "MaxValue": "1"}]}});
            if let Some(s) = seed {
                config["RandomSeed"] = s.into();
            }
            tuning(config)
        };
        let rs = ranges(job(None).config()).unwrap();
        assert_eq!(job(Some(7)).propose(&rs), job(Some(7)).propose(&rs));
        assert_ne!(job(Some(7)).propose(&rs), job(Some(8)).propose(&rs));
    }
}
