//! Invoke: synchronous (`RequestResponse`), asynchronous (`Event`, queued durably on the
//! store's leases and retried as AWS retries), and `DryRun`.

use crate::destinations::{self, Condition, Response};
use crate::functions::{blob_key, load, resolve_config};
use crate::model::{self, Config, LATEST, function_arn};
use crate::{Lambda, invalid_value, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use basalt_functions::{EngineError, EnvSpec, Invocation, Outcome};
use basalt_store::WriteOp;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The lease queue of asynchronous invocations.
pub const ASYNC_QUEUE: &str = "lambda.async";
/// Payload limits: 6 MB synchronous, 256 KB asynchronous.
const MAX_SYNC_PAYLOAD: usize = 6_291_456;
const MAX_ASYNC_PAYLOAD: usize = 262_144;
/// `LogType: Tail` returns the last 4 KB of the log.
const TAIL_BYTES: usize = 4096;
/// Asynchronous retries: AWS waits one minute, then two.
pub const RETRY_DELAYS_MS: [i64; 2] = [60_000, 120_000];
const DEFAULT_MAX_EVENT_AGE_S: i64 = 21_600;
/// A worker holds an asynchronous invocation this long between renewals.
pub const LEASE_MS: i64 = 30_000;

#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    key: String,
    secret: String,
    token: String,
    expires: i64,
}

/// The version an invocation runs: an alias routes between its version and an additional
/// one by weight.
fn pick_version(
    l: &Lambda,
    ctx: &RequestContext,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Option<String>, AwsError> {
    let Some(q) = qualifier else {
        return Ok(None);
    };
    if q == LATEST || q.parse::<u64>().is_ok() {
        return Ok(Some(q.to_owned()));
    }
    let alias = crate::versions::load_alias(l, ctx, name, q)?;
    let roll: f64 = rand::random();
    let mut acc = 0.0;
    for (v, w) in &alias.weights {
        acc += w;
        if roll < acc {
            return Ok(Some(v.clone()));
        }
    }
    Ok(Some(alias.version))
}

/// What every invoke API resolves first: the function, the version that runs, the payload.
struct Prepared {
    rec: crate::model::FunctionRec,
    config: Config,
    qualifier: Option<String>,
    payload: Bytes,
    invoked_arn: String,
}

fn prepare(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
    limit: usize,
) -> Result<Prepared, AwsError> {
    let r = crate::function_ref(ctx, input)?;
    let (rec, _) = load(l, ctx, &r.name)?;
    let version = pick_version(l, ctx, &r.name, r.qualifier.as_deref())?;
    let config = resolve_config(l, ctx, &rec, version.as_deref())?;
    let payload = match str_of(input, "Payload") {
        Some(b64) => B64
            .decode(b64)
            .map_err(|_| invalid_value("Payload is not valid base64"))?,
        None => Vec::new(),
    };
    if payload.len() > limit {
        return Err(AwsError::new(
            413,
            "RequestTooLargeException",
            format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        )
        .with_field("Type", "User"));
    }
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
            return Err(AwsError::new(
                400,
                "InvalidRequestContentException",
                format!(
                    "Could not parse request body into json: Could not parse payload into json: {e}"
                ),
            )
            .with_field("Type", "User"));
        }
        Bytes::from(payload)
    };
    let mut invoked_arn = function_arn(&ctx.region, &ctx.account_id, &r.name);
    if let Some(q) = &r.qualifier {
        invoked_arn = format!("{invoked_arn}:{q}");
    }
    Ok(Prepared {
        rec,
        config,
        qualifier: r.qualifier,
        payload,
        invoked_arn,
    })
}

