//! Anthropic Claude on Bedrock: the Messages API body (`anthropic_version: bedrock-2023-05-31`)
//! and the legacy Text Completions body of Claude v2 / Instant.

use super::common::{self, Obj, decode_image, image_format_of_media_type, malformed};
use super::{StreamEncoder, templates};
use crate::{
    ChatRequest, ChatResponse, ContentBlock, Delta, Message, Role, Sampling, StopReason,
    ToolChoice, ToolResultContent, ToolSpec, Usage,
};
use basalt_core::AwsError;
use serde_json::{Value, json};

const KEYS: &[&str] = &[
    "anthropic_version",
    "anthropic_beta",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
];

/// The model's name as Anthropic reports it (`claude-3-sonnet-20240229`).
fn short_name(model_id: &str) -> String {
    let id = super::base_model_id(model_id).unwrap_or(model_id);
    let id = id.strip_prefix("anthropic.").unwrap_or(id);
    match id.rfind("-v") {
        Some(i)
            if id[i + 2..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit()) =>
        {
            id[..i].to_owned()
        }
        _ => id.to_owned(),
    }
}

/// The most output tokens the Bedrock model allows.
pub(crate) fn max_output_tokens(model_id: &str) -> u32 {
    let n = short_name(model_id);
    if n.contains("claude-3-5") {
        8192
    } else if n.contains("claude-3-7")
        || n.contains("sonnet-4")
        || n.contains("haiku-4")
        || n.contains("opus-4-5")
    {
        64000
    } else if n.contains("opus-4") {
        32000
    } else {
        4096
    }
}

