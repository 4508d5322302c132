//! Amazon Bedrock runtime on local models.
//!
//! Every model id a user may call resolves through the [`catalog`] to a local model; the
//! body formats of each provider come from `basalt_chat::providers`; generation runs in
//! `basalt_models`. Token counts, latency and cost of every invocation are accounted in
//! [`accounting`].

pub mod accounting;
pub mod catalog;
mod converse;
mod runtime;

use accounting::Accounting;
use basalt_chat::providers::{self, StreamEncoder};
use basalt_chat::{ChatRequest, Delta};
use basalt_core::{AwsError, Output, RequestContext, Service, StreamEvent};
use basalt_models::{ChatError, ChatEvent};
use base64::Engine;
use futures::StreamExt;
pub use runtime::{Runtime, RuntimeConfig};
use serde_json::{Value, json};
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub struct BedrockRuntime {
    runtime: Arc<Runtime>,
    pub accounting: Arc<Accounting>,
}

impl BedrockRuntime {
    pub fn new(runtime: Arc<Runtime>, accounting: Arc<Accounting>) -> Self {
        BedrockRuntime {
            runtime,
            accounting,
        }
    }
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

fn reject_guardrails(input: &Value) -> Result<(), AwsError> {
    if input
        .get("guardrailIdentifier")
        .is_some_and(|v| !v.is_null())
    {
        return Err(AwsError::validation(
            "Guardrails are not available in Basalt yet: remove guardrailIdentifier from the request.",
        ));
    }
    Ok(())
}

impl BedrockRuntime {
    async fn invoke_model(&self, ctx: &RequestContext, input: Value) -> Result<Output, AwsError> {
        let id = model_id(&input)?;
        reject_guardrails(&input)?;
        let family = family_of(&id)?;
        let body = decode_body(&input)?;
        if family.is_embedding() {
            return self.embed(ctx, &id, family, &body).await;
        }
        let family = family.for_body(&body);
        let req = providers::parse_chat(family, &id, &body)?;
        let model = self.runtime.chat_for(&id).await?;
        let mut resp = model
            .complete(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        self.accounting
            .record(ctx, &id, &resp.usage, resp.latency_ms);
        // Tool-use ids in the provider's own style (`toolu_bdrk_…` for Anthropic).
        for b in &mut resp.content {
            if let basalt_chat::ContentBlock::ToolUse { id: tool_id, .. } = b {
                *tool_id = providers::new_tool_use_id(family);
            }
        }
        let out = providers::chat_response_body(family, &id, &req, &resp);
        Ok(Output::new(json!({"body": B64.encode(serde_json::to_vec(&out).unwrap_or_default()), "contentType": "application/json"}))
            .header("X-Amzn-Bedrock-Input-Token-Count", resp.usage.input_tokens)
            .header("X-Amzn-Bedrock-Output-Token-Count", resp.usage.output_tokens)
            .header("X-Amzn-Bedrock-Invocation-Latency", resp.latency_ms))
    }

    async fn invoke_stream(&self, ctx: &RequestContext, input: Value) -> Result<Output, AwsError> {
        let id = model_id(&input)?;
        reject_guardrails(&input)?;
        let family = family_of(&id)?;
        let body = decode_body(&input)?;
        if family.is_embedding() {
            return Err(AwsError::validation(
                "The model does not support streaming.",
            ));
        }
        let family = family.for_body(&body);
        let req = providers::parse_chat(family, &id, &body)?;
        let model = self.runtime.chat_for(&id).await?;
        let mut events = model
            .stream(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        let input_tokens = model.count_tokens(&req).await.map_err(chat_error)? as u32;
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<StreamEvent, AwsError>>();
        let accounting = self.accounting.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let chunk = |v: Value| {
                Ok(StreamEvent {
                    name: "chunk".into(),
                    value: json!({"bytes": B64.encode(serde_json::to_vec(&v).unwrap_or_default())}),
                })
            };
            let mut enc = StreamEncoder::new(family, &id, &req, input_tokens);
            for v in enc.start() {
                let _ = tx.unbounded_send(chunk(v));
            }
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
                        for v in enc.delta(&d) {
                            if tx.unbounded_send(chunk(v)).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(ChatEvent::Done(resp)) => {
                        accounting.record(&ctx, &id, &resp.usage, resp.latency_ms);
                        for v in enc.finish(
                            &resp.stop_reason,
                            &resp.usage,
                            resp.latency_ms,
                            resp.first_token_ms,
                        ) {
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
    async fn converse_request(
        &self,
        input: &Value,
        api: &str,
    ) -> Result<(String, ChatRequest, Arc<basalt_models::ChatBackend>), AwsError> {
        let id = model_id(input)?;
        reject_guardrails_converse(input)?;
        if family_of(&id)?.is_embedding() {
            return Err(AwsError::validation(format!(
                "This model doesn't support the {api} API."
            )));
        }
        let req = converse::parse(input)?;
        converse::check_max_tokens(&id, input)?;
        let model = self.runtime.chat_for(&id).await?;
        Ok((id, req, model))
    }

    async fn converse(&self, ctx: &RequestContext, input: Value) -> Result<Output, AwsError> {
        let (id, req, model) = self.converse_request(&input, "Converse").await?;
        let resp = model
            .complete(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        self.accounting
            .record(ctx, &id, &resp.usage, resp.latency_ms);
        Ok(Output::new(converse::response(&resp)))
    }

    async fn converse_stream(
        &self,
        ctx: &RequestContext,
        input: Value,
    ) -> Result<Output, AwsError> {
        let (id, req, model) = self.converse_request(&input, "ConverseStream").await?;
        let mut events = model
            .stream(&req)
            .await
            .map_err(|e| self.failed(ctx, &id, e))?;
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<StreamEvent, AwsError>>();
        let accounting = self.accounting.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let send = |name: &str, value: Value| {
                tx.unbounded_send(Ok(StreamEvent {
                    name: name.into(),
                    value,
                }))
                .is_ok()
            };
            send("messageStart", json!({"role": "assistant"}));
            let mut open: Option<usize> = None;
            while let Some(ev) = events.recv().await {
                match ev {
                    Ok(ChatEvent::Delta(d)) => {
                        let ok = match d {
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
                        if !ok {
                            return;
                        }
                    }
                    Ok(ChatEvent::Done(resp)) => {
                        if let Some(index) = open {
                            send("contentBlockStop", json!({"contentBlockIndex": index}));
                        }
                        accounting.record(&ctx, &id, &resp.usage, resp.latency_ms);
                        send(
                            "messageStop",
                            json!({"stopReason": converse::stop_reason(&resp.stop_reason)}),
                        );
                        send(
                            "metadata",
                            json!({"usage": converse::usage(&resp.usage), "metrics": {"latencyMs": resp.latency_ms}}),
                        );
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
        };
        self.accounting.record(ctx, id, &usage, latency_ms);
        let out = providers::embed_response_body(family, &req, &vectors, input_tokens);
        Ok(Output::new(json!({"body": B64.encode(serde_json::to_vec(&out).unwrap_or_default()), "contentType": "application/json"}))
            .header("X-Amzn-Bedrock-Input-Token-Count", input_tokens)
            .header("X-Amzn-Bedrock-Invocation-Latency", latency_ms))
    }
}

fn reject_guardrails_converse(input: &Value) -> Result<(), AwsError> {
    if input.get("guardrailConfig").is_some_and(|v| !v.is_null()) {
        return Err(AwsError::validation(
            "Guardrails are not available in Basalt yet: remove guardrailConfig from the request.",
        ));
    }
    Ok(())
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
            other => Err(AwsError::not_implemented("bedrock-runtime", other)),
        }
    }
}