pub(crate) async fn invoke(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let kind = str_of(input, "InvocationType").unwrap_or("RequestResponse");
    let limit = if kind == "Event" {
        MAX_ASYNC_PAYLOAD
    } else {
        MAX_SYNC_PAYLOAD
    };
    let Prepared {
        rec,
        config,
        qualifier,
        payload,
        invoked_arn,
    } = prepare(l, ctx, input, limit)?;
    let r = model::FunctionRef {
        name: rec.name.clone(),
        qualifier,
    };
    match kind {
        "DryRun" => Ok(Output::new(json!({"StatusCode": 204}))),
        "Event" => {
            enqueue(
                l,
                ctx,
                &r.name,
                &config.version,
                r.qualifier.as_deref(),
                &invoked_arn,
                &payload,
            )?;
            Ok(Output::new(json!({"StatusCode": 202})))
        }
        "RequestResponse" => {
            let outcome = run(
                l,
                &ctx.account_id,
                &ctx.region,
                &rec.name,
                &config,
                rec.reserved_concurrency,
                invoked_arn,
                payload,
                ctx.request_id.clone(),
            )
            .await?;
            let mut out = json!({
                "StatusCode": 200,
                "ExecutedVersion": config.version,
            });
            match &outcome.result {
                Ok(body) => out["Payload"] = json!(B64.encode(body)),
                Err(e) => {
                    out["Payload"] = json!(B64.encode(&e.body));
                    out["FunctionError"] = json!("Unhandled");
                }
            }
            if str_of(input, "LogType") == Some("Tail") {
                out["LogResult"] = json!(B64.encode(tail(&outcome.logs)));
            }
            Ok(Output::new(out))
        }
        other => Err(invalid_value(format!(
            "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        ))),
    }
}

/// InvokeWithResponseStream. Python's runtime client answers in one piece (as on AWS, where
/// only some runtimes stream), so the response arrives as `PayloadChunk` events of at most
/// 64 KiB followed by `InvokeComplete`.
pub(crate) async fn invoke_stream(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let kind = str_of(input, "InvocationType").unwrap_or("RequestResponse");
    let p = prepare(l, ctx, input, MAX_SYNC_PAYLOAD)?;
    if kind == "DryRun" {
        return Ok(Output::new(json!({"StatusCode": 204})));
    }
    let outcome = run(
        l,
        &ctx.account_id,
        &ctx.region,
        &p.rec.name,
        &p.config,
        p.rec.reserved_concurrency,
        p.invoked_arn,
        p.payload,
        ctx.request_id.clone(),
    )
    .await?;
    let mut events = Vec::new();
    let mut complete = serde_json::Map::new();
    match &outcome.result {
        Ok(body) => {
            for chunk in body.chunks(64 * 1024) {
                events.push(Ok(basalt_core::StreamEvent {
                    name: "PayloadChunk".into(),
                    value: json!({"Payload": B64.encode(chunk)}),
                }));
            }
        }
        Err(e) => {
            complete.insert("ErrorCode".into(), json!(e.error_type));
            complete.insert(
                "ErrorDetails".into(),
                json!(String::from_utf8_lossy(&e.body)),
            );
        }
    }
    if str_of(input, "LogType") == Some("Tail") {
        complete.insert("LogResult".into(), json!(B64.encode(tail(&outcome.logs))));
    }
    events.push(Ok(basalt_core::StreamEvent {
        name: "InvokeComplete".into(),
        value: Value::Object(complete),
    }));
    Ok(Output::with_stream(
        json!({"StatusCode": 200, "ExecutedVersion": p.config.version, "ResponseStreamContentType": "application/octet-stream"}),
        Box::pin(futures::stream::iter(events)),
    ))
}

/// The legacy InvokeAsync: an `Event` invocation of `$LATEST`.
pub(crate) async fn invoke_async_legacy(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (rec, _) = load(l, ctx, &name)?;
    let payload = B64
        .decode(str_of(input, "InvokeArgs").unwrap_or_default())
        .unwrap_or_default();
    let arn = function_arn(&ctx.region, &ctx.account_id, &name);
    enqueue(l, ctx, &rec.name, LATEST, None, &arn, &payload)?;
    Ok(Output::new(json!({"Status": 202})))
}

/// The last 4 KB of the log, cut at a character boundary.
fn tail(logs: &[(i64, String)]) -> String {
    let mut text = String::new();
    for (_, line) in logs {
        text.push_str(line);
        text.push('\n');
    }
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Temporary credentials for `role`, issued by STS in-process and reused while they have
/// more than an hour left.
async fn credentials(
    l: &Lambda,
    account: &str,
    region: &str,
    role: &str,
    name: &str,
) -> Result<Credentials, AwsError> {
    let now = chrono::Utc::now().timestamp();
    let cache_key = format!("{account}/{role}/{name}");
    if let Some(c) = l.credentials.lock().get(&cache_key)
        && c.expires - now > 3600
    {
        return Ok(c.clone());
    }
    let registry = l
        .registry
        .get()
        .ok_or_else(|| AwsError::internal("Lambda started without STS"))?;
    let ctx = RequestContext::internal(account, region, &l.config.endpoint);
    let out = registry
        .call(
            &ctx,
            "sts",
            "AssumeRole",
            json!({
                "RoleArn": role,
                "RoleSessionName": name,
                "DurationSeconds": 43_200,
            }),
        )
        .await?;
    let c = &out.body["Credentials"];
    let creds = Credentials {
        key: c["AccessKeyId"].as_str().unwrap_or_default().to_owned(),
        secret: c["SecretAccessKey"].as_str().unwrap_or_default().to_owned(),
        token: c["SessionToken"].as_str().unwrap_or_default().to_owned(),
        expires: c["Expiration"].as_i64().unwrap_or(now + 43_200),
    };
    l.credentials.lock().insert(cache_key, creds.clone());
    Ok(creds)
}

/// The package unpacked on this node (fetched from the blob store on first use).
async fn task_root(l: &Lambda, account: &str, hex: &str) -> Result<std::path::PathBuf, AwsError> {
    let root = l.engine.config.work_dir.join("code");
    let dir = root.join(hex);
    if dir.is_dir() {
        return Ok(dir);
    }
    let blobs = l.blobs.clone();
    let key = blob_key(account, hex);
    tokio::task::spawn_blocking(move || {
        let zip = blobs
            .get(&key)?
            .ok_or_else(|| AwsError::internal(format!("the package {key} is missing")))?;
        basalt_functions::unpack::unpack(&zip, &root).map_err(|e| AwsError::internal(e.to_string()))
    })
    .await
    .map_err(|e| AwsError::internal(e.to_string()))?
}

/// The function's layers unpacked in order on this node: its `/opt`.
async fn opt_root(
    l: &Lambda,
    account: &str,
    hexes: Vec<String>,
) -> Result<std::path::PathBuf, AwsError> {
    let root = l.engine.config.work_dir.join("opt");
    let dir = root.join(basalt_functions::unpack::layers_name(&hexes));
    if dir.is_dir() {
        return Ok(dir);
    }
    let blobs = l.blobs.clone();
    let account = account.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut zips = Vec::with_capacity(hexes.len());
        for hex in &hexes {
            let key = blob_key(&account, hex);
            zips.push(blobs.get(&key)?.ok_or_else(|| {
                AwsError::internal(format!("the layer package {key} is missing"))
            })?);
        }
        let refs: Vec<&[u8]> = zips.iter().map(|z| z.as_ref()).collect();
        basalt_functions::unpack::unpack_layers(&refs, &root)
            .map_err(|e| AwsError::internal(e.to_string()))
    })
    .await
    .map_err(|e| AwsError::internal(e.to_string()))?
}

/// What the engine runs for `config`: the unpacked package and layers, the role's
/// credentials and every variable AWS sets.
pub(crate) async fn spec_for(
    l: &Lambda,
    account: &str,
    region: &str,
    name: &str,
    config: &Config,
) -> Result<Arc<EnvSpec>, AwsError> {
    let arn = function_arn(region, account, name);
    let root = task_root(l, account, &config.code_hex).await?;
    let opt_dir = match config.layer_hexes.as_slice() {
        [] => None,
        hexes => Some(opt_root(l, account, hexes.to_vec()).await?),
    };
    let creds = credentials(l, account, region, &config.role, name).await?;
    let mut vars: Vec<(String, String)> = config
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.extend([
        ("AWS_REGION".into(), region.to_owned()),
        ("AWS_DEFAULT_REGION".into(), region.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), config.version.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            config.memory.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            log_group_of(name, config),
        ),
        (
            "AWS_EXECUTION_ENV".into(),
            format!("AWS_Lambda_{}", config.runtime),
        ),
        ("AWS_ENDPOINT_URL".into(), l.config.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID".into(), creds.key),
        ("AWS_SECRET_ACCESS_KEY".into(), creds.secret),
        ("AWS_SESSION_TOKEN".into(), creds.token),
    ]);
    Ok(Arc::new(EnvSpec {
        key: spec_key(&arn, config),
        concurrency_key: arn,
        runtime: config.runtime.clone(),
        handler: config.handler.clone(),
        task_root: root,
        opt_dir,
        memory_mb: config.memory,
        ephemeral_mb: config.ephemeral,
        timeout: Duration::from_secs(u64::from(config.timeout)),
        vars,
        version: config.version.clone(),
    }))
}

/// Environments of one key are interchangeable: same version, configuration and code.
pub(crate) fn spec_key(arn: &str, config: &Config) -> String {
    format!(
        "{arn}:{}:{}:{}",
        config.version, config.revision_id, config.code_hex
    )
}

fn log_group_of(name: &str, config: &Config) -> String {
    config
        .logging
        .as_ref()
        .and_then(|c| c.get("LogGroup"))
        .and_then(Value::as_str)
        .map_or_else(|| format!("/aws/lambda/{name}"), str::to_owned)
}

/// Runs one invocation of `config` and sends its output to CloudWatch Logs.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    l: &Lambda,
    account: &str,
    region: &str,
    name: &str,
    config: &Config,
    reserved: Option<u32>,
    invoked_arn: String,
    payload: Bytes,
    request_id: String,
) -> Result<Outcome, AwsError> {
    let spec = spec_for(l, account, region, name, config).await?;
    let log_group = log_group_of(name, config);
    let inv = Invocation {
        request_id,
        payload,
        invoked_arn,
        client_context: None,
        trace_id: format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            chrono::Utc::now().timestamp(),
            &uuid::Uuid::new_v4().simple().to_string()[..24],
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ),
    };
    let outcome = l.engine.invoke(&spec, &inv, reserved).await;
    publish_metrics(
        l,
        account,
        region,
        name,
        outcome.as_ref().ok(),
        matches!(outcome, Err(EngineError::Throttled)),
    );
    let outcome = outcome.map_err(|e| match e {
        EngineError::Throttled => AwsError::new(429, "TooManyRequestsException", "Rate Exceeded.")
            .with_field(
                "Reason",
                "ReservedFunctionConcurrentInvocationLimitExceeded",
            )
            .with_field("Type", "User"),
        EngineError::RuntimeMissing(why) => {
            AwsError::new(502, "InvalidRuntimeException", why).with_field("Type", "User")
        }
        EngineError::Start(why) => AwsError::new(500, "ServiceException", why),
    })?;
    let stream = if outcome.log_stream.is_empty() {
        format!(
            "{}/[{}]{}",
            chrono::Utc::now().format("%Y/%m/%d"),
            config.version,
            uuid::Uuid::new_v4().simple()
        )
    } else {
        outcome.log_stream.clone()
    };
    send(
        l,
        Telemetry::Logs(basalt_logs::Append {
            scope: format!("{account}/{region}"),
            group: log_group,
            stream,
            events: outcome.logs.clone(),
        }),
    );
    Ok(outcome)
}