pub(crate) fn parse(model_id: &str, body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    o.only(KEYS)?;
    let version = o.req_str("anthropic_version")?;
    if version != "bedrock-2023-05-31" {
        return Err(AwsError::validation(format!(
            "Invalid API version: {version}. Supported version: bedrock-2023-05-31"
        )));
    }
    o.req("max_tokens")?;
    let max_tokens = o.opt_int("max_tokens", 1, i64::MAX)?.unwrap_or(1);
    let limit = max_output_tokens(model_id);
    if max_tokens > i64::from(limit) {
        return Err(AwsError::validation(format!(
            "max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output tokens for {}",
            short_name(model_id)
        )));
    }
    let messages_v = o.req_arr("messages")?;
    if messages_v.is_empty() {
        return Err(AwsError::validation(
            "messages: at least one message is required",
        ));
    }
    let mut messages = Vec::with_capacity(messages_v.len());
    for (i, m) in messages_v.iter().enumerate() {
        messages.push(parse_message(m, i)?);
    }
    check_conversation(messages_v)?;
    let system = match o.get("system") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(blocks)) => {
            let mut out = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let path = format!("#/system/{i}");
                let bo = Obj::at(b, path.as_str())?;
                out.push(bo.req_str("text")?.to_owned());
            }
            out
        }
        Some(v) => return Err(common::type_error("#/system", "String", v)),
    };
    let mut tools = Vec::new();
    if let Some(list) = o.opt_arr("tools")? {
        for (i, t) in list.iter().enumerate() {
            let to = Obj::at(t, format!("#/tools/{i}"))?;
            let name = to.req_str("name")?.to_owned();
            let schema = match to.get("input_schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                Some(v) => {
                    return Err(common::type_error(
                        &to.path_of("input_schema"),
                        "JSONObject",
                        v,
                    ));
                }
                None => match to.opt_str("type")? {
                    Some(kind) if kind != "custom" => {
                        return Err(AwsError::validation(format!(
                            "tools.{i}: tool type '{kind}' is not supported by this model"
                        )));
                    }
                    _ => {
                        return Err(malformed(format!(
                            "{}: required key [input_schema] not found",
                            to.path
                        )));
                    }
                },
            };
            if tools.iter().any(|t: &ToolSpec| t.name == name) {
                // anthropics/claude-code#10687, microsoft/vscode#276110.
                return Err(AwsError::validation("tools: Tool names must be unique."));
            }
            tools.push(ToolSpec {
                name,
                description: to.opt_str("description")?.unwrap_or_default().to_owned(),
                input_schema: schema,
            });
        }
    }
    let tool_choice = match o.opt_obj("tool_choice")? {
        None => ToolChoice::Auto,
        Some(tc) => match tc.req_str("type")? {
            "auto" => ToolChoice::Auto,
            "any" => ToolChoice::Any,
            "none" => ToolChoice::None,
            "tool" => ToolChoice::Tool(tc.req_str("name")?.to_owned()),
            other => {
                return Err(AwsError::validation(format!(
                    "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none', got '{other}'"
                )));
            }
        },
    };
    let sampling = Sampling {
        max_tokens: u32::try_from(max_tokens).unwrap_or(limit),
        temperature: o.opt_num("temperature", 0.0, 1.0)?,
        top_p: o.opt_num("top_p", 0.0, 1.0)?,
        top_k: o.opt_u32("top_k", 0, 500)?,
        seed: None,
        stop_sequences: o.opt_str_list("stop_sequences", 8191)?,
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

/// The Messages API's rules on the shape of a conversation, in Anthropic's words as Bedrock
/// returns them for InvokeModel (the body's types are already checked).
///
/// Sources of the wording: "first message must use the "user" role" (langchain4j/langchain4j#1864,
/// Bedrock); "roles must alternate …" (aws-samples/alexa-and-bedrock-integration#1, InvokeModel);
/// "all messages must have non-empty content …" (konveyor/kai#645, InvokeModel); "text content
/// blocks must be non-empty" / "… must contain non-whitespace text"
/// (aws-samples/generative-ai-use-cases#1685); "final assistant content cannot end with trailing
/// whitespace" (langchain-ai/langchain-aws#599, InvokeModelWithResponseStream); the two
/// `tool_use` / `tool_result` pairing messages (anthropics/claude-code#5060, #13460) and "Did not
/// find N `tool_result` block(s) at the beginning of this message" (langchain-ai/langchain-aws#451).
/// Which message index the pairing messages name is modelled: the message holding the offending
/// `tool_use` (for missing results) or the one holding the `tool_result`.
fn check_conversation(messages: &[Value]) -> Result<(), AwsError> {
    let role = |m: &Value| m["role"].as_str().unwrap_or_default().to_owned();
    if messages.first().map(role).as_deref() != Some("user") {
        return Err(AwsError::validation(
            "messages: first message must use the \"user\" role",
        ));
    }
    for w in messages.windows(2) {
        if role(&w[0]) == role(&w[1]) {
            return Err(AwsError::validation(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{}\" roles in a row",
                role(&w[1])
            )));
        }
    }
    let last = messages.len() - 1;
    for (i, m) in messages.iter().enumerate() {
        let final_assistant = i == last && role(m) == "assistant";
        let empty = match &m["content"] {
            Value::String(s) => s.is_empty(),
            Value::Array(blocks) => blocks.is_empty(),
            _ => false,
        };
        if empty && !final_assistant {
            return Err(AwsError::validation(format!(
                "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            )));
        }
        let texts: Vec<&str> = match &m["content"] {
            Value::String(s) if !s.is_empty() => vec![s.as_str()],
            Value::Array(blocks) => blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect(),
            _ => Vec::new(),
        };
        for t in &texts {
            if t.is_empty() {
                return Err(AwsError::validation(
                    "messages: text content blocks must be non-empty",
                ));
            }
            if t.trim().is_empty() && !final_assistant {
                return Err(AwsError::validation(
                    "messages: text content blocks must contain non-whitespace text",
                ));
            }
        }
        if final_assistant
            && texts
                .last()
                .is_some_and(|t| t.ends_with(char::is_whitespace))
        {
            return Err(AwsError::validation(
                "messages: final assistant content cannot end with trailing whitespace",
            ));
        }
    }
    let blocks = |m: &Value| m["content"].as_array().cloned().unwrap_or_default();
    let tool_use_ids = |m: &Value| -> Vec<String> {
        blocks(m)
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .filter_map(|b| b["id"].as_str().map(str::to_owned))
            .collect()
    };
    for (i, m) in messages.iter().enumerate() {
        if role(m) != "user" {
            continue;
        }
        let uses = if i > 0 {
            tool_use_ids(&messages[i - 1])
        } else {
            Vec::new()
        };
        let content = blocks(m);
        for (j, b) in content.iter().enumerate() {
            if b["type"] != "tool_result" {
                continue;
            }
            let id = b["tool_use_id"].as_str().unwrap_or_default();
            if !uses.iter().any(|u| u == id) {
                return Err(AwsError::validation(format!(
                    "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )));
            }
        }
    }
    for (i, m) in messages.iter().enumerate().take(last) {
        let uses = tool_use_ids(m);
        if uses.is_empty() {
            continue;
        }
        let next = blocks(&messages[i + 1]);
        let result_id = |b: &Value| {
            (b["type"] == "tool_result")
                .then(|| b["tool_use_id"].as_str().unwrap_or_default().to_owned())
        };
        let results: Vec<String> = next.iter().filter_map(result_id).collect();
        let missing: Vec<&str> = uses
            .iter()
            .filter(|u| !results.contains(u))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(AwsError::validation(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                missing.join(", ")
            )));
        }
        let leading = next.iter().take_while(|b| result_id(b).is_some()).count();
        if leading < uses.len() {
            return Err(AwsError::validation(format!(
                "messages.{}: Did not find {} `tool_result` block(s) at the beginning of this message. Messages following `tool_use` blocks must begin with a matching number of `tool_result` blocks.",
                i + 1,
                uses.len()
            )));
        }
    }
    Ok(())
}

fn parse_message(m: &Value, i: usize) -> Result<Message, AwsError> {
    let path = format!("#/messages/{i}");
    let mo = Obj::at(m, path.as_str())?;
    let role = match mo.req_str("role")? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(AwsError::validation(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant', got '{other}'"
            )));
        }
    };
    let content = match mo.req("content")? {
        Value::String(s) => vec![ContentBlock::Text(s.clone())],
        Value::Array(blocks) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                if let Some(block) = parse_block(b, &format!("{path}/content/{j}"), i, j)? {
                    out.push(block);
                }
            }
            out
        }
        v => {
            return Err(common::type_error(
                &format!("{path}/content"),
                "JSONArray",
                v,
            ));
        }
    };
    Ok(Message { role, content })
}

