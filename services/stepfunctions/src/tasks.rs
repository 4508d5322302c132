//! Performing tasks: Lambda, the optimized integrations (Bedrock, DynamoDB, SQS, SNS,
//! EventBridge, Step Functions; SageMaker in `sagemaker`, S3 in `objects`) and `aws-sdk:`
//! calls of any operation Basalt implements, all through the in-process client. A task
//! worker claims a task from [`TASKS`], performs it and completes the claim together with the
//! event that reports the result, so a result is recorded once; a worker that dies mid-task
//! leaves it to be claimed and run again.

use basalt_asl::{Effect, Event};
use basalt_core::{AwsError, RequestContext};
use basalt_store::Claim;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

use crate::StepFunctions;
use crate::driver;
use crate::mocks::Mocked;
use crate::model::{Parent, TASKS, TaskItem};

/// Tasks performed at once by one node.
const WORKERS: usize = 16;
/// A task's lease: renewed every third of it while the task runs, so a task whose node died
/// (kill -9) is claimed and run again within this time rather than after the longest task
/// could take. `BASALT_SFN_TASK_LEASE_MS` shortens it for tests of a takeover.
fn lease_ms() -> i64 {
    static MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MS.get_or_init(|| basalt_store::lease_ms_from_env("BASALT_SFN_TASK_LEASE_MS", 15_000))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

/// How a task ended, or that it now waits for SendTaskSuccess/Failure or a child execution
/// (with the answer of the call that submitted it, recorded as TaskSubmitted).
pub enum Outcome {
    Done(Result<Value, (String, String)>),
    Waiting(Value),
}

pub(crate) fn failed(error: impl Into<String>, cause: impl Into<String>) -> Outcome {
    Outcome::Done(Err((error.into(), cause.into())))
}

/// A JSON value where the API wants a string (a message body, an execution input).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The error name of a failed optimized integration: `DynamoDB.ConditionalCheckFailedException`.
fn service_error(prefix: &str, e: &AwsError) -> (String, String) {
    let code = if e.code.ends_with("Exception") || e.code.contains('.') {
        e.code.clone()
    } else {
        format!("{}Exception", e.code)
    };
    (format!("{prefix}.{code}"), e.message.clone())
}

pub fn start_workers(sf: Arc<StepFunctions>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(WORKERS));
    tokio::spawn(async move {
        loop {
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                sf.state
                    .clock_ms()
                    .and_then(|now| sf.state.claim(TASKS, now, lease_ms(), free))
                    .unwrap_or_default()
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = sf.wake_tasks.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                continue;
            }
            for claim in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let sf = sf.clone();
                tokio::spawn(async move {
                    run_claim(&sf, claim).await;
                    drop(permit);
                });
            }
        }
    });
}

async fn run_claim(sf: &StepFunctions, claim: Claim) {
    let Ok(item) = serde_json::from_slice::<TaskItem>(&claim.payload) else {
        let _ = sf.state.complete(&claim, &[]);
        return;
    };
    let Effect::Task { task, .. } = &item.effect else {
        let _ = sf.state.complete(&claim, &[]);
        return;
    };
    let task = task.clone();
    let (account, region) = account_region(&item.execution);
    let work = async {
        match &item.mock {
            Some(m) => mocked_outcome(m.clone()),
            None => perform(sf, &account, &region, &item.execution, &item.effect).await,
        }
    };
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = tokio::time::sleep(Duration::from_millis(lease_ms() as u64 / 3)) => {
                if let Ok(now) = sf.state.clock_ms() {
                    let _ = sf.state.renew(&claim, now, lease_ms());
                }
            }
        }
    };
    let ops = match outcome {
        Outcome::Done(result) => {
            let event = match result {
                Ok(output) => Event::TaskSucceeded {
                    task: task.clone(),
                    output,
                },
                Err((error, cause)) => Event::TaskFailed {
                    task: task.clone(),
                    error,
                    cause,
                },
            };
            vec![driver::post_op(
                &item.execution,
                format!("{}#{task}#result", item.execution),
                event,
            )]
        }
        Outcome::Waiting(output) => vec![submitted(&item.execution, &task, output)],
    };
    if sf.state.complete(&claim, &ops).is_ok() && !ops.is_empty() {
        sf.wake_events.notify_one();
    }
}

