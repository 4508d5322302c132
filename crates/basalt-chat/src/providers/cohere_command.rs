//! Cohere Command R / R+: `message` + `chat_history`, answered with `text` and the updated
//! `chat_history`; streams `stream-start` / `text-generation` / `stream-end` events.

use super::StreamEncoder;
use super::common::{self, Obj};
use crate::{
    ChatRequest, ChatResponse, ContentBlock, Delta, Message, Role, Sampling, StopReason,
    ToolResultContent, ToolSpec,
};
use basalt_core::AwsError;
use serde_json::{Map, Value, json};

pub(crate) fn parse(body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    let message = o.req_str("message")?;
    let mut system: Vec<String> = o
        .opt_str("preamble")?
        .map(str::to_owned)
        .into_iter()
        .collect();
    let mut messages = Vec::new();
    for (i, h) in o.opt_arr("chat_history")?.into_iter().flatten().enumerate() {
        let ho = Obj::at(h, format!("#/chat_history/{i}"))?;
        let text = ho.opt_str("message")?.unwrap_or_default();
        match ho.req_str("role")? {
            "USER" => messages.push(Message {
                role: Role::User,
                content: vec![ContentBlock::Text(text.to_owned())],
            }),
            "CHATBOT" => messages.push(Message {
                role: Role::Assistant,
                content: vec![ContentBlock::Text(text.to_owned())],
            }),
            "SYSTEM" => system.push(text.to_owned()),
            "TOOL" => {}
            other => {
                return Err(common::malformed(format!(
                    "#/chat_history/{i}/role: {other} is not a valid enum value"
                )));
            }
        }
    }
    if let Some(docs) = o.opt_arr("documents")? {
        let mut text = String::from("Answer using these documents:\n");
        for (i, d) in docs.iter().enumerate() {
            let fields: Vec<String> = match d.as_object() {
                Some(m) => m
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}: {}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                        )
                    })
                    .collect(),
                None => vec![d.to_string()],
            };
            text.push_str(&format!("[{i}] {}\n", fields.join("; ")));
        }
        system.push(text);
    }
    // Results of earlier tool calls: an assistant turn with the calls, then a user turn with results.
    if let Some(results) = o.opt_arr("tool_results")? {
        let (mut calls, mut outs) = (Vec::new(), Vec::new());
        for (i, r) in results.iter().enumerate() {
            let ro = Obj::at(r, format!("#/tool_results/{i}"))?;
            let call = ro.opt_obj("call")?.ok_or_else(|| {
                common::malformed(format!("{}: required key [call] not found", ro.path))
            })?;
            let id = format!("cohere_call_{i}");
            calls.push(ContentBlock::ToolUse {
                id: id.clone(),
                name: call.req_str("name")?.to_owned(),
                input: call.get("parameters").cloned().unwrap_or_else(|| json!({})),
            });
            let content = ro
                .opt_arr("outputs")?
                .into_iter()
                .flatten()
                .cloned()
                .map(ToolResultContent::Json)
                .collect();
            outs.push(ContentBlock::ToolResult {
                tool_use_id: id,
                content,
                is_error: false,
            });
        }
        if !calls.is_empty() {
            messages.push(Message {
                role: Role::User,
                content: vec![ContentBlock::Text(message.to_owned())],
            });
            messages.push(Message {
                role: Role::Assistant,
                content: calls,
            });
            messages.push(Message {
                role: Role::User,
                content: outs,
            });
        }
    }
    if !matches!(messages.last(), Some(m) if m.role == Role::User && m.content.iter().any(|b| matches!(b, ContentBlock::ToolResult { .. })))
    {
        messages.push(Message {
            role: Role::User,
            content: vec![ContentBlock::Text(message.to_owned())],
        });
    }
    let mut tools = Vec::new();
    for (i, t) in o.opt_arr("tools")?.into_iter().flatten().enumerate() {
        let to = Obj::at(t, format!("#/tools/{i}"))?;
        let mut props = Map::new();
        let mut required = Vec::new();
        if let Some(defs) = to.opt_obj("parameter_definitions")? {
            for (name, def) in defs.map {
                let kind = def.get("type").and_then(Value::as_str).unwrap_or("str");
                let json_type = match kind {
                    "str" | "string" => "string",
                    "int" | "integer" => "integer",
                    "float" | "number" => "number",
                    "bool" | "boolean" => "boolean",
                    k if k.starts_with("List") || k.starts_with("list") => "array",
                    _ => "object",
                };
                let desc = def
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                props.insert(
                    name.clone(),
                    json!({"type": json_type, "description": desc}),
                );
                if def
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                {
                    required.push(Value::String(name.clone()));
                }
            }
        }
        tools.push(ToolSpec {
            name: to.req_str("name")?.to_owned(),
            description: to.opt_str("description")?.unwrap_or_default().to_owned(),
            input_schema: json!({"type": "object", "properties": props, "required": required}),
        });
    }
    let seed = o
        .opt_int("seed", 0, i64::MAX)?
        .and_then(|s| u64::try_from(s).ok());
    let sampling = Sampling {
        max_tokens: o.opt_u32("max_tokens", 1, 4000)?.unwrap_or(512),
        temperature: o.opt_num("temperature", 0.0, 1.0)?,
        top_p: o.opt_num("p", 0.01, 0.99)?,
        top_k: o.opt_u32("k", 0, 500)?,
        seed,
        stop_sequences: o.opt_str_list("stop_sequences", 4)?,
    };
    Ok(ChatRequest {
        system,
        messages,
        tools,
        sampling,
        ..ChatRequest::default()
    })
}

