//! Amazon Bedrock runtime on local models.
//!
//! Every model id a user may call resolves through the [`catalog`] to a local model; the
//! body formats of each provider come from `basalt_chat::providers`; generation runs in
//! `basalt_models`. Token counts, latency and cost of every invocation are accounted in
//! [`accounting`].

pub mod accounting;
pub mod catalog;
mod converse;
pub mod guardrails;
pub mod prompt_cache;
mod runtime;

use accounting::Accounting;
use basalt_chat::providers::{self, StreamEncoder};
use basalt_chat::{ChatRequest, Delta};
use basalt_core::{AwsError, Output, RequestContext, Service, StreamEvent};
use basalt_models::{ChatError, ChatEvent};
use base64::Engine;
use futures::StreamExt;
use guardrails::model::{self, Trace};
pub use runtime::{LocalChat, Runtime, RuntimeConfig};
use serde_json::{Value, json};
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Cheap to clone: streams carry a clone into the task that feeds them.
#[derive(Clone)]
pub struct BedrockRuntime {
    runtime: Arc<Runtime>,
    pub accounting: Arc<Accounting>,
    pub guardrails: Arc<guardrails::Guardrails>,
    prompt_cache: Arc<prompt_cache::PromptCache>,
}

impl BedrockRuntime {
    pub fn new(
        runtime: Arc<Runtime>,
        accounting: Arc<Accounting>,
        guardrails: Arc<guardrails::Guardrails>,
        prompt_cache: Arc<prompt_cache::PromptCache>,
    ) -> Self {
        BedrockRuntime {
            runtime,
            accounting,
            guardrails,
            prompt_cache,
        }
    }
}

/// A Converse call: model id, request, model, and counted cache checkpoints.
type ConverseCall = (
    String,
    ChatRequest,
    Arc<basalt_models::ChatBackend>,
    Vec<prompt_cache::Counted>,
);

/// The checkpoints' prefixes in the model's tokens.
async fn count_checkpoints(
    model: &basalt_models::ChatBackend,
    points: Vec<prompt_cache::Checkpoint>,
) -> Result<Vec<prompt_cache::Counted>, AwsError> {
    let mut counted = Vec::with_capacity(points.len());
    for p in points {
        counted.push(prompt_cache::Counted {
            tokens: model.count_tokens(&p.prefix).await.map_err(chat_error)? as u32,
            content: p.content,
            one_hour: p.one_hour,
        });
    }
    Ok(counted)
}

/// Maps runtime failures to Bedrock's errors (also used by the OpenAI facade).
pub fn chat_error_public(e: ChatError) -> AwsError {
    chat_error(e)
}

/// A runtime failure in the middle of a stream, as the stream's exception event.
fn stream_error(e: ChatError) -> (&'static str, AwsError) {
    let err = chat_error(e);
    // The exception members of ConverseStreamOutput and ResponseStream.
    let name = match err.code.as_str() {
        "ThrottlingException" => "throttlingException",
        "ServiceUnavailableException" => "serviceUnavailableException",
        "ValidationException" => "validationException",
        _ => "modelStreamErrorException",
    };
    (name, err)
}

/// Maps runtime failures to Bedrock's errors.
pub(crate) fn chat_error(e: ChatError) -> AwsError {
    match e {
        ChatError::TooLong { .. } => AwsError::validation("Input is too long for requested model."),
        ChatError::Busy => {
            AwsError::throttling("Too many requests, please wait before trying again.")
        }
        ChatError::Invalid(m) => AwsError::validation(m),
        ChatError::Engine(m) => AwsError::new(424, "ModelErrorException", m),
        ChatError::Unavailable(m) => AwsError::new(503, "ServiceUnavailableException", m),
        ChatError::NotReady(m) => AwsError::new(429, "ModelNotReadyException", m),
    }
}