fn parse_block(
    b: &Value,
    path: &str,
    i: usize,
    j: usize,
) -> Result<Option<ContentBlock>, AwsError> {
    let bo = Obj::at(b, path)?;
    let block = match bo.req_str("type")? {
        "text" => ContentBlock::Text(bo.req_str("text")?.to_owned()),
        "image" => {
            let src = bo
                .opt_obj("source")?
                .ok_or_else(|| malformed(format!("{path}: required key [source] not found")))?;
            if src.req_str("type")? != "base64" {
                return Err(AwsError::validation(format!(
                    "messages.{i}.content.{j}.image.source: only base64 image sources are supported"
                )));
            }
            let media = src.req_str("media_type")?;
            let format = image_format_of_media_type(media).ok_or_else(|| {
                AwsError::validation(format!(
                    "messages.{i}.content.{j}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                ))
            })?;
            decode_image(&src.path, src.req_str("data")?, Some(format))?
        }
        "tool_use" => ContentBlock::ToolUse {
            id: bo.req_str("id")?.to_owned(),
            name: bo.req_str("name")?.to_owned(),
            input: bo.get("input").cloned().unwrap_or_else(|| json!({})),
        },
        "tool_result" => {
            let content = match bo.get("content") {
                None => Vec::new(),
                Some(Value::String(s)) => vec![ToolResultContent::Text(s.clone())],
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|p| {
                        match (
                            p.get("type").and_then(Value::as_str),
                            p.get("text").and_then(Value::as_str),
                        ) {
                            (Some("text"), Some(t)) => ToolResultContent::Text(t.to_owned()),
                            _ => ToolResultContent::Json(p.clone()),
                        }
                    })
                    .collect(),
                Some(v) => return Err(common::type_error(&bo.path_of("content"), "JSONArray", v)),
            };
            ContentBlock::ToolResult {
                tool_use_id: bo.req_str("tool_use_id")?.to_owned(),
                content,
                is_error: bo.opt_bool("is_error")?.unwrap_or(false),
            }
        }
        "document" => {
            // Anthropic's document sources: plain text, a list of text blocks, or base64 data
            // (PDF), which the local model cannot read.
            let src = bo
                .opt_obj("source")?
                .ok_or_else(|| malformed(format!("{path}: required key [source] not found")))?;
            let text = match src.req_str("type")? {
                "text" => src.req_str("data")?.to_owned(),
                "content" => src
                    .req_arr("content")?
                    .iter()
                    .filter_map(|c| c.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => {
                    return Err(AwsError::validation(format!(
                        "messages.{i}.content.{j}.document.source: {other} documents are not supported by the local model (text and content sources are)"
                    )));
                }
            };
            let title = bo.opt_str("title")?.unwrap_or("document");
            ContentBlock::Text(format!("<document title=\"{title}\">\n{text}\n</document>"))
        }
        // Earlier reasoning returned to the model: not needed to continue the conversation.
        "thinking" | "redacted_thinking" => return Ok(None),
        other => {
            return Err(AwsError::validation(format!(
                "messages.{i}.content.{j}.type: content type '{other}' is not supported by this model"
            )));
        }
    };
    Ok(Some(block))
}

pub(crate) fn stop_reason(stop: &StopReason) -> (&'static str, Value) {
    match stop {
        StopReason::EndTurn => ("end_turn", Value::Null),
        StopReason::MaxTokens => ("max_tokens", Value::Null),
        StopReason::StopSequence(s) => ("stop_sequence", Value::String(s.clone())),
        StopReason::ToolUse => ("tool_use", Value::Null),
    }
}

fn tool_id(id: &str) -> String {
    if id.is_empty() {
        super::new_tool_use_id(super::Family::Anthropic)
    } else {
        id.to_owned()
    }
}

pub(crate) fn response(model_id: &str, resp: &ChatResponse) -> Value {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(json!({"type": "text", "text": t})),
            ContentBlock::ToolUse { id, name, input } => {
                Some(json!({"type": "tool_use", "id": tool_id(id), "name": name, "input": input}))
            }
            _ => None,
        })
        .collect();
    let (reason, seq) = stop_reason(&resp.stop_reason);
    let mut usage =
        json!({"input_tokens": resp.usage.input_tokens, "output_tokens": resp.usage.output_tokens});
    // With cache_control blocks the Messages API also counts cache writes and reads.
    if resp.usage.cache_write_input_tokens + resp.usage.cache_read_input_tokens > 0 {
        usage["cache_creation_input_tokens"] = resp.usage.cache_write_input_tokens.into();
        usage["cache_read_input_tokens"] = resp.usage.cache_read_input_tokens.into();
    }
    json!({
        "id": format!("msg_bdrk_01{}", common::random_tail(22)),
        "type": "message",
        "role": "assistant",
        "model": short_name(model_id),
        "content": content,
        "stop_reason": reason,
        "stop_sequence": seq,
        "usage": usage,
    })
}

