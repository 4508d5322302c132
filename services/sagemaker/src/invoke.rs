//! `sagemaker-runtime` InvokeEndpoint: picks the variant (TargetVariant, else at random by
//! the variants' weights), sends the body through its containers and answers with the last
//! one's body and content type, or ModelError with what the container said.

use crate::Core;
use crate::endpoints::{self, Variant};
use crate::serving::{Answer, TargetUnavailable, Unavailable};
use basalt_core::{AwsError, Output, RequestContext};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

/// InvokeEndpoint's limit on the request body.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationError", message)
}

/// A number in [0, 1) that differs between calls (traffic splitting needs no more).
fn draw() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The production variant a request goes to: TargetVariant, else one drawn by weight.
fn pick<'a>(variants: &'a [Variant], target: Option<&str>) -> Result<&'a Variant, String> {
    let production: Vec<&Variant> = variants.iter().filter(|v| !v.shadow).collect();
    if let Some(t) = target {
        return production
            .into_iter()
            .find(|v| v.name == t)
            .ok_or_else(|| format!("The TargetVariant {t} does not exist in the endpoint."));
    }
    let total: f64 = production.iter().map(|v| v.weight()).sum();
    if total <= 0.0 {
        return production
            .first()
            .copied()
            .ok_or_else(|| "The endpoint has no variant.".to_owned());
    }
    let mut at = draw() * total;
    for v in &production {
        at -= v.weight();
        if at < 0.0 {
            return Ok(v);
        }
    }
    production
        .last()
        .copied()
        .ok_or_else(|| "The endpoint has no variant.".to_owned())
}

/// Shadow copies in flight on this node, at most.
const SHADOW_COPIES: usize = 64;

fn shadow_permits() -> &'static Arc<tokio::sync::Semaphore> {
    static PERMITS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(SHADOW_COPIES)))
}

/// Whether a request the production variant answers is copied to `shadow`: the ratio of the
/// shadow's weight to the production variant's is its sampling rate.
fn copies_to(production: &Variant, shadow: &Variant) -> bool {
    let p = production.weight();
    p <= 0.0 || draw() * p < shadow.weight()
}

pub(crate) async fn invoke(
    core: &Arc<Core>,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = input["EndpointName"].as_str().unwrap_or_default();
    let body = base64::engine::general_purpose::STANDARD
        .decode(input["Body"].as_str().unwrap_or_default())
        .map_err(|_| validation("Body is not valid base64."))?;
    if body.len() > MAX_PAYLOAD {
        return Err(validation(format!(
            "The request body of {} bytes is larger than the 6 MB InvokeEndpoint accepts.",
            body.len()
        )));
    }
    let (answer, variant) = run(
        core,
        ctx,
        name,
        Request {
            body,
            content_type: input["ContentType"].as_str(),
            accept: input["Accept"].as_str(),
            target: input["TargetVariant"].as_str(),
            target_model: input["TargetModel"].as_str(),
            inference_id: input["InferenceId"].as_str(),
        },
    )
    .await?;
    Ok(Output::new(json!({
        "Body": base64::engine::general_purpose::STANDARD.encode(&answer.body),
        "ContentType": answer.content_type,
        "InvokedProductionVariant": variant,
    })))
}