/// The op that records TaskSubmitted for `task`, once (its id is the task's).
pub(crate) fn submitted(execution: &str, task: &str, output: Value) -> basalt_store::WriteOp {
    driver::post_op(
        execution,
        format!("{execution}#{task}#submitted"),
        Event::TaskSubmitted {
            task: task.to_owned(),
            output,
        },
    )
}

/// A mocked state's answer: a `.waitForTaskToken` task gets its Return at once too, as
/// Step Functions Local does.
pub fn mocked_outcome(m: Mocked) -> Outcome {
    match m {
        Mocked::Return(v) => Outcome::Done(Ok(v)),
        Mocked::Throw { error, cause } => Outcome::Done(Err((error, cause))),
    }
}

/// (account, region) of an execution ARN.
fn account_region(execution: &str) -> (String, String) {
    let parts: Vec<&str> = execution.split(':').collect();
    (
        parts.get(4).copied().unwrap_or_default().to_owned(),
        parts.get(3).copied().unwrap_or_default().to_owned(),
    )
}

/// Performs one task.
pub async fn perform(
    sf: &StepFunctions,
    account: &str,
    region: &str,
    execution: &str,
    effect: &Effect,
) -> Outcome {
    let Effect::Task {
        task,
        resource,
        parameters,
        token,
        ..
    } = effect
    else {
        return failed("States.Runtime", "not a task");
    };
    let ctx = RequestContext::internal(account, region, "");
    let Ok(registry) = sf.registry() else {
        return failed("States.Runtime", "services are starting");
    };
    let (base, pattern) = match resource.rsplit_once('.') {
        Some((b, p)) if matches!(p, "sync" | "waitForTaskToken") => (b, p),
        Some((b, "sync:2")) => (b, "sync:2"),
        _ => match resource.strip_suffix(".sync:2") {
            Some(b) => (b, "sync:2"),
            None => (resource.as_str(), ""),
        },
    };
    // A Lambda function ARN as the resource: the payload is the effective input.
    if base.starts_with("arn:aws:lambda:") {
        return invoke_lambda(
            registry,
            &ctx,
            json!({"FunctionName": base, "Payload": parameters}),
            false,
        )
        .await;
    }
    let Some(integration) = base.strip_prefix("arn:aws:states:::") else {
        return failed(
            "States.Runtime",
            format!("Basalt cannot run the resource {resource}"),
        );
    };
    let waiting = pattern == "waitForTaskToken";
    if waiting && token.is_none() {
        return failed("States.Runtime", "a .waitForTaskToken task without a token");
    }
    let outcome = match integration {
        "lambda:invoke" => invoke_lambda(registry, &ctx, parameters.clone(), true).await,
        "bedrock:invokeModel" => bedrock(sf, registry, &ctx, parameters).await,
        "http:invoke" => crate::http::invoke(sf, account, region, parameters).await,
        "states:startExecution" => {
            let parent = matches!(pattern, "sync" | "sync:2").then(|| Parent {
                execution: execution.to_owned(),
                task: task.clone(),
                mode: pattern.to_owned(),
            });
            let is_sync = parent.is_some();
            let input = json!({
                "stateMachineArn": parameters.get("StateMachineArn").cloned().unwrap_or(Value::Null),
                "input": parameters.get("Input").map(text).unwrap_or_else(|| "{}".into()),
                "name": parameters.get("Name").cloned().unwrap_or(Value::Null),
            });
            let mut input = input;
            if input["name"].is_null() {
                input.as_object_mut().map(|o| o.remove("name"));
            }
            match crate::executions::start(sf, &ctx, &input, parent) {
                Ok(out) => {
                    let answer = json!({
                        "ExecutionArn": out["executionArn"],
                        "StartDate": out["startDate"].as_f64().map(|s| (s * 1000.0) as i64),
                    });
                    if is_sync {
                        Outcome::Waiting(answer)
                    } else {
                        Outcome::Done(Ok(answer))
                    }
                }
                Err(e) => Outcome::Done(Err(service_error("StepFunctions", &e))),
            }
        }
        "s3:getObject" | "s3:listObjectsV2" => {
            crate::objects::read(sf, account, integration, parameters)
        }
        "s3:putObject" => crate::objects::write_results(sf, account, parameters).await,
        other if other.starts_with("sagemaker:") => {
            let api = &other["sagemaker:".len()..];
            let sync = match pattern {
                "" => false,
                "sync" => true,
                _ => {
                    return failed(
                        "States.Runtime",
                        format!("sagemaker:{api} does not support the .{pattern} pattern"),
                    );
                }
            };
            crate::sagemaker::perform(sf, registry, &ctx, execution, task, api, sync, parameters)
                .await
        }
        other => match optimized(other) {
            Some((service, op, prefix, shape)) => {
                let input = shape(parameters);
                match registry.call(&ctx, service, op, input).await {
                    Ok(out) => Outcome::Done(Ok(out.body)),
                    Err(e) => Outcome::Done(Err(service_error(prefix, &e))),
                }
            }
            None => match other.strip_prefix("aws-sdk:") {
                Some(sdk) => aws_sdk(registry, &ctx, sdk, parameters).await,
                None => failed(
                    "States.Runtime",
                    format!("Basalt does not integrate with {resource} yet"),
                ),
            },
        },
    };
    match (waiting, outcome) {
        // The call went out; the result comes with SendTaskSuccess/Failure.
        (true, Outcome::Done(Ok(answer))) => Outcome::Waiting(answer),
        (_, o) => o,
    }
}