/// The request's conversation as Cohere's `chat_history` (the last user message included).
pub(crate) fn history(req: &ChatRequest) -> Vec<Value> {
    req.messages
        .iter()
        .filter_map(|m| {
            let text = common::joined_text(&m.content);
            if text.is_empty() {
                return None;
            }
            let role = if m.role == Role::User {
                "USER"
            } else {
                "CHATBOT"
            };
            Some(json!({"role": role, "message": text}))
        })
        .collect()
}

fn finish_reason(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::StopSequence(_) => "STOP_SEQUENCE",
        _ => "COMPLETE",
    }
}

fn body(
    response_id: &str,
    generation_id: &str,
    mut history: Vec<Value>,
    text: &str,
    calls: Vec<Value>,
    stop: &StopReason,
) -> Value {
    history.push(json!({"role": "CHATBOT", "message": text}));
    let mut out = json!({
        "response_id": response_id,
        "text": text,
        "generation_id": generation_id,
        "chat_history": history,
        "finish_reason": finish_reason(stop),
    });
    if !calls.is_empty() {
        out["tool_calls"] = Value::Array(calls);
    }
    out
}

pub(crate) fn response(req: &ChatRequest, resp: &ChatResponse) -> Value {
    let calls = resp
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse { name, input, .. } => {
                Some(json!({"name": name, "parameters": input}))
            }
            _ => None,
        })
        .collect();
    body(
        &common::uuid(),
        &common::uuid(),
        history(req),
        &common::joined_text(&resp.content),
        calls,
        &resp.stop_reason,
    )
}

pub(crate) fn stream_start(enc: &mut StreamEncoder) -> Vec<Value> {
    vec![json!({"is_finished": false, "event_type": "stream-start", "generation_id": enc.id2})]
}

pub(crate) fn stream_delta(_enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { text, .. } => {
            vec![json!({"is_finished": false, "event_type": "text-generation", "text": text})]
        }
        _ => Vec::new(),
    }
}

pub(crate) fn stream_finish(enc: &mut StreamEncoder, stop: &StopReason) -> Vec<Value> {
    let calls: Vec<Value> = enc
        .tools
        .iter()
        .map(|t| {
            let params = serde_json::from_str::<Value>(&t.json).unwrap_or_else(|_| json!({}));
            json!({"name": t.name, "parameters": params})
        })
        .collect();
    let mut out = Vec::new();
    if !calls.is_empty() {
        out.push(json!({"is_finished": false, "event_type": "tool-calls-generation", "text": enc.text, "tool_calls": calls}));
    }
    let response = body(
        &enc.id,
        &enc.id2,
        enc.history.clone(),
        &enc.text,
        calls,
        stop,
    );
    out.push(
        json!({"is_finished": true, "event_type": "stream-end", "response": response,
                    "finish_reason": finish_reason(stop)}),
    );
    out
}