/// InvokeEndpointWithResponseStream: the answer as PayloadPart events. Basalt's containers
/// answer whole (XGBoost scores, inference scripts' `output_fn`), so the parts follow the
/// answer once the model has it: one part per line of a line-oriented answer (a batch of CSV
/// rows), else the answer in parts of at most 64 KiB.
pub(crate) async fn invoke_stream(
    core: &Arc<Core>,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let out = invoke(core, ctx, input).await?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(out.body["Body"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let events: Vec<Result<basalt_core::StreamEvent, AwsError>> = parts(&body)
        .into_iter()
        .map(|part| {
            Ok(basalt_core::StreamEvent {
                name: "PayloadPart".into(),
                value: json!({"Bytes": base64::engine::general_purpose::STANDARD.encode(part)}),
            })
        })
        .collect();
    Ok(Output::with_stream(
        json!({
            "ContentType": out.body["ContentType"],
            "InvokedProductionVariant": out.body["InvokedProductionVariant"],
        }),
        Box::pin(futures::stream::iter(events)),
    ))
}

/// The answer's parts: its lines (each with its newline), or 64 KiB pieces.
fn parts(body: &[u8]) -> Vec<&[u8]> {
    const MAX: usize = 64 * 1024;
    let mut out = Vec::new();
    for line in body.split_inclusive(|b| *b == b'\n') {
        out.extend(line.chunks(MAX));
    }
    if out.is_empty() {
        out.push(body);
    }
    out
}

/// The endpoint `name` must exist and serve something.
pub(crate) fn serving_endpoint(
    core: &Core,
    ctx: &RequestContext,
    name: &str,
) -> Result<endpoints::Endpoint, AwsError> {
    let endpoint = endpoints::load(core, ctx, name)?.ok_or_else(|| {
        validation(format!(
            "Endpoint {name} of account {} not found.",
            ctx.account_id
        ))
    })?;
    if endpoint.variants.is_empty() {
        return Err(validation(format!(
            "Endpoint {name} of account {} is {} and cannot be invoked yet.",
            ctx.account_id, endpoint.status
        )));
    }
    Ok(endpoint)
}

/// What one invocation sends.
pub(crate) struct Request<'a> {
    pub body: Vec<u8>,
    pub content_type: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub target: Option<&'a str>,
    /// A multi-model endpoint's model: its path under the container's `ModelDataUrl`.
    pub target_model: Option<&'a str>,
    pub inference_id: Option<&'a str>,
}

/// Sends the body through a variant's containers (TargetVariant, else one by weight): the
/// last container's answer and the variant's name, or ModelError. Counted in the endpoint's
/// metrics, and captured when the endpoint captures data.
pub(crate) async fn run(
    core: &Arc<Core>,
    ctx: &RequestContext,
    name: &str,
    req: Request<'_>,
) -> Result<(Answer, String), AwsError> {
    let endpoint = serving_endpoint(core, ctx, name)?;
    let variant = pick(&endpoint.variants, req.target).map_err(validation)?;
    for shadow in endpoint.variants.iter().filter(|v| v.shadow) {
        if !copies_to(variant, shadow) {
            continue;
        }
        // Copies in flight are bounded: a slow shadow loses copies, never slows production
        // or holds their bodies without limit.
        let Ok(permit) = shadow_permits().clone().try_acquire_owned() else {
            tracing::debug!(endpoint = %endpoint.name, variant = %shadow.name, "shadow copy dropped: too many in flight");
            continue;
        };
        // The copy runs beside the request, which never waits for it.
        let (core, ctx, endpoint, shadow) =
            (core.clone(), ctx.clone(), endpoint.clone(), shadow.clone());
        let body = req.body.clone();
        let content_type = req.content_type.map(str::to_owned);
        let accept = req.accept.map(str::to_owned);
        let target_model = req.target_model.map(str::to_owned);
        let inference_id = req.inference_id.map(str::to_owned);
        tokio::spawn(async move {
            let _permit = permit;
            let copy = Request {
                body,
                content_type: content_type.as_deref(),
                accept: accept.as_deref(),
                target: None,
                target_model: target_model.as_deref(),
                inference_id: inference_id.as_deref(),
            };
            if let Err(e) = answer_as(&core, &ctx, &endpoint, &shadow, copy).await {
                tracing::debug!(endpoint = %endpoint.name, variant = %shadow.name, error = %e.message, "shadow variant failed");
            }
        });
    }
    let answer = answer_as(core, ctx, &endpoint, variant, req).await?;
    Ok((answer, variant.name.clone()))
}

/// One variant's answer to a request, counted in its metrics and captured when the endpoint
/// captures data.
async fn answer_as(
    core: &Arc<Core>,
    ctx: &RequestContext,
    endpoint: &endpoints::Endpoint,
    variant: &Variant,
    req: Request<'_>,
) -> Result<Answer, AwsError> {
    let name = endpoint.name.as_str();
    let started = std::time::Instant::now();
    let mut model_us = None;
    let input = endpoint.data_capture.is_object().then(|| req.body.clone());
    let result = call(
        core,
        ctx,
        endpoint,
        variant,
        Call {
            body: req.body,
            content_type: req.content_type,
            accept: req.accept,
            target_model: req.target_model,
        },
        &mut model_us,
    )
    .await;
    if let (Ok(answer), Some(input)) = (&result, &input) {
        core.captures.offer(
            &endpoint.data_capture,
            draw(),
            crate::capture::Exchange {
                account: &ctx.account_id,
                endpoint: name,
                variant: &variant.name,
                input,
                input_type: req.content_type,
                output: &answer.body,
                output_type: &answer.content_type,
                inference_id: req.inference_id,
                now_ms: core.now_ms(),
            },
        );
    }
    let status = match &result {
        Ok(_) => 200,
        Err(e) => (e.fields.get("OriginalStatusCode"))
            .and_then(Value::as_u64)
            .unwrap_or(u64::from(e.status)) as u16,
    };
    let total_us = started.elapsed().as_secs_f64() * 1e6;
    core.invocations.record(crate::metrics::Invocation {
        account: &ctx.account_id,
        region: &ctx.region,
        endpoint: name,
        variant: &variant.name,
        instances: variant.instances(),
        status,
        model_us,
        overhead_us: (total_us - model_us.unwrap_or(0.0)).max(0.0),
    });
    result
}

/// What goes to a variant's containers.
struct Call<'a> {
    body: Vec<u8>,
    content_type: Option<&'a str>,
    accept: Option<&'a str>,
    target_model: Option<&'a str>,
}

