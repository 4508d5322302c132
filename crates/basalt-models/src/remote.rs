//! A chat model served by an external OpenAI-compatible server (vLLM, llama.cpp server,
//! Ollama, TGI): how a user brings a big model on a GPU behind the same Bedrock APIs.

use crate::chat::{ChatError, ChatEvent};
use basalt_chat::{
    ChatRequest, ChatResponse, ContentBlock, Delta, Role, StopReason, ToolChoice, Usage,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::time::Instant;
use tokio::sync::mpsc;

pub struct RemoteChat {
    /// `http://host:port` (the `/v1/...` paths are appended).
    pub base_url: String,
    /// The model name the server knows.
    pub model: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The OpenAI chat-completions body for `req`.
pub fn openai_body(model: &str, req: &ChatRequest, stream: bool) -> Result<Value, ChatError> {
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system.join("\n")}));
    }
    for m in &req.messages {
        let mut text = Vec::new();
        let mut calls = Vec::new();
        for b in &m.content {
            match b {
                ContentBlock::Text(t) => text.push(t.clone()),
                ContentBlock::ToolUse { id, name, input } => {
                    calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}}))
                }
                ContentBlock::ToolResult { tool_use_id, content, .. } => {
                    messages.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": crate::chat::tool_result_text(content)}))
                }
                ContentBlock::Image { .. } => {
                    return Err(ChatError::Invalid("Image input is not forwarded to remote models yet.".into()));
                }
            }
        }
        match m.role {
            Role::User if !text.is_empty() => {
                messages.push(json!({"role": "user", "content": text.join("\n")}))
            }
            Role::User => {}
            Role::Assistant => {
                let mut msg = json!({"role": "assistant", "content": text.join("\n")});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut body = json!({"model": model, "messages": messages, "max_tokens": req.sampling.max_tokens, "stream": stream});
    if let Some(t) = req.sampling.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = req.sampling.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(k) = req.sampling.top_k {
        body["top_k"] = json!(k);
    }
    if let Some(s) = req.sampling.seed {
        body["seed"] = json!(s);
    }
    if !req.sampling.stop_sequences.is_empty() {
        body["stop"] = json!(req.sampling.stop_sequences);
    }
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if !req.tools.is_empty() {
        body["tools"] = Value::Array(
            req.tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
                .collect(),
        );
        body["tool_choice"] = match &req.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::Any => json!("required"),
            ToolChoice::None => json!("none"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    Ok(body)
}

fn stop_reason(finish: &str, matched: Option<&str>, had_tools: bool) -> StopReason {
    match (finish, matched) {
        ("length", _) => StopReason::MaxTokens,
        ("tool_calls", _) => StopReason::ToolUse,
        (_, Some(s)) => StopReason::StopSequence(s.to_owned()),
        _ if had_tools => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: v["prompt_tokens"].as_u64().unwrap_or(0) as u32,
        output_tokens: v["completion_tokens"].as_u64().unwrap_or(0) as u32,
        ..Default::default()
    }
}

fn engine_error(e: impl std::fmt::Display) -> ChatError {
    ChatError::Engine(format!("remote model server: {e}"))
}

impl RemoteChat {
    pub fn new(base_url: &str, model: &str) -> RemoteChat {
        let client = Client::builder(TokioExecutor::new()).build_http();
        RemoteChat {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            client,
        }
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ChatError> {
        let req = http::Request::post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                serde_json::to_vec(body).unwrap_or_default(),
            )))
            .map_err(engine_error)?;
        let resp = self.client.request(req).await.map_err(engine_error)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        Err(match status.as_u16() {
            429 => ChatError::Busy,
            400 => ChatError::Invalid(text),
            _ => engine_error(format!("{status}: {text}")),
        })
    }

    /// Prompt tokens as the server counts them (its `/tokenize` endpoint, which vLLM and the
    /// llama.cpp server have), else an estimate of one token per four characters.
    pub async fn count_tokens(&self, req: &ChatRequest) -> Result<usize, ChatError> {
        let body = openai_body(&self.model, req, false)?;
        let payload = json!({"model": self.model, "messages": body["messages"]});
        if let Ok(resp) = self.post("/tokenize", &payload).await
            && let Ok(bytes) = resp.into_body().collect().await
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes.to_bytes())
            && let Some(n) = v["count"]
                .as_u64()
                .or(v["tokens"].as_array().map(|a| a.len() as u64))
        {
            return Ok(n as usize);
        }
        let chars: usize = body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["content"].as_str().map_or(0, str::len))
            .sum();
        Ok(chars.div_ceil(4))
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let started = Instant::now();
        let resp = self
            .post(
                "/v1/chat/completions",
                &openai_body(&self.model, req, false)?,
            )
            .await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(engine_error)?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(engine_error)?;
        let choice = &v["choices"][0];
        let msg = &choice["message"];
        let mut content = Vec::new();
        if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
            content.push(ContentBlock::Text(t.to_owned()));
        }
        for call in msg["tool_calls"].as_array().into_iter().flatten() {
            let args = call["function"]["arguments"].as_str().unwrap_or("{}");
            content.push(ContentBlock::ToolUse {
                id: call["id"].as_str().unwrap_or_default().to_owned(),
                name: call["function"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                input: serde_json::from_str(args).unwrap_or_else(|_| json!({})),
            });
        }
        let has_calls = content
            .iter()
            .any(|b| matches!(b, ContentBlock::ToolUse { .. }));
        let latency = started.elapsed().as_millis() as u64;
        Ok(ChatResponse {
            stop_reason: stop_reason(
                choice["finish_reason"].as_str().unwrap_or("stop"),
                choice["stop_reason"].as_str(),
                has_calls,
            ),
            content,
            usage: usage(&v["usage"]),
            latency_ms: latency,
            first_token_ms: latency,
        })
    }

    pub fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<mpsc::UnboundedReceiver<Result<ChatEvent, ChatError>>, ChatError> {
        let body = openai_body(&self.model, req, true)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let this = RemoteChat {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            client: self.client.clone(),
        };
        tokio::spawn(async move {
            let started = Instant::now();
            let resp = match this.post("/v1/chat/completions", &body).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut text_open = false;
            let mut text = String::new();
            let mut content: Vec<ContentBlock> = Vec::new();
            // Tool calls by the server's index: (block index, id, name, arguments).
            let mut calls: Vec<(usize, String, String, String)> = Vec::new();
            let (mut finish, mut matched, mut use_) =
                (String::from("stop"), None::<String>, Usage::default());
            let mut first_token_ms = 0;
            let send = |ev| tx.send(Ok(ChatEvent::Delta(ev))).is_ok();
            'frames: while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                buf.extend_from_slice(data);
                while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buf.drain(..pos + 2).collect();
                    for line in String::from_utf8_lossy(&event).lines() {
                        let Some(payload) = line.strip_prefix("data:").map(str::trim) else {
                            continue;
                        };
                        if payload == "[DONE]" {
                            break 'frames;
                        }
                        let Ok(v) = serde_json::from_str::<Value>(payload) else {
                            continue;
                        };
                        if v["usage"].is_object() {
                            use_ = usage(&v["usage"]);
                        }
                        let choice = &v["choices"][0];
                        if let Some(f) = choice["finish_reason"].as_str() {
                            finish = f.to_owned();
                            matched = choice["stop_reason"].as_str().map(str::to_owned);
                        }
                        let delta = &choice["delta"];
                        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                            if first_token_ms == 0 {
                                first_token_ms = started.elapsed().as_millis() as u64;
                            }
                            text_open = true;
                            text.push_str(t);
                            send(Delta::Text {
                                index: content.len(),
                                text: t.to_owned(),
                            });
                        }
                        for c in delta["tool_calls"].as_array().into_iter().flatten() {
                            let i = c["index"].as_u64().unwrap_or(0) as usize;
                            if i >= calls.len() {
                                if text_open {
                                    send(Delta::BlockStop {
                                        index: content.len(),
                                    });
                                    content.push(ContentBlock::Text(std::mem::take(&mut text)));
                                    text_open = false;
                                }
                                let block = content.len() + calls.len();
                                let id = c["id"].as_str().unwrap_or_default().to_owned();
                                let name = c["function"]["name"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned();
                                send(Delta::ToolUseStart {
                                    index: block,
                                    id: id.clone(),
                                    name: name.clone(),
                                });
                                calls.push((block, id, name, String::new()));
                            }
                            if let Some(args) = c["function"]["arguments"]
                                .as_str()
                                .filter(|a| !a.is_empty())
                                && let Some(call) = calls.get_mut(i)
                            {
                                call.3.push_str(args);
                                send(Delta::ToolInput {
                                    index: call.0,
                                    json: args.to_owned(),
                                });
                            }
                        }
                    }
                }
            }
            if text_open {
                send(Delta::BlockStop {
                    index: content.len(),
                });
                content.push(ContentBlock::Text(text));
            }
            let has_calls = !calls.is_empty();
            for (block, id, name, args) in calls {
                send(Delta::BlockStop { index: block });
                content.push(ContentBlock::ToolUse {
                    id,
                    name,
                    input: serde_json::from_str(&args).unwrap_or_else(|_| json!({})),
                });
            }
            let _ = tx.send(Ok(ChatEvent::Done(ChatResponse {
                content,
                stop_reason: stop_reason(&finish, matched.as_deref(), has_calls),
                usage: use_,
                latency_ms: started.elapsed().as_millis() as u64,
                first_token_ms,
            })));
        });
        Ok(rx)
    }
}
