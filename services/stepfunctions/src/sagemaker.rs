//! The optimized SageMaker integration, `arn:aws:states:::sagemaker:<api>[.sync]`: the API's
//! request as Parameters, SageMaker's response as the result; with `.sync` (training and
//! transform jobs) the task waits for the job to end and its result is the job's Describe
//! output, as Step Functions answers it (timestamps in epoch milliseconds). A job that fails
//! or is stopped fails the task with `States.TaskFailed` and the description as the cause; an
//! execution that ends while its job runs stops the job.
//!
//! A `.sync` task run again after its node died (kill -9) finds the job it started and waits
//! for it, instead of starting it twice: the job's name is recorded before it is created.

use std::time::Duration;

use basalt_core::{AwsError, RequestContext, ServiceRegistry};
use serde_json::{Value, json};

use crate::StepFunctions;
use crate::tasks::{Outcome, failed};

/// How often a `.sync` task asks SageMaker about its job.
const POLL: Duration = Duration::from_secs(1);
/// `{execution}#{task}` → the job a `.sync` task started, kept until the task ends.
const T_SYNC_JOBS: &str = "stepfunctions.sagemaker-jobs";

/// A job a `.sync` task can wait for: its operations and members.
struct Job {
    create: &'static str,
    describe: &'static str,
    stop: &'static str,
    name: &'static str,
    status: &'static str,
}

const TRAINING: Job = Job {
    create: "CreateTrainingJob",
    describe: "DescribeTrainingJob",
    stop: "StopTrainingJob",
    name: "TrainingJobName",
    status: "TrainingJobStatus",
};

const TRANSFORM: Job = Job {
    create: "CreateTransformJob",
    describe: "DescribeTransformJob",
    stop: "StopTransformJob",
    name: "TransformJobName",
    status: "TransformJobStatus",
};

const PROCESSING: Job = Job {
    create: "CreateProcessingJob",
    describe: "DescribeProcessingJob",
    stop: "StopProcessingJob",
    name: "ProcessingJobName",
    status: "ProcessingJobStatus",
};

const TUNING: Job = Job {
    create: "CreateHyperParameterTuningJob",
    describe: "DescribeHyperParameterTuningJob",
    stop: "StopHyperParameterTuningJob",
    name: "HyperParameterTuningJobName",
    status: "HyperParameterTuningJobStatus",
};

/// The SageMaker operation behind an optimized API name, and its job when `.sync` applies.
fn operation(api: &str) -> Result<(&'static str, Option<&'static Job>), (String, String)> {
    Ok(match api {
        "createTrainingJob" => ("CreateTrainingJob", Some(&TRAINING)),
        "createTransformJob" => ("CreateTransformJob", Some(&TRANSFORM)),
        "createProcessingJob" => ("CreateProcessingJob", Some(&PROCESSING)),
        "createHyperParameterTuningJob" => ("CreateHyperParameterTuningJob", Some(&TUNING)),
        "createModel" => ("CreateModel", None),
        "createEndpointConfig" => ("CreateEndpointConfig", None),
        "createEndpoint" => ("CreateEndpoint", None),
        "updateEndpoint" => ("UpdateEndpoint", None),
        "createLabelingJob" => {
            return Err((
                "States.Runtime".into(),
                format!("Basalt's SageMaker does not run {api} yet"),
            ));
        }
        other => {
            return Err((
                "States.Runtime".into(),
                format!("sagemaker:{other} is not an API of the optimized SageMaker integration"),
            ));
        }
    })
}

/// The error a failed SageMaker call gives the task: Step Functions names SageMaker's
/// modeled errors by their SDK exception and every other one `AmazonSageMakerException`,
/// with the service's details in the cause.
fn call_error(e: &AwsError) -> (String, String) {
    let name = match e.code.as_str() {
        "ResourceInUse" | "ResourceLimitExceeded" | "ResourceNotFound" => {
            format!("{}Exception", e.code)
        }
        _ => "AmazonSageMakerException".into(),
    };
    (
        format!("SageMaker.{name}"),
        format!(
            "{} (Service: AmazonSageMaker; Status Code: {}; Error Code: {})",
            e.message, e.status, e.code
        ),
    )
}

