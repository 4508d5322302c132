//! The OpenAI-compatible facade (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`) over
//! the same local models that serve Bedrock, so tools that speak OpenAI's API can use them.

use basalt_bedrock_runtime::guardrails::apply::Resolved;
use basalt_bedrock_runtime::guardrails::model::{self as guarded, Trace};
use basalt_bedrock_runtime::{BedrockRuntime, Runtime};
use basalt_chat::providers::{self, Family, StreamEncoder};
use basalt_core::RequestContext;
use basalt_gateway::{Body, RawHandler, full};
use basalt_models::ChatEvent;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Limited, StreamBody};
use serde_json::{Value, json};
use std::sync::Arc;

/// The provider body family whose format is OpenAI's own.
const OPENAI: Family = Family::OpenAiGptOss;
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct OpenAi {
    pub runtime: Arc<Runtime>,
    /// Guardrails named by the `x-basalt-guardrail-identifier` and
    /// `x-basalt-guardrail-version` headers (OpenAI's API has no member for one), evaluated
    /// as on Bedrock, in the default account and region.
    pub guardrails: Option<Guarding>,
}

pub struct Guarding {
    pub bedrock: BedrockRuntime,
    pub account_id: String,
    pub region: String,
}

const GUARDRAIL_ID_HEADER: &str = "x-basalt-guardrail-identifier";
const GUARDRAIL_VERSION_HEADER: &str = "x-basalt-guardrail-version";

/// A guardrail resolved for one chat, with the context its metrics are recorded in.
struct Guard<'a> {
    bedrock: &'a BedrockRuntime,
    ctx: RequestContext,
    resolved: Resolved,
}

fn json_response(status: u16, v: &Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}

fn error(status: u16, kind: &str, message: &str) -> http::Response<Body> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

fn from_aws(e: basalt_core::AwsError) -> http::Response<Body> {
    let kind = match e.status {
        429 => "rate_limit_exceeded",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    error(e.status, kind, &e.message)
}

impl RawHandler for OpenAi {
    fn handle(
        &self,
        req: http::Request<basalt_gateway::RequestBody>,
    ) -> BoxFuture<'static, http::Response<Body>> {
        let runtime = self.runtime.clone();
        let guarding = self
            .guardrails
            .as_ref()
            .map(|g| (g.bedrock.clone(), g.account_id.clone(), g.region.clone()));
        async move {
            let (parts, body) = req.into_parts();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let guard_id = header(GUARDRAIL_ID_HEADER);
            let guard_version = header(GUARDRAIL_VERSION_HEADER).unwrap_or_else(|| "DRAFT".into());
            let path = parts.uri.path().trim_end_matches('/').to_owned();
            match (parts.method.as_str(), path.as_str()) {
                ("GET", "/v1/models") => return models(),
                ("POST", "/v1/chat/completions" | "/v1/embeddings") => {}
                _ => {
                    return error(
                        404,
                        "invalid_request_error",
                        &format!("Unknown request URL: {} {}", parts.method, parts.uri.path()),
                    );
                }
            }
            let bytes = match Limited::new(body, MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return error(
                        413,
                        "invalid_request_error",
                        "Request body too large or unreadable.",
                    );
                }
            };
            let body: Value = match serde_json::from_slice(&bytes) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return error(
                        400,
                        "invalid_request_error",
                        "We could not parse the JSON body of your request.",
                    );
                }
            };
            if path == "/v1/embeddings" {
                return embeddings(&runtime, &body).await;
            }
            let guard = match (guard_id, &guarding) {
                (Some(id), Some((bedrock, account, region))) => {
                    let ctx = RequestContext::internal(account, region, "");
                    match bedrock.resolve_guardrail(&ctx, &id, &guard_version).await {
                        Ok(resolved) => Some(Guard {
                            bedrock,
                            ctx,
                            resolved,
                        }),
                        Err(e) => return from_aws(e),
                    }
                }
                _ => None,
            };
            chat(&runtime, &body, guard.as_ref()).await
        }
        .boxed()
    }
}

