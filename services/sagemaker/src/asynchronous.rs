//! `sagemaker-runtime` InvokeEndpointAsync: the request is queued on the store's leases
//! (queue [`QUEUE`]) and answered at once with where its result will be; a node takes it,
//! reads the input from S3, runs the endpoint's model and writes the answer to
//! `{S3OutputPath}/{id}.out`, or what went wrong to `{S3FailurePath}/{id}-error.out`, then
//! publishes an `InferenceResult` notification to the configured SNS topic. Requests are
//! durable across restarts; at most `MaxConcurrentInvocationsPerInstance` (times the
//! variants' instances) of one endpoint run at once on a node.

use crate::Core;
use crate::invoke;
use basalt_core::{AwsError, Output, RequestContext};
use basalt_store::{Claim, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// ISO 8601 with milliseconds, as the notifications carry their times.
fn iso(ms: i64) -> String {
    crate::records::format_ms(ms, "%Y-%m-%dT%H:%M:%S%.3fZ")
}

pub const QUEUE: &str = "sagemaker.async";
/// Lease on one request; a request whose node died runs again after it.
const LEASE_MS: i64 = 120_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    account: String,
    region: String,
    endpoint: String,
    inference_id: String,
    input_location: String,
    content_type: Option<String>,
    accept: Option<String>,
    output_location: Option<String>,
    failure_location: Option<String>,
    success_topic: Option<String>,
    error_topic: Option<String>,
    received_ms: i64,
    /// RequestTTLSeconds: a request still queued past it fails.
    expires_ms: i64,
    /// Invocations of this endpoint that may run at once.
    concurrency: usize,
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationError", message)
}

fn s3_uri_in(path: Option<&str>, name: &str) -> Option<String> {
    path.map(|p| format!("{}/{name}", p.trim_end_matches('/')))
}