pub(crate) fn stream_start(enc: &mut StreamEncoder) -> Vec<Value> {
    let cached = enc.cache_read_tokens + enc.cache_write_tokens;
    let mut usage =
        json!({"input_tokens": enc.input_tokens.saturating_sub(cached), "output_tokens": 1});
    if cached > 0 {
        usage["cache_creation_input_tokens"] = enc.cache_write_tokens.into();
        usage["cache_read_input_tokens"] = enc.cache_read_tokens.into();
    }
    vec![json!({
        "type": "message_start",
        "message": {
            "id": enc.id,
            "type": "message",
            "role": "assistant",
            "model": short_name(&enc.model_id),
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage,
        },
    })]
}

fn open(enc: &mut StreamEncoder, index: usize, block: Value, out: &mut Vec<Value>) {
    if !enc.open_blocks.contains(&index) {
        enc.open_blocks.push(index);
        out.push(json!({"type": "content_block_start", "index": index, "content_block": block}));
    }
}

pub(crate) fn stream_delta(enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    let mut out = Vec::new();
    match d {
        Delta::Text { index, text } => {
            open(enc, *index, json!({"type": "text", "text": ""}), &mut out);
            out.push(json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": text}}));
        }
        Delta::ToolUseStart { index, id, name } => {
            let block = json!({"type": "tool_use", "id": tool_id(id), "name": name, "input": {}});
            open(enc, *index, block, &mut out);
        }
        Delta::ToolInput { index, json } => {
            open(
                enc,
                *index,
                json!({"type": "tool_use", "id": tool_id(""), "name": "", "input": {}}),
                &mut out,
            );
            out.push(json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": json}}));
        }
        Delta::BlockStop { index } => {
            if let Some(pos) = enc.open_blocks.iter().position(|i| i == index) {
                enc.open_blocks.remove(pos);
                out.push(json!({"type": "content_block_stop", "index": index}));
            }
        }
    }
    out
}

pub(crate) fn stream_finish(
    enc: &mut StreamEncoder,
    stop: &StopReason,
    usage: &Usage,
) -> Vec<Value> {
    let mut out: Vec<Value> = enc
        .open_blocks
        .drain(..)
        .map(|index| json!({"type": "content_block_stop", "index": index}))
        .collect();
    let (reason, seq) = stop_reason(stop);
    out.push(
        json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": seq},
                    "usage": {"output_tokens": usage.output_tokens}}),
    );
    out.push(json!({"type": "message_stop"}));
    out
}