/// The variant's containers in turn (or, on a multi-model endpoint, the requested model's);
/// `model_us` gets the time they took.
async fn call(
    core: &Arc<Core>,
    ctx: &RequestContext,
    endpoint: &endpoints::Endpoint,
    variant: &Variant,
    req: Call<'_>,
    model_us: &mut Option<f64>,
) -> Result<Answer, AwsError> {
    let Call {
        body,
        content_type,
        accept,
        target_model,
    } = req;
    let name = &endpoint.name;
    let owner = endpoint.owner();
    let served = match core
        .serving
        .serve(core, &owner, endpoint.generation, variant)
        .await
    {
        Ok(s) => s,
        Err(Unavailable::NotReady) => {
            return Err(AwsError::new(
                429,
                "ModelNotReadyException",
                format!(
                    "Model for endpoint {name} variant {} is not ready: the serverless variant is still being provisioned. Wait and try your request again.",
                    variant.name
                ),
            ));
        }
        Err(Unavailable::Failed(e)) => return Err(model_error(ctx, name, 500, &e)),
    };
    let model;
    let chain: Vec<&crate::serving::Container> = match (&served.multi, target_model) {
        (Some(multi), Some(target)) => {
            let loading = std::time::Instant::now();
            let (container, hit) = multi
                .container(core, &owner, endpoint.generation, variant, target)
                .await
                .map_err(|e| match e {
                    TargetUnavailable::Missing { bucket, key } => validation(format!(
                        "Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is an object located at the URL and that the role passed to CreateModel has permissions to download the object."
                    )),
                    TargetUnavailable::Failed(e) => model_error(ctx, name, 500, &e),
                })?;
            core.invocations.record_model_load(
                (&ctx.account_id, &ctx.region, name, &variant.name),
                (!hit).then(|| loading.elapsed().as_secs_f64() * 1e6),
                multi.loaded(),
            );
            model = container;
            vec![&*model]
        }
        (Some(_), None) => {
            return Err(validation(format!(
                "Endpoint {name} is a multi-model endpoint: name the model to invoke with TargetModel."
            )));
        }
        (None, Some(_)) => {
            return Err(validation(format!(
                "Endpoint {name} is not a multi-model endpoint and does not support the TargetModel header."
            )));
        }
        (None, None) => served.containers.iter().collect(),
    };
    let mut content_type = content_type.map(str::to_owned);
    let mut payload = body;
    let last = chain.len().saturating_sub(1);
    let mut answer = None;
    let started = std::time::Instant::now();
    for (i, c) in chain.into_iter().enumerate() {
        let a: Answer = c
            .invoke(
                &payload,
                content_type.as_deref(),
                if i == last { accept } else { None },
            )
            .await;
        *model_us = Some(started.elapsed().as_secs_f64() * 1e6);
        if a.status >= 400 {
            return Err(model_error(ctx, name, a.status, &a.message));
        }
        content_type = Some(a.content_type.clone());
        payload = a.body.clone();
        answer = Some(a);
    }
    answer.ok_or_else(|| AwsError::internal("the model has no container"))
}

/// What InvokeEndpoint answers when the container answered with an error.
fn model_error(ctx: &RequestContext, endpoint: &str, status: u16, message: &str) -> AwsError {
    let side = if status < 500 { "client" } else { "server" };
    let group = format!("/aws/sagemaker/Endpoints/{endpoint}");
    AwsError::new(
        424,
        "ModelError",
        format!(
            "Received {side} error ({status}) from primary with message \"{message}\". See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={group} in account {account} for more information.",
            region = ctx.region,
            account = ctx.account_id
        ),
    )
    .with_field("OriginalStatusCode", status)
    .with_field("OriginalMessage", message)
    .with_field(
        "LogStreamArn",
        format!("arn:aws:logs:{}:{}:log-group:{group}", ctx.region, ctx.account_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stream_by_line_or_in_64_kib_pieces() {
        assert_eq!(parts(b"0.1\n0.9\n"), vec![&b"0.1\n"[..], b"0.9\n"]);
        assert_eq!(parts(b"{\"a\": 1}"), vec![&b"{\"a\": 1}"[..]]);
        assert_eq!(parts(b""), vec![&b""[..]]);
        let big = vec![b'x'; 64 * 1024 + 1];
        assert_eq!(
            parts(&big).iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![65536, 1]
        );
    }

    #[test]
    fn traffic_follows_the_weights() {
        let model = crate::models::Model {
            name: "m".into(),
            arn: "arn".into(),
            request: Default::default(),
            created_ms: 0,
            resolved: None,
        };
        let variant = |name: &str, w: f64| Variant {
            name: name.into(),
            model: model.clone(),
            spec: json!({"InitialVariantWeight": w, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}),
            shadow: false,
        };
        let variants = [variant("a", 3.0), variant("b", 1.0), variant("off", 0.0)];
        let mut a = 0;
        for _ in 0..4000 {
            match pick(&variants, None).unwrap().name.as_str() {
                "a" => a += 1,
                "b" => {}
                other => panic!("a variant of weight 0 got traffic: {other}"),
            }
        }
        assert!(
            (2700..3300).contains(&a),
            "{a} of 4000 to the variant of weight 3 of 4"
        );
        assert_eq!(pick(&variants, Some("b")).unwrap().name, "b");
        assert!(pick(&variants, Some("c")).is_err());
    }
}