pub(crate) fn invoke_async(
    core: &Arc<Core>,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = input["EndpointName"].as_str().unwrap_or_default();
    let input_location = input["InputLocation"].as_str().unwrap_or_default();
    if basalt_core::objects::parse_s3_uri(input_location).is_none() {
        return Err(validation(format!(
            "InputLocation {input_location:?} is not an S3 URI."
        )));
    }
    let endpoint = invoke::serving_endpoint(core, ctx, name)?;
    let config = crate::endpoint_configs::load(core, ctx, &endpoint.config_name)?;
    let Some(async_config) = config.request.get("AsyncInferenceConfig") else {
        return Err(validation(format!(
            "Endpoint {name} of account {} is not configured for asynchronous inference (its endpoint configuration has no AsyncInferenceConfig).",
            ctx.account_id
        )));
    };
    let output = &async_config["OutputConfig"];
    let id = uuid::Uuid::new_v4().to_string();
    let inference_id = input["InferenceId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let ttl_s = input["RequestTTLSeconds"].as_i64().unwrap_or(21_600);
    if !(60..=21_600).contains(&ttl_s) {
        return Err(validation(
            "RequestTTLSeconds must be between 60 and 21600.",
        ));
    }
    let instances: u64 = endpoint
        .variants
        .iter()
        .filter(|v| !v.shadow)
        .map(|v| v.spec["InitialInstanceCount"].as_u64().unwrap_or(1))
        .sum();
    let per_instance = async_config["ClientConfig"]["MaxConcurrentInvocationsPerInstance"]
        .as_u64()
        .unwrap_or(4);
    let now = core.now_ms();
    let request = Request {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        endpoint: name.to_owned(),
        inference_id: inference_id.clone(),
        input_location: input_location.to_owned(),
        content_type: input["ContentType"].as_str().map(str::to_owned),
        accept: input["Accept"].as_str().map(str::to_owned),
        output_location: s3_uri_in(output["S3OutputPath"].as_str(), &format!("{id}.out")),
        failure_location: s3_uri_in(output["S3FailurePath"].as_str(), &format!("{id}-error.out")),
        success_topic: output["NotificationConfig"]["SuccessTopic"]
            .as_str()
            .map(str::to_owned),
        error_topic: output["NotificationConfig"]["ErrorTopic"]
            .as_str()
            .map(str::to_owned),
        received_ms: now,
        expires_ms: now + ttl_s * 1000,
        concurrency: (per_instance * instances.max(1)).max(1) as usize,
    };
    core.state.batch(&[WriteOp::Enqueue {
        queue: QUEUE.into(),
        id: format!("{}/{}/{name}/{id}", ctx.account_id, ctx.region),
        payload: serde_json::to_vec(&request).map_err(|e| AwsError::internal(e.to_string()))?,
        due_ms: now,
    }])?;
    core.wake_async.notify_one();
    let mut out = json!({ "InferenceId": inference_id });
    if let Some(o) = &request.output_location {
        out["OutputLocation"] = o.clone().into();
    }
    if let Some(f) = &request.failure_location {
        out["FailureLocation"] = f.clone().into();
    }
    Ok(Output::new(out))
}

pub(crate) fn start_worker(core: Arc<Core>) {
    crate::spawn_each(
        &core,
        QUEUE,
        LEASE_MS,
        &core.wake_async,
        |core, claim| async move { run(core, claim).await },
    );
}

async fn write(core: &Core, account: &str, uri: &str, data: Vec<u8>) -> Result<(), String> {
    let (bucket, key) =
        basalt_core::objects::parse_s3_uri(uri).ok_or_else(|| format!("{uri} is not an S3 URI"))?;
    if core.objects.write(account, bucket, key, data).await? {
        Ok(())
    } else {
        Err(format!("the bucket {bucket} does not exist"))
    }
}

async fn run(core: Arc<Core>, claim: Claim) {
    let Ok(r) = serde_json::from_slice::<Request>(&claim.payload) else {
        let _ = core.state.complete(&claim, &[]);
        return;
    };
    // The lease is renewed while the request waits for its turn and runs, so that no node
    // takes it again meanwhile.
    let renewing = {
        let (core, claim) = (core.clone(), claim.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(LEASE_MS as u64 / 3)).await;
                if core.state.renew(&claim, core.now_ms(), LEASE_MS).is_err() {
                    return;
                }
            }
        })
    };
    struct Stop(tokio::task::JoinHandle<()>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _renewing = Stop(renewing);
    let gate = core.async_gate(&r.account, &r.region, &r.endpoint, r.concurrency);
    let Ok(_permit) = gate.acquire_owned().await else {
        return;
    };
    let ctx = RequestContext::internal(&r.account, &r.region, "http://localhost");
    let result: Result<(Vec<u8>, String), String> = async {
        if core.now_ms() > r.expires_ms {
            return Err(
                "Request expired: RequestTTLSeconds passed before it was processed.".into(),
            );
        }
        let (bucket, key) = basalt_core::objects::parse_s3_uri(&r.input_location)
            .ok_or_else(|| format!("{} is not an S3 URI", r.input_location))?;
        let body = core.objects.read(&r.account, bucket, key)?.ok_or_else(|| {
            format!(
                "ClientError: The input {} does not exist.",
                r.input_location
            )
        })?;
        let (answer, _) = invoke::run(
            &core,
            &ctx,
            &r.endpoint,
            invoke::Request {
                body,
                content_type: r.content_type.as_deref(),
                accept: r.accept.as_deref(),
                target: None,
                target_model: None,
                inference_id: Some(&r.inference_id),
            },
        )
        .await
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
        Ok((answer.body, answer.content_type))
    }
    .await;
    let now = core.now_ms();
    let mut note = json!({
        "awsRegion": r.region, "eventTime": iso(now), "receivedTime": iso(r.received_ms),
        "requestParameters": {"endpointName": r.endpoint, "inputLocation": r.input_location},
        "inferenceId": r.inference_id, "eventVersion": "1.0", "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    });
    if let Some(ct) = &r.content_type {
        note["requestParameters"]["contentType"] = ct.clone().into();
    }
    if let Some(a) = &r.accept {
        note["requestParameters"]["accept"] = a.clone().into();
    }
    let topic = match result {
        Ok((body, content_type)) => {
            let written = match &r.output_location {
                Some(uri) => write(&core, &r.account, uri, body).await,
                None => Ok(()),
            };
            match written {
                Ok(()) => {
                    note["invocationStatus"] = "Completed".into();
                    note["responseParameters"] = json!({"contentType": content_type});
                    if let Some(uri) = &r.output_location {
                        note["responseParameters"]["outputLocation"] = uri.clone().into();
                    }
                    r.success_topic.clone()
                }
                Err(e) => {
                    failed(
                        &core,
                        &r,
                        &mut note,
                        format!("ClientError: the output could not be written: {e}"),
                    )
                    .await
                }
            }
        }
        Err(reason) => failed(&core, &r, &mut note, reason).await,
    };
    if let (Some(topic), Some(registry)) = (topic, core.registry()) {
        let published = registry
            .call(
                &ctx,
                "sns",
                "Publish",
                json!({"TopicArn": topic, "Message": note.to_string()}),
            )
            .await;
        if let Err(e) = published {
            tracing::warn!(endpoint = %r.endpoint, "async inference notification to {topic}: {}", e.message);
        }
    }
    let _ = core.state.complete(&claim, &[]);
}

/// Records a failure: its reason to the failure location (when one is configured) and in
/// the notification; the topic to tell.
async fn failed(core: &Core, r: &Request, note: &mut Value, reason: String) -> Option<String> {
    if let Some(uri) = &r.failure_location
        && let Err(e) = write(core, &r.account, uri, reason.clone().into_bytes()).await
    {
        tracing::warn!(endpoint = %r.endpoint, "async inference failure to {uri}: {e}");
    }
    note["invocationStatus"] = "Failed".into();
    note["failureReason"] = reason.into();
    if let Some(uri) = &r.failure_location {
        note["responseParameters"] = json!({"failureLocation": uri});
    }
    r.error_topic.clone()
}