fn models() -> http::Response<Body> {
    let data: Vec<Value> = basalt_models::pull::DEFAULTS
        .iter()
        .map(|m| json!({"id": m.name, "object": "model", "created": 0, "owned_by": "basalt"}))
        .collect();
    json_response(200, &json!({"object": "list", "data": data}))
}

/// OpenAI's answer when a guardrail intervened: `finish_reason` `content_filter`, and a
/// header saying so.
fn guarded_response(mut out: Value, intervened: bool) -> http::Response<Body> {
    if intervened && let Some(c) = out["choices"].get_mut(0) {
        c["finish_reason"] = json!("content_filter");
    }
    let mut resp = json_response(200, &out);
    if let Ok(v) = http::HeaderValue::from_str(if intervened { "INTERVENED" } else { "NONE" }) {
        resp.headers_mut().insert("x-basalt-guardrail-action", v);
    }
    resp
}

async fn chat(runtime: &Runtime, body: &Value, guard: Option<&Guard<'_>>) -> http::Response<Body> {
    let model_name = body["model"].as_str().unwrap_or("local").to_owned();
    let mut req = match providers::parse_chat(OPENAI, "openai.gpt-oss-20b-1:0", body) {
        Ok(r) => r,
        Err(e) => return from_aws(e),
    };
    let mut input_intervened = false;
    if let Some(g) = guard {
        let judged = guarded::user_input(&req);
        let checked = g
            .bedrock
            .check_input(
                &g.ctx,
                &g.resolved,
                "OpenAIChatCompletions",
                &mut req,
                &judged,
                Trace::Disabled,
            )
            .await;
        match checked {
            Ok(Some(e)) if e.outcome.blocked => {
                let resp = guarded::blocked_response(&e.outcome.outputs[0]);
                let mut out = providers::chat_response_body(OPENAI, &model_name, &req, &resp);
                out["model"] = json!(model_name);
                return guarded_response(out, true);
            }
            Ok(e) => input_intervened = e.is_some_and(|e| e.outcome.intervened),
            Err(e) => return from_aws(e),
        }
    }
    // `GET /v1/models` lists the agents' larger model too; asking for it by name gets it.
    let local = if body["model"].as_str() == Some(basalt_models::pull::AGENT_CHAT_NAME) {
        basalt_bedrock_runtime::LocalChat::Agent
    } else {
        basalt_bedrock_runtime::LocalChat::Default
    };
    let model = match runtime.local_chat("openai.gpt-oss-20b-1:0", local).await {
        Ok(m) => m,
        Err(e) => return from_aws(e),
    };
    // A guarded answer is judged whole before any of it is sent, streamed or not (Bedrock's
    // sync mode): it is generated in one piece and, when streamed, sent as one chunk.
    if body["stream"].as_bool() != Some(true) || guard.is_some() {
        let mut resp = match model.complete(&req).await {
            Ok(resp) => resp,
            Err(e) => return from_aws(basalt_bedrock_runtime::chat_error_public(e)),
        };
        let mut intervened = input_intervened;
        if let Some(g) = guard {
            match g
                .bedrock
                .check_output(
                    &g.ctx,
                    &g.resolved,
                    "OpenAIChatCompletions",
                    &mut resp,
                    Trace::Disabled,
                )
                .await
            {
                Ok(e) => intervened |= e.is_some_and(|e| e.outcome.intervened),
                Err(e) => return from_aws(e),
            }
        }
        if body["stream"].as_bool() == Some(true) {
            return stream_whole(&model_name, &req, &resp, intervened, body);
        }
        let mut out = providers::chat_response_body(OPENAI, &model_name, &req, &resp);
        out["model"] = json!(model_name);
        return if guard.is_some() {
            guarded_response(out, intervened)
        } else {
            json_response(200, &out)
        };
    }
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let input_tokens = model.count_tokens(&req).await.unwrap_or(0) as u32;
    let mut events = match model.stream(&req).await {
        Ok(rx) => rx,
        Err(e) => return from_aws(basalt_bedrock_runtime::chat_error_public(e)),
    };
    let (tx, rx) = futures::channel::mpsc::unbounded::<
        Result<hyper::body::Frame<Bytes>, basalt_gateway::body_error::BoxError>,
    >();
    tokio::spawn(async move {
        let send = |v: Value| {
            let mut v = v;
            if v.get("model").is_some() {
                v["model"] = json!(model_name);
            }
            tx.unbounded_send(Ok(hyper::body::Frame::data(Bytes::from(format!(
                "data: {v}\n\n"
            )))))
            .is_ok()
        };
        let mut enc = StreamEncoder::new(OPENAI, &model_name, &req, input_tokens);
        for v in enc.start() {
            send(v);
        }
        while let Some(ev) = events.recv().await {
            match ev {
                Ok(ChatEvent::Delta(d)) => {
                    for v in enc.delta(&d) {
                        if !send(v) {
                            return;
                        }
                    }
                }
                Ok(ChatEvent::Done(resp)) => {
                    for mut v in enc.finish(
                        &resp.stop_reason,
                        &resp.usage,
                        resp.latency_ms,
                        resp.first_token_ms,
                    ) {
                        // Bedrock's metrics trailer is not part of OpenAI's format.
                        if let Some(o) = v.as_object_mut() {
                            o.remove("amazon-bedrock-invocationMetrics");
                            if !include_usage {
                                o.remove("usage");
                            }
                        }
                        send(v);
                    }
                    break;
                }
                Err(e) => {
                    send(json!({"error": {"message": e.to_string(), "type": "server_error"}}));
                    break;
                }
            }
        }
        let _ = tx.unbounded_send(Ok(hyper::body::Frame::data(Bytes::from_static(
            b"data: [DONE]\n\n",
        ))));
    });
    http::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed_unsync(StreamBody::new(rx)))
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}