type Shape = fn(&Value) -> Value;

fn as_is(v: &Value) -> Value {
    v.clone()
}

/// Message bodies given as JSON become their text, as the integrations send them.
fn sqs_shape(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(b) = v.get("MessageBody") {
        v["MessageBody"] = text(b).into();
    }
    v
}

fn sns_shape(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get("Message") {
        v["Message"] = text(m).into();
    }
    v
}

fn events_shape(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(entries) = v.get_mut("Entries").and_then(Value::as_array_mut) {
        for e in entries {
            if let Some(d) = e.get("Detail") {
                e["Detail"] = text(d).into();
            }
        }
    }
    v
}

/// The optimized integrations: (service, operation, error prefix, request shaping).
fn optimized(integration: &str) -> Option<(&'static str, &'static str, &'static str, Shape)> {
    Some(match integration {
        "dynamodb:putItem" => ("dynamodb", "PutItem", "DynamoDB", as_is as Shape),
        "dynamodb:getItem" => ("dynamodb", "GetItem", "DynamoDB", as_is),
        "dynamodb:updateItem" => ("dynamodb", "UpdateItem", "DynamoDB", as_is),
        "dynamodb:deleteItem" => ("dynamodb", "DeleteItem", "DynamoDB", as_is),
        "dynamodb:query" => ("dynamodb", "Query", "DynamoDB", as_is),
        "sqs:sendMessage" => ("sqs", "SendMessage", "SQS", sqs_shape),
        "sns:publish" => ("sns", "Publish", "SNS", sns_shape),
        "events:putEvents" => ("events", "PutEvents", "EventBridge", events_shape),
        _ => return None,
    })
}

async fn invoke_lambda(
    registry: &basalt_core::ServiceRegistry,
    ctx: &RequestContext,
    params: Value,
    wrapped: bool,
) -> Outcome {
    let Some(function) = params.get("FunctionName").and_then(Value::as_str) else {
        return failed("States.Runtime", "The field 'FunctionName' is required");
    };
    let payload = match params.get("Payload") {
        None | Some(Value::Null) => b"{}".to_vec(),
        Some(Value::String(s)) if wrapped => s.clone().into_bytes(),
        Some(v) => v.to_string().into_bytes(),
    };
    let mut input = json!({"FunctionName": function, "Payload": b64(&payload)});
    for member in ["InvocationType", "Qualifier", "ClientContext", "LogType"] {
        if let Some(v) = params.get(member) {
            input[member] = v.clone();
        }
    }
    let out = match registry.call(ctx, "lambda", "Invoke", input).await {
        Ok(o) => o.body,
        Err(e) => return Outcome::Done(Err(service_error("Lambda", &e))),
    };
    let raw = unb64(out.get("Payload").and_then(Value::as_str).unwrap_or(""));
    let body: Value = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| String::from_utf8_lossy(&raw).into_owned().into())
    };
    if out.get("FunctionError").is_some() {
        let error = body
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("Lambda.Unknown")
            .to_owned();
        return failed(error, String::from_utf8_lossy(&raw).into_owned());
    }
    if !wrapped {
        return Outcome::Done(Ok(body));
    }
    let status = out.get("StatusCode").cloned().unwrap_or(json!(200));
    Outcome::Done(Ok(json!({
        "ExecutedVersion": out.get("ExecutedVersion").cloned().unwrap_or(json!("$LATEST")),
        "Payload": body,
        "SdkHttpMetadata": {"HttpHeaders": {"Content-Type": "application/json"}, "HttpStatusCode": status},
        "SdkResponseMetadata": {"RequestId": ctx.request_id},
        "StatusCode": status,
    })))
}