/// Performs `sagemaker:<api>`, waiting for the job when `sync`.
#[allow(clippy::too_many_arguments)]
pub async fn perform(
    sf: &StepFunctions,
    registry: &ServiceRegistry,
    ctx: &RequestContext,
    execution: &str,
    task: &str,
    api: &str,
    sync: bool,
    params: &Value,
) -> Outcome {
    let (op, job) = match operation(api) {
        Ok(o) => o,
        Err((error, cause)) => return failed(error, cause),
    };
    let job = match (sync, job) {
        (false, _) => None,
        (true, Some(job)) => Some(job),
        (true, None) => {
            return failed(
                "States.Runtime",
                format!("sagemaker:{api} does not support the .sync integration pattern"),
            );
        }
    };
    let Some(job) = job else {
        return match registry.call(ctx, "sagemaker", op, params.clone()).await {
            Ok(out) => Outcome::Done(Ok(millis(op, out.body))),
            Err(e) => Outcome::Done(Err(call_error(&e))),
        };
    };
    let Some(name) = params.get(job.name).and_then(Value::as_str) else {
        return failed(
            "States.Runtime",
            format!("The field '{}' is required", job.name),
        );
    };
    let record = format!("{execution}#{task}");
    let started = start_once(
        sf,
        registry,
        ctx,
        job,
        (execution, task),
        &record,
        name,
        params,
    );
    if let Err(outcome) = started.await {
        return outcome;
    }
    let outcome = wait(sf, registry, ctx, job, execution, name).await;
    let _ = sf.state.delete(T_SYNC_JOBS, &record);
    outcome
}

/// Creates the job, unless this task already did before its node died; records the
/// creation as the task's TaskSubmitted.
#[allow(clippy::too_many_arguments)]
async fn start_once(
    sf: &StepFunctions,
    registry: &ServiceRegistry,
    ctx: &RequestContext,
    job: &Job,
    (execution, task): (&str, &str),
    record: &str,
    name: &str,
    params: &Value,
) -> Result<(), Outcome> {
    let now = crate::model::now_ms();
    let store = |e: basalt_store::StoreError| failed("States.Runtime", e.to_string());
    if let Some(raw) = sf.state.get(T_SYNC_JOBS, record).map_err(store)? {
        let started: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let at = started["at_ms"].as_i64().unwrap_or(i64::MAX);
        // The job of that name is this task's if it was created after the record (a job of
        // the same name that was there before is someone else's, and the create fails).
        let desc = registry
            .call(ctx, "sagemaker", job.describe, json!({ job.name: name }))
            .await;
        if let Ok(d) = desc
            && d.body["CreationTime"]
                .as_f64()
                .is_some_and(|t| (t * 1000.0) as i64 >= at - 1_000)
        {
            return Ok(());
        }
    }
    let started = json!({"name": name, "at_ms": now});
    sf.state
        .put(T_SYNC_JOBS, record, started.to_string().as_bytes())
        .map_err(store)?;
    match registry
        .call(ctx, "sagemaker", job.create, params.clone())
        .await
    {
        Ok(answer) => {
            let _ = sf
                .state
                .batch(&[crate::tasks::submitted(execution, task, answer.body)]);
            sf.wake_events.notify_one();
            Ok(())
        }
        Err(e) => {
            let _ = sf.state.delete(T_SYNC_JOBS, record);
            Err(Outcome::Done(Err(call_error(&e))))
        }
    }
}

/// Polls the job until it ends, or stops it when the execution ended first.
async fn wait(
    sf: &StepFunctions,
    registry: &ServiceRegistry,
    ctx: &RequestContext,
    job: &Job,
    execution: &str,
    name: &str,
) -> Outcome {
    loop {
        tokio::time::sleep(POLL).await;
        let running = crate::executions::load(sf, execution).map(|e| e.status == "RUNNING");
        if let Ok(false) | Err(_) = running {
            let _ = registry
                .call(ctx, "sagemaker", job.stop, json!({ job.name: name }))
                .await;
            return failed("States.Runtime", "The execution ended while its job ran");
        }
        let desc = match registry
            .call(ctx, "sagemaker", job.describe, json!({ job.name: name }))
            .await
        {
            Ok(out) => millis(job.describe, out.body),
            Err(e) => return Outcome::Done(Err(call_error(&e))),
        };
        match desc[job.status].as_str() {
            Some("Completed") => return Outcome::Done(Ok(desc)),
            Some("Failed" | "Stopped") => return failed("States.TaskFailed", desc.to_string()),
            _ => {}
        }
    }
}