/// The `AWS/Lambda` metrics of one invocation (dimension `FunctionName`).
fn publish_metrics(
    l: &Lambda,
    account: &str,
    region: &str,
    name: &str,
    outcome: Option<&Outcome>,
    throttled: bool,
) {
    let mut metrics: Vec<(&str, f64, &str)> = Vec::new();
    match outcome {
        Some(o) => {
            metrics.push(("Invocations", 1.0, "Count"));
            metrics.push(("Errors", if o.result.is_err() { 1.0 } else { 0.0 }, "Count"));
            metrics.push((
                "Duration",
                o.duration.as_secs_f64() * 1000.0,
                "Milliseconds",
            ));
            // This invocation included: it has finished by now.
            let running = l.engine.running(&function_arn(region, account, name)) + 1;
            metrics.push(("ConcurrentExecutions", f64::from(running), "Count"));
        }
        None if throttled => metrics.push(("Throttles", 1.0, "Count")),
        None => return,
    }
    let now = chrono::Utc::now().timestamp_millis();
    send(
        l,
        Telemetry::Points(
            metrics
                .into_iter()
                .map(|(metric, value, unit)| basalt_store::metrics::DataPoint {
                    account_id: account.to_owned(),
                    region: region.to_owned(),
                    namespace: "AWS/Lambda".into(),
                    metric: metric.into(),
                    dimensions: [("FunctionName".to_owned(), name.to_owned())].into(),
                    value,
                    unit: unit.into(),
                    timestamp_ms: now,
                })
                .collect(),
        ),
    );
}

