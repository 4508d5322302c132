//! OpenAI Chat Completions-style bodies: OpenAI gpt-oss (the OpenAI body itself), AI21 Jamba
//! (the same shape with `meta`) and Mistral Large 2's chat completion (`choices[].message`,
//! `stop_reason`).

use super::StreamEncoder;
use super::common::{self, Obj, malformed};
use crate::{
    ChatRequest, ChatResponse, ContentBlock, Delta, Message, Role, Sampling, StopReason,
    ToolChoice, ToolResultContent, ToolSpec, Usage,
};
use basalt_core::AwsError;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    OpenAi,
    Jamba,
    Mistral,
}

fn text_of(content: &Value, path: &str, blocks: &mut Vec<ContentBlock>) -> Result<(), AwsError> {
    match content {
        Value::Null => Ok(()),
        Value::String(s) => {
            blocks.push(ContentBlock::Text(s.clone()));
            Ok(())
        }
        Value::Array(parts) => {
            for (k, p) in parts.iter().enumerate() {
                let po = Obj::at(p, format!("{path}/{k}"))?;
                match po.req_str("type")? {
                    "text" => blocks.push(ContentBlock::Text(po.req_str("text")?.to_owned())),
                    "image_url" => {
                        let url = match po.get("image_url") {
                            Some(Value::String(u)) => u.as_str(),
                            Some(v) => Obj::at(v, po.path_of("image_url"))?.req_str("url")?,
                            None => {
                                return Err(malformed(format!(
                                    "{}: required key [image_url] not found",
                                    po.path
                                )));
                            }
                        };
                        let data = url.split_once(";base64,").map(|(_, d)| d).ok_or_else(|| {
                            AwsError::validation("Only base64 data: URLs are supported for images.")
                        })?;
                        blocks.push(common::decode_image(&po.path, data, None)?);
                    }
                    other => {
                        return Err(AwsError::validation(format!(
                            "Unsupported content part type: {other}"
                        )));
                    }
                }
            }
            Ok(())
        }
        v => Err(common::type_error(path, "String", v)),
    }
}