async fn bedrock(
    sf: &StepFunctions,
    registry: &basalt_core::ServiceRegistry,
    ctx: &RequestContext,
    params: &Value,
) -> Outcome {
    let Some(model) = params.get("ModelId").and_then(Value::as_str) else {
        return failed("States.Runtime", "The field 'ModelId' is required");
    };
    // Checked before the model runs: a bad destination must not cost a generation.
    let output_uri = match params.get("Output") {
        None => None,
        Some(o) => match o.get("S3Uri").and_then(Value::as_str) {
            Some(uri) => match crate::objects::object_uri(uri) {
                Ok(_) => Some(uri.to_owned()),
                Err((error, cause)) => return failed(error, cause),
            },
            None => return failed("States.Runtime", "The field 'Output.S3Uri' is required"),
        },
    };
    let input_uri = params.pointer("/Input/S3Uri").and_then(Value::as_str);
    let body = match (params.get("Body"), input_uri) {
        (Some(_), Some(_)) => {
            return failed(
                "States.Runtime",
                "Specify either Body or Input in the Parameters, not both",
            );
        }
        (Some(Value::String(s)), None) => s.clone().into_bytes(),
        (Some(v), None) => v.to_string().into_bytes(),
        (None, Some(uri)) => match crate::objects::fetch(sf, &ctx.account_id, uri) {
            Ok(b) => b,
            Err((error, cause)) => return failed(error, cause),
        },
        (None, None) => {
            return failed("States.Runtime", "The field 'Body' or 'Input' is required");
        }
    };
    let mut input = json!({
        "modelId": model,
        "body": b64(&body),
        "contentType": params.get("ContentType").cloned().unwrap_or(json!("application/json")),
        "accept": params.get("Accept").cloned().unwrap_or(json!("application/json")),
    });
    if let Some(g) = params.get("GuardrailIdentifier") {
        input["guardrailIdentifier"] = g.clone();
        input["guardrailVersion"] = params
            .get("GuardrailVersion")
            .cloned()
            .unwrap_or(json!("DRAFT"));
    }
    match registry
        .call(ctx, "bedrock-runtime", "InvokeModel", input)
        .await
    {
        Ok(out) => {
            let raw = unb64(out.body.get("body").and_then(Value::as_str).unwrap_or(""));
            let content_type = out
                .body
                .get("contentType")
                .cloned()
                .unwrap_or(json!("application/json"));
            if let Some(uri) = output_uri {
                // The response goes to S3 and the result refers to it, in the shape of the
                // request's own reference (AWS documents the replacement, not its shape).
                return match crate::objects::store(sf, &ctx.account_id, &uri, raw).await {
                    Ok(()) => Outcome::Done(Ok(json!({
                        "Body": {"S3Uri": uri},
                        "ContentType": content_type,
                    }))),
                    Err((error, cause)) => failed(error, cause),
                };
            }
            let parsed: Value = serde_json::from_slice(&raw)
                .unwrap_or_else(|_| String::from_utf8_lossy(&raw).into_owned().into());
            Outcome::Done(Ok(json!({
                "Body": parsed,
                "ContentType": content_type,
            })))
        }
        Err(e) => Outcome::Done(Err(service_error("Bedrock", &e))),
    }
}