/// Function output and data points, written after the answer (as CloudWatch receives them a
/// moment later on AWS too).
pub(crate) enum Telemetry {
    Logs(basalt_logs::Append),
    Points(Vec<basalt_store::metrics::DataPoint>),
}

/// How long the writer gathers telemetry before one commit: invocations that end within it
/// share a transaction (and its fsync).
const TELEMETRY_WINDOW: Duration = Duration::from_millis(50);

fn send(l: &Lambda, t: Telemetry) {
    let tx = l.telemetry.get_or_init(|| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Telemetry>();
        let (logs, metrics) = (l.logs.clone(), l.metrics.clone());
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                tokio::time::sleep(TELEMETRY_WINDOW).await;
                let mut batch = vec![first];
                while batch.len() < 1024
                    && let Ok(t) = rx.try_recv()
                {
                    batch.push(t);
                }
                let (logs, metrics) = (logs.clone(), metrics.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    let mut appends = Vec::new();
                    let mut points = Vec::new();
                    for t in batch {
                        match t {
                            Telemetry::Logs(a) => appends.push(a),
                            Telemetry::Points(p) => points.extend(p),
                        }
                    }
                    if let Err(e) = logs.append(&appends, &metrics.ops(&points)) {
                        tracing::warn!("writing function logs and metrics: {}", e.message);
                    }
                })
                .await;
            }
        });
        tx
    });
    let _ = tx.send(t);
}