pub(crate) fn parse(
    model_id: &str,
    body: &Value,
    dialect: Dialect,
) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    let list = o.req_arr("messages")?;
    if list.is_empty() {
        return Err(AwsError::validation(
            "messages: at least one message is required",
        ));
    }
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let mo = Obj::at(m, format!("#/messages/{i}"))?;
        let role = mo.req_str("role")?;
        let content_path = mo.path_of("content");
        let mut blocks = Vec::new();
        text_of(
            mo.get("content").unwrap_or(&Value::Null),
            &content_path,
            &mut blocks,
        )?;
        match role {
            "system" | "developer" => system.extend(blocks.into_iter().filter_map(|b| match b {
                ContentBlock::Text(t) => Some(t),
                _ => None,
            })),
            "user" => messages.push(Message {
                role: Role::User,
                content: blocks,
            }),
            "assistant" => {
                for (k, call) in mo.opt_arr("tool_calls")?.into_iter().flatten().enumerate() {
                    let co = Obj::at(call, format!("{}/tool_calls/{k}", mo.path))?;
                    let f = co.opt_obj("function")?.ok_or_else(|| {
                        malformed(format!("{}: required key [function] not found", co.path))
                    })?;
                    let args = match f.get("arguments") {
                        Some(Value::String(s)) => {
                            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                        }
                        Some(v) => v.clone(),
                        None => json!({}),
                    };
                    blocks.push(ContentBlock::ToolUse {
                        id: co.opt_str("id")?.unwrap_or_default().to_owned(),
                        name: f.req_str("name")?.to_owned(),
                        input: args,
                    });
                }
                messages.push(Message {
                    role: Role::Assistant,
                    content: blocks,
                });
            }
            "tool" => {
                let result = ContentBlock::ToolResult {
                    tool_use_id: mo.opt_str("tool_call_id")?.unwrap_or_default().to_owned(),
                    content: blocks
                        .into_iter()
                        .filter_map(|b| match b {
                            ContentBlock::Text(t) => Some(ToolResultContent::Text(t)),
                            _ => None,
                        })
                        .collect(),
                    is_error: false,
                };
                // Consecutive tool results form one user turn.
                match messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last
                                .content
                                .iter()
                                .all(|b| matches!(b, ContentBlock::ToolResult { .. })) =>
                    {
                        last.content.push(result)
                    }
                    _ => messages.push(Message {
                        role: Role::User,
                        content: vec![result],
                    }),
                }
            }
            other => {
                return Err(AwsError::validation(format!(
                    "messages.{i}.role: unknown role '{other}'"
                )));
            }
        }
    }
    if o.opt_int("n", 1, 16)?.is_some_and(|n| n != 1) {
        return Err(AwsError::validation(
            "Only n=1 is supported by the local model.",
        ));
    }
    let max_cap = match dialect {
        Dialect::OpenAi => 128_000,
        // Jamba 1.5 4096, Mistral Large 2 8192 (see `max_output_tokens`).
        Dialect::Jamba | Dialect::Mistral => super::max_output_tokens(model_id).unwrap_or(32_768),
    };
    let max_tokens = o
        .opt_u32("max_completion_tokens", 1, max_cap)?
        .or(o.opt_u32("max_tokens", 1, max_cap)?)
        .unwrap_or(if dialect == Dialect::Jamba {
            4096
        } else {
            8192
        });
    let seed = o
        .opt_int("seed", 0, i64::MAX)?
        .and_then(|s| u64::try_from(s).ok());
    let sampling = Sampling {
        max_tokens,
        temperature: o.opt_num("temperature", 0.0, 2.0)?,
        top_p: o.opt_num("top_p", 0.0, 1.0)?,
        top_k: None,
        seed,
        stop_sequences: o.str_or_list("stop", 16)?,
    };
    let mut tools = Vec::new();
    for (i, t) in o.opt_arr("tools")?.into_iter().flatten().enumerate() {
        let to = Obj::at(t, format!("#/tools/{i}"))?;
        let f = to
            .opt_obj("function")?
            .ok_or_else(|| malformed(format!("{}: required key [function] not found", to.path)))?;
        tools.push(ToolSpec {
            name: f.req_str("name")?.to_owned(),
            description: f.opt_str("description")?.unwrap_or_default().to_owned(),
            input_schema: f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    let tool_choice = match o.get("tool_choice") {
        None => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" | "any" => ToolChoice::Any,
            other => {
                return Err(AwsError::validation(format!(
                    "Invalid tool_choice: '{other}'"
                )));
            }
        },
        Some(v) => {
            let tc = Obj::at(v, "#/tool_choice")?;
            match tc.opt_obj("function")? {
                Some(f) => ToolChoice::Tool(f.req_str("name")?.to_owned()),
                None => ToolChoice::Auto,
            }
        }
    };
    Ok(ChatRequest {
        system,
        messages,
        tools,
        tool_choice,
        sampling,
        raw_prompt: None,
    })
}

fn finish_reason(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        _ => "stop",
    }
}

fn tool_id(id: &str, dialect: Dialect) -> String {
    if !id.is_empty() {
        id.to_owned()
    } else if dialect == Dialect::Mistral {
        super::new_tool_use_id(super::Family::MistralChat)
    } else {
        super::new_tool_use_id(super::Family::OpenAiGptOss)
    }
}

fn usage(u: &Usage) -> Value {
    json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
           "total_tokens": u.input_tokens.saturating_add(u.output_tokens)})
}

/// The model's name as the provider reports it (`jamba-1.5-mini` for `ai21.jamba-1-5-mini-v1:0`).
fn model_name(dialect: Dialect, model_id: &str) -> String {
    let id = super::base_model_id(model_id).unwrap_or(model_id);
    match dialect {
        Dialect::Jamba => {
            let n = id.strip_prefix("ai21.").unwrap_or(id);
            let n = n.split("-v1").next().unwrap_or(n);
            n.replacen("1-5", "1.5", 1)
        }
        _ => id.to_owned(),
    }
}