/// A finished answer as an OpenAI event stream (a guarded answer, judged whole first).
fn stream_whole(
    model_name: &str,
    req: &basalt_chat::ChatRequest,
    resp: &basalt_chat::ChatResponse,
    intervened: bool,
    body: &Value,
) -> http::Response<Body> {
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let mut enc = StreamEncoder::new(OPENAI, model_name, req, resp.usage.input_tokens);
    let mut events = enc.start();
    for (index, b) in resp.content.iter().enumerate() {
        if let basalt_chat::ContentBlock::Text(text) = b {
            events.extend(enc.delta(&basalt_chat::Delta::Text {
                index,
                text: text.clone(),
            }));
        }
    }
    events.extend(enc.finish(
        &resp.stop_reason,
        &resp.usage,
        resp.latency_ms,
        resp.first_token_ms,
    ));
    let mut out = String::new();
    for mut v in events {
        if let Some(o) = v.as_object_mut() {
            o.remove("amazon-bedrock-invocationMetrics");
            if !include_usage {
                o.remove("usage");
            }
            if o.contains_key("model") {
                o.insert("model".into(), json!(model_name));
            }
        }
        if intervened
            && let Some(c) = v["choices"].get_mut(0)
            && !c["finish_reason"].is_null()
        {
            c["finish_reason"] = json!("content_filter");
        }
        out.push_str(&format!("data: {v}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    http::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header(
            "x-basalt-guardrail-action",
            if intervened { "INTERVENED" } else { "NONE" },
        )
        .body(full(out.into_bytes()))
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}

async fn embeddings(runtime: &Runtime, body: &Value) -> http::Response<Body> {
    let texts: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return error(
                400,
                "invalid_request_error",
                "'input' must be a string or a non-empty array of strings.",
            );
        }
    };
    let model_name = body["model"]
        .as_str()
        .unwrap_or("all-minilm-l6-v2")
        .to_owned();
    let model = match runtime.embedding_for("amazon.titan-embed-text-v2:0").await {
        Ok(m) => m,
        Err(e) => return from_aws(e),
    };
    let dims = body["dimensions"].as_u64().map(|d| d as usize);
    let (vectors, counts) = match model.embed(texts).await {
        Ok(r) => r,
        Err(e) => return from_aws(basalt_bedrock_runtime::chat_error_public(e)),
    };
    let tokens: usize = counts.iter().sum();
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = match dims {
                Some(d) => providers::fit_dimensions(v, d),
                None => v.clone(),
            };
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    json_response(
        200,
        &json!({"object": "list", "data": data, "model": model_name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}
