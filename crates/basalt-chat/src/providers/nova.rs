//! Amazon Nova understanding models (Micro, Lite, Pro, Premier, Nova 2): the `messages-v1`
//! body, close to Converse's shapes with base64 strings for bytes.

use super::StreamEncoder;
use super::common::{self, Obj, malformed};
use crate::{
    ChatRequest, ChatResponse, ContentBlock, Delta, Message, Role, Sampling, StopReason,
    ToolChoice, ToolResultContent, ToolSpec, Usage,
};
use basalt_core::AwsError;
use serde_json::{Value, json};

pub(crate) fn parse(body: &Value) -> Result<ChatRequest, AwsError> {
    let o = Obj::root(body)?;
    if let Some(v) = o.opt_str("schemaVersion")?.filter(|v| *v != "messages-v1") {
        return Err(malformed(format!(
            "#/schemaVersion: {v} is not a valid enum value"
        )));
    }
    let mut system = Vec::new();
    if let Some(list) = o.opt_arr("system")? {
        for (i, s) in list.iter().enumerate() {
            system.push(
                Obj::at(s, format!("#/system/{i}"))?
                    .req_str("text")?
                    .to_owned(),
            );
        }
    }
    let list = o.req_arr("messages")?;
    if list.is_empty() {
        return Err(malformed(
            "#/messages: expected minimum item count: 1, found: 0",
        ));
    }
    let mut messages = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let mo = Obj::at(m, format!("#/messages/{i}"))?;
        let role = match mo.req_str("role")? {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(malformed(format!(
                    "#/messages/{i}/role: {other} is not a valid enum value"
                )));
            }
        };
        let blocks = mo.req_arr("content")?;
        let mut content = Vec::with_capacity(blocks.len());
        for (j, b) in blocks.iter().enumerate() {
            if let Some(block) = parse_block(b, &format!("#/messages/{i}/content/{j}"))? {
                content.push(block);
            }
        }
        messages.push(Message { role, content });
    }
    // Nova's messages-v1 body has Converse's message shapes and its conversation rules
    // (wording modelled on Converse's: Nova's own answers were not found).
    super::conversation::check_roles(&messages.iter().map(|m| m.role).collect::<Vec<_>>())?;
    let mut sampling = Sampling {
        max_tokens: 5000,
        ..Sampling::default()
    };
    if let Some(cfg) = o.opt_obj("inferenceConfig")? {
        let max =
            cfg.opt_u32("maxTokens", 1, 65_536)?
                .or(cfg.opt_u32("max_new_tokens", 1, 65_536)?);
        if let Some(n) = max {
            sampling.max_tokens = n;
        }
        sampling.temperature = cfg.opt_num("temperature", 0.0, 1.0)?;
        sampling.top_p = cfg
            .opt_num("topP", 0.0, 1.0)?
            .or(cfg.opt_num("top_p", 0.0, 1.0)?);
        sampling.top_k = cfg
            .opt_u32("topK", 0, 128)?
            .or(cfg.opt_u32("top_k", 0, 128)?);
        sampling.stop_sequences = cfg.opt_str_list("stopSequences", 4)?;
    }
    let (tools, tool_choice) = match o.opt_obj("toolConfig")? {
        None => (Vec::new(), ToolChoice::Auto),
        Some(tc) => parse_tool_config(&tc)?,
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

fn parse_tool_config(tc: &Obj<'_>) -> Result<(Vec<ToolSpec>, ToolChoice), AwsError> {
    let mut tools = Vec::new();
    for (i, t) in tc.req_arr("tools")?.iter().enumerate() {
        let to = Obj::at(t, format!("{}/tools/{i}", tc.path))?;
        let spec = to
            .opt_obj("toolSpec")?
            .ok_or_else(|| malformed(format!("{}: required key [toolSpec] not found", to.path)))?;
        let schema = spec
            .opt_obj("inputSchema")?
            .and_then(|s| s.get("json").cloned())
            .unwrap_or_else(|| json!({"type": "object"}));
        tools.push(ToolSpec {
            name: spec.req_str("name")?.to_owned(),
            description: spec.opt_str("description")?.unwrap_or_default().to_owned(),
            input_schema: schema,
        });
    }
    let choice = match tc.opt_obj("toolChoice")? {
        None => ToolChoice::Auto,
        Some(c) if c.has("any") => ToolChoice::Any,
        Some(c) => match c.opt_obj("tool")? {
            Some(t) => ToolChoice::Tool(t.req_str("name")?.to_owned()),
            None => ToolChoice::Auto,
        },
    };
    Ok((tools, choice))
}

fn parse_block(b: &Value, path: &str) -> Result<Option<ContentBlock>, AwsError> {
    let bo = Obj::at(b, path)?;
    if let Some(t) = bo.opt_str("text")? {
        return Ok(Some(ContentBlock::Text(t.to_owned())));
    }
    if let Some(img) = bo.opt_obj("image")? {
        let format = img.req_str("format")?;
        if !["png", "jpeg", "gif", "webp"].contains(&format) {
            return Err(malformed(format!(
                "{}/format: {format} is not a valid enum value",
                img.path
            )));
        }
        let src = img
            .opt_obj("source")?
            .ok_or_else(|| malformed(format!("{}: required key [source] not found", img.path)))?;
        return common::decode_image(&src.path, src.req_str("bytes")?, Some(format)).map(Some);
    }
    if let Some(tu) = bo.opt_obj("toolUse")? {
        return Ok(Some(ContentBlock::ToolUse {
            id: tu.req_str("toolUseId")?.to_owned(),
            name: tu.req_str("name")?.to_owned(),
            input: tu.get("input").cloned().unwrap_or_else(|| json!({})),
        }));
    }
    if let Some(tr) = bo.opt_obj("toolResult")? {
        let mut content = Vec::new();
        for part in tr.opt_arr("content")?.into_iter().flatten() {
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                content.push(ToolResultContent::Text(t.to_owned()));
            } else if let Some(j) = part.get("json") {
                content.push(ToolResultContent::Json(j.clone()));
            }
        }
        return Ok(Some(ContentBlock::ToolResult {
            tool_use_id: tr.req_str("toolUseId")?.to_owned(),
            content,
            is_error: tr.opt_str("status")? == Some("error"),
        }));
    }
    if bo.has("reasoningContent") || bo.has("cachePoint") {
        return Ok(None);
    }
    if let Some(doc) = bo.opt_obj("document")? {
        use base64::Engine as _;
        let source = doc
            .opt_obj("source")?
            .ok_or_else(|| malformed(format!("{}: required key [source] not found", doc.path)))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(source.req_str("bytes")?.trim())
            .map_err(|_| {
                malformed(format!(
                    "{}/bytes: the document data is not valid base64",
                    source.path
                ))
            })?;
        return Ok(Some(ContentBlock::Text(super::document_text(
            doc.req_str("format")?,
            doc.req_str("name")?,
            &bytes,
        )?)));
    }
    if let Some(kind) = ["video", "audio"].iter().find(|k| bo.has(k)) {
        return Err(AwsError::validation(format!(
            "{path}: {kind} content is not supported by the local model"
        )));
    }
    Err(malformed(format!(
        "{path}: the content block has no text, image, toolUse or toolResult"
    )))
}