// ----------------------------------------------------------------- legacy Text Completions

pub(crate) fn parse_text(body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    o.only(&[
        "prompt",
        "max_tokens_to_sample",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "anthropic_version",
    ])?;
    let prompt = o.req_str("prompt")?;
    o.req("max_tokens_to_sample")?;
    // Bedrock's schema bound for Claude v2 / Instant: "Malformed input request: 8192 is not less
    // or equal to 8191, …" (langchain-ai/langchain#9697).
    let max_tokens = o.opt_u32("max_tokens_to_sample", 0, 8191)?.unwrap_or(0);
    let mut req = templates::request_from_prompt(prompt);
    req.sampling = Sampling {
        max_tokens,
        temperature: o.opt_num("temperature", 0.0, 1.0)?,
        top_p: o.opt_num("top_p", 0.0, 1.0)?,
        top_k: o.opt_u32("top_k", 0, 500)?,
        seed: None,
        stop_sequences: o.opt_str_list("stop_sequences", 8191)?,
    };
    Ok(req)
}

fn text_stop(stop: &StopReason) -> (&'static str, Value) {
    match stop {
        StopReason::MaxTokens => ("max_tokens", Value::Null),
        StopReason::StopSequence(s) => ("stop_sequence", Value::String(s.clone())),
        _ => ("stop_sequence", Value::String("\n\nHuman:".to_owned())),
    }
}

pub(crate) fn text_response(resp: &ChatResponse) -> Value {
    let (reason, stop) = text_stop(&resp.stop_reason);
    json!({"type": "completion", "completion": common::joined_text(&resp.content),
           "stop_reason": reason, "stop": stop})
}

pub(crate) fn text_stream_delta(_enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { text, .. } => vec![
            json!({"type": "completion", "completion": text, "stop_reason": null, "stop": null}),
        ],
        _ => Vec::new(),
    }
}

pub(crate) fn text_stream_finish(stop: &StopReason) -> Vec<Value> {
    let (reason, stop) = text_stop(stop);
    vec![json!({"type": "completion", "completion": "", "stop_reason": reason, "stop": stop})]
}