/// A queued asynchronous invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Queued {
    account: String,
    region: String,
    name: String,
    /// The version it runs (resolved when accepted, as AWS resolves aliases then).
    version: String,
    qualifier: Option<String>,
    invoked_arn: String,
    payload: String,
    request_id: String,
    attempt: u32,
    accepted_ms: i64,
    /// What the previous attempt answered, for the record of an event that then grew too
    /// old to run again.
    #[serde(default)]
    last: Option<Response>,
}

fn enqueue(
    l: &Lambda,
    ctx: &RequestContext,
    name: &str,
    version: &str,
    qualifier: Option<&str>,
    invoked_arn: &str,
    payload: &[u8],
) -> Result<String, AwsError> {
    let q = Queued {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        name: name.to_owned(),
        version: version.to_owned(),
        qualifier: qualifier.map(str::to_owned),
        invoked_arn: invoked_arn.to_owned(),
        payload: B64.encode(payload),
        request_id: ctx.request_id.clone(),
        attempt: 0,
        accepted_ms: l.state.clock_ms()?,
        last: None,
    };
    let bytes = serde_json::to_vec(&q).map_err(|e| AwsError::internal(e.to_string()))?;
    l.state
        .enqueue(ASYNC_QUEUE, &q.request_id, &bytes, q.accepted_ms)?;
    if let Some(n) = l.async_wake.get() {
        n.notify_one();
    }
    Ok(q.request_id)
}

/// Due items of `queue`, at most `n`, leased to this node.
async fn claim_some(l: &Lambda, queue: &'static str, n: usize) -> Vec<basalt_store::Claim> {
    if n == 0 {
        return Vec::new();
    }
    let (state, lease_ms) = (l.state.clone(), l.config.lease_ms);
    tokio::task::spawn_blocking(move || {
        let now = state.clock_ms()?;
        state.claim(queue, now, lease_ms, n)
    })
    .await
    .unwrap_or_else(|e| Err(basalt_store::StoreError::Other(e.to_string())))
    .unwrap_or_else(|e| {
        tracing::warn!("claiming from {queue}: {e}");
        Vec::new()
    })
}