fn model_id(input: &Value) -> Result<String, AwsError> {
    input["modelId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AwsError::validation("1 validation error detected: Value null at 'modelId' failed to satisfy constraint: Member must not be null"))
}

pub(crate) fn invalid_model() -> AwsError {
    AwsError::validation("The provided model identifier is invalid.")
}

/// The provider family of a model id Basalt serves, or Bedrock's invalid-identifier error.
fn family_of(id: &str) -> Result<providers::Family, AwsError> {
    if !catalog::is_known(id) {
        return Err(invalid_model());
    }
    providers::family_of(id).ok_or_else(invalid_model)
}

fn decode_body(input: &Value) -> Result<Value, AwsError> {
    let raw = input["body"].as_str().unwrap_or("");
    let bytes = B64.decode(raw).map_err(|_| {
        AwsError::validation("Malformed input request, please reformat your input and try again.")
    })?;
    if bytes.is_empty() {
        return Err(AwsError::validation(
            "Malformed input request: body is empty, please reformat your input and try again.",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        AwsError::validation(format!(
            "Malformed input request: {e}, please reformat your input and try again."
        ))
    })
}

/// Removes `amazon-bedrock-guardrailConfig` from an InvokeModel body (it is for Bedrock,
/// not the model) and returns its `tagSuffix` and whether streams are checked async.
fn take_guardrail_config(body: &mut Value) -> (Option<String>, bool) {
    let cfg = body
        .as_object_mut()
        .and_then(|o| o.remove("amazon-bedrock-guardrailConfig"))
        .unwrap_or(Value::Null);
    (
        cfg["tagSuffix"].as_str().map(str::to_owned),
        cfg["streamProcessingMode"].as_str() == Some("ASYNCHRONOUS"),
    )
}

/// InvokeModel's response: the provider body and the token and latency headers.
fn invoke_output(body: &Value, resp: &basalt_chat::ChatResponse) -> Output {
    let out = Output::new(json!({"body": B64.encode(serde_json::to_vec(body).unwrap_or_default()), "contentType": "application/json"}))
        .header("X-Amzn-Bedrock-Input-Token-Count", resp.usage.input_tokens)
        .header("X-Amzn-Bedrock-Output-Token-Count", resp.usage.output_tokens)
        .header("X-Amzn-Bedrock-Invocation-Latency", resp.latency_ms);
    if resp.usage.cache_read_input_tokens + resp.usage.cache_write_input_tokens == 0 {
        return out;
    }
    out.header(
        "X-Amzn-Bedrock-Cache-Read-Input-Token-Count",
        resp.usage.cache_read_input_tokens,
    )
    .header(
        "X-Amzn-Bedrock-Cache-Write-Input-Token-Count",
        resp.usage.cache_write_input_tokens,
    )
}

/// Adds InvokeModel's guardrail members to a provider body.
fn mark_guarded(out: &mut Value, intervened: bool, trace: Option<Value>) {
    if let Some(o) = out.as_object_mut() {
        o.insert(
            "amazon-bedrock-guardrailAction".into(),
            if intervened { "INTERVENED" } else { "NONE" }.into(),
        );
        if let Some(t) = trace {
            o.insert("amazon-bedrock-trace".into(), t);
        }
    }
}

impl BedrockRuntime {
    /// The guardrail a request names (`guardrailIdentifier`/`guardrailVersion`), resolved.
    async fn requested_guardrail(
        &self,
        ctx: &RequestContext,
        identifier: Option<&Value>,
        version: Option<&Value>,
    ) -> Result<Option<guardrails::apply::Resolved>, AwsError> {
        match guardrails::apply::requested(identifier, version)? {
            Some((id, v)) => Ok(Some(self.resolve_guardrail(ctx, &id, &v).await?)),
            None => Ok(None),
        }
    }

    async fn invoke_model(&self, ctx: &RequestContext, input: Value) -> Result<Output, AwsError> {
        let id = model_id(&input)?;
        let family = family_of(&id)?;
        let mut body = decode_body(&input)?;
        let (tag_suffix, _) = take_guardrail_config(&mut body);
        if family.is_embedding() {
            return self.embed(ctx, &id, family, &body).await;
        }
        let family = family.for_body(&body);
        let mut req = providers::parse_chat(family, &id, &body)?;
        let guard = self
            .requested_guardrail(
                ctx,
                input.get("guardrailIdentifier"),
                input.get("guardrailVersion"),
            )
            .await?;
        let trace = Trace::parse(input.get("trace"));
        let mut input_eval = None;
        if let Some(g) = &guard {
            let judged = model::invoke_input(&mut req, tag_suffix.as_deref());
            input_eval = self
                .check_input(ctx, g, "InvokeModel", &mut req, &judged, trace)
                .await?;
            if let Some(e) = input_eval.as_ref().filter(|e| e.outcome.blocked) {
                // Blocked before the model runs: no tokens, no invocation.
                let resp = model::blocked_response(&e.outcome.outputs[0]);
                let mut out = providers::chat_response_body(family, &id, &req, &resp);
                let t = (trace != Trace::Disabled).then(|| model::invoke_trace(g, Some(e), None));
                mark_guarded(&mut out, true, t);
                return Ok(invoke_output(&out, &resp));
            }
        }
        let model = self.runtime.chat_for(&id).await?;
        let points = match family {
            providers::Family::Anthropic => {
                count_checkpoints(
                    &model,
                    prompt_cache::anthropic_checkpoints(&id, &body, &req)?,
                )
                .await?
            }
            _ => Vec::new(),
        };
        let mut resp = model
            .complete(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        self.cache_usage(ctx, &id, &points, &mut resp.usage)?;
        self.accounting
            .record(ctx, &id, &resp.usage, resp.latency_ms);
        // Tool-use ids in the provider's own style (`toolu_bdrk_…` for Anthropic).
        for b in &mut resp.content {
            if let basalt_chat::ContentBlock::ToolUse { id: tool_id, .. } = b {
                *tool_id = providers::new_tool_use_id(family);
            }
        }
        let mut output_eval = None;
        if let Some(g) = &guard {
            output_eval = self
                .check_output(ctx, g, "InvokeModel", &mut resp, trace)
                .await?;
        }
        let mut out = providers::chat_response_body(family, &id, &req, &resp);
        if let Some(g) = &guard {
            let intervened = [&input_eval, &output_eval]
                .iter()
                .any(|e| e.as_ref().is_some_and(|e| e.outcome.intervened));
            let t = (trace != Trace::Disabled)
                .then(|| model::invoke_trace(g, input_eval.as_ref(), output_eval.as_ref()));
            mark_guarded(&mut out, intervened, t);
        }
        Ok(invoke_output(&out, &resp))
    }

    async fn invoke_stream(&self, ctx: &RequestContext, input: Value) -> Result<Output, AwsError> {
        let id = model_id(&input)?;
        let family = family_of(&id)?;
        let mut body = decode_body(&input)?;
        let (tag_suffix, async_mode) = take_guardrail_config(&mut body);
        if family.is_embedding() {
            return Err(AwsError::validation(
                "The model does not support streaming.",
            ));
        }
        let family = family.for_body(&body);
        let mut req = providers::parse_chat(family, &id, &body)?;
        let guard = self
            .requested_guardrail(
                ctx,
                input.get("guardrailIdentifier"),
                input.get("guardrailVersion"),
            )
            .await?;
        let trace = Trace::parse(input.get("trace"));
        let chunk = |v: Value| {
            Ok(StreamEvent {
                name: "chunk".into(),
                value: json!({"bytes": B64.encode(serde_json::to_vec(&v).unwrap_or_default())}),
            })
        };
        let mut input_eval = None;
        if let Some(g) = &guard {
            let judged = model::invoke_input(&mut req, tag_suffix.as_deref());
            input_eval = self
                .check_input(
                    ctx,
                    g,
                    "InvokeModelWithResponseStream",
                    &mut req,
                    &judged,
                    trace,
                )
                .await?;
            if let Some(e) = input_eval.as_ref().filter(|e| e.outcome.blocked) {
                let resp = model::blocked_response(&e.outcome.outputs[0]);
                let mut enc = StreamEncoder::new(family, &id, &req, 0);
                let mut chunks = enc.start();
                for d in model::rewrite_deltas(Vec::new(), &resp, true) {
                    chunks.extend(enc.delta(&d));
                }
                chunks.extend(enc.finish(&resp.stop_reason, &resp.usage, 0, 0));
                let t = (trace != Trace::Disabled).then(|| model::invoke_trace(g, Some(e), None));
                if let Some(last) = chunks.last_mut() {
                    mark_guarded(last, true, t);
                }
                let events: Vec<_> = chunks.into_iter().map(chunk).collect();
                return Ok(Output::with_stream(
                    json!({"contentType": "application/json"}),
                    futures::stream::iter(events).boxed(),
                ));
            }
        }
        let model = self.runtime.chat_for(&id).await?;
        let mut events = model
            .stream(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        let input_tokens = model.count_tokens(&req).await.map_err(chat_error)? as u32;
        // The stream's first event carries the cache usage, so the checkpoints are read and
        // written before the answer.
        let split = match family {
            providers::Family::Anthropic => {
                let points = count_checkpoints(
                    &model,
                    prompt_cache::anthropic_checkpoints(&id, &body, &req)?,
                )
                .await?;
                self.prompt_cache.apply(ctx, &id, &points)?
            }
            _ => prompt_cache::Split::default(),
        };
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<StreamEvent, AwsError>>();
        let this = self.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut enc = StreamEncoder::new(family, &id, &req, input_tokens);
            enc.cache_read_tokens = split.read;
            enc.cache_write_tokens = split.write;
            for v in enc.start() {
                let _ = tx.unbounded_send(chunk(v));
            }
            // Sync mode holds the answer back until the guardrail has judged it.
            let hold = guard.is_some() && !async_mode;
            let mut held = Vec::new();
            while let Some(ev) = events.recv().await {
                match ev {
                    Ok(ChatEvent::Delta(d)) => {
                        let d = match d {
                            Delta::ToolUseStart { index, name, .. } => Delta::ToolUseStart {
                                index,
                                id: providers::new_tool_use_id(family),
                                name,
                            },
                            other => other,
                        };
                        if hold {
                            held.push(d);
                            continue;
                        }
                        for v in enc.delta(&d) {
                            if tx.unbounded_send(chunk(v)).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(ChatEvent::Done(mut resp)) => {
                        prompt_cache::account(&mut resp.usage, split);
                        this.accounting
                            .record(&ctx, &id, &resp.usage, resp.latency_ms);
                        let mut marks = None;
                        if let Some(g) = &guard {
                            let output_eval = match this
                                .check_output(
                                    &ctx,
                                    g,
                                    "InvokeModelWithResponseStream",
                                    &mut resp,
                                    trace,
                                )
                                .await
                            {
                                Ok(e) => e,
                                Err(err) => {
                                    let _ = tx.unbounded_send(Ok(StreamEvent {
                                        name: "internalServerException".into(),
                                        value: json!({"message": err.message}),
                                    }));
                                    return;
                                }
                            };
                            let intervened = model::intervened(&input_eval, &output_eval);
                            if hold {
                                let deltas = model::release(
                                    std::mem::take(&mut held),
                                    &resp,
                                    &output_eval,
                                    intervened,
                                );
                                for d in deltas {
                                    for v in enc.delta(&d) {
                                        let _ = tx.unbounded_send(chunk(v));
                                    }
                                }
                            }
                            let t = (trace != Trace::Disabled).then(|| {
                                model::invoke_trace(g, input_eval.as_ref(), output_eval.as_ref())
                            });
                            marks = Some((intervened, t));
                        }
                        let mut chunks = enc.finish(
                            &resp.stop_reason,
                            &resp.usage,
                            resp.latency_ms,
                            resp.first_token_ms,
                        );
                        if let (Some((intervened, t)), Some(last)) = (marks, chunks.last_mut()) {
                            mark_guarded(last, intervened, t);
                        }
                        for v in chunks {
                            let _ = tx.unbounded_send(chunk(v));
                        }
                        return;
                    }
                    Err(e) => {
                        let (name, err) = stream_error(e);
                        let _ = tx.unbounded_send(Ok(StreamEvent {
                            name: name.into(),
                            value: json!({"message": err.message}),
                        }));
                        return;
                    }
                }
            }
        });
        Ok(Output::with_stream(
            json!({"contentType": "application/json"}),
            rx.boxed(),
        ))
    }

    async fn count_tokens(&self, input: Value) -> Result<Output, AwsError> {
        let id = model_id(&input)?;
        let family = family_of(&id)?;
        let req: ChatRequest = if let Some(invoke) = input["input"].get("invokeModel") {
            let body = decode_body(invoke)?;
            providers::parse_chat(family.for_body(&body), &id, &body)?
        } else if let Some(conv) = input["input"].get("converse") {
            converse::parse(conv)?
        } else {
            return Err(AwsError::validation(
                "CountTokens input must contain invokeModel or converse.",
            ));
        };
        let model = self.runtime.chat_for(&id).await?;
        let n = model.count_tokens(&req).await.map_err(chat_error)?;
        Ok(Output::new(json!({"inputTokens": n})))
    }

    /// The request and the model of a Converse / ConverseStream call.
    async fn converse_request(&self, input: &Value, api: &str) -> Result<ConverseCall, AwsError> {
        let id = model_id(input)?;
        if family_of(&id)?.is_embedding() {
            return Err(AwsError::validation(format!(
                "This model doesn't support the {api} API."
            )));
        }
        let req = converse::parse(input)?;
        converse::check_max_tokens(&id, input)?;
        let points = prompt_cache::checkpoints(&id, input, &req)?;
        let model = self
            .runtime
            .local_chat(&id, runtime::LocalChat::of_input(input))
            .await?;
        let counted = count_checkpoints(&model, points).await?;
        Ok((id, req, model, counted))
    }

    /// Reports the request's cache checkpoints in `usage` (after a successful generation).
    fn cache_usage(
        &self,
        ctx: &RequestContext,
        id: &str,
        points: &[prompt_cache::Counted],
        usage: &mut basalt_chat::Usage,
    ) -> Result<(), AwsError> {
        if points.is_empty() {
            return Ok(());
        }
        let split = self.prompt_cache.apply(ctx, id, points)?;
        prompt_cache::account(usage, split);
        Ok(())
    }

    /// Converse's guardrail (`guardrailConfig`), resolved, with its trace setting and
    /// whether a stream is checked async.
    async fn converse_guardrail(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<(Option<guardrails::apply::Resolved>, Trace, bool), AwsError> {
        let cfg = input.get("guardrailConfig").filter(|v| !v.is_null());
        let Some(cfg) = cfg else {
            return Ok((None, Trace::Disabled, false));
        };
        let g = self
            .requested_guardrail(
                ctx,
                cfg.get("guardrailIdentifier"),
                cfg.get("guardrailVersion"),
            )
            .await?;
        if g.is_none() {
            return Err(AwsError::validation(
                "guardrailConfig must name a guardrailIdentifier and a guardrailVersion.",
            ));
        }
        Ok((
            g,
            Trace::parse(cfg.get("trace")),
            cfg["streamProcessingMode"].as_str() == Some("async"),
        ))
    }

    async fn converse(&self, ctx: &RequestContext, input: Value) -> Result<Output, AwsError> {
        let (id, mut req, model, points) = self.converse_request(&input, "Converse").await?;
        let (guard, trace, _) = self.converse_guardrail(ctx, &input).await?;
        let mut input_eval = None;
        if let Some(g) = &guard {
            let judged = model::converse_input(&input, &req);
            input_eval = self
                .check_input(ctx, g, "Converse", &mut req, &judged, trace)
                .await?;
            if let Some(e) = input_eval.as_ref().filter(|e| e.outcome.blocked) {
                let mut out = converse::response(&model::blocked_response(&e.outcome.outputs[0]));
                out["stopReason"] = "guardrail_intervened".into();
                out["metrics"]["latencyMs"] = e.latency_ms.into();
                if trace != Trace::Disabled {
                    out["trace"] =
                        json!({"guardrail": model::converse_trace(g, trace, Some(e), None, None)});
                }
                return Ok(Output::new(out));
            }
        }
        let mut resp = model
            .complete(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        self.cache_usage(ctx, &id, &points, &mut resp.usage)?;
        self.accounting
            .record(ctx, &id, &resp.usage, resp.latency_ms);
        let Some(g) = &guard else {
            return Ok(Output::new(converse::response(&resp)));
        };
        let original = model::answer_text(&resp);
        let output_eval = self
            .check_output(ctx, g, "Converse", &mut resp, trace)
            .await?;
        let mut out = converse::response(&resp);
        let intervened = model::intervened(&input_eval, &output_eval);
        if intervened {
            out["stopReason"] = "guardrail_intervened".into();
        }
        if trace != Trace::Disabled {
            out["trace"] = json!({"guardrail": model::converse_trace(
                g, trace, input_eval.as_ref(), output_eval.as_ref(), Some(&original),
            )});
        }
        Ok(Output::new(out))
    }

    async fn converse_stream(
        &self,
        ctx: &RequestContext,
        input: Value,
    ) -> Result<Output, AwsError> {
        let (id, mut req, model, points) = self.converse_request(&input, "ConverseStream").await?;
        let (guard, trace, async_mode) = self.converse_guardrail(ctx, &input).await?;
        let mut input_eval = None;
        if let Some(g) = &guard {
            let judged = model::converse_input(&input, &req);
            input_eval = self
                .check_input(ctx, g, "ConverseStream", &mut req, &judged, trace)
                .await?;
            if let Some(e) = input_eval.as_ref().filter(|e| e.outcome.blocked) {
                let resp = model::blocked_response(&e.outcome.outputs[0]);
                let mut metadata = json!({"usage": converse::usage(&resp.usage), "metrics": {"latencyMs": e.latency_ms}});
                if trace != Trace::Disabled {
                    metadata["trace"] =
                        json!({"guardrail": model::converse_trace(g, trace, Some(e), None, None)});
                }
                let ev = |name: &str, value: Value| {
                    Ok(StreamEvent {
                        name: name.into(),
                        value,
                    })
                };
                let events = vec![
                    ev("messageStart", json!({"role": "assistant"})),
                    ev(
                        "contentBlockDelta",
                        json!({"delta": {"text": e.outcome.outputs[0]}, "contentBlockIndex": 0}),
                    ),
                    ev("contentBlockStop", json!({"contentBlockIndex": 0})),
                    ev("messageStop", json!({"stopReason": "guardrail_intervened"})),
                    ev("metadata", metadata),
                ];
                return Ok(Output::with_stream(
                    json!({}),
                    futures::stream::iter(events).boxed(),
                ));
            }
        }
        let mut events = model
            .stream(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<StreamEvent, AwsError>>();
        let this = self.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let send = |name: &str, value: Value| {
                tx.unbounded_send(Ok(StreamEvent {
                    name: name.into(),
                    value,
                }))
                .is_ok()
            };
            // The open content block, closed at the end if the model did not close it.
            let mut open: Option<usize> = None;
            let mut emit = |d: Delta| match d {
                Delta::Text { index, text } => {
                    open = Some(index);
                    send(
                        "contentBlockDelta",
                        json!({"delta": {"text": text}, "contentBlockIndex": index}),
                    )
                }
                Delta::ToolUseStart { index, id, name } => {
                    open = Some(index);
                    send(
                        "contentBlockStart",
                        json!({"start": {"toolUse": {"toolUseId": id, "name": name}}, "contentBlockIndex": index}),
                    )
                }
                Delta::ToolInput { index, json } => send(
                    "contentBlockDelta",
                    json!({"delta": {"toolUse": {"input": json}}, "contentBlockIndex": index}),
                ),
                Delta::BlockStop { index } => {
                    open = None;
                    send("contentBlockStop", json!({"contentBlockIndex": index}))
                }
            };
            send("messageStart", json!({"role": "assistant"}));
            // Sync mode holds the answer back until the guardrail has judged it.
            let hold = guard.is_some() && !async_mode;
            let mut held = Vec::new();
            while let Some(ev) = events.recv().await {
                match ev {
                    Ok(ChatEvent::Delta(d)) => {
                        if hold {
                            held.push(d);
                        } else if !emit(d) {
                            return;
                        }
                    }
                    Ok(ChatEvent::Done(mut resp)) => {
                        if let Err(err) = this.cache_usage(&ctx, &id, &points, &mut resp.usage) {
                            send(
                                "serviceUnavailableException",
                                json!({"message": err.message}),
                            );
                            return;
                        }
                        this.accounting
                            .record(&ctx, &id, &resp.usage, resp.latency_ms);
                        let mut stop = converse::stop_reason(&resp.stop_reason);
                        let mut guard_trace = None;
                        if let Some(g) = &guard {
                            let original = model::answer_text(&resp);
                            let output_eval = match this
                                .check_output(&ctx, g, "ConverseStream", &mut resp, trace)
                                .await
                            {
                                Ok(e) => e,
                                Err(err) => {
                                    send(
                                        "internalServerException",
                                        json!({"message": err.message}),
                                    );
                                    return;
                                }
                            };
                            let intervened = model::intervened(&input_eval, &output_eval);
                            if hold {
                                let deltas = model::release(
                                    std::mem::take(&mut held),
                                    &resp,
                                    &output_eval,
                                    intervened,
                                );
                                for d in deltas {
                                    emit(d);
                                }
                            }
                            if intervened {
                                stop = "guardrail_intervened";
                            }
                            if trace != Trace::Disabled {
                                guard_trace = Some(model::converse_trace(
                                    g,
                                    trace,
                                    input_eval.as_ref(),
                                    output_eval.as_ref(),
                                    Some(&original),
                                ));
                            }
                        }
                        if let Some(index) = open {
                            send("contentBlockStop", json!({"contentBlockIndex": index}));
                        }
                        send("messageStop", json!({"stopReason": stop}));
                        let mut metadata = json!({"usage": converse::usage(&resp.usage), "metrics": {"latencyMs": resp.latency_ms}});
                        if let Some(t) = guard_trace {
                            metadata["trace"] = json!({"guardrail": t});
                        }
                        send("metadata", metadata);
                        return;
                    }
                    Err(e) => {
                        let (name, err) = stream_error(e);
                        send(name, json!({"message": err.message}));
                        return;
                    }
                }
            }
        });
        Ok(Output::with_stream(json!({}), rx.boxed()))
    }

    fn failed(&self, ctx: &RequestContext, id: &str, e: ChatError) -> AwsError {
        if matches!(e, ChatError::Busy) {
            self.accounting.throttled(ctx, id);
        }
        chat_error(e)
    }

    async fn embed(
        &self,
        ctx: &RequestContext,
        id: &str,
        family: providers::Family,
        body: &Value,
    ) -> Result<Output, AwsError> {
        let started = std::time::Instant::now();
        let req = providers::parse_embed(family, body)?;
        let model = self.runtime.embedding_for(id).await?;
        let texts = req.texts.clone();
        let (vectors, counts) = model.embed(texts).await.map_err(chat_error)?;
        let dims = providers::native_dimensions(family, req.dimensions);
        let vectors: Vec<Vec<f32>> = vectors
            .iter()
            .map(|v| providers::fit_dimensions(v, dims))
            .collect();
        let input_tokens: u32 = counts.iter().map(|c| *c as u32).sum();
        let latency_ms = started.elapsed().as_millis() as u64;
        let usage = basalt_chat::Usage {
            input_tokens,
            output_tokens: 0,
            ..Default::default()
        };
        self.accounting.record(ctx, id, &usage, latency_ms);
        let out = providers::embed_response_body(family, &req, &vectors, input_tokens);
        Ok(Output::new(json!({"body": B64.encode(serde_json::to_vec(&out).unwrap_or_default()), "contentType": "application/json"}))
            .header("X-Amzn-Bedrock-Input-Token-Count", input_tokens)
            .header("X-Amzn-Bedrock-Invocation-Latency", latency_ms))
    }
}

#[async_trait::async_trait]
impl Service for BedrockRuntime {
    fn name(&self) -> &'static str {
        "bedrock-runtime"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        match operation {
            "InvokeModel" => self.invoke_model(ctx, input).await,
            "InvokeModelWithResponseStream" => self.invoke_stream(ctx, input).await,
            "Converse" => self.converse(ctx, input).await,
            "ConverseStream" => self.converse_stream(ctx, input).await,
            "CountTokens" => self.count_tokens(input).await,
            "ApplyGuardrail" => self.apply_guardrail(ctx, input).await,
            other => Err(AwsError::not_implemented("bedrock-runtime", other)),
        }
    }
}