/// `out` of operation `op` with its timestamps in epoch milliseconds, as Step Functions'
/// integrations give them (SageMaker's JSON protocol sends epoch seconds).
fn millis(op: &str, out: Value) -> Value {
    let Ok(model) = basalt_spec::model("sagemaker") else {
        return out;
    };
    match model.operations.get(op).and_then(|o| o.output.as_ref()) {
        Some(r) => to_millis(&model, &r.shape, out),
        None => out,
    }
}

fn to_millis(model: &basalt_spec::ServiceModel, shape: &str, v: Value) -> Value {
    use basalt_spec::ShapeType;
    let Some(s) = model.shape(shape) else {
        return v;
    };
    match (s.kind, v) {
        (ShapeType::Timestamp, Value::Number(n)) => match n.as_f64() {
            Some(secs) => json!((secs * 1000.0).round() as i64),
            None => Value::Number(n),
        },
        (ShapeType::Structure, Value::Object(o)) => Value::Object(
            o.into_iter()
                .map(|(k, val)| {
                    let val = match s.members.get(&k) {
                        Some(r) => to_millis(model, &r.shape, val),
                        None => val,
                    };
                    (k, val)
                })
                .collect(),
        ),
        (ShapeType::List, Value::Array(items)) => match &s.member {
            Some(m) => Value::Array(
                items
                    .into_iter()
                    .map(|i| to_millis(model, &m.shape, i))
                    .collect(),
            ),
            None => Value::Array(items),
        },
        (ShapeType::Map, Value::Object(o)) => match &s.value {
            Some(m) => Value::Object(
                o.into_iter()
                    .map(|(k, val)| (k, to_millis(model, &m.shape, val)))
                    .collect(),
            ),
            None => Value::Object(o),
        },
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_output_timestamps_become_milliseconds() {
        let model = basalt_spec::model("sagemaker").unwrap();
        let out = to_millis(
            &model,
            "DescribeTrainingJobResponse",
            json!({
                "TrainingJobName": "j",
                "CreationTime": 1_700_000_000.25,
                "SecondaryStatusTransitions": [{"Status": "Starting", "StartTime": 1_700_000_001.5}],
                "FinalMetricDataList": [{"MetricName": "m", "Value": 0.5, "Timestamp": 1_700_000_002}],
            }),
        );
        assert_eq!(out["CreationTime"], json!(1_700_000_000_250i64));
        assert_eq!(
            out["SecondaryStatusTransitions"][0]["StartTime"],
            json!(1_700_000_001_500i64)
        );
        // A float that is not a timestamp stays as it is.
        assert_eq!(out["FinalMetricDataList"][0]["Value"], json!(0.5));
        assert_eq!(
            out["FinalMetricDataList"][0]["Timestamp"],
            json!(1_700_000_002_000i64)
        );
    }

    #[test]
    fn errors_are_named_as_step_functions_names_them() {
        let e = AwsError::new(400, "ValidationException", "bad name");
        let (error, cause) = call_error(&e);
        assert_eq!(error, "SageMaker.AmazonSageMakerException");
        assert!(
            cause.starts_with("bad name (Service: AmazonSageMaker;"),
            "{cause}"
        );
        let e = AwsError::new(400, "ResourceInUse", "exists");
        assert_eq!(call_error(&e).0, "SageMaker.ResourceInUseException");
        assert!(operation("createLabelingJob").is_err());
        assert!(operation("createProcessingJob").unwrap().1.is_some());
        assert!(operation("createTrainingJob").unwrap().1.is_some());
        assert!(operation("createModel").unwrap().1.is_none());
    }
}