/// Starts the worker of asynchronous invocations and of what they send to destinations and
/// dead-letter queues.
pub(crate) fn start_async_worker(l: Arc<Lambda>) {
    let wake = l
        .async_wake
        .get_or_init(|| Arc::new(tokio::sync::Notify::new()))
        .clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(8));
    let send_slots = Arc::new(tokio::sync::Semaphore::new(16));
    tokio::spawn(async move {
        loop {
            let claimed = claim_some(&l, ASYNC_QUEUE, slots.available_permits()).await;
            let sends = claim_some(&l, destinations::QUEUE, send_slots.available_permits()).await;
            let idle = claimed.is_empty() && sends.is_empty();
            for claim in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let l = l.clone();
                tokio::spawn(async move {
                    run_queued(&l, claim).await;
                    drop(permit);
                });
            }
            for claim in sends {
                let Ok(permit) = send_slots.clone().acquire_owned().await else {
                    return;
                };
                let l = l.clone();
                tokio::spawn(async move {
                    destinations::run_claim(&l, claim).await;
                    drop(permit);
                });
            }
            if idle {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    });
}

/// The retry and age limits of an asynchronous invocation (its qualifier's event invoke
/// settings, AWS's defaults otherwise).
fn limits(settings: &Value) -> (u32, i64) {
    let max_retries = settings
        .get("MaximumRetryAttempts")
        .and_then(Value::as_u64)
        .unwrap_or(2) as u32;
    let max_age_ms = settings
        .get("MaximumEventAgeInSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_MAX_EVENT_AGE_S)
        * 1000;
    (max_retries, max_age_ms)
}

/// What to do after attempt `attempt` (0 for the first) of an invocation accepted at
/// `accepted_ms` failed at `now`: retry at the returned time, or stop for the returned
/// reason.
fn after_failure(
    attempt: u32,
    accepted_ms: i64,
    now: i64,
    settings: &Value,
    delays: [i64; 2],
) -> Result<i64, Condition> {
    let (max_retries, max_age_ms) = limits(settings);
    if attempt >= max_retries {
        return Err(Condition::RetriesExhausted);
    }
    let due = now + delays[(attempt as usize).min(delays.len() - 1)];
    if due - accepted_ms > max_age_ms {
        return Err(Condition::EventAgeExceeded);
    }
    Ok(due)
}

/// Runs one claimed invocation, renewing its lease meanwhile; records completion, a retry or
/// the final failure in the same transaction that removes the item, together with what goes
/// to the invocation's destination or dead-letter queue.
async fn run_queued(l: &Arc<Lambda>, claim: basalt_store::Claim) {
    let Ok(q) = serde_json::from_slice::<Queued>(&claim.payload) else {
        tracing::warn!(
            "dropping an unreadable asynchronous invocation {}",
            claim.id
        );
        let _ = l.state.complete(&claim, &[]);
        return;
    };
    let renewer = {
        let (state, claim, lease_ms) = (l.state.clone(), claim.clone(), l.config.lease_ms);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(lease_ms as u64 / 3)).await;
                let state = state.clone();
                let claim = claim.clone();
                let ok = tokio::task::spawn_blocking(move || {
                    let now = state.clock_ms()?;
                    state.renew(&claim, now, lease_ms)
                })
                .await;
                if !matches!(ok, Ok(Ok(_))) {
                    return;
                }
            }
        })
    };
    let ctx = RequestContext::internal(&q.account, &q.region, &l.config.endpoint);
    let loaded = load(l, &ctx, &q.name).and_then(|(rec, _)| {
        let qualifier = (q.version != LATEST).then_some(q.version.as_str());
        let config = resolve_config(l, &ctx, &rec, qualifier)?;
        Ok((rec, config))
    });
    let (rec, config) = match loaded {
        Ok(found) => found,
        Err(e) => {
            renewer.abort();
            let done = if e.code == "ResourceNotFoundException" {
                // The function is gone: nothing left to run.
                l.state.complete(&claim, &[])
            } else {
                // The store failed us: try again shortly, as after an expired lease.
                let now = l.state.clock_ms().unwrap_or(q.accepted_ms);
                l.state.release(&claim, now + 1000)
            };
            if let Err(e) = done {
                tracing::warn!("recording asynchronous invocation {}: {e}", q.request_id);
            }
            return;
        }
    };
    let settings = rec
        .event_invoke
        .get(q.qualifier.as_deref().unwrap_or(LATEST))
        .cloned()
        .unwrap_or(Value::Null);
    let payload = B64.decode(&q.payload).unwrap_or_default();
    let (_, max_age_ms) = limits(&settings);
    let started = l.state.clock_ms().unwrap_or(q.accepted_ms);
    // Too old to run (it waited behind others, or on a dead node's lease): discarded.
    let response = if started - q.accepted_ms > max_age_ms {
        None
    } else {
        let outcome = run(
            l,
            &q.account,
            &q.region,
            &q.name,
            &config,
            rec.reserved_concurrency,
            q.invoked_arn.clone(),
            Bytes::from(payload.clone()),
            q.request_id.clone(),
        )
        .await;
        Some(match &outcome {
            Ok(o) => match &o.result {
                Ok(body) => (true, Response::of_body(&config.version, body, false)),
                Err(e) => (false, Response::of_body(&config.version, &e.body, true)),
            },
            // Throttled or a platform failure: retried like a function error.
            Err(e) => (false, Response::of_error(&config.version, e)),
        })
    };
    renewer.abort();
    let now = l.state.clock_ms().unwrap_or(q.accepted_ms);
    let (condition, invoke_count, last) = match response {
        Some((true, r)) => (Condition::Success, q.attempt + 1, Some(r)),
        Some((false, r)) => {
            match after_failure(
                q.attempt,
                q.accepted_ms,
                now,
                &settings,
                l.config.retry_delays_ms,
            ) {
                Ok(due) => {
                    let next = Queued {
                        attempt: q.attempt + 1,
                        last: Some(r),
                        ..q.clone()
                    };
                    let mut ops = Vec::new();
                    if let Ok(payload) = serde_json::to_vec(&next) {
                        ops.push(WriteOp::Enqueue {
                            queue: ASYNC_QUEUE.into(),
                            id: format!("{}#{}", q.request_id, next.attempt),
                            payload,
                            due_ms: due,
                        });
                    }
                    if let Err(e) = l.state.complete(&claim, &ops) {
                        tracing::warn!("recording asynchronous invocation {}: {e}", q.request_id);
                    }
                    return;
                }
                Err(condition) => (condition, q.attempt + 1, Some(r)),
            }
        }
        None => (Condition::EventAgeExceeded, q.attempt, q.last.clone()),
    };
    let send = destinations::send_for(
        &settings,
        config.dead_letter.as_deref(),
        &function_arn(&q.region, &q.account, &q.name),
        &q.request_id,
        condition,
        invoke_count,
        &payload,
        last.as_ref(),
        &config.version,
        now,
    );
    let mut ops = Vec::new();
    match &send {
        Some(s) => ops.extend(destinations::enqueue_op(s, &q.request_id, now)),
        None if condition != Condition::Success => tracing::warn!(
            function = %q.name,
            request_id = %q.request_id,
            "asynchronous invocation failed after {invoke_count} attempts ({condition:?}); it has no destination or dead-letter queue"
        ),
        None => {}
    }
    match l.state.complete(&claim, &ops) {
        Ok(()) if !ops.is_empty() => {
            if let Some(n) = l.async_wake.get() {
                n.notify_one();
            }
        }
        Ok(()) => {}
        Err(e) => tracing::warn!("recording asynchronous invocation {}: {e}", q.request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stop_at_the_attempt_limit_or_the_event_age() {
        let delays = [60_000, 120_000];
        // AWS's defaults: two retries, six hours.
        assert_eq!(after_failure(0, 0, 10, &Value::Null, delays), Ok(60_010));
        assert_eq!(
            after_failure(1, 0, 60_010, &Value::Null, delays),
            Ok(180_010)
        );
        assert_eq!(
            after_failure(2, 0, 180_010, &Value::Null, delays),
            Err(Condition::RetriesExhausted)
        );
        let none = json!({"MaximumRetryAttempts": 0});
        assert_eq!(
            after_failure(0, 0, 10, &none, delays),
            Err(Condition::RetriesExhausted)
        );
        // The first retry would come 60.01 s after the event: older than its 60 s.
        let young = json!({"MaximumEventAgeInSeconds": 60});
        assert_eq!(
            after_failure(0, 0, 10, &young, delays),
            Err(Condition::EventAgeExceeded)
        );
        assert_eq!(after_failure(0, 0, 0, &young, delays), Ok(60_000));
    }
}