pub(crate) fn response(dialect: Dialect, model_id: &str, resp: &ChatResponse) -> Value {
    let text = common::joined_text(&resp.content);
    let calls: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse { id, name, input } => Some(json!({
                "id": tool_id(id, dialect),
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
            _ => None,
        })
        .collect();
    let tool_calls = if calls.is_empty() {
        Value::Null
    } else {
        Value::Array(calls)
    };
    let message = json!({"role": "assistant", "content": text, "tool_calls": tool_calls});
    let reason = finish_reason(&resp.stop_reason);
    match dialect {
        Dialect::Mistral => {
            json!({"choices": [{"index": 0, "message": message, "stop_reason": reason}]})
        }
        Dialect::Jamba => json!({
            "id": format!("chatcmpl-{}", common::uuid().replace('-', "")),
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": reason}],
            "usage": usage(&resp.usage),
            "meta": {"requestDurationMillis": resp.latency_ms},
            "model": model_name(dialect, model_id),
        }),
        Dialect::OpenAi => json!({
            "id": format!("chatcmpl-{}", common::uuid().replace('-', "")),
            "object": "chat.completion",
            "created": common::unix_now(),
            "model": model_name(dialect, model_id),
            "choices": [{"index": 0, "message": message, "finish_reason": reason}],
            "usage": usage(&resp.usage),
        }),
    }
}

fn chunk(enc: &StreamEncoder, delta: Value, finish: Value) -> Value {
    json!({
        "id": enc.id,
        "object": "chat.completion.chunk",
        "created": enc.created,
        "model": model_name(if enc.family == super::Family::Ai21Jamba { Dialect::Jamba } else { Dialect::OpenAi }, &enc.model_id),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

pub(crate) fn stream_start(enc: &mut StreamEncoder) -> Vec<Value> {
    vec![chunk(
        enc,
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )]
}

/// Index of a tool call among the stream's tool calls (OpenAI numbers them from 0).
fn call_index(enc: &StreamEncoder, block: usize) -> usize {
    enc.tools.iter().position(|t| t.index == block).unwrap_or(0)
}

pub(crate) fn stream_delta(enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { text, .. } => vec![chunk(enc, json!({"content": text}), Value::Null)],
        Delta::ToolUseStart { index, id, name } => {
            let k = call_index(enc, *index);
            let call = json!({"index": k, "id": tool_id(id, Dialect::OpenAi), "type": "function",
                              "function": {"name": name, "arguments": ""}});
            vec![chunk(enc, json!({"tool_calls": [call]}), Value::Null)]
        }
        Delta::ToolInput { index, json } => {
            let k = call_index(enc, *index);
            vec![chunk(
                enc,
                json!({"tool_calls": [{"index": k, "function": {"arguments": json}}]}),
                Value::Null,
            )]
        }
        Delta::BlockStop { .. } => Vec::new(),
    }
}

pub(crate) fn stream_finish(enc: &mut StreamEncoder, stop: &StopReason, u: &Usage) -> Vec<Value> {
    let mut last = chunk(enc, json!({}), json!(finish_reason(stop)));
    if let Some(obj) = last.as_object_mut() {
        obj.insert("usage".to_owned(), usage(u));
    }
    vec![last]
}

// Mistral chat streams `choices[].message` pieces and sends tool calls whole at the end.

pub(crate) fn mistral_stream_delta(_enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { text, .. } => vec![json!({"choices": [{"index": 0,
            "message": {"role": "assistant", "content": text}, "stop_reason": null}]})],
        _ => Vec::new(),
    }
}

pub(crate) fn mistral_stream_finish(enc: &mut StreamEncoder, stop: &StopReason) -> Vec<Value> {
    let calls: Vec<Value> = enc
        .tools
        .iter()
        .map(|t| json!({"id": tool_id(&t.id, Dialect::Mistral), "function": {"name": t.name, "arguments": t.json}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": ""});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    vec![json!({"choices": [{"index": 0, "message": message, "stop_reason": finish_reason(stop)}]})]
}