pub(crate) fn stop_reason(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence(_) => "stop_sequence",
        StopReason::ToolUse => "tool_use",
    }
}

fn tool_id(id: &str) -> String {
    if id.is_empty() {
        super::new_tool_use_id(super::Family::Nova)
    } else {
        id.to_owned()
    }
}

fn usage(u: &Usage) -> Value {
    json!({
        "inputTokens": u.input_tokens,
        "outputTokens": u.output_tokens,
        "totalTokens": u.input_tokens.saturating_add(u.output_tokens),
        "cacheReadInputTokenCount": 0,
        "cacheWriteInputTokenCount": 0,
    })
}

pub(crate) fn response(resp: &ChatResponse) -> Value {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(json!({"text": t})),
            ContentBlock::ToolUse { id, name, input } => {
                Some(json!({"toolUse": {"toolUseId": tool_id(id), "name": name, "input": input}}))
            }
            _ => None,
        })
        .collect();
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(&resp.stop_reason),
        "usage": usage(&resp.usage),
    })
}

pub(crate) fn stream_start(_enc: &mut StreamEncoder) -> Vec<Value> {
    vec![json!({"messageStart": {"role": "assistant"}})]
}

pub(crate) fn stream_delta(enc: &mut StreamEncoder, d: &Delta) -> Vec<Value> {
    match d {
        Delta::Text { index, text } => {
            if !enc.open_blocks.contains(index) {
                enc.open_blocks.push(*index);
            }
            vec![
                json!({"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": index}}),
            ]
        }
        Delta::ToolUseStart { index, id, name } => {
            enc.open_blocks.push(*index);
            vec![
                json!({"contentBlockStart": {"start": {"toolUse": {"toolUseId": tool_id(id), "name": name}},
                                               "contentBlockIndex": index}}),
            ]
        }
        Delta::ToolInput { index, json } => {
            vec![
                json!({"contentBlockDelta": {"delta": {"toolUse": {"input": json}}, "contentBlockIndex": index}}),
            ]
        }
        Delta::BlockStop { index } => match enc.open_blocks.iter().position(|i| i == index) {
            Some(pos) => {
                enc.open_blocks.remove(pos);
                vec![json!({"contentBlockStop": {"contentBlockIndex": index}})]
            }
            None => Vec::new(),
        },
    }
}

pub(crate) fn stream_finish(enc: &mut StreamEncoder, stop: &StopReason, u: &Usage) -> Vec<Value> {
    let mut out: Vec<Value> = enc
        .open_blocks
        .drain(..)
        .map(|index| json!({"contentBlockStop": {"contentBlockIndex": index}}))
        .collect();
    out.push(json!({"messageStop": {"stopReason": stop_reason(stop)}}));
    out.push(json!({"metadata": {"usage": {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens},
                                 "metrics": {}, "trace": {}}}));
    out
}