/// `aws-sdk:<service>:<action>`: the SDK's service name and a camelCase action; parameters
/// in PascalCase matched to the model's members whatever their case; results likewise
/// with the first letter of every member raised, as the SDK integrations return them.
async fn aws_sdk(
    registry: &basalt_core::ServiceRegistry,
    ctx: &RequestContext,
    sdk: &str,
    params: &Value,
) -> Outcome {
    let Some((service, action)) = sdk.split_once(':') else {
        return failed("States.Runtime", format!("Invalid resource aws-sdk:{sdk}"));
    };
    let (botocore, prefix) = match service {
        "dynamodb" => ("dynamodb", "DynamoDb"),
        "sqs" => ("sqs", "Sqs"),
        "sns" => ("sns", "Sns"),
        "lambda" => ("lambda", "Lambda"),
        "eventbridge" => ("events", "EventBridge"),
        "sfn" => ("stepfunctions", "Sfn"),
        "bedrockruntime" => ("bedrock-runtime", "BedrockRuntime"),
        "bedrock" => ("bedrock", "Bedrock"),
        "cloudwatch" => ("cloudwatch", "CloudWatch"),
        "cloudwatchlogs" => ("logs", "CloudWatchLogs"),
        "sts" => ("sts", "Sts"),
        "dynamodbstreams" => ("dynamodbstreams", "DynamoDbStreams"),
        other => (other, "Unknown"),
    };
    let mut op = String::new();
    let mut chars = action.chars();
    if let Some(f) = chars.next() {
        op.extend(f.to_uppercase());
        op.push_str(chars.as_str());
    }
    let model = basalt_spec::model(botocore).ok();
    let input = match &model {
        Some(m) => match m.operations.get(&op) {
            Some(o) => match &o.input {
                Some(r) => recase_in(m, &r.shape, params),
                None => params.clone(),
            },
            None => {
                return failed(
                    "States.Runtime",
                    format!(
                        "The API action {action} of the service {service} is not supported by Basalt"
                    ),
                );
            }
        },
        None => params.clone(),
    };
    match registry.call(ctx, botocore, &op, input).await {
        Ok(out) => Outcome::Done(Ok(match &model {
            Some(m) => match m.operations.get(&op).and_then(|o| o.output.as_ref()) {
                Some(r) => recase_out(m, &r.shape, &out.body),
                None => out.body,
            },
            None => out.body,
        })),
        Err(e) => Outcome::Done(Err(service_error(prefix, &e))),
    }
}

/// Structure members renamed to the model's spelling, matched without regard to case.
fn recase_in(model: &basalt_spec::ServiceModel, shape: &str, v: &Value) -> Value {
    let Some(s) = model.shape(shape) else {
        return v.clone();
    };
    match v {
        Value::Object(o) if !s.members.is_empty() => {
            let mut out = Map::new();
            for (k, val) in o {
                match s.members.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
                    Some((n, r)) => {
                        out.insert(n.clone(), recase_in(model, &r.shape, val));
                    }
                    None => {
                        out.insert(k.clone(), val.clone());
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => match &s.member {
            Some(m) => Value::Array(
                items
                    .iter()
                    .map(|i| recase_in(model, &m.shape, i))
                    .collect(),
            ),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

fn recase_out(model: &basalt_spec::ServiceModel, shape: &str, v: &Value) -> Value {
    let Some(s) = model.shape(shape) else {
        return v.clone();
    };
    match v {
        Value::Object(o) if !s.members.is_empty() => {
            let mut out = Map::new();
            for (k, val) in o {
                let child = s
                    .members
                    .get(k)
                    .map_or(val.clone(), |r| recase_out(model, &r.shape, val));
                let mut name = String::new();
                let mut cs = k.chars();
                if let Some(f) = cs.next() {
                    name.extend(f.to_uppercase());
                    name.push_str(cs.as_str());
                }
                out.insert(name, child);
            }
            Value::Object(out)
        }
        Value::Array(items) => match &s.member {
            Some(m) => Value::Array(
                items
                    .iter()
                    .map(|i| recase_out(model, &m.shape, i))
                    .collect(),
            ),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names() {
        let e = AwsError::new(
            400,
            "ConditionalCheckFailedException",
            "The conditional request failed",
        );
        assert_eq!(
            service_error("DynamoDB", &e).0,
            "DynamoDB.ConditionalCheckFailedException"
        );
        let e = AwsError::new(400, "QueueDoesNotExist", "x");
        assert_eq!(service_error("SQS", &e).0, "SQS.QueueDoesNotExistException");
    }

    #[test]
    fn sdk_parameters_take_the_models_case() {
        let m = basalt_spec::model("stepfunctions").unwrap();
        let v = recase_in(&m, "DescribeExecutionInput", &json!({"ExecutionArn": "a"}));
        assert_eq!(v, json!({"executionArn": "a"}));
        let out = recase_out(
            &m,
            "DescribeExecutionOutput",
            &json!({"executionArn": "a", "status": "RUNNING"}),
        );
        assert_eq!(out, json!({"ExecutionArn": "a", "Status": "RUNNING"}));
    }
}
